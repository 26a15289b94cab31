//! The advert socket: a raw IPv4 socket for IP protocol 112 bound to the
//! instance's interface. Every advert is received here; what we receive
//! comes with its IP header, so the source, destination, TTL and protocol
//! the core checks are read from it. Adverts are sent from the virtual MAC on the
//! packet socket (`link`); this socket sends only to a unicast peer whose
//! MAC is not resolved yet, and the kernel then builds the IP header (TTL
//! 255 set on the socket) and uses the interface's own MAC.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use ::vrrp::{Datagram, IPPROTO_VRRP, MULTICAST_V4, VRRP_TTL};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use wire::Ipv4Packet;

/// Large enough for any advert (255 IPv4 addresses) and its IP header.
pub(crate) const RECV_BUF: usize = 2048;
/// Room for a flood of hostile adverts while the task is busy.
const RCVBUF_BYTES: usize = 1 << 20;

/// Reads the IPv4 header of a received packet into what the core checks;
/// `None` if the header is malformed. Ethernet padding past the total
/// length is not payload.
pub(crate) fn datagram(packet: &[u8]) -> Option<Datagram<'_>> {
    let ip = Ipv4Packet::new_checked(packet).ok()?;
    Some(Datagram {
        src: IpAddr::V4(ip.src()),
        dst: IpAddr::V4(ip.dst()),
        ttl: ip.ttl(),
        protocol: ip.protocol(),
        payload: packet.get(ip.header_len()..ip.total_len())?,
    })
}

/// The raw socket of one instance.
///
/// It is driven through tokio's `UdpSocket`, which only issues datagram
/// calls (recvfrom, sendto, setsockopt) that a raw socket serves the same
/// way, so no unsafe registration with the reactor is needed.
pub(crate) struct AdvertSocket {
    sock: UdpSocket,
    interface: String,
    primary: Ipv4Addr,
}

impl AdvertSocket {
    /// Opens the socket on `interface`, whose address is `primary`, and joins
    /// the VRRP group there unless adverts go to unicast peers only.
    pub(crate) fn open(interface: &str, primary: Ipv4Addr, multicast: bool) -> io::Result<Self> {
        let ctx = |what: &str, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("VRRP socket on {interface} ({primary}): {what}: {e}"),
            )
        };
        let sock = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(IPPROTO_VRRP))),
        )
        .map_err(|e| ctx("opening a raw IP socket (needs CAP_NET_RAW)", e))?;
        sock.bind_device(Some(interface.as_bytes()))
            .map_err(|e| ctx("binding to the interface", e))?;
        sock.set_ttl(u32::from(VRRP_TTL))
            .map_err(|e| ctx("setting TTL 255", e))?;
        sock.set_multicast_ttl_v4(u32::from(VRRP_TTL))
            .map_err(|e| ctx("setting multicast TTL 255", e))?;
        // Our own adverts coming back would only be counted and dropped.
        sock.set_multicast_loop_v4(false)
            .map_err(|e| ctx("turning multicast loopback off", e))?;
        sock.set_multicast_if_v4(&primary)
            .map_err(|e| ctx("choosing the multicast interface", e))?;
        if multicast {
            sock.join_multicast_v4(&MULTICAST_V4, &primary)
                .map_err(|e| ctx("joining 224.0.0.18", e))?;
        }
        // Best effort: a smaller buffer only means more drops under a flood.
        let _ = sock.set_recv_buffer_size(RCVBUF_BYTES);
        sock.set_nonblocking(true)
            .map_err(|e| ctx("making the socket non-blocking", e))?;
        let sock =
            UdpSocket::from_std(sock.into()).map_err(|e| ctx("registering with the runtime", e))?;
        Ok(AdvertSocket {
            sock,
            interface: interface.to_string(),
            primary,
        })
    }

    /// Waits until a packet can be read.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.sock.readable().await
    }

    /// Reads one packet if one is waiting; `Ok(None)` when none is.
    pub(crate) fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.sock.try_recv(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one VRRP message to `dst`; the kernel adds the IP header.
    pub(crate) fn send(&self, payload: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let addr = SocketAddr::V4(SocketAddrV4::new(dst, 0));
        self.sock.try_send_to(payload, addr).map(|_| ())
    }

    /// Joins the group again after the interface came back; the kernel
    /// usually keeps the membership, so "already joined" is fine.
    pub(crate) fn rejoin(&self) {
        if let Err(e) = self.sock.join_multicast_v4(MULTICAST_V4, self.primary) {
            if e.raw_os_error() != Some(libc::EADDRINUSE) {
                log::warn!(
                    "VRRP socket on {} ({}): rejoining 224.0.0.18 failed: {e}; adverts from other nodes may not arrive",
                    self.interface,
                    self.primary
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(total: u16, ttl: u8, proto: u8) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, ttl, proto, 0, 0];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[10, 0, 0, 2, 224, 0, 0, 18]);
        h
    }

    #[test]
    fn ip_header_fields_are_read_and_bad_headers_refused() {
        let mut p = header(28, 255, 112);
        p.extend_from_slice(&[0x31, 51, 100, 0, 0, 10, 0, 0]);
        let d = datagram(&p).expect("valid packet");
        assert_eq!(d.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(d.dst, IpAddr::V4(MULTICAST_V4));
        assert_eq!(d.ttl, 255);
        assert_eq!(d.protocol, IPPROTO_VRRP);
        assert_eq!(d.payload, &p[20..]);

        // Trailing padding beyond the total length is not payload.
        let mut padded = p.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(datagram(&padded).expect("padded").payload.len(), 8);

        assert!(datagram(&p[..19]).is_none(), "short header");
        assert!(
            datagram(&p[..27]).is_none(),
            "total length beyond the packet"
        );
        let mut v6 = p.clone();
        v6[0] = 0x65;
        assert!(datagram(&v6).is_none(), "version 6");
        let mut ihl = p.clone();
        ihl[0] = 0x44;
        assert!(datagram(&ihl).is_none(), "IHL below 5");
        let mut long_ihl = p.clone();
        long_ihl[0] = 0x4f;
        assert!(datagram(&long_ihl).is_none(), "IHL beyond the packet");
        // Another protocol is read; the core refuses it.
        let tcp = header(20, 255, 6);
        assert_eq!(datagram(&tcp).map(|d| d.protocol), Some(6));
    }
}
