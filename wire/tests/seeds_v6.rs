//! The fuzz target's IPv6 seeds (`fuzz/seeds/ipv6_*`) decode as the frames
//! they stand for, so the fuzzer starts from packets that reach deep into
//! the walker and the ICMPv6 and Neighbor Discovery views.

use std::path::Path;

use wire::{
    ip_proto, EthernetFrame, Icmpv6Packet, Ipv6ChainError, Ipv6Packet, NeighborSolicitation,
    UdpDatagram,
};

fn seed(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ipv6(frame: &[u8]) -> Ipv6Packet<&[u8]> {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    Ipv6Packet::new_checked(&frame[eth.header_len()..]).unwrap()
}

#[test]
fn solicitations_are_valid() {
    for name in ["ipv6_ns", "ipv6_ns_dad"] {
        let f = seed(name);
        let ip = ipv6(&f);
        let up = ip.upper_layer().unwrap();
        assert_eq!(up.protocol, ip_proto::ICMPV6);
        let ns = NeighborSolicitation::new_checked(&ip.payload()[up.offset..]).unwrap();
        assert_eq!(ns.validate(&ip), Ok(()), "{name}");
        assert_eq!(
            ns.source_link_addr().is_some(),
            !ip.src().is_unspecified(),
            "{name}"
        );
    }
}

#[test]
fn echo_request_checksums() {
    let f = seed("ipv6_echo");
    let ip = ipv6(&f);
    let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert_eq!(m.msg_type(), wire::icmpv6_type::ECHO_REQUEST);
    assert!(m.verify_checksum(ip.src(), ip.dst()));
}

#[test]
fn chain_reaches_a_valid_datagram() {
    let f = seed("ipv6_ext_udp");
    let ip = ipv6(&f);
    let up = ip.upper_layer().unwrap();
    assert_eq!((up.protocol, up.offset), (ip_proto::UDP, 16));
    let u = UdpDatagram::new_checked(&ip.payload()[up.offset..]).unwrap();
    assert!(u.verify_checksum_v6(ip.src(), ip.dst()));
}

#[test]
fn fragment_is_reported() {
    let f = seed("ipv6_frag");
    let Err(Ipv6ChainError::Fragment(frag)) = ipv6(&f).upper_layer() else {
        panic!("the fragment seed is not reported as a fragment");
    };
    assert_eq!(
        (frag.next_header, frag.more_frags, frag.ident),
        (ip_proto::TCP, true, 9)
    );
}
