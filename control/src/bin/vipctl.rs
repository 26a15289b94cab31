//! `vipctl`: operate a running vipd through its control socket.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};

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
    /// Packet, byte and drop counters per worker.
    Stats,
    /// Backends with health and weight.
    Backends,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cmd = match args.verb {
        Verb::Status => "status",
        Verb::Stats => "stats",
        Verb::Backends => "backends",
    };
    match control::ctl::client::request(&args.socket, json!({ "cmd": cmd })) {
        Ok(v) => {
            if args.json {
                println!("{v}");
            } else {
                print!("{}", human(cmd, &v));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vipctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn human(cmd: &str, v: &Value) -> String {
    let mut out = String::new();
    let empty = Vec::new();
    match cmd {
        "status" => {
            out += &format!(
                "node {}  site {}  up {}s  workers {}\n",
                s(&v["node"]),
                s(&v["site"]),
                s(&v["uptime_s"]),
                s(&v["workers"])
            );
            out += &format!(
                "{:<16} {:<21} {:<6} {:>8}\n",
                "SERVICE", "VIP", "OWNED", "HEALTHY"
            );
            for svc in v["services"].as_array().unwrap_or(&empty) {
                let vip = format!("{}:{}", s(&svc["vip"]), s(&svc["port"]));
                let healthy = format!("{}/{}", s(&svc["healthy"]), s(&svc["backends"]));
                out += &format!(
                    "{:<16} {:<21} {:<6} {:>8}\n",
                    s(&svc["name"]),
                    vip,
                    s(&svc["owned"]),
                    healthy
                );
            }
        }
        "stats" => {
            out += &format!(
                "{:<7} {:>12} {:>12} {:>10} {:>10}\n",
                "WORKER", "RX", "TX", "HANDOFF", "DROPS"
            );
            for c in v["cores"].as_array().unwrap_or(&empty) {
                let drops: u64 = c["drops"]
                    .as_object()
                    .map(|m| m.values().filter_map(Value::as_u64).sum())
                    .unwrap_or(0);
                out += &format!(
                    "{:<7} {:>12} {:>12} {:>10} {:>10}\n",
                    s(&c["worker"]),
                    s(&c["rx_packets"]),
                    s(&c["tx_packets"]),
                    s(&c["handoff_out"]),
                    drops
                );
            }
            if let Some(drops) = v["drops"].as_object() {
                for (reason, n) in drops.iter().filter(|(_, n)| n.as_u64().unwrap_or(0) > 0) {
                    out += &format!("  drop {reason:<24} {}\n", s(n));
                }
            }
        }
        _ => {
            out += &format!(
                "{:<16} {:<21} {:>6} {:<8} {}\n",
                "SERVICE", "BACKEND", "WEIGHT", "HEALTH", "LAST CHECK"
            );
            for b in v["backends"].as_array().unwrap_or(&empty) {
                let health = if b["healthy"].as_bool().unwrap_or(false) {
                    "up"
                } else {
                    "down"
                };
                out += &format!(
                    "{:<16} {:<21} {:>6} {:<8} {}\n",
                    s(&b["service"]),
                    s(&b["address"]),
                    s(&b["weight"]),
                    health,
                    s(&b["last_check"]["detail"])
                );
            }
        }
    }
    out
}
