//! The message header and its checked view.

use super::util::{batch, batch6, datagram_with, heartbeat, rec, rec6, Rng, EPOCH, KEY};
use crate::message::{Body, MessageType};
use crate::{
    records_per_message, AddrFamily, ConnRecord, ConnRecord6, MessageView, SyncError, HEADER_LEN,
    MIN_MESSAGE_LEN, TAG_LEN,
};

#[test]
fn sizes() {
    assert_eq!(HEADER_LEN, 36);
    assert_eq!(TAG_LEN, 32);
    assert_eq!(MIN_MESSAGE_LEN, 68);
    let (v4, v6) = (AddrFamily::V4, AddrFamily::V6);
    assert_eq!(records_per_message(1400, v4), 33);
    assert_eq!(records_per_message(HEADER_LEN + TAG_LEN + 39, v4), 0);
    assert_eq!(records_per_message(HEADER_LEN + TAG_LEN + 40, v4), 1);
    assert_eq!(records_per_message(0, v4), 0);
    assert_eq!(records_per_message(1400, v6), 15);
    assert_eq!(records_per_message(HEADER_LEN + TAG_LEN + 87, v6), 0);
    assert_eq!(records_per_message(HEADER_LEN + TAG_LEN + 88, v6), 1);
    assert_eq!(records_per_message(0, v6), 0);
}

#[test]
fn a_batch_reads_back() {
    let records: Vec<_> = (1..=3).map(rec).collect();
    let b = datagram_with(
        KEY,
        MessageType::Batch,
        7,
        0,
        42,
        9,
        123_456,
        Body::Records(&records),
    );
    assert_eq!(b.len(), HEADER_LEN + 3 * ConnRecord::LEN + TAG_LEN);
    assert_eq!(&b[..4], b"VS\x01\x01");
    let v = MessageView::new_checked(&b).expect("valid");
    assert_eq!(v.msg_type(), MessageType::Batch);
    assert_eq!((v.sender(), v.to(), v.flags()), (7, 0, 0));
    assert_eq!((v.epoch(), v.seq(), v.sent_unix_us()), (42, 9, 123_456));
    assert_eq!(v.record_count(), 3);
    let back: Vec<_> = v
        .records()
        .map(|r| ConnRecord::decode(r).expect("record"))
        .collect();
    assert_eq!(back, records);
    assert_eq!(v.dump_total(), None);
    assert_eq!(v.signed().len() + v.tag().len(), b.len());
}

#[test]
fn a_dump_end_carries_its_total() {
    let b = datagram_with(
        KEY,
        MessageType::DumpEnd,
        2,
        1,
        EPOCH,
        5,
        EPOCH,
        Body::DumpTotal(u32::MAX),
    );
    let v = MessageView::new_checked(&b).expect("valid");
    assert_eq!(
        (v.msg_type(), v.to(), v.record_count()),
        (MessageType::DumpEnd, 1, 0)
    );
    assert_eq!(v.dump_total(), Some(u32::MAX));
    assert_eq!(v.records().count(), 0);
}

#[test]
fn type_codes() {
    for (t, c) in [
        (MessageType::Batch, 1),
        (MessageType::DumpRequest, 2),
        (MessageType::Dump, 3),
        (MessageType::DumpEnd, 4),
        (MessageType::Heartbeat, 5),
        (MessageType::Batch6, 6),
        (MessageType::Dump6, 7),
    ] {
        assert_eq!(t.code(), c);
        assert_eq!(MessageType::from_code(c), Some(t));
    }
    // 6 and 7 were unknown to the first version, whose nodes refuse IPv6
    // messages as an unknown type, counted.
    for c in [0u8, 8, 0x7f, 0xff] {
        assert_eq!(MessageType::from_code(c), None);
    }
}

#[test]
fn structural_errors() {
    let good = batch(2, EPOCH, 1, &[rec(1)]);
    for len in 0..HEADER_LEN {
        assert!(matches!(
            MessageView::new_checked(&good[..len]),
            Err(SyncError::Truncated { got, need: 68 }) if got == len
        ));
    }
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(
        MessageView::new_checked(&b).err(),
        Some(SyncError::Magic(*b"XS"))
    );
    let mut b = good.clone();
    b[2] = 2;
    assert_eq!(
        MessageView::new_checked(&b).err(),
        Some(SyncError::Version(2))
    );
    let mut b = good.clone();
    b[3] = 9;
    assert_eq!(
        MessageView::new_checked(&b).err(),
        Some(SyncError::MessageType(9))
    );
    // One byte short or long of what the count says.
    for len in [good.len() - 1, good.len() + 1, HEADER_LEN + TAG_LEN] {
        let mut b = good.clone();
        b.resize(len, 0);
        assert_eq!(
            MessageView::new_checked(&b).err(),
            Some(SyncError::Length { count: 1, len })
        );
    }
    // The count field says 2, the body holds 1.
    let mut b = good.clone();
    b[33] = 2;
    assert_eq!(
        MessageView::new_checked(&b).err(),
        Some(SyncError::Length {
            count: 2,
            len: good.len()
        })
    );
}

#[test]
fn types_without_records_must_say_zero() {
    let mut b = heartbeat(2, EPOCH, 1);
    assert!(MessageView::new_checked(&b).is_ok());
    b[33] = 1;
    assert_eq!(
        MessageView::new_checked(&b).err(),
        Some(SyncError::Length {
            count: 1,
            len: b.len()
        })
    );
    let end = datagram_with(
        KEY,
        MessageType::DumpEnd,
        2,
        1,
        EPOCH,
        1,
        EPOCH,
        Body::DumpTotal(3),
    );
    assert_eq!(
        MessageView::new_checked(&end[..end.len() - 1]).err(),
        Some(SyncError::Length {
            count: 0,
            len: end.len() - 1
        })
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(17);
    let goods = [
        batch(2, EPOCH, 1, &[rec(1), rec(2)]),
        batch6(2, EPOCH, 1, &[rec6(1), rec6(2)]),
    ];
    for i in 0..50_000 {
        let good = &goods[i / 2 % 2];
        // Half pure noise, half a valid message with noise over a few bytes.
        let b = if i % 2 == 0 {
            let len = rng.below(200) as usize;
            rng.bytes(len)
        } else {
            let mut b = good.clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(b.len() as u64) as usize;
                b[at] = rng.next() as u8;
            }
            b.truncate(rng.below(b.len() as u64 + 1) as usize);
            b
        };
        if let Ok(v) = MessageView::new_checked(&b) {
            let _ = (v.sender(), v.to(), v.epoch(), v.seq(), v.dump_total());
            assert_eq!(v.records().count(), usize::from(v.record_count()));
        }
    }
}

#[test]
fn an_ipv6_batch_reads_back() {
    let records: Vec<_> = (1..=3).map(rec6).collect();
    let b = batch6(7, 42, 9, &records);
    assert_eq!(b.len(), HEADER_LEN + 3 * ConnRecord6::LEN + TAG_LEN);
    assert_eq!(b[3], 6);
    let v = MessageView::new_checked(&b).expect("valid");
    assert_eq!(v.msg_type(), MessageType::Batch6);
    assert_eq!(v.family(), Some(AddrFamily::V6));
    assert_eq!(v.record_count(), 3);
    let back: Vec<_> = v
        .records()
        .map(|r| ConnRecord6::decode(r).expect("record"))
        .collect();
    assert_eq!(back, records);
}

#[test]
fn the_type_decides_the_record_size() {
    // An IPv4 body under an IPv6 type, and the reverse, fail the length
    // check: a record is never read at the other family's offsets.
    let mut b = batch(2, EPOCH, 1, &[rec(1)]);
    b[3] = MessageType::Batch6.code();
    assert_eq!(
        MessageView::new_checked(&b).err(),
        Some(SyncError::Length {
            count: 1,
            len: b.len()
        })
    );
    let mut b = batch6(2, EPOCH, 1, &[rec6(1)]);
    b[3] = MessageType::Batch.code();
    assert_eq!(
        MessageView::new_checked(&b).err(),
        Some(SyncError::Length {
            count: 1,
            len: b.len()
        })
    );
    // 11 IPv4 records are 440 bytes, 5 IPv6 ones 440 too: the count
    // tells them apart.
    let v4: Vec<_> = (0..11).map(rec).collect();
    let mut b = batch(2, EPOCH, 1, &v4);
    b[3] = MessageType::Dump6.code();
    assert_eq!(
        MessageView::new_checked(&b).err(),
        Some(SyncError::Length {
            count: 11,
            len: b.len()
        })
    );
}
