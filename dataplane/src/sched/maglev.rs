//! Weighted Maglev consistent hashing (Eisenbud et al., NSDI 2016).
//!
//! Each backend walks its own permutation of the table, derived only from
//! its id, and backends take turns claiming the next free slot on it. To
//! make the table independent of the order the backends are listed in,
//! backends take their turns in ascending id order (ids must be unique).
//! Weights shape the turns: per round a backend earns its weight in credit
//! and claims one slot per `max weight` of credit, so its share of slots is
//! proportional to its weight.

use super::{maglev_offset_hash, maglev_skip_hash, BackendWeight, SchedError, MAGLEV_MAX_SIZE};

pub struct MaglevTable {
    /// Slot → index into the `backends` slice the table was built from.
    slots: Vec<u32>,
}

// Printing 65537 slots helps nobody; the size identifies the table.
impl std::fmt::Debug for MaglevTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaglevTable")
            .field("size", &self.slots.len())
            .finish()
    }
}

const EMPTY: u32 = u32::MAX;

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let n = u64::from(n);
    let mut d = 2u64;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

impl MaglevTable {
    /// Builds the lookup table. Unavailable and weight-0 backends get no
    /// slots; with none usable the table is empty and every lookup is `None`.
    pub fn build(backends: &[BackendWeight], size: u32) -> Result<MaglevTable, SchedError> {
        if size > MAGLEV_MAX_SIZE {
            return Err(SchedError::SizeTooLarge {
                size,
                max: MAGLEV_MAX_SIZE,
            });
        }
        if !is_prime(size) {
            return Err(SchedError::SizeNotPrime(size));
        }
        if (size as usize) < backends.len() {
            return Err(SchedError::SizeTooSmall {
                size,
                backends: backends.len(),
            });
        }
        let mut order: Vec<usize> = (0..backends.len())
            .filter(|&i| backends[i].eligible())
            .collect();
        if order.is_empty() {
            return Ok(MaglevTable { slots: Vec::new() });
        }
        order.sort_by_key(|&i| (backends[i].id, i));
        let m = u64::from(size);
        let max_weight = order
            .iter()
            .map(|&i| u64::from(backends[i].weight))
            .max()
            .unwrap_or(1);
        // (next position on the permutation, skip, credit)
        let mut walk: Vec<(u64, u64, u64)> = order
            .iter()
            .map(|&i| {
                let id = backends[i].id;
                let offset = maglev_offset_hash(id) % m;
                let skip = maglev_skip_hash(id) % (m - 1) + 1;
                (offset, skip, 0)
            })
            .collect();
        let mut slots = vec![EMPTY; size as usize];
        let mut filled = 0usize;
        while filled < slots.len() {
            for (k, &i) in order.iter().enumerate() {
                let w = &mut walk[k];
                w.2 += u64::from(backends[i].weight);
                while w.2 >= max_weight && filled < slots.len() {
                    w.2 -= max_weight;
                    // Skip is coprime with the prime size, so the walk
                    // visits every slot and finds a free one.
                    loop {
                        let c = w.0 as usize;
                        w.0 = (w.0 + w.1) % m;
                        if slots[c] == EMPTY {
                            slots[c] = i as u32;
                            filled += 1;
                            break;
                        }
                    }
                }
            }
        }
        Ok(MaglevTable { slots })
    }

    pub fn size(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The backend (index into the slice given to `build`) for a flow hash.
    pub fn lookup(&self, hash: u64) -> Option<usize> {
        let n = self.slots.len() as u64;
        if n == 0 {
            return None;
        }
        self.slots.get((hash % n) as usize).map(|&i| i as usize)
    }
}
