//! `[bgp]`: the speaker, its `[[bgp.peer]]` sessions and the prefixes it
//! announces (`[[bgp.announce]]`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp::Family;
use dataplane::keyword_enum;
use toml_edit::Value;

use super::bgp_families::{families, ipv6_next_hop, next_hops_missing};
use super::IPV4;
use crate::config::prefix::Prefix;
use crate::config::reader::{as_str, Ctx, Tbl};

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
    /// What `vipctl node drain` does to the announcements: keys `drain`,
    /// `drain_med`, `drain_prepend`.
    pub drain: DrainRoutes,
}

/// How a draining node turns traffic away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainRoutes {
    /// Withdraw every announcement (the default).
    Withdraw,
    /// Keep announcing with this MED, so routers prefer the other nodes.
    Med(u32),
    /// Keep announcing with this many more copies of the local AS.
    Prepend(u8),
}

impl DrainRoutes {
    pub fn as_str(self) -> &'static str {
        match self {
            DrainRoutes::Withdraw => "withdraw",
            DrainRoutes::Med(_) => "med",
            DrainRoutes::Prepend(_) => "prepend",
        }
    }
}

/// MED a draining node announces unless `drain_med` says otherwise: the
/// largest value routers still compare (RFC 4451 treats the maximum as
/// unreachable on some implementations).
const DRAIN_MED: u32 = 4_294_967_294;
/// AS copies a draining node prepends unless `drain_prepend` says otherwise.
const DRAIN_PREPEND: u8 = 3;

/// A `[[bgp.peer]]`; unset timers are inherited from `[bgp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPeer {
    /// IPv4 or IPv6: the TCP session runs over this family.
    pub address: IpAddr,
    /// ≥ 1.
    pub remote_as: u32,
    /// 0 (no keepalives) or ≥ 3.
    pub hold_time_s: u16,
    /// When given: ≥ 1 and below `hold_time_s` (if that is non-zero).
    pub keepalive_s: Option<u16>,
    pub passive: bool,
    /// Default 179.
    pub port: u16,
    /// Same family as `address`.
    pub local_address: Option<IpAddr>,
    /// Families offered in OPEN (`families = ["ipv4", "ipv6"]`); by default
    /// those of the `[[bgp.announce]]` prefixes (IPv4 alone when there are none).
    pub families: Vec<Family>,
    /// Next hop of IPv6 routes to this peer (`next_hop_v6`, a global address of
    /// ours, and `next_hop_v6_link_local` on a link shared with the peer).
    /// Required when IPv6 prefixes without their own next hop go to the peer.
    pub ipv6_next_hop: Option<bgp::Ipv6NextHop>,
    /// RFC 5082 GTSM.
    pub ttl_security: bool,
    /// TCP MD5 key, 1..=80 bytes.
    pub md5_password: Option<String>,
    /// ≥ 1.
    pub connect_retry_s: u16,
    pub max_prefixes: u32,
    pub graceful_restart: bool,
    /// `bfd = { interval_ms, multiplier }`: a BFD session to the peer whose
    /// failure takes the BGP session down at once.
    pub bfd: Option<Bfd>,
}

/// BFD toward one `[[bgp.peer]]` (RFC 5880, single hop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bfd {
    /// How often we send and can receive once Up: 10 ms to 60 s (300 ms).
    pub interval: Duration,
    /// Packets the peer may miss before it declares us down: 1..=255 (3).
    pub multiplier: u8,
}

/// A `[[bgp.announce]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Host bits are zero; contains a service VIP unless `condition` is always.
    pub prefix: Prefix,
    /// Same family as `prefix`; by default our end of the session (IPv4) or
    /// the peer's `next_hop_v6` (IPv6).
    pub next_hop: Option<IpAddr>,
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

keyword_enum!(
    /// When an announce is advertised.
    AnnounceCondition {
        /// While some VIP in the prefix is owned here and has a healthy backend.
        VipHealthy => "vip_healthy",
        /// As long as the BGP session is up.
        Always => "always",
    }
);

pub(super) fn read(cx: &mut Ctx, t: &Tbl) -> Option<Bgp> {
    t.check_keys(
        cx,
        &[
            "local_as",
            "router_id",
            "hold_time_s",
            "connect_retry_s",
            "peer",
            "announce",
            "drain",
            "drain_med",
            "drain_prepend",
        ],
    );
    let local_as = t.must(
        "local_as",
        t.num::<u32>(cx, "local_as", 1, 4_294_967_295),
        cx,
    );
    let router_id = t.must("router_id", t.parse::<Ipv4Addr>(cx, "router_id", IPV4), cx);
    if router_id == Some(Ipv4Addr::UNSPECIFIED) {
        cx.err_at(&t.field("router_id"), "the router id must not be 0.0.0.0");
    }
    let hold_time_s = hold_time(cx, t).unwrap_or(90);
    let connect_retry_s = t.num(cx, "connect_retry_s", 1, 3600).unwrap_or(5);
    let peer_tables = t.tables(cx, "peer");
    if peer_tables.is_empty() {
        t.need_entries(cx, "peer", "[bgp] needs at least one [[bgp.peer]]");
    }
    let announces: Vec<Option<Announce>> = t.each(cx, "announce", announce);
    let announced: Vec<Announce> = announces.iter().flatten().cloned().collect();
    let peers: Vec<Option<BgpPeer>> = peer_tables
        .iter()
        .map(|p| peer(cx, p, hold_time_s, connect_retry_s, &announced))
        .collect();
    for (i, p) in peers.iter().enumerate() {
        let Some(p) = p else { continue };
        if peers[..i].iter().flatten().any(|o| o.address == p.address) {
            cx.err_at(
                &format!("{}.address", peer_tables[i].path),
                format!("peer {} is listed twice", p.address),
            );
        }
    }
    let drain = drain(cx, t);
    Some(Bgp {
        local_as: local_as?,
        router_id: router_id?,
        hold_time_s,
        connect_retry_s,
        peers: peers.into_iter().collect::<Option<_>>()?,
        announces: announces.into_iter().collect::<Option<_>>()?,
        drain: drain?,
    })
}

/// `drain`, with `drain_med` only for "med" and `drain_prepend` only for
/// "prepend".
fn drain(cx: &mut Ctx, t: &Tbl) -> Option<DrainRoutes> {
    let mode = t.str(cx, "drain");
    let med: Option<u32> = t.num(cx, "drain_med", 0, 4_294_967_295);
    let prepend: Option<u8> = t.num(cx, "drain_prepend", 1, 10);
    let stray = |cx: &mut Ctx, key: &str, wanted: &str| {
        cx.err_at(
            &t.field(key),
            format!("{key} applies only with drain = \"{wanted}\"; set that or remove {key}"),
        );
    };
    let routes = match mode.as_deref() {
        None | Some("withdraw") => DrainRoutes::Withdraw,
        Some("med") => DrainRoutes::Med(med.unwrap_or(DRAIN_MED)),
        Some("prepend") => DrainRoutes::Prepend(prepend.unwrap_or(DRAIN_PREPEND)),
        Some(other) => {
            cx.err_at(
                &t.field("drain"),
                format!("`{other}` is not a drain mode: write \"withdraw\" (stop announcing), \"med\" (announce with drain_med) or \"prepend\" (announce with drain_prepend more AS copies)"),
            );
            return None;
        }
    };
    if t.has("drain_med") && !matches!(routes, DrainRoutes::Med(_)) {
        stray(cx, "drain_med", "med");
    }
    if t.has("drain_prepend") && !matches!(routes, DrainRoutes::Prepend(_)) {
        stray(cx, "drain_prepend", "prepend");
    }
    Some(routes)
}

fn hold_time(cx: &mut Ctx, t: &Tbl) -> Option<u16> {
    let h: u16 = t.num(cx, "hold_time_s", 0, 65_535)?;
    if h == 1 || h == 2 {
        cx.err_at(
            &t.field("hold_time_s"),
            format!("{h} s: a BGP hold time is 0 (no keepalives) or at least 3 seconds (RFC 4271)"),
        );
        return None;
    }
    Some(h)
}

/// How `address` and `local_address` may be written.
const IP: &str = "an IPv4 or IPv6 address such as 10.20.1.1 or 2001:db8:20::1";

fn peer(
    cx: &mut Ctx,
    t: &Tbl,
    hold_default: u16,
    retry_default: u16,
    announces: &[Announce],
) -> Option<BgpPeer> {
    t.check_keys(
        cx,
        &[
            "address",
            "remote_as",
            "hold_time_s",
            "keepalive_s",
            "passive",
            "port",
            "local_address",
            "ttl_security",
            "md5_password",
            "connect_retry_s",
            "max_prefixes",
            "graceful_restart",
            "bfd",
            "families",
            "next_hop_v6",
            "next_hop_v6_link_local",
        ],
    );
    let address = t.must("address", t.parse::<IpAddr>(cx, "address", IP), cx);
    let remote_as = t.must(
        "remote_as",
        t.num::<u32>(cx, "remote_as", 1, 4_294_967_295),
        cx,
    );
    let hold_time_s = hold_time(cx, t).unwrap_or(hold_default);
    let keepalive_s: Option<u16> = t.num(cx, "keepalive_s", 1, 21_845);
    if let Some(k) = keepalive_s.filter(|k| hold_time_s != 0 && *k >= hold_time_s) {
        cx.err_at(
            &t.field("keepalive_s"),
            format!("keepalive {k} s is not below the hold time {hold_time_s} s; a third of it is usual"),
        );
    }
    let md5_password = t.str(cx, "md5_password");
    if let Some(p) = md5_password
        .as_ref()
        .filter(|p| p.is_empty() || p.len() > 80)
    {
        cx.err_at(
            &t.field("md5_password"),
            format!("the TCP MD5 key is {} bytes; it must be 1 to 80", p.len()),
        );
    }
    let bfd = match t.table(cx, "bfd") {
        Some(b) => bfd(cx, &b).map(Some),
        None if t.has("bfd") => None,
        None => Some(None),
    };
    let local_address: Option<IpAddr> = t.parse(cx, "local_address", IP);
    if let (Some(a), Some(l)) = (address, local_address) {
        if a.is_ipv6() != l.is_ipv6() {
            cx.err_at(
                &t.field("local_address"),
                format!("peer {a}: local_address {l} is of the other address family; the session runs over the family of address, so use one of ours of that family"),
            );
        }
    }
    if let (Some(a @ IpAddr::V6(_)), Some(Some(_))) = (address, &bfd) {
        cx.err_at(
            &t.field("bfd"),
            format!(
                "peer {a}: BFD runs over IPv4 only; remove bfd from this peer or peer over IPv4"
            ),
        );
    }
    let who = address.map_or_else(|| "this peer".to_string(), |a| format!("peer {a}"));
    let ipv6_next_hop = ipv6_next_hop(cx, t, &who);
    let families = families(
        cx,
        t,
        &who,
        matches!(ipv6_next_hop, Some(Some(_))),
        announces,
    );
    if let (Some(a), Some(fams), Some(nh6)) = (address, &families, &ipv6_next_hop) {
        next_hops_missing(cx, t, a, fams, nh6.is_some(), announces);
    }
    Some(BgpPeer {
        address: address?,
        remote_as: remote_as?,
        hold_time_s,
        keepalive_s,
        passive: t.bool(cx, "passive").unwrap_or(false),
        port: t.num(cx, "port", 1, 65_535).unwrap_or(179),
        local_address,
        families: families?,
        ipv6_next_hop: ipv6_next_hop?,
        ttl_security: t.bool(cx, "ttl_security").unwrap_or(false),
        md5_password,
        connect_retry_s: t
            .num(cx, "connect_retry_s", 1, 3600)
            .unwrap_or(retry_default),
        max_prefixes: t.num(cx, "max_prefixes", 0, 4_294_967_295).unwrap_or(1000),
        graceful_restart: t.bool(cx, "graceful_restart").unwrap_or(false),
        bfd: bfd?,
    })
}

fn bfd(cx: &mut Ctx, t: &Tbl) -> Option<Bfd> {
    t.check_keys(cx, &["interval_ms", "multiplier"]);
    let interval = t.ms(cx, "interval_ms", 10, 60_000);
    let multiplier = t.num(cx, "multiplier", 1, 255);
    Some(Bfd {
        interval: if t.has("interval_ms") {
            interval?
        } else {
            Duration::from_millis(300)
        },
        multiplier: if t.has("multiplier") { multiplier? } else { 3 },
    })
}

fn announce(cx: &mut Ctx, t: &Tbl) -> Option<Announce> {
    t.check_keys(
        cx,
        &[
            "prefix",
            "next_hop",
            "communities",
            "large_communities",
            "med",
            "local_pref",
            "prepend",
            "condition",
        ],
    );
    let prefix = t.must(
        "prefix",
        t.parse::<Prefix>(cx, "prefix", "an IPv4 or IPv6 prefix"),
        cx,
    );
    let next_hop: Option<IpAddr> = t.parse(cx, "next_hop", IP);
    if let (Some(p), Some(nh)) = (prefix, next_hop) {
        if p.is_ipv6() != nh.is_ipv6() {
            cx.err_at(
                &t.field("next_hop"),
                format!("announce {p}: next_hop {nh} is of the other address family; an IPv4 prefix needs an IPv4 next hop and an IPv6 prefix an IPv6 one"),
            );
        }
    }
    if let Some(p) = prefix.filter(Prefix::has_host_bits) {
        cx.err_at(
            &t.field("prefix"),
            format!("{p} has host bits set; did you mean {}?", p.network()),
        );
    }
    let communities = t
        .list(cx, "communities", |cx, v, f, l| {
            community(cx, v, f, l, 2).and_then(|n| {
                Some((
                    u16::try_from(*n.first()?).ok()?,
                    u16::try_from(*n.get(1)?).ok()?,
                ))
            })
        })
        .unwrap_or_default();
    let large_communities = t
        .list(cx, "large_communities", |cx, v, f, l| {
            community(cx, v, f, l, 3).and_then(|n| Some((*n.first()?, *n.get(1)?, *n.get(2)?)))
        })
        .unwrap_or_default();
    Some(Announce {
        prefix: prefix?,
        next_hop,
        communities,
        large_communities,
        med: t.num(cx, "med", 0, 4_294_967_295),
        local_pref: t.num(cx, "local_pref", 0, 4_294_967_295),
        prepend: t.num(cx, "prepend", 0, 10).unwrap_or(0),
        condition: t
            .parse(cx, "condition", "an announce condition")
            .unwrap_or(AnnounceCondition::VipHealthy),
    })
}

/// "65000:100" (parts = 2, each ≤ 65535) or "65000:1:2" (parts = 3, u32 each).
fn community(cx: &mut Ctx, v: &Value, field: &str, line: usize, parts: usize) -> Option<Vec<u32>> {
    let s = as_str(cx, v, field, line)?;
    let max = if parts == 2 {
        u32::from(u16::MAX)
    } else {
        u32::MAX
    };
    let nums: Option<Vec<u32>> = s
        .split(':')
        .map(|p| p.parse::<u32>().ok().filter(|n| *n <= max))
        .collect();
    match nums.filter(|n| n.len() == parts) {
        Some(n) => Some(n),
        None => {
            let form = if parts == 2 {
                "ASN:VALUE with numbers up to 65535, such as \"65000:100\""
            } else {
                "GLOBAL:DATA1:DATA2 with 32-bit numbers, such as \"65000:1:2\""
            };
            cx.err(
                line,
                field,
                format!("`{s}` is not a community: write {form}"),
            );
            None
        }
    }
}
