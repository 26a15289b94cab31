//! A fake clock and a scripted peer for driving `Session` in tests.
#![allow(dead_code)] // each test binary uses a different subset of the helpers

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp::message::{Capability, Open, Update};
use bgp::session::LogLevel;
use bgp::{
    decode, encode, Family, Input, Message, Output, PeerConfig, Session, SessionCtx, State,
    TimerKind,
};

pub const OUR_ID: Ipv4Addr = Ipv4Addr::new(10, 20, 1, 2);
pub const PEER_ID: Ipv4Addr = Ipv4Addr::new(10, 20, 1, 1);

pub fn config(local_as: u32, remote_as: u32) -> PeerConfig {
    let mut c = PeerConfig::new("10.20.1.1", local_as, remote_as, OUR_ID);
    c.hold_time = 9;
    c
}

/// A session plus the state of the world around it: the time, the timers the
/// session armed, and everything it sent.
pub struct Harness {
    pub s: Session,
    pub start: Instant,
    pub now: Instant,
    pub timers: HashMap<TimerKind, Instant>,
    pub ctx: SessionCtx,
}

impl Harness {
    pub fn new(cfg: PeerConfig) -> Harness {
        let now = Instant::now();
        Harness {
            s: Session::new(cfg),
            start: now,
            now,
            timers: HashMap::new(),
            ctx: SessionCtx::default(),
        }
    }

    pub fn feed(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        self.s.handle(input, self.now, &mut out);
        for o in &out {
            if let Output::SetTimer(k, at) = o {
                match at {
                    Some(t) => self.timers.insert(*k, *t),
                    None => self.timers.remove(k),
                };
            }
            if let Output::Log(_, msg) = o {
                assert!(msg.contains("10.20.1.1"), "log names the peer: {msg}");
            }
        }
        out
    }

    pub fn bytes(&mut self, b: &[u8]) -> Vec<Output> {
        self.feed(Input::Bytes(b))
    }

    pub fn peer_sends(&mut self, m: &Message) -> Vec<Output> {
        let mut buf = Vec::new();
        encode(m, &self.ctx, &mut buf).unwrap();
        self.bytes(&buf)
    }

    /// Moves the clock to the earliest armed timer and fires it.
    pub fn fire_next(&mut self) -> (TimerKind, Vec<Output>) {
        let (k, at) = self
            .timers
            .iter()
            .min_by_key(|(_, t)| **t)
            .map(|(k, t)| (*k, *t))
            .expect("a timer is armed");
        self.now = self.now.max(at);
        self.timers.remove(&k);
        (k, self.feed(Input::Timer(k)))
    }

    pub fn fire(&mut self, k: TimerKind) -> Vec<Output> {
        let at = self
            .timers
            .remove(&k)
            .unwrap_or_else(|| panic!("{k:?} is not armed"));
        self.now = self.now.max(at);
        self.feed(Input::Timer(k))
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Runs the handshake against a well-behaved peer with the given OPEN.
    pub fn establish_with(&mut self, peer_open: Open) -> Vec<Output> {
        let mut out = self.feed(Input::Start);
        if self.s.state() == State::Connect {
            assert!(out.contains(&Output::Connect));
        }
        out.extend(self.feed(Input::TcpConnected));
        assert_eq!(self.s.state(), State::OpenSent);
        let four = peer_open.four_octet_as().is_some();
        out.extend(self.peer_sends(&Message::Open(peer_open)));
        if self.s.state() != State::OpenConfirm {
            return out;
        }
        self.ctx = SessionCtx {
            four_octet_as: four,
        };
        out.extend(self.peer_sends(&Message::Keepalive));
        out
    }
}

pub fn peer_open(asn: u32, hold: u16) -> Open {
    Open::new(
        asn,
        hold,
        PEER_ID,
        vec![
            Capability::multiprotocol(Family::Ipv4Unicast),
            Capability::multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
    )
}

/// Decodes every `Send` in `out`.
pub fn sent(out: &[Output], ctx: SessionCtx) -> Vec<Message> {
    let mut msgs = Vec::new();
    for o in out {
        if let Output::Send(b) = o {
            let mut at = 0;
            while at < b.len() {
                let (m, n) = decode(&b[at..], &ctx).unwrap().expect("whole message");
                msgs.push(m);
                at += n;
            }
        }
    }
    msgs
}

pub fn sent_updates(out: &[Output], ctx: SessionCtx) -> Vec<Update> {
    sent(out, ctx)
        .into_iter()
        .filter_map(|m| match m {
            Message::Update(u) => Some(*u),
            _ => None,
        })
        .collect()
}

pub fn sent_notification(out: &[Output]) -> Option<bgp::message::Notification> {
    sent(out, SessionCtx::default())
        .into_iter()
        .find_map(|m| match m {
            Message::Notification(n) => Some(n),
            _ => None,
        })
}

pub fn down_reason(out: &[Output]) -> Option<&str> {
    out.iter().find_map(|o| match o {
        Output::Down { reason } => Some(reason.as_str()),
        _ => None,
    })
}

pub fn logs(out: &[Output], level: LogLevel) -> Vec<&str> {
    out.iter()
        .filter_map(|o| match o {
            Output::Log(l, m) if *l == level => Some(m.as_str()),
            _ => None,
        })
        .collect()
}
