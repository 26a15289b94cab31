//! Cost of the pure packet path per packet, for a new connection and for an
//! established one, as the flow table grows from 1k to 10M connections.
//!
//! `cargo bench -p vipd-dataplane --bench path` (add `-- quick` to stop at 1M).
//! Frames are copied from templates before each call because the path
//! rewrites them in place; the copy is timed separately and subtracted.
//! Time is the thread's CPU time, so other load on a shared machine slows
//! the figures only through the caches it shares, not by descheduling.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::net::Ipv4Addr;

use cpu_time::ThreadTime;
use dataplane::flow::Timeouts;
use dataplane::path::{Worker, WorkerConfig};
use dataplane::sched::SchedulerKind;
use dataplane::service::ForwardMode;
use dataplane::verdict::Verdict;
use support::*;

const TEMPLATES: usize = 4096;
const MEASURED: usize = 2_000_000;
const NEW_FLOWS: usize = 200_000;

/// Client address and port of connection `i`: distinct for every i < 2^32.
fn client(i: usize) -> (Ipv4Addr, u16) {
    let port = 1024 + (i % 60_000) as u16;
    let host = (i / 60_000) as u32;
    (Ipv4Addr::from_bits(0x0a80_0000 | host), port)
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Nanoseconds per call of `f` over `frames` templates, minus the copy cost.
fn per_packet(frames: &[Vec<u8>], count: usize, mut f: impl FnMut(&mut [u8]) -> Verdict) -> f64 {
    let mut buf = [0u8; 128];
    let start = ThreadTime::now();
    for i in 0..count {
        let t = &frames[i % frames.len()];
        buf[..t.len()].copy_from_slice(t);
        black_box(f(&mut buf[..t.len()]));
    }
    let total = start.elapsed().as_nanos() as f64;
    let start = ThreadTime::now();
    for i in 0..count {
        let t = &frames[i % frames.len()];
        buf[..t.len()].copy_from_slice(t);
        black_box(&mut buf);
    }
    let copy = start.elapsed().as_nanos() as f64;
    (total - copy).max(0.0) / count as f64
}

fn run(flows: usize) -> (f64, f64, usize) {
    let snap = snapshot(ForwardMode::Nat, SchedulerKind::Wrr, &[3, 2, 1]);
    let cfg = WorkerConfig {
        flow_capacity: flows + NEW_FLOWS + flows / 4,
        persistence_capacity: 1024,
        timeouts: Timeouts::default(),
        steer_replies: true,
        sync_origin: None,
    };
    let mut w = Worker::new(0, 1, cfg, published(snap));
    // Reply keys are taken as the engine takes them, once per frame here.
    let mut steer = Vec::new();
    let mut process = |w: &mut Worker, f: &mut [u8]| {
        let v = w.process(f, 0);
        w.take_steer_changes(&mut steer);
        steer.clear();
        v
    };
    w.begin_batch(1_000);
    for i in 0..flows {
        let (ip, port) = client(i);
        let mut f = client_tcp_from(ip, port, "S");
        assert_eq!(process(&mut w, &mut f), Verdict::Tx(1), "filling the table");
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let established: Vec<Vec<u8>> = (0..TEMPLATES)
        .map(|_| {
            let (ip, port) = client(xorshift(&mut seed) as usize % flows);
            client_tcp_from(ip, port, "A")
        })
        .collect();
    let est = per_packet(&established, MEASURED, |f| process(&mut w, f));
    let fresh: Vec<Vec<u8>> = (0..NEW_FLOWS)
        .map(|i| {
            let (ip, port) = client(flows + i);
            client_tcp_from(ip, port, "S")
        })
        .collect();
    let new = per_packet(&fresh, NEW_FLOWS, |f| process(&mut w, f));
    (new, est, w.flows().memory_bytes())
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let sizes: &[usize] = if quick {
        &[1_000, 100_000, 1_000_000]
    } else {
        &[1_000, 100_000, 1_000_000, 10_000_000]
    };
    println!(
        "{:>10} {:>14} {:>18} {:>12}",
        "flows", "new ns/pkt", "established ns/pkt", "table MiB"
    );
    let mut base = None;
    for &n in sizes {
        let (new, est, bytes) = run(n);
        let b = *base.get_or_insert(est);
        println!(
            "{n:>10} {new:>14.1} {est:>18.1} {:>12.1}   (established ×{:.2} of 1k)",
            bytes as f64 / 1048576.0,
            est / b
        );
    }
}
