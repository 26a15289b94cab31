//! vipd configuration text for the lab's LB nodes.

use std::net::{IpAddr, SocketAddr};

use viplab::Lab;

use super::socket_path;

pub const SERVICE_PORT: u16 = 8080;

/// A service block for the config, with one backend per lab backend.
pub struct ServiceConf<'a> {
    /// Backends are the lab's addresses of the VIP's family.
    pub vip: IpAddr,
    pub port: u16,
    pub scheduler: &'a str,
    pub forward: &'a str,
    pub weights: Vec<u32>,
    pub check: String,
    pub extra: String,
}

/// One round-robin service on `vip` with one HTTP-checked backend.
pub fn single_service(vip: impl Into<IpAddr>, forward: &str) -> ServiceConf<'_> {
    ServiceConf {
        vip: vip.into(),
        port: SERVICE_PORT,
        scheduler: "rr",
        forward,
        weights: vec![1],
        check: http_check(200, 1, 2),
        extra: String::new(),
    }
}

pub fn http_check(interval_ms: u64, rise: u32, fall: u32) -> String {
    format!(
        r#"{{ kind = "http", path = "/", expect_status = 200, interval_ms = {interval_ms}, timeout_ms = 500, rise = {rise}, fall = {fall} }}"#
    )
}

pub fn node_config(
    lab: &Lab,
    role: &str,
    queues: u16,
    extra_dataplane: &str,
    services: &[ServiceConf],
) -> String {
    let mut out = format!(
        "[node]\nname = \"{role}\"\nsite = \"test\"\n\n[dataplane]\ninterfaces = [\"eth0\", \"eth1\"]\nqueues = {queues}\n{extra_dataplane}\n\n[control]\nsocket = \"{}\"\n\n",
        socket_path(lab, role).display()
    );
    for (i, s) in services.iter().enumerate() {
        out += &format!(
            "[[service]]\nname = \"svc{i}\"\nvip = \"{}\"\nport = {}\nprotocol = \"tcp\"\nscheduler = \"{}\"\nforward = \"{}\"\n{}\n",
            s.vip, s.port, s.scheduler, s.forward, s.extra
        );
        for (b, w) in s.weights.iter().enumerate() {
            out += &format!(
                "  [[service.backend]]\n  address = \"{}\"\n  weight = {w}\n  check = {}\n",
                backend_addr(lab, b + 1, s.vip, s.port),
                s.check
            );
        }
        out += "\n";
    }
    out
}

/// Backend `i`'s address of `vip`'s family, at `port`.
pub fn backend_addr(lab: &Lab, i: usize, vip: IpAddr, port: u16) -> SocketAddr {
    match vip {
        IpAddr::V4(_) => SocketAddr::new(lab.backend_ip(i).into(), port),
        IpAddr::V6(_) => SocketAddr::new(lab.backend_ip6(i).into(), port),
    }
}
