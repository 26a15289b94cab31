//! Bounded connection table: a slot array of connections and a two-choice,
//! 8-way set-associative index over it.
//!
//! Every key hashes to two candidate buckets of one cache line each; a key
//! lives in one of them, so a lookup reads at most two lines and an insert
//! only ever inspects those sixteen entries (plus the global list of
//! embryonic connections when the slot array is full). Nothing is allocated
//! after construction.

use super::{
    Addr, Conn, ConnState, Direction, FastSeen, FlowKey, Rewrite, SteerAction, SteerChange,
    Timeouts,
};
use crate::sched::flow_hash;

const WAYS: usize = 8;
const EMPTY: u32 = u32::MAX;
const NIL: u32 = u32::MAX;
/// Index entries store the slot number with this bit set for the reply key.
const REPLY_BIT: u32 = 1 << 31;
/// Slot numbers must stay clear of `REPLY_BIT` and `EMPTY`.
const MAX_CAPACITY: usize = (REPLY_BIT - 1) as usize;
/// Expired-slot sweep done by an insert that finds the slot array full,
/// before it resorts to evicting a live embryonic connection.
const INSERT_SWEEP: usize = 64;
/// Distinct backends one table tracks connection counts for.
const MAX_BACKENDS: usize = 65_536;

/// Handle to a live connection, valid until it is removed or expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnId(u32);

#[derive(Debug, PartialEq, Eq)]
pub enum InsertError {
    /// No room: the candidate buckets or the slot array hold only live,
    /// non-embryonic connections, which a new connection never displaces.
    Full,
    /// One of the keys already belongs to a live connection (for example an
    /// SNAT port still in use); look the key up instead of inserting.
    Exists,
    /// The table already counts connections for its maximum number of
    /// distinct backends.
    TooManyBackends,
}

#[derive(Clone, Copy)]
struct Entry {
    tag: u32,
    slot: u32,
}

#[derive(Clone, Copy)]
#[repr(align(64))]
struct Bucket([Entry; WAYS]);

const LIVE: u8 = 1;
/// Linked into the embryonic list.
const IN_EMBRYONIC: u8 = 2;
/// Counted as active (otherwise inactive) for `counted_backend`.
const COUNTED_ACTIVE: u8 = 4;
/// Its reply key is in the XDP program's map on `ports[1]`, handing its
/// packets to the workers.
const STEERED: u8 = 8;
/// Its forward key (`keys[0]`) is in the XDP program's map on `ports[0]`,
/// forwarded there.
const FAST_FORWARD: u8 = 16;
/// Its reply key likewise, on `ports[1]`.
const FAST_REPLY: u8 = 32;
/// Either key.
const OFFLOADED: u8 = FAST_FORWARD | FAST_REPLY;
const FAST: [u8; 2] = [FAST_FORWARD, FAST_REPLY];
/// The site's other nodes know it (connection sync): its removal is logged
/// for them.
const SYNCED: u8 = 64;

/// Table bookkeeping lives beside the `Conn`, not in it, so a caller that
/// rewrites a conn through `conn_mut` cannot corrupt counts or lists.
#[derive(Clone, Copy)]
struct Slot<A> {
    conn: Conn<A>,
    keys: [FlowKey<A>; 2],
    expires_ms: u64,
    /// Embryonic list links while embryonic, free list link while free.
    prev: u32,
    next: u32,
    counted_backend: u32,
    flags: u8,
    /// The ports its forward and reply keys arrive on, for the XDP map.
    ports: [u8; 2],
}

/// The rewrites an offloaded connection's packets get in the XDP program.
/// The forward key arrives where replies leave (`reply.egress`) and the
/// reply key where forward packets leave (`forward.egress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offload<A = u32> {
    pub forward: Rewrite<A>,
    pub reply: Rewrite<A>,
    /// The backend the program counts the packets for.
    pub backend: u32,
    /// Which directions the program forwards, forward (client to backend)
    /// and reply: a direction whose packets would leave by a port XDP
    /// cannot send by stays with the workers.
    pub fast: [bool; 2],
}

/// Per-backend (active, inactive) counts: linear probing, an entry is empty
/// when both counts are zero, deletion by backward shift.
struct BackendCounts {
    entries: Vec<(u32, u32, u32)>,
    used: usize,
    limit: usize,
}

impl BackendCounts {
    fn new(capacity: usize) -> Self {
        let limit = capacity.clamp(1, MAX_BACKENDS);
        let size = (limit * 2).next_power_of_two();
        BackendCounts {
            entries: vec![(0, 0, 0); size],
            used: 0,
            limit,
        }
    }

    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    fn home(&self, id: u32) -> usize {
        crate::sched::src_hash(id) as usize & self.mask()
    }

    fn find(&self, id: u32) -> Result<usize, usize> {
        let mut i = self.home(id);
        loop {
            let (eid, a, n) = self.entries[i];
            if a == 0 && n == 0 {
                return Err(i);
            }
            if eid == id {
                return Ok(i);
            }
            i = (i + 1) & self.mask();
        }
    }

    fn get(&self, id: u32) -> (u32, u32) {
        match self.find(id) {
            Ok(i) => (self.entries[i].1, self.entries[i].2),
            Err(_) => (0, 0),
        }
    }

    fn can_add(&self, id: u32) -> bool {
        self.used < self.limit || self.find(id).is_ok()
    }

    /// Callers check `can_add` first, so an empty entry always exists.
    fn add(&mut self, id: u32, active: bool) {
        let i = match self.find(id) {
            Ok(i) => i,
            Err(i) => {
                self.used += 1;
                self.entries[i].0 = id;
                i
            }
        };
        if active {
            self.entries[i].1 += 1;
        } else {
            self.entries[i].2 += 1;
        }
    }

    fn sub(&mut self, id: u32, active: bool) {
        let Ok(mut i) = self.find(id) else { return };
        let e = &mut self.entries[i];
        if active {
            e.1 = e.1.saturating_sub(1);
        } else {
            e.2 = e.2.saturating_sub(1);
        }
        if e.1 != 0 || e.2 != 0 {
            return;
        }
        self.used -= 1;
        // Backward-shift deletion keeps every probe chain unbroken without
        // tombstones.
        let mask = self.mask();
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let (eid, a, n) = self.entries[j];
            if a == 0 && n == 0 {
                break;
            }
            let home = self.home(eid);
            // Move j into the hole at i unless its home lies cyclically in (i, j].
            let stays = if i <= j {
                i < home && home <= j
            } else {
                i < home || home <= j
            };
            if !stays {
                self.entries[i] = self.entries[j];
                self.entries[j] = (0, 0, 0);
                i = j;
            }
        }
    }

    fn move_one(&mut self, id: u32, from_active: bool) {
        // Add before sub so the entry never drops to empty in between.
        self.add(id, !from_active);
        self.sub(id, from_active);
    }
}

/// A worker's connection table. See the module documentation.
pub struct FlowTable<A = u32> {
    slots: Vec<Slot<A>>,
    buckets: Vec<Bucket>,
    counts: BackendCounts,
    timeouts: Timeouts,
    len: usize,
    free_head: u32,
    embryonic_head: u32,
    embryonic_tail: u32,
    sweep_cursor: usize,
    steer_log: Vec<SteerChange<A>>,
    /// Forward keys and last states of removed connections peers knew of.
    sync_removed: Vec<(FlowKey<A>, Conn<A>)>,
    offloaded: usize,
}

fn key_index<A: Addr>(key: &FlowKey<A>) -> (u64, u32) {
    let h = flow_hash(key);
    (h, (h >> 32) as u32)
}

impl<A: Addr> FlowTable<A> {
    /// Allocates room for `capacity` connections (at most 2^31 - 1) and
    /// their index up front.
    pub fn new(capacity: usize, timeouts: Timeouts) -> Self {
        let capacity = capacity.min(MAX_CAPACITY);
        // Two keys per connection at no more than 75 % index load.
        let nbuckets = (capacity * 2)
            .div_ceil(WAYS * 3 / 4)
            .next_power_of_two()
            .max(2);
        let empty_conn = Conn::new(
            Default::default(),
            Default::default(),
            0,
            0,
            A::default(),
            0,
            0,
        );
        let slots = (0..capacity)
            .map(|i| Slot {
                conn: empty_conn,
                keys: [FlowKey::default(); 2],
                expires_ms: 0,
                prev: NIL,
                next: if i + 1 < capacity { i as u32 + 1 } else { NIL },
                counted_backend: 0,
                flags: 0,
                ports: [0; 2],
            })
            .collect();
        FlowTable {
            slots,
            buckets: vec![
                Bucket(
                    [Entry {
                        tag: 0,
                        slot: EMPTY
                    }; WAYS]
                );
                nbuckets
            ],
            counts: BackendCounts::new(capacity),
            timeouts,
            len: 0,
            free_head: if capacity > 0 { 0 } else { NIL },
            embryonic_head: NIL,
            embryonic_tail: NIL,
            sweep_cursor: 0,
            steer_log: Vec::new(),
            sync_removed: Vec::new(),
            offloaded: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    fn candidate_buckets(&self, h: u64, tag: u32) -> [usize; 2] {
        let mask = self.buckets.len() - 1;
        let b1 = h as usize & mask;
        // Odd offset so the second bucket differs from the first.
        let b2 = b1 ^ ((tag.wrapping_mul(0x9E37_79B1) as usize | 1) & mask);
        [b1, b2]
    }

    fn find(&self, key: &FlowKey<A>) -> Option<(u32, Direction)> {
        let (h, tag) = key_index(key);
        for b in self.candidate_buckets(h, tag) {
            for e in &self.buckets[b].0 {
                if e.slot == EMPTY || e.tag != tag {
                    continue;
                }
                let slot = e.slot & !REPLY_BIT;
                let reply = e.slot & REPLY_BIT != 0;
                if self.slots[slot as usize].keys[reply as usize] == *key {
                    let dir = if reply {
                        Direction::Reply
                    } else {
                        Direction::Forward
                    };
                    return Some((slot, dir));
                }
            }
        }
        None
    }

    /// Loads both index lines `key` may live in. A batch calls this for all
    /// its frames before processing any, so their cache misses overlap
    /// instead of queueing one behind the other: the loads are independent
    /// and the CPU runs them out of order.
    pub fn prefetch(&self, key: &FlowKey<A>) {
        let (h, tag) = key_index(key);
        let [b1, b2] = self.candidate_buckets(h, tag);
        std::hint::black_box(self.buckets[b1].0[0].slot ^ self.buckets[b2].0[0].slot);
    }

    /// Whether the connection has been idle past its timeout. An offloaded
    /// connection's packets bypass the table, so only the sweep, which asks
    /// the XDP program when it last saw them, may judge it.
    fn expired(&self, slot: u32, now_ms: u64) -> bool {
        let s = &self.slots[slot as usize];
        now_ms >= s.expires_ms && s.flags & OFFLOADED == 0
    }

    /// Finds the connection a packet belongs to and which side sent it. An
    /// expired connection is reclaimed and reported absent.
    pub fn lookup(&mut self, key: &FlowKey<A>, now_ms: u64) -> Option<(ConnId, Direction)> {
        let (slot, dir) = self.find(key)?;
        if self.expired(slot, now_ms) {
            self.remove_slot(slot);
            return None;
        }
        Some((ConnId(slot), dir))
    }

    /// Whether `id` still names a live connection (possibly expired but not
    /// yet reclaimed). A slot may be reused by a later insert.
    pub fn contains(&self, id: ConnId) -> bool {
        self.slots[id.0 as usize].flags & LIVE != 0
    }

    pub fn conn(&self, id: ConnId) -> &Conn<A> {
        &self.slots[id.0 as usize].conn
    }

    /// Use [`FlowTable::touch`] to change the state; the table keeps its own
    /// record of the backend and state it counted.
    pub fn conn_mut(&mut self, id: ConnId) -> &mut Conn<A> {
        &mut self.slots[id.0 as usize].conn
    }

    /// Advances the connection's state for one packet (`tcp_flags` as on the
    /// wire, ignored for UDP) and restarts its timer for the new state.
    pub fn touch(&mut self, id: ConnId, dir: Direction, tcp_flags: u8, now_ms: u64) -> ConnState {
        let s = id.0;
        let slot = &mut self.slots[s as usize];
        if slot.flags & LIVE == 0 {
            return slot.conn.state;
        }
        slot.conn.advance(dir, tcp_flags);
        let state = slot.conn.state;
        if slot.flags & OFFLOADED != 0 && !state.is_offloadable() {
            self.withdraw(id);
        }
        let slot = &mut self.slots[s as usize];
        slot.expires_ms = now_ms.saturating_add(state.timeout_ms(&self.timeouts));
        let was_active = slot.flags & COUNTED_ACTIVE != 0;
        let backend = slot.counted_backend;
        if state.is_active() != was_active {
            slot.flags ^= COUNTED_ACTIVE;
            self.counts.move_one(backend, was_active);
        }
        if self.slots[s as usize].flags & IN_EMBRYONIC != 0 {
            self.unlink_embryonic(s);
        }
        if state.is_embryonic() {
            self.push_embryonic(s);
        }
        state
    }

    /// Adds a connection under both keys (one entry if they are equal: in
    /// direct routing, where replies bypass the balancer, pass the forward
    /// key twice). Call it after a lookup missed. When room is short, expired connections are reclaimed first, then the
    /// least recently seen embryonic one is evicted; live established or
    /// closing connections are never displaced. An insert that fails may
    /// still have reclaimed or evicted entries on the way.
    pub fn insert(
        &mut self,
        forward_key: FlowKey<A>,
        reply_key: FlowKey<A>,
        conn: Conn<A>,
        now_ms: u64,
    ) -> Result<ConnId, InsertError> {
        for key in [&forward_key, &reply_key] {
            if let Some((slot, _)) = self.find(key) {
                if !self.expired(slot, now_ms) {
                    return Err(InsertError::Exists);
                }
                self.remove_slot(slot);
            }
        }
        if !self.counts.can_add(conn.backend_id) {
            return Err(InsertError::TooManyBackends);
        }
        let s = self.take_free_slot(now_ms)?;
        {
            let slot = &mut self.slots[s as usize];
            slot.conn = conn;
            slot.keys = [forward_key, reply_key];
            slot.flags = 0;
            slot.prev = NIL;
            slot.next = NIL;
        }
        let two_keys = forward_key != reply_key;
        if let Err(e) = self.place(&forward_key, s, s, now_ms) {
            self.release_slot(s);
            return Err(e);
        }
        if two_keys {
            if let Err(e) = self.place(&reply_key, s | REPLY_BIT, s, now_ms) {
                self.clear_entry(&forward_key, s);
                self.release_slot(s);
                return Err(e);
            }
        }
        let state = conn.state;
        let slot = &mut self.slots[s as usize];
        slot.expires_ms = now_ms.saturating_add(state.timeout_ms(&self.timeouts));
        slot.counted_backend = conn.backend_id;
        slot.flags = LIVE | if state.is_active() { COUNTED_ACTIVE } else { 0 };
        self.counts.add(conn.backend_id, state.is_active());
        if state.is_embryonic() {
            self.push_embryonic(s);
        }
        self.len += 1;
        Ok(ConnId(s))
    }

    /// Has the XDP program on `port` hand packets with the connection's reply
    /// key to the workers for as long as the connection lives: its removal,
    /// however it happens, withdraws the key. Both wait in a log for the
    /// engine ([`FlowTable::take_steer_changes`]).
    pub fn steer_replies(&mut self, id: ConnId, port: u8) {
        let slot = &mut self.slots[id.0 as usize];
        if slot.flags & (LIVE | STEERED) != LIVE {
            return;
        }
        slot.flags |= STEERED;
        slot.ports[1] = port;
        let key = slot.keys[1];
        if slot.flags & FAST_REPLY == 0 {
            self.log(port, key, SteerAction::ToWorker);
        }
    }

    /// What key `k` of a connection with `flags` goes back to when the
    /// program stops forwarding it: a steered reply key to the workers,
    /// every other key forgotten (VIP and full-NAT traffic reaches the
    /// workers anyway).
    fn back_to_worker(flags: u8, k: usize) -> SteerAction<A> {
        if k == 1 && flags & STEERED != 0 {
            SteerAction::ToWorker
        } else {
            SteerAction::Remove
        }
    }

    /// Has the XDP program forward the connection's packets itself, in the
    /// directions `o.fast` names, until [`FlowTable::withdraw`], a state
    /// that needs the worker, or its removal. Offloading again replaces the
    /// rewrites and directions.
    pub fn offload(&mut self, id: ConnId, o: &Offload<A>) {
        let slot = &mut self.slots[id.0 as usize];
        if slot.flags & LIVE == 0 {
            return;
        }
        let (old, keys, flags) = (slot.ports, slot.keys, slot.flags);
        let two_keys = keys[0] != keys[1];
        let want = [o.fast[0], o.fast[1] && two_keys];
        let ports = [o.reply.egress, o.forward.egress];
        let rewrites = [o.forward, o.reply];
        let mut new_flags = flags & !OFFLOADED;
        let mut new_ports = old;
        for k in 0..1 + usize::from(two_keys) {
            let was = flags & FAST[k] != 0;
            let in_map = was || (k == 1 && flags & STEERED != 0);
            if want[k] {
                if in_map && old[k] != ports[k] {
                    self.log(old[k], keys[k], SteerAction::Remove);
                }
                let action = SteerAction::Forward {
                    rewrite: rewrites[k],
                    backend: o.backend,
                };
                self.log(ports[k], keys[k], action);
                new_flags |= FAST[k];
                new_ports[k] = ports[k];
            } else if was {
                self.log(old[k], keys[k], Self::back_to_worker(flags, k));
            }
        }
        match (flags & OFFLOADED != 0, new_flags & OFFLOADED != 0) {
            (false, true) => self.offloaded += 1,
            (true, false) => self.offloaded -= 1,
            _ => {}
        }
        let slot = &mut self.slots[id.0 as usize];
        slot.flags = new_flags;
        slot.ports = new_ports;
    }

    /// Connections the XDP program forwards (in at least one direction).
    pub fn offloaded(&self) -> usize {
        self.offloaded
    }

    /// Whether the XDP program forwards any of the connection's packets.
    pub fn is_offloaded(&self, id: ConnId) -> bool {
        let flags = self.slots[id.0 as usize].flags;
        flags & LIVE != 0 && flags & OFFLOADED != 0
    }

    /// Brings an offloaded connection's packets back to the workers.
    pub fn withdraw(&mut self, id: ConnId) {
        let slot = &mut self.slots[id.0 as usize];
        let flags = slot.flags;
        if flags & LIVE == 0 || flags & OFFLOADED == 0 {
            return;
        }
        slot.flags &= !OFFLOADED;
        let (ports, keys) = (slot.ports, slot.keys);
        self.offloaded -= 1;
        for (k, bit) in FAST.iter().enumerate() {
            if flags & bit != 0 {
                self.log(ports[k], keys[k], Self::back_to_worker(flags, k));
            }
        }
    }

    /// Offloaded connections among slots `range` (clamped to the table).
    pub fn offloaded_in(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = ConnId> + '_ {
        let end = range.end.min(self.slots.len());
        let start = range.start.min(end);
        (start..end)
            .filter(|&s| self.is_offloaded(ConnId(s as u32)))
            .map(|s| ConnId(s as u32))
    }

    /// When the XDP program last forwarded a packet of the connection, if
    /// it is offloaded and the program has.
    pub fn last_seen_ms(&self, id: ConnId, seen: &mut dyn FastSeen<A>) -> Option<u64> {
        let slot = &self.slots[id.0 as usize];
        if slot.flags & LIVE == 0 {
            return None;
        }
        FAST.iter()
            .enumerate()
            .filter(|(_, bit)| slot.flags & **bit != 0)
            .filter_map(|(k, _)| seen.last_seen_ms(slot.ports[k], &slot.keys[k]))
            .max()
    }

    /// When the connection last carried a packet (ms, the workers' clock):
    /// the worker's last touch or the XDP program's last forward.
    pub fn last_active_ms(&self, id: ConnId, seen: &mut dyn FastSeen<A>) -> u64 {
        let slot = &self.slots[id.0 as usize];
        let touched = slot
            .expires_ms
            .saturating_sub(slot.conn.state.timeout_ms(&self.timeouts));
        self.last_seen_ms(id, seen)
            .map_or(touched, |f| f.max(touched))
    }

    /// Idle time the connection has left at `now_ms`.
    pub fn remaining_ms(&self, id: ConnId, now_ms: u64, seen: &mut dyn FastSeen<A>) -> u64 {
        let timeout = self.slots[id.0 as usize]
            .conn
            .state
            .timeout_ms(&self.timeouts);
        self.last_active_ms(id, seen)
            .saturating_add(timeout)
            .saturating_sub(now_ms)
    }

    fn log(&mut self, port: u8, key: FlowKey<A>, action: SteerAction<A>) {
        self.steer_log.push(SteerChange { port, key, action });
    }

    /// Moves the XDP map changes made since the last call into `out`, in
    /// the order they happened.
    pub fn take_steer_changes(&mut self, out: &mut Vec<SteerChange<A>>) {
        out.append(&mut self.steer_log);
    }

    /// Marks whether the site's other nodes know the connection; removing a
    /// marked connection, however it happens, logs it for them
    /// ([`FlowTable::take_sync_removals`]).
    pub fn set_synced(&mut self, id: ConnId, synced: bool) {
        let slot = &mut self.slots[id.0 as usize];
        if slot.flags & LIVE != 0 {
            if synced {
                slot.flags |= SYNCED;
            } else {
                slot.flags &= !SYNCED;
            }
        }
    }

    pub fn is_synced(&self, id: ConnId) -> bool {
        self.slots[id.0 as usize].flags & (LIVE | SYNCED) == LIVE | SYNCED
    }

    /// Moves the forward keys and last states of the synced connections
    /// removed since the last call into `out`.
    pub fn take_sync_removals(&mut self, out: &mut Vec<(FlowKey<A>, Conn<A>)>) {
        out.append(&mut self.sync_removed);
    }

    /// When the connection expires if no packet comes (engine clock, ms).
    pub fn expires_ms(&self, id: ConnId) -> u64 {
        self.slots[id.0 as usize].expires_ms
    }

    /// Sets when an idle connection expires: a peer said how long it has.
    pub fn set_expiry(&mut self, id: ConnId, expires_ms: u64) {
        let slot = &mut self.slots[id.0 as usize];
        if slot.flags & LIVE != 0 {
            slot.expires_ms = expires_ms;
        }
    }

    /// The forward and reply keys of a live connection.
    pub fn keys(&self, id: ConnId) -> (FlowKey<A>, FlowKey<A>) {
        let k = self.slots[id.0 as usize].keys;
        (k[0], k[1])
    }

    /// Removes a connection and both its keys. Removing twice is harmless.
    pub fn remove(&mut self, id: ConnId) {
        if self.slots[id.0 as usize].flags & LIVE != 0 {
            self.remove_slot(id.0);
        }
    }

    /// Looks at up to `budget` slots, continuing where the last sweep
    /// stopped, and removes the expired ones; an offloaded connection is
    /// judged by when `seen` last saw its packets. Returns how many it
    /// removed.
    pub fn expire(&mut self, now_ms: u64, budget: usize, seen: &mut dyn FastSeen<A>) -> usize {
        self.sweep(now_ms, budget, Some(seen))
    }

    /// [`FlowTable::expire`]; without `seen` offloaded connections are kept.
    fn sweep(
        &mut self,
        now_ms: u64,
        budget: usize,
        mut seen: Option<&mut dyn FastSeen<A>>,
    ) -> usize {
        let cap = self.slots.len();
        let mut removed = 0;
        for _ in 0..budget.min(cap) {
            let s = self.sweep_cursor;
            self.sweep_cursor = if s + 1 == cap { 0 } else { s + 1 };
            let slot = &self.slots[s];
            if slot.flags & LIVE == 0 || now_ms < slot.expires_ms {
                continue;
            }
            if slot.flags & OFFLOADED != 0 {
                let Some(seen) = seen.as_deref_mut() else {
                    continue;
                };
                let timeout = slot.conn.state.timeout_ms(&self.timeouts);
                let until = self
                    .last_seen_ms(ConnId(s as u32), seen)
                    .map(|t| t.saturating_add(timeout));
                if let Some(until) = until.filter(|&u| u > now_ms) {
                    self.slots[s].expires_ms = until;
                    continue;
                }
            }
            self.remove_slot(s as u32);
            removed += 1;
        }
        removed
    }

    /// (active, inactive) live connections to `backend_id` in this table.
    pub fn backend_conns(&self, backend_id: u32) -> (u32, u32) {
        self.counts.get(backend_id)
    }

    /// Live connections, including expired ones not yet reclaimed.
    pub fn iter(&self) -> impl Iterator<Item = &Conn<A>> {
        self.slots
            .iter()
            .filter(|s| s.flags & LIVE != 0)
            .map(|s| &s.conn)
    }

    /// Live connections with their forward and reply keys and expiry time.
    pub fn entries(&self) -> impl Iterator<Item = (&FlowKey<A>, &FlowKey<A>, &Conn<A>, u64)> {
        self.slots
            .iter()
            .filter(|s| s.flags & LIVE != 0)
            .map(|s| (&s.keys[0], &s.keys[1], &s.conn, s.expires_ms))
    }

    /// Live connections among slots `range` (clamped to the table), for
    /// scans spread over several calls.
    pub fn entries_in(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (ConnId, &FlowKey<A>, &Conn<A>)> {
        let end = range.end.min(self.slots.len());
        let start = range.start.min(end);
        self.slots[start..end]
            .iter()
            .enumerate()
            .filter(|(_, s)| s.flags & LIVE != 0)
            .map(move |(i, s)| (ConnId((start + i) as u32), &s.keys[0], &s.conn))
    }

    /// Bytes allocated by the table; fixed at construction.
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<A>>()
            + self.buckets.capacity() * std::mem::size_of::<Bucket>()
            + self.counts.entries.capacity() * std::mem::size_of::<(u32, u32, u32)>()
    }

    /// Bytes per connection of capacity, index included.
    pub fn bytes_per_conn(&self) -> usize {
        self.memory_bytes() / self.slots.len().max(1)
    }

    fn take_free_slot(&mut self, now_ms: u64) -> Result<u32, InsertError> {
        if self.free_head == NIL {
            let head = self.embryonic_head;
            if head != NIL && self.expired(head, now_ms) {
                self.remove_slot(head);
            } else {
                self.sweep(now_ms, INSERT_SWEEP, None);
            }
        }
        if self.free_head == NIL {
            if self.embryonic_head == NIL {
                return Err(InsertError::Full);
            }
            self.remove_slot(self.embryonic_head);
        }
        let s = self.free_head;
        if s == NIL {
            return Err(InsertError::Full);
        }
        self.free_head = self.slots[s as usize].next;
        Ok(s)
    }

    fn release_slot(&mut self, s: u32) {
        let slot = &mut self.slots[s as usize];
        slot.flags = 0;
        slot.prev = NIL;
        slot.next = self.free_head;
        self.free_head = s;
    }

    /// Writes an index entry for `key` pointing at `value`, making room in
    /// its two buckets if needed. `own` is the slot being inserted, never a
    /// candidate for eviction.
    fn place(
        &mut self,
        key: &FlowKey<A>,
        value: u32,
        own: u32,
        now_ms: u64,
    ) -> Result<(), InsertError> {
        let (h, tag) = key_index(key);
        let buckets = self.candidate_buckets(h, tag);
        if self.free_way(buckets).is_none() {
            self.make_room(buckets, own, now_ms)?;
        }
        let (b, w) = self.free_way(buckets).ok_or(InsertError::Full)?;
        self.buckets[b].0[w] = Entry { tag, slot: value };
        Ok(())
    }

    /// The first free way in the emptier of the two buckets.
    fn free_way(&self, buckets: [usize; 2]) -> Option<(usize, usize)> {
        let free = |b: usize| self.buckets[b].0.iter().filter(|e| e.slot == EMPTY).count();
        let b = if free(buckets[1]) > free(buckets[0]) {
            buckets[1]
        } else {
            buckets[0]
        };
        let w = self.buckets[b].0.iter().position(|e| e.slot == EMPTY)?;
        Some((b, w))
    }

    fn make_room(&mut self, buckets: [usize; 2], own: u32, now_ms: u64) -> Result<(), InsertError> {
        let mut freed = false;
        let mut oldest: Option<(u64, u32)> = None;
        for b in buckets {
            for w in 0..WAYS {
                let e = self.buckets[b].0[w];
                if e.slot == EMPTY {
                    continue;
                }
                let s = e.slot & !REPLY_BIT;
                if s == own {
                    continue;
                }
                if self.expired(s, now_ms) {
                    self.remove_slot(s);
                    freed = true;
                    continue;
                }
                let slot = &self.slots[s as usize];
                if slot.flags & IN_EMBRYONIC != 0
                    && oldest.is_none_or(|(exp, _)| slot.expires_ms < exp)
                {
                    oldest = Some((slot.expires_ms, s));
                }
            }
        }
        if freed {
            return Ok(());
        }
        let (_, victim) = oldest.ok_or(InsertError::Full)?;
        self.remove_slot(victim);
        Ok(())
    }

    fn clear_entry(&mut self, key: &FlowKey<A>, value: u32) {
        let (h, tag) = key_index(key);
        for b in self.candidate_buckets(h, tag) {
            for e in self.buckets[b].0.iter_mut() {
                if e.slot == value && e.tag == tag {
                    e.slot = EMPTY;
                    return;
                }
            }
        }
    }

    fn remove_slot(&mut self, s: u32) {
        let slot = self.slots[s as usize];
        if slot.flags & LIVE == 0 {
            return;
        }
        self.clear_entry(&slot.keys[0], s);
        if slot.keys[0] != slot.keys[1] {
            self.clear_entry(&slot.keys[1], s | REPLY_BIT);
        }
        if slot.flags & IN_EMBRYONIC != 0 {
            self.unlink_embryonic(s);
        }
        if slot.flags & OFFLOADED != 0 {
            self.offloaded -= 1;
        }
        if slot.flags & FAST_FORWARD != 0 {
            self.log(slot.ports[0], slot.keys[0], SteerAction::Remove);
        }
        if slot.flags & (FAST_REPLY | STEERED) != 0 && slot.keys[0] != slot.keys[1] {
            self.log(slot.ports[1], slot.keys[1], SteerAction::Remove);
        }
        if slot.flags & SYNCED != 0 {
            self.sync_removed.push((slot.keys[0], slot.conn));
        }
        self.counts
            .sub(slot.counted_backend, slot.flags & COUNTED_ACTIVE != 0);
        self.len -= 1;
        self.release_slot(s);
    }

    fn push_embryonic(&mut self, s: u32) {
        let tail = self.embryonic_tail;
        let slot = &mut self.slots[s as usize];
        slot.flags |= IN_EMBRYONIC;
        slot.prev = tail;
        slot.next = NIL;
        if tail == NIL {
            self.embryonic_head = s;
        } else {
            self.slots[tail as usize].next = s;
        }
        self.embryonic_tail = s;
    }

    fn unlink_embryonic(&mut self, s: u32) {
        let slot = &mut self.slots[s as usize];
        slot.flags &= !IN_EMBRYONIC;
        let (prev, next) = (slot.prev, slot.next);
        slot.prev = NIL;
        slot.next = NIL;
        if prev == NIL {
            self.embryonic_head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.embryonic_tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
    }
}

#[cfg(test)]
mod bucket_tests {
    use super::*;
    use crate::flow::{Rewrite, TCP_ACK};

    /// Single-key (direct routing) flows whose two candidate buckets are
    /// exactly `pair`, found by search so one bucket pair can be filled.
    fn colliding_keys(table: &FlowTable, pair: [usize; 2], count: usize) -> Vec<FlowKey> {
        let mut out = Vec::new();
        let mut port = 0u32;
        while out.len() < count {
            port += 1;
            let key = FlowKey {
                src_ip: 0xc000_0000 | (port >> 16),
                dst_ip: 0x0a00_0001,
                src_port: port as u16,
                dst_port: 80,
                proto: 6,
            };
            let (h, tag) = key_index(&key);
            let mut got = table.candidate_buckets(h, tag);
            got.sort_unstable();
            if got == pair {
                out.push(key);
            }
        }
        out
    }

    fn conn(n: u32) -> Conn {
        Conn::new(Rewrite::default(), Rewrite::default(), 1, n % 2, n, 6, 0)
    }

    #[test]
    fn full_bucket_evicts_embryonic_never_established() {
        let mut table = FlowTable::new(64, Timeouts::default());
        let first: FlowKey = FlowKey::default();
        let (h, tag) = key_index(&first);
        let mut pair = table.candidate_buckets(h, tag);
        pair.sort_unstable();
        let keys = colliding_keys(&table, pair, 40);
        let mut ids = Vec::new();
        for (n, k) in (0..).zip(&keys[..2 * WAYS]) {
            ids.push(table.insert(*k, *k, conn(n), n.into()).unwrap());
        }
        for &id in ids.iter().step_by(2) {
            table.touch(id, Direction::Forward, TCP_ACK, 20);
        }
        // Each newcomer displaces the least recently seen embryonic flow.
        for (n, k) in (16..).zip(&keys[2 * WAYS..3 * WAYS]) {
            table.insert(*k, *k, conn(n), 30).unwrap();
        }
        for (i, k) in keys[..2 * WAYS].iter().enumerate() {
            let found = table.lookup(k, 40).is_some();
            assert_eq!(found, i % 2 == 0, "key {i}");
        }
        // Only established flows left in the pair: a new one is refused
        // although most slots are free.
        let ids: Vec<ConnId> = keys[2 * WAYS..3 * WAYS]
            .iter()
            .map(|k| table.lookup(k, 40).unwrap().0)
            .collect();
        for id in ids {
            table.touch(id, Direction::Forward, TCP_ACK, 40);
        }
        assert_eq!(table.len(), 2 * WAYS);
        for k in &keys[3 * WAYS..] {
            assert_eq!(table.insert(*k, *k, conn(99), 50), Err(InsertError::Full));
        }
        assert_eq!(table.len(), 2 * WAYS);
        assert_eq!(table.backend_conns(0).0 + table.backend_conns(1).0, 16);
        // Expired entries in the pair are reclaimed for a newcomer.
        let later = 40 + Timeouts::default().established_ms;
        assert!(table
            .insert(keys[3 * WAYS], keys[3 * WAYS], conn(7), later)
            .is_ok());
        assert_eq!(table.len(), 1);
    }
}
