//! Answering ARP for the VIPs and full-NAT addresses this node owns, and
//! defending them against other hosts' claims.

use std::net::Ipv4Addr;

use crate::arp_claims::Claim;
use crate::service::{LocalAddr, LocalKind, Snapshot};
use crate::verdict::{DropReason, PortId, Verdict};
use wire::{ArpMessage, ArpPacket, EthernetFrame, MacAddr};

/// The MAC this node answers for `addr` with on `ingress`, if it owns it.
fn owned_mac(snap: &Snapshot, addr: Ipv4Addr, ingress: PortId) -> Option<MacAddr> {
    answer_mac(snap, snap.locals.get(&addr.to_bits()), ingress)
}

/// The MAC this node answers address resolution (ARP or IPv6 Neighbor
/// Discovery) for `local` with on `ingress`, if it owns it.
pub(super) fn answer_mac(
    snap: &Snapshot,
    local: Option<&LocalAddr>,
    ingress: PortId,
) -> Option<MacAddr> {
    let local = local.filter(|l| l.owned)?;
    match local.kind {
        LocalKind::Vip => Some(local.mac),
        LocalKind::Snat | LocalKind::Floating if local.shared_mac => Some(local.mac),
        // Backends on any port may ask for a full-NAT address: answer with
        // the MAC of the port they asked on.
        LocalKind::Snat | LocalKind::Floating => {
            snap.ports.get(usize::from(ingress)).map(|p| p.mac)
        }
    }
}

/// Turns an ARP request for an owned address into the reply, and another
/// MAC's reply or announcement for an owned address into our gratuitous
/// ARP, in place.
pub(super) fn answer(
    snap: &Snapshot,
    frame: &mut [u8],
    l3: usize,
    ingress: PortId,
) -> Result<Verdict, DropReason> {
    let (asker_mac, asker_ip, target) = {
        let arp = ArpPacket::new_checked(&frame[l3..]).map_err(|_| DropReason::MalformedArp)?;
        let (sender_mac, sender_ip) = (arp.sender_mac(), arp.sender_ip());
        // Someone else says it has our address: clients that believe it
        // send our traffic there, so say otherwise at once.
        if let Some(mac) = owned_mac(snap, sender_ip, ingress).filter(|m| *m != sender_mac) {
            snap.arp_claims.record(Claim {
                addr: sender_ip,
                mac: sender_mac,
                port: ingress,
            });
            return announce(frame, l3, mac, sender_ip, ingress);
        }
        // A gratuitous ARP is an announcement, typically a new VRRP master's
        // for the very VIP: answering it from the virtual MAC would make the
        // switch learn that MAC back toward this node.
        if sender_ip == arp.target_ip() {
            return Err(DropReason::ArpAnnouncement);
        }
        if arp.operation() != ArpPacket::<&[u8]>::REQUEST {
            return Err(DropReason::ArpNotOwned);
        }
        (sender_mac, sender_ip, arp.target_ip())
    };
    let mac = owned_mac(snap, target, ingress).ok_or(DropReason::ArpNotOwned)?;
    let mut arp = ArpPacket::new_checked(&mut frame[l3..]).map_err(|_| DropReason::MalformedArp)?;
    ArpMessage::reply(mac, target, asker_mac, asker_ip).emit(&mut arp);
    let mut eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::TruncatedEthernet)?;
    eth.set_dst(asker_mac);
    eth.set_src(mac);
    Ok(Verdict::Tx(ingress))
}

/// Rewrites the frame into a gratuitous ARP request from `mac` for `addr`,
/// broadcast: every host on the segment, and its switch, learn `mac` again.
fn announce(
    frame: &mut [u8],
    l3: usize,
    mac: MacAddr,
    addr: Ipv4Addr,
    ingress: PortId,
) -> Result<Verdict, DropReason> {
    let mut arp = ArpPacket::new_checked(&mut frame[l3..]).map_err(|_| DropReason::MalformedArp)?;
    ArpMessage::gratuitous(mac, addr).emit(&mut arp);
    let mut eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::TruncatedEthernet)?;
    eth.set_dst(MacAddr::BROADCAST);
    eth.set_src(mac);
    Ok(Verdict::Tx(ingress))
}
