//! Applying a connection's rewrite to an IPv6 frame: hop limit, addresses
//! and ports, with the TCP/UDP checksum patched for the IPv6 pseudo-header
//! and a partial checksum finished.

use std::net::Ipv6Addr;

use super::super::rewrite::set_macs;
use super::super::Ip;
use crate::flow::{Ip6, Rewrite};
use crate::verdict::DropReason;
use wire::{ip_proto, Ipv6Packet, MacAddr, TcpSegment, UdpDatagram};

pub(super) fn apply(frame: &mut [u8], ip: &Ip<Ip6>, rw: &Rewrite<Ip6>) -> Result<(), DropReason> {
    set_macs(frame, MacAddr(rw.src_mac), MacAddr(rw.dst_mac))?;
    let mut pkt = Ipv6Packet::new_checked(&mut frame[ip.l3..ip.end])
        .map_err(|_| DropReason::TruncatedIpv6)?;
    let hops = pkt.hop_limit();
    if hops <= 1 {
        return Err(DropReason::TtlExpired);
    }
    pkt.set_hop_limit(hops - 1);
    let (old_src, old_dst) = (pkt.src(), pkt.dst());
    let (new_src, new_dst) = (Ipv6Addr::from(rw.src_ip), Ipv6Addr::from(rw.dst_ip));
    if old_src != new_src {
        pkt.set_src(new_src);
    }
    if old_dst != new_dst {
        pkt.set_dst(new_dst);
    }
    let l4 = &mut frame[ip.l4..ip.end];
    match ip.proto {
        ip_proto::TCP => {
            let mut t = TcpSegment::new_checked(l4).map_err(|_| DropReason::TruncatedL4)?;
            let partial = t.has_partial_checksum_v6(old_src, old_dst);
            if old_src != new_src {
                t.update_checksum_for_addr_v6(old_src, new_src);
            }
            if old_dst != new_dst {
                t.update_checksum_for_addr_v6(old_dst, new_dst);
            }
            if t.src_port() != rw.src_port {
                t.set_src_port(rw.src_port);
            }
            if t.dst_port() != rw.dst_port {
                t.set_dst_port(rw.dst_port);
            }
            if partial {
                t.fill_checksum_v6(new_src, new_dst);
            }
        }
        _ => {
            let mut u = UdpDatagram::new_checked(l4).map_err(|_| DropReason::TruncatedL4)?;
            let partial = u.has_partial_checksum_v6(old_src, old_dst);
            if old_src != new_src {
                u.update_checksum_for_addr_v6(old_src, new_src);
            }
            if old_dst != new_dst {
                u.update_checksum_for_addr_v6(old_dst, new_dst);
            }
            if u.src_port() != rw.src_port {
                u.set_src_port(rw.src_port);
            }
            if u.dst_port() != rw.dst_port {
                u.set_dst_port(rw.dst_port);
            }
            if partial {
                u.fill_checksum_v6(new_src, new_dst);
            }
        }
    }
    Ok(())
}
