//! Bulk dumps: serving our table to a node that starts, receiving the
//! peers' tables when we start, and the hold that waits for them.

use super::{Dest, DumpState, Now, Output, Released, Session, State};
use crate::message::{Body, MessageType};
use crate::{AnyRecord, ConnRecord, ConnRecord6};

impl Session {
    pub(super) fn start(&mut self, now: Now, out: &mut Vec<Output>) {
        if self.state != State::Idle {
            return;
        }
        self.start_ms = Some(now.ms);
        self.state = State::Holding {
            deadline_ms: now.ms.saturating_add(self.cfg.dump_deadline_ms),
        };
        for p in self.peers.iter_mut() {
            if p.dump == DumpState::NotAsked {
                p.dump = DumpState::InProgress { received: 0 };
            }
        }
        self.send(
            Dest::All,
            MessageType::DumpRequest,
            0,
            Body::Empty,
            now,
            out,
        );
        self.check_hold(out);
    }

    /// A peer asks for our table. Passed on once per requester epoch, so
    /// the direct request below, if the requester also had our broadcast
    /// one, does not start a second dump.
    pub(super) fn dump_requested(&mut self, i: usize, now: Now, out: &mut Vec<Output>) {
        let p = &mut self.peers[i];
        if p.served_epoch == Some(p.epoch) {
            return;
        }
        p.served_epoch = Some(p.epoch);
        p.serving = 0;
        let (node, addr, done) = (p.node, p.addr, p.dump.is_done());
        out.push(Output::DumpWanted { peer: node });
        // It may have started after our own request went out and missed
        // it: ask it directly.
        if matches!(self.state, State::Holding { .. }) && !done {
            self.send(
                Dest::Peer(addr),
                MessageType::DumpRequest,
                0,
                Body::Empty,
                now,
                out,
            );
        }
    }

    /// Sends part of our table to node `to`, each family in its own
    /// messages.
    pub(super) fn serve_records(
        &mut self,
        to: u16,
        records: &[AnyRecord],
        now: Now,
        out: &mut Vec<Output>,
    ) {
        let Some(i) = self.peer_index(to) else {
            return;
        };
        let addr = self.peers[i].addr;
        self.peers[i].serving = self.peers[i].serving.saturating_add(records.len() as u64);
        let mut v4: Vec<ConnRecord> = Vec::new();
        let mut v6: Vec<ConnRecord6> = Vec::new();
        for r in records {
            match *r {
                AnyRecord::V4(r) => v4.push(r),
                AnyRecord::V6(r) => v6.push(r),
            }
        }
        let dest = Dest::Peer(addr);
        for chunk in v4.chunks(self.per_message) {
            let body = Body::Records(chunk);
            self.send(dest, MessageType::Dump, to, body, now, out);
        }
        for chunk in v6.chunks(self.per_message6) {
            let body = Body::Records6(chunk);
            self.send(dest, MessageType::Dump6, to, body, now, out);
        }
    }

    pub(super) fn serve_done(&mut self, to: u16, now: Now, out: &mut Vec<Output>) {
        let Some(i) = self.peer_index(to) else {
            return;
        };
        let p = &mut self.peers[i];
        let total = u32::try_from(p.serving).unwrap_or(u32::MAX);
        let addr = p.addr;
        p.serving = 0;
        self.send(
            Dest::Peer(addr),
            MessageType::DumpEnd,
            to,
            Body::DumpTotal(total),
            now,
            out,
        );
        self.stats.dumps_served += 1;
    }

    pub(super) fn dump_end(&mut self, i: usize, announced: u32, out: &mut Vec<Output>) {
        self.peers[i].dump.finish(announced);
        self.check_hold(out);
    }

    /// Releases the hold once every peer we wait for finished its dump:
    /// the configured peers in unicast mode, in multicast mode the live
    /// peers heard since Start, at least one.
    pub(super) fn check_hold(&mut self, out: &mut Vec<Output>) {
        if !matches!(self.state, State::Holding { .. }) {
            return;
        }
        let done = match &self.cfg.peers {
            Some(addrs) => addrs
                .iter()
                .all(|a| self.peers.iter().any(|p| p.addr == *a && p.dump.is_done())),
            None => {
                let since = self.start_ms.unwrap_or(0);
                let mut waited = self
                    .peers
                    .iter()
                    .filter(|p| p.up && p.last_heard_ms >= since);
                let mut any = false;
                let all = waited.all(|p| {
                    any = true;
                    p.dump.is_done()
                });
                any && all
            }
        };
        if done {
            self.release(Released::Dumped, out);
        }
    }

    pub(super) fn release(&mut self, reason: Released, out: &mut Vec<Output>) {
        if matches!(self.state, State::Holding { .. }) {
            self.state = State::Ready { reason };
            out.push(Output::HoldReleased { reason });
        }
    }
}
