//! Next hops for backends: the kernel's routing table says which interface
//! and gateway, the kernel's neighbour table says which MAC. Both are read
//! from /proc of the node's network namespace; resolving a missing MAC is
//! left to the kernel, prompted by a datagram towards the address.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

use wire::MacAddr;

/// A route from /proc/net/route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dev: String,
    pub dst: u32,
    pub mask: u32,
    /// `None` for on-link routes.
    pub gateway: Option<Ipv4Addr>,
    pub metric: u32,
}

/// Parses /proc/net/route text. Malformed lines are skipped.
pub fn parse_routes(text: &str) -> Vec<Route> {
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
pub fn lookup(routes: &[Route], addr: Ipv4Addr) -> Option<&Route> {
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

/// Parses /proc/net/arp text into complete entries: address → (MAC, device).
pub fn parse_neighbours(text: &str) -> HashMap<Ipv4Addr, (MacAddr, String)> {
    const ATF_COM: u32 = 0x2;
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let ip: Ipv4Addr = f.first()?.parse().ok()?;
            let flags = u32::from_str_radix(f.get(2)?.trim_start_matches("0x"), 16).ok()?;
            let mac: MacAddr = f.get(3)?.parse().ok()?;
            let dev = (*f.get(5)?).to_string();
            (flags & ATF_COM != 0 && !mac.is_zero()).then_some((ip, (mac, dev)))
        })
        .collect()
}

/// The next hop towards `addr`: interface name and the address whose MAC is needed.
pub fn next_hop(routes: &[Route], addr: Ipv4Addr) -> Option<(String, Ipv4Addr)> {
    let r = lookup(routes, addr)?;
    Some((r.dev.clone(), r.gateway.unwrap_or(addr)))
}

/// Makes the kernel resolve the MAC of `addr` by sending it one empty
/// datagram to the discard port.
pub fn prompt_resolution(addr: Ipv4Addr) {
    const DISCARD_PORT: u16 = 9;
    if let Ok(sock) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) {
        // Failure here just means the next attempt will try again.
        let _ = sock.send_to(&[], SocketAddrV4::new(addr, DISCARD_PORT));
    }
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

    #[test]
    fn only_complete_neighbours_count() {
        let text =
            "IP address       HW type     Flags       HW address            Mask     Device\n\
10.77.1.101      0x1         0x2         02:aa:00:00:00:01     *        eth1\n\
10.77.1.102      0x1         0x0         00:00:00:00:00:00     *        eth1\n\
bogus\n";
        let n = parse_neighbours(text);
        assert_eq!(n.len(), 1);
        let (mac, dev) = &n[&"10.77.1.101".parse().unwrap()];
        assert_eq!(mac.to_string(), "02:aa:00:00:00:01");
        assert_eq!(dev, "eth1");
    }
}
