//! Arbitrary frames through the whole packet path of one worker, statefully:
//! the input is split into frames that all go through the same flow table,
//! against a snapshot with a NAT, a full-NAT or a DR service, IPv4 or IPv6.
//! Nothing may panic, a transmitted frame keeps its length, an IPv4 header
//! that was valid on the way in is valid on the way out, an ICMP answer is
//! a valid IPv4 or IPv6 packet, and the XDP map changes the worker logs
//! (steered and offloaded keys, of both families) replay consistently. Chunks
//! flagged as sync records (IPv4 or IPv6) are applied as a peer's
//! connections, so learned connections meet the same frames, and every
//! record the worker emits round-trips through the wire form.

#![no_main]

#[path = "../../tests/support/mod.rs"]
mod support;

use connsync::{AddrFamily, AnyRecord, Record, WireAddr};
use dataplane::flow::{FastSeen, FlowKey, Ip6, SteerAction, Timeouts};
use std::collections::HashMap;
use dataplane::path::{Worker, WorkerConfig};
use dataplane::sched::SchedulerKind;
use std::sync::{Arc, OnceLock};

use dataplane::service::{ForwardMode, Published};
use dataplane::verdict::Verdict;
use wire::{ethertype, EthernetFrame, Ipv4Packet, Ipv6Packet};
use libfuzzer_sys::fuzz_target;

fn ipv4_valid(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else { return false };
    if eth.ethertype() != ethertype::IPV4 {
        return false;
    }
    Ipv4Packet::new_checked(eth.payload()).is_ok_and(|ip| ip.verify_checksum())
}

fn ipv6_answer(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else { return false };
    eth.ethertype() == ethertype::IPV6
        && Ipv6Packet::new_checked(eth.payload()).is_ok_and(|ip| ip.upper_layer().is_ok())
}

/// One published snapshot per forwarding mode and family, built once: a
/// Maglev table per input would dominate the run time.
fn published(mode: u8) -> Arc<Published> {
    static ALL: OnceLock<[Arc<Published>; 12]> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        std::array::from_fn(|i| {
            let m = [ForwardMode::Nat, ForwardMode::FullNat, ForwardMode::Dr][i % 3];
            let mut snap = if i >= 6 {
                support::v6::snapshot6(m, SchedulerKind::Maglev, &[1, 2, 3])
            } else {
                support::snapshot(m, SchedulerKind::Maglev, &[1, 2, 3])
            };
            // Small enough that longer inputs meet the fragmentation-needed path.
            snap.ports[1].mtu = 300;
            snap.fast_path = (3..6).contains(&i) || i >= 9;
            support::published(snap)
        })
    });
    all[usize::from(mode % 12)].clone()
}

/// The XDP map of a family as the logged changes build it.
type XdpMap<A = u32> = HashMap<(u8, FlowKey<A>), SteerAction<A>>;

/// The program saw every forwarded key's packets, of both families, a
/// moment ago.
struct Seen<'a>(&'a XdpMap, &'a XdpMap<Ip6>, u64);

fn seen_in<A: std::hash::Hash + Eq + Copy>(map: &XdpMap<A>, port: u8, key: &FlowKey<A>, at: u64) -> Option<u64> {
    matches!(map.get(&(port, *key)), Some(SteerAction::Forward { .. })).then_some(at)
}

impl FastSeen for Seen<'_> {
    fn last_seen_ms(&mut self, port: u8, key: &FlowKey) -> Option<u64> {
        seen_in(self.0, port, key, self.2)
    }
}

impl FastSeen<Ip6> for Seen<'_> {
    fn last_seen_ms(&mut self, port: u8, key: &FlowKey<Ip6>) -> Option<u64> {
        seen_in(self.1, port, key, self.2)
    }
}

/// Whether a chunk is a sync record rather than a frame, and of which
/// family.
fn record_flag(port_byte: u8) -> Option<AddrFamily> {
    (port_byte & 0x80 != 0).then(|| {
        if port_byte & 0x40 != 0 {
            AddrFamily::V6
        } else {
            AddrFamily::V4
        }
    })
}

/// A record the worker emitted encodes and decodes back to itself.
fn round_trips<A: WireAddr>(r: &Record<A>) {
    let mut buf = vec![0u8; Record::<A>::LEN];
    r.encode_into(&mut buf).expect("a worker's record encodes");
    assert_eq!(Record::<A>::decode(&buf).as_ref(), Ok(r), "a worker's record round-trips");
}

fuzz_target!(|data: &[u8]| {
    let cfg = WorkerConfig {
        flow_capacity: 64,
        persistence_capacity: 64,
        timeouts: Timeouts::default(),
        steer_replies: true,
        sync_origin: data.get(1).filter(|b| *b & 4 != 0).map(|_| 2),
    };
    let workers = 1 + u16::from(data.get(1).copied().unwrap_or(0) % 2);
    let mut w = Worker::new(0, workers, cfg, published(data.first().copied().unwrap_or(0)));
    w.begin_batch(1_000);
    // Frames are length-prefixed: one byte of length (×2), one byte of
    // ingress port (bit 7 set: the chunk is a peer's sync record, IPv6
    // with bit 6 set).
    let mut rest = data.get(2..).unwrap_or_default();
    let mut now = 1_000;
    let mut steer = Vec::new();
    let mut steer6 = Vec::new();
    let mut map = XdpMap::new();
    let mut map6 = XdpMap::<Ip6>::new();
    // Every other input, the program keeps seeing offloaded connections.
    let traffic = data.get(1).is_some_and(|b| b & 2 != 0);
    while rest.len() >= 2 {
        let len = usize::from(rest[0]) * 2;
        let port_byte = rest[1];
        let port = port_byte % 2;
        let body = &rest[2..];
        let take = len.min(body.len());
        let mut frame = body[..take].to_vec();
        rest = &body[take..];
        if let Some(family) = record_flag(port_byte) {
            if let Ok(r) = AnyRecord::decode(family, &frame) {
                let _ = w.sync_apply(&r, now);
            }
            continue;
        }
        let valid_in = ipv4_valid(&frame);
        let before = frame.len();
        w.prefetch(&frame);
        match w.process(&mut frame, port) {
            Verdict::Tx(_) => {
                assert_eq!(frame.len(), before);
                if valid_in {
                    assert!(ipv4_valid(&frame), "a valid IPv4 header came out invalid");
                }
            }
            Verdict::Answer { len, .. } => {
                let len = usize::from(len);
                assert!(len <= before, "an answer of {len} bytes from a {before}-byte frame");
                let answer = &frame[..len];
                assert!(ipv4_valid(answer) || ipv6_answer(answer), "an ICMP answer that is no valid IP packet");
            }
            _ => {}
        }
        now += 500;
        w.begin_batch(now);
        if now % 5_000 == 0 {
            let seen_at = if traffic { now } else { 0 };
            let (snapshot, snapshot6) = (map.clone(), map6.clone());
            w.housekeeping(now, &mut Seen(&snapshot, &snapshot6, seen_at));
        }
        if let Some(link) = w.sync_link() {
            while let Some(r) = link.take() {
                match r {
                    AnyRecord::V4(r) => round_trips(&r),
                    AnyRecord::V6(r) => round_trips(&r),
                }
            }
        }
        steer.clear();
        w.take_steer_changes(&mut steer);
        // The XDP program's map must follow the table exactly: a key is
        // withdrawn only while present, and only live connections have keys.
        for c in &steer {
            let k = (c.port, c.key);
            match c.action {
                SteerAction::Remove => {
                    assert!(map.remove(&k).is_some(), "key withdrawn while absent: {c:?}");
                }
                action => {
                    map.insert(k, action);
                }
            }
        }
        steer6.clear();
        w.take_steer_changes6(&mut steer6);
        for c in &steer6 {
            let k = (c.port, c.key);
            match c.action {
                SteerAction::Remove => {
                    assert!(map6.remove(&k).is_some(), "IPv6 key withdrawn while absent: {c:?}");
                }
                action => {
                    map6.insert(k, action);
                }
            }
        }
        assert!(map6.len() <= 2 * w.flows6().len(), "{} IPv6 keys for {} connections", map6.len(), w.flows6().len());
        assert!(
            map.len() <= 2 * w.flows().len(),
            "{} XDP keys for {} connections",
            map.len(),
            w.flows().len()
        );
    }
});
