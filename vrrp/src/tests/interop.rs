//! Adverts captured on the wire from a keepalived 2.2.7 peer (source
//! 192.0.2.1, VIPs 10.123.0.50 and 10.123.0.51, advert_int 1): our decoder
//! and instance accept them, and our encoder writes the same bytes.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::{expected_mdi, H, MCAST};
use crate::{encode, AddressFamily, Advert, Input, InstanceConfig, Version, VrrpPacket};

const SEC: Duration = Duration::from_secs(1);
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn peer_vips() -> Vec<IpAddr> {
    vec![
        IpAddr::V4(Ipv4Addr::new(10, 123, 0, 50)),
        IpAddr::V4(Ipv4Addr::new(10, 123, 0, 51)),
    ]
}

struct Capture {
    version: Version,
    vrid: u8,
    auth: Option<[u8; 8]>,
    /// The running master's advert, priority 150.
    live: Vec<u8>,
    /// Its advert on SIGTERM, priority 0.
    stop: Vec<u8>,
}

fn captures() -> [Capture; 2] {
    [
        Capture {
            version: Version::V3,
            vrid: 53,
            auth: None,
            live: hex("31359602006480740a7b00320a7b0033"),
            stop: hex("31350002006416750a7b00320a7b0033"),
        },
        Capture {
            version: Version::V2,
            vrid: 52,
            auth: Some(*b"secret\0\0"),
            live: hex("213496020101f6200a7b00320a7b00337365637265740000"),
            stop: hex("2134000201018c210a7b00320a7b00337365637265740000"),
        },
    ]
}

#[test]
fn encoder_matches_the_captured_bytes() {
    for Capture {
        version,
        vrid,
        auth,
        live,
        stop,
    } in captures()
    {
        for (priority, captured) in [(150u8, live), (0, stop)] {
            let adv = Advert {
                version,
                vrid,
                priority,
                interval: SEC,
                addresses: peer_vips(),
                auth,
            };
            let mut buf = [0u8; 64];
            let n = encode(&mut buf, &adv, PEER, MCAST).expect("encodes");
            assert_eq!(&buf[..n], &captured[..], "{version} priority {priority}");
            let pkt = VrrpPacket::new_checked(&captured[..], AddressFamily::Ipv4).unwrap();
            assert!(pkt.verify_checksum(PEER, MCAST));
            assert_eq!(pkt.addresses().collect::<Vec<_>>(), peer_vips());
        }
    }
}

#[test]
fn instance_follows_the_captured_master() {
    for Capture {
        version,
        vrid,
        auth,
        live,
        stop,
    } in captures()
    {
        let cfg = InstanceConfig {
            version,
            auth,
            ..InstanceConfig::new("site-a", vrid, 100, peer_vips())
        };
        let mut h = H::new(cfg, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
        h.ev(Input::Start);
        let t = Duration::from_millis(400);
        h.at(t).recv(PEER, &live);
        assert_eq!(h.inst.stats().adverts_received, 1, "{version}");
        assert_eq!(h.inst.stats().dropped(), 0, "{version}");
        assert_eq!(h.next(), Some(t + expected_mdi(version, SEC, 100)));
        h.recv(PEER, &stop);
        assert_eq!(h.next(), Some(t + h.inst.skew_time()), "{version}");
    }
}
