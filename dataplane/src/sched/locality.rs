//! Locality-based least-connection, LVS's `lblc` and `lblcr`, for cache
//! farms: connections to one destination address keep going to the server
//! (lblc) or the set of servers (lblcr) that already holds its content, so
//! each cache stores a share of the sites instead of all of them.
//!
//! A destination's server is kept unless it is gone, drained or overloaded
//! (more active connections than its weight while another server has fewer
//! than half its weight); then weighted least-connection picks a new one.
//! lblc moves the destination to it; lblcr adds it to the destination's set,
//! and drops the set's most loaded member again once the set has not changed
//! for the expiration time, so a set shrinks back after a burst.
//!
//! The table is per worker and service, allocated up front: a hash-indexed,
//! 8-way set-associative array where an entry unused for the expiration time
//! is free, and a full bucket gives up its least recently used entry. Any
//! number of destination addresses therefore fits in a fixed amount of
//! memory, and no pick allocates.

use super::{dst_hash, pick_min, BackendWeight};
use crate::flow::Addr;

const WAYS: usize = 8;
/// Entries per service and worker (LVS's table starts at 1024 buckets).
const LOCALITY_CAPACITY: usize = 4096;
/// Largest lblcr server set; a fuller set replaces its most loaded member.
const SET_MAX: usize = 8;
/// LVS's default for `lblc_expiration` and `lblcr_expiration`: one day.
pub const DEFAULT_EXPIRATION_MS: u64 = 24 * 60 * 60 * 1000;

#[derive(Clone, Copy, Default)]
struct Entry {
    /// The destination whole ([`Addr::wide`]), of either family.
    dst: u128,
    used: bool,
    len: u8,
    last_use_ms: u64,
    /// When the server set last changed (lblcr shrinks it from here).
    last_mod_ms: u64,
    /// Backend ids; lblc uses the first only.
    members: [u32; SET_MAX],
}

impl Entry {
    fn members(&self) -> &[u32] {
        self.members
            .get(..usize::from(self.len))
            .unwrap_or_default()
    }

    fn live(&self, dst: u128, now_ms: u64, expire_ms: u64) -> bool {
        self.used && self.dst == dst && now_ms < self.last_use_ms.saturating_add(expire_ms)
    }

    fn remove(&mut self, id: u32) {
        let n = usize::from(self.len);
        if let Some(pos) = self.members().iter().position(|m| *m == id) {
            self.members.copy_within(pos + 1..n, pos);
            self.len -= 1;
        }
    }
}

/// Which variant a table runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Locality {
    /// One server per destination.
    Single,
    /// A set of servers per destination.
    Replicated,
}

/// The destination table of one lblc or lblcr service on one worker.
pub(super) struct LocalityTable {
    mode: Locality,
    expire_ms: u64,
    buckets: Vec<[Entry; WAYS]>,
}

/// Connection counts of a backend: (active, inactive).
type Conns<'a> = &'a dyn Fn(u32) -> (u32, u32);

impl LocalityTable {
    /// An empty table; entries unused for `expire_ms` (at least 1) are free,
    /// and an lblcr set unchanged for as long loses its most loaded member.
    pub(super) fn new(mode: Locality, expire_ms: u64) -> Self {
        LocalityTable {
            mode,
            expire_ms: expire_ms.max(1),
            buckets: vec![[Entry::default(); WAYS]; LOCALITY_CAPACITY / WAYS],
        }
    }

    /// Chooses a backend for a new connection to `dst`: an index into
    /// `backends`, or `None` when none is eligible.
    pub(super) fn pick<A: Addr>(
        &mut self,
        backends: &[BackendWeight],
        conns: Conns<'_>,
        dst_addr: A,
        now_ms: u64,
    ) -> Option<usize> {
        let (mode, expire_ms) = (self.mode, self.expire_ms);
        let mask = self.buckets.len() - 1;
        let bucket = self.buckets.get_mut(dst_hash(dst_addr) as usize & mask)?;
        let dst = dst_addr.wide();
        let Some(entry) = bucket.iter_mut().find(|e| e.live(dst, now_ms, expire_ms)) else {
            let i = wlc(backends, conns)?;
            let slot = free_or_oldest(bucket, now_ms, expire_ms);
            *slot = Entry {
                dst,
                used: true,
                len: 1,
                last_use_ms: now_ms,
                last_mod_ms: now_ms,
                members: [0; SET_MAX],
            };
            slot.members[0] = backends.get(i)?.id;
            return Some(i);
        };
        entry.last_use_ms = now_ms;
        if mode == Locality::Replicated
            && entry.len > 1
            && now_ms >= entry.last_mod_ms.saturating_add(expire_ms)
        {
            if let Some(id) = most_loaded(entry.members(), backends, conns) {
                entry.remove(id);
                entry.last_mod_ms = now_ms;
            }
        }
        let kept = match mode {
            Locality::Single => entry
                .members()
                .first()
                .and_then(|id| index_of(backends, *id)),
            Locality::Replicated => least_loaded(entry.members(), backends, conns),
        };
        if let Some(i) = kept.filter(|&i| !overloaded(backends, i, conns)) {
            return Some(i);
        }
        let i = wlc(backends, conns)?;
        let id = backends.get(i)?.id;
        match mode {
            Locality::Single => {
                entry.members[0] = id;
                entry.len = 1;
            }
            Locality::Replicated if !entry.members().contains(&id) => {
                if usize::from(entry.len) == SET_MAX {
                    if let Some(out) = most_loaded(entry.members(), backends, conns) {
                        entry.remove(out);
                    }
                }
                let n = usize::from(entry.len);
                if let Some(m) = entry.members.get_mut(n) {
                    *m = id;
                    entry.len += 1;
                }
                entry.last_mod_ms = now_ms;
            }
            Locality::Replicated => {}
        }
        Some(i)
    }
}

/// An unused or expired way, else the least recently used one.
fn free_or_oldest(bucket: &mut [Entry; WAYS], now_ms: u64, expire_ms: u64) -> &mut Entry {
    let pos = bucket
        .iter()
        .position(|e| !e.used || now_ms >= e.last_use_ms.saturating_add(expire_ms))
        .unwrap_or_else(|| {
            (0..WAYS)
                .min_by_key(|&w| bucket.get(w).map_or(0, |e| e.last_use_ms))
                .unwrap_or(0)
        });
    &mut bucket[pos]
}

fn index_of(backends: &[BackendWeight], id: u32) -> Option<usize> {
    backends
        .iter()
        .position(|b| b.id == id)
        .filter(|&i| backends.get(i).is_some_and(BackendWeight::eligible))
}

/// LVS's connection overhead: an active connection costs 256 inactive ones.
fn overhead(conns: Conns<'_>, id: u32) -> u64 {
    let (active, inactive) = conns(id);
    u64::from(active) * 256 + u64::from(inactive)
}

fn wlc(backends: &[BackendWeight], conns: Conns<'_>) -> Option<usize> {
    pick_min(backends, |b| (overhead(conns, b.id), b.weight))
}

/// The eligible member with the least overhead per weight.
fn least_loaded(members: &[u32], backends: &[BackendWeight], conns: Conns<'_>) -> Option<usize> {
    let mut best: Option<(usize, u64, u32)> = None;
    for i in members.iter().filter_map(|id| index_of(backends, *id)) {
        let b = backends.get(i)?;
        let load = overhead(conns, b.id);
        let better = best.is_none_or(|(_, bl, bw)| {
            u128::from(load) * u128::from(bw) < u128::from(bl) * u128::from(b.weight)
        });
        if better {
            best = Some((i, load, b.weight));
        }
    }
    best.map(|(i, _, _)| i)
}

/// The member to drop first: one no longer eligible, else the one with the
/// most overhead per weight.
fn most_loaded(members: &[u32], backends: &[BackendWeight], conns: Conns<'_>) -> Option<u32> {
    if let Some(gone) = members.iter().find(|id| index_of(backends, **id).is_none()) {
        return Some(*gone);
    }
    let mut worst: Option<(u32, u64, u32)> = None;
    for id in members {
        let b = backends.get(index_of(backends, *id)?)?;
        let load = overhead(conns, b.id);
        let worse = worst.is_none_or(|(_, wl, ww)| {
            u128::from(load) * u128::from(ww) > u128::from(wl) * u128::from(b.weight)
        });
        if worse {
            worst = Some((*id, load, b.weight));
        }
    }
    worst.map(|(id, _, _)| id)
}

/// LVS's test: more active connections than its weight, while some server
/// has fewer than half its weight.
fn overloaded(backends: &[BackendWeight], i: usize, conns: Conns<'_>) -> bool {
    let Some(b) = backends.get(i) else {
        return true;
    };
    u64::from(conns(b.id).0) > u64::from(b.weight)
        && backends
            .iter()
            .filter(|d| d.eligible())
            .any(|d| u64::from(conns(d.id).0) * 2 < u64::from(d.weight))
}

#[cfg(test)]
#[path = "locality_tests.rs"]
mod tests;
