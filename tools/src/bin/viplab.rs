//! `viplab`: bring a vipd lab up for manual use, or remove labs.

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use std::net::Ipv4Addr;
use viplab::{Gateway, Lab, LabSpec, Side};

#[derive(Parser)]
#[command(about = "network-namespace lab for vipd (needs root)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create lab NAME and leave it running.
    Up {
        /// Lab name: lowercase letters and digits, at most 16.
        name: String,
        #[arg(long, default_value_t = 1)]
        lb_nodes: usize,
        #[arg(long, default_value_t = 3)]
        backends: usize,
        /// Queues on each LB node interface.
        #[arg(long, default_value_t = 1)]
        queues: u16,
        /// Backend HTTP port.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Direct routing: put these VIPs (comma-separated; default
        /// 10.77.0.101) on every backend's loopback.
        #[arg(long, num_args = 0.., value_delimiter = ',')]
        dr: Option<Vec<Ipv4Addr>>,
        /// Backends' default gateway: `lb` (= lb1), `lbK`, `router`, or
        /// `floating:ADDR` (a free 10.77.1.x the LB nodes' VRRP master
        /// holds).
        #[arg(long, default_value = "router")]
        gateway: String,
        /// Also start the sorry server (10.77.1.250).
        #[arg(long)]
        sorry: bool,
    },
    /// Create two-site lab NAME (a BIRD-ready router `rt`, `client`, site
    /// nodes `sitea`/`siteb` with two backends each) and leave it running.
    Sites {
        name: String,
        /// Backend HTTP port.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Run the two-site failover demo (README) with the given vipd binary.
    Demo {
        #[arg(long, default_value = "target/release/vipd")]
        vipd: std::path::PathBuf,
    },
    /// Remove lab NAME, or every lab with --all.
    Down {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Remove every lab (namespaces vl-*), e.g. after a killed test run.
        #[arg(long)]
        all: bool,
    },
}

fn parse_gateway(s: &str) -> Result<Gateway> {
    match s {
        "router" => Ok(Gateway::Router),
        "lb" => Ok(Gateway::Lb(1)),
        _ => {
            if let Some(a) = s.strip_prefix("floating:") {
                return match a.parse() {
                    Ok(a) => Ok(Gateway::Floating(a)),
                    Err(_) => bail!("--gateway {s:?}: floating:ADDR needs an IPv4 address, e.g. floating:10.77.1.1"),
                };
            }
            match s.strip_prefix("lb").and_then(|k| k.parse().ok()) {
                Some(k) => Ok(Gateway::Lb(k)),
                None => bail!("--gateway {s:?}: use lb, lbK (e.g. lb2), router or floating:ADDR"),
            }
        }
    }
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Up {
            name,
            lb_nodes,
            backends,
            queues,
            port,
            dr,
            gateway,
            sorry,
        } => {
            let dr_vips = match dr {
                Some(v) if v.is_empty() => vec![viplab::vip(1)],
                Some(v) => v,
                None => Vec::new(),
            };
            let spec = LabSpec {
                name,
                lb_nodes,
                backends,
                queues,
                backend_port: port,
                dr_vips,
                backend_gateway: parse_gateway(&gateway)?,
                sorry_server: sorry,
                ..LabSpec::default()
            };
            let lab = Lab::up(spec)?;
            print_lab(&lab);
            lab.persist();
        }
        Cmd::Demo { vipd } => viplab::demo::run(vipd)?,
        Cmd::Sites { name, port } => {
            let lab = viplab::TwoSiteLab::up(&name, port)?;
            println!("two-site lab {name} is up; namespaces:");
            for ns in lab.namespaces() {
                println!("  {ns}");
            }
            for site in [viplab::Site::A, viplab::Site::B] {
                println!(
                    "  {}: uplink {} (router {}), backends {} and {} via {}",
                    site.role(),
                    site.uplink_ip(),
                    site.router_ip(),
                    site.backend_ip(1),
                    site.backend_ip(2),
                    site.inside_ip()
                );
            }
            lab.persist();
        }
        Cmd::Down {
            name: Some(name), ..
        } => {
            if viplab::down(&name)? {
                println!("lab {name} removed");
            } else {
                println!("no lab named {name}");
            }
        }
        Cmd::Down { name: None, .. } => {
            let n = viplab::down_all(None)?;
            println!("{n} lab(s) removed");
        }
    }
    Ok(())
}

fn print_lab(lab: &Lab) {
    let spec = lab.spec();
    println!("lab {} is up", lab.name());
    println!(
        "  {:<24} brc {}/24, brb {}/24",
        lab.ns("sw"),
        lab.router_ip(Side::Client),
        lab.router_ip(Side::Backend)
    );
    println!("  {:<24} eth0 {}/24", lab.ns("client"), lab.client_ip());
    for k in 1..=spec.lb_nodes {
        let role = format!("lb{k}");
        println!(
            "  {:<24} eth0 {}/24, eth1 {}/24",
            lab.ns(&role),
            lab.lb_ip(k, Side::Client),
            lab.lb_ip(k, Side::Backend)
        );
    }
    for i in 1..=spec.backends {
        println!(
            "  {:<24} eth0 {}/24, HTTP {}",
            lab.ns(&lab.backend_name(i)),
            lab.backend_ip(i),
            lab.backend_addr(i)
        );
    }
    if spec.sorry_server {
        println!("  {:<24} HTTP {}", lab.ns("sorry"), lab.sorry_addr());
    }
    if !spec.dr_vips.is_empty() {
        let vips: Vec<String> = spec.dr_vips.iter().map(Ipv4Addr::to_string).collect();
        println!("  backends' loopback (direct routing): {}", vips.join(", "));
    }
    println!(
        "try: ip netns exec {} curl -s http://{}/",
        lab.ns("client"),
        lab.backend_addr(1)
    );
    println!("remove with: viplab down {}", lab.name());
}
