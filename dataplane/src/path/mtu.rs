//! Packets larger than the egress MTU. vipd answers as a router must
//! (RFC 1191, RFC 1812): a packet with DF set gets ICMP
//! fragmentation-needed with the next-hop MTU, so the sender's path MTU
//! discovery shrinks its segments instead of the connection stalling.

use std::net::Ipv4Addr;

use super::{Ip, Worker};
use crate::verdict::{DropReason, PortId, Verdict};
use wire::{
    ip_proto, write_ipv4_header, EthernetFrame, IcmpPacket, Ipv4Header, Ipv4Packet, MacAddr,
};

/// ICMP errors a worker sends per second, and in one burst: Linux's
/// defaults (net.ipv4.icmp_msgs_per_sec, icmp_msgs_burst).
const RATE_PER_SEC: u64 = 1000;
const BURST: u64 = 50;
/// An ICMP error stays within the 576 bytes every host accepts (RFC 1812).
const MAX_ERROR_LEN: usize = 576;
const ICMP_HEADER: usize = 8;
const IPV4_HEADER: usize = 20;
/// Type of service of ICMP errors: internetwork control, as Linux sends.
const TOS_CONTROL: u8 = 0xc0;
const TTL: u8 = 64;

/// A token bucket, in thousandths of a message so the refill needs no
/// division.
#[derive(Debug, Default)]
pub(super) struct IcmpBudget {
    tokens: u64,
    last_ms: u64,
}

impl IcmpBudget {
    pub(super) fn take(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms).min(1_000);
        self.last_ms = now_ms;
        self.tokens = (self.tokens + elapsed * RATE_PER_SEC).min(BURST * 1_000);
        if self.tokens < 1_000 {
            return false;
        }
        self.tokens -= 1_000;
        true
    }
}

/// `Ok` when the packet fits the MTU of `egress`; otherwise the verdict
/// that replaces forwarding it.
#[inline]
pub(super) fn check(
    w: &mut Worker,
    frame: &mut [u8],
    ip: &Ip,
    ingress: PortId,
    egress: PortId,
) -> Result<(), Verdict> {
    match w.snap.ports.get(usize::from(egress)) {
        Some(p) if ip.end - ip.l3 > usize::from(p.mtu) => {
            let mtu = p.mtu;
            Err(too_big(w, frame, ip, ingress, mtu))
        }
        _ => Ok(()),
    }
}

/// What replaces forwarding a packet larger than `mtu`.
#[cold]
fn too_big(w: &mut Worker, frame: &mut [u8], ip: &Ip, ingress: PortId, mtu: u16) -> Verdict {
    let df = Ipv4Packet::new_checked(&frame[ip.l3..ip.end]).is_ok_and(|p| p.dont_frag());
    if !df {
        return Verdict::Drop(DropReason::TooBig);
    }
    let unanswered = Verdict::Drop(DropReason::TooBigUnanswered);
    let Some(src) = error_source(w, ip, ingress) else {
        return unanswered;
    };
    if !w.icmp_budget.take(w.now_ms) {
        return unanswered;
    }
    match frag_needed(w, frame, ip, ingress, src, mtu) {
        Some(len) => Verdict::Answer {
            port: ingress,
            len,
            dropped: DropReason::TooBigDf,
        },
        None => unanswered,
    }
}

/// The address the error comes from: the one the sender addressed if it is
/// ours (a VIP), else the node's own on the port the packet came in by.
fn error_source(w: &Worker, ip: &Ip, ingress: PortId) -> Option<Ipv4Addr> {
    if w.snap.locals.contains_key(&ip.dst) {
        return Some(Ipv4Addr::from_bits(ip.dst));
    }
    w.snap
        .ports
        .get(usize::from(ingress))
        .and_then(|p| p.ipv4.first().copied())
}

/// Turns the frame into an ICMP fragmentation-needed message to its sender,
/// quoting the start of the packet as received; returns its length.
fn frag_needed(
    w: &Worker,
    frame: &mut [u8],
    ip: &Ip,
    ingress: PortId,
    src: Ipv4Addr,
    mtu: u16,
) -> Option<u16> {
    let (sender_mac, our_mac) = super::rewrite::macs(frame).ok()?;
    let mut eth = EthernetFrame::new_checked(&mut frame[..]).ok()?;
    eth.set_dst(sender_mac);
    eth.set_src(MacAddr(w.snap.source_mac(our_mac.0, ingress)));
    let quote = (ip.end - ip.l3).min(MAX_ERROR_LEN - IPV4_HEADER - ICMP_HEADER);
    let icmp_at = ip.l3 + IPV4_HEADER;
    let quote_at = icmp_at + ICMP_HEADER;
    frame.copy_within(ip.l3..ip.l3 + quote, quote_at);
    let total = IPV4_HEADER + ICMP_HEADER + quote;
    let header = Ipv4Header {
        src,
        dst: Ipv4Addr::from_bits(ip.src),
        protocol: ip_proto::ICMP,
        tos: TOS_CONTROL,
        ttl: TTL,
        total_len: u16::try_from(total).ok()?,
    };
    if !write_ipv4_header(&mut frame[ip.l3..], &header) {
        return None;
    }
    let mut icmp = IcmpPacket::new_checked(&mut frame[icmp_at..quote_at + quote]).ok()?;
    icmp.set_msg_type(IcmpPacket::<&[u8]>::DEST_UNREACH);
    icmp.set_code(IcmpPacket::<&[u8]>::FRAG_NEEDED);
    icmp.set_next_hop_mtu(mtu);
    icmp.fill_checksum();
    u16::try_from(ip.l3 + total).ok()
}

#[cfg(test)]
mod tests {
    use super::IcmpBudget;

    #[test]
    fn the_budget_allows_a_burst_then_the_rate() {
        let mut b = IcmpBudget::default();
        let burst = (0..200).filter(|_| b.take(10_000)).count();
        assert_eq!(burst, 50, "a full bucket gives one burst");
        assert!(!b.take(10_000));
        let next = (0..200).filter(|_| b.take(10_010)).count();
        assert_eq!(next, 10, "10 ms at 1000/s refills ten");
    }
}
