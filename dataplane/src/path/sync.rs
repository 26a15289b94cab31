//! Connection sync, the worker's side.
//!
//! A worker reports its connections to the control plane as
//! node-independent records (creation once past the handshake, state
//! changes, a refresh every [`REFRESH_PERIOD_MS`], removal), and applies the
//! records peers sent. A learned connection sits in the table like any
//! other, so the moment this node takes its VIP over, the first packet
//! finds it; that packet makes the connection this node's, and the node
//! tells the others. Both queues are bounded and lock-free: a worker never
//! waits on them, and what does not fit is counted. IPv4 and IPv6
//! connections go the same way, each family's from and into its own table.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use connsync::{AnyRecord, Record, RecordOp};
use crossbeam_queue::ArrayQueue;

use super::conn::{rewrites, ClientSide, SORRY_BACKEND_ID};
use super::family::Family;
use super::{client_owner, share_of, snat_port_owner, Worker};
use crate::flow::{
    Addr, Conn, ConnId, ConnState, Direction, FastSeen, FastSeenAll, FlowKey, InsertError, Ip6,
};
use crate::service::{Backend, ForwardMode, LocalKind, Service};
use wire::MacAddr;

/// Records waiting per worker in each direction.
pub const QUEUE_DEPTH: usize = 65_536;
/// Peer records a worker applies per housekeeping call, so a burst never
/// stalls its packets.
const APPLY_BUDGET: usize = 8_192;
/// Table slots a dump covers per housekeeping call.
const DUMP_BUDGET: usize = 65_536;
/// Each connection this node serves is sent again this often, so the
/// peers' idea of its remaining idle time stays right.
pub const REFRESH_PERIOD_MS: u64 = 10_000;

/// Why a peer's record was not applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// The state number is none the dataplane knows.
    BadState,
    /// No service on the record's VIP, port and protocol here.
    NoService,
    /// The record's backend is not one of the service's here.
    NoBackend,
    /// The backend's MAC is not known here yet.
    NeighbourUnresolved,
    /// Full NAT from a source address this node's service does not use.
    SnatUnknown,
    /// The connection belongs to another worker here: the nodes run
    /// different numbers of queues.
    WrongWorker,
    TableFull,
    /// This node serves a connection with that key from another origin
    /// (split brain): the lower origin's is kept, on both nodes.
    Conflict,
}

/// One worker's sync counters, read by the control plane.
#[derive(Debug, Default)]
pub struct SyncCounters {
    /// Records queued for the peers.
    pub queued: AtomicU64,
    /// Records lost because the control plane fell behind.
    pub overflow: AtomicU64,
    /// Peer records applied (created, updated or refreshed).
    pub applied: AtomicU64,
    /// Learned connections removed at a peer's word.
    pub deleted: AtomicU64,
    /// Learned connections that carried their first packet here.
    pub activated: AtomicU64,
    pub bad_state: AtomicU64,
    pub no_service: AtomicU64,
    pub no_backend: AtomicU64,
    pub unresolved: AtomicU64,
    pub snat_unknown: AtomicU64,
    pub wrong_worker: AtomicU64,
    pub table_full: AtomicU64,
    pub conflicts: AtomicU64,
}

impl SyncCounters {
    fn reject(&self, why: Rejected) {
        let c = match why {
            Rejected::BadState => &self.bad_state,
            Rejected::NoService => &self.no_service,
            Rejected::NoBackend => &self.no_backend,
            Rejected::NeighbourUnresolved => &self.unresolved,
            Rejected::SnatUnknown => &self.snat_unknown,
            Rejected::WrongWorker => &self.wrong_worker,
            Rejected::TableFull => &self.table_full,
            Rejected::Conflict => &self.conflicts,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Part of a worker's table, for a peer that asked for all of it.
#[derive(Debug)]
pub struct DumpChunk {
    pub worker: u16,
    pub records: Vec<AnyRecord>,
    /// The worker's whole table has been sent.
    pub done: bool,
}

/// The control plane's end of a worker's sync queues.
#[derive(Clone, Debug)]
pub struct SyncLink {
    outbox: Arc<ArrayQueue<AnyRecord>>,
    inbox: Arc<ArrayQueue<AnyRecord>>,
    dumps: Arc<ArrayQueue<Sender<DumpChunk>>>,
    counters: Arc<SyncCounters>,
}

impl SyncLink {
    fn new() -> SyncLink {
        SyncLink {
            outbox: Arc::new(ArrayQueue::new(QUEUE_DEPTH)),
            inbox: Arc::new(ArrayQueue::new(QUEUE_DEPTH)),
            dumps: Arc::new(ArrayQueue::new(4)),
            counters: Arc::default(),
        }
    }

    /// The next record the worker has for the peers.
    pub fn take(&self) -> Option<AnyRecord> {
        self.outbox.pop()
    }

    /// Hands a peer's record to the worker; gives it back when the worker
    /// is that far behind.
    pub fn deliver(&self, record: AnyRecord) -> Result<(), AnyRecord> {
        self.inbox.push(record)
    }

    /// Asks the worker for its whole table, sent in chunks on `to`; gives
    /// `to` back when too many dumps are already waiting.
    pub fn dump(&self, to: Sender<DumpChunk>) -> Result<(), Sender<DumpChunk>> {
        self.dumps.push(to)
    }

    pub fn counters(&self) -> &SyncCounters {
        &self.counters
    }
}

/// The worker that applies `record` on a node with `workers` workers: the
/// one both directions of its connection reach.
pub fn record_worker(record: &AnyRecord, workers: u16) -> u16 {
    let workers = workers.max(1);
    match record {
        AnyRecord::V4(r) => owner_of(r, workers),
        AnyRecord::V6(r) => owner_of(r, workers),
    }
}

fn owner_of<A: Addr>(r: &Record<A>, workers: u16) -> u16 {
    if r.snat_ip != A::default() {
        snat_port_owner(r.snat_port, workers)
    } else {
        client_owner(r.client_ip, r.client_port, workers)
    }
}

/// Queues a record for the peers, or counts it lost.
fn push(link: &SyncLink, record: impl Into<AnyRecord>) {
    let c = &link.counters;
    match link.outbox.push(record.into()) {
        Ok(()) => c.queued.fetch_add(1, Ordering::Relaxed),
        Err(_) => c.overflow.fetch_add(1, Ordering::Relaxed),
    };
}

/// The worker's side.
pub(super) struct SyncSide {
    /// This node's number in its site.
    origin: u16,
    link: SyncLink,
    v4: TableSync<u32>,
    v6: TableSync<Ip6>,
    /// A dump in progress and its cursor: the IPv4 table's slots, then
    /// the IPv6 table's.
    dump: Option<(Sender<DumpChunk>, usize)>,
}

/// Where the sync work on one family's table stands.
struct TableSync<A> {
    refresh_cursor: usize,
    refreshed_ms: u64,
    removed: Vec<(FlowKey<A>, Conn<A>)>,
}

impl<A> TableSync<A> {
    fn new() -> TableSync<A> {
        TableSync {
            refresh_cursor: 0,
            refreshed_ms: 0,
            removed: Vec::new(),
        }
    }
}

impl SyncSide {
    pub(super) fn new(origin: u16) -> SyncSide {
        SyncSide {
            origin,
            link: SyncLink::new(),
            v4: TableSync::new(),
            v6: TableSync::new(),
            dump: None,
        }
    }
}

/// What the worker knows of a connection's service, by its VIP.
fn service_of<'s, A: Family>(w: &'s Worker, fwd: &FlowKey<A>) -> Option<&'s Service> {
    A::service(&w.snap, fwd).map(|(_, s)| s)
}

fn backend_by_id(svc: &Service, id: u32) -> Option<&Backend> {
    if id == SORRY_BACKEND_ID {
        return svc.sorry.as_ref();
    }
    let i = svc.weights.iter().position(|b| b.id == id)?;
    svc.backends.get(i)
}

fn backend_by_addr<A: Addr>(svc: &Service, ip: A, port: u16) -> Option<(u32, &Backend)> {
    let matches = |b: &Backend| A::from_ip(b.ip) == Some(ip) && b.port == port;
    if let Some(i) = svc.backends.iter().position(matches) {
        return Some((svc.weights.get(i)?.id, svc.backends.get(i)?));
    }
    svc.sorry
        .as_ref()
        .filter(|b| matches(b))
        .map(|b| (SORRY_BACKEND_ID, b))
}

impl Worker {
    /// The control plane's end of this worker's sync queues, when sync is on.
    pub fn sync_link(&self) -> Option<SyncLink> {
        self.sync.as_ref().map(|s| s.link.clone())
    }

    /// The record of a connection, or `None` when its service or backend
    /// is gone (a removal needs neither).
    fn sync_record<A: Family>(
        &self,
        fwd: &FlowKey<A>,
        conn: &Conn<A>,
        op: RecordOp,
        timeout_ms: u64,
    ) -> Option<Record<A>> {
        let mut r = Record {
            op,
            proto: fwd.proto,
            state: conn.state.code(),
            client_ip: fwd.src_ip,
            client_port: fwd.src_port,
            vip: fwd.dst_ip,
            vip_port: fwd.dst_port,
            client_mac: conn.reply.dst_mac,
            origin: conn.origin,
            timeout_ms: u32::try_from(timeout_ms).unwrap_or(u32::MAX),
            ..Record::default()
        };
        if op == RecordOp::Delete {
            return Some(r);
        }
        let svc = service_of(self, fwd)?;
        match svc.forward {
            ForwardMode::Dr => {
                let b = backend_by_id(svc, conn.backend_id)?;
                (r.backend_ip, r.backend_port) = (A::from_ip(b.ip)?, b.port);
            }
            ForwardMode::Nat => {
                (r.backend_ip, r.backend_port) = (conn.forward.dst_ip, conn.forward.dst_port);
            }
            ForwardMode::FullNat => {
                (r.backend_ip, r.backend_port) = (conn.forward.dst_ip, conn.forward.dst_port);
                (r.snat_ip, r.snat_port) = (conn.forward.src_ip, conn.forward.src_port);
            }
        }
        Some(r)
    }

    /// Tells the peers about a connection this node serves.
    fn sync_announce<A: Family>(&mut self, id: ConnId, timeout_ms: u64) {
        let (Some(side), Some(r)) = (self.sync.as_ref(), self.upsert_of::<A>(id, timeout_ms))
        else {
            return;
        };
        push(&side.link, r);
        A::flows_mut(self).set_synced(id, true);
    }

    /// The upsert record of live connection `id` with `timeout_ms` left.
    fn upsert_of<A: Family>(&self, id: ConnId, timeout_ms: u64) -> Option<Record<A>> {
        let flows = A::flows(self);
        let (fwd, _) = flows.keys(id);
        self.sync_record(&fwd, flows.conn(id), RecordOp::Upsert, timeout_ms)
    }

    /// A connection was just opened here. It is sent once it has shown it
    /// is one: TCP past its handshake, a datagram flow with its second
    /// packet; a flood of first packets costs the peers nothing.
    pub(super) fn sync_opened<A: Family>(&mut self, id: ConnId) {
        if let Some(side) = self.sync.as_ref() {
            let origin = side.origin;
            A::flows_mut(self).conn_mut(id).origin = origin;
        }
    }

    fn sync_full_timeout<A: Family>(&mut self, id: ConnId) {
        let flows = A::flows(self);
        let timeout = flows.conn(id).state.timeout_ms(flows.timeouts());
        self.sync_announce::<A>(id, timeout);
    }

    /// A packet of the connection was forwarded here; its state was
    /// `before`. A learned connection becomes this node's (and, from the
    /// client side, learns where the client is); a connection past its
    /// handshake or already known to the peers is sent on every change.
    pub(super) fn sync_touched<A: Family>(
        &mut self,
        id: ConnId,
        before: ConnState,
        dir: Direction,
        ingress: u8,
        sender_mac: MacAddr,
    ) {
        if self.sync.is_none() {
            return;
        }
        let conn = A::flows_mut(self).conn_mut(id);
        if conn.learned {
            conn.learned = false;
            if dir == Direction::Forward {
                conn.reply.egress = ingress;
                conn.reply.dst_mac = sender_mac.0;
            }
            if let Some(side) = &self.sync {
                side.link.counters.activated.fetch_add(1, Ordering::Relaxed);
            }
            self.sync_full_timeout::<A>(id);
            return;
        }
        let state = conn.state;
        let synced = A::flows(self).is_synced(id);
        let news = match state {
            ConnState::Udp => !synced,
            _ => state != before && (state.is_active() || synced),
        };
        if news {
            self.sync_full_timeout::<A>(id);
        }
    }

    /// Sync work off the packet path: removals to report, peers' records to
    /// apply, refreshes due, a dump in progress. `seen` tells how long
    /// offloaded connections of either family have been idle.
    pub(super) fn sync_housekeeping(&mut self, now_ms: u64, seen: &mut dyn FastSeenAll) {
        let Some(mut side) = self.sync.take() else {
            return;
        };
        self.sync_removals(&side.link, &mut side.v4);
        self.sync_removals(&side.link, &mut side.v6);
        for _ in 0..APPLY_BUDGET {
            let Some(r) = side.link.inbox.pop() else {
                break;
            };
            match self.sync_apply(&r, now_ms) {
                Ok(true) => side.link.counters.applied.fetch_add(1, Ordering::Relaxed),
                Ok(false) => side.link.counters.deleted.fetch_add(1, Ordering::Relaxed),
                Err(why) => {
                    side.link.counters.reject(why);
                    0
                }
            };
        }
        self.sync_refresh(&side.link, &mut side.v4, now_ms, seen.v4());
        self.sync_refresh(&side.link, &mut side.v6, now_ms, seen.v6());
        self.sync_dump(&mut side, now_ms, seen);
        self.sync = Some(side);
    }

    /// Reports the synced connections of one table that ended.
    fn sync_removals<A: Family>(&mut self, link: &SyncLink, table: &mut TableSync<A>) {
        A::flows_mut(self).take_sync_removals(&mut table.removed);
        for (fwd, conn) in table.removed.drain(..) {
            if let Some(r) = self.sync_record(&fwd, &conn, RecordOp::Delete, 0) {
                push(link, r);
            }
        }
    }

    /// Sends again the connections of one table this node serves, a slice
    /// of the table per call so the whole table is covered every refresh
    /// period.
    fn sync_refresh<A: Family>(
        &mut self,
        link: &SyncLink,
        table: &mut TableSync<A>,
        now_ms: u64,
        seen: &mut dyn FastSeen<A>,
    ) {
        let flows = A::flows(self);
        let cap = flows.capacity();
        let elapsed = now_ms.saturating_sub(table.refreshed_ms);
        let budget = share_of(cap, elapsed, REFRESH_PERIOD_MS).min(cap);
        if budget == 0 {
            return;
        }
        table.refreshed_ms = now_ms;
        let start = table.refresh_cursor;
        let end = start.saturating_add(budget).min(cap);
        table.refresh_cursor = if end >= cap { 0 } else { end };
        let due: Vec<ConnId> = flows
            .entries_in(start..end)
            // One sent within the period needs no refresh yet.
            .filter(|(_, _, c)| {
                !c.learned && now_ms.saturating_sub(c.created_ms) >= REFRESH_PERIOD_MS
            })
            .map(|(id, _, _)| id)
            .filter(|&id| flows.is_synced(id))
            .collect();
        for id in due {
            let left = A::flows(self).remaining_ms(id, now_ms, seen);
            if let Some(r) = self.upsert_of::<A>(id, left) {
                push(link, r);
            }
        }
    }

    /// Advances a dump a peer asked for: the IPv4 table, then the IPv6
    /// one.
    fn sync_dump(&mut self, side: &mut SyncSide, now_ms: u64, seen: &mut dyn FastSeenAll) {
        if side.dump.is_none() {
            side.dump = side.link.dumps.pop().map(|to| (to, 0));
        }
        let Some((to, cursor)) = side.dump.take() else {
            return;
        };
        let cap4 = self.flows.capacity();
        let cap = cap4.saturating_add(self.flows6.capacity());
        let end = cursor.saturating_add(DUMP_BUDGET).min(cap);
        let mut records = Vec::new();
        self.dump_slots(
            cursor.min(cap4)..end.min(cap4),
            now_ms,
            seen.v4(),
            &mut records,
        );
        let slots6 = cursor.saturating_sub(cap4)..end.saturating_sub(cap4);
        self.dump_slots::<Ip6>(slots6, now_ms, seen.v6(), &mut records);
        let done = end >= cap;
        let sent = to.send(DumpChunk {
            worker: self.id,
            records,
            done,
        });
        // A requester that went away needs no more.
        if sent.is_ok() && !done {
            side.dump = Some((to, end));
        }
    }

    /// The records of the connections past their handshake in `slots` of
    /// one table.
    fn dump_slots<A: Family>(
        &self,
        slots: Range<usize>,
        now_ms: u64,
        seen: &mut dyn FastSeen<A>,
        out: &mut Vec<AnyRecord>,
    ) {
        let flows = A::flows(self);
        let ids: Vec<ConnId> = flows
            .entries_in(slots)
            .filter(|(_, _, c)| !c.state.is_embryonic())
            .map(|(id, _, _)| id)
            .collect();
        out.extend(ids.into_iter().filter_map(|id| {
            let left = flows.remaining_ms(id, now_ms, seen);
            self.upsert_of::<A>(id, left).map(AnyRecord::from)
        }));
    }

    /// Applies a peer's record: `Ok(true)` created or updated, `Ok(false)`
    /// removed (or already gone).
    pub fn sync_apply(&mut self, r: &AnyRecord, now_ms: u64) -> Result<bool, Rejected> {
        match r {
            AnyRecord::V4(r) => self.apply_record(r, now_ms),
            AnyRecord::V6(r) => self.apply_record(r, now_ms),
        }
    }

    fn apply_record<A: Family>(&mut self, r: &Record<A>, now_ms: u64) -> Result<bool, Rejected> {
        self.now_ms = now_ms;
        let key = FlowKey {
            src_ip: r.client_ip,
            dst_ip: r.vip,
            src_port: r.client_port,
            dst_port: r.vip_port,
            proto: r.proto,
        };
        let existing = A::flows_mut(self).lookup(&key, now_ms).map(|(id, _)| id);
        if r.op == RecordOp::Delete {
            // A connection this node serves is this node's to end.
            let flows = A::flows_mut(self);
            if let Some(id) = existing.filter(|&id| flows.conn(id).learned) {
                flows.remove(id);
            }
            return Ok(false);
        }
        let state = ConnState::from_code(r.state).ok_or(Rejected::BadState)?;
        let snap = self.snap.clone();
        let (sid, svc) = A::service(&snap, &key).ok_or(Rejected::NoService)?;
        let (backend_id, backend) =
            backend_by_addr(svc, r.backend_ip, r.backend_port).ok_or(Rejected::NoBackend)?;
        let hop = backend.hop.ok_or_else(|| {
            self.published.resolve_wanted.store(true, Ordering::Relaxed);
            Rejected::NeighbourUnresolved
        })?;
        let egress_mac = snap
            .ports
            .get(usize::from(hop.port))
            .map(|p| p.mac)
            .ok_or(Rejected::NeighbourUnresolved)?;
        let owner = match svc.forward {
            ForwardMode::FullNat => {
                // One of the service's sources, or another node's that
                // this node can take over (a floating address).
                let answered = A::local(&snap, r.snat_ip)
                    .is_some_and(|l| matches!(l.kind, LocalKind::Snat | LocalKind::Floating));
                let configured = svc.snat.iter().any(|&s| A::from_ip(s) == Some(r.snat_ip));
                if !configured && !answered {
                    return Err(Rejected::SnatUnknown);
                }
                let owner = snat_port_owner(r.snat_port, self.workers);
                if owner != client_owner(r.client_ip, r.client_port, self.workers) {
                    return Err(Rejected::WrongWorker);
                }
                owner
            }
            ForwardMode::Nat | ForwardMode::Dr => {
                client_owner(r.client_ip, r.client_port, self.workers)
            }
        };
        if self.workers > 1 && owner != self.id {
            return Err(Rejected::WrongWorker);
        }
        let vip = A::local(&snap, r.vip);
        let client = ClientSide {
            mac: r.client_mac,
            vip_mac: vip.map_or(egress_mac.0, |l| l.mac.0),
            port: vip.map_or(0, |l| l.port),
        };
        let (forward, reply, reply_key) = rewrites(
            svc.forward,
            &key,
            (r.backend_ip, r.backend_port),
            hop,
            egress_mac.0,
            (r.snat_ip, r.snat_port),
            client,
        );
        let expires = now_ms.saturating_add(u64::from(r.timeout_ms));
        // What the entry stays: learned, unless this node serves the same
        // connection the same way too (ECMP: the router may send its two
        // directions, or its packets before and after a rehash, to
        // different nodes); then both serve it and neither gives it up.
        let mut keep_local = false;
        let flows = A::flows_mut(self);
        if let Some(id) = existing {
            let c = *flows.conn(id);
            let same =
                c.backend_id == backend_id && c.forward == forward && flows.keys(id).1 == reply_key;
            if !same && !c.learned && r.origin > c.origin {
                return Err(Rejected::Conflict);
            }
            if same && c.state == state {
                flows.set_expiry(id, expires.max(flows.expires_ms(id)));
                return Ok(true);
            }
            keep_local = same && !c.learned;
            // Replaced, not removed: the peers are not told.
            flows.set_synced(id, false);
            flows.remove(id);
        }
        let mut conn = Conn::new(
            forward,
            reply,
            sid,
            backend_id,
            r.client_ip,
            r.proto,
            now_ms,
        );
        conn.state = state;
        conn.learned = !keep_local;
        conn.origin = r.origin;
        let id = flows
            .insert(key, reply_key, conn, now_ms)
            .map_err(|e| match e {
                InsertError::Full | InsertError::TooManyBackends => Rejected::TableFull,
                // Another connection holds the reply key: two nodes gave
                // out the same full-NAT port (split brain).
                InsertError::Exists => Rejected::Conflict,
            })?;
        flows.set_expiry(id, expires);
        flows.set_synced(id, keep_local);
        // Not offloaded: its first packet here must reach the worker, which
        // makes it this node's and tells the peers.
        if self.steer_replies && svc.forward == ForwardMode::Nat {
            A::flows_mut(self).steer_replies(id, hop.port);
        }
        Ok(true)
    }
}
