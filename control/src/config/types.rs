//! The validated, typed form of a vipd configuration file.
//!
//! Every value here has passed validation: consumers may rely on the ranges
//! and invariants documented on each field without re-checking them.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use dataplane::sched::SchedulerKind;
pub use dataplane::service::{DownAction, ForwardMode};
pub use engine::XdpMode;

pub use crate::health::{BodyDigest, QType};

/// A whole node configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub node: Node,
    pub dataplane: Dataplane,
    pub control: Control,
    pub services: Vec<Service>,
    pub vrrp: Vec<VrrpInstance>,
    pub bgp: Option<Bgp>,
}

/// `[node]`: who this node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// Defaults to `"default"`.
    pub site: String,
}

/// `[dataplane]`: AF_XDP interfaces and the per-worker resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataplane {
    /// 1..=8 unique kernel interface names.
    pub interfaces: Vec<String>,
    /// Queues per interface, 1..=64; one pinned worker per queue.
    pub queues: u16,
    /// CPU to pin each worker to; when present its length equals `queues`.
    pub cores: Option<Vec<usize>>,
    pub xdp_mode: XdpMode,
    /// Flow table entries per worker, ≥ 64.
    pub flow_capacity: usize,
    /// UMEM frames per worker, a power of two.
    pub frames_per_worker: u32,
    /// From `[dataplane.timeouts]` (keys end in `_ms`).
    pub timeouts: FlowTimeouts,
    /// Persistence (sticky source) entries per worker, ≥ 64.
    pub persistence_capacity: usize,
    /// New TCP connections to VIPs admitted per second and receive queue by
    /// the XDP program; 0 (the default) admits all.
    pub syn_rate_limit: u32,
    /// The largest SYN burst admitted at once; default a tenth of the rate,
    /// at least 64.
    pub syn_burst: u32,
    /// Established connections forwarded by the XDP program itself
    /// (default); `false` keeps every packet in the workers. `reload`
    /// switches it.
    pub fast_path: bool,
}

/// Idle timeouts of a flow entry by protocol state; all are > 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTimeouts {
    /// `tcp_embryonic_ms`, default 5 s: SYN seen, handshake not finished.
    pub tcp_embryonic: Duration,
    /// `tcp_established_ms`, default 900 s.
    pub tcp_established: Duration,
    /// `tcp_closing_ms`, default 60 s: one FIN seen.
    pub tcp_closing: Duration,
    /// `tcp_time_wait_ms`, default 10 s: both FINs seen.
    pub tcp_time_wait: Duration,
    /// `tcp_close_ms`, default 2 s: RST seen.
    pub tcp_close: Duration,
    /// `udp_ms`, default 300 s.
    pub udp: Duration,
}

impl Default for FlowTimeouts {
    fn default() -> Self {
        FlowTimeouts {
            tcp_embryonic: Duration::from_millis(5_000),
            tcp_established: Duration::from_millis(900_000),
            tcp_closing: Duration::from_millis(60_000),
            tcp_time_wait: Duration::from_millis(10_000),
            tcp_close: Duration::from_millis(2_000),
            udp: Duration::from_millis(300_000),
        }
    }
}

/// `[control]`: the operator socket and metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// Defaults to `/run/vipd/vipd.sock`; shorter than 108 bytes (sun_path).
    pub socket: PathBuf,
    pub socket_group: Option<String>,
    /// Given as an octal string such as `"0660"`; ≤ 0o777.
    pub socket_mode: u32,
    pub metrics: Option<SocketAddr>,
}

/// One `[[service]]`: a VIP:port that vipd balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Unique among services.
    pub name: String,
    pub vip: Ipv4Addr,
    /// ≥ 1; (vip, port, protocol) is unique among services.
    pub port: u16,
    /// Defaults to tcp.
    pub protocol: Protocol,
    /// Defaults to wlc, as in LVS.
    pub scheduler: SchedulerKind,
    /// `locality_expiration_s` (lblc and lblcr only), 1..=604800 s, default
    /// one day as in LVS: how long a destination address keeps its servers
    /// unused, and how long an lblcr server set stays unchanged before it
    /// loses its most loaded member.
    pub locality_expiration: Duration,
    /// Defaults to nat.
    pub forward: ForwardMode,
    /// Non-empty exactly when `forward` is full NAT.
    pub snat: Vec<Ipv4Addr>,
    pub sorry_server: Option<SocketAddrV4>,
    /// `persistence_s`, 1..=86400 s.
    pub persistence_timeout: Option<Duration>,
    /// A prime, default 65537.
    pub maglev_table_size: u32,
    pub on_backend_down: DownAction,
    /// 1..=256 backends (key `backend`), addresses unique.
    pub backends: Vec<Backend>,
}

/// One `[[service.backend]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub address: SocketAddrV4,
    /// 0..=65535, default 1; 0 drains the backend (no new flows).
    pub weight: u32,
    pub check: Check,
}

/// A backend's health check; `check` defaults to a TCP connect check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub kind: CheckKind,
    /// `interval_ms`, default 1000, ≥ 10 ms.
    pub interval: Duration,
    /// `timeout_ms`, default 1000, ≥ 1 ms.
    pub timeout: Duration,
    /// Consecutive successes to become healthy, ≥ 1 (default 2).
    pub rise: u32,
    /// Consecutive failures to become unhealthy, ≥ 1 (default 3).
    pub fall: u32,
}

impl Default for Check {
    fn default() -> Self {
        Check {
            kind: CheckKind::Tcp { port: None },
            interval: Duration::from_millis(1000),
            timeout: Duration::from_millis(1000),
            rise: 2,
            fall: 3,
        }
    }
}

/// What a health check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// `kind = "none"`: the backend is always healthy.
    None,
    /// TCP connect to the backend (or to `port` on the backend's address).
    Tcp { port: Option<u16> },
    /// HTTP GET `path`; healthy when the status (and body digest, if given) match.
    Http {
        /// Starts with '/'; default "/".
        path: String,
        expect_status: u16,
        /// From `digest`: MD5 (32 hex characters) or SHA-256 (64).
        digest: Option<BodyDigest>,
        host: Option<String>,
        port: Option<u16>,
    },
    /// The HTTP check over TLS.
    Https {
        path: String,
        expect_status: u16,
        digest: Option<BodyDigest>,
        host: Option<String>,
        port: Option<u16>,
        /// Server name sent in the handshake; none by default (the backend
        /// is an address).
        sni: Option<String>,
        /// Set exactly when `verify = true`: the certificate must chain to
        /// one in this PEM file and name `sni` (or the backend's address).
        ca_file: Option<PathBuf>,
    },
    /// One datagram out (`payload` or `payload_hex`); healthy when a reply
    /// comes back, holding `expect` (or `expect_hex`) if given.
    Udp {
        port: Option<u16>,
        payload: Vec<u8>,
        expect: Option<Vec<u8>>,
    },
    /// A DNS query for `name` (`qtype` A, the default, or AAAA); healthy on
    /// NOERROR with at least one such record.
    Dns {
        port: Option<u16>,
        name: String,
        qtype: QType,
    },
    /// ICMP echo to the backend's address.
    Ping,
    /// Run a command; exit status 0 means healthy.
    Script {
        /// Program and arguments, non-empty.
        command: Vec<String>,
    },
}

impl CheckKind {
    /// The `kind` keyword that selects this check.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckKind::None => "none",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Http { .. } => "http",
            CheckKind::Https { .. } => "https",
            CheckKind::Udp { .. } => "udp",
            CheckKind::Dns { .. } => "dns",
            CheckKind::Ping => "ping",
            CheckKind::Script { .. } => "script",
        }
    }
}

/// One `[[vrrp]]` instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    /// Unique among instances.
    pub name: String,
    /// One of `dataplane.interfaces`.
    pub interface: String,
    /// 1..=255, unique per interface.
    pub vrid: u8,
    /// 2 or 3 (default 3).
    pub version: u8,
    /// 1..=255, default 100.
    pub priority: u8,
    /// `advert_interval_ms`: v3 a multiple of 10 ms in 10..=40950; v2 whole seconds 1..=255.
    pub advert_interval: Duration,
    pub preempt: bool,
    /// `preempt_delay_ms`, default 0, ≤ 1000 s.
    pub preempt_delay: Duration,
    /// 1..=20 addresses; each VIP belongs to at most one instance.
    pub vips: Vec<Ipv4Addr>,
    pub unicast_peers: Vec<Ipv4Addr>,
    pub unicast_src: Option<Ipv4Addr>,
    /// VRRPv2 simple-text password, ≤ 8 bytes, sent in clear in every
    /// advert: it only keeps instances of different deployments apart (and
    /// matches keepalived's `auth_pass`); it protects nothing.
    pub auth_pass: Option<String>,
    pub garp_count: u32,
    /// `garp_interval_ms`, default 20: the old master may still send a
    /// frame or two from the virtual MAC before it hears the new master,
    /// pulling switches back to it; the next announcement should follow
    /// soon rather than an advert interval later.
    pub garp_interval: Duration,
    /// `garp_refresh_ms`: repeat gratuitous ARP this often while master
    /// (default 10 s; `None` when set to 0).
    pub garp_refresh: Option<Duration>,
    /// Key `track_script`.
    pub track_scripts: Vec<TrackScript>,
    /// Key `track_interface`.
    pub track_interfaces: Vec<TrackInterface>,
    /// Command run on every state change.
    pub notify: Option<String>,
}

/// A `[[vrrp.track_script]]`: a command whose result adjusts the priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    pub name: String,
    /// Program and arguments, non-empty.
    pub command: Vec<String>,
    /// `interval_ms`, default 1000, ≥ 10 ms.
    pub interval: Duration,
    /// `timeout_ms`, default 1000, ≥ 1 ms.
    pub timeout: Duration,
    /// -253..=253, default 0: added to the priority while the script fails
    /// (negative) or succeeds (positive); 0 means failure → FAULT.
    pub weight: i32,
    /// ≥ 1, default 1.
    pub fall: u32,
    /// ≥ 1, default 1.
    pub rise: u32,
}

/// A `[[vrrp.track_interface]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    pub name: String,
    /// -253..=253 added to the priority while the link is down; `None`
    /// means link down puts the instance in FAULT.
    pub weight: Option<i32>,
}

/// `[bgp]`: the speaker that announces this site's prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bgp {
    /// ≥ 1.
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Default for peers that do not set it (90; 0 or ≥ 3).
    pub hold_time_s: u16,
    /// Default for peers that do not set it (5, ≥ 1).
    pub connect_retry_s: u16,
    /// Key `peer`, at least one, addresses unique.
    pub peers: Vec<BgpPeer>,
    /// Key `announce`.
    pub announces: Vec<Announce>,
}

/// A `[[bgp.peer]]`; unset timers are inherited from `[bgp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPeer {
    pub address: Ipv4Addr,
    /// ≥ 1.
    pub remote_as: u32,
    /// 0 (no keepalives) or ≥ 3.
    pub hold_time_s: u16,
    /// When given: ≥ 1 and below `hold_time_s` (if that is non-zero).
    pub keepalive_s: Option<u16>,
    pub passive: bool,
    /// Default 179.
    pub port: u16,
    pub local_address: Option<Ipv4Addr>,
    /// RFC 5082 GTSM.
    pub ttl_security: bool,
    /// TCP MD5 key, 1..=80 bytes.
    pub md5_password: Option<String>,
    /// ≥ 1.
    pub connect_retry_s: u16,
    pub max_prefixes: u32,
    pub graceful_restart: bool,
}

/// A `[[bgp.announce]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Host bits are zero; contains a service VIP unless `condition` is always.
    pub prefix: Prefix,
    pub next_hop: Option<Ipv4Addr>,
    /// "ASN:VALUE" strings.
    pub communities: Vec<(u16, u16)>,
    /// "GLOBAL:DATA1:DATA2" strings.
    pub large_communities: Vec<(u32, u32, u32)>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// Times to prepend the local AS, 0..=10.
    pub prepend: u8,
    pub condition: AnnounceCondition,
}

/// An IPv4 prefix such as `10.0.0.0/25`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: Ipv4Addr,
    /// 0..=32.
    pub len: u8,
}

impl Prefix {
    /// The network mask as a host-order integer.
    pub fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32u32.saturating_sub(u32::from(self.len)))
            .unwrap_or(0)
    }

    /// The prefix with its host bits cleared.
    pub fn network(&self) -> Prefix {
        Prefix {
            addr: Ipv4Addr::from(u32::from(self.addr) & self.mask()),
            len: self.len,
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    pub fn has_host_bits(&self) -> bool {
        u32::from(self.addr) & !self.mask() != 0
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = String;

    /// Accepts host bits (validation reports them with a suggestion).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| "expected ADDRESS/LENGTH such as 10.0.0.0/24".to_string())?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| format!("prefix length `{len}` is not a number in 0..=32"))?;
        Ok(Prefix { addr, len })
    }
}

use dataplane::keyword_enum;

keyword_enum!(Protocol { Tcp => "tcp", Udp => "udp" });
keyword_enum!(
    /// When an announce is advertised.
    AnnounceCondition {
        /// While some VIP in the prefix is owned here and has a healthy backend.
        VipHealthy => "vip_healthy",
        /// As long as the BGP session is up.
        Always => "always",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parse_display_and_membership() {
        let p: Prefix = "10.0.0.0/25".parse().expect("valid prefix");
        assert_eq!(p.to_string(), "10.0.0.0/25");
        assert!(p.contains(Ipv4Addr::new(10, 0, 0, 127)));
        assert!(!p.contains(Ipv4Addr::new(10, 0, 0, 128)));
        assert!(!p.has_host_bits());

        let h: Prefix = "10.0.0.1/25".parse().expect("host bits parse");
        assert!(h.has_host_bits());
        assert_eq!(h.network(), p);

        let all: Prefix = "0.0.0.0/0".parse().expect("default route");
        assert_eq!(all.mask(), 0);
        assert!(all.contains(Ipv4Addr::new(203, 0, 113, 9)));
        let host: Prefix = "10.0.0.7/32".parse().expect("host route");
        assert_eq!(host.mask(), u32::MAX);

        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "10.0.0.0/x", "/24"] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn keywords_round_trip() {
        for w in ForwardMode::WORDS {
            let s: ForwardMode = w.parse().expect("listed word parses");
            assert_eq!(s.as_str(), *w);
        }
        assert_eq!("fullnat".parse::<ForwardMode>(), Ok(ForwardMode::FullNat));
        let err = "wrrr".parse::<SchedulerKind>().unwrap_err().to_string();
        assert!(err.contains("rr, wrr, lc"), "{err}");
    }
}
