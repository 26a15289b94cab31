//! Answering Neighbor Solicitations for the IPv6 VIPs and full-NAT
//! addresses this node owns, with the MAC an ARP answer for an IPv4 one
//! would carry.

use super::super::arp::answer_mac;
use super::super::rewrite::set_macs;
use super::super::Ip;
use crate::flow::Ip6;
use crate::service::Snapshot;
use crate::verdict::{DropReason, PortId, Verdict};
use wire::{
    write_neighbor_advert, EthernetFrame, Ipv6Packet, NeighborAdvertMessage, NeighborSolicitation,
};

/// Turns a solicitation for an owned address into the solicited
/// advertisement, in place, sent back by `ingress`. A solicitation carrying
/// the asker's link-layer address (as every one not probing for duplicates
/// from Linux does) is as long as the answer.
pub(super) fn answer(
    snap: &Snapshot,
    frame: &mut [u8],
    ip: &Ip<Ip6>,
    ingress: PortId,
) -> Result<Verdict, DropReason> {
    let (msg, asker_mac) = {
        let pkt = Ipv6Packet::new_checked(&frame[ip.l3..ip.end])
            .map_err(|_| DropReason::TruncatedIpv6)?;
        let ns = NeighborSolicitation::new_checked(&frame[ip.l4..ip.end])
            .map_err(|_| DropReason::MalformedNd)?;
        ns.validate(&pkt).map_err(|_| DropReason::MalformedNd)?;
        // Another host probing for the address before taking it: vipd
        // leaves the defence to its VRRP instance and its operator.
        if pkt.src().is_unspecified() {
            return Err(DropReason::NdDadProbe);
        }
        let target = ns.target();
        let mac = answer_mac(snap, snap.locals6.get(&target.octets()), ingress)
            .ok_or(DropReason::NdNotOwned)?;
        let asker_mac = match ns.source_link_addr() {
            Some(m) => m,
            None => EthernetFrame::new_checked(&frame[..])
                .map_err(|_| DropReason::TruncatedEthernet)?
                .src(),
        };
        (
            NeighborAdvertMessage::reply(target, mac, pkt.src()),
            asker_mac,
        )
    };
    write_neighbor_advert(&mut frame[ip.l3..], &msg).map_err(|_| DropReason::NdUnanswered)?;
    set_macs(frame, msg.target_mac, asker_mac)?;
    // Bytes past the advertisement are left as Ethernet padding: the IPv6
    // payload length bounds what the asker reads.
    Ok(Verdict::Tx(ingress))
}
