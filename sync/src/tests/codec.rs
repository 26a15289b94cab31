//! The 40-byte record: round trips, byte layout and every field's error.

use super::util::Rng;
use crate::{ConnRecord, RecordOp, SyncError};

fn round_trip(r: &ConnRecord) {
    let mut b = [0u8; ConnRecord::LEN];
    r.encode_into(&mut b).expect("40 bytes");
    assert_eq!(ConnRecord::decode(&b), Ok(*r));
}

#[test]
fn random_records_round_trip() {
    let mut rng = Rng::new(7);
    for _ in 0..10_000 {
        round_trip(&rng.record());
    }
}

#[test]
fn extremes_round_trip() {
    let max = ConnRecord {
        op: RecordOp::Delete,
        proto: 17,
        state: u8::MAX,
        client_ip: u32::MAX,
        client_port: u16::MAX,
        vip: u32::MAX,
        vip_port: u16::MAX,
        backend_ip: u32::MAX,
        backend_port: u16::MAX,
        snat_ip: u32::MAX,
        snat_port: u16::MAX,
        client_mac: [0xff; 6],
        origin: u16::MAX,
        timeout_ms: u32::MAX,
    };
    round_trip(&max);
    let zero = ConnRecord {
        proto: 6,
        ..ConnRecord::default()
    };
    round_trip(&zero);
    for state in 0..=u8::MAX {
        round_trip(&ConnRecord { state, ..zero });
    }
}

#[test]
fn layout_is_big_endian_at_fixed_offsets() {
    let r = ConnRecord {
        op: RecordOp::Delete,
        proto: 17,
        state: 3,
        client_ip: 0x0102_0304,
        client_port: 0x0506,
        vip: 0x0708_090a,
        vip_port: 0x0b0c,
        backend_ip: 0x0d0e_0f10,
        backend_port: 0x1112,
        snat_ip: 0x1314_1516,
        snat_port: 0x1718,
        client_mac: [0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e],
        origin: 0x1f20,
        timeout_ms: 0x2122_2324,
    };
    let mut b = [0xeeu8; ConnRecord::LEN];
    r.encode_into(&mut b).expect("40 bytes");
    assert_eq!(ConnRecord::LEN, 40);
    assert_eq!(&b[..4], &[1, 17, 3, 0]);
    assert_eq!(&b[4..8], &[1, 2, 3, 4]);
    assert_eq!(&b[8..12], &[5, 6, 0x0b, 0x0c]);
    assert_eq!(&b[12..16], &[7, 8, 9, 0x0a]);
    assert_eq!(
        &b[16..24],
        &[0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x17, 0x18]
    );
    assert_eq!(&b[24..28], &[0x13, 0x14, 0x15, 0x16]);
    assert_eq!(&b[28..34], &r.client_mac);
    assert_eq!(&b[34..40], &[0x1f, 0x20, 0x21, 0x22, 0x23, 0x24]);
}

#[test]
fn longer_buffers_use_the_first_40_bytes() {
    let r = Rng::new(3).record();
    let mut b = [0x55u8; 50];
    r.encode_into(&mut b).expect("fits");
    assert!(b[40..].iter().all(|&x| x == 0x55));
    assert_eq!(ConnRecord::decode(&b), Ok(r));
}

#[test]
fn short_buffers_are_refused_and_left_alone() {
    let r = Rng::new(5).record();
    for len in 0..ConnRecord::LEN {
        let mut b = vec![0x77u8; len];
        assert_eq!(
            r.encode_into(&mut b),
            Err(SyncError::Truncated { got: len, need: 40 })
        );
        assert!(b.iter().all(|&x| x == 0x77));
        assert_eq!(
            ConnRecord::decode(&b),
            Err(SyncError::Truncated { got: len, need: 40 })
        );
    }
}

fn valid_bytes() -> [u8; ConnRecord::LEN] {
    let mut b = [0u8; ConnRecord::LEN];
    Rng::new(11).record().encode_into(&mut b).expect("40 bytes");
    b
}

#[test]
fn op_must_be_upsert_or_delete() {
    for value in 0..=u8::MAX {
        let mut b = valid_bytes();
        b[0] = value;
        match value {
            0 => assert_eq!(ConnRecord::decode(&b).map(|r| r.op), Ok(RecordOp::Upsert)),
            1 => assert_eq!(ConnRecord::decode(&b).map(|r| r.op), Ok(RecordOp::Delete)),
            _ => assert_eq!(
                ConnRecord::decode(&b),
                Err(SyncError::RecordField { field: "op", value })
            ),
        }
    }
}

#[test]
fn proto_must_be_tcp_or_udp() {
    for value in 0..=u8::MAX {
        let mut b = valid_bytes();
        b[1] = value;
        let got = ConnRecord::decode(&b);
        if value == 6 || value == 17 {
            assert_eq!(got.map(|r| r.proto), Ok(value));
        } else {
            assert_eq!(
                got,
                Err(SyncError::RecordField {
                    field: "proto",
                    value
                })
            );
        }
    }
}

#[test]
fn reserved_byte_must_be_zero() {
    for value in 1..=u8::MAX {
        let mut b = valid_bytes();
        b[3] = value;
        assert_eq!(
            ConnRecord::decode(&b),
            Err(SyncError::RecordField {
                field: "reserved",
                value
            })
        );
    }
}

#[test]
fn errors_name_the_field() {
    let mut b = valid_bytes();
    b[1] = 1;
    let msg = ConnRecord::decode(&b).expect_err("ICMP").to_string();
    assert!(msg.contains("proto") && msg.contains('1'), "{msg}");
    b = valid_bytes();
    b[0] = 9;
    let msg = ConnRecord::decode(&b).expect_err("op 9").to_string();
    assert!(msg.contains("op") && msg.contains('9'), "{msg}");
}

#[test]
fn random_bytes_decode_or_fail_without_panic() {
    let mut rng = Rng::new(13);
    for _ in 0..20_000 {
        let len = rng.below(45) as usize;
        let b = rng.bytes(len);
        if let Ok(r) = ConnRecord::decode(&b) {
            let mut again = [0u8; ConnRecord::LEN];
            r.encode_into(&mut again).expect("40 bytes");
            assert_eq!(&again[..], &b[..ConnRecord::LEN]);
        }
    }
}
