//! ICMPv6 messages (RFC 4443), and the echo replies and error messages vipd
//! sends.

use std::net::Ipv6Addr;

use crate::checksum;
use crate::ipv6::{write_header, Ipv6Header};
use crate::{get16, get32, ip_proto, put16, put32, Ipv6Packet, WireError};

/// The IPv6 minimum link MTU (RFC 8200 §5): no ICMPv6 error vipd sends is
/// longer (RFC 4443 §2.4(c)).
pub const MIN_MTU: usize = 1280;

/// ICMPv6 message types vipd recognises.
pub mod icmpv6_type {
    pub const DEST_UNREACH: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;
}

/// A view over an ICMPv6 message; the buffer is the whole message (the
/// upper-layer payload), since the checksum covers all of it.
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    use crate::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// The type-specific word: the MTU of Packet Too Big, the pointer of
    /// Parameter Problem, unused in the other errors.
    pub const WORD: Field = 4..8;
    /// Echo identifier and sequence number, in the same word.
    pub const IDENT: Field = 4..6;
    pub const SEQ_NO: Field = 6..8;
}

const HEADER_LEN: usize = field::WORD.end;

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Every ICMPv6 message has the 8-byte header; longer minimums of
    /// particular types are their views' to check.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv6Packet { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    #[inline]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        get16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Echo identifier; meaningless for other types.
    #[inline]
    pub fn ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::IDENT)
    }

    /// Echo sequence number; meaningless for other types.
    #[inline]
    pub fn seq_no(&self) -> u16 {
        get16(self.buffer.as_ref(), field::SEQ_NO)
    }

    /// The MTU of a Packet Too Big message; meaningless for other types.
    #[inline]
    pub fn mtu(&self) -> u32 {
        get32(self.buffer.as_ref(), field::WORD)
    }

    /// The offending octet's offset in a Parameter Problem message;
    /// meaningless for other types.
    #[inline]
    pub fn pointer(&self) -> u32 {
        get32(self.buffer.as_ref(), field::WORD)
    }

    /// True for error messages: RFC 4443 §2.1 gives them the types below
    /// 128.
    #[inline]
    pub fn is_error(&self) -> bool {
        self.msg_type() < icmpv6_type::ECHO_REQUEST
    }

    /// The quoted start of the packet that caused an error message, or
    /// `None` for informational types.
    #[inline]
    pub fn invoking_packet(&self) -> Option<&[u8]> {
        self.is_error().then(|| self.payload())
    }

    /// True when the checksum over the pseudo-header and the whole buffer is
    /// correct.
    #[inline]
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        checksum::fold(checksum::sum(b, pseudo(src, dst, b))) == 0xffff
    }

    /// Bytes after the 8-byte header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

/// The pseudo-header of message `b`; a message longer than `u32::MAX`
/// cannot be in an IPv6 packet, so the cast loses nothing real.
#[inline]
fn pseudo(src: Ipv6Addr, dst: Ipv6Addr, b: &[u8]) -> u32 {
    checksum::pseudo_header_v6(src, dst, ip_proto::ICMPV6, b.len() as u32)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the type without touching the checksum (call `fill_checksum`).
    #[inline]
    pub fn set_msg_type(&mut self, t: u8) {
        self.buffer.as_mut()[field::TYPE] = t
    }

    /// Sets the code without touching the checksum (call `fill_checksum`).
    #[inline]
    pub fn set_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c
    }

    /// Sets the type-specific word (MTU, pointer) without touching the
    /// checksum.
    #[inline]
    pub fn set_word(&mut self, w: u32) {
        put32(self.buffer.as_mut(), field::WORD, w)
    }

    /// Recomputes the checksum over the pseudo-header and the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        put16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let b = self.buffer.as_ref();
        let c = !checksum::fold(checksum::sum(b, pseudo(src, dst, b)));
        put16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// Writes an IPv6 packet carrying the ICMPv6 `msg` (its checksum filled) at
/// the start of `buf`, and returns its length; `Truncated` if `buf` is
/// shorter. `fill` writes the message into the bytes after the header.
fn write_message(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    msg_len: usize,
    fill: impl FnOnce(&mut Icmpv6Packet<&mut [u8]>),
) -> Result<usize, WireError> {
    let payload_len = u16::try_from(msg_len).map_err(|_| WireError::BadTotalLen)?;
    let end = Ipv6Packet::<&[u8]>::HEADER_LEN + msg_len;
    let b = buf.get_mut(..end).ok_or(WireError::Truncated)?;
    let at = write_header(
        b,
        &Ipv6Header {
            src,
            dst,
            next_header: ip_proto::ICMPV6,
            hop_limit,
            traffic_class: 0,
            payload_len,
        },
    )?;
    let mut msg = Icmpv6Packet::new_checked(&mut b[at..])?;
    fill(&mut msg);
    msg.fill_checksum(src, dst);
    Ok(end)
}

/// Writes the Echo Reply to the IPv6 packet `request` (an Echo Request,
/// after any extension headers, whose checksum the caller has verified) at
/// the start of `buf`: addresses swapped, extension headers dropped, same
/// identifier, sequence number and data. Returns its length; `Unsupported`
/// when `request` is not an Echo Request or was sent to a multicast address
/// (whose reply needs a unicast source the caller picks), `Truncated` when
/// `buf` is too short.
pub fn write_echo_reply(buf: &mut [u8], request: &[u8], hop_limit: u8) -> Result<usize, WireError> {
    let ip = Ipv6Packet::new_checked(request)?;
    let upper = ip.upper_layer().map_err(|_| WireError::Unsupported)?;
    if upper.protocol != ip_proto::ICMPV6 || ip.dst().is_multicast() {
        return Err(WireError::Unsupported);
    }
    let echo = Icmpv6Packet::new_checked(&ip.payload()[upper.offset..])?;
    if echo.msg_type() != icmpv6_type::ECHO_REQUEST || echo.code() != 0 {
        return Err(WireError::Unsupported);
    }
    let body = echo.into_inner();
    write_message(buf, ip.dst(), ip.src(), hop_limit, body.len(), |m| {
        m.buffer.copy_from_slice(body);
        m.set_msg_type(icmpv6_type::ECHO_REPLY);
    })
}

/// An ICMPv6 error message vipd sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmpv6Error {
    DestUnreachable { code: u8 },
    PacketTooBig { mtu: u32 },
    TimeExceeded { code: u8 },
    ParamProblem { code: u8, pointer: u32 },
}

impl Icmpv6Error {
    /// Parameter Problem code for an unrecognised option.
    pub const UNRECOGNIZED_OPTION: u8 = 2;

    fn type_code_word(&self) -> (u8, u8, u32) {
        match *self {
            Icmpv6Error::DestUnreachable { code } => (icmpv6_type::DEST_UNREACH, code, 0),
            Icmpv6Error::PacketTooBig { mtu } => (icmpv6_type::PACKET_TOO_BIG, 0, mtu),
            Icmpv6Error::TimeExceeded { code } => (icmpv6_type::TIME_EXCEEDED, code, 0),
            Icmpv6Error::ParamProblem { code, pointer } => {
                (icmpv6_type::PARAM_PROBLEM, code, pointer)
            }
        }
    }

    /// RFC 4443 §2.4(e.3): only these may answer a packet sent to a
    /// multicast address.
    fn may_answer_multicast(&self) -> bool {
        matches!(
            *self,
            Icmpv6Error::PacketTooBig { .. }
                | Icmpv6Error::ParamProblem {
                    code: Self::UNRECOGNIZED_OPTION,
                    ..
                }
        )
    }
}

/// Writes the IPv6 packet carrying error `err` about the IPv6 packet
/// `invoking`, from `src` to the invoking packet's source, at the start of
/// `buf`, and returns its length. It quotes as much of the invoking packet
/// as fits in `buf` and in [`MIN_MTU`], at least its fixed header
/// (`Truncated` otherwise). `Unsupported` when RFC 4443 §2.4(e) forbids the
/// error: the invoking packet is itself an ICMPv6 error, came from an
/// unspecified or multicast address, or went to a multicast address (but
/// for Packet Too Big and unrecognised options).
pub fn write_icmpv6_error(
    buf: &mut [u8],
    src: Ipv6Addr,
    hop_limit: u8,
    err: &Icmpv6Error,
    invoking: &[u8],
) -> Result<usize, WireError> {
    let ip = Ipv6Packet::new_checked(invoking)?;
    let to = ip.src();
    if to.is_unspecified() || to.is_multicast() {
        return Err(WireError::Unsupported);
    }
    if ip.dst().is_multicast() && !err.may_answer_multicast() {
        return Err(WireError::Unsupported);
    }
    if let Ok(up) = ip.upper_layer() {
        let about_error = up.protocol == ip_proto::ICMPV6
            && ip
                .payload()
                .get(up.offset)
                .is_some_and(|&t| t < icmpv6_type::ECHO_REQUEST);
        if about_error {
            return Err(WireError::Unsupported);
        }
    }
    let whole = &invoking[..Ipv6Packet::<&[u8]>::HEADER_LEN + ip.payload_len()];
    let room = buf.len().min(MIN_MTU);
    let overhead = Ipv6Packet::<&[u8]>::HEADER_LEN + HEADER_LEN;
    if room < overhead + Ipv6Packet::<&[u8]>::HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let quoted = &whole[..whole.len().min(room - overhead)];
    let (t, code, word) = err.type_code_word();
    write_message(buf, src, to, hop_limit, HEADER_LEN + quoted.len(), |m| {
        m.set_msg_type(t);
        m.set_code(code);
        m.set_word(word);
        m.payload_mut().copy_from_slice(quoted);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::XorShift;
    use etherparse::{Icmpv6Slice, Icmpv6Type, PacketBuilder, SlicedPacket};

    fn addr(rng: &mut XorShift) -> Ipv6Addr {
        let mut o = [0u8; 16];
        o.copy_from_slice(&rng.bytes(16));
        // Global unicast, so the builders accept it.
        o[0] = 0x20;
        Ipv6Addr::from(o)
    }

    /// An IPv6 Echo Request built by etherparse.
    fn echo_request(rng: &mut XorShift) -> (Vec<u8>, Ipv6Addr, Ipv6Addr, u16, u16, Vec<u8>) {
        let (src, dst) = (addr(rng), addr(rng));
        let (id, seq) = (rng.next_u16(), rng.next_u16());
        let n = usize::from(rng.next_u16() % 100);
        let data = rng.bytes(n);
        let mut p = Vec::new();
        PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
            .icmpv6_echo_request(id, seq)
            .write(&mut p, &data)
            .unwrap();
        (p, src, dst, id, seq, data)
    }

    #[test]
    fn reads_etherparse_echo_and_checksums_alike() {
        let mut rng = XorShift(0x1c6);
        for _ in 0..200 {
            let (p, src, dst, id, seq, data) = echo_request(&mut rng);
            let msg = &p[40..];
            let m = Icmpv6Packet::new_checked(msg).unwrap();
            assert_eq!(m.msg_type(), icmpv6_type::ECHO_REQUEST);
            assert_eq!((m.code(), m.ident(), m.seq_no()), (0, id, seq));
            assert_eq!(m.payload(), &data[..]);
            assert!(!m.is_error() && m.invoking_packet().is_none());
            assert!(m.verify_checksum(src, dst));
            let other = Ipv6Addr::from(u128::from(dst) ^ 1);
            assert!(!m.verify_checksum(src, other));
            let mut copy = msg.to_vec();
            Icmpv6Packet::new_checked(&mut copy[..])
                .unwrap()
                .fill_checksum(src, dst);
            assert_eq!(copy, msg);
        }
    }

    #[test]
    fn rejects_truncation() {
        for len in 0..8 {
            assert_eq!(
                Icmpv6Packet::new_checked(&[128u8; 8][..len]).err(),
                Some(WireError::Truncated)
            );
        }
    }

    #[test]
    fn echo_reply_swaps_addresses_and_keeps_the_data() {
        let mut rng = XorShift(0xec40);
        for _ in 0..200 {
            let (p, src, dst, id, seq, data) = echo_request(&mut rng);
            let mut out = [0u8; 256];
            let n = write_echo_reply(&mut out, &p, 61).unwrap();
            assert_eq!(n, p.len());
            let s = SlicedPacket::from_ip(&out[..n]).unwrap();
            let Some(etherparse::NetSlice::Ipv6(ip)) = &s.net else {
                panic!("not IPv6");
            };
            assert_eq!(ip.header().source_addr(), dst);
            assert_eq!(ip.header().destination_addr(), src);
            assert_eq!(ip.header().hop_limit(), 61);
            let Some(etherparse::TransportSlice::Icmpv6(icmp)) = &s.transport else {
                panic!("not ICMPv6");
            };
            let Icmpv6Type::EchoReply(h) = icmp.icmp_type() else {
                panic!("not an echo reply");
            };
            assert_eq!((h.id, h.seq), (id, seq));
            assert_eq!(icmp.payload(), &data[..]);
            let want = icmp
                .icmp_type()
                .calc_checksum(dst.octets(), src.octets(), icmp.payload())
                .unwrap();
            assert_eq!(icmp.checksum(), want);
            let mut scratch = [0u8; 256];
            for short in 0..n {
                assert_eq!(
                    write_echo_reply(&mut scratch[..short], &p, 64),
                    Err(WireError::Truncated)
                );
            }
            for cut in 0..p.len() {
                assert!(write_echo_reply(&mut scratch, &p[..cut], 64).is_err());
            }
        }
    }

    #[test]
    fn echo_reply_refuses_other_messages_and_multicast() {
        let mut rng = XorShift(0xec41);
        let (mut p, ..) = echo_request(&mut rng);
        let mut out = [0u8; 256];
        p[40] = icmpv6_type::ECHO_REPLY;
        assert_eq!(
            write_echo_reply(&mut out, &p, 64),
            Err(WireError::Unsupported)
        );
        p[40] = icmpv6_type::ECHO_REQUEST;
        p[24] = 0xff;
        assert_eq!(
            write_echo_reply(&mut out, &p, 64),
            Err(WireError::Unsupported)
        );
        p[24] = 0x20;
        p[6] = ip_proto::UDP;
        assert_eq!(
            write_echo_reply(&mut out, &p, 64),
            Err(WireError::Unsupported)
        );
    }

    /// A UDP packet of `n` payload bytes built by etherparse.
    fn udp_packet(rng: &mut XorShift, n: usize) -> Vec<u8> {
        let mut p = Vec::new();
        PacketBuilder::ipv6(addr(rng).octets(), addr(rng).octets(), 9)
            .udp(5000, 53)
            .write(&mut p, &rng.bytes(n))
            .unwrap();
        p
    }

    #[test]
    fn errors_quote_at_most_what_fits_in_the_minimum_mtu() {
        let mut rng = XorShift(0xe440);
        let me: Ipv6Addr = "2001:db8::1".parse().unwrap();
        for n in [0usize, 10, 500, 1184, 1185, 1500, 9000] {
            let inv = udp_packet(&mut rng, n);
            let mut out = vec![0u8; 10_000];
            let err = Icmpv6Error::PacketTooBig { mtu: 1400 };
            let len = write_icmpv6_error(&mut out, me, 64, &err, &inv).unwrap();
            assert_eq!(len, (48 + inv.len()).min(MIN_MTU), "n {n}");
            let ip = Ipv6Packet::new_checked(&out[..len]).unwrap();
            assert_eq!((ip.src(), ip.next_header()), (me, ip_proto::ICMPV6));
            assert_eq!(ip.dst().octets(), inv[8..24]);
            let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
            assert!(m.verify_checksum(ip.src(), ip.dst()));
            assert_eq!((m.msg_type(), m.mtu()), (icmpv6_type::PACKET_TOO_BIG, 1400));
            let quoted = m.invoking_packet().unwrap();
            assert_eq!(quoted, &inv[..quoted.len()]);
            let e = Icmpv6Slice::from_slice(ip.payload()).unwrap();
            assert_eq!(
                e.icmp_type(),
                Icmpv6Type::PacketTooBig { mtu: 1400 },
                "etherparse reads it alike"
            );
            // A smaller buffer quotes less, down to the invoking fixed header.
            let small = write_icmpv6_error(&mut out[..100], me, 64, &err, &inv).unwrap();
            assert_eq!(small, 100.min(48 + inv.len()));
            assert_eq!(
                write_icmpv6_error(&mut out[..87], me, 64, &err, &inv),
                Err(WireError::Truncated)
            );
        }
    }

    #[test]
    fn error_types_codes_and_words() {
        let mut rng = XorShift(0xe441);
        let inv = udp_packet(&mut rng, 20);
        let me: Ipv6Addr = "2001:db8::1".parse().unwrap();
        for (err, t, c, w) in [
            (Icmpv6Error::DestUnreachable { code: 4 }, 1, 4, 0),
            (Icmpv6Error::PacketTooBig { mtu: 1280 }, 2, 0, 1280),
            (Icmpv6Error::TimeExceeded { code: 0 }, 3, 0, 0),
            (
                Icmpv6Error::ParamProblem {
                    code: 1,
                    pointer: 40,
                },
                4,
                1,
                40,
            ),
        ] {
            let mut out = [0u8; 200];
            let n = write_icmpv6_error(&mut out, me, 255, &err, &inv).unwrap();
            let m = Icmpv6Packet::new_checked(&out[40..n]).unwrap();
            assert_eq!((m.msg_type(), m.code(), m.pointer()), (t, c, w));
            assert_eq!(m.invoking_packet(), Some(&inv[..]));
        }
    }

    #[test]
    fn errors_rfc4443_forbids_are_refused() {
        let mut rng = XorShift(0xe442);
        let me: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let unreach = Icmpv6Error::DestUnreachable { code: 1 };
        let mut out = [0u8; 1280];
        // About an ICMPv6 error.
        let inv = udp_packet(&mut rng, 30);
        let n = write_icmpv6_error(&mut out, me, 64, &unreach, &inv).unwrap();
        let about_error = out[..n].to_vec();
        assert_eq!(
            write_icmpv6_error(&mut out, me, 64, &unreach, &about_error),
            Err(WireError::Unsupported)
        );
        // From unspecified or multicast sources.
        for first in [0x00, 0xff] {
            let mut bad = inv.clone();
            bad[8..24].fill(0);
            bad[8] = first;
            assert_eq!(
                write_icmpv6_error(&mut out, me, 64, &unreach, &bad),
                Err(WireError::Unsupported)
            );
        }
        // To a multicast destination: only Packet Too Big and unrecognised
        // options.
        let mut mc = inv.clone();
        mc[24] = 0xff;
        assert_eq!(
            write_icmpv6_error(&mut out, me, 64, &unreach, &mc),
            Err(WireError::Unsupported)
        );
        for ok in [
            Icmpv6Error::PacketTooBig { mtu: 1280 },
            Icmpv6Error::ParamProblem {
                code: Icmpv6Error::UNRECOGNIZED_OPTION,
                pointer: 42,
            },
        ] {
            assert!(write_icmpv6_error(&mut out, me, 64, &ok, &mc).is_ok());
        }
        // A truncated invoking packet is refused, not quoted past its end.
        for cut in 0..40 {
            assert_eq!(
                write_icmpv6_error(&mut out, me, 64, &unreach, &inv[..cut]),
                Err(WireError::Truncated)
            );
        }
    }
}
