//! ICMPv4 messages (RFC 792).

use crate::checksum;
use crate::{get16, put16, WireError};

/// A view over an ICMPv4 message; the buffer is the whole message (the IP
/// payload), since the checksum covers all of it.
#[derive(Debug, Clone)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    use crate::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// Echo identifier; the unused word of a fragmentation-needed message.
    pub const IDENT: Field = 4..6;
    /// Echo sequence number; the next-hop MTU of a fragmentation-needed
    /// message (RFC 1191).
    pub const SEQ_NO: Field = 6..8;
}

const HEADER_LEN: usize = field::SEQ_NO.end;

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACH: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAM_PROBLEM: u8 = 12;
    /// Destination unreachable code: fragmentation needed and DF set.
    pub const FRAG_NEEDED: u8 = 4;
    pub const HEADER_LEN: usize = HEADER_LEN;

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(IcmpPacket { buffer })
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

    /// Echo identifier; meaningless for error messages.
    #[inline]
    pub fn ident(&self) -> u16 {
        get16(self.buffer.as_ref(), field::IDENT)
    }

    /// Echo sequence number; meaningless for error messages.
    #[inline]
    pub fn seq_no(&self) -> u16 {
        get16(self.buffer.as_ref(), field::SEQ_NO)
    }

    /// True when the checksum over the whole buffer is correct.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref(), 0)) == 0xffff
    }

    /// Bytes after the 8-byte header: echo data, or for errors the quoted
    /// IP header and first 8 bytes of its payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> IcmpPacket<T> {
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

    /// Sets the next-hop MTU of a fragmentation-needed message (RFC 1191),
    /// with the unused word before it zeroed; call `fill_checksum` after.
    #[inline]
    pub fn set_next_hop_mtu(&mut self, mtu: u16) {
        put16(self.buffer.as_mut(), field::IDENT, 0);
        put16(self.buffer.as_mut(), field::SEQ_NO, mtu);
    }

    /// Recomputes the checksum over the whole buffer.
    #[inline]
    pub fn fill_checksum(&mut self) {
        put16(self.buffer.as_mut(), field::CHECKSUM, 0);
        let c = checksum::checksum(self.buffer.as_ref());
        put16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Patches the checksum after the caller changed one 16-bit word of the
    /// message from `old` to `new`.
    #[inline]
    pub fn update_checksum16(&mut self, old: u16, new: u16) {
        let c = checksum::update16(self.checksum(), old, new);
        put16(self.buffer.as_mut(), field::CHECKSUM, c);
    }

    /// Rewrites the echo identifier (ICMP NAT) and patches the checksum.
    #[inline]
    pub fn set_ident(&mut self, ident: u16) {
        let old = self.ident();
        put16(self.buffer.as_mut(), field::IDENT, ident);
        self.update_checksum16(old, ident);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EthernetFrame, Ipv4Packet, XorShift};
    use etherparse::{Icmpv4Slice, Icmpv4Type, PacketBuilder};

    fn random_frame(rng: &mut XorShift) -> (Vec<u8>, u16, u16, Vec<u8>) {
        let (id, seq) = (rng.next_u16(), rng.next_u16());
        let payload = {
            let n = usize::from(rng.next_u16() % 60);
            rng.bytes(n)
        };
        let mut frame = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(
                rng.next_u32().to_be_bytes(),
                rng.next_u32().to_be_bytes(),
                64,
            )
            .icmpv4_echo_request(id, seq)
            .write(&mut frame, &payload)
            .unwrap();
        (frame, id, seq, payload)
    }

    fn icmp_of(frame: &mut [u8]) -> &mut [u8] {
        let eth = EthernetFrame::new_checked(frame).unwrap();
        let ip = Ipv4Packet::new_checked(&mut eth.into_inner()[14..]).unwrap();
        let (hl, tl) = (ip.header_len(), ip.total_len());
        &mut ip.into_inner()[hl..tl]
    }

    fn assert_consistent(msg: &[u8]) {
        let p = IcmpPacket::new_checked(msg).unwrap();
        assert!(p.verify_checksum());
        let mut copy = msg.to_vec();
        IcmpPacket::new_checked(&mut copy[..])
            .unwrap()
            .fill_checksum();
        assert_eq!(copy, msg);
        let ep = Icmpv4Slice::from_slice(msg).unwrap();
        assert_eq!(
            ep.header().icmp_type.calc_checksum(ep.payload()),
            p.checksum()
        );
    }

    #[test]
    fn reads_etherparse_echo() {
        let mut rng = XorShift(0x1c3);
        for _ in 0..200 {
            let (mut frame, id, seq, payload) = random_frame(&mut rng);
            let msg = icmp_of(&mut frame);
            let p = IcmpPacket::new_checked(&*msg).unwrap();
            assert_eq!(p.msg_type(), IcmpPacket::<&[u8]>::ECHO_REQUEST);
            assert_eq!(p.code(), 0);
            assert_eq!((p.ident(), p.seq_no()), (id, seq));
            assert_eq!(p.payload(), &payload[..]);
            assert!(matches!(
                Icmpv4Slice::from_slice(msg).unwrap().icmp_type(),
                Icmpv4Type::EchoRequest(_)
            ));
            assert_consistent(msg);
        }
    }

    #[test]
    fn rejects_truncation() {
        for len in 0..8 {
            assert_eq!(
                IcmpPacket::new_checked(&[8u8; 8][..len]).err(),
                Some(WireError::Truncated)
            );
        }
    }

    #[test]
    fn edits_keep_checksum_valid() {
        let mut rng = XorShift(0x1c4);
        for _ in 0..500 {
            let (mut frame, ..) = random_frame(&mut rng);
            let msg = icmp_of(&mut frame);
            // Echo request -> reply: type byte shares a word with the code.
            let mut p = IcmpPacket::new_checked(&mut *msg).unwrap();
            let old = get16(msg_bytes(&p), field::TYPE..field::CODE + 1);
            p.set_msg_type(IcmpPacket::<&[u8]>::ECHO_REPLY);
            let new = get16(msg_bytes(&p), field::TYPE..field::CODE + 1);
            p.update_checksum16(old, new);
            assert_consistent(msg);
            // Ident rewrite, as ICMP NAT does.
            let mut p = IcmpPacket::new_checked(&mut *msg).unwrap();
            let new = rng.next_u16();
            p.set_ident(new);
            assert_eq!(p.ident(), new);
            assert_consistent(msg);
            let mut p = IcmpPacket::new_checked(&mut *msg).unwrap();
            p.set_code(3);
            if let Some(b) = p.payload_mut().first_mut() {
                *b ^= 0xff;
            }
            p.fill_checksum();
            assert_consistent(msg);
        }
    }

    fn msg_bytes<'a>(p: &'a IcmpPacket<&mut [u8]>) -> &'a [u8] {
        p.buffer
    }
}
