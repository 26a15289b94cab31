//! The stock-network tests' harness: labs whose backends route through the
//! node, a vipd node with TCP- or un-checked services, taking turns on the
//! machine, and what to show when a transfer goes wrong.

mod iperf;
mod transfer;

use std::net::Ipv4Addr;
use std::time::Duration;

use viplab::{Gateway, Lab, LabSpec};

use super::{node_config, ServiceConf, Vipd};

pub use iperf::*;
pub use transfer::*;

/// The bulk tests compare rates on a two-core machine: each runs alone,
/// the other tests of this file share the machine with one another.
pub static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

pub fn alone() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn tcp_check() -> String {
    r#"{ kind = "tcp", interval_ms = 200, timeout_ms = 500, rise = 1, fall = 2 }"#.into()
}

pub fn no_check() -> String {
    r#"{ kind = "none" }"#.into()
}

pub fn service(
    vip: Ipv4Addr,
    port: u16,
    forward: &str,
    backends: usize,
    check: String,
) -> ServiceConf<'_> {
    ServiceConf {
        vip: vip.into(),
        port,
        scheduler: "rr",
        forward,
        weights: vec![1; backends],
        check,
        extra: if forward == "fullnat" {
            "snat = [\"10.77.1.200\"]".into()
        } else {
            String::new()
        },
    }
}

/// A lab whose backends use lb1 as their gateway (so lb1's kernel routes
/// their own traffic and the client's traffic to them).
pub fn gateway_lab(tag: &str, backends: usize, dr_vip: Option<Ipv4Addr>) -> Lab {
    Lab::up(LabSpec {
        name: viplab::unique_name(tag),
        backends,
        backend_gateway: Gateway::Lb(1),
        dr_vips: dr_vip.into_iter().collect(),
        ..LabSpec::default()
    })
    .expect("lab up")
}

pub fn start_vipd(lab: &Lab, services: &[ServiceConf], healthy: usize) -> Vipd {
    let vipd =
        Vipd::start(lab, "lb1", &node_config(lab, "lb1", 1, "", services)).expect("vipd starts");
    lab.wait_until(
        &format!("{healthy} backend(s) healthy"),
        Duration::from_secs(20),
        || vipd.healthy_backends() == healthy,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
    vipd
}

/// What a vipd node and both ends saw: for assertion messages.
pub fn evidence(lab: &Lab, vipd: &Vipd, hosts: &[&str]) -> String {
    let mut out = format!("vipd stats: {:?}\n", vipd.stats());
    for role in hosts {
        let nstat = lab
            .exec_ok(
                role,
                &[
                    "nstat",
                    "-az",
                    "TcpInCsumErrors",
                    "TcpRetransSegs",
                    "TcpExtTCPTimeouts",
                ],
            )
            .unwrap_or_else(|e| e.to_string());
        out += &format!("{role}: {nstat}");
    }
    out + &vipd.log()
}
