//! Session transcripts on a fake clock: hold timer, keepalives, reconnect backoff, stop.

mod common;

use std::time::Duration;

use bgp::message::code;
use bgp::{Input, Message, Output, SessionCtx, State, TimerKind};
use common::*;

const S: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn keepalives_go_out_every_third_of_the_hold_time() {
    let mut h = Harness::new(config(65001, 65000));
    h.establish_with(peer_open(65000, 90));
    let t0 = h.elapsed();
    let mut sent_at = Vec::new();
    for _ in 0..3 {
        let out = h.fire(TimerKind::Keepalive);
        assert_eq!(sent(&out, SessionCtx::default()), vec![Message::Keepalive]);
        sent_at.push(h.elapsed() - t0);
        // The peer keeps its side alive too.
        h.peer_sends(&Message::Keepalive);
    }
    assert_eq!(sent_at, vec![S(3), S(6), S(9)]);
    assert_eq!(h.s.state(), State::Established);
}

#[test]
fn configured_keepalive_wins_but_stays_under_a_third() {
    let mut cfg = config(65001, 65000);
    cfg.hold_time = 90;
    cfg.keepalive = Some(10);
    let mut h = Harness::new(cfg.clone());
    h.establish_with(peer_open(65000, 90));
    assert_eq!(h.s.negotiated().unwrap().keepalive, Some(S(10)));
    // The peer cuts the hold time to 15 s: 10 s would be too slow, so 5 s.
    let mut h = Harness::new(cfg);
    h.establish_with(peer_open(65000, 15));
    assert_eq!(h.s.negotiated().unwrap().keepalive, Some(S(5)));
}

#[test]
fn received_messages_push_the_hold_timer_back() {
    let mut h = Harness::new(config(65001, 65000));
    h.establish_with(peer_open(65000, 90));
    let first = h.timers[&TimerKind::Hold];
    h.advance(S(5));
    h.peer_sends(&Message::Keepalive);
    assert_eq!(h.timers[&TimerKind::Hold], first + S(5));
    // A firing for the old deadline is stale and ignored.
    h.now = first;
    let out = h.feed(Input::Timer(TimerKind::Hold));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(h.s.state(), State::Established);
}

#[test]
fn hold_timer_expiry_notifies_closes_and_reconnects() {
    let mut h = Harness::new(config(65001, 65000));
    h.establish_with(peer_open(65000, 90));
    let established_at = h.now;
    // Silence from the peer: keepalives go out until the hold timer runs out.
    let out = loop {
        let (k, out) = h.fire_next();
        if k == TimerKind::Hold {
            break out;
        }
    };
    assert_eq!(h.now - established_at, S(9));
    let n = sent_notification(&out).unwrap();
    assert_eq!((n.code, n.subcode), (code::HOLD_TIMER_EXPIRED, 0));
    assert!(out.contains(&Output::CloseTcp));
    assert!(down_reason(&out).unwrap().contains("hold timer expired"));
    assert_eq!(h.s.state(), State::Idle);
    assert!(!h.timers.contains_key(&TimerKind::Keepalive));
    assert!(!h.timers.contains_key(&TimerKind::Hold));

    let before = h.now;
    let (k, out) = h.fire_next();
    assert_eq!(k, TimerKind::ConnectRetry);
    assert_eq!(h.now - before, S(5));
    assert!(out.contains(&Output::Connect));
    assert_eq!(h.s.state(), State::Connect);
}

#[test]
fn zero_hold_time_means_no_timers() {
    let mut cfg = config(65001, 65000);
    cfg.hold_time = 0;
    let mut h = Harness::new(cfg);
    h.establish_with(peer_open(65000, 90));
    assert_eq!(h.s.state(), State::Established);
    assert_eq!(h.s.negotiated().unwrap().hold_time, 0);
    assert!(!h.timers.contains_key(&TimerKind::Hold));
    assert!(!h.timers.contains_key(&TimerKind::Keepalive));
}

#[test]
fn open_sent_waits_four_minutes_for_the_peer() {
    let mut h = Harness::new(config(65001, 65000));
    h.feed(Input::Start);
    h.feed(Input::TcpConnected);
    let t = h.now;
    let out = h.fire(TimerKind::Hold);
    assert_eq!(h.now - t, S(240));
    assert_eq!(
        sent_notification(&out).unwrap().code,
        code::HOLD_TIMER_EXPIRED
    );
}

/// Delays between successive connection attempts while every attempt fails.
fn failing_attempts(h: &mut Harness, n: usize) -> Vec<Duration> {
    let mut delays = Vec::new();
    for _ in 0..n {
        h.feed(Input::TcpFailed);
        assert_eq!(h.s.state(), State::Active);
        let before = h.now;
        let (k, out) = h.fire_next();
        assert_eq!(k, TimerKind::ConnectRetry);
        assert!(out.contains(&Output::Connect));
        delays.push(h.now - before);
    }
    delays
}

#[test]
fn reconnect_backoff_grows_caps_and_resets_on_established() {
    let mut h = Harness::new(config(65001, 65000));
    h.feed(Input::Start);
    let delays = failing_attempts(&mut h, 6);
    assert_eq!(delays, vec![S(5), S(10), S(20), S(40), S(60), S(60)]);

    h.feed(Input::TcpConnected);
    h.peer_sends(&Message::Open(peer_open(65000, 90)));
    h.ctx = SessionCtx {
        four_octet_as: true,
    };
    h.peer_sends(&Message::Keepalive);
    assert_eq!(h.s.state(), State::Established);

    let out = h.feed(Input::TcpClosed);
    assert!(down_reason(&out).unwrap().contains("closed"));
    let before = h.now;
    let (k, _) = h.fire_next();
    assert_eq!((k, h.now - before), (TimerKind::ConnectRetry, S(5)));
    assert_eq!(failing_attempts(&mut h, 2), vec![S(10), S(20)]);
}

#[test]
fn connect_attempt_that_hangs_is_abandoned_and_retried() {
    let mut h = Harness::new(config(65001, 65000));
    h.feed(Input::Start);
    let (k, out) = h.fire_next();
    assert_eq!(k, TimerKind::ConnectRetry);
    let close = out.iter().position(|o| *o == Output::CloseTcp).unwrap();
    let connect = out.iter().position(|o| *o == Output::Connect).unwrap();
    assert!(close < connect);
    assert_eq!(h.s.state(), State::Connect);
}

#[test]
fn clean_stop_sends_the_shutdown_message_and_stays_down() {
    let mut h = Harness::new(config(65001, 65000));
    h.establish_with(peer_open(65000, 90));
    let out = h.feed(Input::Stop {
        reason: "maintenance".into(),
    });
    let n = sent_notification(&out).unwrap();
    assert_eq!(
        (n.code, n.subcode),
        (code::CEASE, code::cease::ADMINISTRATIVE_SHUTDOWN)
    );
    assert_eq!(n.shutdown_message().as_deref(), Some("maintenance"));
    assert_eq!(
        n.to_string(),
        "Cease / Administrative Shutdown: \"maintenance\""
    );
    assert!(out.contains(&Output::CloseTcp));
    assert!(down_reason(&out).unwrap().contains("maintenance"));
    assert_eq!(h.s.state(), State::Idle);
    assert!(
        h.timers.is_empty(),
        "no reconnect after a stop: {:?}",
        h.timers
    );

    // Start brings it back.
    let out = h.feed(Input::Start);
    assert!(out.contains(&Output::Connect));
}

#[test]
fn stop_while_connecting_abandons_the_attempt() {
    let mut h = Harness::new(config(65001, 65000));
    h.feed(Input::Start);
    let out = h.feed(Input::Stop {
        reason: String::new(),
    });
    assert!(out.contains(&Output::CloseTcp));
    assert!(sent_notification(&out).is_none());
    assert_eq!(h.s.state(), State::Idle);
    assert!(h.timers.is_empty());
}

#[test]
fn extreme_retry_settings_are_reported_and_do_not_overflow() {
    let mut cfg = config(65001, 65000);
    cfg.connect_retry = Duration::MAX;
    cfg.connect_retry_max = Duration::MAX;
    assert!(cfg.validate().iter().any(|e| e.contains("connect_retry")));
    let mut h = Harness::new(cfg);
    h.feed(Input::Start);
    for _ in 0..4 {
        h.feed(Input::TcpFailed);
        let (k, _) = h.fire_next();
        assert_eq!(k, TimerKind::ConnectRetry);
    }
    assert!(h.elapsed() <= S(4 * 86_400));
}

#[test]
fn config_validation_names_peer_and_field() {
    let mut cfg = config(65001, 65000);
    assert!(cfg.validate().is_empty());
    cfg.hold_time = 2;
    cfg.router_id = std::net::Ipv4Addr::UNSPECIFIED;
    cfg.families.clear();
    let errs = cfg.validate();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs.iter().all(|e| e.contains("10.20.1.1")));
    assert!(errs.iter().any(|e| e.contains("hold_time 2")));
    // An invalid own hold time is offered as 3, never as 1 or 2.
    let mut cfg = config(65001, 65000);
    cfg.hold_time = 1;
    let mut h = Harness::new(cfg);
    h.feed(Input::Start);
    let out = h.feed(Input::TcpConnected);
    let msgs = sent(&out, SessionCtx::default());
    let [Message::Open(o)] = msgs.as_slice() else {
        panic!("expected an OPEN")
    };
    assert_eq!(o.hold_time, 3);
}
