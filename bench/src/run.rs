//! Running the scenarios: one topology, one generator thread pinned to the
//! generator core, one sink; each scenario puts a different device under
//! test (DUT) into the middle namespace and measures it the same way.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use aya::maps::{MapData, RingBuf};
use dataplane::counters::SocketStats;
use dataplane::engine::{Engine, EngineConfig, ForwardHandler, XdpMode};

use crate::bpf::{Ceiling, Expect, Expected, GenConfig, GenCounts, Generator, Sink};
use crate::cpu;
use crate::failover;
use crate::frame::{FrameSpec, Proto, Template};
use crate::rate::{interval_ns, per_second};
use crate::report::{KeyPair, Latency, Measured, Outcome, Report, Row, LOSS_FREE_LOSS};
use viplab::netns;

use crate::topo::{self, backend_ip, Topo, BACKENDS, EST_BASE, FLOW_BASE, SNAT_IP, VIP, VIP_PORT};

/// vipd's forwarding modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    Nat,
    FullNat,
    Dr,
}

impl Forward {
    pub fn name(self) -> &'static str {
        match self {
            Forward::Nat => "nat",
            Forward::FullNat => "fullnat",
            Forward::Dr => "dr",
        }
    }
}

/// The scenarios of one run, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// 1: native XDP redirect veth→veth (the machine's ceiling).
    Ceiling,
    /// 2: raw AF_XDP forward, no load-balancing logic.
    AfXdp,
    /// 3: nftables DNAT with conntrack.
    Nftables,
    /// 4: the vipd binary in one forwarding mode (established flows in
    /// the XDP fast path, vipd's default).
    Vipd(Forward),
    /// 4: vipd NAT with `fast_path = false`: every packet through a worker.
    VipdWorkers,
    /// 5: vipd NAT over the plan's flow counts.
    FlowScaling,
    /// 6: SYN flood at full rate with established flows riding along.
    SynFlood,
    /// 7: failover under load.
    Failover,
    /// 8: every packet opens a connection, in nftables (conntrack) or vipd.
    NewConns(NewConnDut),
}

/// The two DUTs of the new-connection rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewConnDut {
    Nftables,
    Vipd,
}

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 12] = [
        Scenario::Ceiling,
        Scenario::AfXdp,
        Scenario::Nftables,
        Scenario::Vipd(Forward::Nat),
        Scenario::VipdWorkers,
        Scenario::Vipd(Forward::FullNat),
        Scenario::Vipd(Forward::Dr),
        Scenario::FlowScaling,
        Scenario::SynFlood,
        Scenario::Failover,
        Scenario::NewConns(NewConnDut::Nftables),
        Scenario::NewConns(NewConnDut::Vipd),
    ];

    /// The name `--only` takes.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Ceiling => "ceiling",
            Scenario::AfXdp => "afxdp",
            Scenario::Nftables => "nftables",
            Scenario::Vipd(m) => m.name(),
            Scenario::VipdWorkers => "nat-workers",
            Scenario::FlowScaling => "flows",
            Scenario::SynFlood => "synflood",
            Scenario::Failover => "failover",
            Scenario::NewConns(NewConnDut::Nftables) => "newconn-nftables",
            Scenario::NewConns(NewConnDut::Vipd) => "newconn-vipd",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What to run and how long.
#[derive(Clone, Debug)]
pub struct Plan {
    /// "quick" or "full", for the report.
    pub mode: String,
    pub scenarios: Vec<Scenario>,
    /// Measured time of each throughput run.
    pub duration: Duration,
    /// Full-rate time before measuring (fills flow tables).
    pub warmup: Duration,
    /// Offered load and length of the latency phase (0 pps: none).
    pub latency_pps: u64,
    pub latency_duration: Duration,
    /// Load of the core-time phase (0 pps: none): low enough that neither
    /// DUT is overloaded, so each slice is loss-free.
    pub cost_pps: u64,
    /// Rate limit of the throughput runs (None: as fast as the generator goes).
    pub rate_pps: Option<u64>,
    pub frame_size: usize,
    /// Flows of the throughput scenarios.
    pub flows: u32,
    /// Flow counts of the scaling scenario.
    pub flow_points: Vec<u32>,
    /// Distinct flows of the new-connection rows: more than the packets a
    /// row sends, so every packet opens one.
    pub new_conn_flows: u32,
    /// Established flows and their share (1 in `est_every`) in the SYN flood.
    pub est_flows: u32,
    pub est_every: u32,
    /// vipd's `syn_rate_limit` in the SYN flood (0: off).
    pub syn_rate_limit: u32,
    /// UMEM frames per worker of every AF_XDP DUT (raw forward and vipd);
    /// the rings get a quarter each.
    pub frames_per_worker: u32,
    /// Length and number of the probes of the loss-free rate search.
    pub search_probe: Duration,
    pub search_steps: u32,
    /// Paired runs of raw AF_XDP forward and vipd NAT behind the NAT/raw
    /// figure (its median): one pair is noise on a shared machine.
    pub pairs: u32,
    pub gen_core: usize,
    pub dut_core: usize,
    pub batch: u32,
    /// Failover: rate of the client's UDP stream and how long it runs on
    /// after the new node or site answers, per event.
    pub failover_pps: u64,
    pub failover_after: Duration,
    /// The vipd binary (None: next to this executable).
    pub vipd: Option<PathBuf>,
    /// Where vipd configs and logs go.
    pub work_dir: PathBuf,
}

impl Plan {
    fn base(mode: &str, work_dir: PathBuf) -> Plan {
        Plan {
            mode: mode.into(),
            scenarios: Scenario::ALL.to_vec(),
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            latency_pps: 100_000,
            latency_duration: Duration::from_secs(2),
            cost_pps: 100_000,
            rate_pps: None,
            frame_size: 64,
            flows: 1000,
            flow_points: vec![1_000, 10_000, 100_000, 1_000_000, 10_000_000],
            new_conn_flows: 8_000_000,
            est_flows: 1000,
            est_every: 20,
            syn_rate_limit: 100_000,
            frames_per_worker: 4096,
            search_probe: Duration::from_secs(1),
            search_steps: 8,
            pairs: 5,
            gen_core: 0,
            dut_core: 1,
            batch: 64,
            failover_pps: 20_000,
            failover_after: Duration::from_secs(2),
            vipd: None,
            work_dir,
        }
    }

    /// Every scenario, 5 s runs, flows 1k to 10M.
    pub fn full(work_dir: PathBuf) -> Plan {
        Plan::base("full", work_dir)
    }

    /// Every scenario with short runs and two flow points: under 2 minutes.
    pub fn quick(work_dir: PathBuf) -> Plan {
        Plan {
            duration: Duration::from_millis(1500),
            warmup: Duration::from_millis(300),
            latency_duration: Duration::from_millis(500),
            search_probe: Duration::from_millis(400),
            search_steps: 7,
            pairs: 1,
            flow_points: vec![1_000, 1_000_000],
            new_conn_flows: 3_000_000,
            failover_after: Duration::from_millis(500),
            ..Plan::base("quick", work_dir)
        }
    }
}

/// Progress of a run, for a progress line.
pub struct Progress<'a> {
    pub step: usize,
    pub steps: usize,
    pub what: &'a str,
}

const PINNING: &str =
    "generator (live-frames test run) on the generator core; dut0's receive NAPI runs \
    threaded and is pinned to the DUT core, and so are the DUT's workers (AF_XDP engine, vipd \
    `cores`); the DUT's transmit into the sink and the sink's XDP counting run where the DUT \
    transmits, i.e. also on the DUT core. The generator never shares its core with a busy-polling \
    worker, which avoids the same-core livelock.";
const FAILOVER_PINNING: &str =
    " Failover (scenario 7) runs on its own labs with nothing pinned: the vipd nodes, BIRD, \
    the client's stream and the echo servers float over every core.";
const CPU_METHOD: &str =
    "DUT core busy time = user+nice+system+irq+softirq deltas of that core in \
    /proc/stat over the measured window (includes the sink's XDP counting, identical in every \
    scenario, and any other load on that core); packets per CPU-second = delivered / busy seconds. \
    DUT threads = utime+stime of the vipd process or the engine's worker threads plus dut0's NAPI \
    kthread (/proc/PID/stat).";

/// What one probe run sent and what reached the sink.
struct Probe {
    sent: u64,
    delivered: u64,
    elapsed: Duration,
}

impl Probe {
    /// At most [`LOSS_FREE_LOSS`] of the frames sent were lost.
    fn lossless(&self) -> bool {
        self.delivered as f64 >= self.sent as f64 * (1.0 - LOSS_FREE_LOSS)
    }
}

/// Slices of the core-time phase (each `search_probe` long).
const COST_SLICES: usize = 5;
/// Share of the asked load a core-time slice must reach to count.
const COST_REACHED: f64 = 0.7;

/// Rate at which a flow-scaling row first sends its flows: below what the
/// DUT forwards here, so few are lost before they enter the table.
const FILL_PPS: u64 = 200_000;
/// Share of a row's flows vipd must track before the row is measured.
const FILL_SHARE: f64 = 0.95;

/// What the sink must see of every frame a scenario's DUT delivers: the
/// rows that translate addresses send to a backend (from the full-NAT
/// address under full NAT); direct routing keeps the VIP and sends to the
/// backend's MAC, the sink's.
fn expectation(s: Scenario, sink_mac: [u8; 6]) -> Expect {
    let (lo, hi) = (backend_ip(0), backend_ip(BACKENDS - 1));
    let to = match s {
        Scenario::Ceiling | Scenario::AfXdp | Scenario::Failover => Expected::Any,
        Scenario::Nftables
        | Scenario::Vipd(Forward::Nat)
        | Scenario::VipdWorkers
        | Scenario::FlowScaling
        | Scenario::SynFlood
        | Scenario::NewConns(_) => Expected::ToBackends { lo, hi },
        Scenario::Vipd(Forward::FullNat) => Expected::ToBackendsFrom {
            lo,
            hi,
            from: SNAT_IP,
        },
        Scenario::Vipd(Forward::Dr) => Expected::ToMac {
            vip: VIP,
            mac: sink_mac,
        },
    };
    Expect {
        to,
        kernel: matches!(
            s,
            Scenario::Nftables | Scenario::NewConns(NewConnDut::Nftables)
        ),
    }
}

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
        let mut run = |s| bench.scenario(s, plan.flows, &mut quiet).ok();
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
    let steps: Vec<(Scenario, Option<u32>)> = plan
        .scenarios
        .iter()
        .flat_map(|&s| match s {
            Scenario::FlowScaling => plan.flow_points.iter().map(|&f| (s, Some(f))).collect(),
            _ => vec![(s, None)],
        })
        .collect();
    let mut rows = Vec::new();
    for (i, &(scenario, flows)) in steps.iter().enumerate() {
        let (id, number, label, row_flows) = describe(scenario, flows, plan);
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
        let outcome = match bench.scenario(scenario, row_flows, &mut event) {
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
            }
        ),
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

fn describe(s: Scenario, flows: Option<u32>, plan: &Plan) -> (String, u8, String, u32) {
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
    }
}

struct GenJob {
    cfg: GenConfig,
    template: Template,
    pps: Option<u64>,
    duration: Duration,
}

/// The generator's thread: in the generator namespace, pinned to its core.
struct GenThread {
    jobs: Option<mpsc::Sender<GenJob>>,
    done: mpsc::Receiver<Result<(GenCounts, Duration)>>,
    handle: Option<JoinHandle<()>>,
}

impl GenThread {
    fn start(ns: &str, core: usize, ifindex: u32, batch: u32) -> Result<GenThread> {
        let (jobs, job_rx) = mpsc::channel::<GenJob>();
        let (done_tx, done) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel::<Result<()>>();
        let ns = ns.to_string();
        let handle = std::thread::Builder::new()
            .name("vipbench-gen".into())
            .spawn(move || {
                let setup = || -> Result<Generator> {
                    netns::enter(&ns)?;
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        bail!("cannot pin the generator to core {core}");
                    }
                    Generator::load()
                };
                let mut gen = match setup() {
                    Ok(g) => {
                        let _ = ready_tx.send(Ok(()));
                        g
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in job_rx {
                    let result = (|| {
                        gen.configure(&GenConfig {
                            interval_ns: interval_ns(job.pps),
                            ..job.cfg
                        })?;
                        let before = gen.counts()?;
                        let elapsed = gen.run(ifindex, &job.template, batch, job.duration)?;
                        let after = gen.counts()?;
                        Ok((
                            GenCounts {
                                sent: after.sent.saturating_sub(before.sent),
                                sent_est: after.sent_est.saturating_sub(before.sent_est),
                                bad_template: after
                                    .bad_template
                                    .saturating_sub(before.bad_template),
                            },
                            elapsed,
                        ))
                    })();
                    if done_tx.send(result).is_err() {
                        return;
                    }
                }
            })
            .context("starting the generator thread")?;
        ready
            .recv()
            .map_err(|_| anyhow!("the generator thread died while starting"))??;
        Ok(GenThread {
            jobs: Some(jobs),
            done,
            handle: Some(handle),
        })
    }

    fn run(&self, job: GenJob) -> Result<(GenCounts, Duration)> {
        self.jobs
            .as_ref()
            .ok_or_else(|| anyhow!("generator stopped"))?
            .send(job)
            .map_err(|_| anyhow!("the generator thread is gone"))?;
        self.done
            .recv()
            .map_err(|_| anyhow!("the generator thread is gone"))?
    }
}

impl Drop for GenThread {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The device under test of one scenario; dropping it removes it.
enum Dut {
    // The programs and sockets stay attached while these are held.
    Ceiling { _attached: Ceiling },
    Engine { engine: Engine },
    Nftables { ns: String },
    Vipd { child: Child, log: PathBuf },
}

impl Dut {
    /// utime+stime of the DUT's own threads, if it has any.
    fn thread_time(&self, napi: &[u32]) -> Option<Duration> {
        let napi: Duration = napi
            .iter()
            .filter_map(|&p| cpu::task_time(p, None).ok())
            .sum();
        match self {
            Dut::Ceiling { .. } | Dut::Nftables { .. } => Some(napi),
            Dut::Engine { .. } => {
                let me = std::process::id();
                let workers: Duration = cpu::own_threads("vipd-worker")
                    .into_iter()
                    .filter_map(|t| cpu::task_time(me, Some(t)).ok())
                    .sum();
                Some(workers + napi)
            }
            Dut::Vipd { child, .. } => cpu::task_time(child.id(), None).ok().map(|t| t + napi),
        }
    }

    /// Fails with vipd's log when the daemon has exited.
    fn check_alive(&mut self) -> Result<()> {
        if let Dut::Vipd { child, log } = self {
            if let Some(status) = child.try_wait()? {
                bail!("vipd exited ({status}): {}", log_tail(log));
            }
        }
        Ok(())
    }
}

impl Drop for Dut {
    fn drop(&mut self) {
        match self {
            Dut::Nftables { ns } => {
                let _ = netns::exec_ok(ns, &["nft", "delete", "table", "ip", "vipbench"]);
                let _ = netns::exec_ok(ns, &["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
            }
            Dut::Vipd { child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Dut::Ceiling { .. } | Dut::Engine { .. } => {}
        }
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join(" / ");
    format!("last lines of {}: {tail}", path.display())
}

struct Bench<'p> {
    plan: &'p Plan,
    sink: Sink,
    latency: RingBuf<MapData>,
    gen: GenThread,
    /// The ceiling row's loss-free rate (its delivered rate if it found
    /// none), once measured: the SYN flood's rate and twice the latency
    /// phase's.
    ceiling: Option<f64>,
    // Dropped last: the namespaces go after everything attached in them.
    topo: Topo,
}

impl<'p> Bench<'p> {
    fn up(plan: &'p Plan) -> Result<Bench<'p>> {
        let topo = Topo::up(&viplab::unique_name("bench"))?;
        let sink_if = topo.sink.clone();
        let mut sink = netns::in_ns(topo.sink_ns(), move || {
            Sink::attach(sink_if.ifindex, sink_if.name)
        })?;
        let latency = sink
            .take_latency()
            .ok_or_else(|| anyhow!("sink ring buffer missing"))?;
        let gen = GenThread::start(topo.gen_ns(), plan.gen_core, topo.gen.ifindex, plan.batch)?;
        Ok(Bench {
            plan,
            sink,
            latency,
            gen,
            ceiling: None,
            topo,
        })
    }

    fn template(&self, proto: Proto) -> Result<Template> {
        FrameSpec {
            size: self.plan.frame_size,
            proto,
            dst_mac: self.topo.dut_in.mac,
            src_mac: self.topo.gen.mac,
            dst_ip: VIP,
            dst_port: VIP_PORT,
        }
        .build()
        .map_err(|e| anyhow!(e))
    }

    fn gen_config(&self, t: &Template, src_base: Ipv4Addr, flows: u32, stamp: bool) -> GenConfig {
        GenConfig {
            dst_mac: self.topo.dut_in.mac,
            src_mac: self.topo.gen.mac,
            src_base,
            flows: flows.max(1),
            ports_per_ip: 50_000,
            port_base: 10_000,
            est_base: EST_BASE,
            est_flows: 0,
            est_every: 0,
            stamp,
            tmpl_flags: t.tcp_flags_word,
            tmpl_csum: t.l4_csum,
            interval_ns: 0,
            dst_ip: t.dst_ip,
            dst_port: t.dst_port,
            ttl: t.ttl,
        }
    }

    /// Runs one scenario; `progress` hears about its parts (failover events).
    fn scenario(
        &mut self,
        s: Scenario,
        flows: u32,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Measured> {
        let w = self.plan.warmup;
        self.sink.expect(&expectation(s, self.topo.sink.mac))?;
        match s {
            Scenario::Ceiling => {
                let (dut_in, out) = (self.topo.dut_in.clone(), self.topo.dut_out.ifindex);
                let c = netns::in_ns(self.topo.dut_ns(), move || {
                    Ceiling::attach((dut_in.ifindex, dut_in.name), out)
                })?;
                // Its loss-free rate is what any DUT can be offered here
                // without veth refusing frames: the SYN flood's rate.
                let m = self.udp(Dut::Ceiling { _attached: c }, flows, w, true)?;
                self.ceiling = Some(m.loss_free_pps.unwrap_or(m.delivered_pps));
                Ok(m)
            }
            Scenario::AfXdp => {
                let dut = self.afxdp()?;
                self.udp(dut, flows, w, true)
            }
            Scenario::Nftables => {
                let dut = self.nftables()?;
                self.udp(dut, flows, w, false)
            }
            Scenario::Vipd(mode) => {
                let dut = self.vipd(mode, flows, 0, true)?;
                self.udp(dut, flows, w, true)
            }
            Scenario::VipdWorkers => {
                let dut = self.vipd(Forward::Nat, flows, 0, false)?;
                self.udp(dut, flows, w, true)
            }
            Scenario::NewConns(which) => self.new_connections(which, flows),
            Scenario::FlowScaling => {
                let mut dut = self.vipd(Forward::Nat, flows, 0, true)?;
                let tracked = self.fill_flows(&mut dut, flows)?;
                let mut m = self.udp(dut, flows, w, true)?;
                m.notes.push(format!(
                    "{tracked} flows in vipd's tables when the run began"
                ));
                Ok(m)
            }
            Scenario::SynFlood => self.synflood(flows),
            Scenario::Failover => failover::run(
                &failover::Settings {
                    vipd: self.vipd_path()?,
                    pps: self.plan.failover_pps,
                    after: self.plan.failover_after,
                    work_dir: self.plan.work_dir.clone(),
                },
                progress,
            ),
        }
    }

    fn afxdp(&self) -> Result<Dut> {
        let t = &self.topo;
        let handler = ForwardHandler::new(
            vec![1, 0],
            vec![t.dut_in.mac, t.dut_out.mac],
            vec![t.gen.mac, t.sink.mac],
        );
        let cfg = EngineConfig {
            interfaces: vec![t.dut_in.name.into(), t.dut_out.name.into()],
            queues: 1,
            cores: Some(vec![self.plan.dut_core]),
            xdp_mode: XdpMode::Native,
            frames_per_worker: self.plan.frames_per_worker,
            ..EngineConfig::default()
        };
        let engine = netns::in_ns(t.dut_ns(), move || {
            let engine = Engine::start(&cfg, move |_, _| handler.clone())
                .context("starting the AF_XDP engine")?;
            engine
                .steering()
                .set_vips(&[VIP])
                .context("steering the VIP to the engine")?;
            Ok(engine)
        })?;
        Ok(Dut::Engine { engine })
    }

    fn nftables(&self) -> Result<Dut> {
        let ns = self.topo.dut_ns().to_string();
        let map: Vec<String> = (0..BACKENDS)
            .map(|i| format!("{i} : {}", backend_ip(i)))
            .collect();
        let ruleset = format!(
            "table ip vipbench {{\n chain pre {{\n  type nat hook prerouting priority dstnat; policy accept;\n  \
             ip daddr {VIP} meta l4proto {{ tcp, udp }} th dport {VIP_PORT} dnat to numgen inc mod {BACKENDS} map {{ {} }}\n }}\n}}\n",
            map.join(", ")
        );
        let file = self.plan.work_dir.join("nftables.conf");
        std::fs::write(&file, ruleset).with_context(|| format!("writing {}", file.display()))?;
        let dut = Dut::Nftables { ns: ns.clone() };
        netns::exec_ok(&ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
        netns::exec_ok(&ns, &["nft", "-f", &file.to_string_lossy()])
            .context("loading the nftables DNAT ruleset (is nftables installed?)")?;
        Ok(dut)
    }

    fn vipd_path(&self) -> Result<PathBuf> {
        if let Some(p) = &self.plan.vipd {
            return Ok(p.clone());
        }
        let exe = std::env::current_exe().context("locating this executable")?;
        let dirs = [exe.parent(), exe.parent().and_then(Path::parent)];
        let found = dirs
            .into_iter()
            .flatten()
            .map(|d| d.join("vipd"))
            .find(|p| p.is_file());
        found.ok_or_else(|| {
                anyhow!(
                    "no vipd binary next to {}: build it (cargo build --release -p vipd) or pass --vipd PATH",
                    exe.display()
                )
            })
    }

    /// Starts vipd in `mode` with room for `flows`; `syn_rate_limit` and
    /// `fast_path` as in its config (0: every SYN admitted).
    fn vipd(&self, mode: Forward, flows: u32, syn_rate_limit: u32, fast_path: bool) -> Result<Dut> {
        let vipd = self.vipd_path()?;
        let dir = &self.plan.work_dir;
        let conf = dir.join(format!("vipd-{}.toml", mode.name()));
        let sock = self.vipd_socket();
        let capacity = (u64::from(flows) * 5 / 4).clamp(65_536, 12_500_000);
        let mut text = format!(
            "[node]\nname = \"bench\"\nsite = \"bench\"\n\n[dataplane]\ninterfaces = [\"{}\", \"{}\"]\n\
             queues = 1\ncores = [{}]\nxdp_mode = \"native\"\nflow_capacity = {capacity}\n\
             syn_rate_limit = {syn_rate_limit}\nframes_per_worker = {}\nfast_path = {fast_path}\n\n\
             [control]\nsocket = \"{}\"\n",
            self.topo.dut_in.name,
            self.topo.dut_out.name,
            self.plan.dut_core,
            self.plan.frames_per_worker,
            sock.display()
        );
        for proto in ["udp", "tcp"] {
            text += &format!(
                "\n[[service]]\nname = \"bench-{proto}\"\nvip = \"{VIP}\"\nport = {VIP_PORT}\n\
                 protocol = \"{proto}\"\nscheduler = \"rr\"\nforward = \"{}\"\n",
                mode.name()
            );
            if mode == Forward::FullNat {
                text += &format!("snat = [\"{SNAT_IP}\"]\n");
            }
            for i in 0..BACKENDS {
                text += &format!(
                    "\n  [[service.backend]]\n  address = \"{}:{VIP_PORT}\"\n  check = {{ kind = \"none\" }}\n",
                    backend_ip(i)
                );
            }
        }
        std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
        let log = dir.join(format!("vipd-{}.log", mode.name()));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new("ip")
            .args(["netns", "exec", self.topo.dut_ns()])
            .arg(&vipd)
            .arg("--config")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", vipd.display()))?;
        Ok(Dut::Vipd { child, log })
    }

    fn pin_dut(&self) -> Result<Vec<u32>> {
        topo::pin_napi(self.topo.dut_in.name, self.plan.dut_core)
    }

    /// Sends a trickle until the sink verifies a frame (the DUT is up and
    /// has resolved its next hops), or fails after `deadline`.
    fn await_delivery(
        &self,
        dut: &mut Dut,
        cfg: &GenConfig,
        t: &Template,
        deadline: Duration,
    ) -> Result<()> {
        let start = Instant::now();
        // Verified frames only: anything else reaching the sink (a probe
        // frame vipd sends out of each port at start, say) proves nothing.
        let before = self.sink.counts()?.verified;
        loop {
            dut.check_alive()?;
            self.gen.run(GenJob {
                cfg: cfg.clone(),
                template: t.clone(),
                pps: Some(20_000),
                duration: Duration::from_millis(100),
            })?;
            if self.sink.counts()?.verified > before {
                return Ok(());
            }
            if start.elapsed() > deadline {
                bail!("the DUT delivered nothing to the sink within {deadline:?}");
            }
        }
    }

    /// Full-rate throughput of UDP flows, the loss-free rate if `search`,
    /// then latency at the plan's load.
    fn udp(
        &mut self,
        mut dut: Dut,
        flows: u32,
        warmup: Duration,
        search: bool,
    ) -> Result<Measured> {
        let t = self.template(Proto::Udp)?;
        let cfg = self.gen_config(&t, FLOW_BASE, flows, false);
        let mut m = self.throughput(&mut dut, &cfg, &t, warmup, self.plan.rate_pps)?;
        match &dut {
            Dut::Vipd { .. } => m.notes.extend(self.vipd_drops()),
            Dut::Engine { engine } => {
                let lost = ring_losses(engine.counters().sockets());
                if !lost.is_empty() {
                    m.notes.push(format!("engine lost: {}", lost.join(", ")));
                }
            }
            Dut::Ceiling { .. } | Dut::Nftables { .. } => {}
        }
        if search {
            m.loss_free_pps = self.loss_free_rate(&cfg, &t, m.delivered_pps)?;
            if m.loss_free_pps.is_none() {
                m.notes.push(format!(
                    "no probe rate was loss-free (at most {:.1} % lost)",
                    LOSS_FREE_LOSS * 100.0
                ));
            }
            dut.check_alive()?;
        }
        if self.plan.cost_pps > 0 {
            let (cost, note) = self.core_time(&cfg, &t)?;
            m.core_us_per_packet = cost;
            m.notes.push(note);
        }
        if self.plan.latency_pps > 0 {
            let stamped = GenConfig {
                stamp: true,
                ..cfg.clone()
            };
            match self.latency(&stamped, &t) {
                Ok(l) => m.latency = Some(l),
                Err(e) => m.notes.push(format!("latency: {e:#}")),
            }
        }
        dut.check_alive()?;
        Ok(m)
    }

    /// RFC 2544 style: the highest rate the DUT forwards losing at most
    /// [`LOSS_FREE_LOSS`], searched from `start` (grow or shrink until a
    /// probe passes and one fails, then halve the gap). A rate fails only
    /// when a second probe at it fails too: on a shared machine a single
    /// probe can lose frames to a neighbour's burst. The rate reported is
    /// what the generator achieved, not what it was asked for.
    fn loss_free_rate(&self, cfg: &GenConfig, t: &Template, start: f64) -> Result<Option<f64>> {
        let probe = |pps: f64| -> Result<Option<f64>> {
            let run = self.probe(cfg, t, pps as u64)?;
            Ok((run.sent > 0 && run.lossless()).then(|| per_second(run.sent, run.elapsed)))
        };
        let (mut pass, mut fail) = (None::<f64>, None::<f64>);
        let mut rate = start.max(10_000.0);
        for _ in 0..self.plan.search_steps {
            let outcome = match probe(rate)? {
                None => probe(rate)?,
                passed => passed,
            };
            match outcome {
                Some(achieved) => pass = Some(pass.map_or(achieved, |p: f64| p.max(achieved))),
                None => fail = Some(fail.map_or(rate, |f: f64| f.min(rate))),
            }
            rate = match (pass, fail) {
                (Some(p), Some(f)) if p < f => (p + f) / 2.0,
                (Some(p), Some(_)) => p,
                (Some(p), None) => p * 1.5,
                (None, Some(f)) => f * 0.6,
                (None, None) => rate,
            };
        }
        Ok(pass)
    }

    /// One probe-length run at `pps`, counted at the sink (frames still in
    /// the DUT's rings are given 20 ms to arrive).
    fn probe(&self, cfg: &GenConfig, t: &Template, pps: u64) -> Result<Probe> {
        let before = self.sink.counts()?;
        let (sent, elapsed) = self.gen.run(GenJob {
            cfg: cfg.clone(),
            template: t.clone(),
            pps: Some(pps),
            duration: self.plan.search_probe,
        })?;
        std::thread::sleep(Duration::from_millis(20));
        let got = self.sink.counts()?.since(&before);
        Ok(Probe {
            sent: sent.sent,
            delivered: got.verified.min(sent.sent),
            elapsed,
        })
    }

    /// DUT core busy time per delivered packet at the plan's `cost_pps`:
    /// the median over [`COST_SLICES`] slices, of those that reached the
    /// load and lost nothing (a slice the host disturbed says nothing about
    /// the DUT). Returns the figure and a note listing the slices.
    fn core_time(&self, cfg: &GenConfig, t: &Template) -> Result<(Option<f64>, String)> {
        let pps = self.plan.cost_pps;
        let core = self.plan.dut_core;
        let mut kept = Vec::new();
        for _ in 0..COST_SLICES {
            let busy0 = cpu::core_busy(core)?;
            let run = self.probe(cfg, t, pps)?;
            let busy = cpu::core_busy(core)?.saturating_sub(busy0).as_secs_f64();
            let reached = per_second(run.sent, run.elapsed) >= pps as f64 * COST_REACHED;
            if reached && run.lossless() && run.delivered > 0 {
                kept.push(busy * 1e6 / run.delivered as f64);
            }
        }
        kept.sort_by(f64::total_cmp);
        let listed: Vec<String> = kept.iter().map(|c| format!("{c:.2}")).collect();
        let note = format!(
            "DUT core time per packet at {} kpps: {} of {COST_SLICES} slices reached the load without loss ({} us)",
            pps / 1000,
            kept.len(),
            listed.join(", ")
        );
        Ok((kept.get(kept.len() / 2).copied(), note))
    }

    /// A measured run at `pps` (None: as fast as the generator goes).
    fn throughput(
        &self,
        dut: &mut Dut,
        cfg: &GenConfig,
        t: &Template,
        warmup: Duration,
        pps: Option<u64>,
    ) -> Result<Measured> {
        let napi = self.pin_dut()?;
        self.await_delivery(dut, cfg, t, Duration::from_secs(20))?;
        let mut notes = Vec::new();
        if napi.is_empty() {
            notes.push(format!(
                "{} has no threaded NAPI thread to pin: its receive path ran on the generator's core",
                self.topo.dut_in.name
            ));
        }
        if !warmup.is_zero() {
            self.gen.run(GenJob {
                cfg: cfg.clone(),
                template: t.clone(),
                pps,
                duration: warmup,
            })?;
        }
        let core = self.plan.dut_core;
        let (sink0, busy0, threads0, refused0) = (
            self.sink.counts()?,
            cpu::core_busy(core)?,
            dut.thread_time(&napi),
            self.topo.refused_before_dut(),
        );
        let (sent, elapsed) = self.gen.run(GenJob {
            cfg: cfg.clone(),
            template: t.clone(),
            pps,
            duration: self.plan.duration,
        })?;
        // Frames still in the DUT's rings count as delivered in this run.
        std::thread::sleep(Duration::from_millis(20));
        let (sink1, busy1, threads1, refused1) = (
            self.sink.counts()?,
            cpu::core_busy(core)?,
            dut.thread_time(&napi),
            self.topo.refused_before_dut(),
        );
        if sent.bad_template > 0 {
            bail!(
                "the generator rejected its frame template {} times",
                sent.bad_template
            );
        }
        let got = sink1.since(&sink0);
        let busy = busy1.saturating_sub(busy0).as_secs_f64();
        let delivered = got.verified.min(sent.sent);
        if got.malformed > 0 {
            notes.push(format!(
                "{} of the frames delivered had a wrong checksum or address and were not counted",
                got.malformed
            ));
        }
        let refused = match (refused0, refused1) {
            (Ok(a), Ok(b)) => Some(b.saturating_sub(a)),
            (Err(e), _) | (_, Err(e)) => {
                notes.push(format!("veth counters unreadable: {e:#}"));
                None
            }
        };
        if let Some(n) = refused.filter(|&n| n > 0) {
            notes.push(format!(
                "veth refused {:.1} % of the frames sent before the DUT saw them (its ring was full)",
                100.0 * n as f64 / sent.sent.max(1) as f64
            ));
        }
        Ok(Measured {
            seconds: elapsed.as_secs_f64(),
            sent: sent.sent,
            delivered,
            verified: got.verified,
            malformed: got.malformed,
            offered_pps: per_second(sent.sent, elapsed),
            delivered_pps: per_second(delivered, elapsed),
            dut_core_busy_s: busy,
            pps_per_cpu_s: (busy > 0.0).then(|| delivered as f64 / busy),
            dut_threads_s: threads0
                .zip(threads1)
                .map(|(a, b)| b.saturating_sub(a).as_secs_f64()),
            established_share: (sent.sent_est > 0)
                .then(|| got.tcp_est.min(sent.sent_est) as f64 / sent.sent_est as f64),
            refused_before_dut: refused,
            notes,
            ..Measured::default()
        })
    }

    fn drain_latency(&mut self, hist: Option<&mut hdrhistogram::Histogram<u64>>) -> u64 {
        let mut n = 0;
        let mut hist = hist;
        while let Some(item) = self.latency.next() {
            if let (Some(h), Ok(b)) = (hist.as_deref_mut(), <[u8; 8]>::try_from(&item[..])) {
                let _ = h.record(u64::from_ne_bytes(b).max(1));
                n += 1;
            }
        }
        n
    }

    /// Latency at half the ceiling's rate once that is known (the
    /// plan's `latency_pps` before).
    fn latency(&mut self, cfg: &GenConfig, t: &Template) -> Result<Latency> {
        let pps = self
            .ceiling
            .map_or(self.plan.latency_pps, |c| (c / 2.0) as u64);
        let secs = self.plan.latency_duration.as_secs_f64();
        // About 20 000 samples per phase: the ring buffer holds them all.
        let every = ((pps as f64 * secs / 20_000.0) as u32).max(1);
        self.drain_latency(None);
        self.sink.set_sampling(every)?;
        let run = self.gen.run(GenJob {
            cfg: cfg.clone(),
            template: t.clone(),
            pps: Some(pps),
            duration: self.plan.latency_duration,
        });
        std::thread::sleep(Duration::from_millis(20));
        self.sink.set_sampling(0)?;
        let (sent, elapsed) = run?;
        let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
            .context("latency histogram")?;
        let samples = self.drain_latency(Some(&mut hist));
        if samples == 0 {
            bail!("no latency samples arrived at {pps} pps");
        }
        let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        Ok(Latency {
            offered_pps: pps,
            achieved_pps: per_second(sent.sent, elapsed),
            samples,
            p50_us: us(0.5),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: hist.max() as f64 / 1000.0,
        })
    }

    /// Opens the established flows (one SYN each, a few times), then floods
    /// SYNs from `flows` sources with every `est_every`-th packet an ACK of
    /// an established flow; reports the share of those delivered.
    fn synflood(&mut self, flows: u32) -> Result<Measured> {
        let mut dut = self.vipd(Forward::Nat, flows, self.plan.syn_rate_limit, true)?;
        let t = self.template(Proto::TcpSyn)?;
        let est = self.plan.est_flows.max(1);
        let open = self.gen_config(&t, EST_BASE, est, false);
        self.await_delivery(&mut dut, &open, &t, Duration::from_secs(20))?;
        self.gen.run(GenJob {
            cfg: open,
            template: t.clone(),
            pps: Some(50_000),
            duration: Duration::from_secs_f64(f64::from(est) * 3.0 / 50_000.0),
        })?;
        let flood = GenConfig {
            est_flows: est,
            est_every: self.plan.est_every.max(2),
            ..self.gen_config(&t, FLOW_BASE, flows, false)
        };
        // At the rate any DUT can be offered here without veth refusing
        // frames before it: a flood above it measures the veth ring.
        let pps = self.ceiling.map(|c| c as u64).or(self.plan.rate_pps);
        let mut m = self.throughput(&mut dut, &flood, &t, self.plan.warmup, pps)?;
        match pps {
            Some(p) => m.notes.push(format!(
                "offered at {:.2} Mpps, the ceiling row's loss-free rate",
                p as f64 / 1e6
            )),
            None => m
                .notes
                .push("offered at the generator's full rate: no ceiling row ran".into()),
        }
        dut.check_alive()?;
        m.notes.extend(self.vipd_drops());
        Ok(m)
    }

    /// Every packet opens a connection: `flows` distinct sources, more
    /// than the row sends, and no warm-up (it would use them up). The
    /// delivered rate is new connections per second.
    fn new_connections(&mut self, which: NewConnDut, flows: u32) -> Result<Measured> {
        let mut dut = match which {
            NewConnDut::Nftables => self.nftables()?,
            NewConnDut::Vipd => self.vipd(Forward::Nat, flows, 0, true)?,
        };
        let t = self.template(Proto::Udp)?;
        let cfg = self.gen_config(&t, FLOW_BASE, flows, false);
        let mut m = self.throughput(&mut dut, &cfg, &t, Duration::ZERO, self.plan.rate_pps)?;
        if m.sent >= u64::from(flows) {
            m.notes.push(format!(
                "{} packets for {flows} flows: the later ones met flows already open",
                m.sent
            ));
        }
        match which {
            NewConnDut::Nftables => {
                let ns = self.topo.dut_ns();
                let read = |f: &str| {
                    netns::exec_ok(ns, &["cat", &format!("/proc/sys/net/netfilter/{f}")])
                        .map(|s| s.trim().to_string())
                        .unwrap_or_else(|e| format!("unreadable ({e:#})"))
                };
                m.notes.push(format!(
                    "conntrack entries at the end: {} (nf_conntrack_max {})",
                    read("nf_conntrack_count"),
                    read("nf_conntrack_max")
                ));
            }
            NewConnDut::Vipd => {
                if let Ok(n) = self.vipd_flows() {
                    m.notes
                        .push(format!("{n} flows in vipd's tables at the end"));
                }
                m.notes.extend(self.vipd_drops());
            }
        }
        dut.check_alive()?;
        Ok(m)
    }

    /// Sends every flow at a rate the DUT takes until vipd's tables hold
    /// [`FILL_SHARE`] of them, so a flow-scaling row measures packets of
    /// flows vipd already tracks, not first packets. Returns how many it
    /// tracks.
    fn fill_flows(&self, dut: &mut Dut, flows: u32) -> Result<u64> {
        let t = self.template(Proto::Udp)?;
        let cfg = self.gen_config(&t, FLOW_BASE, flows, false);
        self.await_delivery(dut, &cfg, &t, Duration::from_secs(20))?;
        let want = (f64::from(flows) * FILL_SHARE) as u64;
        // Four passes over every flow at the fill rate, and some slack.
        let limit = Duration::from_secs_f64(4.0 * f64::from(flows) / FILL_PPS as f64 + 10.0);
        let start = Instant::now();
        loop {
            dut.check_alive()?;
            let tracked = self.vipd_flows()?;
            if tracked >= want {
                return Ok(tracked);
            }
            if start.elapsed() > limit {
                bail!(
                    "vipd tracks {tracked} of {flows} flows after {limit:?} of sending them at {FILL_PPS} pps: its tables did not fill"
                );
            }
            self.gen.run(GenJob {
                cfg: cfg.clone(),
                template: t.clone(),
                pps: Some(FILL_PPS),
                duration: Duration::from_millis(500),
            })?;
        }
    }

    /// The control socket of the vipd under test.
    fn vipd_socket(&self) -> PathBuf {
        self.plan.work_dir.join("vipd.sock")
    }

    /// One control request to the vipd under test.
    fn vipd_request(&self, cmd: &str, within: Duration) -> Result<serde_json::Value> {
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
    fn vipd_flows(&self) -> Result<u64> {
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
    fn vipd_drops(&self) -> Option<String> {
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
fn ring_losses(k: SocketStats) -> Vec<String> {
    [
        ("AF_XDP rx ring full", k.rx_ring_full),
        ("AF_XDP no free frame", k.rx_dropped),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{what} {n}"))
    .collect()
}
