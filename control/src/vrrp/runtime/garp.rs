//! Gratuitous ARP from the virtual MAC, sent on an AF_PACKET socket so the
//! frame's source is 00:00:5e:00:01:VRID rather than the interface's MAC:
//! switches learn where the virtual MAC now lives and hosts refresh their
//! neighbour entries for the VIPs.
//!
//! While the instance runs, the virtual MAC sits in the interface's
//! unicast address filter (see `vmac_filter`), so frames addressed to it
//! are accepted without promiscuous mode.

use std::io;
use std::net::Ipv4Addr;

use wire::{ArpMessage, MacAddr};

use super::link::PacketSocket;

/// Ethernet header + ARP for IPv4 over Ethernet; padded to the 60-byte
/// minimum frame.
pub const FRAME_LEN: usize = 60;

/// A gratuitous ARP request announcing `vip` at `mac`, broadcast.
pub fn frame(mac: [u8; 6], vip: Ipv4Addr) -> Result<[u8; FRAME_LEN], wire::WireError> {
    ArpMessage::gratuitous(MacAddr(mac), vip).padded_frame(MacAddr::BROADCAST)
}

/// Sends one gratuitous ARP per VIP.
pub fn announce(sock: &PacketSocket, mac: [u8; 6], vips: &[Ipv4Addr]) -> io::Result<()> {
    for vip in vips {
        let f = frame(mac, *vip).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        sock.send(&f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gratuitous_arp_frame_announces_the_vip_at_the_virtual_mac() {
        let mac = ::vrrp::AddressFamily::Ipv4.virtual_mac(51);
        assert_eq!(mac, [0, 0, 0x5e, 0, 1, 51]);
        let vip = Ipv4Addr::new(10, 77, 0, 101);
        let f = frame(mac, vip).unwrap();
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
