//! Applying a connection's [`Rewrite`] to a frame, with incremental checksums.

use std::net::Ipv4Addr;

use super::Ip;
use crate::flow::Rewrite;
use crate::verdict::DropReason;
use wire::{ip_proto, EthernetFrame, Ipv4Packet, MacAddr, TcpSegment, UdpDatagram};

/// Rewrites MACs, addresses, ports and TTL of a TCP or UDP packet. A
/// checksum the sender left for its NIC to finish is finished here: the
/// frame leaves through AF_XDP or XDP, where no NIC or kernel completes it.
pub(super) fn apply(frame: &mut [u8], ip: &Ip, rw: &Rewrite) -> Result<(), DropReason> {
    set_macs(frame, MacAddr(rw.src_mac), MacAddr(rw.dst_mac))?;
    let mut pkt = Ipv4Packet::new_checked(&mut frame[ip.l3..ip.end])
        .map_err(|_| DropReason::TruncatedIpv4)?;
    if pkt.ttl() <= 1 {
        return Err(DropReason::TtlExpired);
    }
    pkt.decrement_ttl();
    let (old_src, old_dst) = (pkt.src(), pkt.dst());
    let (new_src, new_dst) = (
        Ipv4Addr::from_bits(rw.src_ip),
        Ipv4Addr::from_bits(rw.dst_ip),
    );
    if old_src != new_src {
        pkt.set_src(new_src);
    }
    if old_dst != new_dst {
        pkt.set_dst(new_dst);
    }
    let l4 = pkt.payload_mut();
    match ip.proto {
        ip_proto::TCP => {
            let mut t = TcpSegment::new_checked(l4).map_err(|_| DropReason::TruncatedL4)?;
            let partial = t.has_partial_checksum_v4(old_src, old_dst);
            if old_src != new_src {
                t.update_checksum_for_addr(old_src, new_src);
            }
            if old_dst != new_dst {
                t.update_checksum_for_addr(old_dst, new_dst);
            }
            if t.src_port() != rw.src_port {
                t.set_src_port(rw.src_port);
            }
            if t.dst_port() != rw.dst_port {
                t.set_dst_port(rw.dst_port);
            }
            if partial {
                t.fill_checksum_v4(new_src, new_dst);
            }
        }
        _ => {
            let mut u = UdpDatagram::new_checked(l4).map_err(|_| DropReason::TruncatedL4)?;
            let partial = u.has_partial_checksum_v4(old_src, old_dst);
            if old_src != new_src {
                u.update_checksum_for_addr(old_src, new_src);
            }
            if old_dst != new_dst {
                u.update_checksum_for_addr(old_dst, new_dst);
            }
            if u.src_port() != rw.src_port {
                u.set_src_port(rw.src_port);
            }
            if u.dst_port() != rw.dst_port {
                u.set_dst_port(rw.dst_port);
            }
            if partial {
                u.fill_checksum_v4(new_src, new_dst);
            }
        }
    }
    Ok(())
}

/// The frame's source and destination MACs.
pub(super) fn macs(frame: &[u8]) -> Result<(MacAddr, MacAddr), DropReason> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::TruncatedEthernet)?;
    Ok((eth.src(), eth.dst()))
}

pub(super) fn set_macs(frame: &mut [u8], src: MacAddr, dst: MacAddr) -> Result<(), DropReason> {
    let mut eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::TruncatedEthernet)?;
    eth.set_src(src);
    eth.set_dst(dst);
    Ok(())
}
