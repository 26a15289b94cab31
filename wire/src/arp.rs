//! ARP for Ethernet/IPv4 (RFC 826).

use std::net::Ipv4Addr;

use super::{ethertype, get16, get32, get_mac, put16, put32, put_mac, MacAddr, WireError};

/// A view over an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

const LEN: usize = 28;
const FRAME_LEN: usize = 14 + LEN;

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;

    /// Accepts only Ethernet (htype 1) / IPv4 (ptype 0x0800) with 6/4-byte
    /// addresses; any other ARP flavour is `Unsupported`.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < LEN {
            return Err(WireError::Truncated);
        }
        if get16(b, 0) != 1 || get16(b, 2) != ethertype::IPV4 || b[4] != 6 || b[5] != 4 {
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
        get16(self.buffer.as_ref(), 6)
    }

    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), 8)
    }

    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(get32(self.buffer.as_ref(), 14))
    }

    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), 18)
    }

    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(get32(self.buffer.as_ref(), 24))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        put16(self.buffer.as_mut(), 6, op)
    }

    #[inline]
    pub fn set_sender_mac(&mut self, mac: MacAddr) {
        put_mac(self.buffer.as_mut(), 8, mac)
    }

    #[inline]
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        put32(self.buffer.as_mut(), 14, u32::from(ip))
    }

    #[inline]
    pub fn set_target_mac(&mut self, mac: MacAddr) {
        put_mac(self.buffer.as_mut(), 18, mac)
    }

    #[inline]
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        put32(self.buffer.as_mut(), 24, u32::from(ip))
    }
}

/// Writes a complete untagged Ethernet + ARP frame (42 bytes, no padding)
/// into `buf` and returns its length; `Truncated` if `buf` is too short.
pub fn build_arp_frame(
    buf: &mut [u8],
    op: u16,
    src_mac: MacAddr,
    dst_mac: MacAddr,
    sender: (MacAddr, Ipv4Addr),
    target: (MacAddr, Ipv4Addr),
) -> Result<usize, WireError> {
    let frame = buf.get_mut(..FRAME_LEN).ok_or(WireError::Truncated)?;
    put_mac(frame, 0, dst_mac);
    put_mac(frame, 6, src_mac);
    put16(frame, 12, ethertype::ARP);
    let arp = &mut frame[14..];
    put16(arp, 0, 1);
    put16(arp, 2, ethertype::IPV4);
    arp[4] = 6;
    arp[5] = 4;
    let mut pkt = ArpPacket { buffer: arp };
    pkt.set_operation(op);
    pkt.set_sender_mac(sender.0);
    pkt.set_sender_ip(sender.1);
    pkt.set_target_mac(target.0);
    pkt.set_target_ip(target.1);
    Ok(FRAME_LEN)
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
            let (src, dst, smac, tmac) =
                (mac(&mut rng), mac(&mut rng), mac(&mut rng), mac(&mut rng));
            let sip = Ipv4Addr::from(rng.next_u32());
            let tip = Ipv4Addr::from(rng.next_u32());
            let op = 1 + (rng.next_u16() & 1);
            let mut buf = [0u8; 64];
            let n = build_arp_frame(&mut buf, op, src, dst, (smac, sip), (tmac, tip)).unwrap();
            assert_eq!(n, 42);

            let eth = etherparse::Ethernet2Header::from_slice(&buf[..n]).unwrap();
            assert_eq!(eth.0.source, src.0);
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
            let r = build_arp_frame(
                &mut buf,
                ArpPacket::<&[u8]>::REQUEST,
                MacAddr::ZERO,
                MacAddr::BROADCAST,
                (MacAddr::ZERO, Ipv4Addr::UNSPECIFIED),
                (MacAddr::ZERO, Ipv4Addr::UNSPECIFIED),
            );
            assert_eq!(r, Err(WireError::Truncated));
        }
    }

    #[test]
    fn rejects_truncation_and_other_arp_flavours() {
        let mut buf = [0u8; 42];
        build_arp_frame(
            &mut buf,
            ArpPacket::<&[u8]>::REPLY,
            MacAddr([2; 6]),
            MacAddr::BROADCAST,
            (MacAddr([2; 6]), Ipv4Addr::new(10, 0, 0, 1)),
            (MacAddr::ZERO, Ipv4Addr::new(10, 0, 0, 1)),
        )
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
        build_arp_frame(
            &mut buf,
            1,
            MacAddr::ZERO,
            MacAddr::ZERO,
            (MacAddr::ZERO, Ipv4Addr::UNSPECIFIED),
            (MacAddr::ZERO, Ipv4Addr::UNSPECIFIED),
        )
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
}
