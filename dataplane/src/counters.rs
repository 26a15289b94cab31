//! Per-core counters.
//!
//! Each worker owns one cache-padded block and is its only writer, so updates
//! are plain relaxed load+store (no locked instructions); readers (metrics,
//! `vipctl stats`) sum the blocks at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use crate::verdict::DropReason;

/// Counters of one worker.
#[derive(Default)]
pub struct CoreCounters {
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
    /// Frames handed to another worker's queue (flow owned elsewhere).
    pub handoff_out: Counter,
    /// Frames received from another worker's queue.
    pub handoff_in: Counter,
    /// Milliseconds (engine clock) at the worker's last loop iteration; the
    /// control plane reads it to decide whether the dataplane is alive.
    pub heartbeat_ms: Counter,
    drops: [Counter; DropReason::COUNT],
}

impl CoreCounters {
    pub fn drop(&self, reason: DropReason) -> &Counter {
        &self.drops[reason as usize]
    }

    /// Total of all drop reasons.
    pub fn drops_total(&self) -> u64 {
        self.drops.iter().map(Counter::get).sum()
    }
}

/// A single-writer counter.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The counters of every worker, indexed by worker number.
pub struct Counters {
    cores: Box<[CachePadded<CoreCounters>]>,
}

impl Counters {
    pub fn new(workers: usize) -> Self {
        Counters {
            cores: (0..workers)
                .map(|_| CachePadded::new(CoreCounters::default()))
                .collect(),
        }
    }

    pub fn core(&self, worker: usize) -> &CoreCounters {
        &self.cores[worker]
    }

    pub fn cores(&self) -> impl Iterator<Item = &CoreCounters> {
        self.cores.iter().map(|c| &**c)
    }

    /// Sum of one drop reason over all workers.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.cores().map(|c| c.drop(reason).get()).sum()
    }
}
