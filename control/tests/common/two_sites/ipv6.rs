//! The router's kernel table read for IPv6 routes, for the IPv6 BGP tests
//! on a two-site lab built with IPv6 ([`TwoSiteLab::up_ipv6`]).

use std::net::Ipv6Addr;

use viplab::TwoSiteLab;

/// The router's kernel next hop for IPv6 `prefix` ("2001:db8::/48"), if it
/// has that route.
pub fn kernel_next_hop6(lab: &TwoSiteLab, prefix: &str) -> Option<Ipv6Addr> {
    let out = lab
        .exec_ok("rt", &["ip", "-6", "route", "show", "exact", prefix])
        .ok()?;
    let mut words = out.split_whitespace();
    words.find(|w| *w == "via")?;
    words.next()?.parse().ok()
}

/// The next hop the router's kernel picks for `addr` (longest prefix match).
pub fn kernel_route6(lab: &TwoSiteLab, addr: Ipv6Addr) -> Option<Ipv6Addr> {
    let out = lab
        .exec_ok("rt", &["ip", "-6", "route", "get", &addr.to_string()])
        .ok()?;
    let mut words = out.split_whitespace();
    words.find(|w| *w == "via")?;
    words.next()?.parse().ok()
}
