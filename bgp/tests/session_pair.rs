//! Two sessions wired to each other: vipd's side (AS 65001, connects) and a
//! peer built from the same crate (AS 65000, passive). Every octet one sends is
//! fed to the other, so the OPEN exchange, the negotiated families and the
//! IPv6 routes are checked end to end.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use bgp::message::{MpReach, Update};
use bgp::session::LogLevel;
use bgp::{
    decode, Family, Input, Ipv6NextHop, Message, Output, PeerConfig, Prefix, Route, Session,
    SessionCtx, State,
};

const CTX: SessionCtx = SessionCtx {
    four_octet_as: true,
};

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn ours() -> PeerConfig {
    let mut c = PeerConfig::new("2001:db8:1::1", 65001, 65000, Ipv4Addr::new(10, 20, 1, 2));
    c.ipv6_next_hop = Some(Ipv6NextHop {
        global: v6("2001:db8:1::2"),
        link_local: Some(v6("fe80::2")),
    });
    c
}

fn theirs() -> PeerConfig {
    let mut c = PeerConfig::new("2001:db8:1::2", 65000, 65001, Ipv4Addr::new(10, 20, 1, 1));
    c.passive = true;
    c
}

/// A default IPv4 next hop, as the daemon passes for every route.
fn route(prefix: &str) -> Route {
    Route::new(p(prefix), IpAddr::V4(Ipv4Addr::new(10, 20, 1, 2)))
}

/// Everything each side emitted, by side.
#[derive(Default)]
struct Seen {
    ours: Vec<Output>,
    theirs: Vec<Output>,
}

impl Seen {
    fn received(&self) -> (Vec<Prefix>, Vec<Prefix>) {
        let mut a = Vec::new();
        let mut w = Vec::new();
        for o in &self.theirs {
            if let Output::RoutesReceived {
                announced,
                withdrawn,
            } = o
            {
                a.extend_from_slice(announced);
                w.extend_from_slice(withdrawn);
            }
        }
        (a, w)
    }

    /// The UPDATEs our side sent.
    fn updates(&self) -> Vec<Update> {
        let mut v = Vec::new();
        for o in &self.ours {
            if let Output::Send(b) = o {
                if let Ok(Some((Message::Update(u), _))) = decode(b, &CTX) {
                    v.push(*u);
                }
            }
        }
        v
    }

    fn logs(&self, level: LogLevel) -> Vec<&str> {
        self.ours
            .iter()
            .chain(&self.theirs)
            .filter_map(|o| match o {
                Output::Log(l, m) if *l == level => Some(m.as_str()),
                _ => None,
            })
            .collect()
    }
}

struct Pair {
    ours: Session,
    theirs: Session,
    now: Instant,
}

impl Pair {
    fn new(ours: PeerConfig, theirs: PeerConfig) -> Pair {
        Pair {
            ours: Session::new(ours),
            theirs: Session::new(theirs),
            now: Instant::now(),
        }
    }

    /// Feeds `input` to our side, then carries octets both ways until both are quiet.
    fn ours(&mut self, input: Input) -> Seen {
        let mut seen = Seen::default();
        let mut out = Vec::new();
        self.ours.handle(input, self.now, &mut out);
        self.deliver(out, &mut seen);
        seen
    }

    fn deliver(&mut self, mut from_ours: Vec<Output>, seen: &mut Seen) {
        while !from_ours.is_empty() {
            let mut from_theirs = Vec::new();
            for o in &from_ours {
                if let Output::Send(b) = o {
                    self.theirs
                        .handle(Input::Bytes(b), self.now, &mut from_theirs);
                }
            }
            seen.ours.append(&mut from_ours);
            for o in &from_theirs {
                if let Output::Send(b) = o {
                    self.ours.handle(Input::Bytes(b), self.now, &mut from_ours);
                }
            }
            seen.theirs.append(&mut from_theirs);
        }
    }

    /// Starts both sides and reports the TCP connection up on each.
    fn connect(&mut self) -> Seen {
        let mut seen = Seen::default();
        let mut from_theirs = Vec::new();
        self.theirs.handle(Input::Start, self.now, &mut from_theirs);
        self.theirs
            .handle(Input::TcpConnected, self.now, &mut from_theirs);
        let mut from_ours = Vec::new();
        self.ours.handle(Input::Start, self.now, &mut from_ours);
        assert!(from_ours.contains(&Output::Connect));
        self.ours
            .handle(Input::TcpConnected, self.now, &mut from_ours);
        for o in &from_theirs {
            if let Output::Send(b) = o {
                self.ours.handle(Input::Bytes(b), self.now, &mut from_ours);
            }
        }
        seen.theirs.append(&mut from_theirs);
        self.deliver(from_ours, &mut seen);
        assert_eq!(self.ours.state(), State::Established);
        assert_eq!(self.theirs.state(), State::Established);
        seen
    }
}

#[test]
fn both_negotiate_ipv6_and_exchange_routes() {
    let mut pair = Pair::new(ours(), theirs());
    pair.ours(Input::Announce(route("10.0.0.0/24")));
    pair.ours(Input::Announce(route("2001:db8::/48")));
    pair.ours(Input::Announce(route("2001:db8::/47")));
    let seen = pair.connect();

    let both = vec![Family::Ipv4Unicast, Family::Ipv6Unicast];
    for s in [&pair.ours, &pair.theirs] {
        let n = s.negotiated().unwrap();
        assert_eq!((&n.families, &n.peer_families), (&both, &both));
    }
    let (announced, withdrawn) = seen.received();
    assert_eq!(
        announced,
        vec![p("10.0.0.0/24"), p("2001:db8::/47"), p("2001:db8::/48")]
    );
    assert!(withdrawn.is_empty());
    assert_eq!(pair.theirs.stats().prefixes_received_v6, 2);
    assert_eq!(pair.theirs.stats().prefixes_received_v4, 1);
    assert!(seen
        .logs(LogLevel::Info)
        .iter()
        .any(|l| l.contains("End-of-RIB received for ipv6-unicast")));

    // The /47 and /48 share their attributes, so one MP_REACH carries both,
    // with our global and link-local next hop and no NEXT_HOP attribute.
    let ups = seen.updates();
    let reach: Vec<&MpReach> = ups
        .iter()
        .filter_map(|u| u.attributes.mp_reach.as_ref())
        .collect();
    assert_eq!(reach.len(), 1);
    assert_eq!(reach[0].nlri, vec![p("2001:db8::/47"), p("2001:db8::/48")]);
    assert!(reach[0].nlri[0].covers(&reach[0].nlri[1]));
    assert_eq!(reach[0].next_hop, IpAddr::V6(v6("2001:db8:1::2")));
    assert_eq!(reach[0].link_local, Some(v6("fe80::2")));
    for u in ups.iter().filter(|u| u.attributes.mp_reach.is_some()) {
        assert_eq!(u.attributes.next_hop, None);
        assert!(u.nlri.is_empty() && u.withdrawn.is_empty());
    }

    // Withdrawing one travels in MP_UNREACH_NLRI only.
    let seen = pair.ours(Input::Withdraw(p("2001:db8::/48")));
    assert_eq!(seen.received(), (vec![], vec![p("2001:db8::/48")]));
    let ups = seen.updates();
    assert_eq!(ups.len(), 1);
    assert!(ups[0].withdrawn.is_empty());
    assert_eq!(
        ups[0].attributes.mp_unreach.as_ref().unwrap().withdrawn,
        vec![p("2001:db8::/48")]
    );
    assert_eq!(pair.theirs.stats().prefixes_received_v6, 1);

    // An announcement after Established goes out at once.
    let seen = pair.ours(Input::Announce(route("2001:db8:ff::/48")));
    assert_eq!(seen.received(), (vec![p("2001:db8:ff::/48")], vec![]));
    assert_eq!(pair.ours.stats().prefixes_advertised, 3);
}

#[test]
fn peer_without_ipv6_gets_no_ipv6_routes_and_we_say_so() {
    let mut cfg = theirs();
    cfg.families = vec![Family::Ipv4Unicast];
    let mut pair = Pair::new(ours(), cfg);
    pair.ours(Input::Announce(route("10.0.0.0/24")));
    pair.ours(Input::Announce(route("2001:db8::/48")));
    let seen = pair.connect();

    let n = pair.ours.negotiated().unwrap();
    assert_eq!(n.families, vec![Family::Ipv4Unicast]);
    assert_eq!(n.peer_families, vec![Family::Ipv4Unicast]);
    assert_eq!(seen.received(), (vec![p("10.0.0.0/24")], vec![]));
    for u in seen.updates() {
        assert!(u.attributes.mp_reach.is_none() && u.attributes.mp_unreach.is_none());
    }
    assert_eq!(pair.theirs.stats().prefixes_received_v6, 0);
    assert_eq!(pair.ours.stats().prefixes_advertised, 1);
    let warned = |seen: &Seen, what: &str| {
        seen.logs(LogLevel::Warn).iter().any(|l| {
            l.starts_with("BGP peer 2001:db8:1::1 (AS65000)")
                && l.contains(what)
                && l.contains("the peer did not offer ipv6-unicast")
        })
    };
    assert!(warned(&seen, "1 ipv6-unicast routes not announced"));

    // A later IPv6 announcement is held back with the same explanation.
    let seen = pair.ours(Input::Announce(route("2001:db8:1::/48")));
    assert!(seen.updates().is_empty());
    assert!(warned(&seen, "route 2001:db8:1::/48 not announced"));
    // The route is kept: it goes out once a session negotiates IPv6.
    assert_eq!(pair.ours.advertised().count(), 3);
}

#[test]
fn ipv6_routes_we_do_not_offer_are_logged_as_ours_to_fix() {
    let mut cfg = ours();
    cfg.families = vec![Family::Ipv4Unicast];
    cfg.ipv6_next_hop = None;
    let mut pair = Pair::new(cfg, theirs());
    pair.ours(Input::Announce(Route::new(
        p("2001:db8::/48"),
        IpAddr::V6(v6("2001:db8:1::2")),
    )));
    let seen = pair.connect();
    assert_eq!(
        pair.theirs.negotiated().unwrap().peer_families,
        vec![Family::Ipv4Unicast]
    );
    assert!(seen.received().0.is_empty());
    assert!(seen
        .logs(LogLevel::Warn)
        .iter()
        .any(|l| l.contains("ipv6-unicast is not among the families configured for this peer")));
}

#[test]
fn ipv6_route_without_an_ipv6_next_hop_is_refused() {
    let mut cfg = ours();
    cfg.ipv6_next_hop = None;
    let mut pair = Pair::new(cfg, theirs());
    let seen = pair.ours(Input::Announce(route("2001:db8::/48")));
    let errors = seen.logs(LogLevel::Error);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("BGP peer 2001:db8:1::1 (AS65000): not announced: IPv6 route 2001:db8::/48 has IPv4 next hop 10.20.1.2 and no ipv6_next_hop is configured"));
    assert_eq!(pair.ours.advertised().count(), 0);

    // A route with its own IPv6 next hop needs no configured one; replacing it
    // with one that cannot be sent withdraws it rather than leaving it stale.
    let own = Route::new(p("2001:db8::/48"), IpAddr::V6(v6("2001:db8:9::9")));
    pair.ours(Input::Announce(own));
    let seen = pair.connect();
    assert_eq!(seen.received(), (vec![p("2001:db8::/48")], vec![]));
    let seen = pair.ours(Input::Announce(route("2001:db8::/48")));
    assert_eq!(seen.logs(LogLevel::Error).len(), 1);
    assert_eq!(seen.received(), (vec![], vec![p("2001:db8::/48")]));
    assert_eq!(pair.ours.advertised().count(), 0);
}

#[test]
fn link_local_goes_only_with_our_own_global_next_hop() {
    let mut pair = Pair::new(ours(), theirs());
    pair.ours(Input::Announce(route("2001:db8:a::/48")));
    pair.ours(Input::Announce(Route::new(
        p("2001:db8:b::/48"),
        IpAddr::V6(v6("2001:db8:1::2")),
    )));
    pair.ours(Input::Announce(Route::new(
        p("2001:db8:c::/48"),
        IpAddr::V6(v6("2001:db8:7::7")),
    )));
    let seen = pair.connect();
    let hops: Vec<(Vec<Prefix>, IpAddr, Option<Ipv6Addr>)> = seen
        .updates()
        .iter()
        .filter_map(|u| u.attributes.mp_reach.as_ref())
        .map(|r| (r.nlri.clone(), r.next_hop, r.link_local))
        .collect();
    assert_eq!(
        hops,
        vec![
            (
                vec![p("2001:db8:a::/48"), p("2001:db8:b::/48")],
                IpAddr::V6(v6("2001:db8:1::2")),
                Some(v6("fe80::2"))
            ),
            (
                vec![p("2001:db8:c::/48")],
                IpAddr::V6(v6("2001:db8:7::7")),
                None
            ),
        ]
    );
}

#[test]
fn many_ipv6_routes_are_split_into_messages_under_4096_octets() {
    let mut pair = Pair::new(ours(), theirs());
    for i in 0..3000u128 {
        let addr = Ipv6Addr::from((0x2001_0db8_u128 << 96) | (i << 80));
        let prefix = Prefix::new(IpAddr::V6(addr), 48).unwrap();
        pair.ours(Input::Announce(Route::new(
            prefix,
            IpAddr::V4(Ipv4Addr::new(10, 20, 1, 2)),
        )));
    }
    let seen = pair.connect();
    for o in &seen.ours {
        if let Output::Send(b) = o {
            assert!(b.len() <= 4096);
        }
    }
    let ups = seen.updates();
    assert!(
        ups.iter()
            .filter(|u| u.attributes.mp_reach.is_some())
            .count()
            > 1
    );
    assert_eq!(pair.theirs.stats().prefixes_received_v6, 3000);
    assert_eq!(seen.received().0.len(), 3000);
}

#[test]
fn ipv6_routes_from_a_peer_that_did_not_negotiate_them_are_ignored() {
    let mut cfg = ours();
    cfg.families = vec![Family::Ipv4Unicast];
    cfg.ipv6_next_hop = None;
    let mut pair = Pair::new(cfg, theirs());
    pair.connect();
    assert_eq!(
        pair.ours.negotiated().unwrap().families,
        vec![Family::Ipv4Unicast]
    );
    let mut out = Vec::new();
    let stray = Update {
        attributes: bgp::message::PathAttributes {
            origin: Some(bgp::message::Origin::Igp),
            as_path: Some(bgp::message::AsPath::sequence(vec![65000])),
            mp_reach: Some(MpReach {
                family: Family::Ipv6Unicast,
                next_hop: IpAddr::V6(v6("2001:db8:1::1")),
                link_local: None,
                nlri: vec![p("2001:db8:5::/48")],
            }),
            ..Default::default()
        },
        ..Update::default()
    };
    let mut wire = Vec::new();
    bgp::encode(&Message::Update(Box::new(stray)), &CTX, &mut wire).unwrap();
    pair.ours.handle(Input::Bytes(&wire), pair.now, &mut out);
    assert_eq!(pair.ours.state(), State::Established);
    assert_eq!(pair.ours.stats().prefixes_received_v6, 0);
    assert_eq!(pair.ours.stats().attributes_discarded, 1);
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::RoutesReceived { .. })));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Log(LogLevel::Warn, m)
        if m.contains("ipv6-unicast routes, which were not negotiated"))));
}
