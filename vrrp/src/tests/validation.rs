//! RFC 5798 §7.1 / RFC 3768 §7.1: every refused advert is counted under its
//! reason and changes neither the state nor the timer.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::{datagram, fix_v3_checksum, ip, peer_advert, vips, wire, H, MCAST, VRID};
use crate::{
    Advert, Datagram, Input, InstanceConfig, InstanceStats, Output, Rejection, State, TimerKind,
    Version, IPPROTO_VRRP,
};

const SEC: Duration = Duration::from_secs(1);
const PEER: u8 = 3;

fn backup(cfg: InstanceConfig) -> H {
    let mut h = H::new(cfg, ip(2));
    h.ev(Input::Start);
    h.at(Duration::from_millis(100));
    h
}

fn v3() -> H {
    backup(InstanceConfig::new("site-a", VRID, 100, vips()))
}

fn v2(auth: Option<[u8; 8]>) -> H {
    backup(InstanceConfig {
        version: Version::V2,
        auth,
        ..InstanceConfig::new("site-a", VRID, 100, vips())
    })
}

fn good_v3() -> Vec<u8> {
    wire(&peer_advert(Version::V3, 200, SEC), ip(PEER))
}

/// The counter of a rejection reason.
fn count(s: &InstanceStats, reason: Rejection) -> u64 {
    match reason {
        Rejection::NotVrrp => s.protocol_errors,
        Rejection::Family => s.family_errors,
        Rejection::Ttl => s.ttl_errors,
        Rejection::Source => s.source_errors,
        Rejection::Destination => s.destination_errors,
        Rejection::Length => s.length_errors,
        Rejection::V2OverIpv6 => s.v2_over_ipv6,
        Rejection::FalseOwner => s.false_owner,
        Rejection::Version => s.version_errors,
        Rejection::Type => s.type_errors,
        Rejection::Truncated => s.truncated,
        Rejection::Checksum => s.checksum_errors,
        Rejection::OtherVrid => s.other_vrid,
        Rejection::OwnAdvert => s.own_adverts,
        Rejection::UnknownPeer => s.unknown_peer,
        Rejection::Auth => s.auth_errors,
        Rejection::Interval => s.interval_mismatch,
        Rejection::Addresses => s.address_mismatch,
    }
}

/// Feeds one packet and checks it was refused with exactly `counter` moving
/// by one.
fn refused(
    h: &mut H,
    src: IpAddr,
    ttl: u8,
    packet: &[u8],
    counter: fn(&InstanceStats) -> u64,
    what: &str,
) {
    let dgram = Datagram {
        src,
        dst: MCAST,
        ttl,
        protocol: IPPROTO_VRRP,
        payload: packet,
    };
    refused_dgram(h, dgram, counter, what);
}

/// Feeds one datagram and checks it was refused with exactly `counter`
/// moving by one, and nothing else changed.
pub(super) fn refused_dgram(
    h: &mut H,
    dgram: Datagram<'_>,
    counter: fn(&InstanceStats) -> u64,
    what: &str,
) {
    let src = dgram.src;
    let before = h.inst.stats().clone();
    let (state, timer) = (h.inst.state(), h.timer);
    let out = h.ev(Input::Received(dgram));
    let after = h.inst.stats();
    let [Output::Rejected { src: from, reason }] = out[..] else {
        panic!("{what}: {out:?}");
    };
    assert_eq!(from, src, "{what}");
    assert_eq!(counter(after), counter(&before) + 1, "{what}");
    assert_eq!(
        count(after, reason),
        count(&before, reason) + 1,
        "{what}: reported as {reason:?}"
    );
    assert_eq!(
        after.dropped(),
        before.dropped() + 1,
        "{what}: one reason only"
    );
    assert_eq!(after.adverts_received, before.adverts_received, "{what}");
    assert_eq!((h.inst.state(), h.timer), (state, timer), "{what}");
}

#[test]
fn only_vrrp_is_processed() {
    let mut h = v3();
    let packet = good_v3();
    let out = h.ev(Input::Received(Datagram {
        src: ip(PEER),
        dst: MCAST,
        ttl: 255,
        protocol: 6,
        payload: &packet,
    }));
    let reason = Rejection::NotVrrp;
    assert_eq!(
        out,
        vec![Output::Rejected {
            src: ip(PEER),
            reason
        }]
    );
    let s = h.inst.stats();
    assert_eq!(
        (s.protocol_errors, s.dropped(), s.adverts_received),
        (1, 1, 0)
    );
}

#[test]
fn only_the_owner_may_claim_priority_255() {
    let mut h = v3();
    let claim = wire(&peer_advert(Version::V3, 255, SEC), ip(PEER));
    refused(&mut h, ip(PEER), 255, &claim, |s| s.false_owner, "stranger");
    // The claim is what counts, whatever else is wrong with the advert.
    refused(
        &mut h,
        ip(PEER),
        255,
        &claim[..3],
        |s| s.false_owner,
        "truncated claim",
    );
    refused(
        &mut h,
        ip(PEER),
        64,
        &claim,
        |s| s.ttl_errors,
        "routed claim",
    );
    let other = Advert {
        vrid: VRID + 1,
        ..peer_advert(Version::V3, 255, SEC)
    };
    refused(
        &mut h,
        ip(PEER),
        255,
        &wire(&other, ip(PEER)),
        |s| s.other_vrid,
        "another router's owner",
    );

    let owner = vips()[0];
    let out = h.recv(owner, &wire(&peer_advert(Version::V3, 255, SEC), owner));
    assert_eq!(
        out,
        vec![Output::Accepted {
            src: owner,
            priority: 255
        }]
    );
}

#[test]
fn ttl_must_be_255() {
    let mut h = v3();
    for ttl in [0u8, 1, 64, 254] {
        refused(&mut h, ip(PEER), ttl, &good_v3(), |s| s.ttl_errors, "ttl");
    }
}

#[test]
fn version_must_match() {
    let mut h = v3();
    let v2_packet = wire(&peer_advert(Version::V2, 200, SEC), ip(PEER));
    refused(
        &mut h,
        ip(PEER),
        255,
        &v2_packet,
        |s| s.version_errors,
        "v2 to v3",
    );
    let mut v4 = good_v3();
    v4[0] = 0x41;
    refused(
        &mut h,
        ip(PEER),
        255,
        &v4,
        |s| s.version_errors,
        "version 4",
    );
    let mut t2 = good_v3();
    t2[0] = 0x32;
    refused(&mut h, ip(PEER), 255, &t2, |s| s.type_errors, "type 2");

    let mut h = v2(None);
    refused(
        &mut h,
        ip(PEER),
        255,
        &good_v3(),
        |s| s.version_errors,
        "v3 to v2",
    );
}

#[test]
fn checksum_must_verify() {
    let mut h = v3();
    let mut bad = good_v3();
    bad[2] ^= 0x10;
    refused(
        &mut h,
        ip(PEER),
        255,
        &bad,
        |s| s.checksum_errors,
        "payload",
    );
    refused(
        &mut h,
        ip(9),
        255,
        &good_v3(),
        |s| s.checksum_errors,
        "pseudo-header source",
    );
}

#[test]
fn other_vrid_own_adverts_and_strangers() {
    let mut h = v3();
    let other = Advert {
        vrid: VRID + 1,
        ..peer_advert(Version::V3, 200, SEC)
    };
    refused(
        &mut h,
        ip(PEER),
        255,
        &wire(&other, ip(PEER)),
        |s| s.other_vrid,
        "vrid",
    );
    let own = wire(&h.inst.advert(100), ip(2));
    refused(&mut h, ip(2), 255, &own, |s| s.own_adverts, "looped back");

    let mut h = backup(InstanceConfig {
        unicast_peers: vec![ip(7)],
        ..InstanceConfig::new("site-a", VRID, 100, vips())
    });
    refused(
        &mut h,
        ip(PEER),
        255,
        &good_v3(),
        |s| s.unknown_peer,
        "stranger",
    );
    let listed = wire(&peer_advert(Version::V3, 200, SEC), ip(7));
    h.recv(ip(7), &listed);
    assert_eq!(h.inst.stats().adverts_received, 1);
}

#[test]
fn truncated_at_every_length() {
    let mut h = v3();
    let good = good_v3();
    for len in 0..good.len() {
        refused(
            &mut h,
            ip(PEER),
            255,
            &good[..len],
            |s| s.truncated,
            "truncated",
        );
    }
    assert_eq!(h.inst.stats().truncated, good.len() as u64);
}

#[test]
fn v3_zero_interval_is_refused() {
    let mut h = v3();
    let mut zero = good_v3();
    zero[4] = 0;
    zero[5] = 0;
    fix_v3_checksum(
        &mut zero,
        Ipv4Addr::new(10, 0, 0, PEER),
        Ipv4Addr::new(224, 0, 0, 18),
    );
    refused(
        &mut h,
        ip(PEER),
        255,
        &zero,
        |s| s.interval_mismatch,
        "zero",
    );
}

#[test]
fn v3_address_mismatch_is_logged_and_processed() {
    let mut h = v3();
    let other = Advert {
        addresses: vec![ip(99)],
        ..peer_advert(Version::V3, 200, SEC)
    };
    h.recv(ip(PEER), &wire(&other, ip(PEER)));
    let s = h.inst.stats();
    assert_eq!((s.address_mismatch, s.adverts_received), (1, 1));
    assert_eq!(s.dropped(), 0);
    let expected = h.now + h.inst.master_down_interval();
    assert_eq!(
        h.timer,
        Some((TimerKind::MasterDown, expected)),
        "timer was reset"
    );
}

#[test]
fn v2_checks_interval_auth_and_addresses() {
    let pass = *b"s3cret\0\0";
    let adv = |priority: u8, interval, auth, addresses| Advert {
        version: Version::V2,
        vrid: VRID,
        priority,
        interval,
        addresses,
        auth,
    };
    let mut h = v2(Some(pass));
    let wrong_interval = wire(&adv(200, 2 * SEC, Some(pass), vips()), ip(PEER));
    refused(
        &mut h,
        ip(PEER),
        255,
        &wrong_interval,
        |s| s.interval_mismatch,
        "interval",
    );
    let wrong_pass = wire(&adv(200, SEC, Some(*b"guess\0\0\0"), vips()), ip(PEER));
    refused(
        &mut h,
        ip(PEER),
        255,
        &wrong_pass,
        |s| s.auth_errors,
        "password",
    );
    let no_auth = wire(&adv(200, SEC, None, vips()), ip(PEER));
    refused(
        &mut h,
        ip(PEER),
        255,
        &no_auth,
        |s| s.auth_errors,
        "no auth",
    );

    let before = h.timer;
    let other_vips = wire(&adv(200, SEC, Some(pass), vec![ip(99)]), ip(PEER));
    h.recv(ip(PEER), &other_vips);
    let s = h.inst.stats();
    assert_eq!((s.address_mismatch, s.adverts_received), (1, 0), "v2 drops");
    assert_eq!(h.timer, before);
    let owner = vips()[0];
    let owner_advert = wire(&adv(255, SEC, Some(pass), vec![ip(99)]), owner);
    h.recv(owner, &owner_advert);
    let s = h.inst.stats();
    assert_eq!(
        (s.address_mismatch, s.adverts_received),
        (2, 1),
        "unless from the owner"
    );

    let good = wire(&adv(200, SEC, Some(pass), vips()), ip(PEER));
    h.recv(ip(PEER), &good);
    assert_eq!(h.inst.stats().adverts_received, 2);

    let mut open = v2(None);
    refused(
        &mut open,
        ip(PEER),
        255,
        &good,
        |s| s.auth_errors,
        "auth we lack",
    );
    open.recv(ip(PEER), &no_auth);
    assert_eq!(open.inst.stats().adverts_received, 1);
}

/// xorshift64: deterministic noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn flood_of_garbage() {
    const N: u64 = 10_000;
    let mut h = v3();
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut buf = [0u8; 64];
    for _ in 0..N {
        let len = (noise.next() % 64) as usize;
        for b in buf.iter_mut() {
            *b = noise.next() as u8;
        }
        // Most get a plausible header so they reach the deeper checks.
        match noise.next() % 4 {
            0 => {}
            1 => buf[0] = 0x31,
            _ => {
                buf[0] = 0x31;
                buf[1] = VRID;
                buf[3] %= 4;
            }
        }
        let src = ip((noise.next() % 4) as u8 + 1);
        h.ev(datagram(src, 255, &buf[..len]));
    }
    let s = h.inst.stats();
    assert_eq!(s.dropped() + s.adverts_received, N, "{s:?}");
    assert!(
        s.truncated > 0 && s.checksum_errors > 0 && s.version_errors > 0,
        "{s:?}"
    );
    assert!(s.type_errors > 0, "{s:?}");
    assert_eq!(h.inst.state(), State::Backup);
}
