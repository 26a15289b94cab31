//! The packet path: one frame in, one verdict out.
//!
//! [`Worker::process`] is a pure function of the frame, the worker's own flow
//! table, the current [`Snapshot`] and the batch clock. It knows nothing of
//! AF_XDP, so tests, fuzzers and benchmarks call it directly.

mod arp;
mod conn;
mod family;
mod icmp;
mod mtu;
pub mod query;
mod rewrite;
pub mod sync;
mod v6;

use std::sync::Arc;

use crate::flow::{
    Addr, Conn, ConnId, ConnState, Direction, FastSeenAll, FlowKey, FlowTable, Ip6, Offload,
    SteerChange, Timeouts,
};
use crate::sched::{Persistence, SchedState};
use crate::service::{LocalKind, Published, Snapshot};
use crate::verdict::{DropReason, PortId, Verdict};
use family::Family;
use wire::{
    ethertype, ip_proto, EthernetFrame, Ipv4Packet, TcpFlags, TcpSegment, UdpDatagram, WireError,
};

/// Sizing of a worker's tables.
#[derive(Clone, Copy, Debug)]
pub struct WorkerConfig {
    pub flow_capacity: usize,
    pub persistence_capacity: usize,
    pub timeouts: Timeouts,
    /// Log the reply keys of NAT connections, and the rewrites of
    /// connections to offload when the snapshot asks for the fast path, for
    /// an engine whose XDP program steers and forwards by them; it must
    /// drain them with [`Worker::take_steer_changes`].
    pub steer_replies: bool,
    /// This node's number in its site when connection sync is on: the
    /// worker then reports its connections and applies its peers'.
    pub sync_origin: Option<u16>,
}

/// Backend ids whose traffic is counted, in the workers and in the XDP
/// program (`MAX_BACKEND_IDS` in steer.c): ids are handed out from 1 and
/// never reused, so only a node that added this many backends since it
/// started has backends it does not count.
pub const COUNTED_BACKEND_IDS: usize = 65_536;

/// Packets and bytes a worker forwarded, by backend id.
pub struct Traffic(Vec<(u64, u64)>);

impl Default for Traffic {
    fn default() -> Self {
        Traffic(vec![(0, 0); COUNTED_BACKEND_IDS])
    }
}

impl Traffic {
    fn add(&mut self, backend: u32, bytes: usize) {
        if let Some(t) = self.0.get_mut(backend as usize) {
            t.0 += 1;
            t.1 += bytes as u64;
        }
    }

    pub fn get(&self, backend: u32) -> (u64, u64) {
        self.0.get(backend as usize).copied().unwrap_or((0, 0))
    }
}

/// Full-NAT source ports start here; below are the privileged and commonly
/// bound ports.
const SNAT_PORT_BASE: u16 = 1024;

/// Flow slots swept per housekeeping call at most, so a sweep never stalls
/// the worker, and at least.
const EXPIRE_BUDGET: usize = 8192;
const MIN_SWEEP: usize = 64;

/// A sweep covers the flow table about this often. Lookups and inserts
/// reclaim expired entries themselves; the sweep keeps backend counts and
/// the free list honest and need not be prompt. Housekeeping runs every
/// 10 ms while a worker waits for its core, so a fixed budget per call would
/// spend a good part of that core scanning.
const SWEEP_PERIOD_MS: u64 = 2_000;

/// Slots to sweep after `elapsed_ms` since the last sweep.
fn sweep_budget(capacity: usize, elapsed_ms: u64) -> usize {
    share_of(capacity, elapsed_ms, SWEEP_PERIOD_MS).clamp(MIN_SWEEP, EXPIRE_BUDGET)
}

/// The slots of a `capacity`-slot table that `elapsed_ms` of a scan
/// covering it every `period_ms` account for.
fn share_of(capacity: usize, elapsed_ms: u64, period_ms: u64) -> usize {
    let share = (capacity as u64).saturating_mul(elapsed_ms) / period_ms.max(1);
    usize::try_from(share).unwrap_or(usize::MAX)
}

/// One worker's state: its flow table and scheduler state, and the snapshot
/// it is currently using.
pub struct Worker {
    id: u16,
    workers: u16,
    flows: FlowTable,
    /// IPv6 connections, apart so IPv4 slots keep their size; allocated
    /// with the first snapshot that has an IPv6 service.
    flows6: FlowTable<Ip6>,
    persistence: Persistence,
    sched: Vec<SchedState>,
    snat_cursor: u32,
    snap: Arc<Snapshot>,
    generation: u64,
    published: Arc<Published>,
    now_ms: u64,
    /// When housekeeping last swept the flow table.
    swept_ms: u64,
    mailbox: query::Mailbox,
    queries: query::QuerySender,
    steer_replies: bool,
    icmp_budget: mtu::IcmpBudget,
    traffic: Traffic,
    /// Connections picked up mid-stream since the worker started.
    picked_up: u64,
    sync: Option<sync::SyncSide>,
    /// A copy of the packet an ICMPv6 message is written over (echo
    /// requests, packets too big); it grows to the largest once.
    scratch: Vec<u8>,
}

/// The parts of an IP packet the path needs after parsing, as offsets into
/// the frame so the frame can be re-borrowed mutably for rewriting.
#[derive(Clone, Copy, Debug)]
struct Ip<A = u32> {
    /// Start of the IP header.
    l3: usize,
    /// Start of the L4 header (after any IPv6 extension headers).
    l4: usize,
    /// End of the IP packet (frame padding excluded).
    end: usize,
    src: A,
    dst: A,
    proto: u8,
}

/// IPv6 tables hold this share of the IPv4 table's connections, at least
/// [`MIN_FLOWS6`]: most edge traffic is still IPv4, and an IPv6 slot is
/// larger.
const FLOWS6_SHARE: usize = 4;
const MIN_FLOWS6: usize = 1024;

/// The IPv6 connections a worker holds beside `flow_capacity` IPv4 ones,
/// once a service is IPv6 (the XDP program's IPv6 table is sized by it).
pub fn flows6_capacity(flow_capacity: usize) -> usize {
    (flow_capacity / FLOWS6_SHARE).max(MIN_FLOWS6)
}

/// The IPv6 table of a worker whose IPv4 table is `flows`, under `snap`:
/// empty (and nearly free) while no service is IPv6.
fn flows6_for(snap: &Snapshot, flows: &FlowTable) -> FlowTable<Ip6> {
    let capacity = if snap.by_key6.is_empty() {
        0
    } else {
        flows6_capacity(flows.capacity())
    };
    FlowTable::new(capacity, *flows.timeouts())
}

impl Worker {
    pub fn new(id: u16, workers: u16, cfg: WorkerConfig, published: Arc<Published>) -> Self {
        let snap = published.load();
        let sched = snap
            .services
            .iter()
            .map(|s| SchedState::new(s.scheduler, s.locality_expire_ms))
            .collect();
        let (mailbox, queries) = query::Mailbox::new();
        let flows = FlowTable::new(cfg.flow_capacity, cfg.timeouts);
        Worker {
            id,
            workers: workers.max(1),
            flows6: flows6_for(&snap, &flows),
            flows,
            persistence: Persistence::new(cfg.persistence_capacity),
            sched,
            snat_cursor: 0,
            generation: published.generation(),
            snap,
            published,
            now_ms: 0,
            swept_ms: 0,
            mailbox,
            queries,
            steer_replies: cfg.steer_replies,
            icmp_budget: mtu::IcmpBudget::default(),
            traffic: Traffic::default(),
            picked_up: 0,
            sync: cfg.sync_origin.map(sync::SyncSide::new),
            scratch: Vec::new(),
        }
    }

    /// Starts the walk through the full-NAT source ports at `position`
    /// rather than at the range's start. A node that takes over from
    /// another must not replay its ports: backends still hold the old
    /// master's recent connections in TIME_WAIT, and a SYN that reuses one
    /// of those is refused.
    pub fn start_snat_ports_at(&mut self, position: u32) {
        self.snat_cursor = position;
    }

    /// Moves the XDP map changes of the frames processed so far into
    /// `out`: the engine applies them before it transmits any of those
    /// frames, so a backend's answer never reaches the XDP program before
    /// its key does.
    pub fn take_steer_changes(&mut self, out: &mut Vec<SteerChange>) {
        self.flows.take_steer_changes(out);
    }

    /// The same for IPv6 connections.
    pub fn take_steer_changes6(&mut self, out: &mut Vec<SteerChange<Ip6>>) {
        self.flows6.take_steer_changes(out);
    }

    /// Where the control plane sends questions about this worker's flows;
    /// they are answered from [`Worker::housekeeping`].
    pub fn queries(&self) -> query::QuerySender {
        self.queries.clone()
    }

    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    pub fn flows6(&self) -> &FlowTable<Ip6> {
        &self.flows6
    }

    /// Sets the batch clock and picks up a newly published snapshot.
    pub fn begin_batch(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        let generation = self.published.generation();
        if generation != self.generation {
            self.generation = generation;
            let snap = self.published.load();
            let states = std::mem::take(&mut self.sched);
            self.sched = SchedState::carry_over(&self.snap.services, &snap.services, states);
            if self.flows6.capacity() == 0 && !snap.by_key6.is_empty() {
                self.flows6 = flows6_for(&snap, &self.flows);
            }
            let old = std::mem::replace(&mut self.snap, snap);
            self.revalidate_offloads(&old);
        }
    }

    /// Periodic work off the per-packet path. `seen` tells when the XDP
    /// program last forwarded an offloaded connection's packets.
    pub fn housekeeping(&mut self, now_ms: u64, seen: &mut dyn FastSeenAll) {
        self.now_ms = now_ms;
        let elapsed_ms = now_ms.saturating_sub(self.swept_ms);
        let budget = sweep_budget(self.flows.capacity(), elapsed_ms);
        self.swept_ms = now_ms;
        self.flows.expire(now_ms, budget, seen.v4());
        let budget6 = sweep_budget(self.flows6.capacity(), elapsed_ms);
        self.flows6.expire(now_ms, budget6, seen.v6());
        self.sync_housekeeping(now_ms, seen);
        let worker = query::WorkerView {
            id: self.id,
            now_ms,
            flows: &self.flows,
            flows6: &self.flows6,
            traffic: &self.traffic,
            picked_up: self.picked_up,
        };
        self.mailbox.poll(&worker, seen);
    }

    /// The rewrites the XDP program should apply to `conn`'s packets under
    /// `snap`, or `None` while they must reach the worker: the fast path is
    /// off, the state can still change, the backend's flows are to be
    /// dropped, the VIP is not owned here, or XDP can send by neither port
    /// the connection's packets leave by (a direction whose port it cannot
    /// send by stays with the worker).
    fn offload_for<A: Family>(&self, snap: &Snapshot, conn: &Conn<A>) -> Option<Offload<A>> {
        let xmit = |port: PortId| {
            snap.ports
                .get(usize::from(port))
                .is_some_and(|p| p.xdp_xmit)
        };
        // Cheapest first: this runs for every packet a worker forwards.
        if !self.steer_replies || !snap.fast_path || !conn.state.is_offloadable() {
            return None;
        }
        let fast = [xmit(conn.forward.egress), xmit(conn.reply.egress)];
        if fast == [false, false]
            || snap.dead_backends.contains(&conn.backend_id)
            || !A::local(snap, conn.reply.src_ip).is_some_and(|l| l.owned)
        {
            return None;
        }
        let mut o = Offload {
            forward: conn.forward,
            reply: conn.reply,
            backend: conn.backend_id,
            fast,
        };
        o.forward.src_mac = snap.source_mac(o.forward.src_mac, o.forward.egress);
        o.reply.src_mac = snap.source_mac(o.reply.src_mac, o.reply.egress);
        Some(o)
    }

    /// Offloads the connection if it qualifies and is not yet.
    fn offload<A: Family>(&mut self, id: ConnId) {
        if A::flows(self).is_offloaded(id) {
            return;
        }
        if let Some(o) = self.offload_for(&self.snap, A::flows(self).conn(id)) {
            A::flows_mut(self).offload(id, &o);
        }
    }

    /// After a new snapshot: withdraws the offloaded connections of both
    /// families that no longer qualify (backend dead or removed, VIP lost,
    /// fast path turned off) and rewrites those whose rewrite changed (a
    /// released virtual MAC).
    fn revalidate_offloads(&mut self, old: &Snapshot) {
        self.revalidate::<u32>(old);
        self.revalidate::<Ip6>(old);
    }

    fn revalidate<A: Family>(&mut self, old: &Snapshot) {
        if A::flows(self).offloaded() == 0 {
            return;
        }
        let ids: Vec<ConnId> = A::flows(self).offloaded_in(0..usize::MAX).collect();
        for id in ids {
            let conn = A::flows(self).conn(id);
            match self.offload_for(&self.snap, conn) {
                None => A::flows_mut(self).withdraw(id),
                Some(o) if self.offload_for(old, conn) != Some(o) => {
                    A::flows_mut(self).offload(id, &o)
                }
                Some(_) => {}
            }
        }
    }

    /// Warms the cache for a frame about to be processed: the flow-table
    /// lines its connection lives in. It reads only the flow key and leaves
    /// every check to [`Worker::process`], which says why it drops a frame:
    /// running the path's own parsers here too (checksum, TCP flags) cost
    /// the NAT/raw loss-free ratio about a fifth in vipbench.
    pub fn prefetch(&self, frame: &[u8]) {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return;
        };
        if eth.ethertype() != ethertype::IPV4 {
            return;
        }
        let l3 = eth.header_len();
        let Ok(ip) = Ipv4Packet::new_checked(&frame[l3..]) else {
            return;
        };
        let proto = ip.protocol();
        if !matches!(proto, ip_proto::TCP | ip_proto::UDP) || ip.is_fragment() {
            return;
        }
        let (src, dst) = (ip.src().to_bits(), ip.dst().to_bits());
        let l4 = &frame[l3 + ip.header_len()..];
        let Some(ports) = l4.get(..4) else {
            return;
        };
        self.flows.prefetch(&FlowKey {
            src_ip: src,
            dst_ip: dst,
            src_port: u16::from_be_bytes([ports[0], ports[1]]),
            dst_port: u16::from_be_bytes([ports[2], ports[3]]),
            proto,
        });
    }

    /// Processes one frame in place.
    pub fn process(&mut self, frame: &mut [u8], ingress: PortId) -> Verdict {
        match self.dispatch(frame, ingress) {
            Ok(v) => v,
            Err(reason) => Verdict::Drop(reason),
        }
    }

    fn dispatch(&mut self, frame: &mut [u8], ingress: PortId) -> Result<Verdict, DropReason> {
        let eth =
            EthernetFrame::new_checked(&frame[..]).map_err(|_| DropReason::TruncatedEthernet)?;
        let l3 = eth.header_len();
        match eth.ethertype() {
            ethertype::ARP => arp::answer(&self.snap, frame, l3, ingress),
            ethertype::IPV4 => self.ipv4(frame, l3, ingress),
            ethertype::IPV6 => self.ipv6(frame, l3, ingress),
            _ => Err(DropReason::UnknownEthertype),
        }
    }

    fn ipv4(
        &mut self,
        frame: &mut [u8],
        l3: usize,
        ingress: PortId,
    ) -> Result<Verdict, DropReason> {
        let ip = parse_ipv4(frame, l3)?;
        self.ip_layer(frame, &ip, ingress)
    }

    /// A packet of either family past its header checks: refused for an
    /// address of ours this node does not own now, else to its connection
    /// or to the family's ICMP.
    fn ip_layer<A: Family>(
        &mut self,
        frame: &mut [u8],
        ip: &Ip<A>,
        ingress: PortId,
    ) -> Result<Verdict, DropReason> {
        let local = A::local(&self.snap, ip.dst);
        if local.is_some_and(|l| !l.owned) {
            return Err(DropReason::VipNotOwned);
        }
        match ip.proto {
            ip_proto::TCP | ip_proto::UDP => {
                let (key, flags) = l4_key(frame, ip)?;
                let dst = local.map(|l| l.kind);
                if let Some(owner) = self.foreign_owner(&key, dst) {
                    return Ok(Verdict::Handoff(owner));
                }
                self.tcp_udp(frame, ip, key, flags, ingress, dst)
            }
            p if p == A::ICMP => (A::ICMP_HANDLER)(self, frame, ip, ingress, local),
            _ => Err(DropReason::UnsupportedProtocol),
        }
    }

    fn tcp_udp<A: Family>(
        &mut self,
        frame: &mut [u8],
        ip: &Ip<A>,
        key: FlowKey<A>,
        flags: u8,
        ingress: PortId,
        local: Option<LocalKind>,
    ) -> Result<Verdict, DropReason> {
        let now_ms = self.now_ms;
        match A::flows_mut(self).lookup(&key, now_ms) {
            Some((id, dir)) => {
                let conn = A::flows(self).conn(id);
                if dir == Direction::Forward
                    && local == Some(LocalKind::Vip)
                    && TcpFlags(flags).is_new_connection()
                    && !self.may_reuse(conn)
                {
                    // A SYN on the ports of a finished connection, or of one
                    // whose backend takes no new connections, opens a new one.
                    A::flows_mut(self).remove(id);
                    return conn::open(self, frame, ip, key, flags, ingress);
                }
                if !self.snap.dead_backends.is_empty()
                    && self.snap.dead_backends.contains(&conn.backend_id)
                {
                    return Err(DropReason::BackendDown);
                }
                let before = conn.state;
                A::flows_mut(self).touch(id, dir, flags, now_ms);
                A::touched(self, frame, id, before, dir, ingress)?;
                let conn = A::flows(self).conn(id);
                let mut rw = conn.rewrite(dir);
                rw.src_mac = self.snap.source_mac(rw.src_mac, rw.egress);
                let backend = conn.backend_id;
                A::send(self, frame, ip, ingress, &rw, backend)
            }
            None if local == Some(LocalKind::Vip) => {
                conn::open(self, frame, ip, key, flags, ingress)
            }
            None => Err(DropReason::NoFlow),
        }
    }

    /// Rewrites the packet by `rw` and sends it out of `rw.egress`, counted
    /// for `backend`, or, when it is larger than that port's MTU, drops it
    /// (answering DF packets).
    fn send(
        &mut self,
        frame: &mut [u8],
        ip: &Ip,
        ingress: PortId,
        rw: &crate::flow::Rewrite,
        backend: u32,
    ) -> Result<Verdict, DropReason> {
        if let Err(v) = mtu::check(self, frame, ip, ingress, rw.egress) {
            return Ok(v);
        }
        rewrite::apply(frame, ip, rw)?;
        self.traffic.add(backend, frame.len());
        Ok(Verdict::Tx(rw.egress))
    }

    /// The next hop of `backend`, or the drop while it is unresolved (the
    /// control plane is asked to resolve it).
    fn hop_of(&self, backend: &crate::service::Backend) -> Result<crate::service::Hop, DropReason> {
        backend.hop.ok_or_else(|| {
            self.published
                .resolve_wanted
                .store(true, std::sync::atomic::Ordering::Relaxed);
            DropReason::NeighbourUnresolved
        })
    }

    /// Whether a new SYN may ride on an existing connection: only while it is
    /// still opening or open, to a backend that still takes connections.
    fn may_reuse<A>(&self, conn: &Conn<A>) -> bool {
        !matches!(conn.state, ConnState::TimeWait | ConnState::Close)
            && self
                .snap
                .services
                .get(usize::from(conn.service))
                .and_then(|s| s.weights.iter().find(|b| b.id == conn.backend_id))
                .is_some_and(|b| b.available && b.weight > 0)
    }

    /// The worker that owns the connection `key` belongs to, if not this one.
    ///
    /// Ownership is a function of the client's address and port (or of the
    /// full-NAT source port, which the owner allocated), so both directions of
    /// a connection land on the same table whichever queue they arrived on.
    /// `dst` is what the key's destination is to this node, as the caller
    /// already looked it up.
    fn foreign_owner<A: Family>(&self, key: &FlowKey<A>, dst: Option<LocalKind>) -> Option<u16> {
        if self.workers == 1 {
            return None;
        }
        let owner = match dst {
            Some(LocalKind::Vip) => client_owner(key.src_ip, key.src_port, self.workers),
            // A floating address may be another node's full-NAT source,
            // taken over with its connections.
            Some(LocalKind::Snat | LocalKind::Floating) => {
                snat_port_owner(key.dst_port, self.workers)
            }
            None => client_owner(key.dst_ip, key.dst_port, self.workers),
        };
        (owner != self.id).then_some(owner)
    }
}

fn client_owner<A: Addr>(ip: A, port: u16, workers: u16) -> u16 {
    let h = (ip.word() << 16 | u64::from(port)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h >> 32) % u64::from(workers)) as u16
}

fn snat_port_owner(port: u16, workers: u16) -> u16 {
    port.wrapping_sub(SNAT_PORT_BASE) % workers
}

fn parse_ipv4(frame: &[u8], l3: usize) -> Result<Ip, DropReason> {
    let ip = Ipv4Packet::new_checked(&frame[l3..]).map_err(|e| match e {
        WireError::Truncated => DropReason::TruncatedIpv4,
        WireError::BadTotalLen => DropReason::BadIpv4Length,
        _ => DropReason::BadIpv4Header,
    })?;
    if !ip.verify_checksum() {
        return Err(DropReason::BadIpv4Checksum);
    }
    if ip.is_fragment() {
        return Err(DropReason::Ipv4Fragment);
    }
    Ok(Ip {
        l3,
        l4: l3 + ip.header_len(),
        end: l3 + ip.total_len(),
        src: ip.src().to_bits(),
        dst: ip.dst().to_bits(),
        proto: ip.protocol(),
    })
}

/// The flow key and, for TCP, the flags (0 for UDP), from one parse of the
/// L4 header; flag combinations no valid segment carries are dropped here.
fn l4_key<A: Addr>(frame: &[u8], ip: &Ip<A>) -> Result<(FlowKey<A>, u8), DropReason> {
    let l4 = &frame[ip.l4..ip.end];
    let (src_port, dst_port, flags) = if ip.proto == ip_proto::TCP {
        let t = TcpSegment::new_checked(l4).map_err(|_| DropReason::TruncatedL4)?;
        let flags = t.flags();
        if !flags.is_valid_combination() {
            return Err(DropReason::BadTcpFlags);
        }
        (t.src_port(), t.dst_port(), flags.bits())
    } else {
        let u = UdpDatagram::new_checked(l4).map_err(|_| DropReason::TruncatedL4)?;
        (u.src_port(), u.dst_port(), 0)
    };
    let key = FlowKey {
        src_ip: ip.src,
        dst_ip: ip.dst,
        src_port,
        dst_port,
        proto: ip.proto,
    };
    Ok((key, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_covers_the_table_once_per_period_within_its_bounds() {
        // 65536 slots over 2 s: 10 ms of it is 327 slots.
        assert_eq!(sweep_budget(65_536, 10), 327);
        let per_period: usize = (0..200).map(|_| sweep_budget(65_536, 10)).sum();
        assert!((65_000..=66_000).contains(&per_period), "{per_period}");
        assert_eq!(sweep_budget(1_000, 1), MIN_SWEEP);
        assert_eq!(sweep_budget(12_500_000, 100), EXPIRE_BUDGET);
        assert_eq!(sweep_budget(4096, u64::MAX), EXPIRE_BUDGET);
    }
}
