//! BFD's UDP sockets (RFC 5881): one receiving on port 3784 that reports
//! each datagram's TTL, one sending with TTL 255 from a port in 49152–65535.

use std::hash::{BuildHasher, RandomState};
use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket as StdUdp};
use std::os::fd::AsRawFd;

use anyhow::Context;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrIn};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::speaker::sockopt;

/// A datagram as received: payload length, sender and IP TTL (0 when the
/// kernel did not report one, which fails the TTL check).
pub(super) struct Received {
    pub(super) len: usize,
    pub(super) from: SocketAddrV4,
    pub(super) ttl: u8,
}

pub(super) struct Sockets {
    rx: UdpSocket,
    /// Non-blocking; used directly, as tokio's try_send_to fails until the
    /// reactor has first seen the socket writable.
    tx: StdUdp,
}

impl Sockets {
    /// Binds the receiving socket to `local:3784` and the sending one to
    /// `local` on a free port of the single-hop source range.
    pub(super) fn bind(local: Ipv4Addr) -> anyhow::Result<Sockets> {
        let rx_addr = SocketAddrV4::new(local, bfd::PORT);
        let rx = udp(rx_addr).with_context(|| {
            format!("binding BFD on {rx_addr}: is another BFD daemon (bfdd, BIRD) running on this node?")
        })?;
        sockopt::setsockopt(&rx, libc::IPPROTO_IP, libc::IP_RECVTTL, &1i32)
            .with_context(|| format!("asking for received TTLs on BFD socket {rx_addr}"))?;
        let tx = source_port_socket(local)?;
        tx.set_ttl(u32::from(bfd::TTL))
            .context("setting TTL 255 on the BFD sending socket")?;
        Ok(Sockets {
            rx: UdpSocket::from_std(rx).context("registering the BFD socket")?,
            tx,
        })
    }

    pub(super) async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        self.rx
            .async_io(Interest::READABLE, || recv_with_ttl(&self.rx, buf))
            .await
    }

    /// Sends without waiting: a full socket buffer loses the packet, as
    /// the network may.
    pub(super) fn send(&self, bytes: &[u8], to: Ipv4Addr) -> io::Result<()> {
        self.tx
            .send_to(bytes, SocketAddrV4::new(to, bfd::PORT))
            .map(|_| ())
    }
}

fn udp(addr: SocketAddrV4) -> io::Result<StdUdp> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(addr).into())?;
    Ok(s.into())
}

/// Tries the source range from a random start until a port is free.
fn source_port_socket(local: Ipv4Addr) -> anyhow::Result<StdUdp> {
    let (lo, hi) = (*bfd::SOURCE_PORTS.start(), *bfd::SOURCE_PORTS.end());
    let span = u32::from(hi - lo) + 1;
    let start = (RandomState::new().hash_one(local) % u64::from(span)) as u32;
    let mut last = None;
    for i in 0..span {
        let port = lo + ((start + i) % span) as u16;
        match udp(SocketAddrV4::new(local, port)) {
            Ok(s) => return Ok(s),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => {
                return Err(e).with_context(|| format!("binding the BFD sending socket on {local}"))
            }
        }
    }
    Err(anyhow::anyhow!(
        "no free UDP port in {lo}-{hi} on {local} for BFD to send from: {last:?}"
    ))
}

fn recv_with_ttl(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(libc::c_int);
    let msg = recvmsg::<SockaddrIn>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let ttl = msg
        .cmsgs()
        .map_err(io::Error::from)?
        .find_map(|c| match c {
            ControlMessageOwned::Ipv4Ttl(t) => u8::try_from(t).ok(),
            _ => None,
        })
        .unwrap_or(0);
    let from = msg
        .address
        .map(|a| SocketAddrV4::new(a.ip(), a.port()))
        .unwrap_or_else(|| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
    Ok(Received {
        len: msg.bytes,
        from,
        ttl,
    })
}

/// The address this node would send from toward `peer` (a route lookup by
/// connecting a UDP socket; nothing is sent).
pub(super) fn facing_address(peer: Ipv4Addr) -> Option<Ipv4Addr> {
    let s = StdUdp::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect(SocketAddrV4::new(peer, bfd::PORT)).ok()?;
    match s.local_addr().ok()? {
        SocketAddr::V4(a) => Some(*a.ip()),
        SocketAddr::V6(_) => None,
    }
}
