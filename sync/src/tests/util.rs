//! Shared test helpers: configs, clocks, a xorshift generator, valid
//! records, hand-built datagrams and a snapshot of a session's state.

use std::net::{IpAddr, Ipv4Addr};

use crate::auth::Key;
use crate::message::{self, Body, Header, MessageType};
use crate::{
    AnyRecord, Config, ConnRecord, ConnRecord6, Dest, Now, Output, PeerStatus, Record, RecordOp,
    Session, State, Stats, WireAddr,
};

pub(super) const KEY: &[u8] = b"vipd test site key, 32 bytes ok!";
pub(super) const EPOCH: u64 = 1_700_000_000_000_000;

pub(super) fn addr(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
}

/// Monotonic `ms`; the wall clock moves with it.
pub(super) fn at(ms: u64) -> Now {
    Now {
        ms,
        unix_us: EPOCH + ms * 1000,
    }
}

/// Node `node` in unicast mode with the peers 10.0.0.<n>.
pub(super) fn unicast(node: u16, peers: &[u8]) -> Config {
    Config::new(
        node,
        KEY,
        Some(peers.iter().map(|&n| addr(n)).collect()),
        EPOCH + u64::from(node),
    )
}

pub(super) fn multicast(node: u16) -> Config {
    Config::new(node, KEY, None, EPOCH + u64::from(node))
}

pub(super) fn session(cfg: Config) -> Session {
    Session::new(cfg, at(0)).expect("valid config")
}

/// xorshift64: deterministic pseudo-random input without a dependency.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(super) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A valid IPv4 record with every field random.
    pub(super) fn record(&mut self) -> ConnRecord {
        self.record_of()
    }

    /// A valid IPv6 record with every field random.
    pub(super) fn record6(&mut self) -> ConnRecord6 {
        self.record_of()
    }

    /// A valid record of either family with every field random.
    pub(super) fn any_record(&mut self) -> AnyRecord {
        if self.below(2) == 0 {
            self.record().into()
        } else {
            self.record6().into()
        }
    }

    pub(super) fn record_of<A: RandomAddr>(&mut self) -> Record<A> {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.next().to_be_bytes()[..6]);
        Record {
            op: if self.below(2) == 0 {
                RecordOp::Upsert
            } else {
                RecordOp::Delete
            },
            proto: if self.below(2) == 0 { 6 } else { 17 },
            state: self.next() as u8,
            client_ip: A::random(self),
            client_port: self.next() as u16,
            vip: A::random(self),
            vip_port: self.next() as u16,
            backend_ip: A::random(self),
            backend_port: self.next() as u16,
            snat_ip: A::random(self),
            snat_port: self.next() as u16,
            client_mac: mac,
            origin: self.next() as u16,
            timeout_ms: self.next() as u32,
        }
    }
}

/// Addresses of either family from the generator.
pub(super) trait RandomAddr: WireAddr {
    fn random(rng: &mut Rng) -> Self;
}

impl RandomAddr for u32 {
    fn random(rng: &mut Rng) -> u32 {
        rng.next() as u32
    }
}

impl RandomAddr for [u8; 16] {
    fn random(rng: &mut Rng) -> [u8; 16] {
        let mut a = [0; 16];
        a[..8].copy_from_slice(&rng.next().to_be_bytes());
        a[8..].copy_from_slice(&rng.next().to_be_bytes());
        a
    }
}

/// A record numbered `n` (distinct client ports).
pub(super) fn rec(n: u16) -> ConnRecord {
    ConnRecord {
        proto: 6,
        state: 1,
        client_ip: 0xc633_6401,
        client_port: n,
        vip: 0xcb00_7101,
        vip_port: 443,
        backend_ip: 0x0a01_0001,
        backend_port: 8443,
        client_mac: [2, 0, 0, 0, 0, 1],
        origin: 2,
        timeout_ms: 60_000,
        ..ConnRecord::default()
    }
}

/// The IPv6 twin of [`rec`]`(n)`: the same connection numbering, IPv6
/// addresses (2001:db8::/32) of the same hosts.
pub(super) fn rec6(n: u16) -> ConnRecord6 {
    let v6 = |v4: u32| std::net::Ipv6Addr::from_bits(0x2001_0db8 << 96 | u128::from(v4)).octets();
    let r = rec(n);
    ConnRecord6 {
        op: r.op,
        proto: r.proto,
        state: r.state,
        client_ip: v6(r.client_ip),
        client_port: r.client_port,
        vip: v6(r.vip),
        vip_port: r.vip_port,
        backend_ip: v6(r.backend_ip),
        backend_port: r.backend_port,
        snat_ip: [0; 16],
        snat_port: r.snat_port,
        client_mac: r.client_mac,
        origin: r.origin,
        timeout_ms: r.timeout_ms,
    }
}

/// A datagram signed with `key`, as node `sender` would send it.
#[allow(clippy::too_many_arguments)]
pub(super) fn datagram_with(
    key: &[u8],
    msg_type: MessageType,
    sender: u16,
    to: u16,
    epoch: u64,
    seq: u64,
    sent_unix_us: u64,
    body: Body<'_>,
) -> Vec<u8> {
    let header = Header {
        msg_type,
        sender,
        to,
        epoch,
        seq,
        sent_unix_us,
    };
    message::encode(&header, body, &Key::new(key).expect("test key"))
}

/// A heartbeat from `sender` at (`epoch`, `seq`), stamped at [`at`]`(0)`.
pub(super) fn heartbeat(sender: u16, epoch: u64, seq: u64) -> Vec<u8> {
    datagram_with(
        KEY,
        MessageType::Heartbeat,
        sender,
        0,
        epoch,
        seq,
        EPOCH,
        Body::Empty,
    )
}

pub(super) fn batch(sender: u16, epoch: u64, seq: u64, records: &[ConnRecord]) -> Vec<u8> {
    datagram_with(
        KEY,
        MessageType::Batch,
        sender,
        0,
        epoch,
        seq,
        EPOCH,
        Body::Records(records),
    )
}

pub(super) fn batch6(sender: u16, epoch: u64, seq: u64, records: &[ConnRecord6]) -> Vec<u8> {
    datagram_with(
        KEY,
        MessageType::Batch6,
        sender,
        0,
        epoch,
        seq,
        EPOCH,
        Body::Records6(records),
    )
}

pub(super) fn feed(s: &mut Session, from: IpAddr, bytes: &[u8], now: Now) -> Vec<Output> {
    let mut out = Vec::new();
    s.handle(crate::Input::Datagram { from, bytes }, now, &mut out);
    out
}

pub(super) fn sends(out: &[Output]) -> Vec<(Dest, &[u8])> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, bytes } => Some((*to, &bytes[..])),
            _ => None,
        })
        .collect()
}

pub(super) fn applied(out: &[Output]) -> Vec<AnyRecord> {
    out.iter()
        .filter_map(|o| match o {
            Output::Apply { record, .. } => Some(*record),
            _ => None,
        })
        .collect()
}

/// Everything a rejected datagram must leave alone (the reject counters
/// aside).
#[derive(Debug, PartialEq)]
pub(super) struct Snapshot {
    peers: Vec<PeerStatus>,
    state: State,
    pending: usize,
    stats: Stats,
}

pub(super) fn snapshot(s: &Session) -> Snapshot {
    let mut stats = s.stats().clone();
    stats.rejected = Default::default();
    Snapshot {
        peers: s.peers().cloned().collect(),
        state: s.state(),
        pending: s.pending(),
        stats,
    }
}
