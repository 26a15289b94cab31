//! Round trips for every message type, streaming framing and header errors.

use std::net::{IpAddr, Ipv4Addr};

use bgp::message::{
    code, AsPath, Capability, GracefulRestartFamily, MpReach, Notification, Open, Origin,
    PathAttributes, RawAttribute, Update, AS_TRANS,
};
use bgp::{decode, encode, Family, Message, Prefix, SessionCtx};

const FOUR: SessionCtx = SessionCtx {
    four_octet_as: true,
};
const TWO: SessionCtx = SessionCtx {
    four_octet_as: false,
};

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn round_trip(msg: &Message, ctx: SessionCtx) -> Vec<u8> {
    let mut buf = Vec::new();
    encode(msg, &ctx, &mut buf).unwrap();
    let (back, used) = decode(&buf, &ctx).unwrap().unwrap();
    assert_eq!(used, buf.len());
    assert_eq!(&back, msg);
    buf
}

fn sample_messages() -> Vec<Message> {
    let open = Open::new(
        65001,
        3,
        Ipv4Addr::new(10, 20, 1, 2),
        vec![
            Capability::multiprotocol(Family::Ipv4Unicast),
            Capability::multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(65001),
            Capability::GracefulRestart {
                restarted: false,
                restart_time: 90,
                families: vec![GracefulRestartFamily {
                    afi: 1,
                    safi: 1,
                    forwarding_preserved: true,
                }],
            },
            Capability::Unknown {
                code: 73,
                value: b"lb1".to_vec(),
            },
        ],
    );
    let update = Update {
        withdrawn: vec![p("10.0.1.0/24")],
        attributes: PathAttributes {
            origin: Some(Origin::Egp),
            as_path: Some(AsPath::sequence(vec![65001, 65001, 64999])),
            next_hop: Some(Ipv4Addr::new(10, 20, 1, 2)),
            med: Some(0),
            communities: vec![1, 2, 3],
            mp_reach: Some(MpReach {
                family: Family::Ipv6Unicast,
                next_hop: "2001:db8::2".parse().unwrap(),
                link_local: None,
                nlri: vec![p("2001:db8:100::/48")],
            }),
            unknown: vec![RawAttribute {
                flags: 0xc0,
                type_code: 99,
                value: vec![1, 2, 3],
            }],
            ..PathAttributes::default()
        },
        nlri: vec![p("10.0.0.0/25"), p("10.0.0.128/25")],
        issues: Vec::new(),
    };
    vec![
        Message::Open(open),
        Message::Update(Box::new(update)),
        Message::Update(Box::new(Update::end_of_rib(Family::Ipv4Unicast))),
        Message::Update(Box::new(Update::end_of_rib(Family::Ipv6Unicast))),
        Message::Notification(Notification::new(
            code::UPDATE,
            code::update::MALFORMED_AS_PATH,
            vec![],
        )),
        Message::Notification(Notification::administrative_shutdown("maintenance")),
        Message::Keepalive,
        Message::RouteRefresh {
            afi: 1,
            subtype: 0,
            safi: 1,
        },
    ]
}

#[test]
fn every_message_type_round_trips_on_both_session_kinds() {
    for ctx in [FOUR, TWO] {
        for m in sample_messages() {
            round_trip(&m, ctx);
        }
    }
}

#[test]
fn keepalive_is_nineteen_octets() {
    let buf = round_trip(&Message::Keepalive, FOUR);
    assert_eq!(buf.len(), 19);
    assert!(buf[..16].iter().all(|b| *b == 0xff));
    assert_eq!(&buf[16..], &[0, 19, 4]);
}

#[test]
fn end_of_rib_markers_are_recognised() {
    for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        let mut buf = Vec::new();
        encode(
            &Message::Update(Box::new(Update::end_of_rib(f))),
            &FOUR,
            &mut buf,
        )
        .unwrap();
        let Some((Message::Update(u), _)) = decode(&buf, &FOUR).unwrap() else {
            panic!("not an UPDATE")
        };
        assert_eq!(u.end_of_rib_family(), Some(f));
    }
    // The IPv4 marker is an UPDATE of 23 octets: header and two zero lengths.
    let mut buf = Vec::new();
    encode(
        &Message::Update(Box::new(Update::end_of_rib(Family::Ipv4Unicast))),
        &FOUR,
        &mut buf,
    )
    .unwrap();
    assert_eq!(buf.len(), 23);
}

#[test]
fn four_octet_as_in_open_uses_as_trans() {
    let open = Open::new(
        4_200_000_001,
        90,
        Ipv4Addr::new(1, 1, 1, 1),
        vec![Capability::FourOctetAs(4_200_000_001)],
    );
    let buf = round_trip(&Message::Open(open), TWO);
    assert_eq!(u16::from_be_bytes([buf[20], buf[21]]), AS_TRANS);
    let small = Open::new(65001, 90, Ipv4Addr::new(1, 1, 1, 1), vec![]);
    let buf = round_trip(&Message::Open(small), TWO);
    assert_eq!(u16::from_be_bytes([buf[20], buf[21]]), 65001);
}

#[test]
fn two_octet_path_on_wire_has_as_trans() {
    let u = Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![4_200_000_001])),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..PathAttributes::default()
        },
        nlri: vec![p("10.0.0.0/24")],
        ..Update::default()
    };
    let buf = round_trip(&Message::Update(Box::new(u)), TWO);
    // AS_PATH value: segment type 2, count 1, AS_TRANS.
    let want = [0x40, 2, 4, 2, 1, 0x5b, 0xa0];
    assert!(buf.windows(want.len()).any(|w| w == want), "{buf:02x?}");
    // AS4_PATH (optional transitive, type 17) with the real number.
    let mut as4 = vec![0xc0, 17, 6, 2, 1];
    as4.extend_from_slice(&4_200_000_001u32.to_be_bytes());
    assert!(
        buf.windows(as4.len()).any(|w| w == as4.as_slice()),
        "{buf:02x?}"
    );
}

#[test]
fn framing_waits_for_whole_messages_and_splits_streams() {
    let mut stream = Vec::new();
    let msgs = sample_messages();
    for m in &msgs {
        encode(m, &FOUR, &mut stream).unwrap();
    }
    // Every strict prefix of the first message is "need more".
    let (_, first_len) = decode(&stream, &FOUR).unwrap().unwrap();
    for cut in 0..first_len {
        assert_eq!(decode(&stream[..cut], &FOUR).unwrap(), None, "cut at {cut}");
    }
    let mut at = 0;
    let mut got = Vec::new();
    while let Some((m, n)) = decode(&stream[at..], &FOUR).unwrap() {
        got.push(m);
        at += n;
    }
    assert_eq!(at, stream.len());
    assert_eq!(got, msgs);
}

fn header(len: u16, t: u8) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&len.to_be_bytes());
    v.push(t);
    v
}

fn expect_reset(buf: &[u8], code_: u8, sub: u8) {
    let e = decode(buf, &FOUR).unwrap_err();
    assert_eq!(
        (e.notification.code, e.notification.subcode),
        (code_, sub),
        "{e}"
    );
}

#[test]
fn header_errors_reset_with_the_right_subcode() {
    let mut bad_marker = header(19, 4);
    bad_marker[3] = 0;
    expect_reset(
        &bad_marker,
        code::MESSAGE_HEADER,
        code::header::CONNECTION_NOT_SYNCHRONIZED,
    );
    expect_reset(
        &header(18, 4),
        code::MESSAGE_HEADER,
        code::header::BAD_MESSAGE_LENGTH,
    );
    expect_reset(
        &header(4097, 2),
        code::MESSAGE_HEADER,
        code::header::BAD_MESSAGE_LENGTH,
    );
    expect_reset(
        &header(20, 4),
        code::MESSAGE_HEADER,
        code::header::BAD_MESSAGE_LENGTH,
    );
    expect_reset(
        &header(22, 2),
        code::MESSAGE_HEADER,
        code::header::BAD_MESSAGE_LENGTH,
    );
    expect_reset(
        &header(19, 9),
        code::MESSAGE_HEADER,
        code::header::BAD_MESSAGE_TYPE,
    );
    // Bad length data carries the offending length (RFC 4271 §6.1).
    let e = decode(&header(5000, 2), &FOUR).unwrap_err();
    assert_eq!(e.notification.data, 5000u16.to_be_bytes());
}

#[test]
fn open_with_unknown_parameter_is_rejected() {
    let mut m = header(0, 1);
    m.extend_from_slice(&[4, 0xfd, 0xe9, 0, 90, 1, 2, 3, 4, 3, 1, 1, 0]);
    let len = m.len() as u16;
    m[16..18].copy_from_slice(&len.to_be_bytes());
    expect_reset(&m, code::OPEN, code::open::UNSUPPORTED_OPTIONAL_PARAMETER);
}

#[test]
fn oversized_update_is_refused_without_output() {
    let nlri: Vec<Prefix> = (0..2000u32)
        .map(|i| Prefix::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))), 24).unwrap())
        .collect();
    let u = Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..PathAttributes::default()
        },
        nlri,
        ..Update::default()
    };
    let mut buf = vec![7];
    assert!(encode(&Message::Update(Box::new(u)), &FOUR, &mut buf).is_err());
    assert_eq!(buf, vec![7]);
}

#[test]
fn open_capabilities_are_packed_and_limits_enforced() {
    let caps = |n: usize| -> Vec<Capability> {
        (0..n)
            .map(|i| Capability::Unknown {
                code: 200,
                value: vec![i as u8],
            })
            .collect()
    };
    // 80 capabilities of 3 octets: too many for one parameter each (400 octets),
    // fine packed into two parameters.
    let open = Open::new(65001, 90, Ipv4Addr::new(1, 1, 1, 1), caps(80));
    let buf = round_trip(&Message::Open(open), FOUR);
    assert_eq!(usize::from(buf[28]), buf.len() - 29);
    assert!(buf[28] < 255);

    let mut out = vec![1, 2];
    let too_many = Open::new(65001, 90, Ipv4Addr::new(1, 1, 1, 1), caps(90));
    assert!(encode(&Message::Open(too_many), &FOUR, &mut out).is_err());
    let huge = Capability::Unknown {
        code: 200,
        value: vec![0; 300],
    };
    let too_big = Open::new(65001, 90, Ipv4Addr::new(1, 1, 1, 1), vec![huge]);
    assert!(encode(&Message::Open(too_big), &FOUR, &mut out).is_err());
    assert_eq!(out, vec![1, 2]);
}
