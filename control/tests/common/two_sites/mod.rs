//! The BGP tests' harness: the two-site lab's vipd and BIRD configurations,
//! the failover drill measured from the client, and the GoBGP and scripted
//! peers.

mod drill;
mod ipv6;
mod peers;

use std::net::{IpAddr, Ipv4Addr};

use ctlproto::{reply, Command};
use viplab::{Site, TwoSiteLab};

use super::{http_check, socket_path, Vipd};

pub use drill::*;
pub use ipv6::*;
pub use peers::*;

pub const PORT: u16 = 8080;
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
pub const ROUTER_AS: u32 = 4_200_000_000;
pub const SITE_A_AS: u32 = 4_200_000_001;
pub const MD5_KEY: &str = "vipd-lab-key";
/// BIRD's and vipd's hold time in this lab, seconds.
pub const HOLD_S: u64 = 3;
/// Site A's metrics listener, inside its namespace.
pub const METRICS: &str = "127.0.0.1:9100";

/// `site`'s node serving [`VIP`], with `bgp` (its `[bgp]` section).
pub fn site_config(lab: &TwoSiteLab, site: Site, bgp: &str) -> String {
    site_config_with_vip(lab, site, VIP.into(), bgp)
}

/// `site`'s node serving `vip` in NAT mode to the site's two backends, by
/// their addresses of `vip`'s family, with `bgp`.
pub fn site_config_with_vip(lab: &TwoSiteLab, site: Site, vip: IpAddr, bgp: &str) -> String {
    let role = site.role();
    let mut out = format!(
        "[node]\nname = \"{role}\"\nsite = \"{role}\"\n\n[dataplane]\ninterfaces = [\"eth0\", \"eth1\"]\nqueues = 1\n\n\
         [control]\nsocket = \"{}\"\n\n[[service]]\nname = \"web\"\nvip = \"{vip}\"\nport = {PORT}\nprotocol = \"tcp\"\n\
         scheduler = \"rr\"\nforward = \"nat\"\n",
        socket_path(lab, role).display()
    );
    for n in [1, 2] {
        let backend: std::net::SocketAddr = match vip {
            IpAddr::V4(_) => (site.backend_ip(n), PORT).into(),
            IpAddr::V6(_) => (site.backend_ip6(n), PORT).into(),
        };
        out += &format!(
            "  [[service.backend]]\n  address = \"{backend}\"\n  check = {}\n",
            http_check(100, 2, 2)
        );
    }
    out + "\n" + bgp
}

/// Site A: eBGP with a 4-octet AS, TCP MD5 (and GTSM when `gtsm`), every
/// attribute set.
pub fn site_a_bgp(gtsm: bool) -> String {
    format!(
        r#"[bgp]
local_as = {SITE_A_AS}
router_id = "{}"
  [[bgp.peer]]
  address = "{}"
  remote_as = {ROUTER_AS}
  hold_time_s = {HOLD_S}
  keepalive_s = 1
  connect_retry_s = 1
  ttl_security = {gtsm}
  md5_password = "{MD5_KEY}"
  [[bgp.announce]]
  prefix = "10.0.0.0/25"
  communities = ["65001:100"]
  large_communities = ["{SITE_A_AS}:1:2"]
  med = 50
  prepend = 2
"#,
        Site::A.uplink_ip(),
        Site::A.router_ip()
    )
}

/// Site B: iBGP in the router's own (4-octet) AS, with a local preference;
/// passive, so the router's connection goes through vipd's listener.
pub fn site_b_bgp() -> String {
    format!(
        r#"[bgp]
local_as = {ROUTER_AS}
router_id = "{}"
  [[bgp.peer]]
  address = "{}"
  remote_as = {ROUTER_AS}
  passive = true
  hold_time_s = {HOLD_S}
  keepalive_s = 1
  connect_retry_s = 1
  [[bgp.announce]]
  prefix = "10.0.0.0/24"
  local_pref = 200
  communities = ["65002:100"]
"#,
        Site::B.uplink_ip(),
        Site::B.router_ip()
    )
}

/// The router: installs what it learns into its kernel table, exports one
/// static route to site A so vipd has something to count. BIRD's default
/// error wait (60 s before restarting a failed session) would stretch every
/// repair step; the drills only need it short.
pub fn bird_config() -> String {
    format!(
        r#"router id 172.16.0.1;
log stderr all;
protocol device {{ scan time 1; }}
protocol static {{ ipv4; route 203.0.113.0/24 blackhole; }}
protocol kernel {{ ipv4 {{ export where source = RTS_BGP; }}; merge paths on; }}
protocol bgp sitea {{
  local {ra} as {ROUTER_AS};
  neighbor {na} as {SITE_A_AS};
  hold time {HOLD_S}; keepalive time 1; connect retry time 1;
  graceful restart off;
  error wait time 1, 2;
  ttl security on;
  password "{MD5_KEY}";
  ipv4 {{ import all; export where source = RTS_STATIC; }};
}}
protocol bgp siteb {{
  local {rb} as {ROUTER_AS};
  neighbor {nb} as {ROUTER_AS};
  direct;
  hold time {HOLD_S}; keepalive time 1; connect retry time 1;
  graceful restart off;
  error wait time 1, 2;
  ipv4 {{ import all; export none; gateway direct; }};
}}
"#,
        ra = Site::A.router_ip(),
        na = Site::A.uplink_ip(),
        rb = Site::B.router_ip(),
        nb = Site::B.uplink_ip(),
    )
}

pub fn established(lab: &TwoSiteLab, protocol: &str) -> bool {
    lab.birdc(&["show", "protocols", protocol]).is_ok_and(|o| {
        o.lines()
            .any(|l| l.starts_with(protocol) && l.contains("Established"))
    })
}

/// The node's BGP speaker as `vipctl bgp` shows it; empty when the node
/// does not answer or has no `[bgp]`.
pub fn bgp_status(v: &Vipd) -> reply::BgpSpeaker {
    v.call::<reply::Bgp>(Command::Bgp {})
        .ok()
        .and_then(|b| b.speaker)
        .unwrap_or_default()
}

pub fn now_ms() -> u64 {
    engine::monotonic_ms()
}
