//! The advert socket: a raw IPv4 socket for IP protocol 112 bound to the
//! instance's interface. Every advert is received here; what we receive
//! comes with its IP header, so the source, destination and TTL the core
//! needs are read from it. Adverts are sent from the virtual MAC on the
//! packet socket (`link`); this socket sends only to a unicast peer whose
//! MAC is not resolved yet, and the kernel then builds the IP header (TTL
//! 255 set on the socket) and uses the interface's own MAC.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::vrrp::{IPPROTO_VRRP, MULTICAST_V4, VRRP_TTL};

/// Large enough for any advert (255 IPv4 addresses) and its IP header.
pub const RECV_BUF: usize = 2048;
/// Room for a flood of hostile adverts while the task is busy.
const RCVBUF_BYTES: usize = 1 << 20;

/// An advert as it arrived: IP header fields and the VRRP message.
#[derive(Debug, PartialEq, Eq)]
pub struct Received<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub payload: &'a [u8],
}

/// Splits a received IPv4 packet into header fields and payload; `None` if
/// the header is malformed or the packet is not VRRP.
pub fn parse_ipv4(packet: &[u8]) -> Option<Received<'_>> {
    let [ver_ihl, _, len_hi, len_lo, _, _, _, _, ttl, proto, _, _, s0, s1, s2, s3, d0, d1, d2, d3, ..] =
        *packet
    else {
        return None;
    };
    let ihl = usize::from(ver_ihl & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([len_hi, len_lo]));
    if ver_ihl >> 4 != 4 || ihl < 20 || proto != IPPROTO_VRRP {
        return None;
    }
    // Ethernet padding can trail the packet, and a lying length must not
    // reach past what arrived.
    let end = total.min(packet.len());
    let payload = packet.get(ihl..end)?;
    Some(Received {
        src: Ipv4Addr::new(s0, s1, s2, s3),
        dst: Ipv4Addr::new(d0, d1, d2, d3),
        ttl,
        payload,
    })
}

/// The raw socket of one instance.
///
/// It is driven through tokio's `UdpSocket`, which only issues datagram
/// calls (recvfrom, sendto, setsockopt) that a raw socket serves the same
/// way, so no unsafe registration with the reactor is needed.
pub struct AdvertSocket {
    sock: UdpSocket,
    interface: String,
    primary: Ipv4Addr,
}

impl AdvertSocket {
    /// Opens the socket on `interface`, whose address is `primary`, and joins
    /// the VRRP group there unless adverts go to unicast peers only.
    pub fn open(interface: &str, primary: Ipv4Addr, multicast: bool) -> io::Result<Self> {
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
    pub async fn readable(&self) -> io::Result<()> {
        self.sock.readable().await
    }

    /// Reads one packet if one is waiting; `Ok(None)` when none is.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.sock.try_recv(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends one VRRP message to `dst`; the kernel adds the IP header.
    pub fn send(&self, payload: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let addr = SocketAddr::V4(SocketAddrV4::new(dst, 0));
        self.sock.try_send_to(payload, addr).map(|_| ())
    }

    /// Joins the group again after the interface came back; the kernel
    /// usually keeps the membership, so "already joined" is fine.
    pub fn rejoin(&self) {
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

/// Where adverts go: the group, or each unicast peer.
pub fn destinations(unicast_peers: &[IpAddr]) -> Vec<Ipv4Addr> {
    if unicast_peers.is_empty() {
        return vec![MULTICAST_V4];
    }
    unicast_peers
        .iter()
        .filter_map(|p| match p {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
        .collect()
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
        let r = parse_ipv4(&p).expect("valid packet");
        assert_eq!(r.src, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(r.dst, MULTICAST_V4);
        assert_eq!(r.ttl, 255);
        assert_eq!(r.payload, &p[20..]);

        // Trailing padding beyond the total length is not payload.
        let mut padded = p.clone();
        padded.extend_from_slice(&[0; 6]);
        assert_eq!(parse_ipv4(&padded).expect("padded").payload.len(), 8);

        assert!(parse_ipv4(&p[..19]).is_none(), "short header");
        let mut v6 = p.clone();
        v6[0] = 0x65;
        assert!(parse_ipv4(&v6).is_none(), "version 6");
        let mut ihl = p.clone();
        ihl[0] = 0x44;
        assert!(parse_ipv4(&ihl).is_none(), "IHL below 5");
        let mut long_ihl = p.clone();
        long_ihl[0] = 0x4f;
        assert!(parse_ipv4(&long_ihl).is_none(), "IHL beyond the packet");
        assert!(parse_ipv4(&header(20, 255, 6)).is_none(), "not VRRP");
    }

    #[test]
    fn unicast_peers_replace_the_group() {
        assert_eq!(destinations(&[]), vec![MULTICAST_V4]);
        let peers = [
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 4)),
        ];
        assert_eq!(
            destinations(&peers),
            vec![Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 4)]
        );
    }
}
