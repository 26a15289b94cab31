//! Internet checksum arithmetic (RFC 1071) and incremental updates (RFC 1624).

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` as big-endian 16-bit words to `initial` without folding.
///
/// An odd trailing byte is padded with a zero low byte. Carries beyond 32
/// bits are folded back in, so any buffer size is safe.
#[inline]
pub fn sum(data: &[u8], initial: u32) -> u32 {
    // Ones' complement addition does not care about byte order (RFC 1071
    // 2(B)): sixteen bytes at a time in the machine's order, into two
    // accumulators so the additions overlap, carries added back, and one
    // swap at the end. Finishing the checksum of every full-size segment a
    // checksum-offloading sender hands over depends on this loop's speed.
    let mut chunks = data.chunks_exact(16);
    let (mut a, mut b): (u64, u64) = (0, 0);
    for c in &mut chunks {
        let (lo, hi) = c.split_at(8);
        let add = |acc: u64, w: &[u8]| {
            let w = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            let (s, carry) = acc.overflowing_add(w);
            s + u64::from(carry)
        };
        a = add(a, lo);
        b = add(b, hi);
    }
    let (s, carry) = a.overflowing_add(b);
    let wide = s + u64::from(carry);
    let mut native = (wide & 0xffff_ffff) + (wide >> 32);
    native = (native & 0xffff) + (native >> 16);
    native = (native & 0xffff) + (native >> 16);
    native = (native & 0xffff) + (native >> 16);
    let mut acc = u64::from(initial) + u64::from(u16::from_be(native as u16));
    let mut words = chunks.remainder().chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    while acc >> 32 != 0 {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// Folds the carries of a 32-bit accumulator into 16 bits (not complemented).
#[inline]
pub fn fold(sum: u32) -> u16 {
    let mut s = sum;
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The complemented Internet checksum of `data`.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// Unfolded sum of the IPv4 pseudo-header used by TCP and UDP.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u32 {
    let s = u32::from(src);
    let d = u32::from(dst);
    (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + u32::from(proto) + u32::from(len)
}

/// Unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1) used by TCP, UDP
/// and ICMPv6: the addresses, the upper-layer length as 32 bits and the
/// upper-layer protocol (`next_header`), not that of any extension header.
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u32 {
    let addrs = sum(&dst.octets(), sum(&src.octets(), 0));
    addrs + (len >> 16) + (len & 0xffff) + u32::from(next_header)
}

/// Whether a TCP or UDP checksum field holds a checksum the sender left for
/// the NIC to finish (CHECKSUM_PARTIAL): the folded, uncomplemented sum of
/// the pseudo-header `pseudo`. veth and virtio hand such frames to XDP and
/// AF_XDP as they are; forwarded unfinished, the receiver drops them.
#[inline]
pub fn is_partial(field: u16, pseudo: u32) -> bool {
    field == fold(pseudo)
}

/// What a 16-bit field changing from `old` to `new` adds to a checksum's
/// complement (RFC 1624: ~m + m'), unfolded: the deltas of several fields
/// add up, and one update applies them all, as the XDP fast path does.
#[inline]
pub fn delta16(old: u16, new: u16) -> u32 {
    if old == new {
        return 0;
    }
    u32::from(!old) + u32::from(new)
}

/// [`delta16`] for a 32-bit field (an IPv4 address).
#[inline]
pub fn delta32(old: u32, new: u32) -> u32 {
    delta16((old >> 16) as u16, (new >> 16) as u16) + delta16(old as u16, new as u16)
}

/// [`delta16`] for a 128-bit field (an IPv6 address).
#[inline]
pub fn delta_v6(old: Ipv6Addr, new: Ipv6Addr) -> u32 {
    let (o, n) = (old.segments(), new.segments());
    o.iter().zip(n).map(|(&a, b)| delta16(a, b)).sum()
}

/// Updates checksum `csum` by a sum of deltas ([`delta16`], [`delta32`]).
#[inline]
pub fn apply_delta(csum: u16, delta: u32) -> u16 {
    !fold(u32::from(!csum) + fold(delta) as u32)
}

/// Updates checksum `csum` after a 16-bit field changed from `old` to `new`
/// (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!csum) + u32::from(!old) + u32::from(new))
}

/// Updates checksum `csum` after a 32-bit field (e.g. an IPv4 address)
/// changed from `old` to `new`.
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    let acc = u32::from(!csum)
        + u32::from(!(old >> 16) as u16)
        + u32::from(!(old as u16))
        + (new >> 16)
        + (new & 0xffff);
    !fold(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_summed_delta_updates_as_field_by_field_updates_do() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..10_000 {
            let r = xorshift(&mut state);
            let csum = r as u16;
            let (a, b) = ((r >> 16) as u32, xorshift(&mut state) as u32);
            let (p, q) = ((r >> 48) as u16, (xorshift(&mut state) >> 7) as u16);
            let stepwise = update16(update32(csum, a, b), p, q);
            let once = apply_delta(csum, delta32(a, b) + delta16(p, q));
            assert_eq!(
                stepwise, once,
                "csum {csum:#x} {a:#x}->{b:#x} {p:#x}->{q:#x}"
            );
        }
        assert_eq!(apply_delta(0xabcd, delta32(7, 7)), 0xabcd);
    }

    /// Reference checksum: plain word-by-word RFC 1071 sum.
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for (i, b) in data.iter().enumerate() {
            acc += if i % 2 == 0 {
                u32::from(*b) << 8
            } else {
                u32::from(*b)
            };
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !(fold(acc))
    }

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn sum_matches_reference_for_every_length() {
        let mut st = 0x1234_5678_9abc_def0;
        let data: Vec<u8> = (0..300).map(|_| xorshift(&mut st) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(checksum(&data[..len]), reference(&data[..len]), "len {len}");
        }
    }

    #[test]
    fn checksum_of_data_with_its_checksum_verifies() {
        let mut st = 99;
        for len in [2usize, 10, 20, 64, 1500] {
            let mut data: Vec<u8> = (0..len).map(|_| xorshift(&mut st) as u8).collect();
            data[0] = 0;
            data[1] = 0;
            let c = checksum(&data);
            data[..2].copy_from_slice(&c.to_be_bytes());
            assert_eq!(fold(sum(&data, 0)), 0xffff);
        }
    }

    #[test]
    fn all_ones_data_folds_without_overflow() {
        let data = vec![0xffu8; 65536 * 4];
        assert_eq!(fold(sum(&data, 0xffff_ffff)), 0xffff);
    }

    #[test]
    fn incremental_updates_match_full_recomputation() {
        // For data that is not all zero, eqn. 3 gives exactly the checksum a
        // full recomputation gives, including never producing 0xffff (-0).
        let mut st = 7;
        for _ in 0..5000 {
            let mut data: Vec<u8> = (0..24).map(|_| xorshift(&mut st) as u8).collect();
            data[0] |= 0x40;
            let c = checksum(&data);
            let old16 = u16::from_be_bytes([data[4], data[5]]);
            let new16 = xorshift(&mut st) as u16;
            data[4..6].copy_from_slice(&new16.to_be_bytes());
            let c = update16(c, old16, new16);
            assert_eq!(c, checksum(&data));
            let old32 = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
            let new32 = xorshift(&mut st) as u32;
            data[8..12].copy_from_slice(&new32.to_be_bytes());
            let c = update32(c, old32, new32);
            assert_eq!(c, checksum(&data));
        }
    }

    #[test]
    fn rfc1624_corner_case_gives_zero_not_negative_zero() {
        // The corner case of RFC 1624 section 3: the data sums to 0xffff
        // after the change, so the checksum is 0x0000; eqn. 2 would yield
        // 0xffff.
        let mut data = [0xcdu8, 0x13, 0x32, 0x00];
        let old = u16::from_be_bytes([data[2], data[3]]);
        let c = checksum(&data);
        let new = 0xffffu16 - 0xcd13;
        data[2..4].copy_from_slice(&new.to_be_bytes());
        assert_eq!(fold(sum(&data, 0)), 0xffff);
        let c2 = update16(c, old, new);
        assert_eq!(c2, checksum(&data));
        assert_eq!(c2, 0x0000);
    }

    #[test]
    fn pseudo_header_matches_byte_sum() {
        let src = Ipv4Addr::new(192, 0, 2, 1);
        let dst = Ipv4Addr::new(198, 51, 100, 255);
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&src.octets());
        bytes.extend_from_slice(&dst.octets());
        bytes.extend_from_slice(&[0, 17]);
        bytes.extend_from_slice(&1234u16.to_be_bytes());
        assert_eq!(
            fold(pseudo_header_v4(src, dst, 17, 1234)),
            fold(sum(&bytes, 0))
        );
    }

    #[test]
    fn pseudo_header_v6_matches_byte_sum() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "fe80::ffff:ffff:ffff:ffff".parse().unwrap();
        for len in [0u32, 8, 1232, 65535, 70_000] {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&src.octets());
            bytes.extend_from_slice(&dst.octets());
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&[0, 0, 0, 58]);
            assert_eq!(
                fold(pseudo_header_v6(src, dst, 58, len)),
                fold(sum(&bytes, 0))
            );
        }
    }

    #[test]
    fn ipv6_address_delta_updates_as_recomputation_does() {
        let mut st = 0x6666_0000_1234_5678u64;
        for _ in 0..2000 {
            let mut data: Vec<u8> = (0..40).map(|_| xorshift(&mut st) as u8).collect();
            data[0] |= 0x40;
            let c = checksum(&data);
            let old: [u8; 16] = data[8..24].try_into().unwrap();
            let new =
                (u128::from(xorshift(&mut st)) << 64 | u128::from(xorshift(&mut st))).to_be_bytes();
            data[8..24].copy_from_slice(&new);
            let c = apply_delta(c, delta_v6(old.into(), new.into()));
            assert_eq!(c, checksum(&data));
        }
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example words: sum 0xddf2, checksum !0xddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&bytes), !0xddf2);
    }
}
