//! Claims on this node's addresses by other hosts: an ARP reply or
//! announcement from another MAC for an address this node owns. The
//! workers answer each at once with a gratuitous ARP and record it here;
//! the control plane drains the record and logs it.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::verdict::PortId;
use wire::MacAddr;

/// Distinct claims kept between two drains; more are counted, not kept.
const PENDING: usize = 64;

/// One host claiming one of our addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Claim {
    pub addr: Ipv4Addr,
    /// The claimant's MAC (the ARP sender hardware address).
    pub mac: MacAddr,
    /// Where it was seen.
    pub port: PortId,
}

/// Shared by the workers (writers, rarely) and the control plane (reader).
#[derive(Debug, Default)]
pub struct ArpClaims {
    seen: AtomicU64,
    pending: Mutex<Vec<Claim>>,
}

impl ArpClaims {
    /// Records a claim. A worker never waits here: if the control plane
    /// holds the lock, the claim is only counted (the claimant will repeat
    /// it, or it did no lasting harm: it was answered).
    pub fn record(&self, claim: Claim) {
        self.seen.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut p) = self.pending.try_lock() {
            if p.len() < PENDING && !p.contains(&claim) {
                p.push(claim);
            }
        }
    }

    /// Claims seen since the start.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// The distinct claims recorded since the last drain.
    pub fn drain(&self) -> Vec<Claim> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_counted_and_kept_once_until_drained() {
        let c = ArpClaims::default();
        let claim = Claim {
            addr: Ipv4Addr::new(10, 0, 0, 1),
            mac: MacAddr([2, 0, 0, 0, 0, 9]),
            port: 0,
        };
        c.record(claim);
        c.record(claim);
        assert_eq!(c.seen(), 2);
        assert_eq!(c.drain(), vec![claim]);
        assert!(c.drain().is_empty());
        for i in 0..2 * PENDING {
            c.record(Claim {
                port: (i % 256) as u8,
                ..claim
            });
        }
        assert_eq!(c.drain().len(), PENDING);
        assert_eq!(c.seen(), 2 + 2 * PENDING as u64);
    }
}
