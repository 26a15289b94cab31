//! Replay protection: the window on its own against a model, then through
//! a session.

use std::collections::HashSet;

use super::util::{
    addr, at, batch, feed, heartbeat, multicast, rec, session, snapshot, Rng, EPOCH,
};
use crate::replay::{Fresh, ReplayWindow, WINDOW};
use crate::Output;

#[test]
fn window_matches_a_model() {
    let mut rng = Rng::new(29);
    for _ in 0..200 {
        let mut w = ReplayWindow::new(5);
        let mut seen = HashSet::new();
        let mut highest = 0u64;
        for _ in 0..500 {
            // Mostly near the top, sometimes far ahead or far behind.
            let seq = match rng.below(10) {
                0 => highest + rng.below(200),
                1 => rng.below(highest + 1),
                _ => (highest + 3).saturating_sub(rng.below(70)),
            };
            let fresh = seq != 0 && !seen.contains(&seq) && seq + WINDOW > highest;
            assert_eq!(
                w.check(5, seq).is_some(),
                fresh,
                "seq {seq} highest {highest}"
            );
            if fresh {
                w.accept(5, seq);
                seen.insert(seq);
                highest = highest.max(seq);
            }
        }
    }
}

#[test]
fn window_epochs() {
    let mut w = ReplayWindow::new(10);
    assert_eq!(w.check(10, 1), Some(Fresh::Same));
    w.accept(10, 1);
    assert_eq!(w.check(9, 100), None);
    assert_eq!(w.check(11, 1), Some(Fresh::NewEpoch));
    assert_eq!(w.check(11, 0), None);
    w.accept(11, 1);
    assert_eq!(w.check(11, 1), None);
    assert_eq!(w.check(11, 2), Some(Fresh::Same));
    assert_eq!(w.check(10, 2), None);
}

#[test]
fn the_same_datagram_twice() {
    let mut s = session(multicast(1));
    let b = batch(2, EPOCH, 1, &[rec(1)]);
    assert_eq!(
        super::util::applied(&feed(&mut s, addr(2), &b, at(1))).len(),
        1
    );
    let before = snapshot(&s);
    assert!(feed(&mut s, addr(2), &b, at(2)).is_empty());
    assert_eq!(s.stats().rejected.replayed, 1);
    assert_eq!(snapshot(&s), before);
}

#[test]
fn an_old_epoch_after_a_new_one() {
    let mut s = session(multicast(1));
    feed(&mut s, addr(2), &heartbeat(2, 100, 1), at(1));
    let out = feed(&mut s, addr(2), &heartbeat(2, 200, 1), at(2));
    assert_eq!(
        out,
        vec![Output::PeerRestarted {
            node: 2,
            addr: addr(2)
        }]
    );
    let p = s.peers().next().expect("peer");
    assert_eq!((p.epoch, p.restarts), (200, 1));
    let before = snapshot(&s);
    for seq in [1, 2, 1000] {
        assert!(feed(&mut s, addr(2), &heartbeat(2, 100, seq), at(3)).is_empty());
    }
    assert_eq!(s.stats().rejected.replayed, 3);
    assert_eq!(snapshot(&s), before);
    // The restarted sender's seq 1 was taken; 2 is new.
    assert!(feed(&mut s, addr(2), &heartbeat(2, 200, 1), at(4)).is_empty());
    feed(&mut s, addr(2), &heartbeat(2, 200, 2), at(4));
    assert_eq!(s.stats().received_messages, 3);
}

#[test]
fn far_behind_the_window() {
    let mut s = session(multicast(1));
    feed(&mut s, addr(2), &heartbeat(2, EPOCH, 100), at(1));
    let before = snapshot(&s);
    assert!(feed(&mut s, addr(2), &heartbeat(2, EPOCH, 100 - WINDOW), at(2)).is_empty());
    assert!(feed(&mut s, addr(2), &heartbeat(2, EPOCH, 1), at(2)).is_empty());
    assert_eq!(s.stats().rejected.replayed, 2);
    assert_eq!(snapshot(&s), before);
    // The oldest the window still holds.
    feed(
        &mut s,
        addr(2),
        &heartbeat(2, EPOCH, 100 - WINDOW + 1),
        at(3),
    );
    assert_eq!(s.stats().received_messages, 2);
}

#[test]
fn out_of_order_within_the_window() {
    let mut s = session(multicast(1));
    let order = [10u64, 8, 9, 3, 1, 2, 7, 6, 5, 4, 40, 11, 70, 20];
    for (i, &seq) in order.iter().enumerate() {
        let out = feed(
            &mut s,
            addr(2),
            &batch(2, EPOCH, seq, &[rec(seq as u16)]),
            at(i as u64),
        );
        assert_eq!(super::util::applied(&out).len(), 1, "seq {seq}");
    }
    for &seq in &order {
        assert!(feed(&mut s, addr(2), &batch(2, EPOCH, seq, &[rec(1)]), at(50)).is_empty());
    }
    assert_eq!(s.stats().received_messages, order.len() as u64);
    assert_eq!(s.stats().rejected.replayed, order.len() as u64);
}

#[test]
fn epoch_max_then_anything() {
    let mut s = session(multicast(1));
    feed(&mut s, addr(2), &heartbeat(2, 5, 1), at(1));
    feed(&mut s, addr(2), &heartbeat(2, u64::MAX, 1), at(2));
    let before = snapshot(&s);
    for (epoch, seq) in [
        (0, 2),
        (5, 2),
        (u64::MAX - 1, 1),
        (u64::MAX, 1),
        (u64::MAX, 0),
    ] {
        assert!(feed(&mut s, addr(2), &heartbeat(2, epoch, seq), at(3)).is_empty());
    }
    assert_eq!(s.stats().rejected.replayed, 5);
    assert_eq!(snapshot(&s), before);
    feed(&mut s, addr(2), &heartbeat(2, u64::MAX, u64::MAX), at(4));
    assert_eq!(s.stats().received_messages, 3);
    assert!(feed(&mut s, addr(2), &heartbeat(2, u64::MAX, u64::MAX), at(5)).is_empty());
}

#[test]
fn seq_zero_is_never_accepted() {
    let mut s = session(multicast(1));
    assert!(feed(&mut s, addr(2), &heartbeat(2, EPOCH, 0), at(1)).is_empty());
    assert_eq!(s.stats().rejected.replayed, 1);
    assert_eq!(s.peers().count(), 0);
}

#[test]
fn windows_are_per_sender() {
    let mut s = session(multicast(1));
    feed(&mut s, addr(2), &heartbeat(2, EPOCH, 1), at(1));
    feed(&mut s, addr(3), &heartbeat(3, EPOCH, 1), at(1));
    assert_eq!(s.stats().received_messages, 2);
    assert_eq!(s.peers().count(), 2);
}

#[test]
fn a_session_never_reuses_a_sequence_number() {
    let mut tx = session(multicast(2));
    let mut out = Vec::new();
    tx.handle(crate::Input::Start, at(0), &mut out);
    for i in 0..200u16 {
        let t = u64::from(i) * 700;
        tx.handle(crate::Input::Local(rec(i).into()), at(t), &mut out);
        tx.handle(crate::Input::Tick, at(t + 6), &mut out);
    }
    let mut rx = session(multicast(1));
    let sent = super::util::sends(&out);
    assert_eq!(sent.len(), 201);
    for (_, b) in &sent {
        feed(&mut rx, addr(2), b, at(1));
    }
    assert_eq!(rx.stats().received_messages, sent.len() as u64);
    assert_eq!(rx.stats().rejected.total(), 0);
}
