//! What the vipd under test reports through its control socket: flows in
//! its tables and where frames were dropped. Every control reply vipbench
//! reads is read here.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use ctlproto::{reply, Command};
use dataplane::counters::SocketStats;

use crate::run::Bench;

impl Bench<'_> {
    /// The control socket of the vipd under test.
    pub(crate) fn vipd_socket(&self) -> PathBuf {
        self.plan.work_dir.join("vipd.sock")
    }

    /// One control request to the vipd under test; `name` is the command
    /// as errors show it.
    fn vipd_request<R: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        cmd: Command,
        within: Duration,
    ) -> Result<R> {
        ctlproto::call(&self.vipd_socket(), &cmd, within)
            .map_err(|e| anyhow!("vipd's control socket, `{name}`: {e}"))
    }

    /// Connections in vipd's tables, summed over its workers and backends:
    /// `backends` answers from the tables' running counts, where `flows`
    /// would scan them and slow the worker the row measures.
    pub(crate) fn vipd_flows(&self) -> Result<u64> {
        let reply: reply::Backends =
            self.vipd_request("backends", Command::Backends {}, Duration::from_secs(10))?;
        Ok(reply
            .backends
            .iter()
            .map(|b| u64::from(b.active) + u64::from(b.inactive))
            .sum())
    }

    /// Frames vipd's XDP program forwarded itself and sent to the workers
    /// so far (summed over CPUs and interfaces), or None when the vipd
    /// under test does not say.
    pub(crate) fn vipd_xdp_split(&self) -> Option<XdpSplit> {
        let stats: reply::Stats = self
            .vipd_request("stats", Command::Stats {}, Duration::from_secs(2))
            .ok()?;
        match stats.xdp {
            reply::XdpStats::Counters { by_decision, .. } => {
                let n = |k: &str| by_decision.get(k).copied().unwrap_or(0);
                Some(XdpSplit {
                    fast: n("fast_forwarded"),
                    workers: n("redirected"),
                })
            }
            reply::XdpStats::Unavailable { .. } => None,
        }
    }

    /// vipd's drop counters (non-zero ones) and its XDP SYN admission
    /// drops, for the notes: where the frames a row lost went.
    pub(crate) fn vipd_drops(&self) -> Option<String> {
        let stats: reply::Stats = self
            .vipd_request("stats", Command::Stats {}, Duration::from_secs(2))
            .ok()?;
        let mut parts: Vec<String> = stats
            .drops
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        if let reply::XdpStats::Counters {
            by_decision,
            reply_keys_refused,
        } = &stats.xdp
        {
            let n = |k: &str| by_decision.get(k).copied().unwrap_or(0);
            if n("drop_syn_limit") > 0 {
                parts.push(format!("XDP SYN admission {}", n("drop_syn_limit")));
            }
            // Why packets of tracked flows reached a worker: their key was
            // never in the XDP map, or the program handed them back.
            if *reply_keys_refused > 0 {
                parts.push(format!("XDP flow keys refused {reply_keys_refused}"));
            }
            if n("redirected") > 0 {
                parts.push(format!(
                    "XDP sent {} frames to the workers",
                    n("redirected")
                ));
            }
            if n("fast_to_worker") > 0 {
                parts.push(format!(
                    "XDP fast path handed {} frames to the workers",
                    n("fast_to_worker")
                ));
            }
        }
        parts.extend(ring_losses(SocketStats {
            rx_ring_full: stats.afxdp.rx_ring_full,
            rx_dropped: stats.afxdp.rx_dropped,
            ..SocketStats::default()
        }));
        Some(format!(
            "vipd dropped: {}",
            if parts.is_empty() {
                "nothing".into()
            } else {
                parts.join(", ")
            }
        ))
    }
}

/// The kernel's AF_XDP losses before a worker, for a row's notes.
pub(crate) fn ring_losses(k: SocketStats) -> Vec<String> {
    [
        ("AF_XDP rx ring full", k.rx_ring_full),
        ("AF_XDP no free frame", k.rx_dropped),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{what} {n}"))
    .collect()
}

/// Where vipd's XDP program sent frames: forwarded itself, or to the
/// workers' sockets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct XdpSplit {
    pub(crate) fast: u64,
    pub(crate) workers: u64,
}

impl XdpSplit {
    /// What happened between `earlier` and this, for a row's notes.
    pub(crate) fn note_since(&self, earlier: &XdpSplit) -> String {
        let fast = self.fast.saturating_sub(earlier.fast);
        let workers = self.workers.saturating_sub(earlier.workers);
        format!(
            "in the measured run vipd's XDP program forwarded {fast} frames itself and sent {workers} to the workers ({:.1} %)",
            100.0 * workers as f64 / (fast + workers).max(1) as f64
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_of_a_run_is_the_difference_of_two_readings() {
        let before = XdpSplit {
            fast: 1000,
            workers: 500,
        };
        let after = XdpSplit {
            fast: 1090,
            workers: 510,
        };
        assert_eq!(
            after.note_since(&before),
            "in the measured run vipd's XDP program forwarded 90 frames itself and sent 10 to \
             the workers (10.0 %)"
        );
        // Counters that went back (a reset) give no underflow and no share
        // of nothing.
        assert!(before
            .note_since(&after)
            .ends_with("forwarded 0 frames itself and sent 0 to the workers (0.0 %)"));
    }
}
