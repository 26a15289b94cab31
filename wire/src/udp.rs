//! UDP datagrams (RFC 768).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::{get16, ip_proto, put16, WireError};

/// A view over a UDP datagram; the buffer may extend past the length field.
#[derive(Debug, Clone)]
pub struct UdpDatagram<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    use crate::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    /// Header plus payload, in bytes.
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

const HEADER_LEN: usize = field::CHECKSUM.end;

/// A transmitted UDP checksum of zero means "none" in IPv4 (and is invalid
/// in IPv6), so a computed zero is sent as its ones' complement equivalent
/// 0xffff.
#[inline]
fn on_wire(c: u16) -> u16 {
    if c == 0 {
        0xffff
    } else {
        c
    }
}

impl<T: AsRef<[u8]>> UdpDatagram<T> {
    pub const HEADER_LEN: usize = HEADER_LEN;

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(get16(b, field::LENGTH));
        if len < HEADER_LEN || len > b.len() {
            return Err(WireError::BadTotalLen);
        }
        Ok(UdpDatagram { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        get16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field: header plus payload.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(get16(self.buffer.as_ref(), field::LENGTH))
    }

    /// True for a datagram with no payload.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == HEADER_LEN
    }

    /// Zero means the sender did not compute one.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Pseudo-header sums over `len()` bytes; `len` came from a 16-bit
    /// field, so the cast is exact.
    #[inline]
    fn pseudo_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        checksum::pseudo_header_v4(src, dst, ip_proto::UDP, self.len() as u16)
    }

    #[inline]
    fn pseudo_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u32 {
        checksum::pseudo_header_v6(src, dst, ip_proto::UDP, self.len() as u32)
    }

    #[inline]
    fn has_partial_checksum(&self, pseudo: u32) -> bool {
        self.checksum() != 0 && checksum::is_partial(self.checksum(), pseudo)
    }

    /// Whether the checksum is left for the NIC to finish (see
    /// [`checksum::is_partial`]).
    #[inline]
    pub fn has_partial_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.has_partial_checksum(self.pseudo_v4(src, dst))
    }

    /// [`Self::has_partial_checksum_v4`] over IPv6.
    #[inline]
    pub fn has_partial_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.has_partial_checksum(self.pseudo_v6(src, dst))
    }

    /// True when the checksum over the pseudo-header and `len()` bytes is
    /// correct. Zero is refused: IPv6 makes the UDP checksum mandatory (RFC
    /// 8200 §8.1).
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = &self.buffer.as_ref()[..self.len()];
        self.checksum() != 0 && checksum::fold(checksum::sum(b, self.pseudo_v6(src, dst))) == 0xffff
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpDatagram<T> {
    #[inline]
    fn patch_checksum(&mut self, f: impl FnOnce(u16) -> u16) {
        let c = self.checksum();
        if c != 0 {
            put16(self.buffer.as_mut(), field::CHECKSUM, on_wire(f(c)));
        }
    }

    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        let old = self.src_port();
        put16(self.buffer.as_mut(), field::SRC_PORT, port);
        self.patch_checksum(|c| checksum::update16(c, old, port));
    }

    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        let old = self.dst_port();
        put16(self.buffer.as_mut(), field::DST_PORT, port);
        self.patch_checksum(|c| checksum::update16(c, old, port));
    }

    /// Patches the checksum for a NAT rewrite of one pseudo-header address.
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        self.patch_checksum(|c| checksum::update32(c, u32::from(old), u32::from(new)));
    }

    /// [`Self::update_checksum_for_addr`] for an IPv6 address.
    #[inline]
    pub fn update_checksum_for_addr_v6(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        self.patch_checksum(|c| checksum::apply_delta(c, checksum::delta_v6(old, new)));
    }

    #[inline]
    fn fill_checksum(&mut self, pseudo: u32) {
        put16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let len = self.len();
        let c = !checksum::fold(checksum::sum(&self.buffer.as_ref()[..len], pseudo));
        put16(self.buffer.as_mut(), field::CHECKSUM, on_wire(c));
    }

    /// Computes the checksum over the pseudo-header and `len()` bytes.
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let ph = self.pseudo_v4(src, dst);
        self.fill_checksum(ph);
    }

    /// [`Self::fill_checksum_v4`] over IPv6.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let ph = self.pseudo_v6(src, dst);
        self.fill_checksum(ph);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.len();
        &mut self.buffer.as_mut()[HEADER_LEN..len]
    }
}

/// Fields of a UDP header, as [`write_header`] writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    /// Header plus payload, in bytes.
    pub len: u16,
}

/// Writes an 8-byte UDP header with a zero checksum at the start of `buf`
/// (fill it with [`UdpDatagram::fill_checksum_v4`]); `Truncated` when `buf`
/// is shorter.
pub fn write_header(buf: &mut [u8], h: &UdpHeader) -> Result<(), WireError> {
    let b = buf.get_mut(..HEADER_LEN).ok_or(WireError::Truncated)?;
    put16(b, field::SRC_PORT, h.src_port);
    put16(b, field::DST_PORT, h.dst_port);
    put16(b, field::LENGTH, h.len);
    put16(b, field::CHECKSUM, 0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EthernetFrame, Ipv4Packet, XorShift};
    use etherparse::{Ipv4Header, PacketBuilder, UdpHeader};

    /// Ethernet+IPv4+UDP frame built by etherparse (checksum filled in).
    fn random_frame(rng: &mut XorShift) -> (Vec<u8>, u16, u16, Vec<u8>) {
        let (sp, dp) = (rng.next_u16(), rng.next_u16());
        let payload = {
            let n = usize::from(rng.next_u16() % 40);
            rng.bytes(n)
        };
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(
                rng.next_u32().to_be_bytes(),
                rng.next_u32().to_be_bytes(),
                64,
            )
            .udp(sp, dp)
            .write(&mut out, &payload)
            .unwrap();
        (out, sp, dp, payload)
    }

    fn ip_and_udp(frame: &mut [u8]) -> (Ipv4Addr, Ipv4Addr, &mut [u8]) {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(&mut eth.into_inner()[14..]).unwrap();
        let (s, d) = (ip.src(), ip.dst());
        let hl = ip.header_len();
        let tl = ip.total_len();
        (s, d, &mut ip.into_inner()[hl..tl])
    }

    /// Checks the stored checksum against a full recomputation and etherparse.
    fn assert_consistent(src: Ipv4Addr, dst: Ipv4Addr, seg: &[u8]) {
        let u = UdpDatagram::new_checked(seg).unwrap();
        let stored = u.checksum();
        let mut copy = seg.to_vec();
        UdpDatagram::new_checked(&mut copy[..])
            .unwrap()
            .fill_checksum_v4(src, dst);
        assert_eq!(stored, get16(&copy, field::CHECKSUM));
        let (h, payload) = UdpHeader::from_slice(seg).unwrap();
        let ep = h
            .calc_checksum_ipv4_raw(src.octets(), dst.octets(), payload)
            .unwrap();
        assert_eq!(stored, ep);
        assert_ne!(stored, 0);
    }

    #[test]
    fn reads_etherparse_datagrams() {
        let mut rng = XorShift(0x0d9);
        for _ in 0..200 {
            let (mut out, sp, dp, payload) = random_frame(&mut rng);
            let (_, _, seg) = ip_and_udp(&mut out);
            let u = UdpDatagram::new_checked(&*seg).unwrap();
            assert_eq!((u.src_port(), u.dst_port()), (sp, dp));
            assert_eq!(u.len(), 8 + payload.len());
            assert_eq!(u.is_empty(), payload.is_empty());
            assert_eq!(u.payload(), &payload[..]);
            let (h, _) = UdpHeader::from_slice(seg).unwrap();
            assert_eq!(u.checksum(), h.checksum);
        }
    }

    #[test]
    fn rejects_every_malformation() {
        let mut rng = XorShift(0xd0d);
        for _ in 0..30 {
            let (mut out, ..) = random_frame(&mut rng);
            let (_, _, seg) = ip_and_udp(&mut out);
            for len in 0..seg.len() {
                let expect = if len < 8 {
                    WireError::Truncated
                } else {
                    WireError::BadTotalLen
                };
                assert_eq!(UdpDatagram::new_checked(&seg[..len]).err(), Some(expect));
            }
            for bad_len in 0..8u16 {
                let mut bad = seg.to_vec();
                bad[4..6].copy_from_slice(&bad_len.to_be_bytes());
                assert_eq!(
                    UdpDatagram::new_checked(&bad[..]).err(),
                    Some(WireError::BadTotalLen)
                );
            }
        }
    }

    #[test]
    fn incremental_setters_match_full_and_etherparse() {
        let mut rng = XorShift(0xacdc);
        for _ in 0..1000 {
            let (mut out, ..) = random_frame(&mut rng);
            let (src, dst, seg) = ip_and_udp(&mut out);
            let mut u = UdpDatagram::new_checked(&mut *seg).unwrap();
            let (p1, p2) = (rng.next_u16(), rng.next_u16());
            u.set_src_port(p1);
            u.set_dst_port(p2);
            assert_eq!((u.src_port(), u.dst_port()), (p1, p2));
            assert_consistent(src, dst, seg);
            let new_dst = Ipv4Addr::from(rng.next_u32());
            UdpDatagram::new_checked(&mut *seg)
                .unwrap()
                .update_checksum_for_addr(dst, new_dst);
            assert_consistent(src, new_dst, seg);
            let new_src = Ipv4Addr::from(rng.next_u32());
            UdpDatagram::new_checked(&mut *seg)
                .unwrap()
                .update_checksum_for_addr(src, new_src);
            assert_consistent(new_src, new_dst, seg);
        }
    }

    #[test]
    fn zero_checksum_means_none_and_stays_zero() {
        let mut rng = XorShift(0x2e0);
        for _ in 0..100 {
            let (mut out, ..) = random_frame(&mut rng);
            let (src, _, seg) = ip_and_udp(&mut out);
            put16(seg, field::CHECKSUM, 0);
            let mut u = UdpDatagram::new_checked(&mut *seg).unwrap();
            u.set_src_port(rng.next_u16());
            u.set_dst_port(rng.next_u16());
            u.update_checksum_for_addr(src, Ipv4Addr::from(rng.next_u32()));
            assert_eq!(u.checksum(), 0);
        }
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Choose a source port that makes the one's complement sum 0xffff,
        // i.e. a computed checksum of 0, then check both the full and the
        // incremental paths emit 0xffff (RFC 768) rather than 0.
        let mut rng = XorShift(0xffff_0000_1234);
        for _ in 0..200 {
            let (mut out, ..) = random_frame(&mut rng);
            let (src, dst, seg) = ip_and_udp(&mut out);
            put16(seg, field::SRC_PORT, 0);
            put16(seg, field::CHECKSUM, 0);
            let len = seg.len() as u16;
            let rest = checksum::fold(checksum::sum(
                seg,
                checksum::pseudo_header_v4(src, dst, ip_proto::UDP, len),
            ));
            let port = !rest;
            let mut u = UdpDatagram::new_checked(&mut *seg).unwrap();
            u.fill_checksum_v4(src, dst);
            let before = u.checksum();
            u.set_src_port(port);
            assert_eq!(u.checksum(), 0xffff, "incremental path");
            let mut full = seg.to_vec();
            UdpDatagram::new_checked(&mut full[..])
                .unwrap()
                .fill_checksum_v4(src, dst);
            assert_eq!(get16(&full, field::CHECKSUM), 0xffff, "full path");
            assert_ne!(before, 0);
            let ip = Ipv4Header::new(
                len,
                64,
                etherparse::IpNumber(17),
                src.octets(),
                dst.octets(),
            )
            .unwrap();
            let (h, payload) = UdpHeader::from_slice(seg).unwrap();
            assert_eq!(h.calc_checksum_ipv4(&ip, payload).unwrap(), 0xffff);
        }
    }

    #[test]
    fn written_header_checksums_like_etherparse() {
        let mut rng = XorShift(0x0d9);
        for _ in 0..50 {
            let n = usize::from(rng.next_u16() % 64);
            let payload = rng.bytes(n);
            let (src, dst) = (
                Ipv4Addr::from(rng.next_u32()),
                Ipv4Addr::from(rng.next_u32()),
            );
            let h = super::UdpHeader {
                src_port: rng.next_u16(),
                dst_port: rng.next_u16(),
                len: (8 + payload.len()) as u16,
            };
            let mut seg = vec![0xaa; 8];
            write_header(&mut seg, &h).unwrap();
            seg.extend_from_slice(&payload);
            let mut d = UdpDatagram::new_checked(&mut seg[..]).unwrap();
            d.fill_checksum_v4(src, dst);
            let (stored, sport, dport) = (d.checksum(), d.src_port(), d.dst_port());
            assert_eq!((sport, dport), (h.src_port, h.dst_port));
            let want = UdpHeader::with_ipv4_checksum(
                h.src_port,
                h.dst_port,
                &Ipv4Header::new(0, 64, etherparse::IpNumber(17), src.octets(), dst.octets())
                    .unwrap(),
                &payload,
            )
            .unwrap()
            .checksum;
            assert_eq!(stored, want);
        }
        assert_eq!(
            write_header(
                &mut [0u8; 7],
                &super::UdpHeader {
                    src_port: 1,
                    dst_port: 2,
                    len: 8
                }
            ),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn ipv6_checksums_agree_with_etherparse() {
        let mut rng = XorShift(0x6017);
        for _ in 0..200 {
            let mut o = [[0u8; 16]; 2];
            o[0].copy_from_slice(&rng.bytes(16));
            o[1].copy_from_slice(&rng.bytes(16));
            let (src, dst) = (Ipv6Addr::from(o[0]), Ipv6Addr::from(o[1]));
            let n = usize::from(rng.next_u16() % 60);
            let payload = rng.bytes(n);
            let mut p = Vec::new();
            PacketBuilder::ipv6(o[0], o[1], 64)
                .udp(rng.next_u16(), rng.next_u16())
                .write(&mut p, &payload)
                .unwrap();
            let seg = &mut p[40..];
            let v = UdpDatagram::new_checked(&*seg).unwrap();
            assert!(v.verify_checksum_v6(src, dst));
            assert!(!v.has_partial_checksum_v6(src, dst));
            let stored = v.checksum();
            let other = Ipv6Addr::from(u128::from(dst) ^ 0x100);
            assert!(!v.verify_checksum_v6(src, other));
            seg[6..8].copy_from_slice(&[0x12, 0x34]);
            let mut v = UdpDatagram::new_checked(&mut *seg).unwrap();
            v.fill_checksum_v6(src, dst);
            assert_eq!(v.checksum(), stored);
            let moved = Ipv6Addr::from(u128::from(dst).rotate_left(17));
            v.update_checksum_for_addr_v6(dst, moved);
            assert!(v.verify_checksum_v6(src, moved));
            // IPv6 makes the UDP checksum mandatory: zero never verifies.
            let mut none = seg.to_vec();
            none[6..8].fill(0);
            assert!(!UdpDatagram::new_checked(&none[..])
                .unwrap()
                .verify_checksum_v6(src, dst));
        }
    }
}
