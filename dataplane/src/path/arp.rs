//! Answering ARP for the VIPs and full-NAT addresses this node owns.

use crate::service::{LocalKind, Snapshot};
use crate::verdict::{DropReason, PortId, Verdict};
use crate::wire::{ArpPacket, EthernetFrame};

/// Turns an ARP request for an owned address into the reply, in place.
pub(super) fn answer(
    snap: &Snapshot,
    frame: &mut [u8],
    l3: usize,
    ingress: PortId,
) -> Result<Verdict, DropReason> {
    let (asker_mac, asker_ip, target) = {
        let arp = ArpPacket::new_checked(&frame[l3..]).map_err(|_| DropReason::MalformedArp)?;
        if arp.operation() != ArpPacket::<&[u8]>::REQUEST {
            return Err(DropReason::ArpNotOwned);
        }
        // A gratuitous ARP is an announcement, typically a new VRRP master's
        // for the very VIP: answering it from the virtual MAC would make the
        // switch learn that MAC back toward this node.
        if arp.sender_ip() == arp.target_ip() {
            return Err(DropReason::ArpAnnouncement);
        }
        (arp.sender_mac(), arp.sender_ip(), arp.target_ip())
    };
    let local = match snap.locals.get(&target.to_bits()) {
        Some(l) if l.owned => l,
        _ => return Err(DropReason::ArpNotOwned),
    };
    let mac = match local.kind {
        LocalKind::Vip => local.mac,
        // Backends on any port may ask for a full-NAT address: answer with the
        // MAC of the port they asked on.
        LocalKind::Snat => snap
            .ports
            .get(usize::from(ingress))
            .map(|p| p.mac)
            .ok_or(DropReason::ArpNotOwned)?,
    };
    let mut arp = ArpPacket::new_checked(&mut frame[l3..]).map_err(|_| DropReason::MalformedArp)?;
    arp.set_operation(ArpPacket::<&[u8]>::REPLY);
    arp.set_target_mac(asker_mac);
    arp.set_target_ip(asker_ip);
    arp.set_sender_mac(mac);
    arp.set_sender_ip(target);
    let mut eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::TruncatedEthernet)?;
    eth.set_dst(asker_mac);
    eth.set_src(mac);
    Ok(Verdict::Tx(ingress))
}
