//! What a session knows about each peer: liveness, epoch and replay
//! window, the dump it sends us, and the lag of its messages.

use std::net::IpAddr;

use crate::replay::ReplayWindow;

/// Peers remembered at most; sites have a handful of nodes. A new node id
/// takes the slot of the longest-silent down peer once this is reached.
pub const MAX_PEERS: usize = 64;
/// Lag samples kept per peer for the percentiles.
pub const LAG_SAMPLES: usize = 128;

/// The dump a peer sends us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpState {
    /// We have not asked this peer (it appeared after our hold) and no
    /// dump came from it.
    NotAsked,
    /// Asked; `received` records have arrived so far.
    InProgress { received: u64 },
    /// Its DumpEnd arrived: `received` records applied of the `announced`
    /// total (fewer when datagrams were lost).
    Done { received: u64, announced: u32 },
}

impl DumpState {
    pub(crate) fn add(&mut self, n: u64) {
        match self {
            DumpState::NotAsked => *self = DumpState::InProgress { received: n },
            DumpState::InProgress { received } => *received = received.saturating_add(n),
            DumpState::Done { .. } => {}
        }
    }

    pub(crate) fn finish(&mut self, announced: u32) {
        let received = match *self {
            DumpState::InProgress { received } => received,
            DumpState::NotAsked | DumpState::Done { .. } => 0,
        };
        *self = DumpState::Done {
            received,
            announced,
        };
    }

    pub fn is_done(&self) -> bool {
        matches!(self, DumpState::Done { .. })
    }
}

/// Recent lags in a fixed ring, so percentiles cost no allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LagRing {
    samples: [u64; LAG_SAMPLES],
    len: usize,
    next: usize,
}

impl LagRing {
    fn new() -> LagRing {
        LagRing {
            samples: [0; LAG_SAMPLES],
            len: 0,
            next: 0,
        }
    }

    fn push(&mut self, lag_us: u64) {
        self.samples[self.next] = lag_us;
        self.next = (self.next + 1) % LAG_SAMPLES;
        self.len = (self.len + 1).min(LAG_SAMPLES);
    }

    /// Nearest-rank percentile `p` (0..=100) of the samples held.
    fn percentile(&self, p: usize) -> Option<u64> {
        let mut sorted = self.samples;
        let held = sorted.get_mut(..self.len)?;
        held.sort_unstable();
        let rank = (self.len * p.min(100)).div_ceil(100).max(1);
        held.get(rank - 1).copied()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    pub node: u16,
    /// Where its last accepted datagram came from.
    pub addr: IpAddr,
    pub up: bool,
    pub last_heard_ms: u64,
    pub epoch: u64,
    /// New epochs seen after the first.
    pub restarts: u64,
    /// Records applied from it, batches and dumps.
    pub records_received: u64,
    /// Our wall clock minus its send stamp, for its last message (0 when
    /// its clock is ahead of ours).
    pub last_lag_us: u64,
    pub dump: DumpState,
    lag: LagRing,
    pub(crate) window: ReplayWindow,
    /// The requester epoch of the last dump request we passed on, so a
    /// repeated request is served once.
    pub(crate) served_epoch: Option<u64>,
    /// Records sent so far in the dump we are serving to it.
    pub(crate) serving: u64,
}

impl PeerStatus {
    pub(crate) fn new(node: u16, addr: IpAddr, epoch: u64, dump: DumpState) -> PeerStatus {
        PeerStatus {
            node,
            addr,
            up: false,
            last_heard_ms: 0,
            epoch,
            restarts: 0,
            records_received: 0,
            last_lag_us: 0,
            dump,
            lag: LagRing::new(),
            window: ReplayWindow::new(epoch),
            served_epoch: None,
            serving: 0,
        }
    }

    pub(crate) fn record_lag(&mut self, lag_us: u64) {
        self.last_lag_us = lag_us;
        self.lag.push(lag_us);
    }

    /// Median lag over the last [`LAG_SAMPLES`] messages.
    pub fn lag_p50_us(&self) -> Option<u64> {
        self.lag.percentile(50)
    }

    pub fn lag_p99_us(&self) -> Option<u64> {
        self.lag.percentile(99)
    }
}
