//! Running the scenarios: one topology, one generator thread pinned to the
//! generator core, one sink; each scenario puts a different device under
//! test (DUT) into the middle namespace and measures it the same way.

mod bench;

use anyhow::{bail, Context, Result};

use crate::plan::{Family, Forward, Frames, NewConnDut, Plan, Progress, Scenario};
use crate::report::{nat_family_id, KeyPair, Outcome, Report, Row};

pub(crate) use bench::Bench;

const PINNING: &str =
    "generator (live-frames test run) on the generator core; dut0's receive NAPI runs \
    threaded and is pinned to the DUT core, and so are the DUT's workers (AF_XDP engine, vipd \
    `cores`); the DUT's transmit into the sink and the sink's XDP counting run where the DUT \
    transmits, i.e. also on the DUT core. The generator never shares its core with a busy-polling \
    worker, which avoids the same-core livelock.";
const FAILOVER_PINNING: &str =
    " Failover (scenario 7) runs on its own labs with nothing pinned: the vipd nodes, BIRD, \
    the client's stream and the echo servers float over every core.";
const SYNC_PINNING: &str =
    " Connection sync (scenario 9): the master is the vipd under test as above; the backup vipd's \
    worker is pinned to the generator core, and so is the user-space generator of its lag runs \
    (AF_PACKET, SYN then ACK per connection); both vipds' control planes (the sync tasks) float.";
const CPU_METHOD: &str =
    "DUT core busy time = user+nice+system+irq+softirq deltas of that core in \
    /proc/stat over the measured window (includes the sink's XDP counting, identical in every \
    scenario, and any other load on that core); packets per CPU-second = delivered / busy seconds. \
    DUT threads = utime+stime of the vipd process or the engine's worker threads plus dut0's NAPI \
    kthread (/proc/PID/stat).";

/// Raw AF_XDP forward and vipd NAT, pair by pair: the pair of the main
/// rows, then `plan.pairs - 1` more, back to back. A pair that fails to
/// measure is left out.
fn key_pairs(
    bench: &mut Bench,
    plan: &Plan,
    rows: &[Row],
    progress: &mut dyn FnMut(Progress),
) -> Vec<KeyPair> {
    let Some(first) = KeyPair::of_rows(rows) else {
        return Vec::new();
    };
    let mut pairs = vec![first];
    for k in 1..plan.pairs {
        progress(Progress {
            step: k as usize,
            steps: plan.pairs as usize - 1,
            what: "another raw AF_XDP / vipd NAT pair",
        });
        let mut quiet = |_: &str| {};
        let frames = Frames {
            family: Family::Ipv4,
            size: plan.frame_size,
        };
        let mut run = |s| bench.scenario(s, plan.flows, frames, &mut quiet).ok();
        if let (Some(raw), Some(nat)) = (run(Scenario::AfXdp), run(Scenario::Vipd(Forward::Nat))) {
            pairs.push(KeyPair::of(&raw, &nat));
        }
    }
    pairs
}

/// Runs the plan and returns the finished report.
pub fn run(plan: &Plan, progress: &mut dyn FnMut(Progress)) -> Result<Report> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if plan.gen_core == plan.dut_core {
        bail!(
            "the generator and the DUT need different cores (both are {})",
            plan.gen_core
        );
    }
    if plan.gen_core.max(plan.dut_core) >= cpus {
        bail!(
            "cores {} and {} requested but this machine has {cpus}",
            plan.gen_core,
            plan.dut_core
        );
    }
    std::fs::create_dir_all(&plan.work_dir)
        .with_context(|| format!("creating {}", plan.work_dir.display()))?;
    let load_before = load_average();
    let mut bench = Bench::up(plan)?;
    let ipv4 = Frames {
        family: Family::Ipv4,
        size: plan.frame_size,
    };
    // The IPv4/IPv6 pairs back to back, so the two rows of a pair meet the
    // same state of the machine.
    let steps: Vec<(Scenario, Option<u32>, Frames)> = plan
        .scenarios
        .iter()
        .flat_map(|&s| match s {
            Scenario::FlowScaling => plan
                .flow_points
                .iter()
                .map(|&f| (s, Some(f), ipv4))
                .collect(),
            Scenario::NatFamilies => plan
                .family_sizes
                .iter()
                .flat_map(|&size| {
                    [Family::Ipv4, Family::Ipv6].map(|family| (s, None, Frames { family, size }))
                })
                .collect(),
            _ => vec![(s, None, ipv4)],
        })
        .collect();
    let mut rows = Vec::new();
    for (i, &(scenario, flows, frames)) in steps.iter().enumerate() {
        let (id, number, label, row_flows) = describe(scenario, flows, frames, plan);
        progress(Progress {
            step: i + 1,
            steps: steps.len(),
            what: &label,
        });
        let mut event = |what: &str| {
            progress(Progress {
                step: i + 1,
                steps: steps.len(),
                what: &format!("{label}: {what}"),
            })
        };
        let outcome = match bench.scenario(scenario, row_flows, frames, &mut event) {
            Ok(m) => Outcome::Measured(m),
            Err(e) => Outcome::Unavailable {
                reason: format!("{e:#}"),
            },
        };
        rows.push(Row {
            id,
            scenario: number,
            label,
            flows: u64::from(row_flows),
            family: frames.family,
            frame_size: frames.size,
            outcome,
        });
    }
    let pairs = key_pairs(&mut bench, plan, &rows, progress);
    let mut report = Report {
        mode: plan.mode.clone(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        cpus,
        frame_size: plan.frame_size,
        seconds_per_run: plan.duration.as_secs_f64(),
        load_before,
        load_after: load_average(),
        pinning: format!(
            "generator core {}, DUT core {}: {PINNING}{}",
            plan.gen_core,
            plan.dut_core,
            if plan.scenarios.contains(&Scenario::Failover) {
                FAILOVER_PINNING
            } else {
                ""
            },
        ) + if plan.scenarios.contains(&Scenario::Sync) {
            SYNC_PINNING
        } else {
            ""
        },
        cpu_method: CPU_METHOD.into(),
        rows,
        key_pairs: pairs,
        targets: Vec::new(),
    };
    report.finish();
    Ok(report)
}

/// The three load averages from /proc/loadavg.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn describe(
    s: Scenario,
    flows: Option<u32>,
    frames: Frames,
    plan: &Plan,
) -> (String, u8, String, u32) {
    let f = plan.flows;
    match s {
        Scenario::Ceiling => (
            "ceiling".into(),
            1,
            "native XDP redirect (ceiling)".into(),
            f,
        ),
        Scenario::AfXdp => ("afxdp".into(), 2, "raw AF_XDP forward".into(), f),
        Scenario::Nftables => ("nftables".into(), 3, "nftables DNAT + conntrack".into(), f),
        Scenario::Vipd(m) => (
            format!("vipd_{}", m.name()),
            4,
            format!("vipd {}", m.name()),
            f,
        ),
        Scenario::NatFamilies => (
            nat_family_id(frames),
            4,
            format!(
                "vipd nat {}, {}-byte frames",
                frames.family.name(),
                frames.size
            ),
            f,
        ),
        Scenario::VipdWorkers => (
            "vipd_nat_workers".into(),
            4,
            "vipd nat (workers only)".into(),
            f,
        ),
        Scenario::FlowScaling => {
            let n = flows.unwrap_or(f);
            (format!("flows_{n}"), 5, format!("vipd nat, {n} flows"), n)
        }
        Scenario::SynFlood => (
            "synflood".into(),
            6,
            "vipd nat, SYN flood + established mix".into(),
            plan.flow_points.iter().copied().max().unwrap_or(f),
        ),
        // One UDP flow from the client.
        Scenario::Failover => ("failover".into(), 7, "failover under load".into(), 1),
        Scenario::NewConns(NewConnDut::Nftables) => (
            "newconn_nftables".into(),
            8,
            "new connections, nftables conntrack".into(),
            plan.new_conn_flows,
        ),
        Scenario::NewConns(NewConnDut::Vipd) => (
            "newconn_vipd".into(),
            8,
            "new connections, vipd nat".into(),
            plan.new_conn_flows,
        ),
        Scenario::Sync => (
            "sync".into(),
            9,
            "vipd nat with connection sync to a backup".into(),
            f,
        ),
    }
}
