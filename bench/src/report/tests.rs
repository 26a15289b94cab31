//! The report: every row and target through JSON, Markdown and SVG.

use super::*;
use crate::plan::{Family, Frames};

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
        family: Family::Ipv4,
        frame_size: 64,
        outcome,
    }
}

/// A row of the IPv4/IPv6 NAT pairs.
fn family_row(family: Family, size: usize, outcome: Outcome) -> Row {
    let frames = Frames { family, size };
    Row {
        family,
        frame_size: size,
        ..row(&nat_family_id(frames), 4, 1000, outcome)
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
fn flow_scaling_takes_the_lower_of_the_loss_free_and_full_load_ratios() {
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
    assert_eq!(t.value, Some(0.5), "full load 0.50 is below loss-free 0.75");
    assert_note(t, &["loss-free: 0.75", "full offered load: 0.50"]);

    r.rows.retain(|row| row.id != "flows_1000000");
    r.rows
        .push(row("flows_1000000", 5, 1_000_000, flows(9e5, Some(2e5))));
    r.finish();
    let t = target_named(&r, "1M flows");
    assert_eq!(t.value, Some(0.5), "loss-free 0.50 is below full load 0.90");

    r.rows.retain(|row| row.id != "flows_1000000");
    r.rows
        .push(row("flows_1000000", 5, 1_000_000, flows(5e5, None)));
    r.finish();
    let t = target_named(&r, "1M flows");
    assert_eq!(t.value, Some(0.5));
    assert!(t.note.starts_with("no loss-free rate"), "{}", t.note);
}

#[test]
fn the_host_bound_on_flow_scaling_adds_one_access_to_the_1k_rows_cost() {
    let mut r = report();
    let flows = |per_cpu_s: f64, lookup_ns: Option<f64>| {
        Outcome::Measured(Measured {
            delivered_pps: per_cpu_s,
            pps_per_cpu_s: Some(per_cpu_s),
            lookup_ns,
            ..Measured::default()
        })
    };
    let bound = |r: &Report| target_named(r, "this host allows").clone();
    assert_eq!(bound(&r).value, None, "no probe figures, no bound");
    assert_note(&bound(&r), &["needs both flow rows' lookup probe"]);

    r.rows.retain(|row| !row.id.starts_with("flows_"));
    r.rows
        .push(row("flows_1000", 5, 1000, flows(2.5e6, Some(10.0))));
    r.rows.push(row(
        "flows_1000000",
        5,
        1_000_000,
        flows(1.25e6, Some(250.0)),
    ));
    r.finish();
    let t = bound(&r);
    assert_eq!(
        t.value,
        Some(400.0 / 640.0),
        "400 ns a packet, 240 ns more an access"
    );
    assert_eq!(t.met, None);
    assert_note(
        &t,
        &[
            "400 ns of DUT core per delivered packet at full load",
            "cost 250 ns, 10 ns among 1k",
            "CPU-second: 0.50",
        ],
    );

    // A 1M-row access no dearer than a 1k-row one bounds nothing.
    r.rows.retain(|row| row.id != "flows_1000000");
    r.rows
        .push(row("flows_1000000", 5, 1_000_000, flows(1.25e6, Some(5.0))));
    r.finish();
    assert_eq!(bound(&r).value, Some(1.0));
}

#[test]
fn paired_flow_scaling_is_the_median_of_the_1m_rows_pairs() {
    let mut r = report();
    let t = target_named(&r, "paired on one vipd");
    assert_eq!(t.value, None, "the fixture's 1M row has no pairs");
    assert_note(t, &["no pairs"]);

    let pair = |few, many| FlowPair { few, many };
    r.rows.retain(|row| row.id != "flows_1000000");
    r.rows.push(row(
        "flows_1000000",
        5,
        1_000_000,
        Outcome::Measured(Measured {
            flow_pairs: vec![
                pair(2e6, 1e6),
                pair(2e6, 1.6e6),
                pair(0.0, 1e6),
                pair(2e6, 1.2e6),
            ],
            ..Measured::default()
        }),
    ));
    r.finish();
    let t = target_named(&r, "paired on one vipd");
    // A pair whose few-flow run delivered nothing has no ratio.
    assert_eq!(t.value, Some(0.6), "median of 0.50, 0.60, 0.80");
    assert_eq!(t.met, None);
    assert_note(t, &["median of 3 pairs (0.50, 0.60, 0.80)"]);

    r.rows.retain(|row| row.id != "flows_1000000");
    r.rows.push(row(
        "flows_1000000",
        5,
        1_000_000,
        Outcome::Measured(Measured {
            flow_pairs: vec![pair(0.0, 1e6)],
            ..Measured::default()
        }),
    ));
    r.finish();
    let t = target_named(&r, "paired on one vipd");
    assert_eq!(t.value, None);
    assert_note(t, &["every pair's 1k-flow run delivered nothing"]);
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

fn sync_lag(offered: u64, created: u64, established: u64, matched: u64, applied: u64) -> SyncLag {
    SyncLag {
        offered_cps: offered,
        achieved_cps: offered as f64,
        created,
        refused_before_master: Some(0),
        acks_forwarded: established,
        matched,
        records_received: 2 * matched,
        lost: created - matched,
        not_established: created - established,
        lost_in_sync: established - matched,
        p50_ms: Some(2.5),
        p99_ms: Some(offered as f64 / 10_000.0),
        max_ms: Some(30.0),
        applied,
        backup_conns: Some(applied),
        notes: vec!["a | b".into()],
        ..SyncLag::default()
    }
}

fn sync_figures() -> SyncFigures {
    let cmp = |figure: &str, off: f64, on: f64| SyncCompare {
        figure: figure.into(),
        label: format!("{figure} label"),
        off_offered_pps: off * 2.0,
        off_pps: off,
        on_offered_pps: on * 2.0,
        on_pps: on,
        ratio: Some(on / off),
        ratios: vec![on / off],
        note: String::new(),
    };
    SyncFigures {
        lag: vec![
            sync_lag(10_000, 15_000, 15_000, 15_000, 15_000),
            // Established 40k of 75k; all on the backup, 39.6k applied.
            sync_lag(50_000, 75_000, 40_000, 40_000, 39_600),
            sync_lag(100_000, 150_000, 100_000, 100_000, 100_000),
        ],
        compare: vec![
            cmp("nat_throughput", 1e6, 0.95e6),
            cmp("new_connections", 1e5, 0.8e5),
        ],
        method: "stamps".into(),
    }
}

#[test]
fn sync_targets_read_no_when_the_scenario_did_not_run_or_failed() {
    let mut r = report();
    for name in ["sync on / off", "right and applied"] {
        let t = target_named(&r, name);
        assert_eq!((t.value, t.met), (None, Some(false)), "{name}");
        assert_eq!(t.note, "not run");
    }
    r.rows.push(row(
        "sync",
        9,
        1000,
        Outcome::Unavailable {
            reason: "no backup".into(),
        },
    ));
    r.finish();
    let t = target_named(&r, "new connections per second, sync on / off");
    assert_eq!((t.value, t.met), (None, Some(false)));
    assert_eq!(t.note, "no backup");
    let md = r.to_markdown();
    assert!(
        md.contains("| vipd NAT throughput, sync on / off | >= 0.9 | no | no | no backup |"),
        "{md}"
    );
    assert!(!md.contains("## Connection sync"));
}

#[test]
fn sync_figures_give_the_targets_and_their_own_tables() {
    let mut r = report();
    r.rows.push(row(
        "sync",
        9,
        1000,
        Outcome::Measured(Measured {
            delivered_pps: 0.95e6,
            sync: Some(sync_figures()),
            ..Measured::default()
        }),
    ));
    r.finish();
    let share = target_named(&r, "right and applied");
    assert_eq!(share.value, Some(0.99), "39.6k applied of 40k established");
    assert_eq!(share.met, Some(true));
    assert_note(
        share,
        &["50000/s: 40000 of 40000 established (75000 created), applied 39600"],
    );
    let lag = target_named(&r, "lag p99 at 100000");
    assert_eq!((lag.value, lag.met), (Some(10.0), None));
    assert_note(lag, &["p50 2.50 ms"]);
    let nat = target_named(&r, "vipd NAT throughput, sync on / off");
    assert_eq!((nat.value, nat.met), (Some(0.95), Some(true)));
    assert_note(
        nat,
        &["0.950 Mpps on, 1.000 Mpps off (offered 1.900 / 2.000)"],
    );
    let newc = target_named(&r, "new connections per second, sync on / off");
    assert_eq!(newc.met, Some(false), "0.8 is short of 0.9");

    let md = r.to_markdown();
    let section = md
        .split("## Connection sync")
        .nth(1)
        .and_then(|s| s.split("## Key figures").next())
        .expect("sync section");
    let lines: Vec<&str> = section.lines().filter(|l| l.starts_with("| ")).collect();
    // Header + 3 lag rows, header + 2 compared figures.
    assert_eq!(lines.len(), 7, "{section}");
    let (lag_rows, cmp_rows) = lines.split_at(4);
    for table in [lag_rows, cmp_rows] {
        let cells = table[0].matches('|').count();
        assert!(
            table.iter().all(|l| l.matches('|').count() == cells),
            "{section}"
        );
    }
    assert!(
        section.contains(
            "| 50000 | 50000 | 75000 | 0 | 40000 | 40000 | 80000 | 0 | 35000 / 0 | 2.50 | 5.00 | 30.00 |"
        ),
        "{section}"
    );
    assert!(
        section.contains("| 39600 / 0 / 0 | 39600 | a / b |"),
        "{section}"
    );
    assert!(section.contains("| new_connections label | 0.100 (0.200) | 0.080 (0.160) | 0.800 | median of 1 paired runs (0.800) |"), "{section}");
    let v: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
    assert_eq!(
        v["rows"][7]["outcome"]["sync"]["lag"][2]["offered_cps"],
        100_000
    );
}

#[test]
fn synced_share_is_the_worst_rate_and_never_above_one() {
    let mut f = sync_figures();
    assert_eq!(f.synced_share(), Some(0.99));
    f.lag[1].applied = 90_000;
    assert_eq!(f.synced_share(), Some(1.0));
    f.lag[2].acks_forwarded = 0;
    assert_eq!(
        f.synced_share(),
        Some(0.0),
        "nothing established: nothing synced"
    );
    f.lag.clear();
    assert_eq!(f.synced_share(), None);
    assert_eq!(sync_figures().compare_ratio("nat_throughput"), Some(0.95));
    assert_eq!(sync_figures().compare_ratio("other"), None);
}

#[test]
fn ipv6_over_ipv4_nat_is_one_figure_per_frame_size_and_reads_no_unmeasured() {
    let mut r = report();
    let t = target_named(&r, "IPv6 nat / IPv4 nat");
    assert_eq!((t.value, t.met, t.note.as_str()), (None, None, "not run"));
    assert!(r
        .to_markdown()
        .contains("| IPv6 nat / IPv4 nat | report | no | - | not run |"));

    let nat = |pps: f64, lf: Option<f64>, us: f64| {
        Outcome::Measured(Measured {
            delivered_pps: pps,
            loss_free_pps: lf,
            core_us_per_packet: Some(us),
            ..Measured::default()
        })
    };
    r.rows.extend([
        family_row(Family::Ipv4, 64, nat(1e6, Some(8e5), 8.0)),
        family_row(Family::Ipv6, 64, nat(0.9e6, Some(6e5), 10.0)),
        family_row(Family::Ipv4, 84, nat(1e6, None, 8.0)),
        family_row(
            Family::Ipv6,
            84,
            Outcome::Unavailable {
                reason: "vipd exited".into(),
            },
        ),
    ]);
    r.finish();
    let t = target_named(&r, "IPv6 nat / IPv4 nat, 64-byte frames");
    assert_eq!(
        t.value,
        Some(0.75),
        "loss-free 0.75 is below full load 0.90"
    );
    assert_note(
        t,
        &[
            "loss-free: 0.75",
            "full offered load: 0.90",
            "IPv4's over IPv6's): 0.80",
        ],
    );
    let t = target_named(&r, "IPv6 nat / IPv4 nat, 84-byte frames");
    assert_eq!((t.value, t.met), (None, None));
    assert!(!r.targets.iter().any(|t| t.name == "IPv6 nat / IPv4 nat"));
    let md = r.to_markdown();
    assert!(
        md.contains("| IPv6 nat / IPv4 nat, 84-byte frames | report | no | - |"),
        "{md}"
    );

    let json: serde_json::Value = serde_json::from_str(&r.to_json().unwrap()).unwrap();
    let v6 = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["id"] == "vipd_nat_ipv6_64")
        .expect("the IPv6 row in the JSON");
    assert_eq!(
        (&v6["family"], &v6["frame_size"]),
        (&"ipv6".into(), &64.into())
    );
    assert_eq!(json["rows"][0]["family"], "ipv4");
}
