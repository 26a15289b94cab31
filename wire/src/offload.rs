//! Frames from senders that leave the TCP or UDP checksum to their NIC
//! (CHECKSUM_PARTIAL, see [`crate::checksum::is_partial`]), as veth and virtio hand
//! them over.

use crate::{ethertype, ip_proto, EthernetFrame, Ipv4Packet, TcpSegment, UdpDatagram};

/// Finishes the checksum of an IPv4 TCP or UDP frame in partial form, in
/// place; any other frame is left as it is. For code that forwards frames
/// without rewriting their addresses (the packet path finishes checksums as
/// part of its rewrite).
pub fn finish_partial_checksum(frame: &mut [u8]) {
    let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
        return;
    };
    if eth.ethertype() != ethertype::IPV4 {
        return;
    }
    let l3 = eth.header_len();
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut frame[l3..]) else {
        return;
    };
    if ip.is_fragment() {
        return;
    }
    let (src, dst, proto) = (ip.src(), ip.dst(), ip.protocol());
    let l4 = ip.payload_mut();
    match proto {
        ip_proto::TCP => {
            if let Ok(mut t) = TcpSegment::new_checked(l4) {
                if t.has_partial_checksum_v4(src, dst) {
                    t.fill_checksum_v4(src, dst);
                }
            }
        }
        ip_proto::UDP => {
            if let Ok(mut u) = UdpDatagram::new_checked(l4) {
                if u.has_partial_checksum_v4(src, dst) {
                    u.fill_checksum_v4(src, dst);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    /// A UDP or TCP frame whose checksum field holds the folded
    /// pseudo-header sum, as an offloading sender leaves it.
    fn partial(udp: bool) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
            [10, 0, 0, 1],
            [10, 0, 0, 2],
            64,
        );
        let mut f = Vec::new();
        if udp {
            b.udp(1000, 2000).write(&mut f, b"odd payload").unwrap();
        } else {
            b.tcp(1000, 2000, 1, 100)
                .write(&mut f, b"odd payload")
                .unwrap();
        }
        let len = (f.len() - 34) as u16;
        let proto = if udp { ip_proto::UDP } else { ip_proto::TCP };
        let ph = checksum::pseudo_header_v4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), proto, len);
        let at = 34 + if udp { 6 } else { 16 };
        f[at..at + 2].copy_from_slice(&checksum::fold(ph).to_be_bytes());
        f
    }

    fn valid(frame: &[u8]) -> bool {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
            return false;
        };
        let h = ip.header().to_header();
        match p.transport {
            Some(TransportSlice::Udp(u)) => {
                u.checksum() == u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap()
            }
            Some(TransportSlice::Tcp(t)) => {
                t.checksum() == t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap()
            }
            _ => false,
        }
    }

    #[test]
    fn partial_checksums_are_finished_and_others_untouched() {
        for udp in [true, false] {
            let mut f = partial(udp);
            assert!(!valid(&f));
            finish_partial_checksum(&mut f);
            assert!(valid(&f), "udp {udp}");
            let done = f.clone();
            finish_partial_checksum(&mut f);
            assert_eq!(f, done, "a complete checksum is left alone");
        }
        let mut arp = vec![0xffu8; 42];
        arp[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
        let before = arp.clone();
        finish_partial_checksum(&mut arp);
        assert_eq!(arp, before);
    }
}
