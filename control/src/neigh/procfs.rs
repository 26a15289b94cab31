//! The routing tables of the node's network namespace, from /proc/net/route
//! (IPv4) and /proc/net/ipv6_route (IPv6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::Prefix;

/// One route of either family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) dev: String,
    pub(crate) dst: Prefix,
    /// `None` for on-link routes.
    pub(crate) gateway: Option<IpAddr>,
    pub(crate) metric: u32,
}

/// Both routing tables now; a table that cannot be read adds nothing.
pub(crate) fn read_routes() -> Vec<Route> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let mut routes = parse_routes(&read("/proc/net/route"));
    routes.extend(parse_routes6(&read("/proc/net/ipv6_route")));
    routes
}

/// Parses /proc/net/route text. Malformed lines are skipped.
pub(crate) fn parse_routes(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Host-order hex of the address as it sits in memory.
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
                dst: Prefix {
                    addr: Ipv4Addr::from_bits(dst).into(),
                    len: mask.count_ones() as u8,
                },
                gateway: (gw != 0).then(|| Ipv4Addr::from_bits(gw).into()),
                metric: metric.parse().ok()?,
            })
        })
        .collect()
}

/// Parses /proc/net/ipv6_route text: destination, its length, source, its
/// length, next hop, metric, refcount, use, flags, device. Malformed lines
/// and the kernel's reject routes on `lo` are skipped.
pub(crate) fn parse_routes6(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let addr = |s: &str| u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from_bits);
            let (dst, len, gw, metric, dev) = (
                addr(f.first()?)?,
                u8::from_str_radix(f.get(1)?, 16)
                    .ok()
                    .filter(|l| *l <= 128)?,
                addr(f.get(4)?)?,
                u32::from_str_radix(f.get(5)?, 16).ok()?,
                f.get(9)?,
            );
            if *dev == "lo" {
                return None;
            }
            Some(Route {
                dev: (*dev).to_string(),
                dst: Prefix {
                    addr: dst.into(),
                    len,
                },
                gateway: (!gw.is_unspecified()).then_some(gw.into()),
                metric,
            })
        })
        .collect()
}

/// Longest-prefix match within `addr`'s family, lowest metric among equals.
pub(crate) fn lookup(routes: &[Route], addr: IpAddr) -> Option<&Route> {
    routes
        .iter()
        .filter(|r| r.dst.contains(addr))
        .max_by(|x, y| x.dst.len.cmp(&y.dst.len).then(y.metric.cmp(&x.metric)))
}

/// The next hop towards `addr`: interface name and the address whose MAC is needed.
pub(crate) fn next_hop(routes: &[Route], addr: IpAddr) -> Option<(String, IpAddr)> {
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

    // As the kernel prints them: an on-link /64, a default route via a
    // link-local router with a worse metric beside a better one, and the
    // reject route on lo.
    const ROUTES6: &str = "\
20010db8000100000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000002 00000200 00000001 00000000 00000003     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
20010db8 zz
";

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

    #[test]
    fn ipv6_routes_parse_and_match_within_their_family() {
        let mut routes = parse_routes6(ROUTES6);
        assert_eq!(routes.len(), 3, "{routes:?}");
        assert_eq!(
            next_hop(&routes, "2001:db8:1::11".parse().unwrap()),
            Some(("eth1".into(), "2001:db8:1::11".parse().unwrap()))
        );
        assert_eq!(
            next_hop(&routes, "2001:db8:9::1".parse().unwrap()),
            Some(("eth1".into(), "fe80::2".parse().unwrap())),
            "the lower metric wins among equal lengths"
        );
        // An IPv4 default route never answers for an IPv6 address, nor the reverse.
        assert_eq!(next_hop(&routes, "10.0.0.9".parse().unwrap()), None);
        routes.extend(parse_routes(ROUTES));
        assert_eq!(
            next_hop(&routes, "192.0.2.9".parse().unwrap()),
            Some(("eth0".into(), "10.0.0.1".parse().unwrap()))
        );
    }
}
