//! The sync socket: UDP on the sync interface, to the unicast peers or the
//! multicast group, never routed off the segment.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::config::Sync;

/// Room for bursts: a bulk dump arrives as fast as the peer can send it.
const BUFFER_BYTES: usize = 4 << 20;

/// Opens the socket on `cfg.interface`, whose address is `local`.
pub(super) fn open(cfg: &Sync, local: Ipv4Addr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.bind_device(Some(cfg.interface.as_bytes()))?;
    s.set_nonblocking(true)?;
    // The kernel may cap these below what was asked; the defaults still work.
    let _ = s.set_recv_buffer_size(BUFFER_BYTES);
    let _ = s.set_send_buffer_size(BUFFER_BYTES);
    if cfg.peers.is_empty() {
        s.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, cfg.port)).into())?;
        s.join_multicast_v4(&cfg.group, &local)?;
        s.set_multicast_if_v4(&local)?;
        s.set_multicast_loop_v4(false)?;
        s.set_multicast_ttl_v4(1)?;
    } else {
        // Bound to our address, so peers see the source they list for us.
        s.bind(&SocketAddr::V4(SocketAddrV4::new(local, cfg.port)).into())?;
        s.set_ttl(1)?;
    }
    UdpSocket::from_std(s.into())
}

/// Where a message for every peer goes.
pub(super) fn everyone(cfg: &Sync) -> Vec<SocketAddr> {
    if cfg.peers.is_empty() {
        vec![SocketAddr::V4(SocketAddrV4::new(cfg.group, cfg.port))]
    } else {
        cfg.peers
            .iter()
            .map(|p| SocketAddr::V4(SocketAddrV4::new(*p, cfg.port)))
            .collect()
    }
}
