//! `[[service]]` and its `[[service.backend]]` entries.

use std::net::{IpAddr, SocketAddr};

use ::vrrp::AddressFamily;
use std::time::Duration;

use dataplane::keyword_enum;
pub use dataplane::sched::SchedulerKind;
pub use dataplane::service::{DownAction, ForwardMode};

use super::check::{self, Check};
use super::{IP, SOCK};
use crate::config::reader::{Ctx, Tbl};

/// One `[[service]]`: a VIP:port that vipd balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Unique among services.
    pub name: String,
    /// IPv4 or IPv6; a dual-stack service is two services, one per family.
    pub vip: IpAddr,
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
    pub snat: Vec<IpAddr>,
    pub sorry_server: Option<SocketAddr>,
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
    /// Of the service VIP's family.
    pub address: SocketAddr,
    /// 0..=65535, default 1; 0 drains the backend (no new flows).
    pub weight: u32,
    pub check: Check,
}

impl Service {
    /// The VIP and port clients connect to (`[2001:db8::10]:80` for IPv6).
    pub fn endpoint(&self) -> SocketAddr {
        SocketAddr::new(self.vip, self.port)
    }
}

keyword_enum!(Protocol { Tcp => "tcp", Udp => "udp" });

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2u32;
    while u64::from(d) * u64::from(d) <= u64::from(n) {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

fn next_prime(n: u32) -> u32 {
    (n..).find(|k| is_prime(*k)).unwrap_or(n)
}

/// Why an address cannot be a VIP clients reach through a router.
fn unusable_vip(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("it is the unspecified address");
    }
    if ip.is_multicast() {
        return Some("it is a multicast address");
    }
    if ip.is_loopback() {
        return Some("it is a loopback address");
    }
    match ip {
        IpAddr::V4(a) if a.is_broadcast() => Some("it is the broadcast address"),
        IpAddr::V6(a) if ::vrrp::is_link_local(&a) => {
            Some("it is link-local, and a VIP must be reachable through routers")
        }
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => {
            Some("it is IPv4-mapped; write the IPv4 address instead")
        }
        _ => None,
    }
}

pub(super) fn read(cx: &mut Ctx, t: &Tbl) -> Option<Service> {
    t.check_keys(
        cx,
        &[
            "name",
            "vip",
            "port",
            "protocol",
            "scheduler",
            "forward",
            "snat",
            "sorry_server",
            "persistence_s",
            "maglev_table_size",
            "locality_expiration_s",
            "on_backend_down",
            "backend",
        ],
    );
    let name = t.must("name", t.str(cx, "name"), cx);
    let vip = t.must("vip", t.parse::<IpAddr>(cx, "vip", IP), cx);
    let port = t.must("port", t.num::<u16>(cx, "port", 1, 65535), cx);
    let protocol = t
        .parse(cx, "protocol", "a protocol")
        .unwrap_or(Protocol::Tcp);
    let scheduler = t
        .parse(cx, "scheduler", "a scheduler")
        .unwrap_or(SchedulerKind::Wlc);
    let forward = t
        .parse(cx, "forward", "a forwarding mode")
        .unwrap_or(ForwardMode::Nat);
    let snat: Vec<IpAddr> = t.parse_list(cx, "snat", IP).unwrap_or_default();
    match forward {
        ForwardMode::FullNat if snat.is_empty() && !t.has("snat") => cx.err(
            t.line,
            t.field("snat"),
            "forward = \"fullnat\" needs `snat`: the source addresses vipd puts on packets to backends",
        ),
        ForwardMode::FullNat if snat.is_empty() => {
            cx.err_at(&t.field("snat"), "`snat` is empty; full NAT needs at least one source address")
        }
        ForwardMode::Nat | ForwardMode::Dr if t.has("snat") => cx.err_at(
            &t.field("snat"),
            format!(
                "`snat` only applies to forward = \"fullnat\", this service uses \"{forward}\"; remove it or switch to fullnat"
            ),
        ),
        _ => {}
    }
    if let Some(vip) = vip {
        if let Some(why) = unusable_vip(vip) {
            cx.err_at(&t.field("vip"), format!("{vip} cannot be a VIP: {why}"));
        }
    }
    for (i, a) in snat.iter().enumerate() {
        if let Some(vip) = vip.filter(|v| v.is_ipv4() != a.is_ipv4()) {
            cx.err_at(
                &format!("{}[{i}]", t.field("snat")),
                format!(
                    "{a} is not of the VIP {vip}'s family; full NAT sources must be {}",
                    AddressFamily::of(&vip)
                ),
            );
        }
        if snat[..i].contains(a) {
            cx.err_at(
                &format!("{}[{i}]", t.field("snat")),
                format!("{a} is listed twice"),
            );
        }
    }
    let sorry_server = t.parse::<SocketAddr>(cx, "sorry_server", SOCK);
    let persistence_timeout = t
        .num::<u64>(cx, "persistence_s", 1, 86_400)
        .map(Duration::from_secs);
    let maglev_table_size = t
        .num::<u32>(cx, "maglev_table_size", 3, 16_777_259)
        .unwrap_or(65_537);
    if !is_prime(maglev_table_size) {
        cx.err_at(
            &t.field("maglev_table_size"),
            format!(
                "{maglev_table_size} is not prime; Maglev needs a prime table size, such as {}",
                next_prime(maglev_table_size)
            ),
        );
    }
    let locality_expiration = t
        .num::<u64>(cx, "locality_expiration_s", 1, 604_800)
        .map_or(
            Duration::from_millis(dataplane::sched::DEFAULT_EXPIRATION_MS),
            Duration::from_secs,
        );
    if t.has("locality_expiration_s")
        && !matches!(scheduler, SchedulerKind::Lblc | SchedulerKind::Lblcr)
    {
        cx.err_at(
            &t.field("locality_expiration_s"),
            format!(
                "`locality_expiration_s` only applies to scheduler = \"lblc\" or \"lblcr\", this service uses \"{scheduler}\"; remove it"
            ),
        );
    }
    let on_backend_down = t
        .parse(cx, "on_backend_down", "a down action")
        .unwrap_or(DownAction::Keep);

    let backend_tables = t.tables(cx, "backend");
    if backend_tables.is_empty() {
        t.need_entries(
            cx,
            "backend",
            "a service needs at least one [[service.backend]]",
        );
    } else if backend_tables.len() > 256 {
        cx.err_at(
            &t.field("backend"),
            format!(
                "{} backends given; a service takes at most 256",
                backend_tables.len()
            ),
        );
    }
    let backends: Vec<Option<Backend>> = backend_tables.iter().map(|b| backend(cx, b)).collect();
    for (i, b) in backends.iter().enumerate() {
        let Some(b) = b else { continue };
        let field = format!("{}.address", backend_tables[i].path);
        if let Some(vip) = vip.filter(|v| v.is_ipv4() != b.address.is_ipv4()) {
            cx.err_at(
                &field,
                format!(
                    "backend {} is not of the VIP {vip}'s family; backends must be {} (a dual-stack service is two services, one per family)",
                    b.address,
                    AddressFamily::of(&vip)
                ),
            );
        }
        if backends[..i]
            .iter()
            .flatten()
            .any(|o| o.address == b.address)
        {
            cx.err_at(
                &field,
                format!("backend {} is listed twice in this service", b.address),
            );
        }
        if forward == ForwardMode::Dr {
            if let Some(port) = port.filter(|p| *p != b.address.port()) {
                cx.err_at(
                    &field,
                    format!(
                        "port {} differs from the service port {port}: direct routing rewrites only MAC addresses, so the backend must listen on the VIP's port {port}",
                        b.address.port()
                    ),
                );
            }
        }
    }
    if let (Some(s), Some(vip)) = (sorry_server, vip) {
        if s.is_ipv4() != vip.is_ipv4() {
            cx.err_at(
                &t.field("sorry_server"),
                format!(
                    "{s} is not of the VIP {vip}'s family; the sorry server must be {}",
                    AddressFamily::of(&vip)
                ),
            );
        }
    }
    if let (ForwardMode::Dr, Some(s), Some(port)) = (forward, sorry_server, port) {
        if s.port() != port {
            cx.err_at(
                &t.field("sorry_server"),
                format!("port {} differs from the service port {port}: direct routing rewrites only MAC addresses", s.port()),
            );
        }
    }
    Some(Service {
        name: name?,
        vip: vip?,
        port: port?,
        protocol,
        scheduler,
        locality_expiration,
        forward,
        snat,
        sorry_server,
        persistence_timeout,
        maglev_table_size,
        on_backend_down,
        backends: backends.into_iter().collect::<Option<_>>()?,
    })
}

fn backend(cx: &mut Ctx, t: &Tbl) -> Option<Backend> {
    t.check_keys(cx, &["address", "weight", "check"]);
    let address = t.must("address", t.parse::<SocketAddr>(cx, "address", SOCK), cx);
    let weight = t.num(cx, "weight", 0, 65_535).unwrap_or(1);
    let check = match t.table(cx, "check") {
        Some(c) => check::read(cx, &c),
        None if t.has("check") => None,
        None => Some(Check::default()),
    };
    Some(Backend {
        address: address?,
        weight,
        check: check?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes() {
        let small: Vec<u32> = (0..30).filter(|n| is_prime(*n)).collect();
        assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65_537));
        assert!(!is_prime(65_536));
        assert_eq!(next_prime(65_536), 65_537);
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
