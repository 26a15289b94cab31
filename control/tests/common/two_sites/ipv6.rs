//! IPv6 on the two-site lab's uplinks, for the IPv6 BGP tests: each site's
//! uplink gets a /64 (the router `::1`, the site node `::2`), and the
//! router's kernel table is read for IPv6 routes.

use std::net::Ipv6Addr;

use anyhow::Result;
use viplab::{Site, TwoSiteLab};

/// The router's IPv6 address on `site`'s uplink.
pub fn router_ip6(site: Site) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, uplink_net(site), 0, 0, 0, 0, 1)
}

/// The site node's IPv6 address on its uplink: its IPv6 BGP source and next hop.
pub fn uplink_ip6(site: Site) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, uplink_net(site), 0, 0, 0, 0, 2)
}

fn uplink_net(site: Site) -> u16 {
    match site {
        Site::A => 0x20,
        Site::B => 0x21,
    }
}

/// Turns IPv6 on for both ends of `site`'s uplink (lab namespaces start
/// with it off) and puts them on its /64, without duplicate address
/// detection so the addresses are usable at once.
pub fn add_ipv6_uplink(lab: &TwoSiteLab, site: Site) -> Result<()> {
    let rt_port = match site {
        Site::A => "ua",
        Site::B => "ub",
    };
    for (role, ifname, ip) in [
        ("rt", rt_port, router_ip6(site)),
        (site.role(), "eth0", uplink_ip6(site)),
    ] {
        let on = format!("net.ipv6.conf.{ifname}.disable_ipv6=0");
        lab.exec_ok(role, &["sysctl", "-qw", &on])?;
        lab.exec_ok(
            role,
            &[
                "ip",
                "-6",
                "addr",
                "add",
                &format!("{ip}/64"),
                "dev",
                ifname,
                "nodad",
            ],
        )?;
    }
    Ok(())
}

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
