//! Session transcripts: OPEN exchange, validation and the NOTIFICATIONs it sends.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::message::{code, Capability, Open, AS_TRANS};
use bgp::{Family, Input, Message, Output, SessionCtx, State, TimerKind};
use common::*;

#[test]
fn full_handshake_against_scripted_peer() {
    let mut h = Harness::new(config(65001, 65000));
    let out = h.feed(Input::Start);
    assert_eq!(h.s.state(), State::Connect);
    assert!(out.contains(&Output::Connect));
    assert!(h.timers.contains_key(&TimerKind::ConnectRetry));

    let out = h.feed(Input::TcpConnected);
    assert_eq!(h.s.state(), State::OpenSent);
    assert!(!h.timers.contains_key(&TimerKind::ConnectRetry));
    let msgs = sent(&out, SessionCtx::default());
    let [Message::Open(open)] = msgs.as_slice() else {
        panic!("expected one OPEN, got {msgs:?}")
    };
    assert_eq!(
        (open.version, open.my_as, open.hold_time, open.bgp_id),
        (4, 65001, 9, OUR_ID)
    );
    assert_eq!(open.four_octet_as(), Some(65001));
    assert_eq!(
        open.families(),
        vec![Family::Ipv4Unicast, Family::Ipv6Unicast]
    );
    assert!(open.route_refresh());

    // The peer's OPEN and KEEPALIVE arrive in one read, split at an awkward byte.
    let mut wire = Vec::new();
    bgp::encode(
        &Message::Open(peer_open(65000, 30)),
        &SessionCtx::default(),
        &mut wire,
    )
    .unwrap();
    bgp::encode(&Message::Keepalive, &SessionCtx::default(), &mut wire).unwrap();
    let (a, b) = wire.split_at(wire.len() - 5);
    let out = h.bytes(a);
    assert_eq!(h.s.state(), State::OpenConfirm);
    assert_eq!(sent(&out, SessionCtx::default()), vec![Message::Keepalive]);
    let out = h.bytes(b);
    assert_eq!(h.s.state(), State::Established);
    assert!(out.contains(&Output::Established));
    assert!(out.contains(&Output::StateChanged {
        from: State::OpenConfirm,
        to: State::Established
    }));

    let n = h.s.negotiated().unwrap();
    assert_eq!(n.hold_time, 9, "min of ours (9) and theirs (30)");
    assert_eq!(n.keepalive, Some(Duration::from_secs(3)));
    assert!(n.four_octet_as);
    assert_eq!(n.peer_router_id, PEER_ID);

    // With nothing to announce, Established sends one End-of-RIB per family.
    let eors: Vec<_> = sent_updates(&out, h.ctx)
        .iter()
        .map(|u| u.end_of_rib_family())
        .collect();
    assert_eq!(
        eors,
        vec![Some(Family::Ipv4Unicast), Some(Family::Ipv6Unicast)]
    );
    assert_eq!(h.s.stats().established_count, 1);
}

#[test]
fn peer_without_multiprotocol_gets_ipv4_only() {
    let mut h = Harness::new(config(65001, 65000));
    let open = Open::new(65000, 90, PEER_ID, vec![]);
    let out = h.establish_with(open);
    assert_eq!(h.s.state(), State::Established);
    let n = h.s.negotiated().unwrap();
    assert_eq!(n.families, vec![Family::Ipv4Unicast]);
    assert!(!n.four_octet_as);
    let eors: Vec<_> = sent_updates(&out, SessionCtx::default())
        .iter()
        .map(|u| u.end_of_rib_family())
        .collect();
    assert_eq!(eors, vec![Some(Family::Ipv4Unicast)]);
}

fn reject(open: Open) -> (bgp::message::Notification, Vec<Output>) {
    let mut h = Harness::new(config(65001, 65000));
    let out = h.establish_with(open);
    assert_eq!(h.s.state(), State::Idle);
    assert!(out.contains(&Output::CloseTcp));
    assert!(
        h.timers.contains_key(&TimerKind::ConnectRetry),
        "reconnects later"
    );
    assert!(h.s.stats().last_error.is_some());
    (sent_notification(&out).expect("a NOTIFICATION"), out)
}

#[test]
fn bad_version_is_refused() {
    let mut open = peer_open(65000, 90);
    open.version = 3;
    let (n, _) = reject(open);
    assert_eq!(
        (n.code, n.subcode),
        (code::OPEN, code::open::UNSUPPORTED_VERSION)
    );
    assert_eq!(n.data, vec![0, 4]);
}

#[test]
fn bad_peer_as_is_refused() {
    let (n, out) = reject(peer_open(65099, 90));
    assert_eq!((n.code, n.subcode), (code::OPEN, code::open::BAD_PEER_AS));
    assert!(logs(&out, bgp::session::LogLevel::Info)
        .iter()
        .any(|l| l.contains("AS65099") && l.contains("65000")));
}

#[test]
fn four_octet_capability_decides_the_peer_as() {
    // My AS is right but the capability says otherwise.
    let mut open = peer_open(65000, 90);
    open.capabilities
        .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
    open.capabilities
        .push(Capability::FourOctetAs(4_200_000_000));
    let (n, _) = reject(open);
    assert_eq!((n.code, n.subcode), (code::OPEN, code::open::BAD_PEER_AS));
}

#[test]
fn unacceptable_hold_times_are_refused() {
    for hold in [1, 2] {
        let (n, _) = reject(peer_open(65000, hold));
        assert_eq!(
            (n.code, n.subcode),
            (code::OPEN, code::open::UNACCEPTABLE_HOLD_TIME)
        );
    }
}

#[test]
fn bad_bgp_identifiers_are_refused() {
    for id in [Ipv4Addr::UNSPECIFIED, OUR_ID, Ipv4Addr::new(224, 0, 0, 5)] {
        let mut open = peer_open(65000, 90);
        open.bgp_id = id;
        let (n, _) = reject(open);
        assert_eq!(
            (n.code, n.subcode),
            (code::OPEN, code::open::BAD_BGP_IDENTIFIER),
            "{id}"
        );
    }
}

#[test]
fn four_octet_local_as_uses_as_trans_on_the_wire() {
    let mut h = Harness::new(config(4_200_000_001, 4_200_000_002));
    h.feed(Input::Start);
    let out = h.feed(Input::TcpConnected);
    let mut raw = Vec::new();
    for o in &out {
        if let Output::Send(b) = o {
            raw.extend_from_slice(b);
        }
    }
    assert_eq!(u16::from_be_bytes([raw[20], raw[21]]), AS_TRANS);
    let msgs = sent(&out, SessionCtx::default());
    let [Message::Open(ours)] = msgs.as_slice() else {
        panic!("expected an OPEN")
    };
    assert_eq!(ours.peer_as(), 4_200_000_001);

    // The peer's OPEN carries AS_TRANS in My AS and its real AS in the capability.
    let theirs = peer_open(4_200_000_002, 90);
    assert_eq!(theirs.my_as, AS_TRANS);
    h.peer_sends(&Message::Open(theirs));
    h.ctx = SessionCtx {
        four_octet_as: true,
    };
    h.peer_sends(&Message::Keepalive);
    assert_eq!(h.s.state(), State::Established);
    assert_eq!(h.s.negotiated().unwrap().peer_as, 4_200_000_002);
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let mut h = Harness::new(config(65001, 65000));
    h.feed(Input::Start);
    h.feed(Input::TcpConnected);
    let out = h.peer_sends(&Message::Keepalive);
    let n = sent_notification(&out).unwrap();
    assert_eq!(
        (n.code, n.subcode),
        (code::FSM, code::fsm::UNEXPECTED_IN_OPEN_SENT)
    );
    assert_eq!(h.s.state(), State::Idle);

    let mut h = Harness::new(config(65001, 65000));
    h.feed(Input::Start);
    h.feed(Input::TcpConnected);
    h.peer_sends(&Message::Open(peer_open(65000, 90)));
    let out = h.peer_sends(&Message::Open(peer_open(65000, 90)));
    let n = sent_notification(&out).unwrap();
    assert_eq!(
        (n.code, n.subcode),
        (code::FSM, code::fsm::UNEXPECTED_IN_OPEN_CONFIRM)
    );
}

#[test]
fn peer_notification_brings_the_session_down_without_a_reply() {
    let mut h = Harness::new(config(65001, 65000));
    h.establish_with(peer_open(65000, 90));
    let out = h.peer_sends(&Message::Notification(
        bgp::message::Notification::administrative_shutdown("router reboot"),
    ));
    assert_eq!(h.s.state(), State::Idle);
    assert!(sent_notification(&out).is_none());
    let reason = down_reason(&out).unwrap();
    assert!(
        reason.contains("Administrative Shutdown: \"router reboot\""),
        "{reason}"
    );
    assert_eq!(h.s.stats().notifications_in, 1);
}

#[test]
fn malformed_message_in_established_resets_with_its_notification() {
    let mut h = Harness::new(config(65001, 65000));
    h.establish_with(peer_open(65000, 90));
    let mut bad = vec![0xff; 16];
    bad.extend_from_slice(&[0, 19, 9]);
    let out = h.bytes(&bad);
    let n = sent_notification(&out).unwrap();
    assert_eq!(
        (n.code, n.subcode),
        (code::MESSAGE_HEADER, code::header::BAD_MESSAGE_TYPE)
    );
    assert_eq!(h.s.state(), State::Idle);
    assert!(down_reason(&out)
        .unwrap()
        .contains("unknown message type 9"));
}

#[test]
fn passive_peer_waits_and_refuses_unwanted_connections() {
    let mut cfg = config(65001, 65000);
    cfg.passive = true;
    let mut h = Harness::new(cfg);
    assert!(!h.s.wants_connection());
    let out = h.feed(Input::Start);
    assert_eq!(h.s.state(), State::Active);
    assert!(!out.contains(&Output::Connect));
    assert!(h.s.wants_connection());
    h.feed(Input::TcpConnected);
    assert_eq!(h.s.state(), State::OpenSent);
    assert!(!h.s.wants_connection());
    let out = h.feed(Input::TcpConnected);
    assert_eq!(h.s.state(), State::OpenSent);
    assert!(sent(&out, SessionCtx::default()).is_empty());
}
