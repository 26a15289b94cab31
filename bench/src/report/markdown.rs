//! The report as a Markdown document.

use std::fmt::Write as _;

use super::{FailoverEvent, Outcome, Report, Row, SyncFigures};

impl Report {
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
        let syncs: Vec<&SyncFigures> = self
            .rows
            .iter()
            .filter_map(Row::measured)
            .filter_map(|m| m.sync.as_ref())
            .collect();
        for f in syncs {
            sync_section(&mut s, f);
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
                // A figure with no value (its row failed or did not run,
                // found no loss-free rate) reads "no".
                t.value
                    .map_or_else(|| "no".to_string(), |v| format!("{v:.3}")),
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
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into())
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "none".into(), |v| format!("{v:.2}"))
}

/// The connection sync section: lag per rate, the master with and without
/// sync.
fn sync_section(s: &mut String, f: &SyncFigures) {
    s.push_str(
        "\n## Connection sync (master to backup)\n\n\
         | offered conn/s | achieved conn/s | created | sends veth refused (retried) | established on master (ACKs forwarded) | on backup, right | records received | wrong | lost: not established / established, not synced | lag p50 ms | lag p99 ms | lag max ms | send call p99 / max us | master sync overflow | backup applied / refused / rejected | backup tables gained | notes |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for l in &f.lag {
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {:.0} / {:.0} | {} | {} / {} / {} | {} | {} |",
            l.offered_cps,
            l.achieved_cps,
            l.created,
            l.refused_before_master
                .map_or_else(|| "unread".into(), |n| n.to_string()),
            l.acks_forwarded,
            l.matched,
            l.records_received,
            l.wrong,
            l.not_established,
            l.lost_in_sync,
            fmt_ms(l.p50_ms),
            fmt_ms(l.p99_ms),
            fmt_ms(l.max_ms),
            l.stamp_slack_p99_us,
            l.stamp_slack_max_us,
            l.master_overflow,
            l.applied,
            l.not_applied,
            l.rejected,
            l.backup_conns
                .map_or_else(|| "unread".into(), |n| n.to_string()),
            l.notes.join("; ").replace('|', "/")
        );
    }
    s.push_str(
        "\n| master figure | sync off Mpps (offered) | sync on Mpps (offered) | on / off | note |\n|---|---|---|---|---|\n",
    );
    for c in &f.compare {
        let _ = writeln!(
            s,
            "| {} | {:.3} ({:.3}) | {:.3} ({:.3}) | {} | {} |",
            c.label.replace('|', "/"),
            c.off_pps / 1e6,
            c.off_offered_pps / 1e6,
            c.on_pps / 1e6,
            c.on_offered_pps / 1e6,
            c.ratio.map_or_else(|| "no".into(), |r| format!("{r:.3}")),
            std::iter::once(format!(
                "median of {} paired runs ({})",
                c.ratios.len(),
                c.ratios
                    .iter()
                    .map(|r| format!("{r:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .chain((!c.note.is_empty()).then(|| c.note.clone()))
            .collect::<Vec<_>>()
            .join("; ")
            .replace('|', "/")
        );
    }
    let _ = writeln!(s, "\nHow: {}", f.method.replace('|', "/"));
}
