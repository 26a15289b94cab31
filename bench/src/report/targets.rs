//! The key targets of a run and the ratios of every row, from its figures.

use crate::plan::{Family, Frames};
use crate::rate::ratio;

use super::{nat_family_id, KeyPair, Measured, Outcome, Report, Row, SyncFigures, Target};

/// The on/off ratios of the master's rates a run must reach with sync on:
/// sync work (a record per new connection, batches over UDP from the
/// control plane) may cost the dataplane at most a tenth.
pub const COST_GOAL: f64 = 0.9;

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
pub(super) fn measured<'r>(rows: &'r [Row], id: &str) -> Option<&'r Measured> {
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

/// Row `a` over row `b`: the lower of the ratios of their loss-free rates
/// and of their rates at the generator's full offered load (a stall of the
/// host in one row's loss-free search can lift the ratio as easily as sink
/// it), and a note giving both; the full-load ratio alone where either row
/// found no loss-free rate.
fn lower_ratio(rows: &[Row], a: &str, b: &str) -> (Option<f64>, String) {
    let full = row_ratio(rows, a, b, |m| Some(m.delivered_pps));
    let lf = row_ratio(rows, a, b, |m| m.loss_free_pps);
    let value = match (lf, full) {
        (Some(lf), Some(full)) => Some(lf.min(full)),
        (lf, full) => lf.or(full),
    };
    let note = format!(
        "{}; loss-free: {}, delivered at the generator's full offered load: {}",
        if lf.is_some() {
            format!(
                "the lower of the loss-free (at most {:.1} % lost) and the full-load ratios",
                LOSS_FREE_LOSS * 100.0
            )
        } else {
            "no loss-free rate for both rows: delivered Mpps".to_string()
        },
        lf.map_or("-".to_string(), |v| format!("{v:.2}")),
        full.map_or("-".to_string(), |v| format!("{v:.2}"))
    );
    (value, note)
}

/// What this host allows 1M flows / 1k flows to reach: the 1k row's DUT
/// core time per delivered packet at full load over that time plus the
/// extra cost of one random access into the 1M row's table (the lookup
/// probe's figures of both rows). A path whose only extra work at 1M flows
/// is that one access reaches this ratio per DUT CPU-second and no more;
/// the note sets the measured one beside it. Full load, not the fixed-load
/// core time, so that bound and measured ratio count the same way.
fn lookup_bound(rows: &[Row]) -> (Option<f64>, String) {
    let (big, small) = (
        measured(rows, "flows_1000000"),
        measured(rows, "flows_1000"),
    );
    let access = big
        .and_then(|m| m.lookup_ns)
        .zip(small.and_then(|m| m.lookup_ns));
    let per_packet = small
        .and_then(|m| m.pps_per_cpu_s)
        .filter(|&p| p > 0.0)
        .map(|p| 1e9 / p);
    let measured_ratio = row_ratio(rows, "flows_1000000", "flows_1000", |m| m.pps_per_cpu_s);
    match (access, per_packet) {
        (Some((big, small)), Some(p)) => {
            let extra = (big - small).max(0.0);
            (
                ratio(p, p + extra),
                format!(
                    "the 1k row spent {p:.0} ns of DUT core per delivered packet at full load; one random access into the 1M row's table cost {big:.0} ns, {small:.0} ns among 1k flows' slots (lookup probe on the DUT core); measured per DUT CPU-second: {}",
                    measured_ratio.map_or("-".to_string(), |r| format!("{r:.2}"))
                ),
            )
        }
        _ => (
            None,
            "needs both flow rows' lookup probe and the 1k row's DUT core time".to_string(),
        ),
    }
}

/// The 1M flow row's pairs of full-load runs on its own vipd: the median
/// of all 1M flows over its first 1k, the pairs in its note.
fn paired_flows(rows: &[Row]) -> (Option<f64>, String) {
    let pairs = measured(rows, "flows_1000000")
        .map(|m| m.flow_pairs.as_slice())
        .unwrap_or_default();
    if pairs.is_empty() {
        return (
            None,
            "no pairs: the 1M flow row did not run, or its paired runs failed (its notes say why)"
                .into(),
        );
    }
    let ratios: Vec<f64> = pairs.iter().filter_map(|p| ratio(p.many, p.few)).collect();
    if ratios.is_empty() {
        return (None, "every pair's 1k-flow run delivered nothing".into());
    }
    let n = ratios.len();
    let (value, listed) = median(ratios);
    (
        value,
        format!(
            "delivered at the generator's full offered load, run after run on the 1M row's filled vipd: its first 1k flows and all 1M; median of {n} pairs ({listed})"
        ),
    )
}

/// IPv6 NAT over IPv4 NAT at each frame size the pairs ran at (one "not
/// run" figure without them).
fn family_targets(rows: &[Row]) -> Vec<Target> {
    let sizes: Vec<usize> = rows
        .iter()
        .filter(|r| r.family == Family::Ipv6)
        .map(|r| r.frame_size)
        .collect();
    if sizes.is_empty() {
        return vec![Target {
            name: "IPv6 nat / IPv4 nat".into(),
            goal: "report".into(),
            value: None,
            met: None,
            note: "not run".into(),
        }];
    }
    sizes
        .into_iter()
        .map(|size| {
            let id = |family| nat_family_id(Frames { family, size });
            let (v6, v4) = (id(Family::Ipv6), id(Family::Ipv4));
            let (value, note) = lower_ratio(rows, &v6, &v4);
            let cost = row_ratio(rows, &v4, &v6, |m| m.core_us_per_packet);
            Target {
                name: format!("IPv6 nat / IPv4 nat, {size}-byte frames"),
                goal: "report".into(),
                value,
                met: None,
                note: format!(
                    "{note}; per DUT core, from the core's time per packet at a fixed load (IPv4's over IPv6's): {}; the rows ran back to back, each vipd with the services of its family; frames of one size, so IPv6's carry 20 bytes less UDP payload",
                    cost.map_or("-".to_string(), |v| format!("{v:.2}"))
                ),
            }
        })
        .collect()
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
        let (flows_ratio, flows_note) = lower_ratio(&self.rows, "flows_1000000", "flows_1000");
        let (bound, bound_note) = lookup_bound(&self.rows);
        let (paired, paired_note) = paired_flows(&self.rows);
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
        let sync_row = self.rows.iter().find(|r| r.id == "sync");
        let sync = sync_row
            .and_then(Row::measured)
            .and_then(|m| m.sync.as_ref());
        let sync_missing = match sync_row.map(|r| &r.outcome) {
            Some(Outcome::Unavailable { reason }) => reason.clone(),
            Some(Outcome::Measured(_)) => "no sync figures".into(),
            None => "not run".into(),
        };
        let top_lag = sync.and_then(|s| s.lag.iter().max_by_key(|l| l.offered_cps));
        let top_rate = top_lag.map_or(0, |l| l.offered_cps);
        let sync_share_note = sync.map_or(sync_missing.clone(), |s| {
            format!(
                "worst of the lag runs ({}): connections whose record reached the backup and was right, capped by the records the backup's workers applied, over the connections the master established (ACKs it forwarded); the ones it never established are in the connection sync section",
                s.lag
                    .iter()
                    .map(|l| format!(
                        "{}/s: {} of {} established ({} created), applied {}",
                        l.offered_cps, l.matched, l.acks_forwarded, l.created, l.applied
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        });
        let compare_note = |figure: &str| {
            sync.and_then(|s| s.compare.iter().find(|c| c.figure == figure))
                .map_or(sync_missing.clone(), |c| {
                    format!(
                        "same run, back to back: {:.3} Mpps on, {:.3} Mpps off (offered {:.3} / {:.3}); the master with [sync] to a running backup against none",
                        c.on_pps / 1e6,
                        c.off_pps / 1e6,
                        c.on_offered_pps / 1e6,
                        c.off_offered_pps / 1e6
                    )
                })
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
        self.targets = [
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
                flows_ratio,
                0.7,
                &flows_note,
            ),
            Target {
                name: "1M flows / 1k flows, paired on one vipd".into(),
                goal: "report".into(),
                value: paired,
                met: None,
                note: paired_note,
            },
            Target {
                name: "1M flows / 1k flows this host allows: one memory access per packet more".into(),
                goal: "report".into(),
                value: bound,
                met: None,
                note: bound_note,
            },
        ]
        .into_iter()
        .chain(family_targets(&self.rows))
        .chain([
            target(
                "established packets kept under SYN flood",
                ">= 0.99",
                syn,
                0.99,
                &syn_note,
            ),
            target(
                "connection sync: connections on the backup, right and applied / established on the master",
                ">= 0.99",
                sync.and_then(SyncFigures::synced_share),
                0.99,
                &sync_share_note,
            ),
            Target {
                name: format!("connection sync lag p99 at {top_rate} new connections/s, ms"),
                goal: "report".into(),
                value: top_lag.and_then(|l| l.p99_ms),
                met: None,
                note: top_lag.map_or(sync_missing.clone(), |l| {
                    format!(
                        "ACK sent by the generator to the record's datagram received by the backup; p50 {}; achieved {:.0} new connections/s; per rate in the connection sync section",
                        l.p50_ms.map_or("none".into(), |v| format!("{v:.2} ms")),
                        l.achieved_cps
                    )
                }),
            },
            target(
                "vipd NAT throughput, sync on / off",
                &format!(">= {COST_GOAL}"),
                sync.and_then(|s| s.compare_ratio("nat_throughput")),
                COST_GOAL,
                &compare_note("nat_throughput"),
            ),
            target(
                "vipd new connections per second, sync on / off",
                &format!(">= {COST_GOAL}"),
                sync.and_then(|s| s.compare_ratio("new_connections")),
                COST_GOAL,
                &compare_note("new_connections"),
            ),
            Target {
                name: "packets lost per failover".into(),
                goal: "report".into(),
                value: worst.map(|e| e.lost as f64),
                met: None,
                note: failover_note,
            },
        ])
        .collect();
    }
}
