//! Backend selection for new connections: the LVS schedulers (locality-based
//! ones in `locality`), Maglev and source-IP persistence.
//!
//! Hashes here are fixed-key and portable so that every node of a site, and
//! every build, maps the same flow to the same backend.

mod locality;
mod maglev;
mod persist;

pub use locality::DEFAULT_EXPIRATION_MS;
use locality::{Locality, LocalityTable};
pub use maglev::MaglevTable;
pub use persist::Persistence;

use crate::flow::{Addr, FlowKey};
use crate::service::Service;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerKind {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sh,
    Dh,
    Sed,
    Nq,
    Lblc,
    Lblcr,
    Maglev,
}

const KINDS: [(SchedulerKind, &str); 11] = [
    (SchedulerKind::Rr, "rr"),
    (SchedulerKind::Wrr, "wrr"),
    (SchedulerKind::Lc, "lc"),
    (SchedulerKind::Wlc, "wlc"),
    (SchedulerKind::Sh, "sh"),
    (SchedulerKind::Dh, "dh"),
    (SchedulerKind::Sed, "sed"),
    (SchedulerKind::Nq, "nq"),
    (SchedulerKind::Lblc, "lblc"),
    (SchedulerKind::Lblcr, "lblcr"),
    (SchedulerKind::Maglev, "maglev"),
];

impl SchedulerKind {
    pub fn name(self) -> &'static str {
        KINDS
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, n)| n)
    }
}

impl fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SchedulerKind {
    type Err = SchedError;

    fn from_str(s: &str) -> Result<Self, SchedError> {
        KINDS
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(k, _)| *k)
            .ok_or_else(|| SchedError::UnknownScheduler(s.to_string()))
    }
}

#[derive(Clone, Copy, Debug)]
pub struct BackendWeight {
    pub id: u32,
    /// 0 drains the backend: existing connections stay, new ones go elsewhere.
    pub weight: u32,
    /// Healthy and enabled.
    pub available: bool,
}

impl BackendWeight {
    fn eligible(&self) -> bool {
        self.available && self.weight > 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    #[error(
        "expected one of: rr, wrr, lc, wlc, sh, dh, sed, nq, lblc, lblcr, maglev (got \"{0}\")"
    )]
    UnknownScheduler(String),
    #[error("Maglev table size {0} is not a prime number: use a prime such as 65537")]
    SizeNotPrime(u32),
    #[error(
        "Maglev table size {size} is smaller than the {backends} usable backends: use a prime at least 100 times the backend count, such as 65537"
    )]
    SizeTooSmall { size: u32, backends: usize },
    #[error(
        "Maglev table size {size} is larger than the supported maximum {max}: use a smaller prime such as 65537"
    )]
    SizeTooLarge { size: u32, max: u32 },
}

/// Default Maglev lookup table size (prime).
pub const MAGLEV_DEFAULT_SIZE: u32 = 65_537;
/// Largest accepted Maglev table size, so a typo cannot allocate gigabytes.
pub const MAGLEV_MAX_SIZE: u32 = 1 << 24;

/// Final avalanche step: every input bit affects every output bit.
pub(crate) fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

const SEED_FLOW: u64 = 0x7669_7064_666c_6f77;
const SEED_SRC: u64 = 0x7669_7064_7372_6320;
const SEED_DST: u64 = 0x7669_7064_6473_7420;
const SEED_MAGLEV_OFFSET: u64 = 0x7669_7064_6d6f_6666;
const SEED_MAGLEV_SKIP: u64 = 0x7669_7064_6d73_6b70;

/// Hash of a 5-tuple. Fixed keys, no per-process randomness: stable across
/// builds, runs and nodes.
pub fn flow_hash<A: Addr>(key: &FlowKey<A>) -> u64 {
    let addrs = A::pair_word(key.src_ip, key.dst_ip);
    let rest =
        (u64::from(key.src_port) << 32) | (u64::from(key.dst_port) << 16) | u64::from(key.proto);
    mix(mix(addrs ^ SEED_FLOW).wrapping_add(rest))
}

pub fn src_hash<A: Addr>(ip: A) -> u64 {
    mix(ip.word() ^ SEED_SRC)
}

pub fn dst_hash<A: Addr>(ip: A) -> u64 {
    mix(ip.word() ^ SEED_DST)
}

fn maglev_offset_hash(id: u32) -> u64 {
    mix(u64::from(id) ^ SEED_MAGLEV_OFFSET)
}

fn maglev_skip_hash(id: u32) -> u64 {
    mix(u64::from(id) ^ SEED_MAGLEV_SKIP)
}

/// Maps a hash onto [0, n) without modulo bias.
fn scale(hash: u64, n: u64) -> u64 {
    ((u128::from(hash) * u128::from(n)) >> 64) as u64
}

/// Scheduler state for one service on one worker.
pub struct SchedState {
    kind: SchedulerKind,
    /// rr/wrr: index of the last backend picked.
    last: Option<usize>,
    /// wrr: current weight threshold of the interleaving.
    current_weight: u32,
    /// lblc/lblcr: the destination table, allocated here so picks never do.
    locality: Option<LocalityTable>,
}

impl SchedState {
    /// `locality_expire_ms` applies to lblc and lblcr only: how long a
    /// destination's entry lives unused, and how long an lblcr server set
    /// stays unchanged before it loses its most loaded member.
    pub fn new(kind: SchedulerKind, locality_expire_ms: u64) -> Self {
        SchedState {
            locality: locality_table(kind, locality_expire_ms),
            ..SchedState::new_without_table(kind)
        }
    }

    fn new_without_table(kind: SchedulerKind) -> Self {
        SchedState {
            kind,
            last: None,
            current_weight: 0,
            locality: None,
        }
    }

    pub fn kind(&self) -> SchedulerKind {
        self.kind
    }

    /// States for the services of a new snapshot. A service that keeps its
    /// name, scheduler and expiration keeps its lblc/lblcr table: health
    /// changes publish snapshots all the time, and a cache farm must not
    /// lose its placement to each.
    pub fn carry_over(
        old: &[Service],
        new: &[Service],
        mut states: Vec<SchedState>,
    ) -> Vec<SchedState> {
        new.iter()
            .map(|s| {
                let mut state = SchedState::new_without_table(s.scheduler);
                let same = old.iter().position(|o| {
                    o.name == s.name
                        && o.scheduler == s.scheduler
                        && o.locality_expire_ms == s.locality_expire_ms
                });
                state.locality = same
                    .and_then(|i| states.get_mut(i))
                    .and_then(|prev| prev.locality.take())
                    .or_else(|| locality_table(s.scheduler, s.locality_expire_ms));
                state
            })
            .collect()
    }

    /// Chooses a backend for a new connection: an index into `backends`, or
    /// `None` when no backend is available with a non-zero weight.
    /// `conns(id)` gives (active, inactive) connections to a backend. rr and
    /// wrr remember a position, so keep the slice in the same order between
    /// picks (a changed list is handled, the interleaving just restarts).
    /// For Maglev, `maglev` must have been built from this same `backends`
    /// slice; without it (or if it names an ineligible backend) the pick
    /// falls back to a weighted hash of the 5-tuple. `now_ms` ages lblc and
    /// lblcr entries.
    pub fn pick<A: Addr>(
        &mut self,
        backends: &[BackendWeight],
        maglev: Option<&MaglevTable>,
        client: &FlowKey<A>,
        conns: &dyn Fn(u32) -> (u32, u32),
        now_ms: u64,
    ) -> Option<usize> {
        match self.kind {
            SchedulerKind::Rr => self.pick_rr(backends),
            SchedulerKind::Wrr => self.pick_wrr(backends),
            SchedulerKind::Lc => pick_min(backends, |b| {
                let (a, i) = conns(b.id);
                (u64::from(a) * 256 + u64::from(i), 1)
            }),
            SchedulerKind::Wlc => pick_min(backends, |b| {
                let (a, i) = conns(b.id);
                (u64::from(a) * 256 + u64::from(i), b.weight)
            }),
            SchedulerKind::Sed => pick_sed(backends, conns),
            SchedulerKind::Nq => backends
                .iter()
                .position(|b| b.eligible() && conns(b.id).0 == 0)
                .or_else(|| pick_sed(backends, conns)),
            SchedulerKind::Sh => weighted_hash(backends, src_hash(client.src_ip)),
            SchedulerKind::Dh => weighted_hash(backends, dst_hash(client.dst_ip)),
            SchedulerKind::Lblc | SchedulerKind::Lblcr => self
                .locality
                .as_mut()
                .and_then(|t| t.pick(backends, conns, client.dst_ip, now_ms)),
            SchedulerKind::Maglev => {
                let hash = flow_hash(client);
                maglev
                    .and_then(|m| m.lookup(hash))
                    .filter(|&i| backends.get(i).is_some_and(BackendWeight::eligible))
                    .or_else(|| weighted_hash(backends, hash))
            }
        }
    }

    fn pick_rr(&mut self, backends: &[BackendWeight]) -> Option<usize> {
        let n = backends.len();
        let start = self.last.map_or(0, |l| l + 1);
        let i = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| backends[i].eligible())?;
        self.last = Some(i);
        Some(i)
    }

    /// Interleaved weighted round robin: sweep the list repeatedly, lowering
    /// a threshold by gcd(weights) each pass, and pick backends whose weight
    /// reaches it. Over sum(weights) picks each backend gets exactly its
    /// weight, spread out rather than in bursts.
    fn pick_wrr(&mut self, backends: &[BackendWeight]) -> Option<usize> {
        let (mut max, mut gcd) = (0u32, 0u32);
        for b in backends.iter().filter(|b| b.eligible()) {
            max = max.max(b.weight);
            gcd = gcd_u32(gcd, b.weight);
        }
        if max == 0 {
            return None;
        }
        let n = backends.len();
        let mut i = self.last.filter(|&l| l < n);
        // Within two passes the backend of maximum weight qualifies.
        for _ in 0..=2 * n {
            let next = i.map_or(0, |l| (l + 1) % n);
            if next == 0 {
                self.current_weight = if self.current_weight > gcd && i.is_some() {
                    (self.current_weight - gcd).min(max)
                } else {
                    max
                };
            }
            i = Some(next);
            let b = &backends[next];
            if b.eligible() && b.weight >= self.current_weight {
                self.last = i;
                return i;
            }
        }
        None
    }
}

fn locality_table(kind: SchedulerKind, expire_ms: u64) -> Option<LocalityTable> {
    let mode = match kind {
        SchedulerKind::Lblc => Locality::Single,
        SchedulerKind::Lblcr => Locality::Replicated,
        _ => return None,
    };
    Some(LocalityTable::new(mode, expire_ms))
}

fn gcd_u32(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The eligible backend minimising load/weight, compared exactly by
/// cross-multiplying; ties go to the first in list order.
fn pick_min(
    backends: &[BackendWeight],
    cost: impl Fn(&BackendWeight) -> (u64, u32),
) -> Option<usize> {
    let mut best: Option<(usize, u64, u32)> = None;
    for (i, b) in backends.iter().enumerate().filter(|(_, b)| b.eligible()) {
        let (load, weight) = cost(b);
        let better = best.is_none_or(|(_, bl, bw)| {
            u128::from(load) * u128::from(bw) < u128::from(bl) * u128::from(weight)
        });
        if better {
            best = Some((i, load, weight));
        }
    }
    best.map(|(i, _, _)| i)
}

/// Shortest expected delay: (active + 1) / weight.
fn pick_sed(backends: &[BackendWeight], conns: &dyn Fn(u32) -> (u32, u32)) -> Option<usize> {
    pick_min(backends, |b| (u64::from(conns(b.id).0) + 1, b.weight))
}

/// Maps a hash onto the eligible backends in proportion to their weights.
/// Stable while the backend list is unchanged.
fn weighted_hash(backends: &[BackendWeight], hash: u64) -> Option<usize> {
    let total: u64 = backends
        .iter()
        .filter(|b| b.eligible())
        .map(|b| u64::from(b.weight))
        .sum();
    if total == 0 {
        return None;
    }
    let mut point = scale(hash, total);
    for (i, b) in backends.iter().enumerate().filter(|(_, b)| b.eligible()) {
        if point < u64::from(b.weight) {
            return Some(i);
        }
        point -= u64::from(b.weight);
    }
    None
}

#[cfg(test)]
mod tests;
