//! The report: every figure of one run, rendered as JSON, a Markdown table
//! and an SVG plot (bars per scenario, the flow-scaling curve).

mod markdown;
mod svg;
mod targets;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::plan::{Family, Frames};
use targets::measured;
pub use targets::LOSS_FREE_LOSS;

/// Latency of sampled packets at a fixed offered load.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    /// The requested load.
    pub offered_pps: u64,
    /// The load the generator reached.
    pub achieved_pps: f64,
    pub samples: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// What the client saw across one failover event (scenario 7): a paced UDP
/// stream with sequence numbers to the VIP, echoed by the backends.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FailoverEvent {
    /// Stable key: vrrp_sigkill, vrrp_sigterm, bgp_site_sigkill.
    pub event: String,
    /// What failed, for people.
    pub label: String,
    /// The rate the client reached over the measured window.
    pub rate_pps: f64,
    /// Packets sent from the first answered one on.
    pub sent: u64,
    /// Of those, packets whose echo never came back.
    pub lost: u64,
    /// Longest outage: from the send time of the last answered packet
    /// before the longest run of unanswered ones to the first answered after.
    pub outage_ms: f64,
    /// Who answered before the failure and who at the end (node or site).
    pub before: String,
    pub after: String,
    /// Packets sent after the failure that `after` answered.
    pub answered_after: u64,
}

/// Sync lag at one offered rate of new connections (scenario 9): from the
/// generator's send stamp of a connection's establishing ACK to the
/// backup's kernel receive stamp of the sync datagram carrying its record.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SyncLag {
    /// Offered new connections per second, and the rate reached.
    pub offered_cps: u64,
    pub achieved_cps: f64,
    /// Connections the generator opened (SYN, then ACK).
    pub created: u64,
    /// Send attempts veth refused in front of the master (its receive ring
    /// was full; gen0's tx_dropped): the generator sends those frames
    /// again. None where unreadable.
    pub refused_before_master: Option<u64>,
    /// Establishing ACKs the master forwarded to a backend (the sink):
    /// the connections it established.
    pub acks_forwarded: u64,
    /// Seen on the backup with a right record (the lags are theirs).
    pub matched: u64,
    /// Records the backup received for the run's connections, the master's
    /// repeats (refreshes) included.
    pub records_received: u64,
    /// Seen with a wrong first record, and never seen.
    pub wrong: u64,
    pub lost: u64,
    /// Of the lost: never established on the master (created less ACKs
    /// forwarded), and the rest, established but not synced.
    pub not_established: u64,
    pub lost_in_sync: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// The generator's send calls, p99 and longest: an ACK may have left up
    /// to its call's length before its stamp.
    pub stamp_slack_p99_us: f64,
    pub stamp_slack_max_us: f64,
    /// The master's sync records lost to full queues over the run.
    pub master_overflow: u64,
    /// The backup's `sync` counters over the run: records its workers
    /// applied (repeats of a connection included) and refused, messages it
    /// rejected.
    pub applied: u64,
    pub not_applied: u64,
    pub rejected: u64,
    /// Connections the backup's tables gained over the run.
    pub backup_conns: Option<u64>,
    pub notes: Vec<String>,
}

/// One figure of the master with and without `[sync]`, in the same run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SyncCompare {
    /// Stable key: nat_throughput, new_connections.
    pub figure: String,
    pub label: String,
    pub off_offered_pps: f64,
    pub off_pps: f64,
    pub on_offered_pps: f64,
    pub on_pps: f64,
    /// on / off: the median over the paired runs (listed in `ratios`),
    /// whose median rates are the ones above.
    pub ratio: Option<f64>,
    pub ratios: Vec<f64>,
    pub note: String,
}

/// Scenario 9: connection sync between the master and a backup.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SyncFigures {
    pub lag: Vec<SyncLag>,
    pub compare: Vec<SyncCompare>,
    /// How the two stamps were taken.
    pub method: String,
}

impl SyncFigures {
    /// Of the connections the master established, at the worst rate, the
    /// share that reached the backup with a right record and were applied
    /// there (none established: 0).
    pub fn synced_share(&self) -> Option<f64> {
        self.lag
            .iter()
            .map(|l| {
                if l.acks_forwarded == 0 {
                    0.0
                } else {
                    (l.matched.min(l.applied) as f64 / l.acks_forwarded as f64).min(1.0)
                }
            })
            .min_by(f64::total_cmp)
    }

    pub fn compare_ratio(&self, figure: &str) -> Option<f64> {
        self.compare
            .iter()
            .find(|c| c.figure == figure)
            .and_then(|c| c.ratio)
    }
}

/// What one scenario measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Measured {
    pub seconds: f64,
    /// Frames the generator sent.
    pub sent: u64,
    /// Frames the sink counted and found right: checksums valid, addressed
    /// as the forwarding mode says (what every rate here is made of).
    pub delivered: u64,
    /// Frames the sink checked and found right, over the measured run
    /// (before the cap at `sent`).
    pub verified: u64,
    /// Frames the sink found with a wrong checksum or address.
    pub malformed: u64,
    pub offered_pps: f64,
    pub delivered_pps: f64,
    /// The highest offered rate forwarded with at most [`LOSS_FREE_LOSS`]
    /// lost (RFC 2544 style search), for the scenarios that search it.
    pub loss_free_pps: Option<f64>,
    /// Busy time of the DUT's core over the measurement (/proc/stat).
    pub dut_core_busy_s: f64,
    /// Delivered packets per busy second of the DUT's core.
    pub pps_per_cpu_s: Option<f64>,
    /// user+system time of the DUT's own threads (vipd process, engine
    /// workers, dut0's NAPI thread), when it has any.
    pub dut_threads_s: Option<f64>,
    /// DUT core busy time per delivered packet at the plan's fixed load, in
    /// µs (median of the slices that reached the load without loss): what a
    /// packet costs the core when it is not overloaded, so the scheduler's
    /// split of a saturated core does not enter.
    pub core_us_per_packet: Option<f64>,
    /// Flow rows only: ns of the DUT core for one random access into a
    /// table of the size this row's vipd had, among as many slots as the
    /// row has flows (the lookup probe's BPF test runs).
    pub lookup_ns: Option<f64>,
    /// Flow rows but the smallest: full-load runs back to back on this
    /// row's filled vipd, its first flows of the smallest flow point and all
    /// of the row's.
    pub flow_pairs: Vec<FlowPair>,
    pub latency: Option<Latency>,
    /// SYN flood only: established-flow packets delivered / sent.
    pub established_share: Option<f64>,
    /// Frames the generator's veth refused because dut0's ring was full:
    /// lost before any DUT code ran (None where it could not be read).
    pub refused_before_dut: Option<u64>,
    pub ratio_to_ceiling: Option<f64>,
    pub ratio_to_kernel: Option<f64>,
    /// What went wrong in a part of the scenario that did not stop it.
    pub notes: Vec<String>,
    /// Failover scenario only: one entry per event, in the order run.
    pub failover: Vec<FailoverEvent>,
    /// Sync scenario only.
    pub sync: Option<SyncFigures>,
}

// One per report row, a dozen rows at most: boxing the measured variant to
// shrink the enum would save nothing worth the indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Measured(Measured),
    Unavailable { reason: String },
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Stable key: ceiling, afxdp, nftables, vipd_nat, vipd_fullnat, vipd_dr,
    /// vipd_nat_ipv4_<size>, vipd_nat_ipv6_<size>, flows_<n>, synflood,
    /// failover.
    pub id: String,
    /// The scenario number in the benchmark plan (1–9).
    pub scenario: u8,
    pub label: String,
    pub flows: u64,
    /// The family and Ethernet frame length without FCS of the generated
    /// frames (the plan's for the rows that are not IPv4/IPv6 pairs).
    pub family: Family,
    pub frame_size: usize,
    pub outcome: Outcome,
}

/// The id of the IPv4/IPv6 NAT pairs' row of `frames`.
pub fn nat_family_id(frames: Frames) -> String {
    format!(
        "vipd_nat_{}_{}",
        frames.family.name().to_lowercase(),
        frames.size
    )
}

impl Row {
    pub fn measured(&self) -> Option<&Measured> {
        match &self.outcome {
            Outcome::Measured(m) => Some(m),
            Outcome::Unavailable { .. } => None,
        }
    }
}

/// A key figure vipbench reports against its goal (reported, not asserted).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Target {
    pub name: String,
    pub goal: String,
    pub value: Option<f64>,
    pub met: Option<bool>,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub mode: String,
    pub kernel: String,
    pub cpus: usize,
    pub frame_size: usize,
    pub seconds_per_run: f64,
    /// /proc/loadavg before and after the run: other work on the machine
    /// shares the cores and skews every figure.
    pub load_before: String,
    pub load_after: String,
    pub pinning: String,
    pub cpu_method: String,
    pub rows: Vec<Row>,
    /// Raw AF_XDP forward and vipd NAT, one pair per paired run; the
    /// NAT/raw figure is the median of their ratios.
    pub key_pairs: Vec<KeyPair>,
    pub targets: Vec<Target>,
}

/// One pair of full-load runs on one filled vipd, back to back: delivered
/// pps of a few of its flows and of all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FlowPair {
    pub few: f64,
    pub many: f64,
}

/// One paired run of raw AF_XDP forward and vipd NAT, back to back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct KeyPair {
    /// Delivered pps at the generator's full offered load: the maximum
    /// forwarding rate.
    pub raw: f64,
    pub nat: f64,
    /// Loss-free pps, where the search found one.
    pub raw_loss_free: Option<f64>,
    pub nat_loss_free: Option<f64>,
    /// DUT core µs per packet at the fixed load.
    pub raw_core_us: Option<f64>,
    pub nat_core_us: Option<f64>,
}

impl KeyPair {
    pub fn of(raw: &Measured, nat: &Measured) -> KeyPair {
        KeyPair {
            raw: raw.delivered_pps,
            nat: nat.delivered_pps,
            raw_loss_free: raw.loss_free_pps,
            nat_loss_free: nat.loss_free_pps,
            raw_core_us: raw.core_us_per_packet,
            nat_core_us: nat.core_us_per_packet,
        }
    }

    /// The pair of a report's main raw AF_XDP and vipd NAT rows.
    pub fn of_rows(rows: &[Row]) -> Option<KeyPair> {
        measured(rows, "afxdp")
            .zip(measured(rows, "vipd_nat"))
            .map(|(raw, nat)| KeyPair::of(raw, nat))
    }
}

impl Report {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).context("serialising the report")
    }

    /// Writes `vipbench.json`, `vipbench.md` and `vipbench.svg` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<ReportFiles> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let files = ReportFiles {
            json: dir.join("vipbench.json"),
            markdown: dir.join("vipbench.md"),
            svg: dir.join("vipbench.svg"),
        };
        for (path, text) in [
            (&files.json, self.to_json()?),
            (&files.markdown, self.to_markdown()),
            (&files.svg, self.to_svg()),
        ] {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(files)
    }
}

/// Where [`Report::write`] put the report.
#[derive(Clone, Debug)]
pub struct ReportFiles {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub svg: PathBuf,
}
