//! RFC 5798 §7.1 and §5.1.2 over IPv6: every refused advert is counted under
//! its reason and changes neither the state nor the timer.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::validation::refused_dgram;
use super::{ll, ones_complement, peer_advert6, vips6, wire, wire6, H, MCAST, MCAST6, VRID};
use crate::{
    encode, Advert, Datagram, Input, InstanceConfig, Output, State, TimerKind, Version,
    IPPROTO_VRRP, MULTICAST_V6,
};

const SEC: Duration = Duration::from_secs(1);
const ME: u16 = 2;
const PEER: u16 = 3;

fn backup(cfg: InstanceConfig) -> H {
    let mut h = H::new(cfg, ll(ME));
    h.ev(Input::Start);
    h.at(Duration::from_millis(100));
    h
}

fn v6() -> H {
    backup(InstanceConfig::new("site-6", VRID, 100, vips6()))
}

fn good() -> Vec<u8> {
    wire6(&peer_advert6(200, SEC), ll(PEER))
}

fn dgram(src: IpAddr, dst: IpAddr, hop_limit: u8, payload: &[u8]) -> Datagram<'_> {
    Datagram {
        src,
        dst,
        ttl: hop_limit,
        protocol: IPPROTO_VRRP,
        payload,
    }
}

/// Encodes `adv` as sent from `src` to `dst`.
fn sent(adv: &Advert, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let n = encode(&mut buf, adv, src, dst).expect("test advert encodes");
    buf.truncate(n);
    buf
}

/// Rewrites the checksum of a message sent from `src` to ff02::12.
fn fix_checksum(msg: &mut [u8], src: IpAddr) {
    let IpAddr::V6(src) = src else {
        panic!("{src} is not IPv6");
    };
    msg[6..8].fill(0);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&MULTICAST_V6.octets());
    pseudo.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 112]);
    pseudo.extend_from_slice(msg);
    let sum = ones_complement(&pseudo);
    msg[6..8].copy_from_slice(&sum.to_be_bytes());
}

#[test]
fn a_good_advert_is_accepted() {
    let mut h = v6();
    let out = h.recv6(ll(PEER), &good());
    assert_eq!(
        out,
        vec![Output::Accepted {
            src: ll(PEER),
            priority: 200
        }]
    );
    let s = h.inst.stats();
    assert_eq!(
        (s.adverts_received, s.dropped(), s.address_mismatch),
        (1, 0, 0)
    );
    assert_eq!(
        h.timer,
        Some((TimerKind::MasterDown, h.now + h.inst.master_down_interval()))
    );
}

#[test]
fn not_vrrp_and_wrong_family() {
    let mut h = v6();
    let packet = good();
    let mut tcp = dgram(ll(PEER), MCAST6, 255, &packet);
    tcp.protocol = 6;
    refused_dgram(&mut h, tcp, |s| s.protocol_errors, "next header 6");
    let v4_src = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3));
    let v4 = wire(&super::peer_advert(Version::V3, 200, SEC), v4_src);
    refused_dgram(
        &mut h,
        dgram(v4_src, MCAST, 255, &v4),
        |s| s.family_errors,
        "IPv4 advert",
    );
    refused_dgram(
        &mut h,
        dgram(ll(PEER), MCAST, 255, &packet),
        |s| s.family_errors,
        "IPv4 destination",
    );
}

#[test]
fn hop_limit_must_be_255() {
    let mut h = v6();
    let packet = good();
    for hop_limit in [0u8, 1, 64, 254] {
        refused_dgram(
            &mut h,
            dgram(ll(PEER), MCAST6, hop_limit, &packet),
            |s| s.ttl_errors,
            "hop limit",
        );
    }
}

#[test]
fn source_must_be_link_local() {
    let mut h = v6();
    for src in [
        "2001:db8::3",
        "fec0::3",
        "::1",
        "::",
        "ff02::1",
        "::ffff:10.0.0.3",
    ] {
        let src: IpAddr = src.parse().unwrap();
        let packet = wire6(&peer_advert6(200, SEC), src);
        refused_dgram(
            &mut h,
            dgram(src, MCAST6, 255, &packet),
            |s| s.source_errors,
            "non-link-local source",
        );
    }
    // All of fe80::/10 is link-local.
    let edge: IpAddr = "febf:ffff::3".parse().unwrap();
    let out = h.recv6(edge, &wire6(&peer_advert6(200, SEC), edge));
    assert!(matches!(out[0], Output::Accepted { .. }), "{out:?}");
}

#[test]
fn destination_must_be_the_vrrp_group() {
    let mut h = v6();
    for dst in ["ff02::1", "ff02::18", "ff05::12", "fe80::2", "2001:db8::50"] {
        let dst: IpAddr = dst.parse().unwrap();
        let packet = sent(&peer_advert6(200, SEC), ll(PEER), dst);
        refused_dgram(
            &mut h,
            dgram(ll(PEER), dst, 255, &packet),
            |s| s.destination_errors,
            "destination",
        );
    }
    // With unicast peers, adverts come to our own link-local address.
    let mut h = backup(InstanceConfig {
        unicast_peers: vec![ll(PEER)],
        ..InstanceConfig::new("site-6", VRID, 100, vips6())
    });
    let packet = sent(&peer_advert6(200, SEC), ll(PEER), ll(ME));
    h.ev(Input::Received(dgram(ll(PEER), ll(ME), 255, &packet)));
    assert_eq!(h.inst.stats().adverts_received, 1);
    let elsewhere = sent(&peer_advert6(200, SEC), ll(PEER), ll(9));
    refused_dgram(
        &mut h,
        dgram(ll(PEER), ll(9), 255, &elsewhere),
        |s| s.destination_errors,
        "unicast to another node",
    );
}

#[test]
fn only_version_3_is_accepted() {
    let mut h = v6();
    let mut v2 = good();
    v2[0] = 0x21;
    v2.extend_from_slice(&[0; 8]);
    refused_dgram(
        &mut h,
        dgram(ll(PEER), MCAST6, 255, &v2),
        |s| s.v2_over_ipv6,
        "v2 over IPv6",
    );
    for version in [0u8, 1, 4, 15] {
        let mut bad = good();
        bad[0] = version << 4 | 1;
        refused_dgram(
            &mut h,
            dgram(ll(PEER), MCAST6, 255, &bad),
            |s| s.version_errors,
            "version",
        );
    }
    let mut type2 = good();
    type2[0] = 0x32;
    refused_dgram(
        &mut h,
        dgram(ll(PEER), MCAST6, 255, &type2),
        |s| s.type_errors,
        "type 2",
    );
}

#[test]
fn length_must_match_the_count() {
    let mut h = v6();
    let packet = good();
    for len in 0..packet.len() {
        refused_dgram(
            &mut h,
            dgram(ll(PEER), MCAST6, 255, &packet[..len]),
            |s| s.truncated,
            "truncated",
        );
    }
    let mut long = packet.clone();
    long.extend_from_slice(&[0; 4]);
    refused_dgram(
        &mut h,
        dgram(ll(PEER), MCAST6, 255, &long),
        |s| s.length_errors,
        "trailing bytes",
    );
    // An IPv4-style advert (4-byte addresses) sent over IPv6.
    let mut v4_style = packet[..8].to_vec();
    v4_style[3] = 4;
    v4_style.extend_from_slice(&[
        10, 123, 0, 50, 10, 123, 0, 51, 10, 123, 0, 52, 10, 123, 0, 53,
    ]);
    refused_dgram(
        &mut h,
        dgram(ll(PEER), MCAST6, 255, &v4_style),
        |s| s.truncated,
        "count of IPv4 addresses",
    );
    v4_style[3] = 0;
    refused_dgram(
        &mut h,
        dgram(ll(PEER), MCAST6, 255, &v4_style),
        |s| s.length_errors,
        "uncounted IPv4 addresses",
    );
}

#[test]
fn checksum_covers_the_ipv6_pseudo_header() {
    let mut h = v6();
    let mut bad = good();
    bad[2] ^= 0x10;
    refused_dgram(
        &mut h,
        dgram(ll(PEER), MCAST6, 255, &bad),
        |s| s.checksum_errors,
        "payload",
    );
    refused_dgram(
        &mut h,
        dgram(ll(9), MCAST6, 255, &good()),
        |s| s.checksum_errors,
        "pseudo-header source",
    );
    // Checksummed for another destination than the one it arrived at.
    let elsewhere = sent(
        &peer_advert6(200, SEC),
        ll(PEER),
        "ff02::1".parse().unwrap(),
    );
    refused_dgram(
        &mut h,
        dgram(ll(PEER), MCAST6, 255, &elsewhere),
        |s| s.checksum_errors,
        "pseudo-header destination",
    );
}

#[test]
fn vrid_own_adverts_peers_and_owner_claims() {
    let mut h = v6();
    let other = Advert {
        vrid: VRID + 1,
        ..peer_advert6(200, SEC)
    };
    refused_dgram(
        &mut h,
        dgram(ll(PEER), MCAST6, 255, &wire6(&other, ll(PEER))),
        |s| s.other_vrid,
        "vrid",
    );
    let own = wire6(&h.inst.advert(100), ll(ME));
    refused_dgram(
        &mut h,
        dgram(ll(ME), MCAST6, 255, &own),
        |s| s.own_adverts,
        "looped back",
    );
    let claim = wire6(&peer_advert6(255, SEC), ll(PEER));
    refused_dgram(
        &mut h,
        dgram(ll(PEER), MCAST6, 255, &claim),
        |s| s.false_owner,
        "owner claim from a non-VIP source",
    );

    // An owner advertises from a link-local VIP it owns.
    let owned = InstanceConfig::new("site-6", VRID, 100, vec![ll(1), vips6()[0]]);
    let mut h = backup(owned);
    let owner_advert = Advert {
        addresses: vec![ll(1), vips6()[0]],
        ..peer_advert6(255, SEC)
    };
    let out = h.recv6(ll(1), &wire6(&owner_advert, ll(1)));
    assert_eq!(
        out,
        vec![Output::Accepted {
            src: ll(1),
            priority: 255
        }]
    );

    let mut h = backup(InstanceConfig {
        unicast_peers: vec![ll(7)],
        ..InstanceConfig::new("site-6", VRID, 100, vips6())
    });
    refused_dgram(
        &mut h,
        dgram(ll(PEER), MCAST6, 255, &good()),
        |s| s.unknown_peer,
        "stranger",
    );
}

#[test]
fn zero_interval_and_other_addresses() {
    let mut h = v6();
    let mut packet = good();
    packet[4] = 0;
    packet[5] = 0;
    fix_checksum(&mut packet, ll(PEER));
    refused_dgram(
        &mut h,
        dgram(ll(PEER), MCAST6, 255, &packet),
        |s| s.interval_mismatch,
        "zero interval",
    );

    let other = Advert {
        addresses: vec!["2001:db8::99".parse().unwrap()],
        ..peer_advert6(200, SEC)
    };
    h.recv6(ll(PEER), &wire6(&other, ll(PEER)));
    let s = h.inst.stats();
    assert_eq!((s.address_mismatch, s.adverts_received), (1, 1));
    assert_eq!(s.dropped(), 1, "only the zero interval");
}

#[test]
fn refusals_never_move_a_master() {
    let mut h = v6();
    let due = h.next().unwrap();
    h.at(due).fire();
    assert_eq!(h.inst.state(), State::Master);
    let routed: IpAddr = "2001:db8::3".parse().unwrap();
    let stronger = wire6(&peer_advert6(254, SEC), routed);
    refused_dgram(
        &mut h,
        dgram(routed, MCAST6, 255, &stronger),
        |s| s.source_errors,
        "stronger master from a routable source",
    );
    assert_eq!(h.inst.state(), State::Master);
}
