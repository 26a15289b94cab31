//! Session transcripts: Adj-RIB-Out, eBGP/iBGP attributes, received prefixes and max-prefix.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use bgp::message::{code, AsPath, MpReach, Open, Origin, PathAttributes, Update, AS_TRANS};
use bgp::{Family, Input, Message, Output, Prefix, Route, SessionCtx, State};
use common::*;

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn nh() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 20, 1, 2))
}

fn route(prefix: &str) -> Route {
    Route::new(p(prefix), nh())
}

fn announced(updates: &[Update]) -> Vec<Prefix> {
    updates
        .iter()
        .flat_map(|u| u.announced().copied())
        .collect()
}

#[test]
fn routes_known_before_established_go_out_then_end_of_rib() {
    let mut h = Harness::new(config(65001, 65000));
    let mut r = route("10.0.0.0/25");
    r.med = Some(10);
    r.communities = vec![(65001 << 16) | 1];
    r.large_communities = vec![[65001, 1, 2]];
    h.feed(Input::Announce(r));
    h.feed(Input::Announce(route("10.0.1.0/24")));
    h.feed(Input::Announce(Route::new(
        p("2001:db8:1::/48"),
        "2001:db8::2".parse().unwrap(),
    )));
    let out = h.establish_with(peer_open(65000, 90));
    let ups = sent_updates(&out, h.ctx);
    // v4 routes, v4 End-of-RIB, v6 route, v6 End-of-RIB, in that order.
    let eor_at: Vec<usize> = ups
        .iter()
        .enumerate()
        .filter(|(_, u)| u.end_of_rib_family().is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(eor_at.len(), 2);
    assert_eq!(
        announced(&ups[..eor_at[0]]),
        vec![p("10.0.0.0/25"), p("10.0.1.0/24")]
    );
    assert_eq!(
        announced(&ups[eor_at[0]..eor_at[1]]),
        vec![p("2001:db8:1::/48")]
    );
    assert_eq!(eor_at[1], ups.len() - 1);

    let first = &ups[0].attributes;
    assert_eq!(first.origin, Some(Origin::Igp));
    assert_eq!(first.as_path, Some(AsPath::sequence(vec![65001])));
    assert_eq!(first.next_hop, Some(Ipv4Addr::new(10, 20, 1, 2)));
    assert_eq!(first.med, Some(10));
    assert_eq!(first.local_pref, None, "no LOCAL_PREF on eBGP");
    assert_eq!(first.communities, vec![(65001 << 16) | 1]);
    assert_eq!(first.large_communities, vec![[65001, 1, 2]]);
    let v6 = ups
        .iter()
        .find_map(|u| u.attributes.mp_reach.as_ref())
        .unwrap();
    assert_eq!(v6.next_hop, "2001:db8::2".parse::<IpAddr>().unwrap());
    assert_eq!(h.s.stats().prefixes_advertised, 3);
}

#[test]
fn ebgp_prepends_own_as_plus_extra_copies() {
    let mut h = Harness::new(config(65001, 65000));
    let mut r = route("10.0.0.0/24");
    r.prepend = 2;
    h.feed(Input::Announce(r));
    let out = h.establish_with(peer_open(65000, 90));
    let ups = sent_updates(&out, h.ctx);
    assert_eq!(
        ups[0].attributes.as_path,
        Some(AsPath::sequence(vec![65001; 3]))
    );
}

#[test]
fn ibgp_sends_local_pref_and_empty_path() {
    let mut h = Harness::new(config(65001, 65001));
    let mut custom = route("10.0.1.0/24");
    custom.local_pref = Some(250);
    h.feed(Input::Announce(route("10.0.0.0/24")));
    h.feed(Input::Announce(custom));
    let out = h.establish_with(peer_open(65001, 90));
    let ups = sent_updates(&out, h.ctx);
    let lp: Vec<(Prefix, Option<u32>)> = ups
        .iter()
        .flat_map(|u| u.nlri.iter().map(|p| (*p, u.attributes.local_pref)))
        .collect();
    assert_eq!(
        lp,
        vec![(p("10.0.0.0/24"), Some(100)), (p("10.0.1.0/24"), Some(250))]
    );
    assert_eq!(ups[0].attributes.as_path, Some(AsPath::default()));
}

#[test]
fn incremental_announce_and_withdraw_after_established() {
    let mut h = Harness::new(config(65001, 65000));
    h.establish_with(peer_open(65000, 90));
    let out = h.feed(Input::Announce(route("10.0.0.0/25")));
    assert_eq!(
        announced(&sent_updates(&out, h.ctx)),
        vec![p("10.0.0.0/25")]
    );
    // The same route again is not resent.
    let out = h.feed(Input::Announce(route("10.0.0.0/25")));
    assert!(sent(&out, h.ctx).is_empty());
    // A changed route is.
    let mut changed = route("10.0.0.0/25");
    changed.prepend = 1;
    let out = h.feed(Input::Announce(changed));
    assert_eq!(sent_updates(&out, h.ctx).len(), 1);

    let out = h.feed(Input::Withdraw(p("10.0.0.0/25")));
    let ups = sent_updates(&out, h.ctx);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].withdrawn, vec![p("10.0.0.0/25")]);
    // Withdrawing what is not announced sends nothing.
    let out = h.feed(Input::Withdraw(p("10.0.0.0/25")));
    assert!(sent(&out, h.ctx).is_empty());

    h.feed(Input::Announce(Route::new(
        p("2001:db8::/32"),
        "2001:db8::2".parse().unwrap(),
    )));
    let out = h.feed(Input::Withdraw(p("2001:db8::/32")));
    let ups = sent_updates(&out, h.ctx);
    assert_eq!(
        ups[0].attributes.mp_unreach.as_ref().unwrap().withdrawn,
        vec![p("2001:db8::/32")]
    );
    assert_eq!(h.s.stats().prefixes_advertised, 0);
}

#[test]
fn many_routes_are_split_into_messages_under_4096_octets() {
    let mut h = Harness::new(config(65001, 65000));
    for i in 0..3000u32 {
        let pfx = Prefix::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))), 24).unwrap();
        h.feed(Input::Announce(Route::new(pfx, nh())));
    }
    let out = h.establish_with(peer_open(65000, 90));
    let mut n = 0;
    for o in &out {
        if let Output::Send(b) = o {
            assert!(b.len() <= 4096);
        }
    }
    for u in sent_updates(&out, h.ctx) {
        n += u.nlri.len();
    }
    assert_eq!(n, 3000);
}

#[test]
fn two_octet_peer_gets_as_trans_and_as4_path() {
    let mut h = Harness::new(config(4_200_000_001, 65000));
    h.feed(Input::Announce(route("10.0.0.0/24")));
    // A peer without the 4-octet capability.
    let out = h.establish_with(Open::new(65000, 90, PEER_ID, vec![]));
    assert_eq!(h.s.state(), State::Established);
    assert!(!h.s.negotiated().unwrap().four_octet_as);
    let mut raw = Vec::new();
    for o in &out {
        if let Output::Send(b) = o {
            raw.extend_from_slice(b);
        }
    }
    let trans = AS_TRANS.to_be_bytes();
    let as_path = [0x40, 2, 4, 2, 1, trans[0], trans[1]];
    assert!(raw.windows(7).any(|w| w == as_path));
    let ups = sent_updates(&out, SessionCtx::default());
    assert_eq!(
        ups[0].attributes.as_path,
        Some(AsPath::sequence(vec![4_200_000_001]))
    );
}

fn peer_update(prefixes: &[&str]) -> Message {
    Message::Update(Box::new(Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![65000])),
            next_hop: Some(Ipv4Addr::new(10, 20, 1, 1)),
            ..PathAttributes::default()
        },
        nlri: prefixes.iter().map(|s| p(s)).collect(),
        ..Update::default()
    }))
}

#[test]
fn received_prefixes_are_counted_not_double_counted() {
    let mut h = Harness::new(config(65001, 65000));
    h.establish_with(peer_open(65000, 90));
    let out = h.peer_sends(&peer_update(&["192.0.2.0/24", "198.51.100.0/24"]));
    assert!(out.contains(&Output::RoutesReceived {
        announced: vec![p("192.0.2.0/24"), p("198.51.100.0/24")],
        withdrawn: vec![]
    }));
    h.peer_sends(&peer_update(&["192.0.2.0/24"]));
    assert_eq!(h.s.stats().prefixes_received_v4, 2);
    h.peer_sends(&Message::Update(Box::new(Update {
        withdrawn: vec![p("192.0.2.0/24")],
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![65000])),
            mp_reach: Some(MpReach {
                family: Family::Ipv6Unicast,
                next_hop: "2001:db8::1".parse().unwrap(),
                link_local: None,
                nlri: vec![p("2001:db8:5::/48")],
            }),
            ..PathAttributes::default()
        },
        ..Update::default()
    })));
    assert_eq!(h.s.stats().prefixes_received_v4, 1);
    assert_eq!(h.s.stats().prefixes_received_v6, 1);
    assert_eq!(h.s.stats().updates_in, 3);
}

#[test]
fn treat_as_withdraw_removes_the_prefixes() {
    let mut h = Harness::new(config(65001, 65000));
    h.establish_with(peer_open(65000, 90));
    h.peer_sends(&peer_update(&["192.0.2.0/24"]));
    // Same prefix, ORIGIN missing: handled as a withdrawal, the session stays up.
    let mut bad = peer_update(&["192.0.2.0/24"]);
    if let Message::Update(u) = &mut bad {
        u.attributes.origin = None;
    }
    let out = h.peer_sends(&bad);
    assert_eq!(h.s.state(), State::Established);
    assert_eq!(h.s.stats().prefixes_received_v4, 0);
    assert_eq!(h.s.stats().treat_as_withdraw, 1);
    assert!(logs(&out, bgp::session::LogLevel::Warn)
        .iter()
        .any(|l| l.contains("ORIGIN")));
}

#[test]
fn max_prefixes_exceeded_sends_cease() {
    let mut cfg = config(65001, 65000);
    cfg.max_prefixes = Some(2);
    let mut h = Harness::new(cfg);
    h.establish_with(peer_open(65000, 90));
    let out = h.peer_sends(&peer_update(&["192.0.2.0/24", "198.51.100.0/24"]));
    assert_eq!(h.s.state(), State::Established);
    assert!(sent_notification(&out).is_none());
    let out = h.peer_sends(&peer_update(&["203.0.113.0/24"]));
    let n = sent_notification(&out).unwrap();
    assert_eq!(
        (n.code, n.subcode),
        (code::CEASE, code::cease::MAX_PREFIXES)
    );
    // AFI 1, SAFI 1, limit 2 (RFC 4486 §4).
    assert_eq!(n.data, vec![0, 1, 1, 0, 0, 0, 2]);
    assert_eq!(h.s.state(), State::Idle);
    assert!(down_reason(&out).unwrap().contains("max_prefixes 2"));
    assert_eq!(
        h.s.stats().prefixes_received_v4,
        0,
        "counts reset with the session"
    );
}

#[test]
fn route_refresh_resends_the_family() {
    let mut h = Harness::new(config(65001, 65000));
    h.feed(Input::Announce(route("10.0.0.0/24")));
    h.establish_with(peer_open(65000, 90));
    let out = h.peer_sends(&Message::RouteRefresh {
        afi: 1,
        subtype: 0,
        safi: 1,
    });
    let ups = sent_updates(&out, h.ctx);
    assert_eq!(announced(&ups), vec![p("10.0.0.0/24")]);
    assert_eq!(
        ups.last().unwrap().end_of_rib_family(),
        Some(Family::Ipv4Unicast)
    );
}

#[test]
fn ipv4_route_with_ipv6_next_hop_is_refused_with_a_log() {
    let mut h = Harness::new(config(65001, 65000));
    h.establish_with(peer_open(65000, 90));
    let out = h.feed(Input::Announce(Route::new(
        p("10.0.0.0/24"),
        "2001:db8::1".parse().unwrap(),
    )));
    assert!(sent(&out, h.ctx).is_empty());
    assert!(logs(&out, bgp::session::LogLevel::Error)
        .iter()
        .any(|l| l.contains("10.0.0.0/24") && l.contains("next hop")));
}

#[test]
fn ebgp_path_must_start_with_the_peer_as_unless_disabled() {
    let foreign = |h: &mut Harness| {
        let mut m = peer_update(&["192.0.2.0/24"]);
        if let Message::Update(u) = &mut m {
            u.attributes.as_path = Some(AsPath::sequence(vec![65099, 65000]));
        }
        h.peer_sends(&m)
    };
    let mut h = Harness::new(config(65001, 65000));
    h.establish_with(peer_open(65000, 90));
    let out = foreign(&mut h);
    assert_eq!(h.s.state(), State::Established);
    assert_eq!(h.s.stats().prefixes_received_v4, 0);
    assert_eq!(h.s.stats().treat_as_withdraw, 1);
    assert!(logs(&out, bgp::session::LogLevel::Warn)
        .iter()
        .any(|l| l.contains("AS65099")));

    let mut cfg = config(65001, 65000);
    cfg.enforce_first_as = false;
    let mut h = Harness::new(cfg);
    h.establish_with(peer_open(65000, 90));
    foreign(&mut h);
    assert_eq!(h.s.stats().prefixes_received_v4, 1);
}
