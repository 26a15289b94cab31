//! ICMP: echo replies for owned addresses (operators ping VIPs) and ICMP
//! errors that quote a tracked connection, which follow that connection.

use std::net::Ipv4Addr;

use super::{rewrite, Ip, Worker};
use crate::flow::{FlowKey, Rewrite};
use crate::service::LocalAddr;
use crate::verdict::{DropReason, PortId, Verdict};
use wire::{checksum, ip_proto, IcmpPacket, Ipv4Packet, MacAddr};

/// TTL of the echo replies we originate.
const REPLY_TTL: u8 = 64;

pub(super) fn handle(
    w: &mut Worker,
    frame: &mut [u8],
    ip: &Ip,
    ingress: PortId,
    local: Option<LocalAddr>,
) -> Result<Verdict, DropReason> {
    let msg_type = IcmpPacket::new_checked(&frame[ip.l4..ip.end])
        .map_err(|_| DropReason::TruncatedL4)?
        .msg_type();
    match msg_type {
        IcmpPacket::<&[u8]>::ECHO_REQUEST if local.is_some() => {
            if w.snap.is_martian_source(Ipv4Addr::from_bits(ip.src)) {
                return Err(DropReason::MartianSource);
            }
            echo_reply(frame, ip, ingress)
        }
        IcmpPacket::<&[u8]>::DEST_UNREACH
        | IcmpPacket::<&[u8]>::TIME_EXCEEDED
        | IcmpPacket::<&[u8]>::PARAM_PROBLEM => follow_error(w, frame, ip),
        _ => Err(DropReason::IcmpUnsupported),
    }
}

fn echo_reply(frame: &mut [u8], ip: &Ip, ingress: PortId) -> Result<Verdict, DropReason> {
    let (src_mac, dst_mac) = rewrite::macs(frame)?;
    rewrite::set_macs(frame, dst_mac, src_mac)?;
    let mut pkt = Ipv4Packet::new_checked(&mut frame[ip.l3..ip.end])
        .map_err(|_| DropReason::TruncatedIpv4)?;
    let (src, dst) = (pkt.src(), pkt.dst());
    pkt.set_src(dst);
    pkt.set_dst(src);
    pkt.set_ttl(REPLY_TTL);
    let mut icmp =
        IcmpPacket::new_checked(pkt.payload_mut()).map_err(|_| DropReason::TruncatedL4)?;
    let old = u16::from(icmp.msg_type()) << 8 | u16::from(icmp.code());
    icmp.set_msg_type(IcmpPacket::<&[u8]>::ECHO_REPLY);
    icmp.update_checksum16(
        old,
        u16::from(IcmpPacket::<&[u8]>::ECHO_REPLY) << 8 | u16::from(icmp.code()),
    );
    Ok(Verdict::Tx(ingress))
}

/// Header fields of the packet quoted inside an ICMP error. The quote is
/// usually cut after 8 bytes of L4 header, so it is read by offsets rather
/// than with the full-length checked views.
struct Quoted {
    /// Offset of the quoted IPv4 header within the frame.
    at: usize,
    ihl: usize,
    key: FlowKey,
}

fn quoted(frame: &[u8], ip: &Ip) -> Result<Quoted, DropReason> {
    const ICMP_HEADER: usize = 8;
    let at = ip.l4 + ICMP_HEADER;
    let q = frame.get(at..ip.end).ok_or(DropReason::TruncatedL4)?;
    let first = *q.first().ok_or(DropReason::TruncatedL4)?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 {
        return Err(DropReason::BadIpv4Header);
    }
    let l4 = q.get(ihl..ihl + 4).ok_or(DropReason::TruncatedL4)?;
    let proto = q[9];
    if proto != ip_proto::TCP && proto != ip_proto::UDP {
        return Err(DropReason::IcmpUnsupported);
    }
    let addr = |o: usize| u32::from_be_bytes([q[o], q[o + 1], q[o + 2], q[o + 3]]);
    Ok(Quoted {
        at,
        ihl,
        key: FlowKey {
            src_ip: addr(12),
            dst_ip: addr(16),
            src_port: u16::from_be_bytes([l4[0], l4[1]]),
            dst_port: u16::from_be_bytes([l4[2], l4[3]]),
            proto,
        },
    })
}

/// Forwards an ICMP error along the connection it quotes: the outer header
/// gets the connection's rewrite for this direction, and the quoted header is
/// turned back into the packet as the other side sent it.
fn follow_error(w: &mut Worker, frame: &mut [u8], ip: &Ip) -> Result<Verdict, DropReason> {
    let q = quoted(frame, ip)?;
    // The quoted packet travelled the other way: swap it to get the key of
    // packets travelling this way.
    let key = q.key.reversed();
    let dst = w.snap.locals.get(&key.dst_ip).map(|l| l.kind);
    if let Some(owner) = w.foreign_owner(&key, dst) {
        return Ok(Verdict::Handoff(owner));
    }
    let (id, dir) = w.flows.lookup(&key, w.now_ms).ok_or(DropReason::NoFlow)?;
    let conn = w.flows.conn(id);
    let rw = conn.rewrite(dir);
    // The quoted packet as the other side sent it, before translation.
    let original = rw.reversed();
    rewrite_quote(frame, &q, &original);
    let src_mac = w.snap.source_mac(rw.src_mac, rw.egress);
    rewrite::set_macs(frame, MacAddr(src_mac), MacAddr(rw.dst_mac))?;
    let mut pkt = Ipv4Packet::new_checked(&mut frame[ip.l3..ip.end])
        .map_err(|_| DropReason::TruncatedIpv4)?;
    if pkt.ttl() <= 1 {
        return Err(DropReason::TtlExpired);
    }
    pkt.decrement_ttl();
    // An error from a router on the path keeps the router as its source;
    // one from the connection's endpoint is translated like its packets.
    if pkt.src().to_bits() == key.src_ip {
        pkt.set_src(Ipv4Addr::from_bits(rw.src_ip));
    }
    pkt.set_dst(Ipv4Addr::from_bits(rw.dst_ip));
    let mut icmp =
        IcmpPacket::new_checked(pkt.payload_mut()).map_err(|_| DropReason::TruncatedL4)?;
    icmp.fill_checksum();
    Ok(Verdict::Tx(rw.egress))
}

fn rewrite_quote(frame: &mut [u8], q: &Quoted, to: &Rewrite) {
    let hdr = &mut frame[q.at..q.at + q.ihl];
    hdr[12..16].copy_from_slice(&to.src_ip.to_be_bytes());
    hdr[16..20].copy_from_slice(&to.dst_ip.to_be_bytes());
    hdr[10..12].copy_from_slice(&[0, 0]);
    let sum = checksum::checksum(hdr);
    hdr[10..12].copy_from_slice(&sum.to_be_bytes());
    let ports = &mut frame[q.at + q.ihl..q.at + q.ihl + 4];
    ports[0..2].copy_from_slice(&to.src_port.to_be_bytes());
    ports[2..4].copy_from_slice(&to.dst_port.to_be_bytes());
}
