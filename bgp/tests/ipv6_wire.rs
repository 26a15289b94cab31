//! IPv6 unicast on the wire: golden OPEN, MP_REACH_NLRI and MP_UNREACH_NLRI
//! octets written out from RFC 4271 / 4760 / 2545 / 5492, every truncation of
//! them, and the numeric extremes the decoder must refuse by name.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgp::message::{
    code, type_code as tc, AsPath, Capability, ErrorAction, MpError, MpReach, MpUnreach, Open,
    Origin, PathAttributes, Update,
};
use bgp::{
    decode, encode, Family, Input, Ipv6NextHop, Message, NlriError, Output, Prefix, Route,
    SessionCtx,
};
use common::{config, peer_open, Harness};

const FOUR: SessionCtx = SessionCtx {
    four_octet_as: true,
};

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// An OPEN from AS 65001, hold 90, id 10.20.1.2, offering IPv4 and IPv6 unicast,
/// route refresh and 4-octet AS in one capabilities parameter.
const OPEN: &[u8] = &[
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0, 51, 1, // length, OPEN
    4, 0xfd, 0xe9, 0, 90, 10, 20, 1, 2, // version, AS 65001, hold 90, BGP identifier
    22, 2, 20, // optional parameters length; capabilities parameter of 20 octets
    1, 4, 0, 1, 0, 1, // multiprotocol AFI 1 SAFI 1
    1, 4, 0, 2, 0, 1, // multiprotocol AFI 2 SAFI 1
    2, 0, // route refresh
    65, 4, 0, 0, 0xfd, 0xe9, // 4-octet AS 65001
];

fn open() -> Open {
    Open::new(
        65001,
        90,
        Ipv4Addr::new(10, 20, 1, 2),
        vec![
            Capability::multiprotocol(Family::Ipv4Unicast),
            Capability::multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(65001),
        ],
    )
}

/// The MP_REACH_NLRI value: 2001:db8::/48 via 2001:db8:1::2 and fe80::2.
const REACH_VALUE: &[u8] = &[
    0, 2, 1, 32, // AFI 2, SAFI 1, next hop length 32
    0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // 2001:db8:1::2
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // fe80::2
    0, // reserved
    48, 0x20, 0x01, 0x0d, 0xb8, 0, 0, // 2001:db8::/48
];

/// An UPDATE announcing 2001:db8::/48 from AS 65001 with community 65001:100.
/// No NEXT_HOP attribute and empty classic NLRI: IPv6 travels in MP_REACH only.
const ANNOUNCE: &[u8] = &[
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0, 90, 2, // length, UPDATE
    0, 0, // no withdrawn routes
    0, 67, // total path attribute length
    0x80, 14,
    44, // MP_REACH_NLRI first (RFC 7606 §5.1), optional non-transitive: REACH_VALUE
    0, 2, 1, 32, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0xfe, 0x80, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0x40, 1, 1,
    0, // ORIGIN IGP
    0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9, // AS_PATH sequence [65001]
    0xc0, 8, 4, 0xfd, 0xe9, 0, 100, // COMMUNITIES 65001:100
];

fn announce() -> Update {
    Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![65001])),
            communities: vec![(65001 << 16) | 100],
            mp_reach: Some(MpReach {
                family: Family::Ipv6Unicast,
                next_hop: IpAddr::V6(v6("2001:db8:1::2")),
                link_local: Some(v6("fe80::2")),
                nlri: vec![p("2001:db8::/48")],
            }),
            ..PathAttributes::default()
        },
        ..Update::default()
    }
}

/// The MP_UNREACH_NLRI value withdrawing 2001:db8::/48.
const UNREACH_VALUE: &[u8] = &[0, 2, 1, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 0];

const WITHDRAW: &[u8] = &[
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0, 36, 2, // length, UPDATE
    0, 0, // no withdrawn routes
    0, 13, // total path attribute length
    0x80, 15, 10, 0, 2, 1, 48, 0x20, 0x01, 0x0d, 0xb8, 0, 0, // MP_UNREACH_NLRI
];

fn withdraw() -> Update {
    let mut u = Update::default();
    u.attributes.mp_unreach = Some(MpUnreach {
        family: Family::Ipv6Unicast,
        withdrawn: vec![p("2001:db8::/48")],
    });
    u
}

fn encoded(m: &Message) -> Vec<u8> {
    let mut buf = Vec::new();
    encode(m, &FOUR, &mut buf).unwrap();
    buf
}

fn decoded(buf: &[u8]) -> Message {
    let (m, n) = decode(buf, &FOUR).unwrap().expect("a whole message");
    assert_eq!(n, buf.len());
    m
}

#[test]
fn golden_open_with_both_multiprotocol_capabilities() {
    assert_eq!(encoded(&Message::Open(open())), OPEN);
    let Message::Open(back) = decoded(OPEN) else {
        panic!("not an OPEN")
    };
    assert_eq!(back, open());
    assert_eq!(
        back.families(),
        vec![Family::Ipv4Unicast, Family::Ipv6Unicast]
    );
}

#[test]
fn golden_mp_reach_with_global_and_link_local_next_hop() {
    assert_eq!(encoded(&Message::Update(Box::new(announce()))), ANNOUNCE);
    assert_eq!(decoded(ANNOUNCE), Message::Update(Box::new(announce())));
    assert_eq!(
        MpReach::decode(REACH_VALUE),
        Ok(announce().attributes.mp_reach.unwrap())
    );
    // MP_REACH_NLRI first, and nothing of type 3 (NEXT_HOP).
    let attrs = &ANNOUNCE[23..];
    let types: Vec<u8> = [0, 47, 51, 60].iter().map(|&at| attrs[at + 1]).collect();
    assert_eq!(
        types,
        vec![tc::MP_REACH_NLRI, tc::ORIGIN, tc::AS_PATH, tc::COMMUNITIES]
    );
}

#[test]
fn golden_mp_unreach() {
    assert_eq!(encoded(&Message::Update(Box::new(withdraw()))), WITHDRAW);
    assert_eq!(decoded(WITHDRAW), Message::Update(Box::new(withdraw())));
    assert_eq!(
        MpUnreach::decode(UNREACH_VALUE),
        Ok(withdraw().attributes.mp_unreach.unwrap())
    );
}

#[test]
fn golden_ipv6_end_of_rib() {
    let eor = Update::end_of_rib(Family::Ipv6Unicast);
    let wire = encoded(&Message::Update(Box::new(eor.clone())));
    assert_eq!(&wire[16..], &[0, 29, 2, 0, 0, 0, 6, 0x80, 15, 3, 0, 2, 1]);
    let Message::Update(back) = decoded(&wire) else {
        panic!("not an UPDATE")
    };
    assert_eq!(back.end_of_rib_family(), Some(Family::Ipv6Unicast));
}

fn sends(out: &[Output]) -> Vec<&[u8]> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(b) => Some(b.as_slice()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_session_sends_exactly_the_golden_octets() {
    let mut cfg = config(65001, 65000);
    cfg.hold_time = 90;
    cfg.ipv6_next_hop = Some(Ipv6NextHop {
        global: v6("2001:db8:1::2"),
        link_local: Some(v6("fe80::2")),
    });
    let mut h = Harness::new(cfg);
    h.feed(Input::Start);
    let out = h.feed(Input::TcpConnected);
    assert_eq!(sends(&out), vec![OPEN]);
    h.feed(Input::TcpClosed);

    h.establish_with(peer_open(65000, 90));
    let mut r = Route::new(p("2001:db8::/48"), IpAddr::V4(Ipv4Addr::new(10, 20, 1, 2)));
    r.communities = vec![(65001 << 16) | 100];
    let out = h.feed(Input::Announce(r));
    assert_eq!(sends(&out), vec![ANNOUNCE]);
    let out = h.feed(Input::Withdraw(p("2001:db8::/48")));
    assert_eq!(sends(&out), vec![WITHDRAW]);
}

/// `msg` with its body cut to `cut` octets and the header length saying so.
fn cut_message(msg: &[u8], cut: usize) -> Vec<u8> {
    let mut m = msg[..19 + cut].to_vec();
    m[16..18].copy_from_slice(&((19 + cut) as u16).to_be_bytes());
    m
}

fn reset_code(buf: &[u8]) -> (u8, u8) {
    let e = decode(buf, &FOUR).expect_err("a truncated message is refused");
    (e.notification.code, e.notification.subcode)
}

#[test]
fn every_truncated_stream_waits_for_more() {
    for msg in [OPEN, ANNOUNCE, WITHDRAW] {
        for n in 0..msg.len() {
            assert_eq!(decode(&msg[..n], &FOUR), Ok(None), "{n} octets");
        }
    }
}

#[test]
fn every_truncated_message_is_refused_with_the_right_error() {
    let header = (code::MESSAGE_HEADER, code::header::BAD_MESSAGE_LENGTH);
    let attr_list = (code::UPDATE, code::update::MALFORMED_ATTRIBUTE_LIST);
    for cut in 0..OPEN.len() - 19 {
        let want = if cut < 10 { header } else { (code::OPEN, 0) };
        assert_eq!(
            reset_code(&cut_message(OPEN, cut)),
            want,
            "OPEN body cut to {cut}"
        );
    }
    for msg in [ANNOUNCE, WITHDRAW] {
        for cut in 0..msg.len() - 19 {
            let want = if cut < 4 { header } else { attr_list };
            assert_eq!(
                reset_code(&cut_message(msg, cut)),
                want,
                "UPDATE body cut to {cut}"
            );
        }
    }
}

#[test]
fn every_truncated_mp_reach_value_has_a_named_error() {
    for k in 0..REACH_VALUE.len() {
        let got = MpReach::decode(&REACH_VALUE[..k]);
        let nlri_truncated = MpError::Nlri {
            family: Family::Ipv6Unicast,
            error: NlriError::Truncated,
        };
        match k {
            0..=3 => assert_eq!(got, Err(MpError::Truncated { len: k, need: 4 })),
            4..=35 => assert_eq!(
                got,
                Err(MpError::NextHopOverrun {
                    len: 32,
                    left: k - 4
                })
            ),
            36 => assert_eq!(got, Err(MpError::NoReserved)),
            // Next hop and reserved octet, no prefixes: well-formed.
            37 => assert_eq!(got.unwrap().nlri, vec![]),
            _ => assert_eq!(got, Err(nlri_truncated), "{k} octets"),
        }
    }
}

#[test]
fn every_truncated_mp_unreach_value_has_a_named_error() {
    for k in 0..UNREACH_VALUE.len() {
        let got = MpUnreach::decode(&UNREACH_VALUE[..k]);
        match k {
            0..=2 => assert_eq!(got, Err(MpError::Truncated { len: k, need: 3 })),
            // AFI and SAFI alone: the IPv6 End-of-RIB.
            3 => assert_eq!(got.unwrap().withdrawn, vec![]),
            _ => assert_eq!(
                got,
                Err(MpError::Nlri {
                    family: Family::Ipv6Unicast,
                    error: NlriError::Truncated
                })
            ),
        }
    }
}

/// An UPDATE with ORIGIN, AS_PATH and the given MP attribute, framed.
fn update_with(t: u8, value: &[u8]) -> Vec<u8> {
    let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
    attrs.extend_from_slice(&[0x90, t]);
    attrs.extend_from_slice(&(value.len() as u16).to_be_bytes());
    attrs.extend_from_slice(value);
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + 4 + attrs.len()) as u16).to_be_bytes());
    m.extend_from_slice(&[2, 0, 0]);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(&attrs);
    m
}

#[test]
fn truncated_mp_attributes_in_an_update_reset_the_session() {
    let optional = (code::UPDATE, code::update::OPTIONAL_ATTRIBUTE_ERROR);
    for k in (0..REACH_VALUE.len()).filter(|&k| k != 37) {
        let buf = update_with(tc::MP_REACH_NLRI, &REACH_VALUE[..k]);
        assert_eq!(reset_code(&buf), optional, "MP_REACH value cut to {k}");
        let e = decode(&buf, &FOUR).unwrap_err();
        assert!(
            e.reason.starts_with("malformed MP_REACH_NLRI: "),
            "{}",
            e.reason
        );
    }
    for k in (0..UNREACH_VALUE.len()).filter(|&k| k != 3) {
        let buf = update_with(tc::MP_UNREACH_NLRI, &UNREACH_VALUE[..k]);
        assert_eq!(reset_code(&buf), optional, "MP_UNREACH value cut to {k}");
    }
}

/// REACH_VALUE with the next hop length octet and next hop replaced.
fn reach_with_next_hop(len: u8, octets: usize) -> Vec<u8> {
    let mut v = vec![0, 2, 1, len];
    v.extend(std::iter::repeat_n(0x20, octets));
    v.push(0);
    v.extend_from_slice(&[48, 0x20, 0x01, 0x0d, 0xb8, 0, 0]);
    v
}

#[test]
fn next_hop_lengths_other_than_16_and_32_are_refused() {
    for len in [0u8, 4, 15, 17, 31, 33, 64, 255] {
        for octets in [usize::from(len), 0] {
            assert_eq!(
                MpReach::decode(&reach_with_next_hop(len, octets)),
                Err(MpError::NextHopLength {
                    family: Family::Ipv6Unicast,
                    len,
                    allowed: "16 or 32"
                }),
                "next hop length {len}"
            );
        }
        let e = decode(
            &update_with(
                tc::MP_REACH_NLRI,
                &reach_with_next_hop(len, usize::from(len)),
            ),
            &FOUR,
        )
        .unwrap_err();
        assert_eq!(
            e.reason,
            format!("malformed MP_REACH_NLRI: ipv6-unicast next hop length {len} is not 16 or 32")
        );
    }
    for len in [16u8, 32] {
        assert!(MpReach::decode(&reach_with_next_hop(len, usize::from(len))).is_ok());
    }
    // IPv4 unicast in MP_REACH takes a 4-octet next hop only.
    let v4 = [
        0, 1, 1, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 10,
    ];
    assert_eq!(
        MpReach::decode(&v4),
        Err(MpError::NextHopLength {
            family: Family::Ipv4Unicast,
            len: 16,
            allowed: "4"
        })
    );
}

#[test]
fn prefix_length_129_is_refused() {
    let mut v = REACH_VALUE[..37].to_vec();
    v.push(129);
    v.extend_from_slice(&[0x20; 16]);
    let want = MpError::Nlri {
        family: Family::Ipv6Unicast,
        error: NlriError::LengthTooLong(129),
    };
    assert_eq!(MpReach::decode(&v), Err(want));
    let e = decode(&update_with(tc::MP_REACH_NLRI, &v), &FOUR).unwrap_err();
    assert_eq!(
        e.reason,
        "malformed MP_REACH_NLRI: ipv6-unicast NLRI: prefix length 129 is too long"
    );
    assert_eq!(
        MpUnreach::decode(&[0, 2, 1, 129, 0x20]),
        Err(MpError::Nlri {
            family: Family::Ipv6Unicast,
            error: NlriError::LengthTooLong(129)
        })
    );
}

#[test]
fn afi_65535_is_named_and_the_attribute_discarded() {
    let mut v = REACH_VALUE.to_vec();
    v[..2].copy_from_slice(&[0xff, 0xff]);
    assert_eq!(
        MpReach::decode(&v),
        Err(MpError::UnknownFamily {
            afi: 65535,
            safi: 1
        })
    );
    assert_eq!(
        MpUnreach::decode(&[0xff, 0xff, 1]),
        Err(MpError::UnknownFamily {
            afi: 65535,
            safi: 1
        })
    );
    // A family vipd does not speak is ignored, not a reason to reset the session.
    for (t, value) in [
        (tc::MP_REACH_NLRI, v.clone()),
        (tc::MP_UNREACH_NLRI, vec![0xff, 0xff, 1]),
    ] {
        let Message::Update(u) = decoded(&update_with(t, &value)) else {
            panic!("not an UPDATE")
        };
        assert_eq!(u.issues.len(), 1);
        assert_eq!(u.issues[0].action, ErrorAction::AttributeDiscard);
        assert!(
            u.issues[0].reason.contains("AFI 65535 SAFI 1"),
            "{}",
            u.issues[0].reason
        );
        assert_eq!(u.announced().count() + u.withdrawn_all().count(), 0);
    }
    // In OPEN the capability is kept raw and the family simply not offered.
    let o = Open::new(
        65000,
        90,
        Ipv4Addr::new(10, 0, 0, 1),
        vec![Capability::Multiprotocol {
            afi: 65535,
            safi: 1,
        }],
    );
    let Message::Open(back) = decoded(&encoded(&Message::Open(o.clone()))) else {
        panic!("not an OPEN")
    };
    assert_eq!(back, o);
    assert!(back.has_multiprotocol());
    assert_eq!(back.families(), vec![]);
}

#[test]
fn malformed_multiprotocol_capability_refuses_the_open() {
    // The multiprotocol capability value is exactly AFI, reserved, SAFI.
    for len in [0usize, 3, 5] {
        let mut m = OPEN[..29].to_vec();
        m[28] = 2 + 2 + len as u8;
        m.extend_from_slice(&[2, 2 + len as u8, 1, len as u8]);
        m.extend(std::iter::repeat_n(1, len));
        let total = m.len() as u16;
        m[16..18].copy_from_slice(&total.to_be_bytes());
        let e = decode(&m, &FOUR).unwrap_err();
        assert_eq!(e.notification.code, code::OPEN, "value of {len} octets");
        assert!(e.reason.contains("multiprotocol"), "{}", e.reason);
    }
}
