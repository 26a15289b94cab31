//! The state machine over IPv6: configuration, addressing, the link-local
//! tie-break and unsolicited Neighbor Advertisements.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use super::{expected_mdi, ip, ll, peer_advert6, vips, vips6, wire6, H, VRID};
use crate::{
    AddressFamily, AdvertHeader, Announcement, Input, Instance, InstanceConfig, Output, State,
    Version, VrrpError, VrrpPacket, IPPROTO_VRRP,
};

const SEC: Duration = Duration::from_secs(1);

fn cfg6(priority: u8) -> InstanceConfig {
    InstanceConfig::new("site-6", VRID, priority, vips6())
}

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().expect("test address"))
}

/// The configuration error of `cfg` with `primary`, which must name the
/// instance and contain `needle`.
fn refused(cfg: InstanceConfig, primary: IpAddr, needle: &str) {
    match Instance::new(cfg.clone(), primary) {
        Err(e @ VrrpError::Config { .. }) => {
            let text = e.to_string();
            assert!(text.contains(&cfg.name), "{text}");
            assert!(text.contains(needle), "{text} lacks {needle:?}");
        }
        other => panic!("{cfg:?} with {primary} gave {other:?}"),
    }
}

#[test]
fn mixed_families_are_refused_naming_the_address() {
    let four = vips()[0];
    let six = vips6()[0];
    for (vips, primary, offender) in [
        (vec![four, six], ip(2), "2001:db8::50"),
        (vec![six, four], ll(2), "10.123.0.50"),
        (vec![six, v6("2001:db8::51"), four], ll(2), "10.123.0.50"),
    ] {
        let cfg = InstanceConfig { vips, ..cfg6(100) };
        refused(cfg.clone(), primary, offender);
        refused(cfg, primary, "one address family");
    }
    refused(cfg6(100), ip(2), "10.0.0.2");
    refused(
        InstanceConfig::new("site-4", VRID, 100, vips()),
        ll(2),
        "fe80::2",
    );
}

#[test]
fn ipv6_needs_version_3() {
    let v2 = InstanceConfig {
        version: Version::V2,
        ..cfg6(100)
    };
    refused(v2.clone(), ll(2), "version 3");
    let with_auth = InstanceConfig {
        auth: Some(*b"secret\0\0"),
        ..v2
    };
    refused(with_auth, ll(2), "site-6");
}

#[test]
fn ipv6_vips_must_be_unicast() {
    for (vip, why) in [
        ("ff02::12", "multicast"),
        ("ff05::1", "multicast"),
        ("::", "unspecified"),
        ("::1", "loopback"),
    ] {
        let cfg = InstanceConfig {
            vips: vec![vips6()[0], v6(vip)],
            ..cfg6(100)
        };
        refused(cfg.clone(), ll(2), why);
        refused(cfg, ll(2), vip);
    }
    for vip in ["fe80::50", "fd00::50", "2001:db8::50", "::ffff:10.0.0.1"] {
        let cfg = InstanceConfig {
            vips: vec![v6(vip)],
            ..cfg6(100)
        };
        assert!(Instance::new(cfg, ll(2)).is_ok(), "{vip}");
    }
}

#[test]
fn ipv6_sources_must_be_link_local() {
    refused(cfg6(100), v6("2001:db8::2"), "link-local");
    let peers = InstanceConfig {
        unicast_peers: vec![ll(3), v6("2001:db8::3")],
        ..cfg6(100)
    };
    refused(peers, ll(2), "2001:db8::3");
    let four_peer = InstanceConfig {
        unicast_peers: vec![ip(3)],
        ..cfg6(100)
    };
    refused(four_peer, ll(2), "10.0.0.3");
    let own = InstanceConfig {
        unicast_peers: vec![ll(2)],
        ..cfg6(100)
    };
    refused(own, ll(2), "own address");
}

#[test]
fn numeric_extremes_hold_for_ipv6() {
    let zero_vrid = InstanceConfig {
        vrid: 0,
        ..cfg6(100)
    };
    refused(zero_vrid, ll(2), "vrid 0");
    refused(cfg6(0), ll(2), "priority 0");
    for ms in [0u64, 5, 105, 40_960, u64::MAX] {
        let cfg = InstanceConfig {
            advert_interval: Duration::from_millis(ms),
            ..cfg6(100)
        };
        refused(cfg, ll(2), "site-6");
    }
    let huge = InstanceConfig {
        advert_interval: Duration::from_secs(u64::MAX),
        ..cfg6(100)
    };
    refused(huge, ll(2), "40.95 s");
    let none = InstanceConfig {
        vips: vec![],
        ..cfg6(100)
    };
    refused(none, ll(2), "no vips");
    let many = InstanceConfig {
        vips: (0..256u32)
            .map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16)))
            .collect(),
        ..cfg6(100)
    };
    refused(many, ll(2), "255 addresses");

    // Priority 255 needs the link-local source among the VIPs.
    refused(cfg6(255), ll(2), "among the vips");
    for (priority, interval) in [(1u8, 10u64), (254, 40_950), (100, 100)] {
        let cfg = InstanceConfig {
            advert_interval: Duration::from_millis(interval),
            ..cfg6(priority)
        };
        let mut h = H::new(cfg, ll(2));
        h.ev(Input::Start);
        let mdi = expected_mdi(Version::V3, Duration::from_millis(interval), priority);
        assert_eq!(h.next(), Some(mdi), "priority {priority}, {interval} ms");
    }
}

#[test]
fn addressing_by_family() {
    let h = H::new(cfg6(100), ll(2));
    assert_eq!(h.inst.address_family(), AddressFamily::Ipv6);
    assert_eq!(h.inst.virtual_mac(), [0x00, 0x00, 0x5e, 0x00, 0x02, VRID]);
    assert_eq!(
        cfg6(100).virtual_mac(),
        [0x00, 0x00, 0x5e, 0x00, 0x02, VRID]
    );
    let four = InstanceConfig::new("site-4", 7, 100, vips());
    assert_eq!(four.virtual_mac(), [0x00, 0x00, 0x5e, 0x00, 0x01, 7]);
    assert_eq!(
        H::new(four, ip(2)).inst.virtual_mac(),
        [0x00, 0x00, 0x5e, 0x00, 0x01, 7]
    );
    assert_eq!(
        h.inst.advert_headers(),
        vec![AdvertHeader {
            src: ll(2),
            dst: v6("ff02::12"),
            ttl: 255,
            protocol: IPPROTO_VRRP,
        }]
    );

    let unicast = H::new(
        InstanceConfig {
            unicast_peers: vec![ll(3), ll(4)],
            ..cfg6(100)
        },
        ll(2),
    );
    let headers = unicast.inst.advert_headers();
    assert_eq!(
        headers.iter().map(|h| h.dst).collect::<Vec<_>>(),
        vec![ll(3), ll(4)]
    );
    for header in &headers {
        let mut buf = [0u8; 64];
        let n = unicast
            .inst
            .encode_advert(150, header, &mut buf)
            .expect("encodes");
        assert_eq!(n, 24);
        let pkt = VrrpPacket::new_checked(&buf[..n], AddressFamily::Ipv6).expect("decodes");
        assert!(pkt.verify_checksum(header.src, header.dst));
        assert_eq!((pkt.vrid(), pkt.priority()), (VRID, 150));
        assert_eq!(pkt.addresses().collect::<Vec<_>>(), vips6());
    }
}

#[test]
fn becoming_master_asks_for_unsolicited_neighbour_advertisements() {
    let vip_list = vec![v6("2001:db8::50"), v6("2001:db8::51"), v6("fe80::50")];
    let cfg = InstanceConfig {
        vips: vip_list,
        ..cfg6(100)
    };
    let mut h = H::new(cfg, ll(2));
    h.ev(Input::Start);
    let due = h.next().unwrap();
    let out = h.at(due).fire();
    assert_eq!(
        out[1..],
        [
            Output::BecomeMaster,
            Output::SendAdvert { priority: 100 },
            Output::SendGratuitousArp
        ]
    );
    assert_eq!(
        h.inst.announcement(),
        Announcement::UnsolicitedNa {
            mac: [0x00, 0x00, 0x5e, 0x00, 0x02, VRID],
            vips: ["2001:db8::50", "2001:db8::51", "fe80::50"]
                .map(|a| a.parse::<Ipv6Addr>().unwrap())
                .to_vec(),
        }
    );
    // IPv4 instances keep gratuitous ARP.
    let four = H::new(InstanceConfig::new("site-4", VRID, 100, vips()), ip(2));
    assert_eq!(
        four.inst.announcement(),
        Announcement::GratuitousArp {
            mac: [0x00, 0x00, 0x5e, 0x00, 0x01, VRID],
            vips: vec!["10.123.0.50".parse().unwrap()],
        }
    );
}

/// The state of a master at `me` after hearing an equal-priority master at `other`.
fn tie(me: IpAddr, other: IpAddr) -> State {
    let mut h = H::new(cfg6(100), me);
    h.ev(Input::Start);
    let due = h.next().unwrap();
    h.at(due).fire();
    assert_eq!(h.inst.state(), State::Master);
    let out = h.recv6(other, &wire6(&peer_advert6(100, SEC), other));
    assert_eq!(
        out[0],
        Output::Accepted {
            src: other,
            priority: 100
        }
    );
    if h.inst.state() == State::Master {
        assert_eq!(
            out[1..],
            [
                Output::SendAdvert { priority: 100 },
                Output::SendGratuitousArp
            ],
            "the winner re-announces"
        );
    }
    h.inst.state()
}

#[test]
fn equal_priority_tie_breaks_on_the_link_local_address_as_a_number() {
    // Higher 128-bit number wins, whichever 16-bit group differs.
    for (low, high) in [
        ("fe80::2", "fe80::3"),
        ("fe80::ff", "fe80::100"),
        ("fe80::ffff:ffff:ffff:ffff", "fe80:0:0:1::"),
        ("fe80::5054:ff:fe12:3456", "fe80::5054:ff:fe12:3457"),
        ("fe80::1", "febf::1"),
    ] {
        assert_eq!(tie(v6(low), v6(high)), State::Backup, "{low} hears {high}");
        assert_eq!(tie(v6(high), v6(low)), State::Master, "{high} hears {low}");
    }
    // A higher priority still beats a higher address.
    let mut h = H::new(cfg6(100), ll(9));
    h.ev(Input::Start);
    let due = h.next().unwrap();
    h.at(due).fire();
    h.recv6(ll(1), &wire6(&peer_advert6(101, SEC), ll(1)));
    assert_eq!(h.inst.state(), State::Backup);
}

#[test]
fn owner_with_a_link_local_vip_starts_as_master() {
    let cfg = InstanceConfig {
        vips: vec![ll(2), vips6()[0]],
        ..cfg6(255)
    };
    let mut h = H::new(cfg, ll(2));
    let out = h.ev(Input::Start);
    assert_eq!(
        out[1..],
        [
            Output::BecomeMaster,
            Output::SendAdvert { priority: 255 },
            Output::SendGratuitousArp
        ]
    );
    assert_eq!(h.next(), Some(SEC));
}
