//! ARP for Ethernet/IPv4 (RFC 826).

use std::net::Ipv4Addr;

use crate::ethernet::{write_header, EthernetHeader};
use crate::{ethertype, get16, get32, get_mac, put16, put32, put_mac, MacAddr, WireError};

mod field {
    use crate::Field;

    pub const HTYPE: Field = 0..2;
    pub const PTYPE: Field = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Field = 6..8;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

const LEN: usize = field::TPA.end;
/// Hardware type Ethernet.
const HTYPE_ETHERNET: u16 = 1;
const MAC_LEN: u8 = 6;
const IPV4_LEN: u8 = 4;

/// A view over an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const LEN: usize = LEN;

    /// Accepts only Ethernet (htype 1) / IPv4 (ptype 0x0800) with 6/4-byte
    /// addresses; any other ARP flavour is `Unsupported`.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < LEN {
            return Err(WireError::Truncated);
        }
        if get16(b, field::HTYPE) != HTYPE_ETHERNET
            || get16(b, field::PTYPE) != ethertype::IPV4
            || b[field::HLEN] != MAC_LEN
            || b[field::PLEN] != IPV4_LEN
        {
            return Err(WireError::Unsupported);
        }
        Ok(ArpPacket { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn operation(&self) -> u16 {
        get16(self.buffer.as_ref(), field::OPER)
    }

    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::SHA)
    }

    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(get32(self.buffer.as_ref(), field::SPA))
    }

    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::THA)
    }

    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(get32(self.buffer.as_ref(), field::TPA))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        put16(self.buffer.as_mut(), field::OPER, op)
    }

    #[inline]
    pub fn set_sender_mac(&mut self, mac: MacAddr) {
        put_mac(self.buffer.as_mut(), field::SHA, mac)
    }

    #[inline]
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        put32(self.buffer.as_mut(), field::SPA, u32::from(ip))
    }

    #[inline]
    pub fn set_target_mac(&mut self, mac: MacAddr) {
        put_mac(self.buffer.as_mut(), field::THA, mac)
    }

    #[inline]
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        put32(self.buffer.as_mut(), field::TPA, u32::from(ip))
    }
}

/// The fields of one Ethernet/IPv4 ARP message, written into a view or a
/// new frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpMessage {
    pub operation: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl ArpMessage {
    /// An untagged Ethernet header and the ARP packet, without padding.
    pub const FRAME_LEN: usize = crate::EthernetFrame::<&[u8]>::HEADER_LEN + LEN;

    /// A gratuitous ARP request announcing `ip` at `mac`: the address is
    /// both sender and target, the target MAC unknown.
    pub fn gratuitous(mac: MacAddr, ip: Ipv4Addr) -> ArpMessage {
        ArpMessage {
            operation: ArpPacket::<&[u8]>::REQUEST,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        }
    }

    /// The reply telling the asker (`asker_mac`, `asker_ip`) that `ip` is at
    /// `mac`.
    pub fn reply(mac: MacAddr, ip: Ipv4Addr, asker_mac: MacAddr, asker_ip: Ipv4Addr) -> ArpMessage {
        ArpMessage {
            operation: ArpPacket::<&[u8]>::REPLY,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: asker_mac,
            target_ip: asker_ip,
        }
    }

    /// Writes the operation and addresses into an existing ARP packet.
    #[inline]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, arp: &mut ArpPacket<T>) {
        arp.set_operation(self.operation);
        arp.set_sender_mac(self.sender_mac);
        arp.set_sender_ip(self.sender_ip);
        arp.set_target_mac(self.target_mac);
        arp.set_target_ip(self.target_ip);
    }

    /// Writes a complete untagged Ethernet + ARP frame from the sender's MAC
    /// to `dst` at the start of `buf` and returns its length
    /// ([`Self::FRAME_LEN`], no padding); `Truncated` if `buf` is too short.
    pub fn write_frame(&self, buf: &mut [u8], dst: MacAddr) -> Result<usize, WireError> {
        let frame = buf.get_mut(..Self::FRAME_LEN).ok_or(WireError::Truncated)?;
        let eth = EthernetHeader {
            dst,
            src: self.sender_mac,
            ethertype: ethertype::ARP,
        };
        let at = write_header(frame, &eth)?;
        let b = &mut frame[at..];
        put16(b, field::HTYPE, HTYPE_ETHERNET);
        put16(b, field::PTYPE, ethertype::IPV4);
        b[field::HLEN] = MAC_LEN;
        b[field::PLEN] = IPV4_LEN;
        self.emit(&mut ArpPacket { buffer: b });
        Ok(Self::FRAME_LEN)
    }

    /// The frame [`Self::write_frame`] writes, padded with zeros to `N`
    /// bytes (60 is Ethernet's minimum); `Truncated` if `N` is too small.
    pub fn padded_frame<const N: usize>(&self, dst: MacAddr) -> Result<[u8; N], WireError> {
        let mut f = [0u8; N];
        self.write_frame(&mut f, dst)?;
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EthernetFrame, XorShift};
    use etherparse::EtherType;

    fn mac(rng: &mut XorShift) -> MacAddr {
        let b = rng.bytes(6);
        MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    #[test]
    fn built_frame_parses_with_etherparse_and_view() {
        let mut rng = XorShift(0xa2b);
        for _ in 0..100 {
            let (dst, smac, tmac) = (mac(&mut rng), mac(&mut rng), mac(&mut rng));
            let sip = Ipv4Addr::from(rng.next_u32());
            let tip = Ipv4Addr::from(rng.next_u32());
            let op = 1 + (rng.next_u16() & 1);
            let msg = ArpMessage {
                operation: op,
                sender_mac: smac,
                sender_ip: sip,
                target_mac: tmac,
                target_ip: tip,
            };
            let mut buf = [0u8; 64];
            let n = msg.write_frame(&mut buf, dst).unwrap();
            assert_eq!(n, 42);

            let eth = etherparse::Ethernet2Header::from_slice(&buf[..n]).unwrap();
            assert_eq!(eth.0.source, smac.0);
            assert_eq!(eth.0.destination, dst.0);
            assert_eq!(eth.0.ether_type, EtherType::ARP);
            // RFC 826 layout, assembled independently of the view.
            let mut expect = vec![0, 1, 0x08, 0x00, 6, 4];
            expect.extend_from_slice(&op.to_be_bytes());
            expect.extend_from_slice(&smac.0);
            expect.extend_from_slice(&sip.octets());
            expect.extend_from_slice(&tmac.0);
            expect.extend_from_slice(&tip.octets());
            assert_eq!(eth.1, &expect[..]);

            let f = EthernetFrame::new_checked(&buf[..n]).unwrap();
            let a = ArpPacket::new_checked(f.payload()).unwrap();
            assert_eq!(a.operation(), op);
            assert_eq!((a.sender_mac(), a.sender_ip()), (smac, sip));
            assert_eq!((a.target_mac(), a.target_ip()), (tmac, tip));
        }
    }

    #[test]
    fn build_rejects_short_buffer() {
        for len in 0..42 {
            let mut buf = vec![0u8; len];
            let r = ArpMessage::gratuitous(MacAddr::ZERO, Ipv4Addr::UNSPECIFIED)
                .write_frame(&mut buf, MacAddr::BROADCAST);
            assert_eq!(r, Err(WireError::Truncated));
        }
    }

    #[test]
    fn rejects_truncation_and_other_arp_flavours() {
        let mut buf = [0u8; 42];
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        ArpMessage::reply(MacAddr([2; 6]), ip, MacAddr::ZERO, ip)
            .write_frame(&mut buf, MacAddr::BROADCAST)
            .unwrap();
        let arp = &buf[14..];
        for len in 0..28 {
            assert_eq!(
                ArpPacket::new_checked(&arp[..len]).err(),
                Some(WireError::Truncated)
            );
        }
        for (at, v) in [(1usize, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut bad = arp.to_vec();
            bad[at] = v;
            assert_eq!(
                ArpPacket::new_checked(&bad[..]).err(),
                Some(WireError::Unsupported)
            );
        }
    }

    #[test]
    fn setters_round_trip() {
        let mut rng = XorShift(77);
        let mut buf = [0u8; 42];
        ArpMessage::gratuitous(MacAddr::ZERO, Ipv4Addr::UNSPECIFIED)
            .write_frame(&mut buf, MacAddr::ZERO)
            .unwrap();
        let mut a = ArpPacket::new_checked(&mut buf[14..]).unwrap();
        for _ in 0..50 {
            let (m1, m2) = (mac(&mut rng), mac(&mut rng));
            let (i1, i2) = (
                Ipv4Addr::from(rng.next_u32()),
                Ipv4Addr::from(rng.next_u32()),
            );
            let op = rng.next_u16();
            a.set_operation(op);
            a.set_sender_mac(m1);
            a.set_sender_ip(i1);
            a.set_target_mac(m2);
            a.set_target_ip(i2);
            assert_eq!(a.operation(), op);
            assert_eq!((a.sender_mac(), a.sender_ip()), (m1, i1));
            assert_eq!((a.target_mac(), a.target_ip()), (m2, i2));
        }
    }

    #[test]
    fn gratuitous_and_reply_messages_fill_the_rfc_826_fields() {
        let (mac, ip) = (MacAddr([2, 0, 0, 0, 0, 9]), Ipv4Addr::new(10, 0, 0, 9));
        let (asker, asker_ip) = (MacAddr([2, 0, 0, 0, 0, 1]), Ipv4Addr::new(10, 0, 0, 1));
        let mut buf = [0u8; 42];
        ArpMessage::gratuitous(mac, ip)
            .write_frame(&mut buf, MacAddr::BROADCAST)
            .unwrap();
        let a = ArpPacket::new_checked(&buf[14..]).unwrap();
        assert_eq!(a.operation(), ArpPacket::<&[u8]>::REQUEST);
        assert_eq!((a.sender_mac(), a.sender_ip()), (mac, ip));
        assert_eq!((a.target_mac(), a.target_ip()), (MacAddr::ZERO, ip));

        let mut a = ArpPacket::new_checked(&mut buf[14..]).unwrap();
        ArpMessage::reply(mac, ip, asker, asker_ip).emit(&mut a);
        assert_eq!(a.operation(), ArpPacket::<&[u8]>::REPLY);
        assert_eq!((a.sender_mac(), a.sender_ip()), (mac, ip));
        assert_eq!((a.target_mac(), a.target_ip()), (asker, asker_ip));
    }
}
