//! `vipbench quick|full`: runs the scenarios and writes the report.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use vipbench::{Plan, Progress};

#[derive(Parser)]
#[command(
    name = "vipbench",
    version,
    about = "pktgen-style throughput runs for vipd"
)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
    /// Directory for the report (vipbench.json, .md, .svg), vipd configs and logs.
    #[arg(long, global = true, default_value = "vipbench-report")]
    out: PathBuf,
    /// The vipd binary (default: next to this executable).
    #[arg(long, global = true)]
    vipd: Option<PathBuf>,
    /// Frame size in bytes (without FCS) of every row but the IPv4/IPv6 NAT
    /// pairs (64 and 84 bytes).
    #[arg(long, global = true)]
    frame_size: Option<usize>,
    /// Rate limit of the throughput runs in packets per second (default: none).
    #[arg(long, global = true)]
    rate: Option<u64>,
    /// Offered load of the latency phases, packets per second (0: skip).
    #[arg(long, global = true)]
    latency_pps: Option<u64>,
    /// Load at which the DUT core's time per packet is measured, packets
    /// per second (0: skip).
    #[arg(long, global = true)]
    cost_pps: Option<u64>,
    /// Failover: rate of the client's UDP stream, packets per second.
    #[arg(long, global = true)]
    failover_pps: Option<u64>,
    /// Run only these scenarios (comma-separated): ceiling, afxdp, nftables,
    /// nat, nat-workers, nat6, fullnat, dr, flows, synflood, failover,
    /// newconn-nftables, newconn-vipd, sync.
    #[arg(long, global = true, value_delimiter = ',')]
    only: Vec<String>,
    /// Core of the generator.
    #[arg(long, global = true)]
    gen_core: Option<usize>,
    /// Core of the device under test.
    #[arg(long, global = true)]
    dut_core: Option<usize>,
    /// vipd's `syn_rate_limit` in the SYN flood scenario (0: every SYN admitted).
    #[arg(long, global = true)]
    syn_rate_limit: Option<u32>,
    /// UMEM frames per worker of the AF_XDP devices under test (a power of two).
    #[arg(long, global = true)]
    frames: Option<u32>,
}

#[derive(Subcommand)]
enum Mode {
    /// Short runs of every scenario (about 3 minutes).
    Quick,
    /// Every scenario, 5 s runs, flow scaling 1k to 10M.
    Full,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut plan = match args.mode {
        Mode::Quick => Plan::quick(args.out.clone()),
        Mode::Full => Plan::full(args.out.clone()),
    };
    plan.vipd = args.vipd;
    if !args.only.is_empty() {
        let mut chosen = Vec::new();
        for name in &args.only {
            match vipbench::Scenario::from_name(name) {
                Some(s) => chosen.push(s),
                None => {
                    eprintln!(
                        "vipbench: unknown scenario `{name}`; choose from: {}",
                        vipbench::Scenario::ALL.map(|s| s.name()).join(", ")
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
        plan.scenarios = chosen;
    }
    plan.rate_pps = args.rate;
    if let Some(v) = args.frame_size {
        plan.frame_size = v;
    }
    if let Some(v) = args.latency_pps {
        plan.latency_pps = v;
    }
    if let Some(v) = args.cost_pps {
        plan.cost_pps = v;
    }
    if let Some(v) = args.failover_pps {
        plan.failover_pps = v;
    }
    if let Some(v) = args.gen_core {
        plan.gen_core = v;
    }
    if let Some(v) = args.dut_core {
        plan.dut_core = v;
    }
    if let Some(v) = args.syn_rate_limit {
        plan.syn_rate_limit = v;
    }
    if let Some(v) = args.frames {
        plan.frames_per_worker = v;
    }
    let start = Instant::now();
    let mut progress = |p: Progress| {
        eprint!(
            "\r\x1b[K[{}/{}] {:>5.1} s  {}",
            p.step,
            p.steps,
            start.elapsed().as_secs_f64(),
            p.what
        );
        let _ = std::io::stderr().flush();
    };
    let report = match vipbench::run(&plan, &mut progress) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("\nvipbench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("\r\x1b[Kdone in {:.1} s", start.elapsed().as_secs_f64());
    match report.write(&args.out) {
        Ok(files) => {
            print!("{}", report.to_markdown());
            println!(
                "\nreport: {}, {}, {}",
                files.json.display(),
                files.markdown.display(),
                files.svg.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vipbench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
