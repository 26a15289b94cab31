//! Replays the fuzz target's seeds (`fuzz/seeds/vrrp_packet`: adverts
//! captured from keepalived, v2 with a password and v3, a v2 advert without
//! one, and `v3_ipv6*`, IPv6 adverts built by hand like the golden frame of
//! `packet_v6`): each decodes with a valid checksum and is accepted by an
//! instance configured like its sender.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use super::H;
use crate::{
    AddressFamily, Datagram, Input, InstanceConfig, Output, Version, VrrpPacket, AUTH_SIMPLE_TEXT,
    IPPROTO_VRRP,
};

/// The IPv4 seeds' sender and the instance receiving them.
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
/// The IPv6 seeds' sender and the instance receiving them.
const PEER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456));
const ME6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2));

#[test]
fn fuzz_seeds_are_adverts_an_instance_accepts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/vrrp_packet");
    // v2, v3 over IPv4, v3 over IPv6.
    let mut seen = [0; 3];
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.expect("seed").path();
        let data = std::fs::read(&path).expect("seed file");
        let ipv6 = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("v3_ipv6"));
        let (af, peer, me) = if ipv6 {
            (AddressFamily::Ipv6, PEER6, ME6)
        } else {
            (AddressFamily::Ipv4, PEER, ME)
        };
        let dst = af.multicast_group();
        let pkt = VrrpPacket::new_checked(&data[..], af)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(pkt.verify_checksum(peer, dst), "{}", path.display());
        let cfg = InstanceConfig {
            version: pkt.version(),
            advert_interval: pkt.advert_interval(),
            auth: pkt
                .auth_data()
                .filter(|_| pkt.auth_type() == Some(AUTH_SIMPLE_TEXT)),
            ..InstanceConfig::new("seed", pkt.vrid(), 100, pkt.addresses().collect())
        };
        let mut h = H::new(cfg, me);
        h.ev(Input::Start);
        let out = h
            .at(Duration::from_millis(100))
            .ev(Input::Received(Datagram {
                src: peer,
                dst,
                ttl: 255,
                protocol: IPPROTO_VRRP,
                payload: &data,
            }));
        let accepted = Output::Accepted {
            src: peer,
            priority: pkt.priority(),
        };
        assert_eq!(out.first(), Some(&accepted), "{}", path.display());
        let kind = match (pkt.version(), af) {
            (Version::V2, _) => 0,
            (Version::V3, AddressFamily::Ipv4) => 1,
            (Version::V3, AddressFamily::Ipv6) => 2,
        };
        seen[kind] += 1;
    }
    assert!(
        seen.iter().all(|n| *n >= 2),
        "{seen:?} in {}",
        dir.display()
    );
}
