//! Building the standard lab topology: a router `sw` with the client and
//! backend bridges, the LB nodes on both, the client, the backends and the
//! sorry server.

use std::net::Ipv4Addr;

use anyhow::Result;

use crate::netns::{self, End};
use crate::plan::{backend_ip, client_ip, lb_ip, router_ip, side_octet};
use crate::{Gateway, Lab, Side};

impl Lab {
    /// Create `role`'s namespace and record it for teardown.
    pub(crate) fn add_namespace(&mut self, role: &str) -> Result<()> {
        let ns = self.ns(role);
        netns::add(&ns)?;
        self.namespaces.push(ns);
        Ok(())
    }

    pub(crate) fn build(&mut self) -> Result<()> {
        let spec = self.spec.clone();
        let mut roles = vec!["sw".to_string(), "client".to_string()];
        roles.extend((1..=spec.lb_nodes).map(|k| format!("lb{k}")));
        roles.extend((1..=spec.backends).map(|i| format!("be{i}")));
        if spec.sorry_server {
            roles.push("sorry".to_string());
        }
        for role in &roles {
            self.add_namespace(role)?;
        }

        // Router: rp_filter off so direct-routing replies (source VIP, which
        // is not on its backend segment) are forwarded to the client.
        let sw = self.ns("sw");
        netns::sysctl(
            &sw,
            &[
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
            ],
        )?;
        netns::bridge_netfilter_off(&sw)?;
        for (bridge, side) in [("brc", Side::Client), ("brb", Side::Backend)] {
            netns::bridge(&sw, bridge)?;
            netns::addr(&sw, bridge, &format!("{}/24", router_ip(side)))?;
        }

        self.host("client", "cl", "brc", client_ip())?;

        for k in 1..=spec.lb_nodes {
            let role = format!("lb{k}");
            let ns = self.ns(&role);
            for (ifname, side) in [("eth0", Side::Client), ("eth1", Side::Backend)] {
                let (port, bridge) = match side {
                    Side::Client => (format!("lb{k}c"), "brc"),
                    Side::Backend => (format!("lb{k}b"), "brb"),
                };
                self.switch_port(&port, bridge, &role, ifname, spec.queues)?;
                // GRO on the peer lets XDP redirect into this veth.
                netns::gro_on(&sw, &port)?;
                netns::addr(&ns, ifname, &format!("{}/24", lb_ip(k, side)))?;
                netns::link_up_mtu1500(&ns, ifname)?;
            }
            self.set_default_route(&role)?;
            let routes_backends = match spec.backend_gateway {
                Gateway::Lb(g) => g == k,
                // Whichever node holds the floating address routes.
                Gateway::Floating(_) => true,
                Gateway::Router => false,
            };
            if routes_backends {
                // The backends' gateway routes their own traffic (and the
                // client's to them) in its kernel, like any router; rp_filter
                // off so direct-routing replies (source VIP) pass too.
                netns::sysctl(
                    &ns,
                    &[
                        "net.ipv4.ip_forward=1",
                        "net.ipv4.conf.all.rp_filter=0",
                        "net.ipv4.conf.default.rp_filter=0",
                        "net.ipv4.conf.eth0.rp_filter=0",
                        "net.ipv4.conf.eth1.rp_filter=0",
                    ],
                )?;
            } else {
                // The kernel must not forward what the XDP program passes up.
                netns::sysctl(&ns, &["net.ipv4.ip_forward=0"])?;
            }
        }
        if let Gateway::Lb(k) = spec.backend_gateway {
            // The client reaches the backends' own addresses through their
            // gateway, so both directions cross the same node.
            let via = lb_ip(k, Side::Client).to_string();
            let subnet = format!("{}/24", Ipv4Addr::new(10, 77, side_octet(Side::Backend), 0));
            netns::route(&self.ns("client"), &subnet, &via)?;
        }

        for i in 1..=spec.backends {
            let role = format!("be{i}");
            self.host(&role, &role, "brb", backend_ip(i))?;
            let ns = self.ns(&role);
            netns::sysctl(
                &ns,
                &[
                    "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.default.rp_filter=0",
                    "net.ipv4.conf.eth0.rp_filter=0",
                ],
            )?;
            if !spec.dr_vips.is_empty() {
                // Backends own the VIPs for direct routing but must never
                // answer ARP for them, or they would steal the LB's traffic.
                netns::sysctl(
                    &ns,
                    &[
                        "net.ipv4.conf.all.arp_ignore=1",
                        "net.ipv4.conf.all.arp_announce=2",
                        "net.ipv4.conf.eth0.arp_ignore=1",
                        "net.ipv4.conf.eth0.arp_announce=2",
                    ],
                )?;
                for v in &spec.dr_vips {
                    netns::addr(&ns, "lo", &format!("{v}/32"))?;
                }
            }
        }
        if spec.sorry_server {
            let sorry = *self.sorry_addr().ip();
            self.host("sorry", "sorry", "brb", sorry)?;
        }

        if spec.ipv6 {
            self.ipv6_on(&roles)?;
        }
        for i in 1..=spec.backends {
            self.start_backend(i)?;
        }
        if spec.sorry_server {
            self.sorry = Some(self.start_http_server("sorry", "sorry")?);
        }
        Ok(())
    }

    /// A single-homed host `role` with `eth0` on `bridge`, whose switch-side
    /// port is `port`.
    fn host(&self, role: &str, port: &str, bridge: &str, ip: Ipv4Addr) -> Result<()> {
        self.switch_port(port, bridge, role, "eth0", 1)?;
        let ns = self.ns(role);
        netns::addr(&ns, "eth0", &format!("{ip}/24"))?;
        netns::link_up(&ns, "eth0")?;
        self.set_default_route(role)
    }

    /// The interface and gateway of `role`'s default route, if it has one.
    pub(crate) fn default_route(&self, role: &str) -> Option<(&'static str, Ipv4Addr)> {
        if role == "client" || role.starts_with("lb") {
            Some(("eth0", router_ip(Side::Client)))
        } else if role.starts_with("be") || role == "sorry" {
            // The sorry server stands in for backends, so it routes like them.
            match self.spec.backend_gateway {
                Gateway::Lb(k) => Some(("eth0", lb_ip(k, Side::Backend))),
                Gateway::Router => Some(("eth0", router_ip(Side::Backend))),
                Gateway::Floating(a) => Some(("eth0", a)),
            }
        } else {
            None
        }
    }

    pub(crate) fn set_default_route(&self, role: &str) -> Result<()> {
        let Some((_, gw)) = self.default_route(role) else {
            return Ok(());
        };
        netns::route(&self.ns(role), "default", &gw.to_string())
    }

    /// veth pair created directly in its namespaces: `port` in `sw` (attached
    /// to `bridge`, up) and `ifname` in `role`.
    fn switch_port(
        &self,
        port: &str,
        bridge: &str,
        role: &str,
        ifname: &str,
        queues: u16,
    ) -> Result<()> {
        let sw = self.ns("sw");
        let ns = self.ns(role);
        netns::veth(
            End {
                ns: &sw,
                ifname: port,
            },
            End { ns: &ns, ifname },
            queues,
        )?;
        netns::attach(&sw, port, bridge)?;
        netns::link_up(&sw, port)
    }
}
