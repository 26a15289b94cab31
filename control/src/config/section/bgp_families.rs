//! Address families of a `[[bgp.peer]]`: which it carries (`families`), its
//! IPv6 next hop (`next_hop_v6`, `next_hop_v6_link_local`), and the check
//! that every announce it carries has a next hop toward it.

use std::net::{IpAddr, Ipv6Addr};

use bgp::Family;

use super::bgp::Announce;
use crate::config::reader::{as_str, Ctx, Tbl};

/// Announces of the peer's families that would have no next hop toward it:
/// IPv6 ones without `next_hop_v6`, IPv4 ones on a session over IPv6 (our
/// end of it is no IPv4 next hop). Either needs `next_hop` on the announce.
pub(super) fn next_hops_missing(
    cx: &mut Ctx,
    t: &Tbl,
    address: IpAddr,
    families: &[Family],
    has_ipv6_next_hop: bool,
    announces: &[Announce],
) {
    let lacking = |ipv6: bool| -> String {
        let list: Vec<String> = announces
            .iter()
            .filter(|a| a.prefix.is_ipv6() == ipv6 && a.next_hop.is_none())
            .map(|a| a.prefix.to_string())
            .collect();
        list.join(", ")
    };
    let v6 = lacking(true);
    if families.contains(&Family::Ipv6Unicast) && !has_ipv6_next_hop && !v6.is_empty() {
        cx.err_at(
            &t.field("address"),
            format!("peer {address} carries IPv6 but has no IPv6 next hop for {v6}: set next_hop_v6 to our global IPv6 address toward it, set next_hop on those announces, or keep IPv6 off it with families = [\"ipv4\"]"),
        );
    }
    let v4 = lacking(false);
    if address.is_ipv6() && families.contains(&Family::Ipv4Unicast) && !v4.is_empty() {
        cx.err_at(
            &t.field("address"),
            format!("peer {address} is reached over IPv6, so {v4} would have no IPv4 next hop of ours: set next_hop on those announces, or keep IPv4 off this peer with families = [\"ipv6\"]"),
        );
    }
}

/// `next_hop_v6` and `next_hop_v6_link_local`; `Some(None)` when unset.
pub(super) fn ipv6_next_hop(cx: &mut Ctx, t: &Tbl, who: &str) -> Option<Option<bgp::Ipv6NextHop>> {
    const GLOBAL: &str = "a global IPv6 address such as 2001:db8:20::2";
    const LINK: &str = "a link-local IPv6 address such as fe80::2";
    let global: Option<Ipv6Addr> = t.parse(cx, "next_hop_v6", GLOBAL);
    let link_local: Option<Ipv6Addr> = t.parse(cx, "next_hop_v6_link_local", LINK);
    let is_link_local = |a: &Ipv6Addr| a.segments()[0] & 0xffc0 == 0xfe80;
    let unreadable = |key: &str, read: bool| t.has(key) && !read;
    let mut ok = !unreadable("next_hop_v6", global.is_some())
        && !unreadable("next_hop_v6_link_local", link_local.is_some());
    if let Some(g) = global
        .filter(|g| g.is_unspecified() || g.is_loopback() || g.is_multicast() || is_link_local(g))
    {
        cx.err_at(
            &t.field("next_hop_v6"),
            format!("{who}: next_hop_v6 {g} must be a global unicast address of ours; a link-local one goes in next_hop_v6_link_local"),
        );
        ok = false;
    }
    if let Some(l) = link_local.filter(|l| !is_link_local(l)) {
        cx.err_at(
            &t.field("next_hop_v6_link_local"),
            format!("{who}: next_hop_v6_link_local {l} is not in fe80::/10; put a global address in next_hop_v6"),
        );
        ok = false;
    }
    if link_local.is_some() && global.is_none() && ok {
        cx.err_at(
            &t.field("next_hop_v6_link_local"),
            format!("{who}: next_hop_v6_link_local goes with next_hop_v6; set our global IPv6 address toward the peer too"),
        );
        ok = false;
    }
    ok.then(|| global.map(|global| bgp::Ipv6NextHop { global, link_local }))
}

/// `families`, or by default those of the announced prefixes.
pub(super) fn families(
    cx: &mut Ctx,
    t: &Tbl,
    who: &str,
    has_ipv6_next_hop: bool,
    announces: &[Announce],
) -> Option<Vec<Family>> {
    if !t.has("families") {
        let v6 = announces.iter().any(|a| a.prefix.is_ipv6()) || has_ipv6_next_hop;
        let v4 = announces.iter().any(|a| !a.prefix.is_ipv6()) || !v6;
        let all = [(v4, Family::Ipv4Unicast), (v6, Family::Ipv6Unicast)];
        return Some(all.iter().filter(|(on, _)| *on).map(|(_, f)| *f).collect());
    }
    let list = t.list(cx, "families", |cx, v, f, l| match as_str(cx, v, f, l)? {
        "ipv4" => Some(Family::Ipv4Unicast),
        "ipv6" => Some(Family::Ipv6Unicast),
        other => {
            cx.err(
                l,
                f,
                format!("`{other}` is not an address family: write \"ipv4\" or \"ipv6\""),
            );
            None
        }
    })?;
    let mut fams: Vec<Family> = Vec::new();
    for f in list {
        if !fams.contains(&f) {
            fams.push(f);
        }
    }
    if fams.is_empty() {
        cx.err_at(
            &t.field("families"),
            format!("{who}: families is empty; list \"ipv4\" and/or \"ipv6\", or remove it to follow the announced prefixes"),
        );
        return None;
    }
    if has_ipv6_next_hop && !fams.contains(&Family::Ipv6Unicast) {
        cx.err_at(
            &t.field("next_hop_v6"),
            format!("{who}: next_hop_v6 is set but families leaves out \"ipv6\"; add it or remove the next hop"),
        );
    }
    Some(fams)
}
