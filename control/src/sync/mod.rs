//! Connection sync, the daemon's shell around [`connsync::Session`]: it
//! moves the workers' connection records to the peers and the peers'
//! records to the workers, serves and waits for bulk dumps, and holds VRRP
//! back from mastership while a starting node's dump is still coming.

mod socket;
mod status;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::mpsc::{self as std_mpsc, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use connsync::{AddrFamily, AnyRecord, Dest, Input, Now, Output, Released, Session};
use ctlproto::reply;
use dataplane::path::sync::{record_worker, DumpChunk, SyncLink};
use log::{info, warn};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::Sync;

/// How often the workers' records are collected and timers looked at: well
/// inside the 10 ms a batch may wait.
const TICK: Duration = Duration::from_millis(2);
/// How often the status the control socket shows is refreshed.
const STATUS_EVERY: Duration = Duration::from_millis(100);
/// Records taken from one worker per tick, so one busy worker cannot keep
/// the socket unread.
const TAKE_PER_TICK: usize = 16_384;
/// Dump records sent per tick: a peer's whole table arrives within a second
/// or two without overrunning its receive buffer.
const DUMP_PER_TICK: usize = 2_048;
/// Largest datagram read.
const RECV_BUF: usize = 65_536;

/// The key file's largest sensible size; a larger file is the wrong file.
const MAX_KEY_BYTES: u64 = 4096;

/// The running sync task.
pub(crate) struct SyncHandle {
    /// What `vipctl sync` and the metrics show.
    pub status: Arc<Mutex<reply::SyncNode>>,
    /// `true` while a starting node waits for its peers' connections.
    pub hold: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl SyncHandle {
    /// Sends what is still queued and stops, within `within` at most.
    pub(crate) async fn shutdown(mut self, within: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(within, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// This node's sync identity and address on the sync interface.
pub(crate) struct Local {
    pub node_id: u16,
    pub addr: Ipv4Addr,
}

/// Finds the sync interface's address and this node's id (configured, or
/// the low 16 bits of that address).
pub(crate) fn local(cfg: &Sync) -> anyhow::Result<Local> {
    let addrs = engine::interface_ipv4(&cfg.interface)
        .with_context(|| format!("[sync] interface {}", cfg.interface))?;
    let Some(addr) = addrs.first().copied() else {
        bail!(
            "[sync] interface {} has no IPv4 address to send connection sync from; add one or choose another interface",
            cfg.interface
        );
    };
    let low = (addr.to_bits() & 0xffff) as u16;
    let node_id = match cfg.node_id {
        Some(id) => id,
        None if low != 0 => low,
        None => bail!(
            "[sync] the address {addr} of {} ends in .0.0, which gives no node id; set node_id (1 to 65535, distinct per node)",
            cfg.interface
        ),
    };
    Ok(Local { node_id, addr })
}

/// Reads the shared key; refuses a missing, short or oversized file.
fn read_key(cfg: &Sync) -> anyhow::Result<Vec<u8>> {
    let path = &cfg.key_file;
    let meta =
        std::fs::metadata(path).with_context(|| format!("[sync] key_file {}", path.display()))?;
    if !meta.is_file() || meta.len() > MAX_KEY_BYTES {
        bail!(
            "[sync] key_file {} is not a key: give a regular file of 16 to {MAX_KEY_BYTES} bytes, the same on every node of the site",
            path.display()
        );
    }
    let key = std::fs::read(path).with_context(|| format!("[sync] key_file {}", path.display()))?;
    let trimmed = key.trim_ascii_end();
    if trimmed.len() < connsync::MIN_KEY_LEN {
        bail!(
            "[sync] key_file {} holds {} bytes; the key needs at least {} (for example `head -c 32 /dev/urandom | base64 > {}` on one node, copied to the others)",
            path.display(),
            trimmed.len(),
            connsync::MIN_KEY_LEN,
            path.display()
        );
    }
    Ok(trimmed.to_vec())
}

fn now(started: Instant) -> Now {
    Now {
        ms: started.elapsed().as_millis() as u64,
        unix_us: unix_us(),
    }
}

fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Opens the socket and starts the task. `links` are the workers' ends,
/// in worker order.
pub(crate) fn start(cfg: &Sync, local: &Local, links: Vec<SyncLink>) -> anyhow::Result<SyncHandle> {
    let key = read_key(cfg)?;
    let peers = (!cfg.peers.is_empty()).then(|| cfg.peers.iter().map(|p| IpAddr::V4(*p)).collect());
    let mut scfg = connsync::Config::new(local.node_id, key, peers, unix_us());
    scfg.dump_deadline_ms = cfg.dump_deadline.as_millis() as u64;
    scfg.flush_after_ms = cfg.flush_after.as_millis() as u64;
    let started = Instant::now();
    let session = Session::new(scfg, now(started))
        .map_err(|e| anyhow::anyhow!("[sync] cannot start connection sync: {e}"))?;
    let sock = socket::open(cfg, local.addr).with_context(|| {
        format!(
            "[sync] opening UDP port {} on {} ({})",
            cfg.port, cfg.interface, local.addr
        )
    })?;
    let status = Arc::new(Mutex::new(status::initial(cfg, local)));
    let (hold_tx, hold) = watch::channel(true);
    let (stop, stop_rx) = oneshot::channel();
    info!(
        "connection sync: node {} on {} ({}), {}; holding back from mastership for at most {} ms until the peers' connections are in",
        local.node_id,
        cfg.interface,
        local.addr,
        status::destination(cfg),
        cfg.dump_deadline.as_millis()
    );
    let shell = Shell {
        session,
        sock,
        everyone: socket::everyone(cfg),
        port: cfg.port,
        workers: u16::try_from(links.len()).unwrap_or(u16::MAX),
        links,
        dumps: Vec::new(),
        outputs: Vec::new(),
        delivery_overflow: 0,
        send_errors: 0,
        hold: hold_tx,
        status: status.clone(),
        started,
        unicast: !cfg.peers.is_empty(),
        own_seen: 0,
    };
    let task = tokio::spawn(shell.run(stop_rx));
    Ok(SyncHandle {
        status,
        hold,
        stop: Some(stop),
        task,
    })
}

/// A dump being served to a peer: chunks from every worker.
struct Serving {
    peer: u16,
    chunks: Receiver<DumpChunk>,
    /// Taken from the workers, not sent yet: IPv4, IPv6.
    queued: [VecDeque<AnyRecord>; 2],
    workers_done: usize,
}

struct Shell {
    session: Session,
    sock: UdpSocket,
    everyone: Vec<SocketAddr>,
    port: u16,
    workers: u16,
    links: Vec<SyncLink>,
    dumps: Vec<Serving>,
    outputs: Vec<Output>,
    /// Peer records a worker had no room for.
    delivery_overflow: u64,
    send_errors: u64,
    hold: watch::Sender<bool>,
    status: Arc<Mutex<reply::SyncNode>>,
    started: Instant,
    unicast: bool,
    /// Messages with our own node id already warned about.
    own_seen: u64,
}

impl Shell {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buf = vec![0u8; RECV_BUF];
        let mut last_status = Instant::now();
        self.input(Input::Start);
        self.execute().await;
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => break,
                r = self.sock.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let bytes = buf.get(..n).unwrap_or(&[]);
                        let now = now(self.started);
                        self.session.handle(Input::Datagram { from: from.ip(), bytes }, now, &mut self.outputs);
                    }
                    Err(e) => {
                        warn!("connection sync: receiving failed: {e}");
                        tokio::time::sleep(TICK).await;
                    }
                },
                _ = tick.tick() => {
                    self.collect();
                    self.serve_dumps();
                    self.input(Input::Tick);
                }
            }
            self.execute().await;
            if last_status.elapsed() >= STATUS_EVERY {
                last_status = Instant::now();
                self.publish();
            }
        }
        // A clean stop: what the workers reported last still goes out.
        self.collect();
        tokio::time::sleep(Duration::from_millis(
            self.session.config().flush_after_ms + 1,
        ))
        .await;
        self.input(Input::Tick);
        self.execute().await;
        self.publish();
    }

    fn input(&mut self, input: Input<'_>) {
        let now = now(self.started);
        self.session.handle(input, now, &mut self.outputs);
    }

    /// The workers' records for the peers.
    fn collect(&mut self) {
        let now = now(self.started);
        for link in &self.links {
            for _ in 0..TAKE_PER_TICK {
                let Some(r) = link.take() else { break };
                self.session.handle(Input::Local(r), now, &mut self.outputs);
            }
        }
    }

    /// Moves dump chunks the workers produced to the peers that asked.
    fn serve_dumps(&mut self) {
        let now = now(self.started);
        let workers = self.links.len();
        let mut finished = Vec::new();
        for (i, d) in self.dumps.iter_mut().enumerate() {
            while let Ok(chunk) = d.chunks.try_recv() {
                for r in chunk.records {
                    let slot = match r.family() {
                        AddrFamily::V4 => 0,
                        AddrFamily::V6 => 1,
                    };
                    d.queued[slot].push_back(r);
                }
                d.workers_done += usize::from(chunk.done);
            }
            for (queued, family) in d.queued.iter_mut().zip([AddrFamily::V4, AddrFamily::V6]) {
                // Whole datagrams' worth, so none goes out half empty.
                let per = self.session.batch_capacity(family).max(1);
                let n = queued.len().min(DUMP_PER_TICK / per * per);
                let records: Vec<_> = queued.drain(..n).collect();
                if !records.is_empty() {
                    self.session.handle(
                        Input::DumpRecords {
                            to: d.peer,
                            records: &records,
                        },
                        now,
                        &mut self.outputs,
                    );
                }
            }
            if d.workers_done >= workers && d.queued.iter().all(VecDeque::is_empty) {
                self.session
                    .handle(Input::DumpDone { to: d.peer }, now, &mut self.outputs);
                finished.push(i);
            }
        }
        for i in finished.into_iter().rev() {
            self.dumps.swap_remove(i);
        }
    }

    async fn execute(&mut self) {
        for output in std::mem::take(&mut self.outputs) {
            match output {
                Output::Send { to, bytes } => match to {
                    Dest::All => {
                        for dst in self.everyone.clone() {
                            self.send(&bytes, dst).await;
                        }
                    }
                    Dest::Peer(ip) => self.send(&bytes, SocketAddr::new(ip, self.port)).await,
                },
                Output::Apply { record, .. } => {
                    let w = usize::from(record_worker(&record, self.workers));
                    let delivered = self
                        .links
                        .get(w)
                        .is_some_and(|l| l.deliver(record).is_ok());
                    if !delivered {
                        self.delivery_overflow += 1;
                        if self.delivery_overflow.is_power_of_two() {
                            warn!(
                                "connection sync: worker {w} is behind applying the peers' connections; {} records dropped so far (a takeover would lose those connections)",
                                self.delivery_overflow
                            );
                        }
                    }
                }
                Output::DumpWanted { peer } => self.dump_to(peer),
                Output::HoldReleased { reason } => {
                    let applied = self.session.stats().dump_records_received;
                    match reason {
                        Released::Dumped => info!(
                            "connection sync: the peers' connections are in ({applied} received); mastership as configured"
                        ),
                        Released::Deadline => warn!(
                            "connection sync: not every peer sent its connections within the dump deadline ({applied} received); mastership as configured. Connections of a peer that did not answer are lost if this node takes them over"
                        ),
                    }
                    // The status says ready before VRRP may act on it.
                    self.publish();
                    self.hold.send_replace(false);
                }
                Output::PeerUp { node, addr } => {
                    info!("connection sync: peer node {node} ({addr}) is up");
                }
                Output::PeerDown { node, addr } => warn!(
                    "connection sync: peer node {node} ({addr}) is silent; its new connections are not coming in"
                ),
                Output::PeerRestarted { node, addr } => {
                    info!("connection sync: peer node {node} ({addr}) restarted");
                }
            }
        }
    }

    async fn send(&mut self, bytes: &[u8], dst: SocketAddr) {
        if let Err(e) = self.sock.send_to(bytes, dst).await {
            self.send_errors += 1;
            if self.send_errors.is_power_of_two() {
                warn!(
                    "connection sync: sending to {dst} failed: {e} ({} so far); the peer misses connection changes",
                    self.send_errors
                );
            }
        }
    }

    /// Asks every worker for its table, for node `peer`.
    fn dump_to(&mut self, peer: u16) {
        let (tx, rx) = std_mpsc::channel();
        let mut workers_done = 0;
        for link in &self.links {
            if link.dump(tx.clone()).is_err() {
                warn!("connection sync: worker busy with other dumps; node {peer} gets its connections without that worker's");
                workers_done += 1;
            }
        }
        info!("connection sync: node {peer} asked for this node's connections; sending them");
        self.dumps.push(Serving {
            peer,
            chunks: rx,
            queued: Default::default(),
            workers_done,
        });
    }

    fn publish(&mut self) {
        let own = self.session.stats().own;
        if self.unicast && own > self.own_seen {
            warn!(
                "connection sync: {} message(s) carried this node's id {} from another address: another node of the site uses the same node_id; give each node its own",
                own - self.own_seen,
                self.session.config().node_id
            );
            self.own_seen = own;
        }
        let view = status::view(
            &self.session,
            now(self.started).ms,
            &self.links,
            self.delivery_overflow,
        );
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status::update(&mut st, view);
    }
}
