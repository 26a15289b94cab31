//! The advert socket of the instance's address family.

use std::io;
use std::net::IpAddr;

use ::vrrp::Datagram;

use super::socket::{self, AdvertSocket};
use super::socket6::AdvertSocket6;

pub(crate) enum Endpoint {
    V4(AdvertSocket),
    V6(AdvertSocket6),
}

/// One read off the socket.
pub(crate) enum Recv<'b> {
    /// Nothing was waiting.
    Empty,
    /// A packet whose IP header (or IPv6 ancillary data) could not be read.
    Malformed,
    Datagram(Datagram<'b>),
}

impl Endpoint {
    /// Opens the socket for adverts from `primary` on `interface`.
    pub(crate) fn open(
        interface: &str,
        ifindex: u32,
        primary: IpAddr,
        multicast: bool,
    ) -> io::Result<Self> {
        Ok(match primary {
            IpAddr::V4(a) => Endpoint::V4(AdvertSocket::open(interface, a, multicast)?),
            IpAddr::V6(_) => Endpoint::V6(AdvertSocket6::open(interface, ifindex, multicast)?),
        })
    }

    pub(crate) async fn readable(&self) -> io::Result<()> {
        match self {
            Endpoint::V4(s) => s.readable().await,
            Endpoint::V6(s) => s.readable().await,
        }
    }

    pub(crate) fn try_recv<'b>(&self, buf: &'b mut [u8]) -> io::Result<Recv<'b>> {
        let got = match self {
            Endpoint::V4(s) => s
                .try_recv(buf)?
                .map(|n| buf.get(..n).and_then(socket::datagram)),
            Endpoint::V6(s) => s.try_recv(buf)?.map(|r| r.and_then(|r| r.datagram(buf))),
        };
        Ok(match got {
            None => Recv::Empty,
            Some(None) => Recv::Malformed,
            Some(Some(d)) => Recv::Datagram(d),
        })
    }

    /// Sends one VRRP message to `dst` through the kernel's IP stack.
    pub(crate) fn send(&self, payload: &[u8], dst: IpAddr) -> io::Result<()> {
        match (self, dst) {
            (Endpoint::V4(s), IpAddr::V4(d)) => s.send(payload, d),
            (Endpoint::V6(s), IpAddr::V6(d)) => s.send(payload, d),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{dst} is not of the instance's address family"),
            )),
        }
    }

    pub(crate) fn rejoin(&self) {
        match self {
            Endpoint::V4(s) => s.rejoin(),
            Endpoint::V6(s) => s.rejoin(),
        }
    }
}
