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
    /// Connection keys the XDP program's flow map refused (full or out of
    /// memory): a NAT connection's replies then went to the kernel, an
    /// offloaded connection's packets stayed with the workers.
    pub reply_keys_refused: Counter,
    /// The kernel's counts for this worker's AF_XDP sockets.
    pub sockets: SocketCounters,
    drops: DropCounters,
}

/// One counter per [`DropReason`]; more of them than `Default` derives for.
struct DropCounters([Counter; DropReason::COUNT]);

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters(std::array::from_fn(|_| Counter::default()))
    }
}

/// What the kernel counted on a worker's AF_XDP sockets (XDP_STATISTICS),
/// summed over its sockets: frames the XDP program steered to the worker
/// that never reached it. The worker copies the kernel's totals in at
/// housekeeping.
#[derive(Default)]
pub struct SocketCounters {
    /// Dropped because the receive ring was full: the worker fell behind.
    pub rx_ring_full: Counter,
    /// Dropped for want of a free frame (fill ring empty) or for being
    /// larger than a UMEM frame.
    pub rx_dropped: Counter,
    /// Times the kernel found the fill ring empty.
    pub fill_ring_empty: Counter,
    /// Descriptors the kernel rejected, receive and transmit: an engine bug.
    pub invalid_descs: Counter,
}

/// Plain values of [`SocketCounters`], for a sum over workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketStats {
    pub rx_ring_full: u64,
    pub rx_dropped: u64,
    pub fill_ring_empty: u64,
    pub invalid_descs: u64,
}

impl SocketStats {
    /// Frames lost between the XDP program and the worker.
    pub fn lost(&self) -> u64 {
        self.rx_ring_full + self.rx_dropped
    }
}

impl std::ops::Add for SocketStats {
    type Output = SocketStats;
    fn add(self, o: SocketStats) -> SocketStats {
        SocketStats {
            rx_ring_full: self.rx_ring_full + o.rx_ring_full,
            rx_dropped: self.rx_dropped + o.rx_dropped,
            fill_ring_empty: self.fill_ring_empty + o.fill_ring_empty,
            invalid_descs: self.invalid_descs + o.invalid_descs,
        }
    }
}

impl SocketCounters {
    pub fn get(&self) -> SocketStats {
        SocketStats {
            rx_ring_full: self.rx_ring_full.get(),
            rx_dropped: self.rx_dropped.get(),
            fill_ring_empty: self.fill_ring_empty.get(),
            invalid_descs: self.invalid_descs.get(),
        }
    }

    /// Only the owning worker may call this.
    pub fn set(&self, s: SocketStats) {
        self.rx_ring_full.set(s.rx_ring_full);
        self.rx_dropped.set(s.rx_dropped);
        self.fill_ring_empty.set(s.fill_ring_empty);
        self.invalid_descs.set(s.invalid_descs);
    }
}

impl CoreCounters {
    pub fn drop(&self, reason: DropReason) -> &Counter {
        &self.drops.0[reason as usize]
    }

    /// Total of the reasons that are drops ([`DropReason::is_drop`]).
    pub fn drops_total(&self) -> u64 {
        DropReason::ALL
            .iter()
            .filter(|r| r.is_drop())
            .map(|r| self.drop(*r).get())
            .sum()
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

    /// NAT reply keys the XDP program refused, summed over all workers.
    pub fn reply_keys_refused(&self) -> u64 {
        self.cores().map(|c| c.reply_keys_refused.get()).sum()
    }

    /// The kernel's AF_XDP socket counts, summed over all workers.
    pub fn sockets(&self) -> SocketStats {
        self.cores()
            .map(|c| c.sockets.get())
            .fold(SocketStats::default(), |a, b| a + b)
    }
}
