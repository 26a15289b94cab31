//! What a lab is made of: [`LabSpec`] and its checks.

use std::net::Ipv4Addr;

use anyhow::{bail, Result};

use crate::names::validate_name;
use crate::plan::{backend_ip, lb_ip, router_ip, side_octet, sorry_ip};
use crate::Side;

const MAX_LB_NODES: usize = 8;
const MAX_BACKENDS: usize = 8;
const MAX_QUEUES: u16 = 64;

/// Where backends send traffic that is not for their own segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gateway {
    /// Via LB node K's `eth1` (1-based). NAT mode: replies must come back
    /// through the load balancer. That node also routes (`ip_forward=1`) the
    /// backends' own traffic, and the client reaches the backend segment
    /// through it.
    Lb(usize),
    /// Via the router `sw` (10.77.1.254). Direct routing and full NAT.
    Router,
    /// Via an address on the backend segment that no namespace holds
    /// statically: a floating gateway the LB nodes' VRRP master answers ARP
    /// for (NAT mode with several LB nodes). Every LB node routes
    /// (`ip_forward=1`), since any of them may hold it.
    Floating(Ipv4Addr),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabSpec {
    /// Short lab name: lowercase ASCII letters and digits, at most 16
    /// characters. [`unique_name`] makes suitable ones.
    pub name: String,
    /// Load-balancer nodes `lb1..`: 1..=8.
    pub lb_nodes: usize,
    /// Backends `be1..`: 1..=8.
    pub backends: usize,
    /// Queues on each LB node interface (and its switch-side peer).
    pub queues: u16,
    /// Port every backend's (and the sorry server's) HTTP server listens on.
    pub backend_port: u16,
    /// More ports served by the same backend processes (e.g. 80 for direct
    /// routing, where the VIP's port reaches the backend unchanged).
    pub extra_backend_ports: Vec<u16>,
    /// VIPs configured on every backend's loopback, with arp_ignore=1 and
    /// arp_announce=2, for direct routing.
    pub dr_vips: Vec<Ipv4Addr>,
    pub backend_gateway: Gateway,
    /// Start the sorry server `sorry` (10.77.1.250).
    pub sorry_server: bool,
    /// IPv6 beside IPv4: every address, route and DR VIP gets its
    /// [`crate::ipv6_twin`], and the backends serve over both.
    pub ipv6: bool,
}

impl Default for LabSpec {
    fn default() -> LabSpec {
        LabSpec {
            name: String::new(),
            lb_nodes: 1,
            backends: 2,
            queues: 1,
            backend_port: 8080,
            extra_backend_ports: Vec::new(),
            dr_vips: Vec::new(),
            backend_gateway: Gateway::Router,
            sorry_server: false,
            ipv6: false,
        }
    }
}

impl LabSpec {
    pub(crate) fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        if !(1..=MAX_LB_NODES).contains(&self.lb_nodes) {
            bail!(
                "lab {}: lb_nodes = {} is out of range; use 1..={MAX_LB_NODES}",
                self.name,
                self.lb_nodes
            );
        }
        if !(1..=MAX_BACKENDS).contains(&self.backends) {
            bail!(
                "lab {}: backends = {} is out of range; use 1..={MAX_BACKENDS}",
                self.name,
                self.backends
            );
        }
        if !(1..=MAX_QUEUES).contains(&self.queues) {
            bail!(
                "lab {}: queues = {} is out of range; use 1..={MAX_QUEUES}",
                self.name,
                self.queues
            );
        }
        if self.backend_port == 0 || self.extra_backend_ports.contains(&0) {
            bail!("lab {}: backend port 0 is not a usable port", self.name);
        }
        if let Gateway::Lb(k) = self.backend_gateway {
            if !(1..=self.lb_nodes).contains(&k) {
                bail!(
                    "lab {}: backend gateway lb{k} does not exist (the lab has {} LB node(s))",
                    self.name,
                    self.lb_nodes
                );
            }
        }
        if let Gateway::Floating(a) = self.backend_gateway {
            let taken = a == router_ip(Side::Backend)
                || a == sorry_ip()
                || (1..=self.lb_nodes).any(|k| a == lb_ip(k, Side::Backend))
                || (1..=self.backends).any(|i| a == backend_ip(i));
            let [o1, o2, o3, o4] = a.octets();
            if [o1, o2, o3] != [10, 77, side_octet(Side::Backend)] || o4 == 0 || o4 == 255 || taken
            {
                bail!(
                    "lab {}: floating gateway {a} must be a free host address of the backend segment 10.77.1.0/24 (not the router, an LB node, a backend or the sorry server)",
                    self.name
                );
            }
        }
        Ok(())
    }

    pub(crate) fn ports(&self) -> Vec<u16> {
        let mut ports = vec![self.backend_port];
        for p in &self.extra_backend_ports {
            if !ports.contains(p) {
                ports.push(*p);
            }
        }
        ports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        let ok = LabSpec {
            name: "a1".into(),
            ..LabSpec::default()
        };
        ok.validate().unwrap();
        let cases = [
            LabSpec {
                name: "Bad-Name".into(),
                ..ok.clone()
            },
            LabSpec {
                backends: 0,
                ..ok.clone()
            },
            LabSpec {
                backends: 9,
                ..ok.clone()
            },
            LabSpec {
                lb_nodes: 0,
                ..ok.clone()
            },
            LabSpec {
                queues: 0,
                ..ok.clone()
            },
            LabSpec {
                backend_gateway: Gateway::Lb(2),
                ..ok.clone()
            },
            LabSpec {
                backend_gateway: Gateway::Floating(Ipv4Addr::new(10, 77, 0, 1)),
                ..ok.clone()
            },
            LabSpec {
                backend_gateway: Gateway::Floating(Ipv4Addr::new(10, 77, 1, 11)),
                ..ok.clone()
            },
            LabSpec {
                backend_gateway: Gateway::Floating(Ipv4Addr::new(10, 77, 1, 101)),
                ..ok.clone()
            },
        ];
        LabSpec {
            backend_gateway: Gateway::Floating(Ipv4Addr::new(10, 77, 1, 1)),
            ..ok.clone()
        }
        .validate()
        .unwrap();
        for spec in cases {
            assert!(spec.validate().is_err(), "{spec:?} was accepted");
        }
    }
}
