//! Gratuitous ARP from the virtual MAC, sent on an AF_PACKET socket so the
//! frame's source is 00:00:5e:00:01:VRID rather than the interface's MAC:
//! switches learn where the virtual MAC now lives and hosts refresh their
//! neighbour entries for the VIPs.
//!
//! Nothing adds the virtual MAC to the NIC's unicast filter. On veth (and in
//! generic XDP) the XDP program sees every frame before any MAC filtering,
//! so frames to the virtual MAC reach the dataplane anyway. On a physical
//! NIC in native mode the hardware filter runs first: there the virtual MAC
//! must be added to the interface's unicast list (promiscuous mode, or a
//! secondary unicast address) for traffic addressed to it to arrive.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Socket, Type};

const ETH_P_ARP: u16 = 0x0806;
/// Ethernet header + ARP for IPv4 over Ethernet; padded to the 60-byte
/// minimum frame.
pub const FRAME_LEN: usize = 60;

/// The virtual MAC of `vrid` (RFC 5798 §7.3, IPv4).
pub fn virtual_mac(vrid: u8) -> [u8; 6] {
    [0x00, 0x00, 0x5e, 0x00, 0x01, vrid]
}

/// A gratuitous ARP request announcing `vip` at `mac`, broadcast.
pub fn frame(mac: [u8; 6], vip: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    let ip = vip.octets();
    let parts: [&[u8]; 10] = [
        &[0xff; 6],                // destination: broadcast
        &mac,                      // source: the virtual MAC
        &ETH_P_ARP.to_be_bytes(),  // ethertype
        &[0x00, 0x01, 0x08, 0x00], // hardware Ethernet, protocol IPv4
        &[6, 4],                   // address lengths
        &[0x00, 0x01],             // request
        &mac,                      // sender MAC
        &ip,                       // sender IP: the VIP
        &[0; 6],                   // target MAC: unknown
        &ip,                       // target IP: the VIP again
    ];
    let mut at = 0;
    for part in parts {
        if let Some(dst) = f.get_mut(at..at + part.len()) {
            dst.copy_from_slice(part);
        }
        at += part.len();
    }
    f
}

/// A packet socket bound to one interface.
pub struct GarpSocket {
    sock: Socket,
}

impl GarpSocket {
    pub fn open(interface: &str, ifindex: u32) -> io::Result<Self> {
        let ctx = |what: &str, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("gratuitous ARP socket on {interface}: {what}: {e}"),
            )
        };
        // Protocol 0: this socket only sends, it receives nothing.
        let sock = Socket::new(Domain::PACKET, Type::RAW, None)
            .map_err(|e| ctx("opening a packet socket (needs CAP_NET_RAW)", e))?;
        let index = i32::try_from(ifindex).map_err(|_| {
            ctx(
                "interface index out of range",
                io::Error::from(io::ErrorKind::InvalidInput),
            )
        })?;
        let addr = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: 0,
            sll_ifindex: index,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `addr` is a fully initialised sockaddr_ll that lives across
        // the call, `len` is its exact size, and the descriptor is owned by
        // `sock`; bind reads the address and writes no memory of ours.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                std::ptr::addr_of!(addr).cast::<libc::sockaddr>(),
                len,
            )
        };
        if rc != 0 {
            return Err(ctx("binding to the interface", io::Error::last_os_error()));
        }
        sock.set_nonblocking(true)
            .map_err(|e| ctx("making the socket non-blocking", e))?;
        Ok(GarpSocket { sock })
    }

    /// Sends one gratuitous ARP per VIP.
    pub fn announce(&self, mac: [u8; 6], vips: &[Ipv4Addr]) -> io::Result<()> {
        for vip in vips {
            self.sock.send(&frame(mac, *vip))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gratuitous_arp_frame_announces_the_vip_at_the_virtual_mac() {
        let mac = virtual_mac(51);
        assert_eq!(mac, [0, 0, 0x5e, 0, 1, 51]);
        let vip = Ipv4Addr::new(10, 77, 0, 101);
        let f = frame(mac, vip);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &mac);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[14..22], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&f[22..28], &mac, "sender MAC");
        assert_eq!(&f[28..32], &vip.octets(), "sender IP");
        assert_eq!(&f[32..38], &[0; 6], "target MAC");
        assert_eq!(&f[38..42], &vip.octets(), "target IP");
        assert!(f[42..].iter().all(|b| *b == 0), "padding");
    }
}
