//! The records, 40 bytes (IPv4) and 88 (IPv6): round trips, byte layouts,
//! every byte's meaning and every field's error.

use super::util::{RandomAddr, Rng};
use crate::{AddrFamily, AnyRecord, ConnRecord, ConnRecord6, Record, RecordOp, SyncError};

fn round_trip<A: RandomAddr>(r: &Record<A>) {
    let mut b = vec![0u8; Record::<A>::LEN];
    r.encode_into(&mut b).expect("record size");
    assert_eq!(Record::<A>::decode(&b), Ok(*r));
    assert_eq!(AnyRecord::decode(A::FAMILY, &b), Ok(AnyRecord::from(*r)));
}

#[test]
fn random_records_round_trip() {
    let mut rng = Rng::new(7);
    for _ in 0..10_000 {
        round_trip(&rng.record());
        round_trip(&rng.record6());
    }
}

#[test]
fn sizes_follow_the_family() {
    assert_eq!(ConnRecord::LEN, 40);
    assert_eq!(ConnRecord6::LEN, 88);
    assert_eq!(AddrFamily::V4.record_len(), ConnRecord::LEN);
    assert_eq!(AddrFamily::V6.record_len(), ConnRecord6::LEN);
}

/// The fields of `a` and `b` that differ, by name.
fn differing<A: RandomAddr>(a: &Record<A>, b: &Record<A>) -> Vec<&'static str> {
    let fields = [
        ("op", a.op != b.op),
        ("proto", a.proto != b.proto),
        ("state", a.state != b.state),
        ("client_ip", a.client_ip != b.client_ip),
        ("client_port", a.client_port != b.client_port),
        ("vip", a.vip != b.vip),
        ("vip_port", a.vip_port != b.vip_port),
        ("backend_ip", a.backend_ip != b.backend_ip),
        ("backend_port", a.backend_port != b.backend_port),
        ("snat_ip", a.snat_ip != b.snat_ip),
        ("snat_port", a.snat_port != b.snat_port),
        ("client_mac", a.client_mac != b.client_mac),
        ("origin", a.origin != b.origin),
        ("timeout_ms", a.timeout_ms != b.timeout_ms),
    ];
    fields.into_iter().filter(|f| f.1).map(|f| f.0).collect()
}

/// Every value of every byte of a valid record: the op, protocol and
/// reserved bytes refuse what they do not know, naming the field; any
/// other byte changes exactly one field and encodes back to itself, so no
/// byte is ignored or shared by two fields.
fn every_byte_has_one_meaning<A: RandomAddr>(seed: u64) {
    let mut rng = Rng::new(seed);
    let good: Record<A> = Record {
        op: RecordOp::Upsert,
        proto: 6,
        ..rng.record_of()
    };
    let mut valid = vec![0u8; Record::<A>::LEN];
    good.encode_into(&mut valid).expect("record size");
    let mut touched = Vec::new();
    for at in 0..Record::<A>::LEN {
        for value in 0..=u8::MAX {
            let mut b = valid.clone();
            b[at] = value;
            let got = Record::<A>::decode(&b);
            let refused = |field| Err(SyncError::RecordField { field, value });
            match at {
                0 if value > 1 => assert_eq!(got, refused("op")),
                1 if value != 6 && value != 17 => assert_eq!(got, refused("proto")),
                3 if value != 0 => assert_eq!(got, refused("reserved")),
                _ => {
                    let r = got.unwrap_or_else(|e| panic!("byte {at} = {value}: {e}"));
                    let mut again = vec![0u8; Record::<A>::LEN];
                    r.encode_into(&mut again).expect("record size");
                    assert_eq!(again, b, "byte {at} = {value}");
                    let changed = differing(&good, &r);
                    if value == valid[at] {
                        assert!(changed.is_empty(), "byte {at}: {changed:?}");
                    } else {
                        assert_eq!(changed.len(), 1, "byte {at} = {value}: {changed:?}");
                        touched.push(changed[0]);
                    }
                }
            }
        }
    }
    // Every field but the reserved byte has some byte that sets it.
    touched.sort_unstable();
    touched.dedup();
    assert_eq!(touched.len(), 14, "{touched:?}");
}

#[test]
fn every_byte_of_an_ipv4_record_has_one_meaning() {
    every_byte_has_one_meaning::<u32>(19);
}

#[test]
fn every_byte_of_an_ipv6_record_has_one_meaning() {
    every_byte_has_one_meaning::<[u8; 16]>(23);
}

#[test]
fn ipv6_layout_is_big_endian_at_fixed_offsets() {
    let ip = |first: u8| std::array::from_fn::<u8, 16, _>(|i| first + i as u8);
    let r = ConnRecord6 {
        op: RecordOp::Delete,
        proto: 17,
        state: 3,
        client_port: 0x0405,
        vip_port: 0x0607,
        backend_port: 0x0809,
        snat_port: 0x0a0b,
        client_mac: [0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11],
        origin: 0x1213,
        timeout_ms: 0x1415_1617,
        client_ip: ip(0x20),
        vip: ip(0x40),
        backend_ip: ip(0x60),
        snat_ip: ip(0x80),
    };
    let mut b = [0xeeu8; ConnRecord6::LEN];
    r.encode_into(&mut b).expect("88 bytes");
    assert_eq!(&b[..4], &[1, 17, 3, 0]);
    let counting = |from: u8, n: usize| (from..).take(n).collect::<Vec<u8>>();
    assert_eq!(&b[4..24], &counting(4, 20)[..]);
    assert_eq!(&b[24..40], &ip(0x20));
    assert_eq!(&b[40..56], &ip(0x40));
    assert_eq!(&b[56..72], &ip(0x60));
    assert_eq!(&b[72..88], &ip(0x80));
}

#[test]
fn short_ipv6_buffers_are_refused_and_left_alone() {
    let r = Rng::new(5).record6();
    for len in 0..ConnRecord6::LEN {
        let mut b = vec![0x77u8; len];
        let short = Err(SyncError::Truncated { got: len, need: 88 });
        assert_eq!(r.encode_into(&mut b), short);
        assert!(b.iter().all(|&x| x == 0x77));
        assert_eq!(ConnRecord6::decode(&b), short.map(|()| r));
        assert_eq!(
            AnyRecord::decode(AddrFamily::V6, &b),
            short.map(|()| r.into())
        );
    }
    // 40 bytes are a whole IPv4 record and too short an IPv6 one.
    let mut b = [0u8; 40];
    Rng::new(5).record().encode_into(&mut b).expect("40 bytes");
    assert!(AnyRecord::decode(AddrFamily::V4, &b).is_ok());
    assert!(AnyRecord::decode(AddrFamily::V6, &b).is_err());
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
        let len = rng.below(93) as usize;
        let b = rng.bytes(len);
        if let Ok(r) = ConnRecord6::decode(&b) {
            let mut again = [0u8; ConnRecord6::LEN];
            r.encode_into(&mut again).expect("88 bytes");
            assert_eq!(&again[..], &b[..ConnRecord6::LEN]);
        }
    }
}
