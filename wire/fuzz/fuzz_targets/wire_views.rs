//! Feeds arbitrary bytes to every wire view: each constructor either refuses
//! the buffer or returns a view whose accessors and setters must not panic,
//! and incremental checksum updates must agree with full recomputation.

#![no_main]

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use wire::{
    checksum, ethertype, finish_partial_checksum, icmpv6_type, ip_proto, walk_ext_headers,
    write_echo_reply, write_icmpv6_error, write_neighbor_advert, ArpPacket, EthernetFrame,
    IcmpPacket, Icmpv6Error, Icmpv6Packet, Ipv4Packet, Ipv6ChainError, Ipv6Options, Ipv6Packet,
    MacAddr, NeighborAdvertMessage, NeighborAdvertisement, NeighborSolicitation, TcpSegment,
    UdpDatagram, IPV6_MIN_MTU, MAX_CHAIN_LEN,
};

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
    ext_chain(data);
    ipv6_options(data);
    icmpv6(data);
    ndp(data);
    neighbor_advert(data);

    // The same bytes as a frame, mutated in place through the whole chain.
    let mut frame = [0u8; MAX_FRAME];
    let n = data.len().min(MAX_FRAME);
    frame[..n].copy_from_slice(&data[..n]);
    chain(&mut frame[..n]);
    finish_partial_checksum(&mut frame[..n]);
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
        black_box(p.traffic_class());
        assert_eq!(p.payload().len(), p.payload_len());
        if let Ok(up) = p.upper_layer() {
            assert!(up.offset <= p.payload_len());
        }
    }
}

/// The first byte as the fixed header's next header, the rest as payload.
fn ext_chain(b: &[u8]) {
    let Some((&first, payload)) = b.split_first() else {
        return;
    };
    match walk_ext_headers(first, payload) {
        Ok(up) => {
            assert!(up.offset <= payload.len().min(MAX_CHAIN_LEN));
            assert!(up.offset % 8 == 0);
        }
        Err(Ipv6ChainError::Fragment(f)) => {
            assert!(f.header_offset + 8 <= payload.len());
            assert!(f.frag_offset % 8 == 0);
        }
        Err(e) => {
            black_box(e.to_string());
        }
    }
}

fn ipv6_options(b: &[u8]) {
    if let Ok(o) = Ipv6Options::new_checked(b) {
        let walked: usize = o
            .iter()
            .map(|o| {
                black_box(o.action());
                if o.kind == 0 {
                    1
                } else {
                    2 + o.data.len()
                }
            })
            .sum();
        assert_eq!(walked, b.len(), "options cover the buffer");
    }
}

fn addrs(b: &[u8]) -> (Ipv6Addr, Ipv6Addr) {
    let mut o = [0u8; 32];
    let n = b.len().min(32);
    o[..n].copy_from_slice(&b[..n]);
    let src: [u8; 16] = o[..16].try_into().unwrap_or_default();
    let dst: [u8; 16] = o[16..].try_into().unwrap_or_default();
    (src.into(), dst.into())
}

fn icmpv6(b: &[u8]) {
    if let Ok(p) = Icmpv6Packet::new_checked(b) {
        black_box((p.msg_type(), p.code(), p.checksum(), p.ident(), p.seq_no()));
        black_box((p.mtu(), p.pointer(), p.payload()));
        assert_eq!(p.invoking_packet().is_some(), p.is_error());
        let (src, dst) = addrs(b);
        black_box(p.verify_checksum(src, dst));
        let mut copy = b.to_vec();
        let mut m = Icmpv6Packet::new_checked(&mut copy[..]).unwrap_or_else(|e| panic!("{e}"));
        m.fill_checksum(src, dst);
        assert!(m.verify_checksum(src, dst));
    }
}

fn ndp(b: &[u8]) {
    if let Ok(s) = NeighborSolicitation::new_checked(b) {
        black_box((s.target(), s.source_link_addr()));
        for o in s.options() {
            black_box((o.kind, o.data.len(), o.link_addr()));
        }
    }
    if let Ok(a) = NeighborAdvertisement::new_checked(b) {
        black_box((a.target(), a.target_link_addr()));
        black_box((a.router(), a.solicited(), a.override_flag()));
        assert!(a.options().all(|o| o.data.len() % 8 == 6));
    }
}

/// Advertisements built from arbitrary addresses read back as written.
fn neighbor_advert(b: &[u8]) {
    let (target, asker) = addrs(b);
    let mac = MacAddr([2, 0, 0, 0, 0, b.len() as u8]);
    let m = NeighborAdvertMessage::reply(target, mac, asker);
    let mut buf = [0u8; NeighborAdvertMessage::LEN];
    let n = write_neighbor_advert(&mut buf, &m).unwrap_or_else(|e| panic!("{e}"));
    let ip = Ipv6Packet::new_checked(&buf[..n]).unwrap_or_else(|e| panic!("{e}"));
    let na = NeighborAdvertisement::new_checked(ip.payload()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((na.target(), na.target_link_addr()), (target, Some(mac)));
    assert_eq!(na.solicited(), m.solicited);
    // What a validated solicitation may carry is answered validly.
    if !target.is_multicast() && !asker.is_multicast() {
        assert_eq!(na.validate(&ip), Ok(()));
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
        ethertype::IPV6 => ipv6_chain(eth.payload_mut()),
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

/// Where the IPv6 NAT path sends a packet.
const NEW_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xbe, 0, 0, 0, 0, 0x42);

/// The IPv6 packet path: walk to the transport, check and refill its
/// checksum, answer echoes and NDP, and build errors about the packet.
fn ipv6_chain(b: &mut [u8]) {
    let Ok(ip) = Ipv6Packet::new_checked(&*b) else {
        return;
    };
    let Ok(up) = ip.upper_layer() else {
        return;
    };
    let (src, dst) = (ip.src(), ip.dst());
    let l4 = Ipv6Packet::<&[u8]>::HEADER_LEN + up.offset
        ..Ipv6Packet::<&[u8]>::HEADER_LEN + ip.payload_len();
    match up.protocol {
        ip_proto::TCP => {
            if let Ok(mut t) = TcpSegment::new_checked(&mut b[l4]) {
                // A NAT rewrite keeps a correct checksum correct.
                let was_valid = t.verify_checksum_v6(src, dst);
                t.update_checksum_for_addr_v6(dst, NEW_DST);
                assert!(!was_valid || t.verify_checksum_v6(src, NEW_DST));
                t.fill_checksum_v6(src, dst);
                assert!(t.verify_checksum_v6(src, dst));
            }
        }
        ip_proto::UDP => {
            if let Ok(mut u) = UdpDatagram::new_checked(&mut b[l4]) {
                // A NAT rewrite keeps a correct checksum correct.
                let was_valid = u.verify_checksum_v6(src, dst);
                u.update_checksum_for_addr_v6(dst, NEW_DST);
                assert!(!was_valid || u.verify_checksum_v6(src, NEW_DST));
                u.fill_checksum_v6(src, dst);
                assert!(u.verify_checksum_v6(src, dst));
            }
        }
        ip_proto::ICMPV6 => {
            if let Ok(s) = NeighborSolicitation::new_checked(&b[l4.clone()]) {
                // A valid solicitation gets a valid answer.
                if s.validate(&ip).is_ok() {
                    let m = NeighborAdvertMessage::reply(s.target(), MacAddr([2; 6]), src);
                    let mut out = [0u8; NeighborAdvertMessage::LEN];
                    let n = write_neighbor_advert(&mut out, &m).unwrap_or_else(|e| panic!("{e}"));
                    let reply =
                        Ipv6Packet::new_checked(&out[..n]).unwrap_or_else(|e| panic!("{e}"));
                    let na = NeighborAdvertisement::new_checked(reply.payload())
                        .unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(na.validate(&reply), Ok(()));
                }
            }
            if let Ok(a) = NeighborAdvertisement::new_checked(&b[l4]) {
                black_box(a.validate(&ip).is_ok());
            }
            let mut out = [0u8; MAX_FRAME];
            if let Ok(n) = write_echo_reply(&mut out, b, 64) {
                let reply = Ipv6Packet::new_checked(&out[..n]).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!((reply.src(), reply.dst()), (dst, src));
                let m =
                    Icmpv6Packet::new_checked(reply.payload()).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(m.msg_type(), icmpv6_type::ECHO_REPLY);
                assert!(m.verify_checksum(dst, src));
            }
        }
        _ => {}
    }
    let me = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let mut out = [0u8; 2 * IPV6_MIN_MTU];
    for err in [
        Icmpv6Error::PacketTooBig { mtu: 1280 },
        Icmpv6Error::DestUnreachable { code: 4 },
    ] {
        if let Ok(n) = write_icmpv6_error(&mut out, me, 64, &err, b) {
            assert!(n <= IPV6_MIN_MTU);
            let e = Ipv6Packet::new_checked(&out[..n]).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((e.src(), e.dst()), (me, src));
            let m = Icmpv6Packet::new_checked(e.payload()).unwrap_or_else(|e| panic!("{e}"));
            assert!(m.verify_checksum(me, src));
            let quoted = m.invoking_packet().unwrap_or_default();
            assert_eq!(quoted, &b[..quoted.len()]);
        }
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
