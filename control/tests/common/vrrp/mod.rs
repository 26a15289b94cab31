//! The VRRP tests' harness: two-node labs taking turns, vipd nodes with one
//! VRRP instance, keepalived nodes, the failover prober and the VRRP
//! sniffer.

mod failover;
mod keepalived;
mod scripts;
mod sniff;

pub use failover::*;
pub use keepalived::*;
pub use scripts::{FREEZE_WORKERS, HOSTILE};
pub use sniff::*;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ctlproto::{reply, Command};
use viplab::{Lab, LabSpec};

use super::{http_check, node_config, ServiceConf, Vipd, SERVICE_PORT};

pub const VRID: u8 = 51;
pub const VMAC: &str = "00:00:5e:00:01:33";
/// UDP port of the failover prober's echo service.
pub const PROBE_PORT: u16 = 9000;

/// Failover is measured in milliseconds on a two-core machine: a test that
/// measures it runs with no other lab of this binary up, or it would measure
/// the other lab's load. Tests that only check behaviour share the machine.
pub static TURNS: std::sync::RwLock<()> = std::sync::RwLock::new(());

pub enum Turn {
    Shared {
        _turn: std::sync::RwLockReadGuard<'static, ()>,
    },
    Alone {
        _turn: std::sync::RwLockWriteGuard<'static, ()>,
    },
}

/// A two-node lab and this test's turn; the lab is torn down before the
/// turn ends.
pub struct VrrpLab {
    pub lab: Lab,
    pub turn: Turn,
}

impl std::ops::Deref for VrrpLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

fn lab_up(tag: &str, turn: Turn, ipv6: bool) -> VrrpLab {
    let lab = Lab::up(LabSpec {
        name: viplab::unique_name(tag),
        lb_nodes: 2,
        backends: 2,
        ipv6,
        ..LabSpec::default()
    })
    .expect("lab up");
    VrrpLab { lab, turn }
}

/// A lab for a test that checks behaviour, not timing.
pub fn lab2(tag: &str) -> VrrpLab {
    let turn = TURNS.read().unwrap_or_else(|p| p.into_inner());
    lab_up(tag, Turn::Shared { _turn: turn }, false)
}

/// As [`lab2`], with IPv6 beside IPv4 on every lab interface.
pub fn lab2_dual_stack(tag: &str) -> VrrpLab {
    let turn = TURNS.read().unwrap_or_else(|p| p.into_inner());
    lab_up(tag, Turn::Shared { _turn: turn }, true)
}

/// A lab for a test that measures failover: it waits until no other lab of
/// this binary is up, and none starts until it is done.
pub fn lab2_alone(tag: &str) -> VrrpLab {
    let turn = TURNS.write().unwrap_or_else(|p| p.into_inner());
    lab_up(tag, Turn::Alone { _turn: turn }, false)
}

pub fn vip() -> Ipv4Addr {
    viplab::vip(1)
}

pub fn vip_addr() -> SocketAddrV4 {
    SocketAddrV4::new(vip(), SERVICE_PORT)
}

/// The full-NAT service on `vip` of node `k`: its own source address, so
/// either node can serve.
pub fn fullnat_service(vip: Ipv4Addr, k: usize) -> ServiceConf<'static> {
    ServiceConf {
        vip: vip.into(),
        port: SERVICE_PORT,
        scheduler: "rr",
        forward: "fullnat",
        weights: vec![1, 1],
        check: http_check(200, 1, 2),
        extra: format!("snat = [\"10.77.1.{}\"]", 200 + k),
    }
}

/// A vipd node config: full NAT (its own source address per node, so
/// either node can serve) and one VRRP instance with `vrrp_extra` keys.
pub fn vipd_config(lab: &Lab, k: usize, vrrp_extra: &str) -> String {
    let services = [fullnat_service(vip(), k)];
    let role = format!("lb{k}");
    // The prober's UDP echo service; common::node_config writes TCP only.
    let mut udp = format!(
        "[[service]]\nname = \"probe\"\nvip = \"{}\"\nport = {PROBE_PORT}\nprotocol = \"udp\"\nscheduler = \"rr\"\nforward = \"fullnat\"\nsnat = [\"10.77.1.{}\"]\n",
        vip(),
        200 + k
    );
    for b in 1..=2 {
        udp += &format!(
            "  [[service.backend]]\n  address = \"{}\"\n  check = {{ kind = \"none\" }}\n",
            SocketAddrV4::new(lab.backend_ip(b), PROBE_PORT)
        );
    }
    format!(
        "{}{udp}\n[[vrrp]]\nname = \"vi\"\ninterface = \"eth0\"\nvrid = {VRID}\nvips = [\"{}\"]\n{vrrp_extra}\n",
        node_config(lab, &role, 1, "", &services),
        vip()
    )
}

pub fn vrrp_keys(version: u8, interval_ms: u64, priority: u8) -> String {
    format!("version = {version}\nadvert_interval_ms = {interval_ms}\npriority = {priority}\n")
}

pub fn start_vipd(lab: &Lab, k: usize, vrrp_extra: &str) -> Vipd {
    let role = format!("lb{k}");
    let vipd = Vipd::start(lab, &role, &vipd_config(lab, k, vrrp_extra)).expect("vipd starts");
    lab.wait_until("backends healthy", Duration::from_secs(20), || {
        vipd.healthy_backends() == 4
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
    vipd
}

/// The one VRRP instance of a vipd node, if it answers.
pub fn vrrp_instance(vipd: &Vipd) -> Option<reply::VrrpInstance> {
    vipd.call::<reply::Vrrp>(Command::Vrrp {})
        .ok()?
        .instances
        .into_iter()
        .next()
}

/// The one VRRP instance of a vipd node; empty (no state, counters 0) when
/// it does not answer.
pub fn instance(vipd: &Vipd) -> reply::VrrpInstance {
    vrrp_instance(vipd).unwrap_or_default()
}

pub fn state(vipd: &Vipd) -> String {
    instance(vipd).state
}

/// Reads one counter of a VRRP instance.
pub type Read = fn(&reply::VrrpCounters) -> u64;

pub fn counter(vipd: &Vipd, read: Read) -> u64 {
    read(&instance(vipd).counters)
}

pub fn wait_state(lab: &Lab, vipd: &Vipd, want: &str, within: Duration) {
    lab.wait_until(&format!("vipd VRRP state {want}"), within, || {
        state(vipd) == want
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", instance(vipd), vipd.log()));
}

/// Who answers the VIP from the client, if anyone does.
pub fn server(lab: &Lab) -> Option<String> {
    lab.http_get("client", vip_addr(), Duration::from_millis(500))
        .ok()
        .map(|b| b.trim().to_string())
}

pub fn wait_server(lab: &Lab, what: &str, within: Duration, ok: impl Fn(&str) -> bool) {
    lab.wait_until(what, within, || server(lab).is_some_and(|s| ok(&s)))
        .unwrap_or_else(|e| panic!("{e}; last answer: {:?}", server(lab)));
}

pub fn is_backend(s: &str) -> bool {
    s == "be1" || s == "be2"
}

pub fn signal(vipd: &Vipd, sig: i32) {
    if let Some(pid) = vipd
        .process
        .as_ref()
        .and_then(|p| i32::try_from(p.pid()).ok())
    {
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(pid, sig) };
    }
}

pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
