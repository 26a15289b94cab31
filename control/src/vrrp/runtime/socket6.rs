//! The IPv6 advert socket: a raw IPv6 socket for next header 112 bound to
//! the instance's interface. An IPv6 raw socket hands over the payload
//! only, so the source comes from the sender address and the destination
//! and hop limit from IPV6_PKTINFO and IPV6_HOPLIMIT ancillary data.
//! IPV6_CHECKSUM stays unset: the core fills and checks the VRRP checksum
//! itself. Like its IPv4 twin it sends only to a unicast peer whose MAC is
//! not resolved yet; adverts otherwise leave from the virtual MAC.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;

use ::vrrp::{Datagram, IPPROTO_VRRP, MULTICAST_V6, VRRP_TTL};
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn6};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Room for a flood of hostile adverts while the task is busy.
const RCVBUF_BYTES: usize = 1 << 20;

/// The raw IPv6 socket of one instance; see [`super::socket::AdvertSocket`]
/// for why tokio's `UdpSocket` can drive it.
pub(crate) struct AdvertSocket6 {
    sock: UdpSocket,
    interface: String,
    ifindex: u32,
}

/// What one read returned: the payload's length and the header fields.
pub(crate) struct Received6 {
    pub len: usize,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
}

impl Received6 {
    /// The datagram the core checks, its payload in `buf`.
    pub(crate) fn datagram<'b>(&self, buf: &'b [u8]) -> Option<Datagram<'b>> {
        Some(Datagram {
            src: IpAddr::V6(self.src),
            dst: IpAddr::V6(self.dst),
            ttl: self.hop_limit,
            protocol: IPPROTO_VRRP,
            payload: buf.get(..self.len)?,
        })
    }
}

impl AdvertSocket6 {
    /// Opens the socket on `interface` and joins ff02::12 there unless
    /// adverts go to unicast peers only.
    pub(crate) fn open(interface: &str, ifindex: u32, multicast: bool) -> io::Result<Self> {
        let ctx = |what: &str, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("VRRP IPv6 socket on {interface}: {what}: {e}"),
            )
        };
        let sock = Socket::new(
            Domain::IPV6,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )
        .map_err(|e| ctx("opening a raw IPv6 socket (needs CAP_NET_RAW)", e))?;
        sock.bind_device(Some(interface.as_bytes()))
            .map_err(|e| ctx("binding to the interface", e))?;
        sock.set_unicast_hops_v6(u32::from(VRRP_TTL))
            .map_err(|e| ctx("setting hop limit 255", e))?;
        sock.set_multicast_hops_v6(u32::from(VRRP_TTL))
            .map_err(|e| ctx("setting multicast hop limit 255", e))?;
        // Our own adverts coming back would only be counted and dropped.
        sock.set_multicast_loop_v6(false)
            .map_err(|e| ctx("turning multicast loopback off", e))?;
        sock.set_multicast_if_v6(ifindex)
            .map_err(|e| ctx("choosing the multicast interface", e))?;
        setsockopt(&sock, sockopt::Ipv6RecvHopLimit, &true)
            .map_err(|e| ctx("asking for the hop limit of received adverts", e.into()))?;
        setsockopt(&sock, sockopt::Ipv6RecvPacketInfo, &true)
            .map_err(|e| ctx("asking for the destination of received adverts", e.into()))?;
        if multicast {
            sock.join_multicast_v6(&MULTICAST_V6, ifindex)
                .map_err(|e| ctx("joining ff02::12", e))?;
        }
        // Best effort: a smaller buffer only means more drops under a flood.
        let _ = sock.set_recv_buffer_size(RCVBUF_BYTES);
        sock.set_nonblocking(true)
            .map_err(|e| ctx("making the socket non-blocking", e))?;
        let sock =
            UdpSocket::from_std(sock.into()).map_err(|e| ctx("registering with the runtime", e))?;
        Ok(AdvertSocket6 {
            sock,
            interface: interface.to_string(),
            ifindex,
        })
    }

    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.sock.readable().await
    }

    /// Reads one packet if one is waiting: `Ok(None)` when none is,
    /// `Ok(Some(None))` when its ancillary data is missing.
    pub(crate) fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<Option<Received6>>> {
        let fd = self.sock.as_raw_fd();
        let r = self.sock.try_io(Interest::READABLE, || {
            let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
            let mut iov = [IoSliceMut::new(buf)];
            let msg = recvmsg::<SockaddrIn6>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
                .map_err(io::Error::from)?;
            let (mut dst, mut hop_limit) = (None, None);
            for c in msg.cmsgs().map_err(io::Error::from)? {
                match c {
                    ControlMessageOwned::Ipv6PacketInfo(info) => {
                        dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                    }
                    ControlMessageOwned::Ipv6HopLimit(h) => hop_limit = u8::try_from(h).ok(),
                    _ => {}
                }
            }
            Ok(match (msg.address.map(|a| a.ip()), dst, hop_limit) {
                (Some(src), Some(dst), Some(hop_limit)) => Some(Received6 {
                    len: msg.bytes,
                    src,
                    dst,
                    hop_limit,
                }),
                _ => None,
            })
        });
        match r {
            Ok(got) => Ok(Some(got)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one VRRP message to `dst` on the interface; the kernel adds
    /// the IPv6 header.
    pub(crate) fn send(&self, payload: &[u8], dst: Ipv6Addr) -> io::Result<()> {
        let addr = SocketAddr::V6(SocketAddrV6::new(dst, 0, 0, self.ifindex));
        self.sock.try_send_to(payload, addr).map(|_| ())
    }

    /// Joins ff02::12 again after the interface came back; "already
    /// joined" is fine.
    pub(crate) fn rejoin(&self) {
        if let Err(e) = self.sock.join_multicast_v6(&MULTICAST_V6, self.ifindex) {
            if e.raw_os_error() != Some(libc::EADDRINUSE) {
                log::warn!(
                    "VRRP IPv6 socket on {}: rejoining ff02::12 failed: {e}; adverts from other nodes may not arrive",
                    self.interface
                );
            }
        }
    }
}
