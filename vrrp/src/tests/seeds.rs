//! Replays the fuzz target's seeds (`fuzz/seeds/vrrp_packet`: adverts
//! captured from keepalived, v2 with a password and v3, and a v2 advert
//! without one): each decodes with a valid checksum and is accepted by an
//! instance configured like its sender.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use super::{datagram, H};
use crate::{
    AddressFamily, InstanceConfig, Output, Version, VrrpPacket, AUTH_SIMPLE_TEXT, MULTICAST_V4,
};

/// The seeds' sender.
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

#[test]
fn fuzz_seeds_are_adverts_an_instance_accepts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/vrrp_packet");
    let mut seen = [0; 2];
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.expect("seed").path();
        let data = std::fs::read(&path).expect("seed file");
        let pkt = VrrpPacket::new_checked(&data[..], AddressFamily::Ipv4)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            pkt.verify_checksum(PEER, IpAddr::V4(MULTICAST_V4)),
            "{}",
            path.display()
        );
        let cfg = InstanceConfig {
            version: pkt.version(),
            advert_interval: pkt.advert_interval(),
            auth: pkt
                .auth_data()
                .filter(|_| pkt.auth_type() == Some(AUTH_SIMPLE_TEXT)),
            ..InstanceConfig::new("seed", pkt.vrid(), 100, pkt.addresses().collect())
        };
        let mut h = H::new(cfg, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
        h.ev(crate::Input::Start);
        let out = h
            .at(Duration::from_millis(100))
            .ev(datagram(PEER, 255, &data));
        let accepted = Output::Accepted {
            src: PEER,
            priority: pkt.priority(),
        };
        assert_eq!(out.first(), Some(&accepted), "{}", path.display());
        seen[usize::from(pkt.version() == Version::V3)] += 1;
    }
    assert!(
        seen[0] >= 2 && seen[1] >= 2,
        "{seen:?} in {}",
        dir.display()
    );
}
