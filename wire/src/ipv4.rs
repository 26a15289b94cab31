//! IPv4 headers (RFC 791), options tolerated.

use std::net::Ipv4Addr;

use crate::checksum;
use crate::{get16, get32, put16, put32, WireError};

/// A view over an IPv4 packet. The buffer may extend past `total_len`
/// (Ethernet minimum-size padding); `payload` stops at `total_len`.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    use crate::Field;

    /// Version (high nibble) and header length in 32-bit words (low nibble).
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: Field = 2..4;
    pub const IDENT: Field = 4..6;
    /// Flags (high 3 bits) and fragment offset in 8-byte units.
    pub const FLG_OFF: Field = 6..8;
    pub const FLAGS: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    /// TTL and protocol: the 16-bit checksum word TTL changes.
    pub const TTL_PROTO: Field = 8..10;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
    /// End of a header without options.
    pub const OPTIONS: usize = 20;
}

const MIN_LEN: usize = field::OPTIONS;
const DONT_FRAG: u8 = 0x40;
const MORE_FRAGS: u8 = 0x20;
const FRAG_OFFSET_MASK: u16 = 0x1fff;
/// More-fragments and the offset: any of them set marks a fragment.
const FRAGMENT_MASK: u16 = 0x3fff;

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        let Some(&vihl) = b.get(field::VER_IHL) else {
            return Err(WireError::Truncated);
        };
        if vihl >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        let hl = usize::from(vihl & 0x0f) * 4;
        if hl < MIN_LEN {
            return Err(WireError::BadHeaderLen);
        }
        if hl > b.len() {
            return Err(WireError::Truncated);
        }
        let tl = usize::from(get16(b, field::TOTAL_LEN));
        if tl < hl || tl > b.len() {
            return Err(WireError::BadTotalLen);
        }
        Ok(Ipv4Packet { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    #[inline]
    pub fn total_len(&self) -> usize {
        usize::from(get16(self.buffer.as_ref(), field::TOTAL_LEN))
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & DONT_FRAG != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        self.buffer.as_ref()[field::FLAGS] & MORE_FRAGS != 0
    }

    /// Fragment offset in bytes (the header field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (get16(self.buffer.as_ref(), field::FLG_OFF) & FRAG_OFFSET_MASK) << 3
    }

    /// True for any fragment, first or later; only unfragmented packets
    /// carry a complete transport header.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        get16(self.buffer.as_ref(), field::FLG_OFF) & FRAGMENT_MASK != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(get32(self.buffer.as_ref(), field::SRC))
    }

    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(get32(self.buffer.as_ref(), field::DST))
    }

    /// True when the header checksum is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let hl = self.header_len();
        checksum::fold(checksum::sum(&self.buffer.as_ref()[..hl], 0)) == 0xffff
    }

    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_LEN..self.header_len()]
    }

    /// Bytes from the end of the header to `total_len`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    #[inline]
    fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, c)
    }

    /// Rewrites the source address and patches the header checksum.
    #[inline]
    pub fn set_src(&mut self, addr: Ipv4Addr) {
        let old = get32(self.buffer.as_ref(), field::SRC);
        let new = u32::from(addr);
        put32(self.buffer.as_mut(), field::SRC, new);
        let c = checksum::update32(self.checksum(), old, new);
        self.set_checksum(c);
    }

    /// Rewrites the destination address and patches the header checksum.
    #[inline]
    pub fn set_dst(&mut self, addr: Ipv4Addr) {
        let old = get32(self.buffer.as_ref(), field::DST);
        let new = u32::from(addr);
        put32(self.buffer.as_mut(), field::DST, new);
        let c = checksum::update32(self.checksum(), old, new);
        self.set_checksum(c);
    }

    /// Sets the TTL and patches the header checksum.
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        // TTL shares a 16-bit checksum word with the protocol byte.
        let old = get16(self.buffer.as_ref(), field::TTL_PROTO);
        self.buffer.as_mut()[field::TTL] = ttl;
        let new = get16(self.buffer.as_ref(), field::TTL_PROTO);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_checksum(c);
    }

    /// Sets or clears the don't-fragment flag and patches the header
    /// checksum.
    #[inline]
    pub fn set_dont_frag(&mut self, df: bool) {
        let old = get16(self.buffer.as_ref(), field::FLG_OFF);
        let b = self.buffer.as_mut();
        b[field::FLAGS] = if df {
            b[field::FLAGS] | DONT_FRAG
        } else {
            b[field::FLAGS] & !DONT_FRAG
        };
        let new = get16(self.buffer.as_ref(), field::FLG_OFF);
        let c = checksum::update16(self.checksum(), old, new);
        self.set_checksum(c);
    }

    /// Decrements the TTL (never below zero) and returns the new value; the
    /// caller drops the packet when it reaches zero.
    #[inline]
    pub fn decrement_ttl(&mut self) -> u8 {
        let ttl = self.ttl().saturating_sub(1);
        self.set_ttl(ttl);
        ttl
    }

    /// Recomputes the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hl]);
        self.set_checksum(c);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), self.total_len());
        &mut self.buffer.as_mut()[hl..tl]
    }
}

/// Fields of an IPv4 header without options, as [`write_header`] writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Header {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub tos: u8,
    pub ttl: u8,
    /// Header plus payload, in bytes.
    pub total_len: u16,
}

/// Writes a 20-byte IPv4 header (no options, not fragmented, identification
/// 0) with its checksum at the start of `buf`; false when `buf` is shorter.
pub fn write_header(buf: &mut [u8], h: &Ipv4Header) -> bool {
    let Some(b) = buf.get_mut(..MIN_LEN) else {
        return false;
    };
    b.fill(0);
    // Version 4, five 32-bit words.
    b[field::VER_IHL] = 0x45;
    b[field::TOS] = h.tos;
    put16(b, field::TOTAL_LEN, h.total_len);
    b[field::TTL] = h.ttl;
    b[field::PROTOCOL] = h.protocol;
    put32(b, field::SRC, u32::from(h.src));
    put32(b, field::DST, u32::from(h.dst));
    let c = checksum::checksum(b);
    put16(b, field::CHECKSUM, c);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ip_proto, XorShift};
    use etherparse::{IpFragOffset, Ipv4Header, Ipv4Options};

    /// An IPv4 packet serialised by etherparse with random fields.
    fn random_packet(rng: &mut XorShift) -> (Ipv4Header, Vec<u8>) {
        let payload = {
            let n = usize::from(rng.next_u16() % 64);
            rng.bytes(n)
        };
        let mut h = Ipv4Header::new(
            payload.len() as u16,
            (rng.next_u16() % 255) as u8 + 1,
            etherparse::IpNumber(ip_proto::UDP),
            rng.next_u32().to_be_bytes(),
            rng.next_u32().to_be_bytes(),
        )
        .unwrap();
        h.identification = rng.next_u16();
        h.dont_fragment = rng.next_u16() & 1 == 1;
        h.more_fragments = rng.next_u16() & 1 == 1;
        h.fragment_offset = IpFragOffset::try_new(rng.next_u16() & 0x1fff).unwrap();
        let opt_len = usize::from(rng.next_u16() % 11) * 4;
        h.options = Ipv4Options::try_from(&rng.bytes(opt_len)[..]).unwrap();
        h.set_payload_len(payload.len()).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut out = Vec::new();
        h.write(&mut out).unwrap();
        out.extend_from_slice(&payload);
        (h, out)
    }

    fn assert_checksum_consistent(buf: &[u8]) {
        let p = Ipv4Packet::new_checked(buf).unwrap();
        assert!(p.verify_checksum());
        let (eh, _) = Ipv4Header::from_slice(buf).unwrap();
        assert_eq!(eh.calc_header_checksum(), p.checksum());
        let mut full = buf.to_vec();
        Ipv4Packet::new_checked(&mut full[..])
            .unwrap()
            .fill_checksum();
        assert_eq!(full, buf);
    }

    #[test]
    fn reads_etherparse_packets() {
        let mut rng = XorShift(0x1004);
        for _ in 0..300 {
            let (h, mut out) = random_packet(&mut rng);
            // Ethernet padding after total_len must be tolerated and excluded.
            let pad = usize::from(rng.next_u16() % 8);
            let tl = out.len();
            out.resize(tl + pad, 0xee);
            let p = Ipv4Packet::new_checked(&out[..]).unwrap();
            assert_eq!(p.header_len(), h.header_len());
            assert_eq!(p.total_len(), tl);
            assert_eq!(p.ident(), h.identification);
            assert_eq!(p.ttl(), h.time_to_live);
            assert_eq!(p.protocol(), h.protocol.0);
            assert_eq!(p.src().octets(), h.source);
            assert_eq!(p.dst().octets(), h.destination);
            assert_eq!(p.dont_frag(), h.dont_fragment);
            assert_eq!(p.more_frags(), h.more_fragments);
            assert_eq!(p.frag_offset(), h.fragment_offset.value() * 8);
            assert_eq!(
                p.is_fragment(),
                h.more_fragments || h.fragment_offset.value() != 0
            );
            assert_eq!(p.checksum(), h.header_checksum);
            assert!(p.verify_checksum());
            assert_eq!(p.options(), h.options.as_slice());
            assert_eq!(p.payload(), &out[h.header_len()..tl]);
        }
    }

    #[test]
    fn rejects_every_malformation() {
        let mut rng = XorShift(0xbad);
        for _ in 0..50 {
            let (h, out) = random_packet(&mut rng);
            let hl = h.header_len();
            for len in 0..out.len() {
                let r = Ipv4Packet::new_checked(&out[..len]).err();
                let expect = if len < hl {
                    WireError::Truncated
                } else {
                    WireError::BadTotalLen
                };
                assert_eq!(r, Some(expect), "len {len}");
            }
            for v in [0u8, 6, 15] {
                let mut bad = out.clone();
                bad[0] = (v << 4) | (bad[0] & 0x0f);
                assert_eq!(
                    Ipv4Packet::new_checked(&bad[..]).err(),
                    Some(WireError::BadVersion)
                );
            }
            for ihl in 0..5u8 {
                let mut bad = out.clone();
                bad[0] = 0x40 | ihl;
                assert_eq!(
                    Ipv4Packet::new_checked(&bad[..]).err(),
                    Some(WireError::BadHeaderLen)
                );
            }
            for tl in [0, hl - 1, out.len() + 1, 0xffff] {
                let mut bad = out.clone();
                bad[2..4].copy_from_slice(&(tl as u16).to_be_bytes());
                assert_eq!(
                    Ipv4Packet::new_checked(&bad[..]).err(),
                    Some(WireError::BadTotalLen)
                );
            }
        }
        let mut too_long_ihl = [0u8; 40];
        too_long_ihl[0] = 0x4f;
        assert_eq!(
            Ipv4Packet::new_checked(&too_long_ihl[..]).err(),
            Some(WireError::Truncated)
        );
    }

    #[test]
    fn incremental_setters_match_full_and_etherparse() {
        let mut rng = XorShift(0x5e77);
        for _ in 0..500 {
            let (_, mut out) = random_packet(&mut rng);
            let (s, d) = (
                Ipv4Addr::from(rng.next_u32()),
                Ipv4Addr::from(rng.next_u32()),
            );
            let ttl = (rng.next_u64() >> 40) as u8;
            let mut p = Ipv4Packet::new_checked(&mut out[..]).unwrap();
            p.set_src(s);
            assert_eq!(p.src(), s);
            assert_checksum_consistent(p.into_inner());
            let mut p = Ipv4Packet::new_checked(&mut out[..]).unwrap();
            p.set_dst(d);
            assert_eq!(p.dst(), d);
            assert_checksum_consistent(p.into_inner());
            let mut p = Ipv4Packet::new_checked(&mut out[..]).unwrap();
            p.set_ttl(ttl);
            assert_eq!(p.ttl(), ttl);
            assert_checksum_consistent(p.into_inner());
            let mut p = Ipv4Packet::new_checked(&mut out[..]).unwrap();
            let after = p.decrement_ttl();
            assert_eq!(after, ttl.saturating_sub(1));
            assert_eq!(p.ttl(), after);
            assert_checksum_consistent(p.into_inner());
        }
    }

    #[test]
    fn fill_checksum_repairs_a_corrupted_header() {
        let mut rng = XorShift(31);
        for _ in 0..100 {
            let (h, mut out) = random_packet(&mut rng);
            out[field::CHECKSUM.start] ^= 0x5a;
            let mut p = Ipv4Packet::new_checked(&mut out[..]).unwrap();
            assert!(!p.verify_checksum());
            p.fill_checksum();
            assert!(p.verify_checksum());
            assert_eq!(p.checksum(), h.header_checksum);
            p.payload_mut().fill(0);
        }
    }

    #[test]
    fn dont_frag_setter_patches_the_checksum() {
        let mut rng = XorShift(0xdf);
        for _ in 0..50 {
            let (_, mut bytes) = random_packet(&mut rng);
            let mut p = Ipv4Packet::new_checked(&mut bytes[..]).unwrap();
            for df in [true, false, true] {
                p.set_dont_frag(df);
                assert_eq!(p.dont_frag(), df);
                assert!(p.verify_checksum());
            }
        }
    }
}
