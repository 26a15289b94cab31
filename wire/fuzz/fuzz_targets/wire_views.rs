//! Feeds arbitrary bytes to every wire view: each constructor either refuses
//! the buffer or returns a view whose accessors and setters must not panic,
//! and incremental checksum updates must agree with full recomputation.

#![no_main]

use std::hint::black_box;
use std::net::Ipv4Addr;

use wire::{
    checksum, ethertype, ip_proto, ArpPacket, EthernetFrame, IcmpPacket, Ipv4Packet, Ipv6Packet,
    MacAddr, TcpSegment, UdpDatagram,
};
use libfuzzer_sys::fuzz_target;

/// Largest frame the dataplane handles; longer inputs are cut to this.
const MAX_FRAME: usize = 9216;

fuzz_target!(|data: &[u8]| {
    // Every view straight on the raw bytes, whatever they hold.
    ethernet(data);
    arp(data);
    ipv4(data);
    ipv6(data);
    tcp(data);
    udp(data);
    icmp(data);

    // The same bytes as a frame, mutated in place through the whole chain.
    let mut frame = [0u8; MAX_FRAME];
    let n = data.len().min(MAX_FRAME);
    frame[..n].copy_from_slice(&data[..n]);
    chain(&mut frame[..n]);
});

fn ethernet(b: &[u8]) {
    if let Ok(f) = EthernetFrame::new_checked(b) {
        black_box((f.dst(), f.src(), f.ethertype(), f.vlan_id()));
        assert_eq!(f.header_len() + f.payload().len(), b.len());
    }
}

fn arp(b: &[u8]) {
    if let Ok(a) = ArpPacket::new_checked(b) {
        black_box((a.operation(), a.sender_mac(), a.sender_ip()));
        black_box((a.target_mac(), a.target_ip()));
    }
}

fn ipv4(b: &[u8]) {
    if let Ok(p) = Ipv4Packet::new_checked(b) {
        black_box((p.ident(), p.ttl(), p.protocol(), p.src(), p.dst()));
        black_box((p.dont_frag(), p.more_frags(), p.frag_offset()));
        black_box((p.is_fragment(), p.checksum(), p.verify_checksum()));
        assert_eq!(
            p.header_len() + p.payload().len(),
            p.total_len(),
            "payload must end at total_len"
        );
        assert_eq!(p.options().len(), p.header_len() - 20);
    }
}

fn ipv6(b: &[u8]) {
    if let Ok(p) = Ipv6Packet::new_checked(b) {
        black_box((p.src(), p.dst(), p.next_header(), p.hop_limit()));
        assert_eq!(p.payload().len(), p.payload_len());
    }
}

fn tcp(b: &[u8]) {
    if let Ok(t) = TcpSegment::new_checked(b) {
        black_box((t.src_port(), t.dst_port(), t.seq(), t.ack(), t.window()));
        black_box((t.checksum(), t.flags().is_valid_combination()));
        assert_eq!(t.header_len() + t.payload().len(), b.len());
    }
}

fn udp(b: &[u8]) {
    if let Ok(u) = UdpDatagram::new_checked(b) {
        black_box((u.src_port(), u.dst_port(), u.checksum(), u.is_empty()));
        assert_eq!(u.payload().len() + 8, u.len());
    }
}

fn icmp(b: &[u8]) {
    if let Ok(p) = IcmpPacket::new_checked(b) {
        black_box((p.msg_type(), p.code(), p.checksum(), p.ident(), p.seq_no()));
        black_box((p.payload(), p.verify_checksum()));
    }
}

/// Ethernet -> IPv4/IPv6/ARP -> TCP/UDP/ICMP, rewriting like the NAT path.
fn chain(frame: &mut [u8]) {
    let Ok(mut eth) = EthernetFrame::new_checked(frame) else {
        return;
    };
    eth.set_src(MacAddr([2, 0, 0, 0, 0, 1]));
    eth.set_dst(MacAddr::BROADCAST);
    match eth.ethertype() {
        ethertype::IPV4 => ipv4_chain(eth.payload_mut()),
        ethertype::IPV6 => {
            if let Ok(p) = Ipv6Packet::new_checked(eth.payload()) {
                match p.next_header() {
                    ip_proto::TCP => tcp(p.payload()),
                    ip_proto::UDP => udp(p.payload()),
                    _ => {}
                }
            }
        }
        ethertype::ARP => {
            if let Ok(mut a) = ArpPacket::new_checked(eth.payload_mut()) {
                let (mac, ip) = (a.sender_mac(), a.sender_ip());
                a.set_operation(ArpPacket::<&[u8]>::REPLY);
                a.set_target_mac(mac);
                a.set_target_ip(ip);
                a.set_sender_mac(MacAddr::ZERO);
                a.set_sender_ip(Ipv4Addr::new(192, 0, 2, 1));
                assert_eq!((a.target_mac(), a.target_ip()), (mac, ip));
            }
        }
        _ => {}
    }
}

fn ipv4_chain(b: &mut [u8]) {
    let Ok(mut ip) = Ipv4Packet::new_checked(b) else {
        return;
    };
    let was_valid = ip.verify_checksum();
    let (old_src, old_dst) = (ip.src(), ip.dst());
    let (new_src, new_dst) = (Ipv4Addr::new(198, 51, 100, 7), Ipv4Addr::new(10, 1, 2, 3));
    ip.set_src(new_src);
    ip.set_dst(new_dst);
    ip.decrement_ttl();
    // An incremental update keeps a correct header correct.
    assert!(!was_valid || ip.verify_checksum());
    let proto = ip.protocol();
    let fragment = ip.is_fragment();
    let l4 = ip.payload_mut();
    if fragment {
        return;
    }
    match proto {
        ip_proto::TCP => {
            let was_valid = l4_valid(l4, old_src, old_dst, ip_proto::TCP);
            if let Ok(mut t) = TcpSegment::new_checked(&mut *l4) {
                t.set_src_port(t.src_port().wrapping_add(1));
                t.set_dst_port(t.dst_port() ^ 0x5555);
                t.update_checksum_for_addr(old_src, new_src);
                t.update_checksum_for_addr(old_dst, new_dst);
                black_box(t.payload_mut().len());
                let seg = t.into_inner();
                assert!(!was_valid || l4_valid(seg, new_src, new_dst, ip_proto::TCP));
                let mut t = TcpSegment::new_checked(seg).unwrap_or_else(|e| panic!("{e}"));
                t.fill_checksum_v4(new_src, new_dst);
                assert!(l4_valid(t.into_inner(), new_src, new_dst, ip_proto::TCP));
            }
        }
        ip_proto::UDP => {
            let Ok(u) = UdpDatagram::new_checked(&*l4) else {
                return;
            };
            let (before, len) = (u.checksum(), u.len());
            let was_valid = l4_valid(&l4[..len], old_src, old_dst, ip_proto::UDP);
            let mut u = UdpDatagram::new_checked(&mut *l4).unwrap_or_else(|e| panic!("{e}"));
            u.set_src_port(u.src_port().wrapping_add(1));
            u.set_dst_port(u.dst_port() ^ 0x5555);
            u.update_checksum_for_addr(old_src, new_src);
            u.update_checksum_for_addr(old_dst, new_dst);
            black_box(u.payload_mut().len());
            // Zero means "no checksum" and must survive; a real one must
            // never become zero.
            assert_eq!(before == 0, u.checksum() == 0);
            let l4 = u.into_inner();
            assert!(
                before == 0 || !was_valid || l4_valid(&l4[..len], new_src, new_dst, ip_proto::UDP)
            );
            let mut u = UdpDatagram::new_checked(&mut *l4).unwrap_or_else(|e| panic!("{e}"));
            u.fill_checksum_v4(new_src, new_dst);
            assert_ne!(u.checksum(), 0);
            assert!(l4_valid(&l4[..len], new_src, new_dst, ip_proto::UDP));
        }
        ip_proto::ICMP => {
            if let Ok(mut p) = IcmpPacket::new_checked(&mut *l4) {
                p.set_ident(p.ident().wrapping_add(7));
                p.set_msg_type(IcmpPacket::<&[u8]>::ECHO_REPLY);
                p.set_code(0);
                p.fill_checksum();
                assert!(p.verify_checksum());
                black_box(p.payload_mut().len());
            }
        }
        _ => {}
    }
}

/// Receiver-side check of a TCP/UDP checksum over `seg` (exactly the bytes
/// the checksum covers).
fn l4_valid(seg: &[u8], src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> bool {
    let Ok(len) = u16::try_from(seg.len()) else {
        return false;
    };
    let ph = checksum::pseudo_header_v4(src, dst, proto, len);
    checksum::fold(checksum::sum(seg, ph)) == 0xffff
}
