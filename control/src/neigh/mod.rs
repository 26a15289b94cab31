//! Next hops: the kernel's routing table says which interface and gateway
//! (re-read from /proc/net/route and /proc/net/ipv6_route), the kernel's neighbour table which MAC
//! (followed through rtnetlink events, any address family). Resolving a
//! missing MAC is left to the kernel, prompted by a datagram towards it.

mod netlink;
mod procfs;
mod table;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};

pub(crate) use procfs::{lookup, next_hop, read_routes, Route};
pub(crate) use table::{Neighbours, Table};

/// Makes the kernel resolve the MAC of `addr` (by ARP or Neighbor
/// Discovery) by sending it one empty datagram to the discard port.
/// `ifindex` scopes a link-local address to its interface.
pub(crate) fn prompt_resolution(addr: IpAddr, ifindex: u32) {
    const DISCARD_PORT: u16 = 9;
    let (local, to): (IpAddr, SocketAddr) = match addr {
        IpAddr::V4(a) => (Ipv4Addr::UNSPECIFIED.into(), (a, DISCARD_PORT).into()),
        IpAddr::V6(a) => (
            Ipv6Addr::UNSPECIFIED.into(),
            SocketAddrV6::new(a, DISCARD_PORT, 0, ifindex).into(),
        ),
    };
    if let Ok(sock) = UdpSocket::bind((local, 0)) {
        // Failure here just means the next attempt will try again.
        let _ = sock.send_to(&[], to);
    }
}
