//! The sync state machine of one node: batches our changes, sends
//! heartbeats, authenticates and replay-checks what arrives, tracks the
//! peers, serves dumps and holds a starting node until it has the peers'
//! tables.

mod batch;
mod config;
mod dump;
mod events;
mod peer;

use std::net::IpAddr;

use crate::auth::Key;
use crate::message::{self, Body, Header, MessageType, MessageView};
use crate::replay::{Fresh, ReplayWindow};
use crate::{AddrFamily, AnyRecord, ConnRecord, ConnRecord6, Stats, SyncError};
pub use config::Config;
pub use events::{Dest, Input, Now, Output, Released, State};
pub use peer::{DumpState, PeerStatus, LAG_SAMPLES, MAX_PEERS};

pub struct Session {
    cfg: Config,
    key: Key,
    /// Records per datagram at the configured size, IPv4 and IPv6.
    per_message: usize,
    per_message6: usize,
    /// Sequence number of the last message sent; the first is 1.
    seq: u64,
    state: State,
    /// When Start came: peers heard since then are waited for (multicast).
    start_ms: Option<u64>,
    /// Local records not sent yet, never more than `per_message` (and
    /// `per_message6`).
    pending: Vec<ConnRecord>,
    pending6: Vec<ConnRecord6>,
    pending_since_ms: u64,
    /// Last time every peer got something from us.
    last_sent_all_ms: u64,
    peers: Vec<PeerStatus>,
    stats: Stats,
}

/// Where an admitted message's sender goes in the peer table.
enum Slot {
    Known(usize, Fresh),
    New,
}

impl Session {
    pub fn new(mut cfg: Config, now: Now) -> Result<Session, SyncError> {
        let key = cfg.validate()?;
        // Compare IPv4-mapped IPv6 sources with plain IPv4 peers.
        if let Some(peers) = cfg.peers.as_mut() {
            for a in peers.iter_mut() {
                *a = a.to_canonical();
            }
        }
        let per_message = message::records_per_message(cfg.max_datagram, AddrFamily::V4);
        let per_message6 = message::records_per_message(cfg.max_datagram, AddrFamily::V6);
        Ok(Session {
            key,
            per_message,
            per_message6,
            seq: 0,
            state: State::Idle,
            start_ms: None,
            pending: Vec::with_capacity(per_message),
            pending6: Vec::with_capacity(per_message6),
            pending_since_ms: now.ms,
            last_sent_all_ms: now.ms,
            peers: Vec::new(),
            stats: Stats::default(),
            cfg,
        })
    }

    pub fn handle(&mut self, input: Input<'_>, now: Now, out: &mut Vec<Output>) {
        match input {
            Input::Start => self.start(now, out),
            Input::Local(record) => self.queue(record, now, out),
            Input::Tick => self.tick(now, out),
            Input::Datagram { from, bytes } => self.receive(from.to_canonical(), bytes, now, out),
            Input::DumpRecords { to, records } => self.serve_records(to, records, now, out),
            Input::DumpDone { to } => self.serve_done(to, now, out),
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn peers(&self) -> impl Iterator<Item = &PeerStatus> {
        self.peers.iter()
    }

    /// Local records waiting for their batch to go out.
    pub fn pending(&self) -> usize {
        self.pending.len() + self.pending6.len()
    }

    /// Records of `family` per datagram: feed dumps in multiples of it to
    /// fill every datagram.
    pub fn batch_capacity(&self, family: AddrFamily) -> usize {
        match family {
            AddrFamily::V4 => self.per_message,
            AddrFamily::V6 => self.per_message6,
        }
    }

    fn tick(&mut self, now: Now, out: &mut Vec<Output>) {
        self.flush_if_due(now, out);
        if now.ms.saturating_sub(self.last_sent_all_ms) >= self.cfg.heartbeat_ms {
            self.send(Dest::All, MessageType::Heartbeat, 0, Body::Empty, now, out);
        }
        let mut lost = false;
        for p in self.peers.iter_mut() {
            if p.up && now.ms.saturating_sub(p.last_heard_ms) > self.cfg.peer_timeout_ms {
                p.up = false;
                lost = true;
                out.push(Output::PeerDown {
                    node: p.node,
                    addr: p.addr,
                });
            }
        }
        if lost {
            self.check_hold(out);
        }
        if let State::Holding { deadline_ms } = self.state {
            if now.ms >= deadline_ms {
                self.release(Released::Deadline, out);
            }
        }
    }

    /// Signs and emits one message; every message gets the next sequence
    /// number, so (epoch, seq) is never reused.
    fn send(
        &mut self,
        to: Dest,
        msg_type: MessageType,
        to_node: u16,
        body: Body<'_>,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        // 2^64 messages are never sent; saturating keeps it total, and a
        // repeated seq would only be refused as a replay.
        self.seq = self.seq.saturating_add(1);
        let records = body.records() as u64;
        let records6 = if let Body::Records6(_) = body {
            records
        } else {
            0
        };
        let header = Header {
            msg_type,
            sender: self.cfg.node_id,
            to: to_node,
            epoch: self.cfg.epoch,
            seq: self.seq,
            sent_unix_us: now.unix_us,
        };
        let bytes = message::encode(&header, body, &self.key);
        self.stats.sent_messages += 1;
        self.stats.sent_records += records;
        self.stats.sent_records6 += records6;
        self.stats.sent_bytes += bytes.len() as u64;
        if to == Dest::All {
            self.last_sent_all_ms = now.ms;
        }
        out.push(Output::Send { to, bytes });
    }

    fn receive(&mut self, from: IpAddr, bytes: &[u8], now: Now, out: &mut Vec<Output>) {
        match self.admit(from, bytes) {
            Err(why) => self.stats.rejected.count(&why),
            Ok(None) => self.stats.own += 1,
            Ok(Some((view, slot))) => self.accept(view, slot, from, now, out),
        }
    }

    /// Every check a datagram must pass, before anything changes: a
    /// refused datagram leaves the session exactly as it was. `None` is
    /// our own message looped back.
    fn admit<'b>(
        &self,
        from: IpAddr,
        bytes: &'b [u8],
    ) -> Result<Option<(MessageView<'b>, Slot)>, SyncError> {
        let view = MessageView::new_checked(bytes)?;
        if let Some(peers) = &self.cfg.peers {
            if !peers.contains(&from) {
                return Err(SyncError::Stranger);
            }
        }
        if !self.key.verify(view.signed(), view.tag()) {
            return Err(SyncError::Auth);
        }
        if view.sender() == self.cfg.node_id {
            return Ok(None);
        }
        if view.msg_type().is_dump() && view.to() != self.cfg.node_id {
            return Err(SyncError::Misdirected(view.to()));
        }
        // A sender heard for the first time gets a fresh window, which
        // refuses seq 0 like any other.
        let known = self.peer_index(view.sender());
        let window =
            known.map_or_else(|| ReplayWindow::new(view.epoch()), |i| self.peers[i].window);
        let fresh = window
            .check(view.epoch(), view.seq())
            .ok_or(SyncError::Replay {
                epoch: view.epoch(),
                seq: view.seq(),
            })?;
        let slot = match known {
            Some(i) => Slot::Known(i, fresh),
            None if self.peers.len() >= MAX_PEERS && self.peers.iter().all(|p| p.up) => {
                return Err(SyncError::Stranger)
            }
            None => Slot::New,
        };
        if let Some(family) = view.family() {
            for r in view.records() {
                AnyRecord::decode(family, r)?;
            }
        }
        Ok(Some((view, slot)))
    }

    fn accept(
        &mut self,
        view: MessageView<'_>,
        slot: Slot,
        from: IpAddr,
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let node = view.sender();
        let i = match slot {
            Slot::Known(i, fresh) => {
                let p = &mut self.peers[i];
                if fresh == Fresh::NewEpoch {
                    p.epoch = view.epoch();
                    p.restarts += 1;
                    out.push(Output::PeerRestarted { node, addr: from });
                }
                i
            }
            Slot::New => self.add_peer(node, from, view.epoch()),
        };
        let p = &mut self.peers[i];
        p.window.accept(view.epoch(), view.seq());
        p.addr = from;
        p.last_heard_ms = now.ms;
        p.record_lag(now.unix_us.saturating_sub(view.sent_unix_us()));
        if !p.up {
            p.up = true;
            out.push(Output::PeerUp { node, addr: from });
        }
        self.stats.received_messages += 1;
        match view.msg_type() {
            MessageType::Batch | MessageType::Batch6 => self.apply(i, view, false, out),
            MessageType::Dump | MessageType::Dump6 => self.apply(i, view, true, out),
            MessageType::DumpEnd => self.dump_end(i, view.dump_total().unwrap_or(0), out),
            MessageType::DumpRequest => self.dump_requested(i, now, out),
            MessageType::Heartbeat => {}
        }
    }

    /// Emits the records of an admitted message; they all decoded in
    /// [`Session::admit`].
    fn apply(&mut self, i: usize, view: MessageView<'_>, from_dump: bool, out: &mut Vec<Output>) {
        let Some(family) = view.family() else {
            return;
        };
        let origin = view.sender();
        let before = out.len();
        out.extend(
            view.records()
                .filter_map(|r| AnyRecord::decode(family, r).ok())
                .map(|record| Output::Apply {
                    origin,
                    record,
                    from_dump,
                }),
        );
        let n = (out.len() - before) as u64;
        let p = &mut self.peers[i];
        p.records_received += n;
        self.stats.received_records += n;
        if family == AddrFamily::V6 {
            self.stats.received_records6 += n;
        }
        if from_dump {
            p.dump.add(n);
            self.stats.dump_records_received += n;
        }
    }

    fn peer_index(&self, node: u16) -> Option<usize> {
        self.peers.iter().position(|p| p.node == node)
    }

    /// A slot for a new peer: appended, or when the table is full the
    /// longest-silent down peer's ([`Session::admit`] checked there is one).
    fn add_peer(&mut self, node: u16, addr: IpAddr, epoch: u64) -> usize {
        let dump = if matches!(self.state, State::Holding { .. }) {
            DumpState::InProgress { received: 0 }
        } else {
            DumpState::NotAsked
        };
        let fresh = PeerStatus::new(node, addr, epoch, dump);
        if self.peers.len() < MAX_PEERS {
            self.peers.push(fresh);
            return self.peers.len() - 1;
        }
        let victim = self
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.up)
            .min_by_key(|(_, p)| p.last_heard_ms)
            .map_or(0, |(i, _)| i);
        self.peers[victim] = fresh;
        victim
    }
}
