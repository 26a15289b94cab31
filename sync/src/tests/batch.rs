//! Batching and heartbeats: when datagrams go out, and how big they get.

use super::util::{at, multicast, rec, rec6, sends, session, Rng, EPOCH, KEY};
use crate::message::MessageType;
use crate::{
    records_per_message, AddrFamily, Config, Dest, Input, MessageView, Session, SyncError,
};

fn local(s: &mut Session, n: u16, ms: u64) -> Vec<crate::Output> {
    let mut out = Vec::new();
    s.handle(Input::Local(rec(n).into()), at(ms), &mut out);
    out
}

fn tick(s: &mut Session, ms: u64) -> Vec<crate::Output> {
    let mut out = Vec::new();
    s.handle(Input::Tick, at(ms), &mut out);
    out
}

fn kind(bytes: &[u8]) -> MessageType {
    MessageView::new_checked(bytes)
        .expect("own message")
        .msg_type()
}

#[test]
fn a_full_batch_goes_at_once() {
    let mut s = session(multicast(1));
    assert_eq!(s.batch_capacity(AddrFamily::V4), 33);
    for n in 0..32 {
        assert!(local(&mut s, n, 0).is_empty());
    }
    assert_eq!(s.pending(), 32);
    let out = local(&mut s, 32, 0);
    let sent = sends(&out);
    assert_eq!(sent.len(), 1);
    let (to, bytes) = sent[0];
    assert_eq!(to, Dest::All);
    assert!(bytes.len() <= 1400);
    let v = MessageView::new_checked(bytes).expect("valid");
    assert_eq!(
        (v.msg_type(), v.record_count(), v.seq()),
        (MessageType::Batch, 33, 1)
    );
    assert_eq!(s.pending(), 0);
    let st = s.stats();
    assert_eq!(
        (st.sent_messages, st.sent_records, st.sent_bytes),
        (1, 33, bytes.len() as u64)
    );
}

#[test]
fn no_datagram_exceeds_max_datagram() {
    let mut rng = Rng::new(31);
    for _ in 0..200 {
        let mut cfg = multicast(1);
        cfg.max_datagram = 156 + rng.below(3000) as usize;
        let mut s = session(cfg.clone());
        let mut out = Vec::new();
        let mut t = 0;
        for _ in 0..rng.below(300) {
            t += rng.below(3);
            s.handle(Input::Local(rng.any_record()), at(t), &mut out);
            if rng.below(4) == 0 {
                s.handle(Input::Tick, at(t), &mut out);
            }
        }
        s.handle(Input::Tick, at(t + 10), &mut out);
        let mut records = 0;
        for (_, b) in sends(&out) {
            assert!(
                b.len() <= cfg.max_datagram,
                "{} > {}",
                b.len(),
                cfg.max_datagram
            );
            records += usize::from(MessageView::new_checked(b).expect("valid").record_count());
        }
        assert_eq!(s.pending(), 0);
        assert_eq!(records as u64, s.stats().sent_records);
    }
}

#[test]
fn a_partial_batch_waits_for_flush_after() {
    let mut s = session(multicast(1));
    local(&mut s, 1, 100);
    local(&mut s, 2, 103);
    assert!(tick(&mut s, 102).is_empty());
    assert!(tick(&mut s, 104).is_empty());
    // Five ms after the oldest record, not the newest.
    let out = tick(&mut s, 105);
    let sent = sends(&out);
    assert_eq!(sent.len(), 1);
    let v = MessageView::new_checked(sent[0].1).expect("valid");
    assert_eq!((v.msg_type(), v.record_count()), (MessageType::Batch, 2));
    assert_eq!(v.sent_unix_us(), EPOCH + 105_000);
    assert!(tick(&mut s, 110).is_empty());
}

#[test]
fn an_empty_batch_is_never_sent() {
    let mut s = session(multicast(1));
    for ms in 0..999 {
        assert!(tick(&mut s, ms).is_empty(), "{ms}");
    }
}

#[test]
fn heartbeat_after_a_second_of_silence() {
    let mut s = session(multicast(1));
    assert!(tick(&mut s, 998).is_empty());
    let out = tick(&mut s, 1000);
    let sent = sends(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Dest::All);
    assert_eq!(kind(sent[0].1), MessageType::Heartbeat);
    assert!(tick(&mut s, 1500).is_empty());
    // A batch counts as a sign of life too.
    local(&mut s, 1, 1600);
    assert_eq!(sends(&tick(&mut s, 1605)).len(), 1);
    assert!(tick(&mut s, 2604).is_empty());
    assert_eq!(
        kind(sends(&tick(&mut s, 2605))[0].1),
        MessageType::Heartbeat
    );
}

#[test]
fn unusable_configs_are_refused() {
    let base = Config::new(1, KEY, None, EPOCH);
    let mut c = base.clone();
    // One IPv6 record (the larger) must fit.
    c.max_datagram = 155;
    assert_eq!(
        Session::new(c, at(0)).err(),
        Some(SyncError::MaxDatagram(155))
    );
    let mut c = base.clone();
    c.max_datagram = 156;
    let s = Session::new(c, at(0)).expect("one IPv6 record fits");
    assert_eq!(s.batch_capacity(AddrFamily::V6), 1);
    let mut c = base.clone();
    c.max_datagram = 65_508;
    assert_eq!(
        Session::new(c, at(0)).err(),
        Some(SyncError::MaxDatagram(65_508))
    );
    let mut c = base.clone();
    c.max_datagram = 65_507;
    let s = Session::new(c, at(0)).expect("largest UDP payload");
    assert_eq!(
        s.batch_capacity(AddrFamily::V4),
        records_per_message(65_507, AddrFamily::V4)
    );
    assert_eq!(
        s.batch_capacity(AddrFamily::V6),
        records_per_message(65_507, AddrFamily::V6)
    );
    let mut c = base.clone();
    c.heartbeat_ms = 0;
    assert_eq!(
        Session::new(c, at(0)).err(),
        Some(SyncError::ZeroInterval("heartbeat_ms"))
    );
    let mut c = base.clone();
    c.peer_timeout_ms = 1000;
    assert_eq!(
        Session::new(c, at(0)).err(),
        Some(SyncError::PeerTimeout {
            timeout_ms: 1000,
            heartbeat_ms: 1000
        })
    );
}

#[test]
fn defaults() {
    let c = Config::new(1, KEY, None, EPOCH);
    assert_eq!(
        (
            c.max_datagram,
            c.flush_after_ms,
            c.heartbeat_ms,
            c.peer_timeout_ms
        ),
        (1400, 5, 1000, 3000)
    );
}

#[test]
fn each_family_batches_in_its_own_message() {
    let mut s = session(multicast(1));
    assert_eq!(s.batch_capacity(AddrFamily::V6), 15);
    let mut out = Vec::new();
    for n in 0..14 {
        s.handle(Input::Local(rec6(n).into()), at(0), &mut out);
    }
    s.handle(Input::Local(rec(1).into()), at(0), &mut out);
    assert!(out.is_empty());
    assert_eq!(s.pending(), 15);
    // The fifteenth IPv6 record fills a datagram: both families go.
    s.handle(Input::Local(rec6(14).into()), at(1), &mut out);
    let kinds: Vec<_> = sends(&out)
        .into_iter()
        .map(|(_, b)| {
            let v = MessageView::new_checked(b).expect("valid");
            (v.msg_type(), v.record_count())
        })
        .collect();
    assert_eq!(
        kinds,
        vec![(MessageType::Batch, 1), (MessageType::Batch6, 15)]
    );
    assert_eq!(s.pending(), 0);
    assert_eq!((s.stats().sent_records, s.stats().sent_records6), (16, 15));
    // A lone IPv6 record waits for flush_after like an IPv4 one.
    local6(&mut s, 1, 100);
    assert!(tick(&mut s, 104).is_empty());
    let out = tick(&mut s, 105);
    assert_eq!(kind(sends(&out)[0].1), MessageType::Batch6);
}

fn local6(s: &mut Session, n: u16, ms: u64) {
    s.handle(Input::Local(rec6(n).into()), at(ms), &mut Vec::new());
}
