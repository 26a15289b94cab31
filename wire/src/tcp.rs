//! TCP segments (RFC 9293).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::{BitAnd, BitOr, BitOrAssign, Not};

use crate::checksum;
use crate::{get16, get32, ip_proto, put16, put32, WireError};

/// The TCP flag byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// True when every flag in `other` is set.
    #[inline]
    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    #[inline]
    pub fn bits(self) -> u8 {
        self.0
    }

    /// A SYN without ACK: the first segment of a new connection.
    #[inline]
    pub fn is_new_connection(self) -> bool {
        self.contains(TcpFlags::SYN) && !self.contains(TcpFlags::ACK)
    }

    /// False for flag combinations no conforming stack sends, which are
    /// scans or attacks. The rule (PSH, ECE and CWR are ignored since they
    /// are legal on any segment):
    /// - at least one of SYN, ACK, RST (excludes NULL and FIN/xmas scans);
    /// - SYN never with FIN or RST;
    /// - RST never with FIN;
    /// - FIN and URG only with ACK (a FIN or urgent data is only sent on an
    ///   established, acknowledging connection).
    #[inline]
    pub fn is_valid_combination(self) -> bool {
        let f = |x: TcpFlags| self.contains(x);
        let core = f(Self::SYN) || f(Self::ACK) || f(Self::RST);
        let syn_ok = !f(Self::SYN) || !(f(Self::FIN) || f(Self::RST));
        let rst_ok = !(f(Self::RST) && f(Self::FIN));
        let ack_needed = (f(Self::FIN) || f(Self::URG)) && !f(Self::ACK);
        core && syn_ok && rst_ok && !ack_needed
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    #[inline]
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0
    }
}

impl BitAnd for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl Not for TcpFlags {
    type Output = TcpFlags;
    #[inline]
    fn not(self) -> TcpFlags {
        TcpFlags(!self.0)
    }
}

impl fmt::Debug for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("(none)")?;
        }
        Ok(())
    }
}

/// A view over a TCP segment. The buffer is the whole segment (the IP
/// payload), since the checksum covers all of it.
#[derive(Debug, Clone)]
pub struct TcpSegment<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    use crate::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const SEQ: Field = 4..8;
    pub const ACK: Field = 8..12;
    /// Header length in 32-bit words (high nibble).
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Field = 14..16;
    pub const CHECKSUM: Field = 16..18;
    pub const URGENT: Field = 18..20;
}

const MIN_LEN: usize = field::URGENT.end;

impl<T: AsRef<[u8]>> TcpSegment<T> {
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < MIN_LEN {
            return Err(WireError::Truncated);
        }
        let hl = usize::from(b[field::DATA_OFF] >> 4) * 4;
        if hl < MIN_LEN || hl > b.len() {
            return Err(WireError::BadHeaderLen);
        }
        Ok(TcpSegment { buffer })
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

    #[inline]
    pub fn seq(&self) -> u32 {
        get32(self.buffer.as_ref(), field::SEQ)
    }

    #[inline]
    pub fn ack(&self) -> u32 {
        get32(self.buffer.as_ref(), field::ACK)
    }

    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    #[inline]
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    #[inline]
    pub fn window(&self) -> u16 {
        get16(self.buffer.as_ref(), field::WINDOW)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Pseudo-header sums over the whole buffer, which must be exactly the
    /// segment (at most 65535 bytes, which any IPv4 payload is).
    #[inline]
    fn pseudo_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u32 {
        let len = self.buffer.as_ref().len() as u16;
        checksum::pseudo_header_v4(src, dst, ip_proto::TCP, len)
    }

    #[inline]
    fn pseudo_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u32 {
        let len = self.buffer.as_ref().len() as u32;
        checksum::pseudo_header_v6(src, dst, ip_proto::TCP, len)
    }

    /// Whether the checksum is left for the NIC to finish (see
    /// [`checksum::is_partial`]); the buffer must be exactly the IP payload.
    #[inline]
    pub fn has_partial_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        checksum::is_partial(self.checksum(), self.pseudo_v4(src, dst))
    }

    /// [`Self::has_partial_checksum_v4`] over IPv6; the buffer must be
    /// exactly the segment, after any extension headers.
    #[inline]
    pub fn has_partial_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum::is_partial(self.checksum(), self.pseudo_v6(src, dst))
    }

    /// True when the checksum over the pseudo-header and the whole buffer
    /// (exactly the segment) is correct.
    #[inline]
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let ph = self.pseudo_v6(src, dst);
        checksum::fold(checksum::sum(self.buffer.as_ref(), ph)) == 0xffff
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpSegment<T> {
    #[inline]
    fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM, c)
    }

    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        let old = self.src_port();
        put16(self.buffer.as_mut(), field::SRC_PORT, port);
        let c = checksum::update16(self.checksum(), old, port);
        self.set_checksum(c);
    }

    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        let old = self.dst_port();
        put16(self.buffer.as_mut(), field::DST_PORT, port);
        let c = checksum::update16(self.checksum(), old, port);
        self.set_checksum(c);
    }

    /// Patches the checksum for a NAT rewrite of one pseudo-header address.
    #[inline]
    pub fn update_checksum_for_addr(&mut self, old: Ipv4Addr, new: Ipv4Addr) {
        let c = checksum::update32(self.checksum(), u32::from(old), u32::from(new));
        self.set_checksum(c);
    }

    /// [`Self::update_checksum_for_addr`] for an IPv6 address.
    #[inline]
    pub fn update_checksum_for_addr_v6(&mut self, old: Ipv6Addr, new: Ipv6Addr) {
        let c = checksum::apply_delta(self.checksum(), checksum::delta_v6(old, new));
        self.set_checksum(c);
    }

    #[inline]
    fn fill_checksum(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let c = !checksum::fold(checksum::sum(self.buffer.as_ref(), pseudo));
        self.set_checksum(c);
    }

    /// Computes the checksum over the pseudo-header and the whole buffer, so
    /// the buffer must be exactly the IP payload (at most 65535 bytes, which
    /// any IPv4 payload is).
    #[inline]
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let ph = self.pseudo_v4(src, dst);
        self.fill_checksum(ph);
    }

    /// [`Self::fill_checksum_v4`] over IPv6: the buffer must be exactly the
    /// segment, after any extension headers.
    #[inline]
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let ph = self.pseudo_v6(src, dst);
        self.fill_checksum(ph);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

/// Fields of a TCP header without options, as [`write_header`] writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    pub window: u16,
}

/// Writes a 20-byte TCP header (no options, urgent pointer 0) with a zero
/// checksum at the start of `buf` (fill it with
/// [`TcpSegment::fill_checksum_v4`]); `Truncated` when `buf` is shorter.
pub fn write_header(buf: &mut [u8], h: &TcpHeader) -> Result<(), WireError> {
    let b = buf.get_mut(..MIN_LEN).ok_or(WireError::Truncated)?;
    b.fill(0);
    put16(b, field::SRC_PORT, h.src_port);
    put16(b, field::DST_PORT, h.dst_port);
    put32(b, field::SEQ, h.seq);
    put32(b, field::ACK, h.ack);
    // Five 32-bit words.
    b[field::DATA_OFF] = ((MIN_LEN / 4) as u8) << 4;
    b[field::FLAGS] = h.flags.bits();
    put16(b, field::WINDOW, h.window);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EthernetFrame, Ipv4Packet, XorShift};
    use etherparse::{PacketBuilder, TcpHeader, TcpOptionElement};

    struct Built {
        frame: Vec<u8>,
        sp: u16,
        dp: u16,
        seq: u32,
        ack: u32,
        win: u16,
        flags: TcpFlags,
        payload: Vec<u8>,
    }

    fn random_frame(rng: &mut XorShift) -> Built {
        let (sp, dp, seq, win) = (
            rng.next_u16(),
            rng.next_u16(),
            rng.next_u32(),
            rng.next_u16(),
        );
        let ack = rng.next_u32();
        let payload = {
            let n = usize::from(rng.next_u16() % 50);
            rng.bytes(n)
        };
        let mut b = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(
                rng.next_u32().to_be_bytes(),
                rng.next_u32().to_be_bytes(),
                64,
            )
            .tcp(sp, dp, seq, win);
        let mut flags = TcpFlags(0);
        let pick = rng.next_u16();
        if pick & 1 != 0 {
            b = b.syn();
            flags |= TcpFlags::SYN;
        }
        if pick & 2 != 0 {
            b = b.ack(ack);
            flags |= TcpFlags::ACK;
        }
        if pick & 4 != 0 {
            b = b.fin();
            flags |= TcpFlags::FIN;
        }
        if pick & 8 != 0 {
            b = b.psh();
            flags |= TcpFlags::PSH;
        }
        if pick & 16 != 0 {
            b = b
                .options(&[
                    TcpOptionElement::MaximumSegmentSize(1460),
                    TcpOptionElement::WindowScale(7),
                ])
                .unwrap();
        }
        let mut frame = Vec::new();
        b.write(&mut frame, &payload).unwrap();
        let ack = if flags.contains(TcpFlags::ACK) {
            ack
        } else {
            0
        };
        Built {
            frame,
            sp,
            dp,
            seq,
            ack,
            win,
            flags,
            payload,
        }
    }

    fn ip_and_tcp(frame: &mut [u8]) -> (Ipv4Addr, Ipv4Addr, &mut [u8]) {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(&mut eth.into_inner()[14..]).unwrap();
        let (s, d, hl, tl) = (ip.src(), ip.dst(), ip.header_len(), ip.total_len());
        (s, d, &mut ip.into_inner()[hl..tl])
    }

    fn assert_consistent(src: Ipv4Addr, dst: Ipv4Addr, seg: &[u8]) {
        let stored = TcpSegment::new_checked(seg).unwrap().checksum();
        let mut copy = seg.to_vec();
        TcpSegment::new_checked(&mut copy[..])
            .unwrap()
            .fill_checksum_v4(src, dst);
        assert_eq!(stored, get16(&copy, field::CHECKSUM));
        let (h, payload) = TcpHeader::from_slice(seg).unwrap();
        let ep = h
            .calc_checksum_ipv4_raw(src.octets(), dst.octets(), payload)
            .unwrap();
        assert_eq!(stored, ep);
    }

    #[test]
    fn reads_etherparse_segments() {
        let mut rng = XorShift(0x7c9);
        for _ in 0..300 {
            let mut b = random_frame(&mut rng);
            let (src, dst, seg) = ip_and_tcp(&mut b.frame);
            let t = TcpSegment::new_checked(&*seg).unwrap();
            assert_eq!((t.src_port(), t.dst_port()), (b.sp, b.dp));
            assert_eq!((t.seq(), t.ack(), t.window()), (b.seq, b.ack, b.win));
            assert_eq!(t.flags(), b.flags);
            let (h, _) = TcpHeader::from_slice(seg).unwrap();
            assert_eq!(t.header_len(), h.header_len());
            assert_eq!(t.checksum(), h.checksum);
            assert_eq!(t.payload(), &b.payload[..]);
            assert_consistent(src, dst, seg);
        }
    }

    #[test]
    fn rejects_every_malformation() {
        let mut rng = XorShift(0x7bad);
        for _ in 0..30 {
            let mut b = random_frame(&mut rng);
            let (_, _, seg) = ip_and_tcp(&mut b.frame);
            let hl = usize::from(seg[12] >> 4) * 4;
            for len in 0..hl {
                let expect = if len < 20 {
                    WireError::Truncated
                } else {
                    WireError::BadHeaderLen
                };
                assert_eq!(TcpSegment::new_checked(&seg[..len]).err(), Some(expect));
            }
            for off in 0..5u8 {
                let mut bad = seg.to_vec();
                bad[12] = off << 4;
                assert_eq!(
                    TcpSegment::new_checked(&bad[..]).err(),
                    Some(WireError::BadHeaderLen)
                );
            }
            let mut bad = seg.to_vec();
            bad.truncate(hl);
            bad[12] = ((hl / 4 + 1) as u8) << 4;
            assert_eq!(
                TcpSegment::new_checked(&bad[..]).err(),
                Some(WireError::BadHeaderLen)
            );
        }
    }

    #[test]
    fn incremental_setters_match_full_and_etherparse() {
        let mut rng = XorShift(0x7e57);
        for _ in 0..1000 {
            let mut b = random_frame(&mut rng);
            let (src, dst, seg) = ip_and_tcp(&mut b.frame);
            let (p1, p2) = (rng.next_u16(), rng.next_u16());
            let mut t = TcpSegment::new_checked(&mut *seg).unwrap();
            t.set_src_port(p1);
            assert_eq!(t.src_port(), p1);
            assert_consistent(src, dst, seg);
            let mut t = TcpSegment::new_checked(&mut *seg).unwrap();
            t.set_dst_port(p2);
            assert_eq!(t.dst_port(), p2);
            assert_consistent(src, dst, seg);
            let new_src = Ipv4Addr::from(rng.next_u32());
            TcpSegment::new_checked(&mut *seg)
                .unwrap()
                .update_checksum_for_addr(src, new_src);
            assert_consistent(new_src, dst, seg);
            let new_dst = Ipv4Addr::from(rng.next_u32());
            TcpSegment::new_checked(&mut *seg)
                .unwrap()
                .update_checksum_for_addr(dst, new_dst);
            assert_consistent(new_src, new_dst, seg);
        }
    }

    #[test]
    fn flag_combinations_follow_the_documented_rule() {
        use TcpFlags as F;
        let valid = [
            F::SYN,
            F::SYN | F::ACK,
            F::SYN | F::ECE | F::CWR,
            F::ACK,
            F::ACK | F::PSH,
            F::FIN | F::ACK,
            F::FIN | F::ACK | F::PSH,
            F::RST,
            F::RST | F::ACK,
            F::ACK | F::URG | F::PSH,
        ];
        let invalid = [
            TcpFlags(0),
            F::FIN,
            F::PSH,
            F::URG,
            F::FIN | F::PSH | F::URG,
            F::SYN | F::FIN,
            F::SYN | F::RST,
            F::SYN | F::FIN | F::ACK,
            F::RST | F::FIN,
            F::RST | F::FIN | F::ACK,
            F::SYN | F::URG,
            TcpFlags(0xff),
        ];
        for v in valid {
            assert!(v.is_valid_combination(), "{v:?}");
        }
        for v in invalid {
            assert!(!v.is_valid_combination(), "{v:?}");
        }
        // Exhaustive cross-check of the rule written a second way.
        for bits in 0..=255u8 {
            let f = TcpFlags(bits);
            let has = |x: TcpFlags| bits & x.0 != 0;
            let expect = (has(F::SYN) || has(F::ACK) || has(F::RST))
                && !(has(F::SYN) && has(F::FIN))
                && !(has(F::SYN) && has(F::RST))
                && !(has(F::RST) && has(F::FIN))
                && (has(F::ACK) || !(has(F::FIN) || has(F::URG)));
            assert_eq!(f.is_valid_combination(), expect, "{f:?}");
        }
    }

    #[test]
    fn flag_ops() {
        let f = TcpFlags::SYN | TcpFlags::ACK;
        assert!(f.contains(TcpFlags::SYN) && f.contains(TcpFlags::ACK));
        assert!(!f.contains(TcpFlags::SYN | TcpFlags::FIN));
        assert_eq!((f & TcpFlags::ACK).bits(), TcpFlags::ACK.bits());
        assert_eq!((f & !TcpFlags::SYN), TcpFlags::ACK);
        assert_eq!(format!("{f:?}"), "SYN|ACK");
    }

    #[test]
    fn written_header_reads_back_and_checksums_like_etherparse() {
        let mut rng = XorShift(0x7c9);
        for _ in 0..50 {
            let (src, dst) = (
                Ipv4Addr::from(rng.next_u32()),
                Ipv4Addr::from(rng.next_u32()),
            );
            let h = super::TcpHeader {
                src_port: rng.next_u16(),
                dst_port: rng.next_u16(),
                seq: rng.next_u32(),
                ack: rng.next_u32(),
                flags: TcpFlags(rng.next_u16() as u8),
                window: rng.next_u16(),
            };
            let mut seg = vec![0xaa; 20];
            write_header(&mut seg, &h).unwrap();
            let mut t = TcpSegment::new_checked(&mut seg[..]).unwrap();
            t.fill_checksum_v4(src, dst);
            assert_eq!((t.src_port(), t.dst_port()), (h.src_port, h.dst_port));
            assert_eq!((t.seq(), t.ack(), t.window()), (h.seq, h.ack, h.window));
            assert_eq!((t.header_len(), t.flags()), (20, h.flags));
            let stored = t.checksum();
            let (parsed, _) = TcpHeader::from_slice(&seg).unwrap();
            let want = parsed
                .calc_checksum_ipv4_raw(src.octets(), dst.octets(), &[])
                .unwrap();
            assert_eq!(stored, want);
        }
        assert_eq!(
            write_header(
                &mut [0u8; 19],
                &super::TcpHeader {
                    src_port: 1,
                    dst_port: 2,
                    seq: 0,
                    ack: 0,
                    flags: TcpFlags::SYN,
                    window: 0,
                }
            ),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn ipv6_checksums_agree_with_etherparse() {
        let mut rng = XorShift(0x6070);
        for _ in 0..200 {
            let mut o = [[0u8; 16]; 2];
            o[0].copy_from_slice(&rng.bytes(16));
            o[1].copy_from_slice(&rng.bytes(16));
            let (src, dst) = (Ipv6Addr::from(o[0]), Ipv6Addr::from(o[1]));
            let n = usize::from(rng.next_u16() % 60);
            let payload = rng.bytes(n);
            let mut p = Vec::new();
            PacketBuilder::ipv6(o[0], o[1], 64)
                .tcp(
                    rng.next_u16(),
                    rng.next_u16(),
                    rng.next_u32(),
                    rng.next_u16(),
                )
                .write(&mut p, &payload)
                .unwrap();
            let seg = &mut p[40..];
            let v = TcpSegment::new_checked(&*seg).unwrap();
            assert!(v.verify_checksum_v6(src, dst));
            assert!(!v.has_partial_checksum_v6(src, dst));
            let stored = v.checksum();
            let other = Ipv6Addr::from(u128::from(dst) ^ 0x100);
            assert!(!v.verify_checksum_v6(src, other));
            seg[16..18].copy_from_slice(&[0x12, 0x34]);
            let mut v = TcpSegment::new_checked(&mut *seg).unwrap();
            v.fill_checksum_v6(src, dst);
            assert_eq!(v.checksum(), stored);
            let moved = Ipv6Addr::from(u128::from(dst).rotate_left(17));
            v.update_checksum_for_addr_v6(dst, moved);
            assert!(v.verify_checksum_v6(src, moved));
        }
    }
}
