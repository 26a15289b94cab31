//! The VRRP shell: one tokio task per configured instance that feeds the
//! sans-IO [`Instance`] with the datagrams of its raw socket, timer expiries,
//! tracking changes and the operator hold, and carries out its outputs —
//! timers, adverts, gratuitous ARP, taking and releasing the VIPs (through
//! [`Ownership`] messages to the daemon, which republishes the dataplane
//! snapshot), notify commands. The core checks every received advert; the
//! shell only drops packets whose IP header it cannot read. An instance is
//! IPv4 or IPv6 by its VIPs; an IPv6 one advertises from the interface's
//! link-local address and announces with unsolicited Neighbor
//! Advertisements.

mod endpoint;
mod garp;
mod link;
mod link_local;
mod na;
mod notify;
mod socket;
mod socket6;
mod status;
pub mod track;
mod vmac_filter;

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use log::{info, warn};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use ::vrrp::{
    AdvertHeader, Announcement, Input, Instance, InstanceConfig, InstanceStats, Output, State,
    TimerKind, Version, PRIORITY_OWNER, PRIORITY_STOP, V2_AUTH_LEN,
};
use dataplane::counters::Counters;

use crate::config::{TrackInterface, TrackScript, VrrpInstance};
use crate::neigh;
use endpoint::{Endpoint, Recv};
use link::PacketSocket;
pub(crate) use link_local::link_local;
pub use status::{Handover, InstanceControl, SharedStatus, ShellStats, Status, TransitionRecord};
use track::{ScriptResult, Tracks};
use vmac_filter::VmacFilter;
use wire::MacAddr;

/// Transitions kept per instance for the control socket.
pub(crate) const TRANSITIONS_KEPT: usize = 16;
/// How often link states and the dataplane heartbeat are looked at.
const TRACK_POLL: Duration = Duration::from_millis(50);
/// Packets read per wake-up, so a flood cannot starve the advert timer.
const RECV_BATCH: usize = 64;
/// Batches a backup reads before acting on its master-down timer: more than
/// the 1 MiB receive buffer holds.
const DRAIN_BATCHES: usize = 256;
/// How long a new master waits for the daemon to publish the VIPs before it
/// announces them anyway.
const OWNERSHIP_ACK: Duration = Duration::from_millis(200);

/// Everything one instance's task needs, resolved from the config and the
/// interface.
#[derive(Clone, Debug)]
pub(crate) struct RuntimeConfig {
    pub instance: InstanceConfig,
    pub interface: String,
    pub ifindex: u32,
    /// Source of our adverts and the tie-breaker between equal priorities:
    /// an IPv4 address, or the interface's link-local IPv6 address.
    pub primary: IpAddr,
    pub garp_count: u32,
    pub garp_interval: Duration,
    pub garp_refresh: Option<Duration>,
    pub track_scripts: Vec<TrackScript>,
    pub track_interfaces: Vec<TrackInterface>,
    pub notify: Option<String>,
    /// Addresses the instance holds that live on other interfaces (full-NAT
    /// sources of its services, floating gateways on the backend segment):
    /// announced there too, from the virtual MAC.
    pub elsewhere: Vec<OtherLink>,
}

/// Another interface with addresses the instance holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OtherLink {
    pub interface: String,
    pub ifindex: u32,
    pub addrs: Vec<IpAddr>,
}

/// Announces `addrs` at `mac` on `link`: gratuitous ARP for the IPv4 ones,
/// unsolicited Neighbor Advertisements for the IPv6 ones. Returns how many
/// went out.
fn announce_on(link: &PacketSocket, mac: [u8; 6], addrs: &[IpAddr]) -> io::Result<usize> {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for a in addrs {
        match a {
            IpAddr::V4(a) => v4.push(*a),
            IpAddr::V6(a) => v6.push(*a),
        }
    }
    garp::announce(link, mac, &v4)?;
    na::announce(link, mac, &v6)?;
    Ok(addrs.len())
}

impl RuntimeConfig {
    /// From a validated `[[vrrp]]` block; `primary` is the interface's
    /// address (link-local for IPv6) unless `unicast_src` overrides it.
    pub(crate) fn new(v: &VrrpInstance, ifindex: u32, primary: IpAddr) -> Self {
        let auth = v.auth_pass.as_ref().map(|p| {
            let mut pass = [0u8; V2_AUTH_LEN];
            for (dst, src) in pass.iter_mut().zip(p.bytes()) {
                *dst = src;
            }
            pass
        });
        RuntimeConfig {
            instance: InstanceConfig {
                name: v.name.clone(),
                vrid: v.vrid,
                version: if v.version == 2 {
                    Version::V2
                } else {
                    Version::V3
                },
                priority: v.priority,
                advert_interval: v.advert_interval,
                preempt: v.preempt,
                preempt_delay: v.preempt_delay,
                vips: v.vips.clone(),
                auth,
                accept_mode: false,
                unicast_peers: v.unicast_peers.clone(),
            },
            interface: v.interface.clone(),
            ifindex,
            primary: v.unicast_src.map_or(primary, IpAddr::V4),
            garp_count: v.garp_count,
            garp_interval: v.garp_interval,
            garp_refresh: v.garp_refresh,
            track_scripts: v.track_scripts.clone(),
            track_interfaces: v.track_interfaces.clone(),
            notify: v.notify.clone(),
            elsewhere: Vec::new(),
        }
    }
}

/// Sent to the daemon when the instance takes (`master`) or releases the
/// VIPs. `done` is answered once the dataplane snapshot reflects it.
#[derive(Debug)]
pub(crate) struct Ownership {
    pub instance: String,
    pub master: bool,
    pub done: Option<oneshot::Sender<()>>,
}

/// A running instance task.
pub(crate) struct Handle {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    pub control: InstanceControl,
}

impl Handle {
    /// Shuts the instance down (a master sends a priority-0 advert and
    /// releases the VIPs) and waits for the task, at most `within`.
    pub(crate) async fn shutdown(mut self, within: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(within, &mut self.task).await.is_err() {
            self.task.abort();
        }
    }
}

/// Opens the instance's sockets and starts its task. `dataplane`, when
/// given, is watched: if no worker loops within [`track::dataplane_limit`]
/// the instance goes to Fault and gives up mastership.
pub(crate) fn spawn(
    cfg: RuntimeConfig,
    dataplane: Option<Arc<Counters>>,
    owner: mpsc::UnboundedSender<Ownership>,
    neighbours: neigh::Neighbours,
    sync_hold: Option<watch::Receiver<bool>>,
) -> io::Result<Handle> {
    let inst = Instance::new(cfg.instance.clone(), cfg.primary)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    if cfg.instance.priority == PRIORITY_OWNER && !cfg.instance.vips.contains(&cfg.primary) {
        warn!(
            "VRRP instance {}: priority 255 claims ownership of the VIPs, but {} is not one of them; other nodes will drop our adverts as a false owner. Use priority 1 to 254",
            cfg.instance.name, cfg.primary
        );
    }
    let sock = Endpoint::open(
        &cfg.interface,
        cfg.ifindex,
        cfg.primary,
        cfg.instance.unicast_peers.is_empty(),
    )?;
    let mac = inst.virtual_mac();
    let link = PacketSocket::open(&cfg.interface, cfg.ifindex)?;
    let mut others = Vec::new();
    for o in &cfg.elsewhere {
        others.push(Other {
            link: PacketSocket::open(&o.interface, o.ifindex)?,
            _vmac_filter: VmacFilter::add(&cfg.instance.name, &o.interface, o.ifindex, mac),
            addrs: o.addrs.clone(),
        });
    }
    let status = Arc::new(Mutex::new(Status {
        name: cfg.instance.name.clone(),
        vrid: cfg.instance.vrid,
        version: cfg.instance.version,
        interface: cfg.interface.clone(),
        primary: cfg.primary,
        family: inst.address_family(),
        vips: cfg.instance.vips.clone(),
        base_priority: cfg.instance.priority,
        state: State::Initialize,
        priority: cfg.instance.priority,
        weight_sum: 0,
        fault: false,
        stats: InstanceStats::default(),
        shell: ShellStats::default(),
        transitions: VecDeque::new(),
        held: false,
        handover: None,
    }));
    let (hold_tx, hold_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = oneshot::channel();
    let tracks = Tracks::new(&cfg.track_scripts, &cfg.track_interfaces, &cfg.interface);
    let shell = Shell {
        mac,
        neighbours,
        inst,
        sock,
        link,
        others,
        operator_held: false,
        sync_held: false,
        _vmac_filter: VmacFilter::add(&cfg.instance.name, &cfg.interface, cfg.ifindex, mac),
        timers: Timers::default(),
        ident: 0,
        owner,
        tracks,
        dataplane,
        liveness: track::Liveness::new(
            track::dataplane_limit(cfg.instance.advert_interval),
            Instant::now(),
        ),
        status: status.clone(),
        shell: ShellStats::default(),
        transitions: VecDeque::new(),
        burst_left: 0,
        next_burst: None,
        next_refresh: None,
        master: false,
        handover: None,
        cfg,
    };
    let task = tokio::spawn(shell.run(stop_rx, hold_rx, sync_hold));
    Ok(Handle {
        stop: Some(stop_tx),
        task,
        control: InstanceControl {
            status,
            hold: Arc::new(hold_tx),
        },
    })
}

struct Shell {
    cfg: RuntimeConfig,
    /// The virtual MAC of the instance's family.
    mac: [u8; 6],
    /// Where unicast peers' MACs come from: the kernel's neighbour table.
    neighbours: neigh::Neighbours,
    inst: Instance,
    sock: Endpoint,
    /// Adverts and announcements from the virtual MAC.
    link: PacketSocket,
    others: Vec<Other>,
    /// The operator's hold and connection sync's (a starting node waits
    /// for its peers' connections): either holds the instance.
    operator_held: bool,
    sync_held: bool,
    /// Held while the task runs; dropping it (stop or abort) takes the
    /// virtual MAC out of the interface's unicast filter.
    _vmac_filter: Option<VmacFilter>,
    /// What the instance asked for with `Output::SetTimer`.
    timers: Timers,
    /// IPv4 identification of adverts built here.
    ident: u16,
    owner: mpsc::UnboundedSender<Ownership>,
    tracks: Tracks,
    dataplane: Option<Arc<Counters>>,
    liveness: track::Liveness,
    status: SharedStatus,
    shell: ShellStats,
    transitions: VecDeque<TransitionRecord>,
    /// Gratuitous ARP rounds still to send in the current burst.
    burst_left: u32,
    next_burst: Option<Instant>,
    next_refresh: Option<Instant>,
    master: bool,
    handover: Option<Handover>,
}

/// Gratuitous ARP on another interface.
struct Other {
    link: PacketSocket,
    _vmac_filter: Option<VmacFilter>,
    addrs: Vec<IpAddr>,
}

/// The instance's armed timers, by kind.
#[derive(Debug, Default)]
struct Timers {
    advert: Option<Instant>,
    master_down: Option<Instant>,
}

impl Timers {
    fn set(&mut self, kind: TimerKind, at: Option<Instant>) {
        match kind {
            TimerKind::Advert => self.advert = at,
            TimerKind::MasterDown => self.master_down = at,
        }
    }

    /// The timer due first.
    fn next(&self) -> Option<(TimerKind, Instant)> {
        let advert = self.advert.map(|at| (TimerKind::Advert, at));
        let master_down = self.master_down.map(|at| (TimerKind::MasterDown, at));
        match (advert, master_down) {
            (Some(a), Some(m)) => Some(if m.1 < a.1 { m } else { a }),
            (a, m) => a.or(m),
        }
    }
}

/// Sleeps until `at`, forever if `None`.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Waits for the next change of a hold (the operator's, connection
/// sync's); forever once its sender is gone, or with none, so a dropped
/// control cannot spin a loop.
pub(crate) async fn hold_changed(hold: &mut Option<watch::Receiver<bool>>) -> Option<bool> {
    let Some(rx) = hold else {
        return std::future::pending().await;
    };
    match rx.changed().await {
        Ok(()) => Some(*rx.borrow_and_update()),
        Err(_) => {
            *hold = None;
            None
        }
    }
}

/// Increments and says whether to log: 1st, 2nd, 4th, 8th… time.
fn bump(counter: &mut u64) -> bool {
    *counter += 1;
    counter.is_power_of_two()
}

impl Shell {
    fn name(&self) -> &str {
        &self.cfg.instance.name
    }

    async fn run(
        mut self,
        mut stop: oneshot::Receiver<()>,
        hold: watch::Receiver<bool>,
        sync_hold: Option<watch::Receiver<bool>>,
    ) {
        let mut hold = Some(hold);
        let mut sync_hold = sync_hold;
        let (script_tx, mut script_rx) = mpsc::channel::<ScriptResult>(16);
        let scripts: Vec<JoinHandle<()>> = self
            .cfg
            .track_scripts
            .iter()
            .enumerate()
            .map(|(i, s)| tokio::spawn(track::run_script(i, s.clone(), script_tx.clone())))
            .collect();
        drop(script_tx);
        let mut outputs = Vec::new();
        self.poll_dataplane();
        let (weight_sum, fault) = self.tracks.verdict();
        let now = Instant::now();
        self.inst
            .handle(Input::Track { weight_sum, fault }, now, &mut outputs);
        if let Some(on) = sync_hold.as_mut().map(|rx| *rx.borrow_and_update()) {
            self.set_sync_hold(on, &mut outputs);
        }
        self.inst.handle(Input::Start, now, &mut outputs);
        self.execute(&mut outputs).await;
        self.publish_status();

        let mut poll = tokio::time::interval(TRACK_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buf = vec![0u8; socket::RECV_BUF];
        loop {
            let timer = self.timers.next();
            let garp_at = match (self.next_burst, self.next_refresh) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                // Timers first: under a flood of adverts our own must still
                // go out on time.
                biased;
                _ = &mut stop => break,
                _ = sleep_until(timer.map(|(_, at)| at)) => {
                    if let Some((kind, _)) = timer {
                        // A backup must not declare the master dead while the
                        // master's advert waits in the socket behind a flood.
                        if kind == TimerKind::MasterDown {
                            self.drain(&mut buf, &mut outputs);
                        }
                        self.inst.handle(Input::Timer(kind), Instant::now(), &mut outputs);
                    }
                }
                _ = sleep_until(garp_at) => self.garp_due(Instant::now()),
                r = self.sock.readable() => match r {
                    Ok(()) => {
                        self.receive(&mut buf, &mut outputs);
                    }
                    Err(e) => {
                        if bump(&mut self.shell.receive_errors) {
                            warn!("VRRP instance {}: waiting for adverts on {} failed: {e}", self.name(), self.cfg.interface);
                        }
                        tokio::time::sleep(TRACK_POLL).await;
                    }
                },
                Some(r) = script_rx.recv() => self.script_result(r, &mut outputs),
                Some(on) = hold_changed(&mut hold) => self.set_hold(on, &mut outputs),
                Some(on) = hold_changed(&mut sync_hold) => self.set_sync_hold(on, &mut outputs),
                _ = poll.tick() => self.poll_tracks(&mut outputs),
            }
            self.execute(&mut outputs).await;
            self.publish_status();
        }
        for s in scripts {
            s.abort();
        }
        self.inst.handle(Input::Stop, Instant::now(), &mut outputs);
        self.execute(&mut outputs).await;
        self.publish_status();
    }

    /// Reads what is queued, up to what the receive buffer can hold.
    fn drain(&mut self, buf: &mut [u8], outputs: &mut Vec<Output>) {
        for _ in 0..DRAIN_BATCHES {
            if !self.receive(buf, outputs) {
                return;
            }
        }
    }

    /// Reads up to [`RECV_BATCH`] packets; true if more may be waiting.
    fn receive(&mut self, buf: &mut [u8], outputs: &mut Vec<Output>) -> bool {
        for _ in 0..RECV_BATCH {
            let dgram = match self.sock.try_recv(buf) {
                Ok(Recv::Datagram(d)) => d,
                Ok(Recv::Empty) => return false,
                Ok(Recv::Malformed) => {
                    if bump(&mut self.shell.malformed_ip) {
                        warn!(
                            "VRRP instance {}: dropped a packet on {} with a malformed IP header ({} so far)",
                            self.name(),
                            self.cfg.interface,
                            self.shell.malformed_ip
                        );
                    }
                    continue;
                }
                Err(e) => {
                    if bump(&mut self.shell.receive_errors) {
                        warn!(
                            "VRRP instance {}: reading adverts on {} failed: {e} ({} so far)",
                            self.name(),
                            self.cfg.interface,
                            self.shell.receive_errors
                        );
                    }
                    return false;
                }
            };
            self.inst
                .handle(Input::Received(dgram), Instant::now(), outputs);
        }
        true
    }

    fn set_hold(&mut self, on: bool, outputs: &mut Vec<Output>) {
        let now = Instant::now();
        if on && !self.inst.held() {
            info!(
                "VRRP instance {}: operator handover: holding down in state {}",
                self.name(),
                self.inst.state()
            );
            self.handover = Some(Handover {
                since: now,
                new_master: None,
            });
        }
        self.operator_held = on;
        self.inst
            .handle(Input::Hold(on || self.sync_held), now, outputs);
    }

    /// Connection sync holds a starting node back from mastership until
    /// its peers' connections are in; with no master at all it still takes
    /// over, so the VIPs are never left unowned.
    fn set_sync_hold(&mut self, on: bool, outputs: &mut Vec<Output>) {
        if on == self.sync_held {
            return;
        }
        self.sync_held = on;
        if on {
            info!(
                "VRRP instance {}: holding back from mastership until the peers' connections are in (connection sync)",
                self.name()
            );
        } else {
            info!(
                "VRRP instance {}: the peers' connections are in; mastership as configured",
                self.name()
            );
        }
        self.inst.handle(
            Input::Hold(on || self.operator_held),
            Instant::now(),
            outputs,
        );
    }

    /// Records the first advert from a peer after a handover began.
    fn note_new_master(&mut self, src: IpAddr) {
        let Some(h) = self.handover.as_mut() else {
            return;
        };
        if h.new_master.is_none() && self.inst.held() {
            let after = h.since.elapsed();
            info!(
                "VRRP instance {}: {src} advertises as master {} ms after the operator handover",
                self.cfg.instance.name,
                after.as_millis()
            );
            h.new_master = Some((src, after));
        }
    }

    fn script_result(&mut self, r: ScriptResult, outputs: &mut Vec<Output>) {
        let name = self.cfg.instance.name.clone();
        let Some((script, rf)) = self.tracks.scripts.get_mut(r.index) else {
            return;
        };
        if rf.record(r.ok) {
            if r.ok {
                info!(
                    "VRRP instance {name}: track script {} succeeds again ({})",
                    script.name, r.detail
                );
            } else {
                warn!(
                    "VRRP instance {name}: track script {} failed ({})",
                    script.name, r.detail
                );
            }
            self.track_changed(outputs);
        }
    }

    fn poll_tracks(&mut self, outputs: &mut Vec<Output>) {
        let own_was_up = self.tracks.own_interface.1;
        let mut changed = self.tracks.poll_links(&self.cfg.instance.name);
        if !own_was_up && self.tracks.own_interface.1 && self.destinations_multicast() {
            self.sock.rejoin();
        }
        changed |= self.poll_dataplane();
        if changed {
            self.track_changed(outputs);
        }
    }

    fn destinations_multicast(&self) -> bool {
        self.cfg.instance.unicast_peers.is_empty()
    }

    /// Reads the workers' heartbeats; true if liveness changed.
    fn poll_dataplane(&mut self) -> bool {
        let Some(counters) = &self.dataplane else {
            return false;
        };
        let beat = counters.cores().map(|c| c.heartbeat_ms.get()).max();
        let stalled = self.liveness.observe(beat, Instant::now());
        let alive = !stalled;
        if alive == self.tracks.dataplane_alive {
            return false;
        }
        self.tracks.dataplane_alive = alive;
        if stalled {
            warn!(
                "VRRP instance {}: no dataplane worker has run for {} ms; giving up mastership until it recovers",
                self.name(),
                self.liveness.limit().as_millis()
            );
        } else {
            info!("VRRP instance {}: the dataplane runs again", self.name());
        }
        true
    }

    fn track_changed(&mut self, outputs: &mut Vec<Output>) {
        let (weight_sum, fault) = self.tracks.verdict();
        self.inst
            .handle(Input::Track { weight_sum, fault }, Instant::now(), outputs);
    }

    async fn execute(&mut self, outputs: &mut Vec<Output>) {
        for output in std::mem::take(outputs) {
            match output {
                Output::SetTimer(kind, at) => self.timers.set(kind, at),
                Output::SendAdvert { priority } => self.send_advert(priority),
                Output::BecomeMaster => {
                    self.master = true;
                    let (done, ack) = oneshot::channel();
                    self.own(true, Some(done));
                    // Announcing before the dataplane answers for the VIPs
                    // would draw traffic it drops.
                    let _ = tokio::time::timeout(OWNERSHIP_ACK, ack).await;
                    self.next_refresh = self.cfg.garp_refresh.map(|r| Instant::now() + r);
                }
                Output::BecomeBackup | Output::EnterFault | Output::Stopped => {
                    self.master = false;
                    self.own(false, None);
                    self.burst_left = 0;
                    self.next_burst = None;
                    self.next_refresh = None;
                }
                Output::SendGratuitousArp => {
                    // A new request restarts the burst rather than adding one.
                    self.burst_left = self.cfg.garp_count;
                    self.garp_due(Instant::now());
                }
                Output::Transition {
                    from,
                    to,
                    priority,
                    reason,
                } => {
                    self.shell.transitions += 1;
                    if self.transitions.len() == TRANSITIONS_KEPT {
                        self.transitions.pop_front();
                    }
                    self.transitions.push_back(TransitionRecord {
                        at: SystemTime::now(),
                        from,
                        to,
                        priority,
                        reason,
                    });
                    if let Some(argv) =
                        self.cfg.notify.as_deref().and_then(|n| {
                            notify::argv(n, &self.cfg.instance.name, from, to, priority)
                        })
                    {
                        self.shell.notify_runs += 1;
                        notify::spawn(argv);
                    }
                }
                Output::Accepted { src, priority } => {
                    if priority != PRIORITY_STOP {
                        self.note_new_master(src);
                    }
                }
                // Counted and logged by the instance.
                Output::Rejected { .. } => {}
            }
        }
    }

    fn own(&self, master: bool, done: Option<oneshot::Sender<()>>) {
        let _ = self.owner.send(Ownership {
            instance: self.cfg.instance.name.clone(),
            master,
            done,
        });
    }

    /// Sends an advert to each destination from the virtual MAC. A unicast
    /// peer whose MAC the kernel's neighbour table does not know yet gets
    /// the advert through the raw IP socket instead, from the interface's
    /// own MAC: that send makes the kernel resolve the peer, so the next
    /// adverts go out from the virtual MAC.
    fn send_advert(&mut self, priority: u8) {
        let mut buf = [0u8; socket::RECV_BUF];
        for header in self.inst.advert_headers() {
            let dst = header.dst;
            let sent = self
                .inst
                .encode_advert(priority, &header, &mut buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                .and_then(|n| {
                    let payload = buf.get(..n).unwrap_or(&[]);
                    let dst_mac = match dst {
                        IpAddr::V4(g) if g.is_multicast() => Some(link::multicast_mac(g)),
                        IpAddr::V6(g) if g.is_multicast() => Some(wire::multicast_mac(g)),
                        _ => self.neighbours.get(dst, self.cfg.ifindex),
                    };
                    match dst_mac {
                        Some(mac) => self.send_frame(payload, &header, mac),
                        None => self.sock.send(payload, dst),
                    }
                });
            if let Err(e) = sent {
                if bump(&mut self.shell.send_errors) {
                    warn!(
                        "VRRP instance {}: sending an advert to {dst} on {} failed: {e} ({} so far)",
                        self.cfg.instance.name, self.cfg.interface, self.shell.send_errors
                    );
                }
            }
        }
    }

    fn send_frame(
        &mut self,
        payload: &[u8],
        header: &AdvertHeader,
        dst_mac: MacAddr,
    ) -> io::Result<()> {
        let mut frame = [0u8; socket::RECV_BUF + link::HEADERS_LEN];
        let macs = (MacAddr(self.mac), dst_mac);
        let built = match (header.src, header.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                self.ident = self.ident.wrapping_add(1);
                link::advert_frame(&mut frame, macs, (src, dst), self.ident, payload)
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                link::advert_frame_v6(&mut frame, macs, (src, dst), payload)
            }
            (src, dst) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("advert from {src} to {dst} mixes address families"),
                ))
            }
        };
        let n = built.map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("building the advert frame: {e}"),
            )
        })?;
        self.link.send(frame.get(..n).unwrap_or(&[]))
    }

    /// Sends what gratuitous ARP is due at `now` and schedules the next.
    fn garp_due(&mut self, now: Instant) {
        let mut send = false;
        if self.burst_left > 0 && self.next_burst.is_none_or(|t| t <= now) {
            send = true;
            self.burst_left -= 1;
            self.next_burst = (self.burst_left > 0).then(|| now + self.cfg.garp_interval);
        }
        if self.next_refresh.is_some_and(|t| t <= now) {
            send = true;
            self.next_refresh = self.cfg.garp_refresh.map(|r| now + r);
        }
        if !send || !self.master {
            return;
        }
        let (own, what) = match self.inst.announcement() {
            Announcement::GratuitousArp { mac, vips } => (
                garp::announce(&self.link, mac, &vips).map(|()| vips.len()),
                "gratuitous ARP",
            ),
            Announcement::UnsolicitedNa { mac, vips } => (
                na::announce(&self.link, mac, &vips).map(|()| vips.len()),
                "unsolicited Neighbor Advertisements",
            ),
        };
        let others = self
            .others
            .iter()
            .zip(&self.cfg.elsewhere)
            .map(|(o, c)| {
                (
                    announce_on(&o.link, self.mac, &o.addrs),
                    "gratuitous ARP or unsolicited Neighbor Advertisements",
                    c.interface.as_str(),
                )
            })
            .collect::<Vec<_>>();
        let own = (own, what, self.cfg.interface.as_str());
        let mut failures = Vec::new();
        for (sent, what, interface) in std::iter::once(own).chain(others) {
            match sent {
                Ok(n) => self.shell.garps_sent += n as u64,
                Err(e) => failures.push(format!("{what} on {interface} failed: {e}")),
            }
        }
        for f in failures {
            if bump(&mut self.shell.send_errors) {
                warn!(
                    "VRRP instance {}: sending {f}; hosts there may keep a stale neighbour entry for the VIPs ({} so far)",
                    self.cfg.instance.name, self.shell.send_errors
                );
            }
        }
    }

    fn publish_status(&self) {
        let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
        st.state = self.inst.state();
        st.priority = self.inst.priority();
        let (weight_sum, fault) = self.tracks.verdict();
        st.weight_sum = weight_sum;
        st.fault = fault;
        if st.stats != *self.inst.stats() {
            st.stats = self.inst.stats().clone();
        }
        st.shell = self.shell.clone();
        st.held = self.inst.held();
        st.handover.clone_from(&self.handover);
        if st.transitions.len() != self.transitions.len()
            || st.transitions.back().map(|t| t.at) != self.transitions.back().map(|t| t.at)
        {
            st.transitions = self.transitions.clone();
        }
    }
}
