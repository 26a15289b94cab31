//! What the vipd under test reports through its control socket: flows in
//! its tables and where frames were dropped. Every control reply vipbench
//! reads is read here.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use dataplane::counters::SocketStats;

use crate::run::Bench;

impl Bench<'_> {
    /// The control socket of the vipd under test.
    pub(crate) fn vipd_socket(&self) -> PathBuf {
        self.plan.work_dir.join("vipd.sock")
    }

    /// One control request to the vipd under test.
    pub(crate) fn vipd_request(&self, cmd: &str, within: Duration) -> Result<serde_json::Value> {
        control::ctl::client::request_within(
            &self.vipd_socket(),
            serde_json::json!({ "cmd": cmd }),
            within,
        )
        .map_err(|e| anyhow!("vipd's control socket, `{cmd}`: {e}"))
    }

    /// Connections in vipd's tables, summed over its workers and backends:
    /// `backends` answers from the tables' running counts, where `flows`
    /// would scan them and slow the worker the row measures.
    pub(crate) fn vipd_flows(&self) -> Result<u64> {
        let reply = self.vipd_request("backends", Duration::from_secs(10))?;
        let list = reply["backends"]
            .as_array()
            .ok_or_else(|| anyhow!("vipd's backends reply has no list: {reply}"))?;
        Ok(list
            .iter()
            .map(|b| b["active"].as_u64().unwrap_or(0) + b["inactive"].as_u64().unwrap_or(0))
            .sum())
    }

    /// vipd's drop counters (non-zero ones) and its XDP SYN admission
    /// drops, for the notes: where the frames a row lost went.
    pub(crate) fn vipd_drops(&self) -> Option<String> {
        let stats = self.vipd_request("stats", Duration::from_secs(2)).ok()?;
        let mut parts: Vec<String> = stats["drops"]
            .as_object()?
            .iter()
            .filter_map(|(reason, n)| {
                n.as_u64()
                    .filter(|&n| n > 0)
                    .map(|n| format!("{reason} {n}"))
            })
            .collect();
        if let Some(n) = stats["xdp"]["drop_syn_limit"].as_u64().filter(|&n| n > 0) {
            parts.push(format!("XDP SYN admission {n}"));
        }
        let k = &stats["afxdp"];
        let n = |f: &str| k[f].as_u64().unwrap_or(0);
        parts.extend(ring_losses(SocketStats {
            rx_ring_full: n("rx_ring_full"),
            rx_dropped: n("rx_dropped"),
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
