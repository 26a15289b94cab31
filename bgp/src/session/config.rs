//! Per-peer configuration.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::prefix::Family;

/// Our IPv6 next hop toward the peer (RFC 2545 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6NextHop {
    pub global: Ipv6Addr,
    /// Our link-local address on the link shared with the peer; sent after the
    /// global one so the peer can forward without a neighbour lookup of it.
    pub link_local: Option<Ipv6Addr>,
}

impl Ipv6NextHop {
    pub fn new(global: Ipv6Addr) -> Ipv6NextHop {
        Ipv6NextHop {
            global,
            link_local: None,
        }
    }
}

fn is_link_local(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Names the peer in logs and errors, e.g. "10.20.1.1".
    pub name: String,
    pub local_as: u32,
    pub remote_as: u32,
    pub router_id: Ipv4Addr,
    /// Hold time offered in OPEN, seconds; 0 disables keepalives, otherwise at least 3.
    pub hold_time: u16,
    /// Keepalive interval, seconds; default one third of the negotiated hold time.
    pub keepalive: Option<u16>,
    /// Only accept connections from the peer, never open one.
    pub passive: bool,
    /// First delay before reconnecting; doubles per failure up to `connect_retry_max`.
    pub connect_retry: Duration,
    pub connect_retry_max: Duration,
    /// Families offered with the multiprotocol capability.
    pub families: Vec<Family>,
    /// Next hop of IPv6 routes that do not carry an IPv6 one themselves; without
    /// it such routes are refused.
    pub ipv6_next_hop: Option<Ipv6NextHop>,
    /// Send the graceful restart capability (restart time 0, no preserved families).
    pub graceful_restart: bool,
    /// Tear the session down when the peer sends more prefixes than this (all families).
    pub max_prefixes: Option<u32>,
    /// On eBGP, handle routes whose AS_PATH does not start with the peer's AS as
    /// withdrawn (RFC 4271 §6.3, RFC 7606 §7.2). Turn off for route servers.
    pub enforce_first_as: bool,
}

impl PeerConfig {
    /// A peer with vipd's defaults: hold 90 s, retry 5 s backing off to 60 s,
    /// IPv4 and IPv6 unicast.
    pub fn new(
        name: impl Into<String>,
        local_as: u32,
        remote_as: u32,
        router_id: Ipv4Addr,
    ) -> PeerConfig {
        PeerConfig {
            name: name.into(),
            local_as,
            remote_as,
            router_id,
            hold_time: 90,
            keepalive: None,
            passive: false,
            connect_retry: Duration::from_secs(5),
            connect_retry_max: Duration::from_secs(60),
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            ipv6_next_hop: None,
            graceful_restart: false,
            max_prefixes: None,
            enforce_first_as: true,
        }
    }

    pub fn is_ebgp(&self) -> bool {
        self.local_as != self.remote_as
    }

    /// Every problem with this configuration, each naming the peer and the field.
    pub fn validate(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let who = &self.name;
        if matches!(self.hold_time, 1 | 2) {
            errs.push(format!(
                "BGP peer {who}: hold_time {} is not allowed; use 0 (no keepalives) or at least 3 seconds",
                self.hold_time
            ));
        }
        if let Some(k) = self.keepalive {
            if self.hold_time != 0 && (k == 0 || k > self.hold_time / 3) {
                errs.push(format!(
                    "BGP peer {who}: keepalive {k} must be between 1 and a third of hold_time {}",
                    self.hold_time
                ));
            }
        }
        if self.local_as == 0 || self.remote_as == 0 {
            errs.push(format!(
                "BGP peer {who}: AS number 0 is reserved; set local_as and remote_as"
            ));
        }
        if self.router_id.is_unspecified() {
            // Even over IPv6 the BGP identifier is 32 bits (RFC 6286): nothing to derive it from.
            errs.push(format!(
                "BGP peer {who}: router_id 0.0.0.0 is not allowed; set a unique IPv4 address (also for sessions over IPv6)"
            ));
        }
        if let Some(nh) = &self.ipv6_next_hop {
            let g = nh.global;
            if g.is_unspecified() || g.is_loopback() || g.is_multicast() || is_link_local(&g) {
                errs.push(format!(
                    "BGP peer {who}: ipv6_next_hop {g} must be a global unicast address; put a link-local one in link_local"
                ));
            }
            if let Some(l) = nh.link_local.filter(|l| !is_link_local(l)) {
                errs.push(format!(
                    "BGP peer {who}: ipv6_next_hop link_local {l} is not in fe80::/10"
                ));
            }
            if !self.families.contains(&Family::Ipv6Unicast) {
                errs.push(format!(
                    "BGP peer {who}: ipv6_next_hop is set but {} is not among the families; add it or drop the next hop",
                    Family::Ipv6Unicast
                ));
            }
        }
        if self.connect_retry.is_zero()
            || self.connect_retry > self.connect_retry_max
            || self.connect_retry_max > super::MAX_RETRY
        {
            errs.push(format!(
                "BGP peer {who}: connect_retry must be non-zero and not above connect_retry_max ({:?}), which must be at most one day",
                self.connect_retry_max
            ));
        }
        if self.families.is_empty() {
            errs.push(format!(
                "BGP peer {who}: no address families; enable ipv4 and/or ipv6 unicast"
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn over_ipv6() -> PeerConfig {
        let mut c = PeerConfig::new("2001:db8:1::1", 65001, 65000, Ipv4Addr::new(10, 20, 1, 2));
        c.ipv6_next_hop = Some(Ipv6NextHop {
            global: v6("2001:db8:1::2"),
            link_local: Some(v6("fe80::2")),
        });
        c
    }

    #[test]
    fn ipv6_next_hops_are_checked() {
        assert!(over_ipv6().validate().is_empty());
        let mut c = over_ipv6();
        c.ipv6_next_hop = Some(Ipv6NextHop::new(v6("2001:db8:1::2")));
        assert!(c.validate().is_empty());
        for bad in ["::", "::1", "ff02::1", "fe80::2"] {
            c.ipv6_next_hop = Some(Ipv6NextHop::new(v6(bad)));
            let errs = c.validate();
            assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
            assert!(errs[0].starts_with("BGP peer 2001:db8:1::1: ipv6_next_hop"));
            assert!(errs[0].contains("global unicast"), "{}", errs[0]);
        }
        c.ipv6_next_hop = Some(Ipv6NextHop {
            global: v6("2001:db8:1::2"),
            link_local: Some(v6("2001:db8:1::3")),
        });
        assert!(c.validate()[0].contains("link_local 2001:db8:1::3 is not in fe80::/10"));
        let mut c = over_ipv6();
        c.families = vec![Family::Ipv4Unicast];
        assert!(c.validate()[0].contains("ipv6-unicast is not among the families"));
    }

    #[test]
    fn router_id_is_required_over_ipv6_too() {
        let mut c = over_ipv6();
        c.router_id = Ipv4Addr::UNSPECIFIED;
        let errs = c.validate();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("also for sessions over IPv6"));
    }
}
