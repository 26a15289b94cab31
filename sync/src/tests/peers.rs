//! Peer tracking: up, down, restarts, lag, and the bounded peer table.

use super::util::{
    addr, at, datagram_with, feed, heartbeat, multicast, rec, session, snapshot, EPOCH, KEY,
};
use crate::message::{Body, MessageType};
use crate::{DumpState, Input, Output, PeerStatus, MAX_PEERS};

fn tick(s: &mut crate::Session, ms: u64) -> Vec<Output> {
    let mut out = Vec::new();
    s.handle(Input::Tick, at(ms), &mut out);
    out.retain(|o| !matches!(o, Output::Send { .. }));
    out
}

fn peer(s: &crate::Session, node: u16) -> PeerStatus {
    s.peers()
        .find(|p| p.node == node)
        .cloned()
        .expect("known peer")
}

#[test]
fn up_down_and_up_again() {
    let mut s = session(multicast(1));
    let out = feed(&mut s, addr(2), &heartbeat(2, EPOCH, 1), at(10));
    assert_eq!(
        out,
        vec![Output::PeerUp {
            node: 2,
            addr: addr(2)
        }]
    );
    let p = peer(&s, 2);
    assert!(p.up);
    assert_eq!(
        (p.last_heard_ms, p.epoch, p.restarts, p.dump),
        (10, EPOCH, 0, DumpState::NotAsked)
    );
    assert!(feed(&mut s, addr(2), &heartbeat(2, EPOCH, 2), at(20)).is_empty());
    assert!(tick(&mut s, 3020).is_empty());
    assert_eq!(
        tick(&mut s, 3021),
        vec![Output::PeerDown {
            node: 2,
            addr: addr(2)
        }]
    );
    assert!(!peer(&s, 2).up);
    assert!(tick(&mut s, 5000).is_empty());
    let out = feed(&mut s, addr(2), &heartbeat(2, EPOCH, 3), at(5001));
    assert_eq!(
        out,
        vec![Output::PeerUp {
            node: 2,
            addr: addr(2)
        }]
    );
}

#[test]
fn a_restart_is_reported_and_resets_the_window() {
    let mut s = session(multicast(1));
    feed(&mut s, addr(2), &heartbeat(2, EPOCH, 500), at(1));
    let out = feed(&mut s, addr(4), &heartbeat(2, EPOCH + 9, 1), at(2));
    assert_eq!(
        out,
        vec![Output::PeerRestarted {
            node: 2,
            addr: addr(4)
        }]
    );
    let p = peer(&s, 2);
    assert_eq!((p.epoch, p.restarts, p.addr), (EPOCH + 9, 1, addr(4)));
    feed(&mut s, addr(4), &heartbeat(2, EPOCH + 9, 2), at(3));
    assert_eq!(s.stats().received_messages, 3);
}

#[test]
fn a_restart_of_a_down_peer_brings_it_up() {
    let mut s = session(multicast(1));
    feed(&mut s, addr(2), &heartbeat(2, EPOCH, 1), at(1));
    tick(&mut s, 5000);
    let out = feed(&mut s, addr(2), &heartbeat(2, EPOCH + 1, 1), at(5001));
    assert_eq!(
        out,
        vec![
            Output::PeerRestarted {
                node: 2,
                addr: addr(2)
            },
            Output::PeerUp {
                node: 2,
                addr: addr(2)
            }
        ]
    );
}

#[test]
fn lag_from_the_send_stamp() {
    let mut s = session(multicast(1));
    // Stamped at EPOCH + k ms, received at EPOCH + 10 s: lags of 10 s - k.
    for k in 1..=100u64 {
        let b = datagram_with(
            KEY,
            MessageType::Heartbeat,
            2,
            0,
            EPOCH,
            k,
            EPOCH + k * 1000,
            Body::Empty,
        );
        feed(&mut s, addr(2), &b, at(10_000));
    }
    let p = peer(&s, 2);
    assert_eq!(p.last_lag_us, 10_000_000 - 100_000);
    assert_eq!(p.lag_p50_us(), Some(10_000_000 - 51_000));
    assert_eq!(p.lag_p99_us(), Some(10_000_000 - 2_000));
    // A sender clock ahead of ours reads as zero lag, not a wrap.
    let ahead = datagram_with(
        KEY,
        MessageType::Heartbeat,
        2,
        0,
        EPOCH,
        101,
        u64::MAX,
        Body::Empty,
    );
    feed(&mut s, addr(2), &ahead, at(10_001));
    assert_eq!(peer(&s, 2).last_lag_us, 0);
}

#[test]
fn the_lag_ring_keeps_the_recent_samples() {
    let mut s = session(multicast(1));
    for k in 1..=1000u64 {
        // Old samples 1 s late, the last 128 stamped ahead of our clock.
        let stamp = if k > 1000 - crate::LAG_SAMPLES as u64 {
            EPOCH + 20_000_000
        } else {
            EPOCH
        };
        let b = datagram_with(
            KEY,
            MessageType::Heartbeat,
            2,
            0,
            EPOCH,
            k,
            stamp,
            Body::Empty,
        );
        feed(&mut s, addr(2), &b, at(1000));
    }
    let p = peer(&s, 2);
    assert_eq!((p.lag_p50_us(), p.lag_p99_us()), (Some(0), Some(0)));
}

#[test]
fn records_received_per_peer() {
    let mut s = session(multicast(1));
    let b = datagram_with(
        KEY,
        MessageType::Batch,
        2,
        0,
        EPOCH,
        1,
        EPOCH,
        Body::Records(&[rec(1), rec(2)]),
    );
    let out = feed(&mut s, addr(2), &b, at(1));
    assert!(out.contains(&Output::Apply {
        origin: 2,
        record: rec(2).into(),
        from_dump: false
    }));
    assert_eq!(peer(&s, 2).records_received, 2);
    assert_eq!(s.stats().received_records, 2);
}

#[test]
fn the_peer_table_is_bounded() {
    let mut s = session(multicast(1));
    let nodes = 2..(2 + MAX_PEERS as u16);
    for n in nodes.clone() {
        feed(&mut s, addr(2), &heartbeat(n, EPOCH, 1), at(1));
    }
    assert_eq!(s.peers().count(), MAX_PEERS);
    // Full of live peers: a new node id is refused.
    let before = snapshot(&s);
    assert!(feed(&mut s, addr(2), &heartbeat(500, EPOCH, 1), at(2)).is_empty());
    assert_eq!(s.stats().rejected.stranger, 1);
    assert_eq!(snapshot(&s), before);
    // All but one fall silent; the newcomer takes a down peer's slot.
    for n in nodes.clone().skip(1) {
        feed(&mut s, addr(2), &heartbeat(n, EPOCH, 2), at(1000));
    }
    tick(&mut s, 3002);
    assert_eq!(s.peers().filter(|p| p.up).count(), MAX_PEERS - 1);
    feed(&mut s, addr(2), &heartbeat(500, EPOCH, 1), at(3003));
    assert_eq!(s.peers().count(), MAX_PEERS);
    assert!(s.peers().any(|p| p.node == 500));
    assert!(!s.peers().any(|p| p.node == 2));
}
