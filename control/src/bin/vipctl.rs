//! `vipctl`: operate a running vipd through its control socket.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use control::ctl::human::{self, Human};
use ctlproto::request::{self, BackendOp, Command};
use ctlproto::{reply, ClientError, REPLY_TIMEOUT};
use serde::de::DeserializeOwned;
use serde_json::Value;

#[derive(Parser)]
#[command(name = "vipctl", version, about = "Operate a running vipd node")]
struct Args {
    /// Control socket of the node.
    #[arg(long, default_value = "/run/vipd/vipd.sock")]
    socket: PathBuf,
    /// Print the raw JSON reply (for scripts).
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Node, site, services and ownership.
    Status,
    /// Services with their VIP, scheduler and forwarding mode.
    Services,
    /// Backends with health, weight, flows and the last check.
    Backends,
    /// Flows per worker, the busiest clients, or one client's flows.
    Flows {
        /// List the flows of this client address.
        #[arg(long)]
        client: Option<String>,
        /// How many of the busiest clients to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
    /// Packet, byte and drop counters per worker.
    Stats {
        /// Poll every second and print rates from the counter deltas.
        #[arg(long)]
        watch: bool,
        /// With --watch: stop after this many samples.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Change a backend at run time (until the next reload or restart).
    Backend {
        #[command(subcommand)]
        op: BackendVerb,
    },
    /// Re-read the config file: applied whole, or the running one stays.
    Reload,
    /// BGP peers and announced prefixes; or withdraw / announce a prefix.
    Bgp {
        #[command(subcommand)]
        op: Option<BgpVerb>,
    },
    /// VRRP instances: state, priority, last transitions, counters; or a
    /// handover drill.
    Vrrp {
        #[command(subcommand)]
        op: Option<VrrpVerb>,
    },
    /// Connection sync: state, peers, lag, messages and rejections.
    Sync,
    /// The node's drain state; or drain / undrain it.
    Node {
        #[command(subcommand)]
        op: Option<NodeVerb>,
    },
    /// Translate a keepalived configuration into a vipd config.
    ImportKeepalived {
        file: PathBuf,
        /// Write the vipd config here instead of standard output.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// Write the translation even when constructs could not be
        /// translated (the exit status still says so): a draft to finish
        /// by hand.
        #[arg(long)]
        draft: bool,
    },
}

#[derive(Subcommand)]
enum BgpVerb {
    /// Stop advertising a configured prefix, whatever its condition, until
    /// `bgp announce` (maintenance).
    Withdraw { prefix: String },
    /// Clear a withdrawal: the prefix is advertised while its condition holds.
    Announce { prefix: String },
}

#[derive(Subcommand)]
enum NodeVerb {
    /// Whether the node is drained, and how far it has emptied.
    Status,
    /// Withdraw or de-prefer this node's BGP announcements (`[bgp] drain`)
    /// while serving what still arrives; lasts until `node undrain`.
    Drain {
        /// Wait up to this many seconds for the node to empty, printing
        /// connections left and packets per second every second; fails if
        /// it is not empty by then (the node stays drained).
        #[arg(long, value_parser = drain_secs)]
        timeout: Option<f64>,
    },
    /// End a drain: the announcements are restored.
    Undrain,
}

#[derive(Subcommand)]
enum VrrpVerb {
    /// Step this master down, wait for a peer to take over and report the
    /// switch-over time; the node stays backup until `vrrp release`.
    Handover {
        instance: String,
        /// Then release the hold and wait for mastership to come back.
        #[arg(long)]
        back: bool,
        /// Seconds to wait for each switch-over (at most 300).
        #[arg(long, default_value_t = 10.0, value_parser = handover_secs)]
        timeout: f64,
    },
    /// Release the hold a handover left: preemption works again.
    Release { instance: String },
}

#[derive(Subcommand)]
enum BackendVerb {
    /// Add a backend (checked like the service's other backends).
    Add {
        service: String,
        address: String,
        #[arg(long, default_value_t = 1)]
        weight: u32,
    },
    /// Remove a backend; its open flows finish.
    Remove { service: String, address: String },
    /// Set a backend's weight.
    Weight {
        service: String,
        address: String,
        weight: u32,
    },
    /// Weight 0: open flows finish, no new ones.
    Drain { service: String, address: String },
    /// Offer a disabled backend to the scheduler again.
    Enable { service: String, address: String },
    /// Take a backend out of scheduling; open flows continue.
    Disable { service: String, address: String },
}

fn backend_request(op: BackendVerb) -> Command {
    let (op, service, address, weight) = match op {
        BackendVerb::Add {
            service,
            address,
            weight,
        } => (BackendOp::Add, service, address, Some(weight)),
        BackendVerb::Remove { service, address } => (BackendOp::Remove, service, address, None),
        BackendVerb::Weight {
            service,
            address,
            weight,
        } => (BackendOp::Weight, service, address, Some(weight)),
        BackendVerb::Drain { service, address } => (BackendOp::Drain, service, address, None),
        BackendVerb::Enable { service, address } => (BackendOp::Enable, service, address, None),
        BackendVerb::Disable { service, address } => (BackendOp::Disable, service, address, None),
    };
    Command::Backend {
        op,
        service,
        address,
        weight,
    }
}

/// Parses `--timeout` as the daemon would check it, so a bad value is
/// refused here with the range.
fn handover_secs(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    request::handover_secs(secs)
        .map(|_| secs)
        .map_err(|e| e.to_string())
}

/// Parses `--timeout` of `node drain` as the daemon would check it.
fn drain_secs(s: &str) -> Result<f64, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    request::drain_timeout(Some(secs))
        .map(|_| secs)
        .map_err(|e| e.to_string())
}

/// Reads a reply's result as `R` and renders it for a human.
fn readable<R: DeserializeOwned + Human>(v: Value) -> Result<String, ClientError> {
    serde_json::from_value::<R>(v)
        .map(|r| r.render())
        .map_err(ClientError::Shape)
}

/// Renders a reply's result for a human.
type Show = fn(Value) -> Result<String, ClientError>;

/// The request a verb sends, and how its reply is shown to a human.
fn request_of(verb: Verb) -> (Command, Show) {
    match verb {
        Verb::Status => (Command::Status {}, readable::<reply::Status>),
        Verb::Services => (Command::Services {}, readable::<reply::Services>),
        Verb::Backends => (Command::Backends {}, readable::<reply::Backends>),
        Verb::Flows { client, top } => (
            Command::Flows {
                client,
                top: Some(top),
            },
            readable::<reply::Flows>,
        ),
        Verb::Backend { op } => (backend_request(op), readable::<reply::BackendChange>),
        Verb::Reload => (Command::Reload {}, readable::<reply::Reload>),
        Verb::Bgp { op: None } => (Command::Bgp {}, readable::<reply::Bgp>),
        Verb::Bgp {
            op: Some(BgpVerb::Withdraw { prefix }),
        } => (
            Command::BgpWithdraw { prefix },
            readable::<reply::BgpOverride>,
        ),
        Verb::Bgp {
            op: Some(BgpVerb::Announce { prefix }),
        } => (
            Command::BgpAnnounce { prefix },
            readable::<reply::BgpOverride>,
        ),
        Verb::Vrrp { op: None } => (Command::Vrrp {}, readable::<reply::Vrrp>),
        Verb::Sync => (Command::Sync {}, readable::<reply::Sync>),
        Verb::Vrrp {
            op:
                Some(VrrpVerb::Handover {
                    instance,
                    back,
                    timeout,
                }),
        } => (
            Command::VrrpHandover {
                instance,
                back,
                timeout_s: Some(timeout),
            },
            readable::<reply::Handover>,
        ),
        Verb::Vrrp {
            op: Some(VrrpVerb::Release { instance }),
        } => (
            Command::VrrpRelease { instance },
            readable::<reply::Release>,
        ),
        Verb::Node {
            op: None | Some(NodeVerb::Status),
        } => (Command::Node {}, readable::<reply::Node>),
        Verb::Node {
            op: Some(NodeVerb::Drain { timeout }),
        } => (
            Command::NodeDrain { timeout_s: timeout },
            readable::<reply::Node>,
        ),
        Verb::Node {
            op: Some(NodeVerb::Undrain),
        } => (Command::NodeUndrain {}, readable::<reply::Node>),
        Verb::Stats { .. } | Verb::ImportKeepalived { .. } => {
            (Command::Stats {}, readable::<reply::Stats>)
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.verb {
        Verb::ImportKeepalived {
            file,
            output,
            draft,
        } => import(&file, output.as_deref(), draft),
        Verb::Stats { watch: true, count } => watch(&args.socket, args.json, count),
        Verb::Node {
            op: Some(NodeVerb::Drain {
                timeout: Some(timeout),
            }),
        } => drain_and_wait(&args.socket, args.json, timeout),
        verb => {
            let (cmd, show) = request_of(verb);
            // A handover waits up to its timeout for each switch-over.
            let within = match &cmd {
                Command::VrrpHandover {
                    timeout_s: Some(t), ..
                } => request::handover_secs(*t)
                    .map(|t| t * 2)
                    .unwrap_or_default(),
                _ => Duration::ZERO,
            } + REPLY_TIMEOUT;
            ctlproto::request_raw(&args.socket, &cmd, within)
                .and_then(|v| {
                    if args.json {
                        println!("{v}");
                    } else {
                        print!("{}", show(v)?);
                    }
                    Ok(())
                })
                .map_err(anyhow::Error::from)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vipctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn watch(socket: &std::path::Path, json_out: bool, count: Option<u64>) -> anyhow::Result<()> {
    let mut prev: Option<(Instant, reply::Stats)> = None;
    let mut samples = 0u64;
    loop {
        let now = Instant::now();
        let v: reply::Stats = ctlproto::call(socket, &Command::Stats {}, REPLY_TIMEOUT)?;
        if let Some((t, old)) = &prev {
            let rates = human::rates(old, &v, now.duration_since(*t).as_secs_f64());
            if json_out {
                println!("{}", serde_json::to_value(&rates)?);
            } else {
                print!("{}", rates.render());
            }
            samples += 1;
            if count.is_some_and(|c| samples >= c) {
                return Ok(());
            }
        }
        prev = Some((now, v));
        std::thread::sleep(Duration::from_secs(1).saturating_sub(now.elapsed()));
    }
}

/// Drains the node, then prints its progress every second until it is
/// empty or `timeout_s` has passed.
fn drain_and_wait(socket: &std::path::Path, json_out: bool, timeout_s: f64) -> anyhow::Result<()> {
    let timeout = request::drain_timeout(Some(timeout_s))?.unwrap_or_default();
    let started = Instant::now();
    let cmd = Command::NodeDrain {
        timeout_s: Some(timeout_s),
    };
    let first: reply::Node = ctlproto::call(socket, &cmd, REPLY_TIMEOUT)?;
    let show = |n: &reply::Node| -> anyhow::Result<()> {
        if json_out {
            println!("{}", serde_json::to_value(n)?);
        } else if let Some(d) = &n.drain {
            println!("{}", human::drain_line(d));
        }
        Ok(())
    };
    if !json_out {
        print!("{}", first.render());
    }
    if first.mode == "none" {
        anyhow::bail!(
            "node {} has no [bgp]: draining turns no traffic away, so waiting would only time out",
            first.node
        );
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let n: reply::Node = ctlproto::call(socket, &Command::Node {}, REPLY_TIMEOUT)?;
        show(&n)?;
        let Some(d) = n.drain else {
            anyhow::bail!(
                "node {} is no longer drained (undrained meanwhile?)",
                n.node
            );
        };
        if d.empty {
            if !json_out {
                println!("node {} is empty: it can be stopped", n.node);
            }
            return Ok(());
        }
        if started.elapsed() >= timeout {
            anyhow::bail!(
                "node {} not empty after {timeout_s} s: {} connection(s), {:.1} packets/s still; it stays drained (`vipctl node undrain` ends it)",
                n.node,
                d.connections,
                d.pps
            );
        }
    }
}

/// Translates a keepalived file. Exits 0 only when the translation is
/// complete: it loads in vipd and means what the keepalived file meant.
fn import(
    file: &std::path::Path,
    output: Option<&std::path::Path>,
    draft: bool,
) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let out = control::keepalived::import(&text, &file.display().to_string());
    for note in &out.notes {
        eprintln!("note: {note}");
    }
    for refused in &out.untranslated {
        eprintln!("{refused}");
    }
    let complete = out.is_complete();
    if complete || draft {
        match output {
            Some(path) => std::fs::write(path, &out.toml)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
            None => {
                use std::io::Write;
                // A reader that stops early (`| head`) is no error.
                let _ = std::io::stdout().lock().write_all(out.toml.as_bytes());
            }
        }
    }
    match (complete, draft) {
        (true, _) => Ok(()),
        (false, true) => anyhow::bail!(
            "{} construct(s) above not translated: the draft written does not mean what {} means until they are handled by hand",
            out.untranslated.len(),
            file.display()
        ),
        (false, false) => anyhow::bail!(
            "{} construct(s) above not translated, nothing written; handle them in the keepalived file, or write a draft to finish by hand with --draft",
            out.untranslated.len()
        ),
    }
}
