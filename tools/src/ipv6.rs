//! IPv6 beside IPv4 in a lab whose spec asks for it: every address of the
//! plan gets a twin (see [`ipv6_twin`]; the standard lab's are in
//! 2001:db8:77::/48), the routes follow the IPv4 ones, and duplicate
//! address detection is off on the lab's interfaces, whose addresses the
//! lab alone assigns.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::Result;

use crate::netns;
use crate::plan::{backend_ip, client_ip, lb_ip, router_ip, sorry_ip};
use crate::{Gateway, Lab, Side};

/// The IPv6 twin of a lab address: A.N.S.H is 2001:db8:N:S::H, each
/// written with the same digits (10.77.1.101 is 2001:db8:77:1::101,
/// 192.168.10.11 is 2001:db8:168:10::11), so the two read alike in logs.
pub fn ipv6_twin(v4: Ipv4Addr) -> Ipv6Addr {
    let [_, net, segment, host] = v4.octets();
    // Decimal digits read as hex always fit: 255 becomes 0x255.
    let digits = |o: u8| u16::from_str_radix(&o.to_string(), 16).unwrap_or(0);
    Ipv6Addr::new(
        0x2001,
        0xdb8,
        digits(net),
        digits(segment),
        0,
        0,
        0,
        digits(host),
    )
}

/// Suggested IPv6 VIP number `n` (1..=50): the twin of [`crate::vip`]`(n)`.
pub fn vip6(n: u8) -> Ipv6Addr {
    ipv6_twin(crate::vip(n))
}

impl Lab {
    /// Turns IPv6 on in every namespace and gives every interface the
    /// twins of its IPv4 addresses and routes.
    pub(crate) fn ipv6_on(&self, roles: &[String]) -> Result<()> {
        for role in roles {
            self.enable_ipv6(role)?;
        }
        let add = |role: &str, ifname: &str, v4: Ipv4Addr| {
            netns::addr6(&self.ns(role), ifname, ipv6_twin(v4))
        };
        let sw = self.ns("sw");
        netns::sysctl(&sw, &["net.ipv6.conf.all.forwarding=1"])?;
        add("sw", "brc", router_ip(Side::Client))?;
        add("sw", "brb", router_ip(Side::Backend))?;
        add("client", "eth0", client_ip())?;
        for k in 1..=self.spec.lb_nodes {
            let role = format!("lb{k}");
            add(&role, "eth0", lb_ip(k, Side::Client))?;
            add(&role, "eth1", lb_ip(k, Side::Backend))?;
            let forwards = match self.spec.backend_gateway {
                Gateway::Lb(g) => g == k,
                Gateway::Floating(_) => true,
                Gateway::Router => false,
            };
            let forwarding = format!("net.ipv6.conf.all.forwarding={}", u8::from(forwards));
            netns::sysctl(&self.ns(&role), &[&forwarding])?;
        }
        for i in 1..=self.spec.backends {
            let role = format!("be{i}");
            add(&role, "eth0", backend_ip(i))?;
            for v in &self.spec.dr_vips {
                netns::addr(&self.ns(&role), "lo", &format!("{}/128", ipv6_twin(*v)))?;
            }
        }
        if self.spec.sorry_server {
            add("sorry", "eth0", sorry_ip())?;
        }
        let mut roles_with_routes: Vec<String> = roles.to_vec();
        roles_with_routes.retain(|r| r != "sw");
        for role in &roles_with_routes {
            if let Some((_, gw)) = self.default_route(role) {
                netns::route(&self.ns(role), "default", &ipv6_twin(gw).to_string())?;
            }
        }
        if let Gateway::Lb(k) = self.spec.backend_gateway {
            let subnet = format!("{}/64", ipv6_twin(Ipv4Addr::new(10, 77, 1, 0)));
            let via = ipv6_twin(lb_ip(k, Side::Client)).to_string();
            netns::route(&self.ns("client"), &subnet, &via)?;
        }
        Ok(())
    }

    /// Turns IPv6 on in `role`'s namespace, once its interfaces exist.
    pub(crate) fn enable_ipv6(&self, role: &str) -> Result<()> {
        netns::ipv6_on(&self.ns(role))
    }

    pub fn client_ip6(&self) -> Ipv6Addr {
        ipv6_twin(client_ip())
    }

    pub fn lb_ip6(&self, k: usize, side: Side) -> Ipv6Addr {
        ipv6_twin(self.lb_ip(k, side))
    }

    pub fn backend_ip6(&self, i: usize) -> Ipv6Addr {
        ipv6_twin(self.backend_ip(i))
    }

    /// Backend `i`'s HTTP server at `backend_port`, over IPv6.
    pub fn backend_addr6(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.backend_ip6(i).into(), self.spec.backend_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twins_read_like_their_ipv4_addresses() {
        assert_eq!(
            ipv6_twin(Ipv4Addr::new(10, 77, 1, 101)),
            "2001:db8:77:1::101".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            ipv6_twin(client_ip()),
            "2001:db8:77::2".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(vip6(1), "2001:db8:77::101".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            ipv6_twin(Ipv4Addr::new(192, 168, 20, 12)),
            "2001:db8:168:20::12".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            ipv6_twin(router_ip(Side::Backend)),
            "2001:db8:77:1::254".parse::<Ipv6Addr>().unwrap()
        );
    }
}
