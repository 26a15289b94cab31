//! The running node: starts the AF_XDP engine, health checkers and the
//! control socket, and republishes the dataplane snapshot on every change.

mod affinity;
mod arp_watch;
pub mod change;
pub mod neigh;
pub mod runtime;
pub mod state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use dataplane::flow::Timeouts;
use dataplane::path::{Worker, WorkerConfig};
use dataplane::service::Published;
use dataplane::verdict::{PortId, Verdict};
use engine::{Engine, EngineConfig, Handler};
use log::{info, warn};
use tokio::sync::mpsc;

use crate::config::{self, CheckKind, Config};
use crate::ctl;
use crate::health::{CheckSpec, HealthEvent, Probe};
use crate::vrrp::runtime::{self as vrrp_rt, Ownership};
pub use affinity::keep_off_worker_cores;
use state::{BackendHealth, NodeState, Steering};

/// How often routes and neighbours are re-read when nothing asks sooner.
const NEIGHBOUR_REFRESH: Duration = Duration::from_secs(1);
/// How often the engine checks again that XDP frames leave by each port.
const EGRESS_PROBE: Duration = Duration::from_secs(1);
/// How soon an unresolved next hop is looked at again.
const RESOLVE_RETRY: Duration = Duration::from_millis(100);
/// How long a stopping VRRP instance may take to send its priority-0 advert.
const VRRP_STOP: Duration = Duration::from_secs(1);

/// Adapts the pure packet path to the engine.
struct PathHandler(Worker);

impl Handler for PathHandler {
    fn begin_batch(&mut self, now_ms: u64) {
        self.0.begin_batch(now_ms);
    }
    fn prefetch(&mut self, frame: &[u8]) {
        self.0.prefetch(frame);
    }
    fn handle(&mut self, frame: &mut [u8], ingress: PortId) -> Verdict {
        self.0.process(frame, ingress)
    }
    fn housekeeping(&mut self, now_ms: u64, seen: &mut dyn dataplane::flow::FastSeen) {
        self.0.housekeeping(now_ms, seen);
    }
    fn steer_changes(&mut self, out: &mut Vec<dataplane::flow::SteerChange>) {
        self.0.take_steer_changes(out);
    }
}

/// Shared with the control socket.
pub struct Node {
    pub state: tokio::sync::Mutex<NodeState>,
    pub counters: Arc<dataplane::counters::Counters>,
    /// `None` on a node without a dataplane ([`Node::detached`]).
    pub steering: Option<Arc<engine::XdpSteering>>,
    pub published: Arc<Published>,
    pub started: Instant,
    pub runtime: runtime::Runtime,
    /// The dataplane interfaces, in port order.
    pub interfaces: Vec<String>,
    /// Bumped on every publish, so the BGP announce policy re-evaluates at once.
    pub changed: tokio::sync::watch::Sender<u64>,
    pub bgp: crate::bgp::Status,
}

impl Node {
    /// A node with no dataplane, VRRP or BGP: its control socket, config and
    /// health checkers work, packets go nowhere. For tests and fuzzing of
    /// the control protocol.
    pub fn detached(cfg: Config, config_path: std::path::PathBuf) -> Node {
        let (health_tx, _) = mpsc::channel(1);
        Node {
            state: tokio::sync::Mutex::new(NodeState::new(cfg, Vec::new())),
            counters: Arc::new(dataplane::counters::Counters::new(0)),
            steering: None,
            published: Published::new(Default::default()),
            started: Instant::now(),
            runtime: runtime::Runtime::new(config_path, health_tx, Vec::new()),
            interfaces: Vec::new(),
            changed: tokio::sync::watch::Sender::new(0),
            bgp: crate::bgp::Status::default(),
        }
    }

    /// Rebuilds and publishes the snapshot; returns next hops still unresolved.
    pub fn publish(&self, state: &NodeState) -> Vec<std::net::Ipv4Addr> {
        let (snap, unresolved) = state.snapshot();
        self.published.publish(snap);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        unresolved
    }
}

fn engine_config(cfg: &Config) -> EngineConfig {
    EngineConfig {
        interfaces: cfg.dataplane.interfaces.clone(),
        queues: cfg.dataplane.queues,
        cores: cfg.dataplane.cores.clone(),
        xdp_mode: cfg.dataplane.xdp_mode,
        frames_per_worker: cfg.dataplane.frames_per_worker,
        batch: 64,
        // Both keys of every connection, when all are offloaded.
        reply_keys: u32::try_from(
            cfg.dataplane
                .flow_capacity
                .saturating_mul(usize::from(cfg.dataplane.queues))
                .saturating_mul(2),
        )
        .unwrap_or(u32::MAX),
    }
}

fn worker_config(cfg: &Config) -> WorkerConfig {
    let t = &cfg.dataplane.timeouts;
    let ms = |d: Duration| d.as_millis() as u64;
    WorkerConfig {
        flow_capacity: cfg.dataplane.flow_capacity,
        persistence_capacity: cfg.dataplane.persistence_capacity,
        timeouts: Timeouts {
            embryonic_ms: ms(t.tcp_embryonic),
            established_ms: ms(t.tcp_established),
            closing_ms: ms(t.tcp_closing),
            time_wait_ms: ms(t.tcp_time_wait),
            close_ms: ms(t.tcp_close),
            udp_ms: ms(t.udp),
        },
        steer_replies: true,
    }
}

fn check_spec(service: &str, backend: &config::Backend) -> CheckSpec {
    let addr = |port: Option<u16>| {
        std::net::SocketAddrV4::new(
            *backend.address.ip(),
            port.unwrap_or(backend.address.port()),
        )
    };
    let probe = match &backend.check.kind {
        CheckKind::None => Probe::None,
        CheckKind::Tcp { port } => Probe::Tcp { addr: addr(*port) },
        CheckKind::Http {
            path,
            expect_status,
            digest,
            host,
            port,
        } => Probe::Http {
            addr: addr(*port),
            path: path.clone(),
            host: host.clone(),
            expect_status: *expect_status,
            digest: *digest,
        },
        CheckKind::Https {
            path,
            expect_status,
            digest,
            host,
            port,
            sni,
            ca_file,
        } => Probe::Https {
            addr: addr(*port),
            path: path.clone(),
            host: host.clone(),
            expect_status: *expect_status,
            digest: *digest,
            sni: sni.clone(),
            ca_file: ca_file.clone(),
        },
        CheckKind::Udp {
            port,
            payload,
            expect,
        } => Probe::Udp {
            addr: addr(*port),
            payload: payload.clone(),
            expect: expect.clone(),
        },
        CheckKind::Dns { port, name, qtype } => Probe::Dns {
            addr: addr(*port),
            name: name.clone(),
            qtype: *qtype,
        },
        CheckKind::Ping => Probe::Ping {
            ip: *backend.address.ip(),
        },
        CheckKind::Script { command } => Probe::Script {
            command: command.clone(),
        },
    };
    CheckSpec {
        service: service.to_string(),
        probe,
        interval: backend.check.interval,
        timeout: backend.check.timeout,
        rise: backend.check.rise,
        fall: backend.check.fall,
    }
}

/// Makes the XDP steering maps match `s`.
pub(crate) fn apply_steering(steer: &engine::XdpSteering, s: &Steering) -> anyhow::Result<()> {
    steer
        .set_vips(&s.vips)
        .context("updating the XDP VIP map")?;
    steer
        .set_syn_limit(s.syn_limit)
        .context("updating the XDP SYN admission rate")?;
    Ok(())
}

/// Records a VRRP instance taking or releasing its VIPs and publishes the
/// snapshot at once: a demoted node must stop answering ARP for them now.
fn apply_ownership(node: &Node, st: &mut NodeState, own: Ownership) {
    let changed = st.masters.insert(own.instance, own.master) != Some(own.master);
    if changed {
        node.publish(st);
    }
    if let Some(done) = own.done {
        let _ = done.send(());
    }
}

/// Runs the node until SIGTERM or SIGINT; `config_path` is what `reload`
/// reads again.
pub async fn run(cfg: Config, config_path: std::path::PathBuf) -> anyhow::Result<()> {
    let published = Published::new(Default::default());
    let wcfg = worker_config(&cfg);
    let mut queries = Vec::new();
    let engine = {
        let published = published.clone();
        Engine::start(&engine_config(&cfg), |w, n| {
            let worker = Worker::new(w, n, wcfg, published.clone());
            queries.push(worker.queries());
            PathHandler(worker)
        })?
    };
    info!(
        "node {} (site {}): {} worker(s) on {}",
        cfg.node.name,
        cfg.node.site,
        cfg.dataplane.queues,
        engine
            .ports()
            .iter()
            .map(|p| format!("{} ({} XDP, MTU {})", p.name, p.xdp_mode.as_str(), p.mtu))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut state = NodeState::new(cfg, engine.ports().to_vec());
    state.refresh_neighbours();
    apply_steering(engine.steering(), &state.steering())?;
    let (health_tx, mut health_rx) = mpsc::channel::<HealthEvent>(1024);
    let (owner_tx, mut owner_rx) = mpsc::unbounded_channel::<Ownership>();
    let mut vrrp = Vec::new();
    for v in &state.config.vrrp {
        let port = state
            .ports
            .iter()
            .find(|p| p.name == v.interface)
            .with_context(|| {
                format!(
                    "VRRP instance {}: interface {} is not a dataplane interface",
                    v.name, v.interface
                )
            })?;
        let primary = v.unicast_src.or_else(|| port.ipv4.first().copied()).with_context(|| {
            format!(
                "VRRP instance {}: interface {} has no IPv4 address to send adverts from; add one or set unicast_src",
                v.name, v.interface
            )
        })?;
        let rcfg = vrrp_rt::RuntimeConfig::new(v, port.ifindex, primary);
        let handle = vrrp_rt::spawn(rcfg, Some(engine.counters().clone()), owner_tx.clone())
            .with_context(|| format!("starting VRRP instance {}", v.name))?;
        state.vrrp.push(handle.control.clone());
        vrrp.push(handle);
    }
    drop(owner_tx);
    let socket_path = state.config.control.socket.clone();
    let node = Arc::new(Node {
        state: tokio::sync::Mutex::new(state),
        counters: engine.counters().clone(),
        steering: Some(engine.steering().clone()),
        published,
        interfaces: engine.ports().iter().map(|p| p.name.clone()).collect(),
        started: Instant::now(),
        runtime: runtime::Runtime::new(config_path, health_tx, queries),
        changed: tokio::sync::watch::Sender::new(0),
        bgp: crate::bgp::Status::default(),
    });
    let mut unresolved = {
        let st = node.state.lock().await;
        node.runtime.sync_checkers(&st);
        node.publish(&st)
    };
    let ctl_task = ctl::serve(node.clone())
        .await
        .with_context(|| format!("control socket {}", socket_path.display()))?;
    let metrics_task = crate::metrics::serve(node.clone()).await?;
    let speaker = crate::bgp::Speaker::start(node.clone(), node.bgp.clone()).await?;

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(RESOLVE_RETRY);
    let mut arp_watch = arp_watch::ArpWatch::default();
    let mut last_refresh = Instant::now();
    let mut last_probe = Instant::now();
    loop {
        tokio::select! {
            ev = health_rx.recv() => {
                let Some(ev) = ev else { break };
                let mut st = node.state.lock().await;
                let Ok(id) = u32::try_from(ev.key) else { continue };
                // A report racing the removal of its backend.
                if st.backend_ref(id).is_none() { continue }
                // The checker logs transitions itself, with the reason.
                let changed = st.health.get(&id).is_none_or(|h| h.healthy != ev.healthy);
                st.health.insert(id, BackendHealth { healthy: ev.healthy, last: Some(ev.result) });
                if changed {
                    unresolved = node.publish(&st);
                }
            }
            Some(own) = owner_rx.recv() => {
                let mut st = node.state.lock().await;
                apply_ownership(&node, &mut st, own);
            }
            _ = tick.tick() => {
                let claims = node.published.load().arp_claims.drain();
                if !claims.is_empty() {
                    let st = node.state.lock().await;
                    for line in arp_watch.lines(&claims, &st, Instant::now()) {
                        warn!("{line}");
                    }
                }
                let wanted = node.published.resolve_wanted.swap(false, std::sync::atomic::Ordering::Relaxed);
                if wanted || !unresolved.is_empty() || last_refresh.elapsed() >= NEIGHBOUR_REFRESH {
                    last_refresh = Instant::now();
                    let mut st = node.state.lock().await;
                    let mut changed = st.refresh_mtus();
                    if changed || last_probe.elapsed() >= EGRESS_PROBE {
                        last_probe = Instant::now();
                        match engine.probe_egress() {
                            Ok(ports) => changed |= st.set_fast_path_egress(&ports),
                            Err(e) => warn!("checking the XDP fast path's egress ports: {e}"),
                        }
                    }
                    if st.refresh_neighbours() || wanted || changed {
                        unresolved = node.publish(&st);
                    }
                    for addr in &unresolved {
                        neigh::prompt_resolution(*addr);
                    }
                }
            }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break }
        }
    }
    if let Some(speaker) = speaker {
        let name = node.state.lock().await.config.node.name.clone();
        speaker
            .shutdown(&format!("vipd on {name} is shutting down"))
            .await;
    }
    node.runtime.stop_checkers();
    // Priority-0 adverts go out while the dataplane still runs, so backups
    // take over at once; the released VIPs are then published.
    for handle in vrrp {
        handle.shutdown(VRRP_STOP).await;
    }
    {
        let mut st = node.state.lock().await;
        while let Ok(own) = owner_rx.try_recv() {
            apply_ownership(&node, &mut st, own);
        }
    }
    ctl_task.abort();
    if let Some(t) = metrics_task {
        t.abort();
    }
    // The socket file would otherwise make the next start think a node runs.
    if let Err(e) = std::fs::remove_file(&socket_path) {
        warn!(
            "could not remove control socket {}: {e}",
            socket_path.display()
        );
    }
    engine.stop();
    info!("stopped; XDP programs detached");
    Ok(())
}
