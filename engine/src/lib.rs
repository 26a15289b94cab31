//! The AF_XDP engine: steers the dataplane's traffic into AF_XDP sockets and
//! runs one pinned worker per queue that feeds frames to a [`Handler`] and
//! acts on its [`Verdict`]s.
//!
//! Per worker `w` (queue `w` of every configured interface) there is one
//! UMEM shared by the worker's sockets on all interfaces, so a frame received
//! on one port is transmitted on another without a copy. The engine does all
//! counting (rx, tx, bytes, drops by reason, hand-offs, heartbeat); the
//! handler only returns verdicts.

mod flow_table;
mod forward;
mod handoff;
mod iface;
mod simulator;
mod steer;
mod worker;
mod xsk;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use dataplane::counters::Counters;
use dataplane::flow::{FastSeenAll, Ip6, SteerChange};
use dataplane::verdict::{PortId, Verdict};

/// Slots of an XDP flow table loaded for a number of keys.
pub use flow_table::slots_for as flow_table_slots;
/// Keys of every connection of `queues` workers holding `per_worker` each,
/// both keys offloaded: what an interface's XDP flow table must hold.
pub fn connection_keys(per_worker: usize, queues: u16) -> u32 {
    u32::try_from(
        per_worker
            .saturating_mul(usize::from(queues))
            .saturating_mul(2),
    )
    .unwrap_or(u32::MAX)
}
/// Bytes of one slot of the IPv4 XDP flow table.
pub const FLOW_SLOT_BYTES: usize = size_of::<flow_table::Slot4>();
pub use forward::ForwardHandler;
pub use iface::MacAddrBytes;
pub use simulator::{SimOutcome, XdpSimulator};
pub use steer::{
    xdp_md, EgressPort, SynLimit, XdpStats, XdpSteering, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX,
};

/// The packet logic the engine drives. One instance per worker.
pub trait Handler: Send + 'static {
    /// Once per batch, before the frames of the batch; the clock is read once
    /// per batch (not per packet).
    fn begin_batch(&mut self, now_ms: u64);
    /// Called for every frame of a batch before any is handled: a chance to
    /// start the batch's cache misses together.
    fn prefetch(&mut self, _frame: &[u8]) {}
    /// Process one frame in place (same length); return what to do with it.
    fn handle(&mut self, frame: &mut [u8], ingress: PortId) -> Verdict;
    /// Called about every 100 ms and when idle: housekeeping (flow expiry).
    /// `seen` reads what the XDP program saw of offloaded connections.
    fn housekeeping(&mut self, now_ms: u64, seen: &mut dyn FastSeenAll);
    /// Moves the XDP map changes of the frames handled so far into `out`;
    /// the engine applies them to the XDP program before it transmits any
    /// of those frames.
    fn steer_changes(&mut self, _out: &mut Vec<SteerChange>) {}
    /// The same for IPv6 connections.
    fn steer_changes6(&mut self, _out: &mut Vec<SteerChange<Ip6>>) {}
}

dataplane::keyword_enum!(
    /// How the steering program is attached.
    XdpMode {
        /// Native where the driver supports it, generic (skb) otherwise, with
        /// a warning.
        Auto => "auto",
        /// In the driver (fast path).
        Native => "native",
        /// Generic XDP in the kernel stack: works on any interface, slower.
        Skb => "skb",
    }
);

/// What the engine runs on.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Interfaces in port order: port `i` is `interfaces[i]`.
    pub interfaces: Vec<String>,
    /// Queues per interface; one worker per queue.
    pub queues: u16,
    /// Core for each worker (`cores[w]`); unpinned when `None`.
    pub cores: Option<Vec<usize>>,
    pub xdp_mode: XdpMode,
    /// UMEM frames per worker, shared by its sockets (power of two).
    pub frames_per_worker: u32,
    /// Frames per ring operation.
    pub batch: u32,
    /// Connection keys each interface's XDP program must hold: at least
    /// twice the connections all workers' flow tables hold (both keys of
    /// offloaded connections). Its table has 64-byte slots, a power of two
    /// at least half as many again.
    pub reply_keys: u32,
    /// The same for IPv6 connections, in 128-byte slots.
    pub reply_keys6: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            interfaces: Vec::new(),
            queues: 1,
            cores: None,
            xdp_mode: XdpMode::Native,
            frames_per_worker: 4096,
            batch: 64,
            reply_keys: 65_536,
            reply_keys6: 16_384,
        }
    }
}

/// An interface the engine runs on, as read at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    pub name: String,
    pub ifindex: u32,
    pub mac: MacAddrBytes,
    pub ipv4: Vec<Ipv4Addr>,
    pub ipv6: Vec<Ipv6Addr>,
    pub mtu: u32,
    /// How the steering program is attached (native or skb once started).
    pub xdp_mode: XdpMode,
    /// Frames can leave by it from XDP, so the fast path may forward
    /// connections whose packets leave here (checked at start and by
    /// [`Engine::probe_egress`]).
    pub xdp_xmit: bool,
}

/// Why the engine could not start or change its steering maps. Each message
/// names the interface and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("invalid dataplane config: {0}")]
    Config(String),
    #[error(
        "the dataplane lacks {missing}: run vipd as root or grant it CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_IPC_LOCK"
    )]
    NotPermitted { missing: String },
    #[error(
        "interface {interface} does not exist: check [dataplane] interfaces and `ip link show`"
    )]
    InterfaceMissing { interface: String },
    #[error("cannot read interface {interface}: {error}")]
    Interface {
        interface: String,
        error: std::io::Error,
    },
    #[error(
        "interface {interface} has {available} receive queue(s) but {configured} are configured: \
         lower [dataplane] queues or raise the channel count: `ethtool -L {interface} combined {configured}` \
         where the driver has combined channels, `ethtool -L {interface} rx {configured} tx {configured}` on veth \
         (created with numrxqueues/numtxqueues of at least {configured})"
    )]
    QueueMismatch {
        interface: String,
        configured: u16,
        available: u32,
    },
    #[error(
        "cannot lock {needed} bytes of packet memory (RLIMIT_MEMLOCK is {limit}, raising it failed: {error}): \
         run as root, grant CAP_IPC_LOCK or raise the memlock limit (ulimit -l / LimitMEMLOCK=infinity)"
    )]
    Memlock {
        needed: u64,
        limit: u64,
        error: std::io::Error,
    },
    #[error(
        "interface {interface} has MTU {mtu}, but an AF_XDP frame holds IP packets of at most \
         {max} bytes, so larger ones would be lost: lower the MTU of {interface} and of the \
         hosts on its segment to {max} or less (`ip link set dev {interface} mtu {max}`)"
    )]
    MtuTooLarge {
        interface: String,
        mtu: u32,
        max: u32,
    },
    #[error("cannot load the XDP steering program for interface {interface}: {error}")]
    BpfLoad { interface: String, error: String },
    #[error("cannot attach XDP ({mode} mode) to interface {interface}: {reason}")]
    XdpAttach {
        interface: String,
        mode: &'static str,
        reason: String,
    },
    #[error("cannot create the AF_XDP socket on interface {interface} queue {queue}: {error}")]
    Socket {
        interface: String,
        queue: u16,
        error: String,
    },
    #[error("cannot update XDP map `{map}` on interface {interface}: {error}")]
    Map {
        interface: String,
        map: &'static str,
        error: String,
    },
    #[error("cannot start dataplane worker {worker}: {error}")]
    Thread { worker: u16, error: std::io::Error },
}

/// The running engine. Dropping it stops it like [`Engine::stop`].
pub struct Engine {
    ports: Vec<PortInfo>,
    counters: Arc<Counters>,
    steering: Arc<XdpSteering>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    // Owns the loaded programs and their bpf_links; dropped last so the
    // sockets are gone before the programs detach.
    programs: Mutex<Programs>,
}

/// The loaded programs, and the ports as the last egress probe found them
/// (a change is logged against that, not against the start).
struct Programs {
    attached: Vec<steer::Attached>,
    ports: Vec<PortInfo>,
}

impl Engine {
    /// Attaches the steering program to every interface, opens one AF_XDP
    /// socket per (interface, queue) and starts one worker per queue, each
    /// with its own handler from `make_handler(worker, workers)`.
    pub fn start<H: Handler, F: FnMut(u16, u16) -> H>(
        cfg: &EngineConfig,
        mut make_handler: F,
    ) -> Result<Engine, EngineError> {
        validate(cfg)?;
        iface::check_privileges()?;
        let ports = cfg
            .interfaces
            .iter()
            .map(|name| iface::port_info(name))
            .collect::<Result<Vec<_>, _>>()?;
        for port in &ports {
            let available = iface::rx_queues(&port.name)?;
            if let Some(available) = available.filter(|&a| a < u32::from(cfg.queues)) {
                return Err(EngineError::QueueMismatch {
                    interface: port.name.clone(),
                    configured: cfg.queues,
                    available,
                });
            }
        }
        iface::raise_memlock(
            u64::from(cfg.frames_per_worker) * xsk::FRAME_SIZE as u64 * u64::from(cfg.queues),
        )?;

        let mut ports = ports;
        for port in &ports {
            if port.mtu > MAX_MTU {
                return Err(EngineError::MtuTooLarge {
                    interface: port.name.clone(),
                    mtu: port.mtu,
                    max: MAX_MTU,
                });
            }
        }
        let mut attached = Vec::with_capacity(ports.len());
        for port in &mut ports {
            let a = steer::Attached::attach(port, cfg.xdp_mode, cfg.reply_keys, cfg.reply_keys6)?;
            port.xdp_mode = a.mode();
            if a.mode() == XdpMode::Skb && iface::disable_gro(&port.name)? {
                log::warn!(
                    "interface {}: GRO turned off: generic (skb) XDP sees the packets GRO \
                     merges, which no AF_XDP frame holds",
                    port.name
                );
            }
            attached.push(a);
        }
        let steering = Arc::new(XdpSteering::new(&mut attached));
        // The probe sends through the program's own port table.
        steering.set_ports(&egress_ports(&ports))?;
        probe_egress(&mut attached, &mut ports, &steering)?;

        let workers = cfg.queues;
        let counters = Arc::new(Counters::new(usize::from(workers)));
        let hub = Arc::new(handoff::Hub::new(usize::from(workers)));
        let stop = Arc::new(AtomicBool::new(false));
        let mut sets = Vec::with_capacity(usize::from(workers));
        for w in 0..workers {
            let set = xsk::SocketSet::open(&ports, w, cfg.frames_per_worker, cfg.batch)?;
            for (a, fd) in attached.iter_mut().zip(set.fds()) {
                a.insert_socket(w, fd)?;
            }
            sets.push(set);
        }

        let entries: Vec<_> = (0..workers)
            .map(|_| steer::FlowEntries::new(&attached))
            .collect();
        let probed = ports.clone();
        let mut engine = Engine {
            ports,
            counters,
            steering,
            stop,
            workers: Vec::with_capacity(usize::from(workers)),
            programs: Mutex::new(Programs {
                attached,
                ports: probed,
            }),
        };
        for ((w, set), entries) in (0..workers).zip(sets).zip(entries) {
            let core = cfg
                .cores
                .as_ref()
                .and_then(|c| c.get(usize::from(w)).copied());
            let worker = worker::WorkerThread::new(
                w,
                make_handler(w, workers),
                set,
                entries,
                worker::Shared {
                    counters: Arc::clone(&engine.counters),
                    hub: Arc::clone(&hub),
                    stop: Arc::clone(&engine.stop),
                },
                cfg.batch,
            );
            let handle = std::thread::Builder::new()
                .name(format!("vipd-worker-{w}"))
                .spawn(move || {
                    if let Some(core) = core {
                        if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                            log::warn!(
                                "dataplane worker {w}: cannot pin to core {core}; running unpinned"
                            );
                        }
                    }
                    worker.run();
                })
                .map_err(|error| EngineError::Thread { worker: w, error })?;
            engine.workers.push(handle);
        }
        Ok(engine)
    }

    /// The interfaces, in port order.
    pub fn ports(&self) -> &[PortInfo] {
        &self.ports
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The steering maps of every interface; shared so the control plane
    /// can read the program's counters without holding the engine.
    pub fn steering(&self) -> &Arc<XdpSteering> {
        &self.steering
    }

    /// Checks again whether XDP frames can leave by each port (a veth
    /// peer's GRO or XDP program may have changed) and tells the fast path.
    /// Returns the ports as they are now.
    pub fn probe_egress(&self) -> Result<Vec<PortInfo>, EngineError> {
        let mut programs = self.programs.lock().unwrap_or_else(|p| p.into_inner());
        let Programs { attached, ports } = &mut *programs;
        probe_egress(attached, ports, &self.steering)?;
        Ok(ports.clone())
    }

    /// Stops the workers, waits for them and detaches the steering programs.
    pub fn stop(self) {
        // Dropping does it (see `Drop`), so a forgotten stop() is harmless.
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for handle in self.workers.drain(..) {
            if handle.join().is_err() {
                log::error!("a dataplane worker panicked while stopping");
            }
        }
    }
}

// The control plane shares the engine between its tasks.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Engine>();
};

impl Drop for Engine {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Probes each port's XDP transmit (see [`steer::Attached::probe_xmit`]),
/// records it in `ports`, logs changes, and hands the fast path the ports.
fn probe_egress(
    attached: &mut [steer::Attached],
    ports: &mut [PortInfo],
    steering: &XdpSteering,
) -> Result<(), EngineError> {
    for p in ports.iter_mut() {
        p.mtu = iface::mtu(&p.name).unwrap_or(p.mtu);
    }
    for (i, (a, port)) in attached.iter_mut().zip(ports.iter_mut()).enumerate() {
        // Generic XDP transmits through the stack, which any device takes;
        // a driver that keeps no count of XDP frames sent cannot be checked
        // and is trusted.
        let probed = match a.mode() {
            XdpMode::Skb => Ok(true),
            _ => a
                .probe_xmit(i as u32, port.ifindex, port.mac)
                .map(|ok| ok.unwrap_or(true)),
        };
        let xmit = matches!(probed, Ok(true));
        if let Err(e) = &probed {
            if port.xdp_xmit {
                log::warn!(
                    "interface {}: cannot check that frames sent from XDP leave by it ({e}); \
                     connections whose packets leave by it stay in the workers",
                    port.name
                );
            }
        } else if xmit != port.xdp_xmit {
            if xmit {
                log::info!(
                    "interface {}: the XDP fast path can send by it again",
                    port.name
                );
            } else {
                log::warn!(
                    "interface {}: frames sent from XDP are dropped by its driver (a veth \
                     whose peer has neither an XDP program nor GRO: `ethtool -K PEER gro on`); \
                     connections whose packets leave by it stay in the workers",
                    port.name
                );
            }
        }
        port.xdp_xmit = xmit;
    }
    steering.set_ports(&egress_ports(ports))
}

/// The ports as the XDP program's port table holds them.
fn egress_ports(ports: &[PortInfo]) -> Vec<EgressPort> {
    ports
        .iter()
        .map(|p| EgressPort {
            ifindex: p.ifindex,
            mtu: p.mtu,
            xmit: p.xdp_xmit,
        })
        .collect()
}

/// The largest IP packet (the MTU) the engine can receive: an AF_XDP frame
/// less the kernel's XDP headroom, an Ethernet header and two VLAN tags.
pub const MAX_MTU: u32 = xsk::FRAME_SIZE - 256 - 14 - 8;

/// The MTU of interface `name` now, to notice changes while running.
pub fn interface_mtu(name: &str) -> Result<u32, EngineError> {
    iface::mtu(name)
}

/// The IPv4 addresses of interface `name` (any interface of the host).
pub fn interface_ipv4(name: &str) -> Result<Vec<Ipv4Addr>, EngineError> {
    iface::ipv4(name)
}

pub use iface::{link_counters, LinkCounters};

/// The engine clock: CLOCK_MONOTONIC in milliseconds, the time base of
/// `heartbeat_ms` and of the `now_ms` handlers receive.
pub fn monotonic_ms() -> u64 {
    iface::monotonic_ms()
}

fn validate(cfg: &EngineConfig) -> Result<(), EngineError> {
    let bad = |s: String| Err(EngineError::Config(s));
    if cfg.interfaces.is_empty() {
        return bad("no interfaces configured: set [dataplane] interfaces".into());
    }
    if cfg.interfaces.len() > usize::from(PortId::MAX) + 1 {
        return bad(format!(
            "{} interfaces configured, at most {} are supported",
            cfg.interfaces.len(),
            usize::from(PortId::MAX) + 1
        ));
    }
    for (i, a) in cfg.interfaces.iter().enumerate() {
        if cfg.interfaces[..i].contains(a) {
            return bad(format!("interface {a} is listed twice"));
        }
    }
    if cfg.queues == 0 || u32::from(cfg.queues) > steer::MAX_QUEUES {
        return bad(format!(
            "queues = {}: must be between 1 and {}",
            cfg.queues,
            steer::MAX_QUEUES
        ));
    }
    if let Some(cores) = &cfg.cores {
        if cores.len() < usize::from(cfg.queues) {
            return bad(format!(
                "{} cores listed for {} queues: list one core per queue",
                cores.len(),
                cfg.queues
            ));
        }
    }
    if cfg.batch == 0 || cfg.batch > 1024 {
        return bad(format!("batch = {}: must be between 1 and 1024", cfg.batch));
    }
    let ports = cfg.interfaces.len() as u32;
    let min_frames = 2 * ports * cfg.batch;
    if !cfg.frames_per_worker.is_power_of_two() || cfg.frames_per_worker < min_frames {
        return bad(format!(
            "frames_per_worker = {}: must be a power of two and at least {min_frames} \
             (2 x interfaces x batch)",
            cfg.frames_per_worker
        ));
    }
    Ok(())
}
