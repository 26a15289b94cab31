//! The IPv4 routing table of the node's network namespace, from
//! /proc/net/route.

use std::net::Ipv4Addr;

/// A route from /proc/net/route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) dev: String,
    pub(crate) dst: u32,
    pub(crate) mask: u32,
    /// `None` for on-link routes.
    pub(crate) gateway: Option<Ipv4Addr>,
    pub(crate) metric: u32,
}

/// The routing table now; empty when /proc/net/route cannot be read.
pub(crate) fn read_routes() -> Vec<Route> {
    std::fs::read_to_string("/proc/net/route")
        .map(|t| parse_routes(&t))
        .unwrap_or_default()
}

/// Parses /proc/net/route text. Malformed lines are skipped.
pub(crate) fn parse_routes(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let hex = |s: &str| {
                u32::from_str_radix(s, 16)
                    .ok()
                    .map(|v| u32::from_be_bytes(v.to_le_bytes()))
            };
            let (dev, dst, gw, metric, mask) = (
                f.first()?,
                hex(f.get(1)?)?,
                hex(f.get(2)?)?,
                f.get(6)?,
                hex(f.get(7)?)?,
            );
            Some(Route {
                dev: (*dev).to_string(),
                dst,
                mask,
                gateway: (gw != 0).then(|| Ipv4Addr::from_bits(gw)),
                metric: metric.parse().ok()?,
            })
        })
        .collect()
}

/// Longest-prefix match, lowest metric among equals.
pub(crate) fn lookup(routes: &[Route], addr: Ipv4Addr) -> Option<&Route> {
    let a = addr.to_bits();
    routes
        .iter()
        .filter(|r| a & r.mask == r.dst & r.mask)
        .max_by(|x, y| {
            x.mask
                .count_ones()
                .cmp(&y.mask.count_ones())
                .then(y.metric.cmp(&x.metric))
        })
}

/// The next hop towards `addr`: interface name and the address whose MAC is needed.
pub(crate) fn next_hop(routes: &[Route], addr: Ipv4Addr) -> Option<(String, Ipv4Addr)> {
    let r = lookup(routes, addr)?;
    Some((r.dev.clone(), r.gateway.unwrap_or(addr)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth1\t00014D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
eth0\t00004D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
garbage line\n";

    #[test]
    fn routes_parse_and_match_longest_prefix() {
        let routes = parse_routes(ROUTES);
        assert_eq!(routes.len(), 3);
        assert_eq!(
            next_hop(&routes, "10.77.1.101".parse().unwrap()),
            Some(("eth1".into(), "10.77.1.101".parse().unwrap()))
        );
        assert_eq!(
            next_hop(&routes, "192.0.2.9".parse().unwrap()),
            Some(("eth0".into(), "10.0.0.1".parse().unwrap()))
        );
    }
}
