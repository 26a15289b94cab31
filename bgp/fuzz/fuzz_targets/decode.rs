//! Arbitrary bytes into the codec (both AS widths) and into an Established
//! session. Nothing may panic; whatever decodes cleanly on a 4-octet session must
//! re-encode to a message that decodes to the same value.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp::message::{Capability, Open};
use bgp::{
    decode, encode, Family, Input, Message, PeerConfig, Session, SessionCtx, State, TimerKind,
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

fn established() -> (Session, Instant) {
    let now = Instant::now();
    let cfg = PeerConfig::new("fuzz-peer", 65001, 65000, Ipv4Addr::new(10, 0, 0, 2));
    let mut s = Session::new(cfg);
    let mut out = Vec::new();
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

/// Wraps `body` in a valid header so mutations reach the message parsers instead
/// of dying at the marker check. The first input byte picks the message type.
fn framed(data: &[u8]) -> Vec<u8> {
    let Some((&t, body)) = data.split_first() else {
        return Vec::new();
    };
    let body = &body[..body.len().min(4096 - 19)];
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(t % 6);
    m.extend_from_slice(body);
    m
}

fuzz_target!(|data: &[u8]| {
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
