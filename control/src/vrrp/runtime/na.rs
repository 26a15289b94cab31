//! Unsolicited Neighbor Advertisements, the IPv6 counterpart of gratuitous
//! ARP: one per VIP to all nodes, from and for the virtual MAC, sent on the
//! instance's packet socket so switches learn the virtual MAC's port too.

use std::io;
use std::net::Ipv6Addr;

use wire::{
    ethertype, multicast_mac, write_ethernet_header, write_neighbor_advert, EthernetHeader,
    MacAddr, NeighborAdvertMessage,
};

use super::link::PacketSocket;

/// Ethernet header + IPv6 + advertisement with its link-layer option.
pub const FRAME_LEN: usize = 14 + NeighborAdvertMessage::LEN;

/// The advertisement that `vip` is at `mac`: Override and Router set,
/// Solicited clear (RFC 5798 §6.4.2), to ff02::1.
pub fn frame(mac: [u8; 6], vip: Ipv6Addr) -> Result<[u8; FRAME_LEN], wire::WireError> {
    let na = NeighborAdvertMessage {
        router: true,
        ..NeighborAdvertMessage::unsolicited(vip, MacAddr(mac))
    };
    let mut f = [0u8; FRAME_LEN];
    let at = write_ethernet_header(
        &mut f,
        &EthernetHeader {
            dst: multicast_mac(na.dst),
            src: MacAddr(mac),
            ethertype: ethertype::IPV6,
        },
    )?;
    write_neighbor_advert(f.get_mut(at..).ok_or(wire::WireError::Truncated)?, &na)?;
    Ok(f)
}

/// Sends one unsolicited advertisement per VIP.
pub fn announce(sock: &PacketSocket, mac: [u8; 6], vips: &[Ipv6Addr]) -> io::Result<()> {
    for vip in vips {
        let f = frame(mac, *vip).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        sock.send(&f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::{EthernetFrame, Icmpv6Packet, Ipv6Packet, NeighborAdvertisement};

    #[test]
    fn advertisement_announces_the_vip_at_the_virtual_mac_to_all_nodes() {
        let mac = ::vrrp::AddressFamily::Ipv6.virtual_mac(51);
        let vip: Ipv6Addr = "2001:db8::50".parse().unwrap();
        let f = frame(mac, vip).unwrap();
        let eth = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(eth.src(), MacAddr(mac));
        assert_eq!(eth.dst(), MacAddr([0x33, 0x33, 0, 0, 0, 1]));
        assert_eq!(eth.ethertype(), ethertype::IPV6);
        let ip = Ipv6Packet::new_checked(eth.payload()).unwrap();
        assert_eq!(ip.dst(), "ff02::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.hop_limit(), 255);
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(ip.src(), ip.dst()), "ICMPv6 checksum");
        let na = NeighborAdvertisement::new_checked(ip.payload()).unwrap();
        assert_eq!(na.target(), vip);
        assert_eq!(na.target_link_addr(), Some(MacAddr(mac)));
        assert!(na.override_flag() && na.router() && !na.solicited());
        na.validate(&ip).expect("a valid advertisement");
    }
}
