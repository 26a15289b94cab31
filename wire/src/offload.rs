//! Frames from senders that leave the TCP or UDP checksum to their NIC
//! (CHECKSUM_PARTIAL, see [`crate::checksum::is_partial`]), as veth and virtio hand
//! them over.

use crate::{ethertype, ip_proto, EthernetFrame, Ipv4Packet, Ipv6Packet, TcpSegment, UdpDatagram};

/// Finishes the checksum of an IPv4 or IPv6 TCP or UDP frame in partial
/// form, in place; any other frame (fragments and IPv6 chains the walker
/// refuses included) is left as it is. For code that forwards frames
/// without rewriting their addresses (the packet path finishes checksums as
/// part of its rewrite).
pub fn finish_partial_checksum(frame: &mut [u8]) {
    let Ok(eth) = EthernetFrame::new_checked(&frame[..]) else {
        return;
    };
    let l3 = eth.header_len();
    match eth.ethertype() {
        ethertype::IPV4 => finish_v4(&mut frame[l3..]),
        ethertype::IPV6 => finish_v6(&mut frame[l3..]),
        _ => {}
    }
}

fn finish_v4(packet: &mut [u8]) {
    let Ok(mut ip) = Ipv4Packet::new_checked(packet) else {
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

fn finish_v6(packet: &mut [u8]) {
    let Ok(mut ip) = Ipv6Packet::new_checked(packet) else {
        return;
    };
    let Ok(upper) = ip.upper_layer() else {
        return;
    };
    let (src, dst) = (ip.src(), ip.dst());
    let l4 = &mut ip.payload_mut()[upper.offset..];
    match upper.protocol {
        ip_proto::TCP => {
            if let Ok(mut t) = TcpSegment::new_checked(l4) {
                if t.has_partial_checksum_v6(src, dst) {
                    t.fill_checksum_v6(src, dst);
                }
            }
        }
        ip_proto::UDP => {
            if let Ok(mut u) = UdpDatagram::new_checked(l4) {
                if u.has_partial_checksum_v6(src, dst) {
                    u.fill_checksum_v6(src, dst);
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
    use std::net::Ipv6Addr;

    const SRC6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const DST6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    /// A UDP or TCP frame whose checksum field holds the folded
    /// pseudo-header sum, as an offloading sender leaves it.
    fn partial(udp: bool, v6: bool) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let b = if v6 {
            eth.ipv6(SRC6, DST6, 64)
        } else {
            eth.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        };
        let mut f = Vec::new();
        if udp {
            b.udp(1000, 2000).write(&mut f, b"odd payload").unwrap();
        } else {
            b.tcp(1000, 2000, 1, 100)
                .write(&mut f, b"odd payload")
                .unwrap();
        }
        let l4 = if v6 { 54 } else { 34 };
        let len = (f.len() - l4) as u16;
        let proto = if udp { ip_proto::UDP } else { ip_proto::TCP };
        let ph = if v6 {
            checksum::pseudo_header_v6(SRC6.into(), DST6.into(), proto, u32::from(len))
        } else {
            checksum::pseudo_header_v4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), proto, len)
        };
        let at = l4 + if udp { 6 } else { 16 };
        f[at..at + 2].copy_from_slice(&checksum::fold(ph).to_be_bytes());
        f
    }

    fn valid(frame: &[u8]) -> bool {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        match (p.net, p.transport) {
            (Some(etherparse::NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(u))) => {
                let h = ip.header().to_header();
                u.checksum() == u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap()
            }
            (Some(etherparse::NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) => {
                let h = ip.header().to_header();
                t.checksum() == t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap()
            }
            (Some(etherparse::NetSlice::Ipv6(ip)), Some(TransportSlice::Udp(u))) => {
                let h = ip.header().to_header();
                u.checksum() == u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap()
            }
            (Some(etherparse::NetSlice::Ipv6(ip)), Some(TransportSlice::Tcp(t))) => {
                let h = ip.header().to_header();
                t.checksum() == t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap()
            }
            _ => false,
        }
    }

    #[test]
    fn partial_checksums_are_finished_and_others_untouched() {
        for (udp, v6) in [(true, false), (false, false), (true, true), (false, true)] {
            let mut f = partial(udp, v6);
            assert!(!valid(&f));
            finish_partial_checksum(&mut f);
            assert!(valid(&f), "udp {udp} v6 {v6}");
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

    #[test]
    fn ipv6_partial_checksums_behind_extension_headers_are_finished() {
        for udp in [true, false] {
            let mut f = partial(udp, true);
            let (src, dst) = (Ipv6Addr::from(SRC6), Ipv6Addr::from(DST6));
            // Insert an empty destination options header before the
            // transport header.
            let proto = f[20];
            f[20] = ip_proto::DEST_OPTS;
            let plen = u16::from_be_bytes([f[18], f[19]]) + 8;
            f[18..20].copy_from_slice(&plen.to_be_bytes());
            f.splice(54..54, [proto, 0, 1, 4, 0, 0, 0, 0]);
            finish_partial_checksum(&mut f);
            let l4 = &f[62..];
            let ok = if udp {
                UdpDatagram::new_checked(l4)
                    .unwrap()
                    .verify_checksum_v6(src, dst)
            } else {
                TcpSegment::new_checked(l4)
                    .unwrap()
                    .verify_checksum_v6(src, dst)
            };
            assert!(ok, "udp {udp}");
            // A fragment is left alone.
            let mut frag = partial(udp, true);
            let proto = frag[20];
            frag[20] = ip_proto::FRAGMENT;
            let plen = u16::from_be_bytes([frag[18], frag[19]]) + 8;
            frag[18..20].copy_from_slice(&plen.to_be_bytes());
            frag.splice(54..54, [proto, 0, 0, 1, 0, 0, 0, 9]);
            let before = frag.clone();
            finish_partial_checksum(&mut frag);
            assert_eq!(frag, before);
        }
    }
}
