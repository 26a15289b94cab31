//! The lab's address plan. Addresses are identical in every lab (the
//! namespaces isolate them), so many labs run side by side. Indices are
//! 1-based, as in the role names (`lb1`, `be1`).

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::Lab;

/// Which segment of the lab an address is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// 10.77.0.0/24, bridge `brc`: the client and the LB nodes' `eth0`.
    Client,
    /// 10.77.1.0/24, bridge `brb`: the backends, the sorry server and the LB
    /// nodes' `eth1`.
    Backend,
}

/// Suggested VIP number `n` (1..=50) on the client segment: 10.77.0.(100+n).
/// Clients reach it directly over `brc`, so whichever LB node answers ARP for
/// it receives the traffic.
pub fn vip(n: u8) -> Ipv4Addr {
    assert!((1..=50).contains(&n), "viplab::vip({n}): use 1..=50");
    Ipv4Addr::new(10, 77, 0, 100 + n)
}

pub(crate) fn client_ip() -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, 2)
}

pub(crate) fn lb_ip(k: usize, side: Side) -> Ipv4Addr {
    let host = u8::try_from(10 + k).unwrap_or(u8::MAX);
    Ipv4Addr::new(10, 77, side_octet(side), host)
}

pub(crate) fn backend_ip(i: usize) -> Ipv4Addr {
    let host = u8::try_from(100 + i).unwrap_or(u8::MAX);
    Ipv4Addr::new(10, 77, 1, host)
}

pub(crate) fn sorry_ip() -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 1, 250)
}

pub(crate) fn router_ip(side: Side) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, side_octet(side), 254)
}

pub(crate) fn side_octet(side: Side) -> u8 {
    match side {
        Side::Client => 0,
        Side::Backend => 1,
    }
}

/// Addresses of a running lab, checked against its spec.
impl Lab {
    pub fn client_ip(&self) -> Ipv4Addr {
        client_ip()
    }

    /// LB node `k`'s address on `side` (`eth0` client side, `eth1` backend
    /// side).
    pub fn lb_ip(&self, k: usize, side: Side) -> Ipv4Addr {
        assert!(
            (1..=self.spec.lb_nodes).contains(&k),
            "lab {} has {} LB node(s); lb{k} does not exist",
            self.spec.name,
            self.spec.lb_nodes
        );
        lb_ip(k, side)
    }

    pub fn backend_ip(&self, i: usize) -> Ipv4Addr {
        self.assert_backend(i);
        backend_ip(i)
    }

    /// Backend `i`'s HTTP server at `backend_port`.
    pub fn backend_addr(&self, i: usize) -> SocketAddrV4 {
        SocketAddrV4::new(self.backend_ip(i), self.spec.backend_port)
    }

    /// The body backend `i` answers, trimmed (`"be1"`).
    pub fn backend_name(&self, i: usize) -> String {
        self.assert_backend(i);
        format!("be{i}")
    }

    fn assert_backend(&self, i: usize) {
        assert!(
            (1..=self.spec.backends).contains(&i),
            "lab {} has {} backend(s); be{i} does not exist",
            self.spec.name,
            self.spec.backends
        );
    }

    pub fn router_ip(&self, side: Side) -> Ipv4Addr {
        router_ip(side)
    }

    /// The sorry server's HTTP address (10.77.1.250 at `backend_port`);
    /// running only if the spec asked for it.
    pub fn sorry_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(sorry_ip(), self.spec.backend_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_plan() {
        assert_eq!(lb_ip(2, Side::Backend), Ipv4Addr::new(10, 77, 1, 12));
        assert_eq!(lb_ip(1, Side::Client), Ipv4Addr::new(10, 77, 0, 11));
        assert_eq!(backend_ip(3), Ipv4Addr::new(10, 77, 1, 103));
        assert_eq!(router_ip(Side::Client), Ipv4Addr::new(10, 77, 0, 254));
        assert_eq!(vip(1), Ipv4Addr::new(10, 77, 0, 101));
    }
}
