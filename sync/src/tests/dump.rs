//! Serving a dump and receiving one.

use super::util::{
    addr, applied, at, datagram_with, feed, multicast, rec, rec6, sends, session, unicast, EPOCH,
    KEY,
};
use crate::message::{Body, MessageType};
use crate::{
    AddrFamily, AnyRecord, ConnRecord, Dest, DumpState, Input, MessageView, Output, Released,
    Session, State,
};

fn request(sender: u16, epoch: u64, seq: u64) -> Vec<u8> {
    datagram_with(
        KEY,
        MessageType::DumpRequest,
        sender,
        0,
        epoch,
        seq,
        EPOCH,
        Body::Empty,
    )
}

#[test]
fn a_request_is_passed_on_once_per_requester_epoch() {
    let mut s = session(unicast(1, &[2]));
    let out = feed(&mut s, addr(2), &request(2, EPOCH, 1), at(1));
    assert_eq!(
        out,
        vec![
            Output::PeerUp {
                node: 2,
                addr: addr(2)
            },
            Output::DumpWanted { peer: 2 }
        ]
    );
    assert!(feed(&mut s, addr(2), &request(2, EPOCH, 2), at(2)).is_empty());
    // Restarted: a new dump.
    let out = feed(&mut s, addr(2), &request(2, EPOCH + 1, 1), at(3));
    assert!(out.contains(&Output::DumpWanted { peer: 2 }));
}

fn served(n: u16) -> (Session, Vec<Output>, Vec<AnyRecord>) {
    serve((0..n).map(|n| rec(n).into()).collect())
}

/// Node 1's dump of `table` to node 2, which asked for it.
fn serve(table: Vec<AnyRecord>) -> (Session, Vec<Output>, Vec<AnyRecord>) {
    let mut s = session(unicast(1, &[2]));
    feed(&mut s, addr(2), &request(2, EPOCH, 1), at(1));
    let mut out = Vec::new();
    s.handle(
        Input::DumpRecords {
            to: 2,
            records: &table,
        },
        at(2),
        &mut out,
    );
    s.handle(Input::DumpDone { to: 2 }, at(3), &mut out);
    (s, out, table)
}

#[test]
fn a_thousand_records_go_in_datagrams_within_max() {
    let (s, out, table) = served(1000);
    let sent = sends(&out);
    assert_eq!(sent.len(), 31 + 1);
    let mut records = Vec::new();
    for (i, (to, b)) in sent.iter().enumerate() {
        assert_eq!(*to, Dest::Peer(addr(2)));
        assert!(b.len() <= 1400);
        let v = MessageView::new_checked(b).expect("valid");
        assert_eq!(v.to(), 2);
        if i < 31 {
            assert_eq!(v.msg_type(), MessageType::Dump);
            records.extend(
                v.records()
                    .map(|r| AnyRecord::V4(ConnRecord::decode(r).expect("record"))),
            );
        } else {
            assert_eq!(v.msg_type(), MessageType::DumpEnd);
            assert_eq!(v.dump_total(), Some(1000));
        }
    }
    assert_eq!(records, table);
    assert_eq!(s.stats().dumps_served, 1);
    assert_eq!(s.stats().sent_records, 1000);
}

#[test]
fn a_dump_of_both_families_goes_in_messages_of_each() {
    // Interleaved as the workers' tables come.
    let table: Vec<AnyRecord> = (0..1000)
        .map(|n| match n % 10 {
            0 => rec6(n).into(),
            _ => rec(n).into(),
        })
        .collect();
    let (s, out, table) = serve(table);
    let mut kinds = Vec::new();
    for (_, b) in sends(&out) {
        assert!(b.len() <= 1400);
        let v = MessageView::new_checked(b).expect("valid");
        assert_eq!(v.to(), 2);
        kinds.push((v.msg_type(), v.record_count()));
    }
    // 900 IPv4 records at 33 a datagram, 100 IPv6 at 15.
    let count = |t| kinds.iter().filter(|(k, _)| *k == t).count();
    assert_eq!(count(MessageType::Dump), 28);
    assert_eq!(count(MessageType::Dump6), 7);
    assert_eq!(kinds.last(), Some(&(MessageType::DumpEnd, 0)));
    assert_eq!(s.stats().sent_records, 1000);
    assert_eq!(s.stats().sent_records6, 100);

    let mut rx = session(unicast(2, &[1]));
    rx.handle(Input::Start, at(0), &mut Vec::new());
    let mut got = Vec::new();
    for (_, b) in sends(&out) {
        got.extend(applied(&feed(&mut rx, addr(1), b, at(5))));
    }
    let family =
        |f| -> Vec<AnyRecord> { table.iter().copied().filter(|r| r.family() == f).collect() };
    let (v4, v6) = got.split_at(900);
    assert_eq!(v4, family(AddrFamily::V4));
    assert_eq!(v6, family(AddrFamily::V6));
    assert!(
        rx.state()
            == State::Ready {
                reason: Released::Dumped
            }
    );
    assert_eq!(rx.stats().dump_records_received, 1000);
    assert_eq!(rx.stats().received_records6, 100);
}

#[test]
fn a_holding_node_takes_a_dump() {
    let (_, out, table) = served(1000);
    let mut rx = session(unicast(2, &[1]));
    let mut o = Vec::new();
    rx.handle(Input::Start, at(0), &mut o);
    assert!(matches!(
        rx.state(),
        State::Holding {
            deadline_ms: 10_000
        }
    ));
    let mut got = Vec::new();
    let mut released = Vec::new();
    for (_, b) in sends(&out) {
        let o = feed(&mut rx, addr(1), b, at(5));
        assert!(o.iter().all(|x| !matches!(
            x,
            Output::Apply {
                from_dump: false,
                ..
            }
        )));
        got.extend(applied(&o));
        released.extend(
            o.into_iter()
                .filter(|x| matches!(x, Output::HoldReleased { .. })),
        );
    }
    assert_eq!(got, table);
    assert_eq!(
        released,
        vec![Output::HoldReleased {
            reason: Released::Dumped
        }]
    );
    let p = rx.peers().next().expect("peer");
    assert_eq!(
        p.dump,
        DumpState::Done {
            received: 1000,
            announced: 1000
        }
    );
    assert_eq!(rx.stats().dump_records_received, 1000);
}

#[test]
fn a_lost_dump_datagram_shows_in_the_counts() {
    let (_, out, _) = served(100);
    let mut rx = session(unicast(2, &[1]));
    rx.handle(Input::Start, at(0), &mut Vec::new());
    for (i, (_, b)) in sends(&out).into_iter().enumerate() {
        if i != 1 {
            feed(&mut rx, addr(1), b, at(5));
        }
    }
    let p = rx.peers().next().expect("peer");
    assert_eq!(
        p.dump,
        DumpState::Done {
            received: 67,
            announced: 100
        }
    );
    assert_eq!(
        rx.state(),
        State::Ready {
            reason: Released::Dumped
        }
    );
}

#[test]
fn a_dump_for_another_node_is_refused() {
    let (_, out, _) = served(10);
    // Node 3 gets node 2's dump.
    let mut rx = session(multicast(3));
    for (_, b) in sends(&out) {
        assert!(feed(&mut rx, addr(1), b, at(5)).is_empty());
    }
    assert_eq!(rx.stats().rejected.misdirected, 2);
    assert_eq!(rx.peers().count(), 0);
}

#[test]
fn dump_input_for_an_unknown_node_is_ignored() {
    let mut s = session(multicast(1));
    let mut out = Vec::new();
    s.handle(
        Input::DumpRecords {
            to: 9,
            records: &[rec(1).into()],
        },
        at(1),
        &mut out,
    );
    s.handle(Input::DumpDone { to: 9 }, at(1), &mut out);
    assert!(out.is_empty());
    assert_eq!(s.stats().sent_messages, 0);
}

#[test]
fn an_empty_table_is_an_empty_dump() {
    let (_, out, _) = served(0);
    let sent = sends(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        MessageView::new_checked(sent[0].1)
            .expect("valid")
            .dump_total(),
        Some(0)
    );
}
