//! The hold of a starting node: which peers it waits for, the deadline,
//! and that the release comes exactly once.

use super::util::{
    addr, at, datagram_with, feed, heartbeat, multicast, sends, session, unicast, EPOCH, KEY,
};
use crate::message::{Body, MessageType};
use crate::{Dest, Input, MessageView, Output, Released, Session, State};

fn start(s: &mut Session, ms: u64) -> Vec<Output> {
    let mut out = Vec::new();
    s.handle(Input::Start, at(ms), &mut out);
    out
}

fn tick(s: &mut Session, ms: u64) -> Vec<Output> {
    let mut out = Vec::new();
    s.handle(Input::Tick, at(ms), &mut out);
    out
}

fn releases(out: &[Output]) -> Vec<Released> {
    out.iter()
        .filter_map(|o| match o {
            Output::HoldReleased { reason } => Some(*reason),
            _ => None,
        })
        .collect()
}

/// A DumpEnd from `sender` to `to`.
fn dump_end(sender: u16, to: u16, seq: u64, total: u32) -> Vec<u8> {
    datagram_with(
        KEY,
        MessageType::DumpEnd,
        sender,
        to,
        EPOCH,
        seq,
        EPOCH,
        Body::DumpTotal(total),
    )
}

#[test]
fn start_asks_everyone_and_holds() {
    let mut s = session(unicast(1, &[2]));
    assert_eq!(s.state(), State::Idle);
    let out = start(&mut s, 100);
    let sent = sends(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Dest::All);
    assert_eq!(
        MessageView::new_checked(sent[0].1)
            .expect("valid")
            .msg_type(),
        MessageType::DumpRequest
    );
    assert_eq!(
        s.state(),
        State::Holding {
            deadline_ms: 10_100
        }
    );
    assert!(start(&mut s, 200).is_empty(), "a second Start does nothing");
}

#[test]
fn no_configured_peers_releases_at_once() {
    let mut s = session(unicast(1, &[]));
    let out = start(&mut s, 0);
    assert_eq!(releases(&out), vec![Released::Dumped]);
    assert_eq!(
        s.state(),
        State::Ready {
            reason: Released::Dumped
        }
    );
}

#[test]
fn silent_unicast_peers_release_at_the_deadline() {
    let mut s = session(unicast(1, &[2, 3]));
    start(&mut s, 0);
    for ms in (0..10_000).step_by(2) {
        assert!(releases(&tick(&mut s, ms)).is_empty(), "{ms}");
    }
    assert_eq!(releases(&tick(&mut s, 10_000)), vec![Released::Deadline]);
    assert_eq!(
        s.state(),
        State::Ready {
            reason: Released::Deadline
        }
    );
    assert!(releases(&tick(&mut s, 20_000)).is_empty());
}

#[test]
fn unicast_waits_for_every_configured_peer() {
    let mut s = session(unicast(1, &[2, 3]));
    start(&mut s, 0);
    assert!(releases(&feed(&mut s, addr(2), &dump_end(2, 1, 1, 0), at(1))).is_empty());
    let out = feed(&mut s, addr(3), &dump_end(3, 1, 1, 0), at(2));
    assert_eq!(releases(&out), vec![Released::Dumped]);
    // Exactly once.
    assert!(releases(&feed(&mut s, addr(3), &dump_end(3, 1, 2, 0), at(3))).is_empty());
    assert!(releases(&tick(&mut s, 50_000)).is_empty());
}

#[test]
fn multicast_waits_for_every_peer_heard() {
    let mut s = session(multicast(1));
    start(&mut s, 0);
    feed(&mut s, addr(2), &heartbeat(2, EPOCH, 1), at(1));
    feed(&mut s, addr(3), &heartbeat(3, EPOCH, 1), at(1));
    assert!(releases(&feed(&mut s, addr(2), &dump_end(2, 1, 2, 0), at(2))).is_empty());
    assert_eq!(
        s.state(),
        State::Holding {
            deadline_ms: 10_000
        }
    );
    let out = feed(&mut s, addr(3), &dump_end(3, 1, 2, 0), at(3));
    assert_eq!(releases(&out), vec![Released::Dumped]);
}

#[test]
fn multicast_with_nobody_heard_waits_for_the_deadline() {
    let mut s = session(multicast(1));
    assert!(releases(&start(&mut s, 0)).is_empty());
    assert!(releases(&tick(&mut s, 9_998)).is_empty());
    assert_eq!(releases(&tick(&mut s, 10_000)), vec![Released::Deadline]);
}

#[test]
fn a_peer_that_goes_down_is_not_waited_for() {
    let mut s = session(multicast(1));
    start(&mut s, 0);
    feed(&mut s, addr(3), &heartbeat(3, EPOCH, 1), at(1));
    feed(&mut s, addr(2), &dump_end(2, 1, 1, 0), at(500));
    for ms in (0..2_000).step_by(500) {
        feed(&mut s, addr(2), &heartbeat(2, EPOCH, 2 + ms), at(1000 + ms));
    }
    assert!(releases(&tick(&mut s, 3001)).is_empty());
    let out = tick(&mut s, 3002);
    assert!(out.contains(&Output::PeerDown {
        node: 3,
        addr: addr(3)
    }));
    assert_eq!(releases(&out), vec![Released::Dumped]);
}

#[test]
fn a_holding_node_asks_a_later_starter_directly_once() {
    let mut s = session(multicast(1));
    start(&mut s, 0);
    let req = |seq| {
        datagram_with(
            KEY,
            MessageType::DumpRequest,
            2,
            0,
            EPOCH,
            seq,
            EPOCH,
            Body::Empty,
        )
    };
    let out = feed(&mut s, addr(2), &req(1), at(1));
    assert!(out.contains(&Output::DumpWanted { peer: 2 }));
    let sent = sends(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Dest::Peer(addr(2)));
    assert_eq!(
        MessageView::new_checked(sent[0].1)
            .expect("valid")
            .msg_type(),
        MessageType::DumpRequest
    );
    // Its answer to our broadcast request and our direct one are the same
    // request to it; ours to it is not repeated either.
    assert!(feed(&mut s, addr(2), &req(2), at(2)).is_empty());
}

#[test]
fn a_ready_node_does_not_ask() {
    let req = datagram_with(
        KEY,
        MessageType::DumpRequest,
        2,
        0,
        EPOCH,
        1,
        EPOCH,
        Body::Empty,
    );
    let mut s2 = session(multicast(1));
    let out = feed(&mut s2, addr(2), &req, at(1));
    assert!(sends(&out).is_empty(), "idle");
    s2.handle(Input::Start, at(2), &mut Vec::new());
    s2.handle(Input::Tick, at(20_000), &mut Vec::new());
    let req2 = datagram_with(
        KEY,
        MessageType::DumpRequest,
        2,
        0,
        EPOCH + 1,
        1,
        EPOCH,
        Body::Empty,
    );
    let out = feed(&mut s2, addr(2), &req2, at(20_001));
    assert!(out.contains(&Output::DumpWanted { peer: 2 }));
    assert!(sends(&out).is_empty(), "ready");
}
