//! Arbitrary bytes into the codec (both AS widths), into the MP_REACH_NLRI /
//! MP_UNREACH_NLRI decoders and into an Established session that speaks IPv6.
//! Nothing may panic; whatever decodes cleanly on a 4-octet session must
//! re-encode to a message that decodes to the same value.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgp::message::{Capability, MpReach, MpUnreach, Open, Update};
use bgp::{
    decode, encode, Family, Input, Ipv6NextHop, Message, PeerConfig, Route, Session, SessionCtx,
    State, TimerKind,
};
use libfuzzer_sys::fuzz_target;

fn codec(data: &[u8], ctx: SessionCtx) {
    let mut at = 0;
    while let Some(rest) = data.get(at..) {
        match decode(rest, &ctx) {
            Ok(Some((msg, n))) => {
                assert!(n >= 19 && n <= rest.len());
                at += n;
                if ctx.four_octet_as {
                    check_round_trip(msg, ctx);
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
}

fn check_round_trip(msg: Message, ctx: SessionCtx) {
    let msg = match msg {
        // Findings are not part of the wire form.
        Message::Update(mut u) => {
            u.issues.clear();
            Message::Update(u)
        }
        m => m,
    };
    let mut buf = Vec::new();
    if encode(&msg, &ctx, &mut buf).is_err() {
        return;
    }
    let (back, n) = decode(&buf, &ctx)
        .expect("own encoding decodes")
        .expect("whole message");
    assert_eq!(n, buf.len());
    let back = match back {
        Message::Update(mut u) => {
            u.issues.clear();
            Message::Update(u)
        }
        m => m,
    };
    assert_eq!(back, msg);
}

/// The MP decoders on their own: a value they accept survives an UPDATE round trip.
fn mp_values(data: &[u8]) {
    let ctx = SessionCtx {
        four_octet_as: true,
    };
    let mut u = Update::default();
    u.attributes.mp_reach = MpReach::decode(data).ok();
    u.attributes.mp_unreach = MpUnreach::decode(data).ok();
    if u.attributes.mp_reach.is_some() || u.attributes.mp_unreach.is_some() {
        check_round_trip(Message::Update(Box::new(u)), ctx);
    }
}

fn established() -> (Session, Instant) {
    let now = Instant::now();
    let mut cfg = PeerConfig::new("fuzz-peer", 65001, 65000, Ipv4Addr::new(10, 0, 0, 2));
    cfg.ipv6_next_hop = Some(Ipv6NextHop {
        global: "2001:db8::2".parse().expect("address"),
        link_local: Some("fe80::2".parse().expect("address")),
    });
    let mut s = Session::new(cfg);
    let mut out = Vec::new();
    let v6 = "2001:db8:100::/48".parse().expect("prefix");
    let default_next_hop = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    s.handle(Input::Announce(Route::new(v6, default_next_hop)), now, &mut out);
    s.handle(Input::Start, now, &mut out);
    s.handle(Input::TcpConnected, now, &mut out);
    let open = Open::new(
        65000,
        90,
        Ipv4Addr::new(10, 0, 0, 1),
        vec![
            Capability::multiprotocol(Family::Ipv4Unicast),
            Capability::multiprotocol(Family::Ipv6Unicast),
            Capability::FourOctetAs(65000),
        ],
    );
    let mut wire = Vec::new();
    let ctx = SessionCtx::default();
    encode(&Message::Open(open), &ctx, &mut wire).expect("OPEN fits");
    encode(&Message::Keepalive, &ctx, &mut wire).expect("KEEPALIVE fits");
    s.handle(Input::Bytes(&wire), now, &mut out);
    assert_eq!(s.state(), State::Established);
    (s, now)
}

/// An UPDATE body with ORIGIN, AS_PATH [65000] and `value` as attribute `t`.
fn mp_update_body(t: u8, value: &[u8]) -> Vec<u8> {
    let value = &value[..value.len().min(4000)];
    let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe8, 0x90, t];
    attrs.extend_from_slice(&(value.len() as u16).to_be_bytes());
    attrs.extend_from_slice(value);
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body
}

/// Wraps `body` in a valid header so mutations reach the message parsers instead
/// of dying at the marker check. The first input byte picks the message type;
/// 6 and 7 make the rest the value of an UPDATE's MP_REACH_NLRI / MP_UNREACH_NLRI.
fn framed(data: &[u8]) -> Vec<u8> {
    let Some((&t, rest)) = data.split_first() else {
        return Vec::new();
    };
    let (t, body) = match t % 8 {
        6 => (2, mp_update_body(14, rest)),
        7 => (2, mp_update_body(15, rest)),
        t => (t, rest.to_vec()),
    };
    let body = &body[..body.len().min(4096 - 19)];
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(t);
    m.extend_from_slice(body);
    m
}

fuzz_target!(|data: &[u8]| {
    mp_values(data);
    let wrapped = framed(data);
    for input in [data, wrapped.as_slice()] {
        codec(
            input,
            SessionCtx {
                four_octet_as: true,
            },
        );
        codec(
            input,
            SessionCtx {
                four_octet_as: false,
            },
        );
    }

    let (mut s, mut now) = established();
    let mut out = Vec::new();
    // Feed in uneven chunks so framing across reads is exercised too.
    for (i, chunk) in wrapped.chunks(97).chain(data.chunks(97)).enumerate() {
        s.handle(Input::Bytes(chunk), now, &mut out);
        if i % 3 == 2 {
            now += Duration::from_secs(3);
            s.handle(Input::Timer(TimerKind::Keepalive), now, &mut out);
        }
        out.clear();
    }
});
