//! One worker: the loop that moves frames between its AF_XDP sockets, its
//! handler and the other workers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use xsk_rs::FrameDesc;

use super::handoff::{Hub, BUF_SIZE};
use super::steer::FlowEntries;
use super::xsk::SocketSet;
use super::{iface, Handler};
use dataplane::counters::{CoreCounters, Counters};
use dataplane::flow::{Ip6, SteerChange};
use dataplane::verdict::{DropReason, PortId, Verdict};

/// Housekeeping period while busy.
const HOUSEKEEPING_MS: u64 = 100;
/// Minimum gap between housekeeping calls while idle.
const IDLE_HOUSEKEEPING_MS: u64 = 10;
/// How long an idle worker sleeps in poll(); short because hand-offs from
/// other workers do not wake it, and the stop flag is checked each loop.
const IDLE_POLL_MS: i32 = 1;

pub(super) struct WorkerThread<H> {
    id: u16,
    handler: H,
    socks: SocketSet,
    entries: FlowEntries,
    /// XDP map changes taken from the handler, being applied.
    steer: Vec<SteerChange>,
    steer6: Vec<SteerChange<Ip6>>,
    counters: Arc<Counters>,
    hub: Arc<Hub>,
    stop: Arc<AtomicBool>,
    batch: usize,
    rx: Vec<FrameDesc>,
    /// Frames waiting for each port's tx ring.
    pending: Vec<Vec<FrameDesc>>,
}

/// What all workers share: counters, the hand-off hub and the stop flag.
pub(super) struct Shared {
    pub(super) counters: Arc<Counters>,
    pub(super) hub: Arc<Hub>,
    pub(super) stop: Arc<AtomicBool>,
}

impl<H: Handler> WorkerThread<H> {
    pub(super) fn new(
        id: u16,
        handler: H,
        socks: SocketSet,
        entries: FlowEntries,
        shared: Shared,
        batch: u32,
    ) -> Self {
        let batch = batch as usize;
        let ports = socks.ports();
        let Shared {
            counters,
            hub,
            stop,
        } = shared;
        WorkerThread {
            id,
            handler,
            socks,
            entries,
            steer: Vec::with_capacity(batch),
            steer6: Vec::new(),
            counters,
            hub,
            stop,
            batch,
            rx: vec![FrameDesc::default(); batch],
            pending: (0..ports).map(|_| Vec::with_capacity(batch)).collect(),
        }
    }

    pub(super) fn run(mut self) {
        let mut last_housekeeping = 0;
        while !self.stop.load(Ordering::Relaxed) {
            let now = iface::monotonic_ms();
            self.counters
                .core(usize::from(self.id))
                .heartbeat_ms
                .set(now);
            self.socks.reclaim();
            self.socks.refill();
            self.handler.begin_batch(now);

            let mut work = 0;
            for port in 0..self.socks.ports() {
                work += self.receive(port);
            }
            work += self.drain_handoffs();
            for port in 0..self.pending.len() {
                self.flush(port);
            }
            let tx_pending = self.socks.kick();

            let since = now.saturating_sub(last_housekeeping);
            if since >= HOUSEKEEPING_MS || (work == 0 && since >= IDLE_HOUSEKEEPING_MS) {
                self.handler.housekeeping(now, &mut self.entries);
                self.apply_steer_changes();
                self.core().sockets.set(self.socks.kernel_stats());
                last_housekeeping = now;
            }
            if work == 0 && !tx_pending {
                self.socks.wait(IDLE_POLL_MS);
            }
        }
    }

    fn core(&self) -> &CoreCounters {
        self.counters.core(usize::from(self.id))
    }

    /// One rx batch from `port`; returns the number of frames.
    fn receive(&mut self, port: usize) -> usize {
        let n = self.socks.recv(port, &mut self.rx);
        if n == 0 {
            return 0;
        }
        let ingress = port as PortId;
        for desc in &mut self.rx[..n] {
            let handler = &mut self.handler;
            self.socks.with_frame(desc, |frame| handler.prefetch(frame));
        }
        let mut bytes = 0;
        for i in 0..n {
            let mut desc = self.rx[i];
            bytes += desc.lengths().data() as u64;
            let handler = &mut self.handler;
            let verdict = self
                .socks
                .with_frame(&mut desc, |frame| handler.handle(frame, ingress));
            self.act(desc, verdict, ingress);
        }
        let core = self.core();
        core.rx_packets.add(n as u64);
        core.rx_bytes.add(bytes);
        n
    }

    /// Carries out the verdict on a UMEM frame in our hands.
    fn act(&mut self, mut desc: FrameDesc, verdict: Verdict, ingress: PortId) {
        match verdict {
            Verdict::Tx(port) => self.queue_tx(desc, port),
            Verdict::Answer { port, len, dropped } => {
                self.core().drop(dropped).add(1);
                self.socks.truncate(&mut desc, usize::from(len));
                self.queue_tx(desc, port);
            }
            Verdict::Drop(reason) => {
                self.core().drop(reason).add(1);
                self.socks.release(desc);
            }
            Verdict::Handoff(to) => {
                let hub = &self.hub;
                let sent = self
                    .socks
                    .with_frame(&mut desc, |frame| hub.send(to, frame, ingress));
                if sent {
                    self.core().handoff_out.add(1);
                } else {
                    self.core().drop(DropReason::HandoffFull).add(1);
                }
                self.socks.release(desc);
            }
        }
    }

    fn queue_tx(&mut self, desc: FrameDesc, port: PortId) {
        let port = usize::from(port);
        let Some(pending) = self.pending.get_mut(port) else {
            // No such port: nothing can carry the frame.
            self.core().drop(DropReason::TxRingFull).add(1);
            self.socks.release(desc);
            return;
        };
        pending.push(desc);
        if pending.len() >= self.batch {
            self.flush(port);
        }
    }

    /// Hands the XDP program the keys and rewrites of connections opened,
    /// offloaded or ended by the frames handled so far.
    fn apply_steer_changes(&mut self) {
        self.handler.steer_changes(&mut self.steer);
        self.handler.steer_changes6(&mut self.steer6);
        if self.steer.is_empty() && self.steer6.is_empty() {
            return;
        }
        let refused = self.entries.apply_all(&self.steer) + self.entries.apply6(&self.steer6);
        self.steer.clear();
        self.steer6.clear();
        if refused > 0 {
            self.core().reply_keys_refused.add(refused as u64);
        }
    }

    /// Moves `port`'s pending frames to its tx ring; what does not fit after
    /// one kick is dropped as `tx_ring_full`.
    fn flush(&mut self, port: usize) {
        if self.pending.get(port).is_none_or(Vec::is_empty) {
            return;
        }
        // A backend's answer must find its reply key in place.
        self.apply_steer_changes();
        let Some(pending) = self.pending.get_mut(port) else {
            return;
        };
        let mut sent = self.socks.send(port, pending);
        if sent < pending.len() {
            self.socks.kick();
            sent += self.socks.send(port, &pending[sent..]);
        }
        let bytes: u64 = pending[..sent]
            .iter()
            .map(|d| d.lengths().data() as u64)
            .sum();
        let dropped = pending.len() - sent;
        for desc in pending.drain(..).skip(sent) {
            self.socks.release(desc);
        }
        let core = self.counters.core(usize::from(self.id));
        core.tx_packets.add(sent as u64);
        core.tx_bytes.add(bytes);
        if dropped > 0 {
            core.drop(DropReason::TxRingFull).add(dropped as u64);
        }
    }

    /// Processes frames other workers handed to us; returns how many.
    fn drain_handoffs(&mut self) -> usize {
        let mut done = 0;
        while done < self.batch {
            let Some(mut buf) = self.hub.recv(self.id) else {
                break;
            };
            done += 1;
            self.core().handoff_in.add(1);
            let len = buf.len.min(BUF_SIZE);
            let ingress = buf.ingress;
            let verdict = match buf.data.get_mut(..len) {
                Some(frame) => self.handler.handle(frame, ingress),
                None => Verdict::Drop(DropReason::TruncatedEthernet),
            };
            let (port, len) = match verdict {
                Verdict::Tx(port) => (port, len),
                Verdict::Answer {
                    port,
                    len: short,
                    dropped,
                } => {
                    self.core().drop(dropped).add(1);
                    (port, usize::from(short).min(len))
                }
                Verdict::Drop(reason) => {
                    self.core().drop(reason).add(1);
                    self.hub.recycle(self.id, buf);
                    continue;
                }
                // A second hand-off could bounce a frame between workers
                // forever; the first owner's decision stands.
                Verdict::Handoff(_) => {
                    self.core().drop(DropReason::HandoffFull).add(1);
                    self.hub.recycle(self.id, buf);
                    continue;
                }
            };
            match self.socks.alloc() {
                Some(mut desc) => {
                    if self.socks.write(&mut desc, &buf.data[..len]) {
                        self.queue_tx(desc, port);
                    } else {
                        self.socks.release(desc);
                        self.core().drop(DropReason::TxRingFull).add(1);
                    }
                }
                None => self.core().drop(DropReason::TxRingFull).add(1),
            }
            self.hub.recycle(self.id, buf);
        }
        done
    }
}
