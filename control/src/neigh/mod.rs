//! Next hops: the kernel's routing table says which interface and gateway
//! (re-read from /proc/net/route), the kernel's neighbour table which MAC
//! (followed through rtnetlink events, any address family). Resolving a
//! missing MAC is left to the kernel, prompted by a datagram towards it.

mod netlink;
mod procfs;
mod table;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};

pub(crate) use procfs::{lookup, next_hop, read_routes, Route};
pub(crate) use table::{Neighbours, Table};

/// Makes the kernel resolve the MAC of `addr` by sending it one empty
/// datagram to the discard port.
pub(crate) fn prompt_resolution(addr: Ipv4Addr) {
    const DISCARD_PORT: u16 = 9;
    if let Ok(sock) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) {
        // Failure here just means the next attempt will try again.
        let _ = sock.send_to(&[], SocketAddrV4::new(addr, DISCARD_PORT));
    }
}
