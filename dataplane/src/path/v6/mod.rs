//! The IPv6 packet path: TCP and UDP services through the same connection
//! code as IPv4 (see `family`), Neighbor Discovery for owned addresses,
//! ICMPv6 echo, Packet Too Big, and ICMPv6 errors that follow a connection.

mod icmp;

pub(in crate::path) use icmp::handle as icmp;
mod nd;
mod rewrite;

use std::net::Ipv6Addr;

use super::{Ip, Worker};
use crate::flow::{Ip6, Rewrite};
use crate::verdict::{DropReason, PortId, Verdict};
use wire::{Ipv6ChainError, Ipv6Packet, WireError};

impl Worker {
    pub(super) fn ipv6(
        &mut self,
        frame: &mut [u8],
        l3: usize,
        ingress: PortId,
    ) -> Result<Verdict, DropReason> {
        let ip = parse(frame, l3)?;
        self.ip_layer(frame, &ip, ingress)
    }
}

/// Reads the fixed header and walks the extension headers to the upper
/// layer.
fn parse(frame: &[u8], l3: usize) -> Result<Ip<Ip6>, DropReason> {
    let ip = Ipv6Packet::new_checked(&frame[l3..]).map_err(|e| match e {
        WireError::BadVersion => DropReason::BadIpv6Header,
        WireError::BadTotalLen => DropReason::BadIpv6Length,
        _ => DropReason::TruncatedIpv6,
    })?;
    let upper = ip.upper_layer().map_err(|e| match e {
        Ipv6ChainError::Fragment(_) => DropReason::Ipv6Fragment,
        _ => DropReason::BadIpv6ExtHeaders,
    })?;
    let l4 = l3 + Ipv6Packet::<&[u8]>::HEADER_LEN + upper.offset;
    Ok(Ip {
        l3,
        l4,
        end: l3 + Ipv6Packet::<&[u8]>::HEADER_LEN + ip.payload_len(),
        src: ip.src().octets(),
        dst: ip.dst().octets(),
        proto: upper.protocol,
    })
}

/// Rewrites the packet by `rw` and sends it out of `rw.egress`, counted for
/// `backend`, or, when it is larger than that port's MTU, answers its
/// sender with Packet Too Big (IPv6 routers never fragment).
pub(super) fn send(
    w: &mut Worker,
    frame: &mut [u8],
    ip: &Ip<Ip6>,
    ingress: PortId,
    rw: &Rewrite<Ip6>,
    backend: u32,
) -> Result<Verdict, DropReason> {
    if let Some(p) = w.snap.ports.get(usize::from(rw.egress)) {
        if ip.end - ip.l3 > usize::from(p.mtu) {
            let mtu = p.mtu;
            return Ok(icmp::too_big(w, frame, ip, ingress, mtu));
        }
    }
    rewrite::apply(frame, ip, rw)?;
    w.traffic.add(backend, frame.len());
    Ok(Verdict::Tx(rw.egress))
}

/// The address the node's ICMPv6 messages about a packet come from: the one
/// the sender addressed if it is ours (a VIP), else the node's own on the
/// port the packet came in by.
fn error_source(w: &Worker, ip: &Ip<Ip6>, ingress: PortId) -> Option<Ipv6Addr> {
    if w.snap.locals6.contains_key(&ip.dst) {
        return Some(Ipv6Addr::from(ip.dst));
    }
    w.snap
        .ports
        .get(usize::from(ingress))
        .and_then(|p| p.ipv6.first().copied())
}
