//! BFD toward the `[[bgp.peer]]`s that set `bfd = {…}`: one task drives
//! every `bfd::Session` over one socket pair. A session that fails after
//! being Up takes its BGP session down at once instead of after the hold
//! time; BGP restarts when BFD is Up again. A clean stop sends AdminDown, so
//! the routers do not count it as a failure.

mod socket;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bfd::{Input, Output, Session, SessionConfig, State, TimerKind};
use log::{debug, info, warn};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::peer::{sleep_until, Cmd};
use super::BgpStatus;
use crate::config::Bgp;
use socket::Sockets;

/// Each kind of drop, and send errors, are logged at most this often per peer.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// How long a clean stop waits for the AdminDown packets to go out.
const STOP_TIMEOUT: Duration = Duration::from_secs(1);
/// Larger than any control packet with an authentication section.
const RECV_BUFFER: usize = 512;

/// One peer's BFD session as the control socket and metrics show it.
#[derive(Clone, Debug)]
pub(crate) struct BfdStatus {
    pub(crate) state: State,
    pub(crate) remote_state: State,
    pub(crate) diag: bfd::Diag,
    pub(crate) interval: Duration,
    pub(crate) multiplier: u8,
    /// Zero until the peer has been heard.
    pub(crate) detection_time: Duration,
    pub(crate) stats: bfd::SessionStats,
}

/// The running BFD task; [`Bfd::stop`] ends it with AdminDown.
pub(super) struct Bfd {
    stop: oneshot::Sender<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Bfd {
    /// Binds the sockets and starts a session for each peer with `bfd`
    /// set; `peers[i]` drives `bgp.peers[i]`. `None` when no peer asks.
    pub(super) fn start(
        bgp: &Bgp,
        peers: &[mpsc::UnboundedSender<Cmd>],
        status: Arc<Mutex<BgpStatus>>,
    ) -> anyhow::Result<Option<Bfd>> {
        let base = RandomState::new().hash_one(bgp.router_id) as u32;
        let links: Vec<Link> = bgp
            .peers
            .iter()
            .zip(peers)
            .enumerate()
            .filter_map(|(i, (p, tx))| {
                let b = p.bfd?;
                // Config load refuses bfd on IPv6 peers.
                let IpAddr::V4(peer) = p.address else {
                    return None;
                };
                let name = peer.to_string();
                // Unique per session and never 0 (RFC 5880 6.8.1); the
                // random part keeps a restarted vipd's apart from its last.
                let low = (i as u32 % 0xffff) + 1;
                let discr = (base << 16) | low;
                let cfg = SessionConfig::new(name, discr, b.interval, b.multiplier);
                Some(Link {
                    peer,
                    session: Session::new(cfg, RandomState::new().hash_one(i)),
                    timers: [None; 2],
                    bgp: tx.clone(),
                    index: i,
                    last_warn: HashMap::new(),
                })
            })
            .collect();
        if links.is_empty() {
            return Ok(None);
        }
        let local = local_address(bgp);
        let sockets = Sockets::bind(local)?;
        info!(
            "BFD: {} session(s) on {local}:{}: {}",
            links.len(),
            bfd::PORT,
            links
                .iter()
                .map(|l| {
                    let c = l.session.config();
                    format!("{} every {:?} x{}", l.peer, c.desired_min_tx, c.detect_mult)
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let (stop, stopped) = oneshot::channel();
        let task = Task {
            sockets,
            links,
            status,
            unmatched_warned: None,
        };
        Ok(Some(Bfd {
            stop,
            task: tokio::spawn(task.run(stopped)),
        }))
    }

    /// Sends AdminDown on every session and ends the task.
    pub(super) async fn stop(self) {
        let (done, wait) = oneshot::channel();
        if self.stop.send(done).is_ok() && tokio::time::timeout(STOP_TIMEOUT, wait).await.is_err() {
            warn!("BFD: AdminDown not confirmed within {STOP_TIMEOUT:?}");
        }
        self.task.abort();
    }
}

/// One address for the receiving socket: the peers' common local
/// (configured or routed) address, else every address.
fn local_address(bgp: &Bgp) -> Ipv4Addr {
    let mut facing =
        bgp.peers
            .iter()
            .filter(|p| p.bfd.is_some())
            .map(|p| match (p.local_address, p.address) {
                (Some(IpAddr::V4(l)), _) => Some(l),
                (None, IpAddr::V4(a)) => socket::facing_address(a),
                _ => None,
            });
    let first = facing.next().flatten();
    match first {
        Some(a) if facing.all(|f| f == Some(a)) => a,
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

struct Link {
    peer: Ipv4Addr,
    session: Session,
    /// Indexed by [`timer_index`].
    timers: [Option<Instant>; 2],
    bgp: mpsc::UnboundedSender<Cmd>,
    /// The peer's index in `[[bgp.peer]]` and in the status.
    index: usize,
    /// When each kind of warning was last logged.
    last_warn: HashMap<&'static str, Instant>,
}

impl Link {
    /// Rate-limited: true when a warning of `kind` about this peer may be
    /// logged now.
    fn may_warn(&mut self, kind: &'static str, now: Instant) -> bool {
        if self
            .last_warn
            .get(kind)
            .is_some_and(|&t| now < t + WARN_EVERY)
        {
            return false;
        }
        self.last_warn.insert(kind, now);
        true
    }
}

struct Task {
    sockets: Sockets,
    links: Vec<Link>,
    status: Arc<Mutex<BgpStatus>>,
    unmatched_warned: Option<Instant>,
}

impl Task {
    async fn run(mut self, mut stop: oneshot::Receiver<oneshot::Sender<()>>) {
        let mut buf = [0u8; RECV_BUFFER];
        for i in 0..self.links.len() {
            self.feed(i, Input::Start);
        }
        loop {
            let deadline = self.links.iter().flat_map(|l| l.timers).flatten().min();
            tokio::select! {
                r = self.sockets.recv(&mut buf) => match r {
                    Ok(r) => self.received(buf.get(..r.len).unwrap_or_default(), r.from.ip(), r.ttl),
                    Err(e) => {
                        warn!("BFD: receiving failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = sleep_until(deadline) => self.fire_due(),
                done = &mut stop => {
                    for i in 0..self.links.len() {
                        self.feed(i, Input::Stop);
                    }
                    if let Ok(done) = done {
                        let _ = done.send(());
                    }
                    return;
                }
            }
        }
    }

    fn received(&mut self, packet: &[u8], from: &Ipv4Addr, ttl: u8) {
        match self.links.iter().position(|l| l.peer == *from) {
            Some(i) => self.feed(i, Input::Received { packet, ttl }),
            None => {
                let now = Instant::now();
                let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
                st.bfd_unmatched += 1;
                if self.unmatched_warned.is_none_or(|t| now >= t + WARN_EVERY) {
                    self.unmatched_warned = Some(now);
                    warn!(
                        "BFD: packet from {from} dropped: not a [[bgp.peer]] with bfd set ({} such so far)",
                        st.bfd_unmatched
                    );
                }
            }
        }
    }

    fn fire_due(&mut self) {
        let now = Instant::now();
        for i in 0..self.links.len() {
            for kind in [TimerKind::Transmit, TimerKind::Detect] {
                let slot = &mut self.links[i].timers[timer_index(kind)];
                if slot.is_some_and(|at| at <= now) {
                    *slot = None;
                    self.feed(i, Input::Timer(kind));
                }
            }
        }
    }

    fn feed(&mut self, i: usize, input: Input<'_>) {
        let now = Instant::now();
        let mut out = Vec::new();
        let Some(link) = self.links.get_mut(i) else {
            return;
        };
        link.session.handle(input, now, &mut out);
        for o in out {
            self.apply(i, o, now);
        }
        self.publish(i);
    }

    fn apply(&mut self, i: usize, o: Output, now: Instant) {
        let Some(link) = self.links.get_mut(i) else {
            return;
        };
        match o {
            Output::Send(bytes) => {
                if let Err(e) = self.sockets.send(&bytes, link.peer) {
                    if link.may_warn("send", now) {
                        warn!("BFD peer {}: sending failed: {e}", link.peer);
                    }
                }
            }
            Output::SetTimer(kind, at) => link.timers[timer_index(kind)] = at,
            Output::StateChanged {
                from,
                to,
                diag,
                failure,
            } => {
                if to == State::Up {
                    info!(
                        "BFD peer {}: session Up, detection time {:?}",
                        link.peer,
                        link.session.detection_time()
                    );
                    let _ = link.bgp.send(Cmd::Bfd {
                        up: true,
                        why: String::new(),
                    });
                } else if failure {
                    let why = format!("BFD session went down ({diag})");
                    warn!("BFD peer {}: {why}", link.peer);
                    let _ = link.bgp.send(Cmd::Bfd { up: false, why });
                } else {
                    info!("BFD peer {}: {from} -> {to} ({diag})", link.peer);
                }
            }
            Output::Dropped(why) => {
                if link.may_warn(why.kind(), now) {
                    warn!(
                        "BFD peer {}: packet dropped: {why} ({} dropped so far)",
                        link.peer,
                        link.session.stats().dropped()
                    );
                } else {
                    debug!("BFD peer {}: packet dropped: {why}", link.peer);
                }
            }
        }
    }

    fn publish(&self, i: usize) {
        let Some(link) = self.links.get(i) else {
            return;
        };
        let s = &link.session;
        let st = BfdStatus {
            state: s.state(),
            remote_state: s.remote_state(),
            diag: s.diag(),
            interval: s.config().desired_min_tx,
            multiplier: s.config().detect_mult,
            detection_time: s.detection_time(),
            stats: s.stats().clone(),
        };
        let mut all = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = all.peers.get_mut(link.index) {
            p.bfd = Some(st);
        }
    }
}

fn timer_index(kind: TimerKind) -> usize {
    match kind {
        TimerKind::Transmit => 0,
        TimerKind::Detect => 1,
    }
}
