//! ICMPv6: Neighbor Solicitations (see `nd`), echo replies for owned
//! addresses, Packet Too Big for packets over the egress MTU, and errors
//! quoting a tracked connection, which follow that connection. Router
//! messages are the kernel's.

use std::net::Ipv6Addr;

use super::super::rewrite::{macs, set_macs};
use super::super::{Ip, Worker};
use super::{error_source, nd};
use crate::flow::{FlowKey, Ip6};
use crate::service::LocalAddr;
use crate::verdict::{DropReason, PortId, Verdict};
use wire::{
    icmpv6_type, ip_proto, walk_ext_headers, write_echo_reply, write_icmpv6_error, Icmpv6Error,
    Icmpv6Packet, Ipv6ChainError, Ipv6Packet, MacAddr,
};

/// Hop limit of the messages the node originates.
const HOP_LIMIT: u8 = 64;
const ICMP_HEADER: usize = 8;
const IPV6_HEADER: usize = Ipv6Packet::<&[u8]>::HEADER_LEN;

pub(in crate::path) fn handle(
    w: &mut Worker,
    frame: &mut [u8],
    ip: &Ip<Ip6>,
    ingress: PortId,
    local: Option<LocalAddr>,
) -> Result<Verdict, DropReason> {
    let msg_type = Icmpv6Packet::new_checked(&frame[ip.l4..ip.end])
        .map_err(|_| DropReason::TruncatedL4)?
        .msg_type();
    match msg_type {
        icmpv6_type::NEIGHBOR_SOLICIT => nd::answer(&w.snap, frame, ip, ingress),
        icmpv6_type::ECHO_REQUEST if local.is_some() => {
            if w.snap.is_martian_source6(Ipv6Addr::from(ip.src)) {
                return Err(DropReason::MartianSource);
            }
            echo_reply(w, frame, ip, ingress)
        }
        icmpv6_type::DEST_UNREACH
        | icmpv6_type::PACKET_TOO_BIG
        | icmpv6_type::TIME_EXCEEDED
        | icmpv6_type::PARAM_PROBLEM => follow_error(w, frame, ip),
        icmpv6_type::ROUTER_SOLICIT
        | icmpv6_type::ROUTER_ADVERT
        | icmpv6_type::REDIRECT
        | icmpv6_type::NEIGHBOR_ADVERT => Err(DropReason::RouterMessage),
        _ => Err(DropReason::IcmpUnsupported),
    }
}

/// The echo reply, written over the request (it is never longer: any
/// extension headers are left out).
fn echo_reply(
    w: &mut Worker,
    frame: &mut [u8],
    ip: &Ip<Ip6>,
    ingress: PortId,
) -> Result<Verdict, DropReason> {
    let valid = Icmpv6Packet::new_checked(&frame[ip.l4..ip.end])
        .is_ok_and(|m| m.verify_checksum(Ipv6Addr::from(ip.src), Ipv6Addr::from(ip.dst)));
    if !valid {
        return Err(DropReason::BadIcmpChecksum);
    }
    let (src_mac, dst_mac) = macs(frame)?;
    w.scratch.clear();
    w.scratch.extend_from_slice(&frame[ip.l3..ip.end]);
    write_echo_reply(&mut frame[ip.l3..], &w.scratch, HOP_LIMIT)
        .map_err(|_| DropReason::IcmpUnsupported)?;
    set_macs(frame, dst_mac, src_mac)?;
    Ok(Verdict::Tx(ingress))
}

/// What replaces forwarding a packet larger than `mtu`: Packet Too Big to
/// its sender, within the node's ICMP rate.
#[cold]
pub(super) fn too_big(
    w: &mut Worker,
    frame: &mut [u8],
    ip: &Ip<Ip6>,
    ingress: PortId,
    mtu: u16,
) -> Verdict {
    let unanswered = Verdict::Drop(DropReason::TooBigUnanswered);
    let Some(src) = error_source(w, ip, ingress) else {
        return unanswered;
    };
    if !w.icmp_budget.take(w.now_ms) {
        return unanswered;
    }
    let Ok((sender_mac, our_mac)) = macs(frame) else {
        return unanswered;
    };
    w.scratch.clear();
    w.scratch.extend_from_slice(&frame[ip.l3..ip.end]);
    let err = Icmpv6Error::PacketTooBig {
        mtu: u32::from(mtu),
    };
    let Ok(n) = write_icmpv6_error(&mut frame[ip.l3..], src, HOP_LIMIT, &err, &w.scratch) else {
        return unanswered;
    };
    let our_mac = MacAddr(w.snap.source_mac(our_mac.0, ingress));
    if set_macs(frame, our_mac, sender_mac).is_err() {
        return unanswered;
    }
    match u16::try_from(ip.l3 + n) {
        Ok(len) => Verdict::Answer {
            port: ingress,
            len,
            dropped: DropReason::TooBigDf,
        },
        Err(_) => unanswered,
    }
}

/// The frame's source and destination MACs.
/// Where the packet quoted in an ICMPv6 error starts, and its key. The
/// quote is usually cut short, so its header is read by offsets.
struct Quoted {
    at: usize,
    /// Offset of its TCP/UDP header from `at`.
    l4: usize,
    key: FlowKey<Ip6>,
}

fn quoted(frame: &[u8], ip: &Ip<Ip6>) -> Result<Quoted, DropReason> {
    let at = ip.l4 + ICMP_HEADER;
    let q = frame.get(at..ip.end).ok_or(DropReason::TruncatedL4)?;
    let fixed = q.get(..IPV6_HEADER).ok_or(DropReason::TruncatedIpv6)?;
    if fixed[0] >> 4 != 6 {
        return Err(DropReason::BadIpv6Header);
    }
    let upper = walk_ext_headers(fixed[6], &q[IPV6_HEADER..]).map_err(|e| match e {
        Ipv6ChainError::Fragment(_) => DropReason::Ipv6Fragment,
        _ => DropReason::BadIpv6ExtHeaders,
    })?;
    if upper.protocol != ip_proto::TCP && upper.protocol != ip_proto::UDP {
        return Err(DropReason::IcmpUnsupported);
    }
    let l4 = IPV6_HEADER + upper.offset;
    let ports = q.get(l4..l4 + 4).ok_or(DropReason::TruncatedL4)?;
    let addr = |o: usize| -> Ip6 { q[o..o + 16].try_into().unwrap_or_default() };
    Ok(Quoted {
        at,
        l4,
        key: FlowKey {
            src_ip: addr(8),
            dst_ip: addr(24),
            src_port: u16::from_be_bytes([ports[0], ports[1]]),
            dst_port: u16::from_be_bytes([ports[2], ports[3]]),
            proto: upper.protocol,
        },
    })
}

/// Forwards an ICMPv6 error along the connection it quotes: the outer
/// header gets the connection's rewrite for this direction, and the quoted
/// header is turned back into the packet as the other side sent it.
fn follow_error(w: &mut Worker, frame: &mut [u8], ip: &Ip<Ip6>) -> Result<Verdict, DropReason> {
    let q = quoted(frame, ip)?;
    // The quoted packet travelled the other way.
    let key = q.key.reversed();
    let dst = w.snap.locals6.get(&key.dst_ip).map(|l| l.kind);
    if let Some(owner) = w.foreign_owner(&key, dst) {
        return Ok(Verdict::Handoff(owner));
    }
    let (id, dir) = w.flows6.lookup(&key, w.now_ms).ok_or(DropReason::NoFlow)?;
    let conn = w.flows6.conn(id);
    let rw = conn.rewrite(dir);
    let original = rw.reversed();
    let hdr = &mut frame[q.at..];
    hdr[8..24].copy_from_slice(&original.src_ip);
    hdr[24..40].copy_from_slice(&original.dst_ip);
    hdr[q.l4..q.l4 + 2].copy_from_slice(&original.src_port.to_be_bytes());
    hdr[q.l4 + 2..q.l4 + 4].copy_from_slice(&original.dst_port.to_be_bytes());
    let src_mac = w.snap.source_mac(rw.src_mac, rw.egress);
    set_macs(frame, MacAddr(src_mac), MacAddr(rw.dst_mac))?;
    let mut pkt = Ipv6Packet::new_checked(&mut frame[ip.l3..ip.end])
        .map_err(|_| DropReason::TruncatedIpv6)?;
    let hops = pkt.hop_limit();
    if hops <= 1 {
        return Err(DropReason::TtlExpired);
    }
    pkt.set_hop_limit(hops - 1);
    // An error from a router on the path keeps the router as its source;
    // one from the connection's endpoint is translated like its packets.
    if pkt.src().octets() == key.src_ip {
        pkt.set_src(Ipv6Addr::from(rw.src_ip));
    }
    pkt.set_dst(Ipv6Addr::from(rw.dst_ip));
    let (src, dst) = (pkt.src(), pkt.dst());
    let mut icmp = Icmpv6Packet::new_checked(&mut frame[ip.l4..ip.end])
        .map_err(|_| DropReason::TruncatedL4)?;
    icmp.fill_checksum(src, dst);
    Ok(Verdict::Tx(rw.egress))
}
