//! What the connection path does differently per address family: which
//! table and maps it uses, how it rewrites and sends, and what the rest of
//! the node hears of a connection. IPv6 connections are synced to peers
//! and offloaded to the XDP program like IPv4 ones.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::conn::Picker;
use super::{v6, Ip, Worker};
use crate::flow::{Addr, ConnId, ConnState, Direction, FlowKey, FlowTable, Ip6, Rewrite};
use crate::service::{ForwardMode, LocalAddr, Service, Snapshot};
use crate::verdict::{DropReason, PortId, Verdict};
use wire::EthernetFrame;

/// The tables a new connection's pick reads and writes, borrowed apart.
pub(super) struct Picking<'w, A> {
    pub(super) flows: &'w mut FlowTable<A>,
    pub(super) picker: Picker<'w>,
    pub(super) snat_cursor: &'w mut u32,
}

/// A worker's [`Picking`] over its flow table `table`: the other tables
/// are the same for both families, and the borrows must stay field by field.
macro_rules! picking {
    ($w:ident, $table:ident) => {
        Picking {
            flows: &mut $w.$table,
            picker: Picker {
                sched: &mut $w.sched,
                persistence: &mut $w.persistence,
                now_ms: $w.now_ms,
            },
            snat_cursor: &mut $w.snat_cursor,
        }
    };
}

/// A family's handler of the ICMP messages that reach the workers: to an
/// address of ours (`local`) or quoting one of our connections.
pub(super) type IcmpHandler<A> =
    fn(&mut Worker, &mut [u8], &Ip<A>, PortId, Option<LocalAddr>) -> Result<Verdict, DropReason>;

pub(super) trait Family: Addr + connsync::WireAddr {
    fn flows(w: &Worker) -> &FlowTable<Self>;
    fn flows_mut(w: &mut Worker) -> &mut FlowTable<Self>;
    fn picking(w: &mut Worker) -> Picking<'_, Self>;
    fn local(snap: &Snapshot, addr: Self) -> Option<LocalAddr>;
    fn service<'s>(snap: &'s Snapshot, key: &FlowKey<Self>) -> Option<(u16, &'s Service)>;
    fn is_martian_source(snap: &Snapshot, addr: Self) -> bool;
    /// The family's ICMP protocol number, and its handler.
    const ICMP: u8;
    const ICMP_HANDLER: IcmpHandler<Self>;
    /// Rewrites the packet by `rw` and sends it, or drops it when it is
    /// larger than the egress MTU (answering as the family's rules say).
    fn send(
        w: &mut Worker,
        frame: &mut [u8],
        ip: &Ip<Self>,
        ingress: PortId,
        rw: &Rewrite<Self>,
        backend: u32,
    ) -> Result<Verdict, DropReason>;
    /// After a packet advanced connection `id` from state `before`.
    #[inline]
    fn touched(
        w: &mut Worker,
        frame: &[u8],
        id: ConnId,
        before: ConnState,
        dir: Direction,
        ingress: PortId,
    ) -> Result<(), DropReason> {
        synced_touch::<Self>(w, frame, id, before, dir, ingress)?;
        w.offload::<Self>(id);
        Ok(())
    }
    /// After connection `id` opened to a backend behind port `backend_port`.
    fn opened(w: &mut Worker, id: ConnId, mode: ForwardMode, backend_port: PortId) {
        w.sync_opened::<Self>(id);
        // Offloaded first: a connection the program forwards from its first
        // reply needs no steering entry before (one map update, not two).
        w.offload::<Self>(id);
        // Full-NAT replies come to our own source address, which the XDP
        // program always steers; NAT replies come from the backend's own
        // address.
        if w.steer_replies && mode == ForwardMode::Nat {
            Self::flows_mut(w).steer_replies(id, backend_port);
        }
    }
}

impl Family for u32 {
    #[inline]
    fn flows(w: &Worker) -> &FlowTable {
        &w.flows
    }
    #[inline]
    fn flows_mut(w: &mut Worker) -> &mut FlowTable {
        &mut w.flows
    }
    fn picking(w: &mut Worker) -> Picking<'_, u32> {
        picking!(w, flows)
    }
    #[inline]
    fn local(snap: &Snapshot, addr: u32) -> Option<LocalAddr> {
        snap.locals.get(&addr).copied()
    }
    fn service<'s>(snap: &'s Snapshot, key: &FlowKey) -> Option<(u16, &'s Service)> {
        snap.service(key.dst_ip, key.dst_port, key.proto)
    }
    fn is_martian_source(snap: &Snapshot, addr: u32) -> bool {
        snap.is_martian_source(Ipv4Addr::from_bits(addr))
    }
    const ICMP: u8 = wire::ip_proto::ICMP;
    const ICMP_HANDLER: IcmpHandler<u32> = super::icmp::handle;
    #[inline]
    fn send(
        w: &mut Worker,
        frame: &mut [u8],
        ip: &Ip,
        ingress: PortId,
        rw: &Rewrite,
        backend: u32,
    ) -> Result<Verdict, DropReason> {
        w.send(frame, ip, ingress, rw, backend)
    }
}

impl Family for Ip6 {
    fn flows(w: &Worker) -> &FlowTable<Ip6> {
        &w.flows6
    }
    fn flows_mut(w: &mut Worker) -> &mut FlowTable<Ip6> {
        &mut w.flows6
    }
    fn picking(w: &mut Worker) -> Picking<'_, Ip6> {
        picking!(w, flows6)
    }
    fn local(snap: &Snapshot, addr: Ip6) -> Option<LocalAddr> {
        snap.locals6.get(&addr).copied()
    }
    fn service<'s>(snap: &'s Snapshot, key: &FlowKey<Ip6>) -> Option<(u16, &'s Service)> {
        snap.service6(key.dst_ip, key.dst_port, key.proto)
    }
    fn is_martian_source(snap: &Snapshot, addr: Ip6) -> bool {
        snap.is_martian_source6(Ipv6Addr::from(addr))
    }
    const ICMP: u8 = wire::ip_proto::ICMPV6;
    const ICMP_HANDLER: IcmpHandler<Ip6> = v6::icmp;
    fn send(
        w: &mut Worker,
        frame: &mut [u8],
        ip: &Ip<Ip6>,
        ingress: PortId,
        rw: &Rewrite<Ip6>,
        backend: u32,
    ) -> Result<Verdict, DropReason> {
        v6::send(w, frame, ip, ingress, rw, backend)
    }
}

/// Tells connection sync that a packet advanced connection `id` of family
/// `A` from state `before`.
fn synced_touch<A: Family>(
    w: &mut Worker,
    frame: &[u8],
    id: ConnId,
    before: ConnState,
    dir: Direction,
    ingress: PortId,
) -> Result<(), DropReason> {
    if w.sync.is_none() {
        return Ok(());
    }
    // Where the client is matters only to a connection learned from a
    // peer, on its first packet here.
    let sender = if A::flows(w).conn(id).learned {
        EthernetFrame::new_checked(frame)
            .map_err(|_| DropReason::TruncatedEthernet)?
            .src()
    } else {
        wire::MacAddr::default()
    };
    w.sync_touched::<A>(id, before, dir, ingress, sender);
    Ok(())
}
