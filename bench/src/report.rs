//! The report: every figure of one run, rendered as JSON, a Markdown table
//! and an SVG plot (bars per scenario, the flow-scaling curve).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::rate::ratio;

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
    /// flows_<n>, synflood, failover.
    pub id: String,
    /// The scenario number in the benchmark plan (1–7).
    pub scenario: u8,
    pub label: String,
    pub flows: u64,
    pub outcome: Outcome,
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

/// The middle value (the upper one of an even count), and every value in
/// order for the note.
fn median(mut v: Vec<f64>) -> (Option<f64>, String) {
    v.sort_by(f64::total_cmp);
    let listed = v
        .iter()
        .map(|x| format!("{x:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    (v.get(v.len() / 2).copied(), listed)
}

/// The loss a rate may show and still count as loss-free: frames in flight
/// at the edges of a probe window are not losses.
pub const LOSS_FREE_LOSS: f64 = 0.005;

/// The row `id`, if it was measured.
fn measured<'r>(rows: &'r [Row], id: &str) -> Option<&'r Measured> {
    rows.iter().find(|r| r.id == id).and_then(Row::measured)
}

/// One figure of the measured row `id`.
fn figure(rows: &[Row], id: &str, f: fn(&Measured) -> Option<f64>) -> Option<f64> {
    measured(rows, id).and_then(f)
}

/// Row `a`'s figure over row `b`'s.
fn row_ratio(rows: &[Row], a: &str, b: &str, f: fn(&Measured) -> Option<f64>) -> Option<f64> {
    figure(rows, a, f)
        .zip(figure(rows, b, f))
        .and_then(|(a, b)| ratio(a, b))
}

/// The median over the pairs that have both figures of `f` of the first
/// over the second, the values listed, and how many there were.
fn pair_median(
    pairs: &[KeyPair],
    f: fn(&KeyPair) -> Option<(f64, f64)>,
) -> (Option<f64>, String, usize) {
    let values: Vec<f64> = pairs
        .iter()
        .filter_map(f)
        .filter_map(|(a, b)| ratio(a, b))
        .collect();
    let n = values.len();
    let (m, listed) = median(values);
    (m, listed, n)
}

fn target(name: &str, goal: &str, value: Option<f64>, min: f64, note: &str) -> Target {
    Target {
        name: name.into(),
        goal: goal.into(),
        value,
        // A row that failed or found no loss-free rate has no value: the
        // target is not met.
        met: Some(value.is_some_and(|v| v >= min)),
        note: note.into(),
    }
}

impl Report {
    /// Fills in every row's ratios to the ceiling (scenario 1) and the
    /// kernel (scenario 3), and the key targets.
    pub fn finish(&mut self) {
        let delivered = |m: &Measured| Some(m.delivered_pps);
        let ceiling = figure(&self.rows, "ceiling", delivered);
        let kernel = figure(&self.rows, "nftables", delivered);
        for row in &mut self.rows {
            // A failover row's rate is the paced probe stream, not a
            // throughput: a ratio to the ceiling would mean nothing.
            if let Outcome::Measured(m) = &mut row.outcome {
                if !m.failover.is_empty() {
                    continue;
                }
                m.ratio_to_ceiling = ceiling.and_then(|c| ratio(m.delivered_pps, c));
                m.ratio_to_kernel = kernel.and_then(|k| ratio(m.delivered_pps, k));
            }
        }
        // Loss-free rates where both rows found one, as for NAT/raw; the
        // full-rate ratio beside it.
        let flows_full = row_ratio(&self.rows, "flows_1000000", "flows_1000", delivered);
        let flows_lf = row_ratio(&self.rows, "flows_1000000", "flows_1000", |m| {
            m.loss_free_pps
        });
        let flows_note = format!(
            "{}; delivered at the generator's full offered load: {}",
            if flows_lf.is_some() {
                format!(
                    "loss-free Mpps (at most {:.1} % lost)",
                    LOSS_FREE_LOSS * 100.0
                )
            } else {
                "no loss-free rate for both rows: delivered Mpps".to_string()
            },
            flows_full.map_or("-".to_string(), |v| format!("{v:.2}"))
        );
        let syn_row = measured(&self.rows, "synflood");
        let syn = syn_row.and_then(|m| m.established_share);
        // Frames veth refused in front of the DUT are lost whatever their
        // kind, so the share cannot exceed what reached the DUT.
        let syn_note = match syn_row.and_then(|m| m.refused_before_dut.map(|n| (n, m.sent))) {
            Some((n, sent)) if n > 0 && sent > 0 => format!(
                "share of the established mix delivered; at most {:.3} on this machine at this rate: veth refused {:.1} % of the frames before the DUT saw them",
                1.0 - n as f64 / sent as f64,
                100.0 * n as f64 / sent as f64
            ),
            _ => "share of the established mix delivered".to_string(),
        };
        let failover = self.rows.iter().find(|r| r.id == "failover");
        let worst = failover
            .and_then(Row::measured)
            .and_then(|m| m.failover.iter().max_by_key(|e| e.lost));
        let failover_note = match (failover.map(|r| &r.outcome), worst) {
            (Some(Outcome::Unavailable { reason }), _) => reason.clone(),
            (Some(Outcome::Measured(_)), Some(e)) => format!(
                "worst event: {} ({:.0} ms outage); every event in the failover table",
                e.label, e.outage_ms
            ),
            (Some(Outcome::Measured(_)), None) => "no event measured".into(),
            (None, _) => "not run".into(),
        };
        // Paired runs, or the main rows alone when no pair was kept.
        let pairs = if self.key_pairs.is_empty() {
            KeyPair::of_rows(&self.rows).into_iter().collect()
        } else {
            self.key_pairs.clone()
        };
        let (forwarding, forwarding_listed, _) = pair_median(&pairs, |p| Some((p.nat, p.raw)));
        let (nat_raw, loss_free_listed, runs) =
            pair_median(&pairs, |p| p.nat_loss_free.zip(p.raw_loss_free));
        let forwarding_note = forwarding.map_or("-".to_string(), |m| {
            format!("median {m:.2} ({forwarding_listed})")
        });
        // Raw's cost over vipd's: the share of raw's per-core rate vipd reaches.
        let (cost, cost_listed, _) = pair_median(&pairs, |p| p.raw_core_us.zip(p.nat_core_us));
        let kernel_full = row_ratio(&self.rows, "vipd_nat", "nftables", |m| m.pps_per_cpu_s);
        let kernel_cost = row_ratio(&self.rows, "nftables", "vipd_nat", |m| m.core_us_per_packet);
        let kernel_note = format!(
            "delivered packets per busy second of the DUT core at the generator's full offered load; from the DUT core's time per packet at a fixed load (not overloaded): {}",
            kernel_cost.map_or("-".to_string(), |v| format!("{v:.2}"))
        );
        self.targets = vec![
            target(
                "vipd NAT / raw AF_XDP forward",
                ">= 0.85",
                nat_raw,
                0.85,
                &format!(
                    "loss-free Mpps (at most {:.1} % lost), median of {runs} paired runs ({loss_free_listed}); delivered at the generator's full offered load: {forwarding_note}; per DUT core, from the core's time per packet at a fixed load (not overloaded): {}",
                    LOSS_FREE_LOSS * 100.0,
                    cost.map_or("-".to_string(), |m| format!("median {m:.2} ({cost_listed})"))
                ),
            ),
            target(
                "vipd NAT / nftables DNAT, packets per CPU-second",
                ">= 3",
                kernel_full,
                3.0,
                &kernel_note,
            ),
            target(
                "vipd NAT / ceiling, delivered Mpps",
                ">= 0.7",
                row_ratio(&self.rows, "vipd_nat", "ceiling", delivered),
                0.7,
                "established flows in the XDP fast path; delivered at the generator's full offered load",
            ),
            target(
                "vipd full NAT / ceiling, delivered Mpps",
                ">= 0.6",
                row_ratio(&self.rows, "vipd_fullnat", "ceiling", delivered),
                0.6,
                "delivered at the generator's full offered load",
            ),
            target(
                "vipd DR / ceiling, delivered Mpps",
                ">= 0.6",
                row_ratio(&self.rows, "vipd_dr", "ceiling", delivered),
                0.6,
                "delivered at the generator's full offered load",
            ),
            target(
                "vipd NAT fast path / workers only, delivered Mpps",
                "> 1",
                row_ratio(&self.rows, "vipd_nat", "vipd_nat_workers", delivered),
                1.0,
                "the same NAT service with `fast_path = false`, in the same run",
            ),
            Target {
                name: "new connections per second, vipd NAT / nftables conntrack".into(),
                goal: "report".into(),
                value: row_ratio(&self.rows, "newconn_vipd", "newconn_nftables", delivered),
                met: None,
                note: "every packet opens a connection; delivered packets per second of each row"
                    .into(),
            },
            Target {
                name: "p99 latency of vipd NAT, us".into(),
                goal: "report".into(),
                value: measured(&self.rows, "vipd_nat")
                    .and_then(|m| m.latency.as_ref())
                    .map(|l| l.p99_us),
                met: None,
                note: measured(&self.rows, "vipd_nat")
                    .and_then(|m| m.latency.as_ref())
                    .map_or("no latency phase".into(), |l| {
                        format!("offered {:.2} Mpps, half the ceiling's rate", l.offered_pps as f64 / 1e6)
                    }),
            },
            target(
                "1M flows / 1k flows (vipd NAT)",
                ">= 0.7",
                flows_lf.or(flows_full),
                0.7,
                &flows_note,
            ),
            target(
                "established packets kept under SYN flood",
                ">= 0.99",
                syn,
                0.99,
                &syn_note,
            ),
            Target {
                name: "packets lost per failover".into(),
                goal: "report".into(),
                value: worst.map(|e| e.lost as f64),
                met: None,
                note: failover_note,
            },
        ];
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).context("serialising the report")
    }

    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# vipbench {} run\n", self.mode);
        let _ = writeln!(
            s,
            "Kernel {}, {} CPUs, {}-byte frames, {:.1} s per run. Load average before / after: \
             {} / {} (other work on the cores skews every figure; compare only rows of one run).\n",
            self.kernel,
            self.cpus,
            self.frame_size,
            self.seconds_per_run,
            self.load_before,
            self.load_after
        );
        s.push_str(
            "| # | scenario | flows | offered Mpps | delivered Mpps | verified / malformed frames | loss-free Mpps | x ceiling | x kernel | DUT core busy s | Mpps per CPU-s | DUT core us per packet at fixed load | latency p50 / p99 / p99.9 us (at kpps) | notes |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for row in &self.rows {
            let _ = write!(s, "| {} | {} | {} ", row.scenario, row.label, row.flows);
            match &row.outcome {
                Outcome::Measured(m) => {
                    let lat = m
                        .latency
                        .as_ref()
                        .map(|l| {
                            format!(
                                "{:.1} / {:.1} / {:.1} ({:.0})",
                                l.p50_us,
                                l.p99_us,
                                l.p999_us,
                                l.achieved_pps / 1000.0
                            )
                        })
                        .unwrap_or_else(|| "-".into());
                    let note = m
                        .established_share
                        .map(|e| format!("established delivered: {:.2} %", e * 100.0))
                        .into_iter()
                        .chain(m.notes.iter().cloned())
                        .collect::<Vec<_>>()
                        .join("; ")
                        .replace('|', "/");
                    let _ = writeln!(
                        s,
                        "| {:.3} | {:.3} | {} / {} | {} | {} | {} | {:.2} | {} | {} | {} | {} |",
                        m.offered_pps / 1e6,
                        m.delivered_pps / 1e6,
                        m.verified,
                        m.malformed,
                        m.loss_free_pps
                            .map(|p| format!("{:.3}", p / 1e6))
                            .unwrap_or_else(|| "-".into()),
                        fmt_ratio(m.ratio_to_ceiling),
                        fmt_ratio(m.ratio_to_kernel),
                        m.dut_core_busy_s,
                        m.pps_per_cpu_s
                            .map(|p| format!("{:.3}", p / 1e6))
                            .unwrap_or_else(|| "-".into()),
                        m.core_us_per_packet
                            .map_or_else(|| "-".into(), |c| format!("{c:.2}")),
                        lat,
                        note
                    );
                }
                Outcome::Unavailable { reason } => {
                    let _ = writeln!(
                        s,
                        "| - | - | - | - | - | - | - | - | - | - | not available: {} |",
                        reason.replace('|', "/")
                    );
                }
            }
        }
        let events: Vec<&FailoverEvent> = self
            .rows
            .iter()
            .filter_map(Row::measured)
            .flat_map(|m| &m.failover)
            .collect();
        if !events.is_empty() {
            s.push_str(
                "\n## Failover under load\n\n\
                 | event | rate pps | sent | lost | longest outage ms | served before | served after | answered after |\n\
                 |---|---|---|---|---|---|---|---|\n",
            );
            for e in events {
                let _ = writeln!(
                    s,
                    "| {} | {:.0} | {} | {} | {:.1} | {} | {} | {} |",
                    e.label.replace('|', "/"),
                    e.rate_pps,
                    e.sent,
                    e.lost,
                    e.outage_ms,
                    e.before.replace('|', "/"),
                    e.after.replace('|', "/"),
                    e.answered_after
                );
            }
        }
        s.push_str(
            "\n## Key figures\n\n| figure | goal | value | met | note |\n|---|---|---|---|---|\n",
        );
        for t in &self.targets {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                t.name,
                t.goal,
                t.value.map_or_else(
                    || if t.met.is_some() { "no" } else { "-" }.to_string(),
                    |v| format!("{v:.3}")
                ),
                match t.met {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "-",
                },
                t.note.replace('|', "/")
            );
        }
        let _ = write!(
            s,
            "\n## How\n\n- Pinning: {}\n- CPU: {}\n",
            self.pinning, self.cpu_method
        );
        s
    }

    pub fn to_svg(&self) -> String {
        svg(self)
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

fn fmt_ratio(r: Option<f64>) -> String {
    r.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 860.0;
const BAR_H: f64 = 22.0;
const LEFT: f64 = 230.0;
const CURVE_H: f64 = 260.0;

/// Bars: delivered Mpps of every measured throughput row (not the scaling
/// points, not failover). Below them the
/// flow-scaling curve (delivered Mpps over log10 flows).
fn svg(r: &Report) -> String {
    let bars: Vec<(&Row, &Measured)> = r
        .rows
        .iter()
        .filter(|row| !row.id.starts_with("flows_"))
        .filter_map(|row| row.measured().map(|m| (row, m)))
        .filter(|(_, m)| m.failover.is_empty())
        .collect();
    let curve: Vec<(u64, f64)> = r
        .rows
        .iter()
        .filter(|row| row.id.starts_with("flows_"))
        .filter_map(|row| row.measured().map(|m| (row.flows, m.delivered_pps / 1e6)))
        .collect();
    let max = bars
        .iter()
        .map(|(_, m)| m.delivered_pps / 1e6)
        .chain(curve.iter().map(|c| c.1))
        .fold(0.0f64, f64::max)
        .max(0.001);
    let bars_top = 50.0;
    let curve_top = bars_top + BAR_H * bars.len() as f64 + 70.0;
    let height = curve_top + CURVE_H + 60.0;
    let width = W - LEFT - 90.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{W}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="24" font-size="16">vipbench {}: delivered Mpps per scenario ({} B frames, kernel {})</text>"#,
        xml_escape(&r.mode),
        r.frame_size,
        xml_escape(&r.kernel)
    );
    for (i, (row, m)) in bars.iter().enumerate() {
        let y = bars_top + BAR_H * i as f64;
        let mpps = m.delivered_pps / 1e6;
        let w = (mpps / max * width).max(1.0);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            y + 15.0,
            xml_escape(&row.label)
        );
        let _ = writeln!(
            s,
            r##"<rect class="bar" x="{LEFT}" y="{:.1}" width="{w:.1}" height="{:.1}" fill="#4a7ebb"/>"##,
            y + 3.0,
            BAR_H - 6.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{mpps:.3}</text>"#,
            LEFT + w + 6.0,
            y + 15.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="10" y="{:.1}" font-size="16">flow scaling, vipd NAT: delivered Mpps over flows</text>"#,
        curve_top - 20.0
    );
    let (x0, y0) = (LEFT, curve_top + CURVE_H);
    let _ = writeln!(
        s,
        r#"<line x1="{x0}" y1="{y0}" x2="{:.1}" y2="{y0}" stroke="black"/><line x1="{x0}" y1="{curve_top}" x2="{x0}" y2="{y0}" stroke="black"/>"#,
        x0 + width
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{max:.2} Mpps</text><text x="{:.1}" y="{y0}" text-anchor="end">0</text>"#,
        x0 - 6.0,
        curve_top + 4.0,
        x0 - 6.0
    );
    if !curve.is_empty() {
        let lo = curve
            .iter()
            .map(|c| c.0.max(1) as f64)
            .fold(f64::MAX, f64::min)
            .log10();
        let hi = curve
            .iter()
            .map(|c| c.0.max(1) as f64)
            .fold(0.0, f64::max)
            .log10();
        let span = (hi - lo).max(1.0);
        let pts: Vec<(f64, f64, u64)> = curve
            .iter()
            .map(|&(f, mpps)| {
                let x = x0 + ((f.max(1) as f64).log10() - lo) / span * width;
                let y = y0 - mpps / max * CURVE_H;
                (x, y, f)
            })
            .collect();
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            s,
            r##"<polyline class="scaling" fill="none" stroke="#c0504d" stroke-width="2" points="{}"/>"##,
            path.join(" ")
        );
        for (x, y, f) in &pts {
            let _ = writeln!(
                s,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="#c0504d"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                y0 + 16.0,
                flows_label(*f)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

fn flows_label(f: u64) -> String {
    match f {
        f if f >= 1_000_000 && f % 1_000_000 == 0 => format!("{}M", f / 1_000_000),
        f if f >= 1_000 && f % 1_000 == 0 => format!("{}k", f / 1_000),
        f => f.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The target whose name holds `name`.
    fn target_named<'r>(r: &'r Report, name: &str) -> &'r Target {
        r.targets
            .iter()
            .find(|t| t.name.contains(name))
            .unwrap_or_else(|| panic!("no target named {name:?}"))
    }

    /// Fails with the whole note unless it holds every one of `parts`.
    fn assert_note(t: &Target, parts: &[&str]) {
        for p in parts {
            assert!(t.note.contains(p), "{p:?} not in: {}", t.note);
        }
    }

    fn measured(pps: f64) -> Outcome {
        Outcome::Measured(Measured {
            seconds: 1.0,
            sent: (pps * 1.5) as u64,
            delivered: pps as u64,
            offered_pps: pps * 1.5,
            delivered_pps: pps,
            loss_free_pps: Some(pps * 0.8),
            dut_core_busy_s: 1.0,
            pps_per_cpu_s: Some(pps),
            latency: Some(Latency {
                offered_pps: 100_000,
                achieved_pps: 99_000.0,
                samples: 10,
                p50_us: 5.0,
                p99_us: 9.0,
                p999_us: 12.0,
                max_us: 20.0,
            }),
            core_us_per_packet: Some(1e6 / pps),
            ..Measured::default()
        })
    }

    fn row(id: &str, scenario: u8, flows: u64, outcome: Outcome) -> Row {
        Row {
            id: id.into(),
            scenario,
            label: format!("{id} <&>"),
            flows,
            outcome,
        }
    }

    fn report() -> Report {
        let mut r = Report {
            mode: "quick".into(),
            kernel: "6.18".into(),
            cpus: 2,
            frame_size: 64,
            seconds_per_run: 1.0,
            load_before: "0.10 0.20 0.30".into(),
            load_after: "0.40 0.20 0.30".into(),
            pinning: "gen core 0".into(),
            cpu_method: "/proc/stat".into(),
            rows: vec![
                row("ceiling", 1, 1000, measured(4e6)),
                row("afxdp", 2, 1000, measured(1e6)),
                row("nftables", 3, 1000, measured(2e6)),
                row("vipd_nat", 4, 1000, measured(0.9e6)),
                row("flows_1000", 5, 1000, measured(0.9e6)),
                row("flows_1000000", 5, 1_000_000, measured(0.6e6)),
                row(
                    "failover",
                    7,
                    0,
                    Outcome::Unavailable {
                        reason: "no VRRP | here".into(),
                    },
                ),
            ],
            key_pairs: Vec::new(),
            targets: Vec::new(),
        };
        r.finish();
        r
    }

    #[test]
    fn nat_to_raw_is_the_median_of_the_paired_runs() {
        let mut r = report();
        let pair = |raw: f64, nat: f64, lf: Option<(f64, f64)>, us: (f64, f64)| KeyPair {
            raw,
            nat,
            raw_loss_free: lf.map(|l| l.0),
            nat_loss_free: lf.map(|l| l.1),
            raw_core_us: Some(us.0),
            nat_core_us: Some(us.1),
        };
        r.key_pairs = vec![
            pair(1e6, 0.8e6, Some((1e5, 0.9e5)), (9.0, 10.0)),
            pair(1e6, 0.95e6, None, (9.0, 12.0)),
            pair(2e6, 1e6, Some((1e5, 0.7e5)), (8.0, 8.0)),
        ];
        r.finish();
        let t = &r.targets[0];
        assert_eq!(t.value, Some(0.9));
        assert_eq!(t.met, Some(true));
        assert_note(
            t,
            &[
                "2 paired runs (0.70, 0.90)",
                "full offered load: median 0.80 (0.50, 0.80, 0.95)",
                "not overloaded): median 0.90 (0.75, 0.90, 1.00)",
            ],
        );
        r.key_pairs[0].raw_loss_free = Some(2e5);
        r.finish();
        assert_eq!(r.targets[0].value, Some(0.7));
        assert_eq!(r.targets[0].met, Some(false));
    }

    #[test]
    fn syn_flood_target_names_the_bound_veth_sets() {
        let mut r = report();
        let flood = Outcome::Measured(Measured {
            sent: 1000,
            established_share: Some(0.25),
            refused_before_dut: Some(700),
            ..Measured::default()
        });
        r.rows.push(row("synflood", 6, 1_000_000, flood));
        r.finish();
        let t = target_named(&r, "SYN flood");
        assert_eq!(t.value, Some(0.25));
        assert_eq!(t.met, Some(false));
        assert_note(t, &["at most 0.300", "refused 70.0 %"]);
    }

    #[test]
    fn flow_scaling_prefers_loss_free_rates_and_shows_the_full_rate() {
        let mut r = report();
        let flows = |pps: f64, lf: Option<f64>| {
            Outcome::Measured(Measured {
                delivered_pps: pps,
                loss_free_pps: lf,
                ..Measured::default()
            })
        };
        r.rows.retain(|row| !row.id.starts_with("flows_"));
        r.rows
            .push(row("flows_1000", 5, 1000, flows(1e6, Some(4e5))));
        r.rows
            .push(row("flows_1000000", 5, 1_000_000, flows(5e5, Some(3e5))));
        r.finish();
        let t = target_named(&r, "1M flows");
        assert_eq!(t.value, Some(0.75));
        assert_note(t, &["loss-free", "full offered load: 0.50"]);

        r.rows.retain(|row| row.id != "flows_1000000");
        r.rows
            .push(row("flows_1000000", 5, 1_000_000, flows(5e5, None)));
        r.finish();
        let t = target_named(&r, "1M flows");
        assert_eq!(t.value, Some(0.5));
        assert!(t.note.starts_with("no loss-free rate"), "{}", t.note);
    }

    #[test]
    fn without_pairs_the_main_rows_are_the_one_pair() {
        let r = report();
        let t = &r.targets[0];
        assert_eq!(t.value, Some(0.9));
        assert_note(
            t,
            &[
                "loss-free Mpps (at most 0.5 % lost), median of 1 paired runs (0.90)",
                "full offered load: median 0.90",
                "not overloaded): median 0.90 (0.90)",
            ],
        );
    }

    #[test]
    fn ratios_are_relative_to_ceiling_and_kernel() {
        let r = report();
        let nat = r.rows[3].measured().unwrap();
        assert_eq!(nat.ratio_to_ceiling, Some(0.9e6 / 4e6));
        assert_eq!(nat.ratio_to_kernel, Some(0.9e6 / 2e6));
        let t = &r.targets[0];
        assert_eq!(t.value, Some(0.9));
        assert_eq!(t.met, Some(true));
        let k = &r.targets[1];
        assert_eq!(k.value, Some(0.9e6 / 2e6));
        assert_note(k, &["not overloaded): 0.45"]);
        let c = target_named(&r, "vipd NAT / ceiling");
        assert_eq!(c.value, Some(0.9e6 / 4e6));
        assert_eq!(c.met, Some(false), "0.225 is short of 0.7");
        assert_eq!(target_named(&r, "1M flows").value, Some(0.6 / 0.9));
        assert_eq!(target_named(&r, "1M flows").met, Some(false));
        assert_eq!(target_named(&r, "SYN flood").value, None);
        assert_eq!(target_named(&r, "SYN flood").met, Some(false));
        assert_eq!(target_named(&r, "failover").note, "no VRRP | here");
        assert_eq!(target_named(&r, "new connections").met, None);
    }

    #[test]
    fn json_round_trips_every_row() {
        let r = report();
        let v: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), r.rows.len());
        assert_eq!(rows[0]["outcome"]["status"], "measured");
        assert_eq!(rows[6]["outcome"]["status"], "unavailable");
        assert_eq!(rows[1]["outcome"]["delivered_pps"], 1e6);
    }

    #[test]
    fn markdown_has_one_table_line_per_row() {
        let r = report();
        let md = r.to_markdown();
        let lines: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        // Header + rows, then header + targets.
        assert_eq!(lines.len(), 1 + r.rows.len() + 1 + r.targets.len());
        let (rows, targets) = lines.split_at(1 + r.rows.len());
        for table in [rows, targets] {
            let cells = table[0].matches('|').count();
            assert!(
                table.iter().all(|l| l.matches('|').count() == cells),
                "{md}"
            );
        }
        assert!(md.contains("not available: no VRRP / here"));
        assert!(md.contains("0.10 0.20 0.30 / 0.40 0.20 0.30"));
        assert!(md.contains("| 0.23 |"), "ceiling ratio of vipd_nat: {md}");
    }

    #[test]
    fn failover_events_get_their_own_table_and_the_worst_is_the_target() {
        let mut r = report();
        let event = |event: &str, lost: u64, outage_ms: f64| FailoverEvent {
            event: event.into(),
            label: format!("{event} label"),
            rate_pps: 20_000.0,
            sent: 40_000,
            lost,
            outage_ms,
            before: "lb1".into(),
            after: "lb2".into(),
            answered_after: 30_000,
        };
        r.rows[6].outcome = Outcome::Measured(Measured {
            sent: 80_000,
            delivered: 80_000 - 7_000,
            offered_pps: 20_000.0,
            delivered_pps: 18_250.0,
            failover: vec![event("kill", 7_000, 350.0), event("term", 1_000, 50.5)],
            ..Measured::default()
        });
        r.finish();
        let m = r.rows[6].measured().unwrap();
        assert_eq!(m.ratio_to_ceiling, None, "a probe stream is no throughput");
        let t = target_named(&r, "failover");
        assert_eq!(t.value, Some(7000.0));
        assert_note(t, &["kill label"]);
        let md = r.to_markdown();
        assert!(
            md.contains("| kill label | 20000 | 40000 | 7000 | 350.0 | lb1 | lb2 | 30000 |"),
            "{md}"
        );
        assert!(md.contains("| term label | 20000 | 40000 | 1000 | 50.5 | lb1 | lb2 | 30000 |"));
        let v: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
        assert_eq!(v["rows"][6]["outcome"]["failover"][1]["outage_ms"], 50.5);
        let svg = r.to_svg();
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let bars = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("bar"))
            .count();
        assert_eq!(bars, 4, "no throughput bar for the failover row");
    }

    #[test]
    fn svg_is_well_formed_with_a_bar_per_measured_row_and_the_curve() {
        let r = report();
        let svg = r.to_svg();
        let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
        let bars = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("bar"))
            .count();
        assert_eq!(bars, 4);
        let line = doc
            .descendants()
            .find(|n| n.attribute("class") == Some("scaling"))
            .expect("scaling curve");
        assert_eq!(line.attribute("points").unwrap().split(' ').count(), 2);
        assert!(svg.contains("ceiling &lt;&amp;&gt;"));
        assert!(doc.descendants().any(|n| n.text() == Some("1M")));
    }
}
