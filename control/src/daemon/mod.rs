//! The composition root: `run` builds the node from the config and starts
//! its parts — the AF_XDP engine, VRRP instances, health checkers, the
//! neighbour watcher, the BGP speaker, the control socket and metrics —
//! handing each only what it uses, then republishes the dataplane snapshot
//! on every change until a signal stops it.

mod affinity;
mod arp_watch;
mod engine;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::engine::Engine;
use ::vrrp::AddressFamily;
use anyhow::Context;
use dataplane::path::Worker;
use dataplane::service::Published;
use log::{info, warn};
use tokio::sync::{mpsc, watch};

use crate::config::{Config, VrrpInstance};
use crate::health::HealthEvent;
use crate::neigh::{self, Neighbours};
use crate::node::{self, BackendHealth, Node, NodeState, Runtime};
use crate::speaker::Speaker;
use crate::sync;
use crate::vrrp::runtime::{self as vrrp_rt, hold_changed, Ownership};
use crate::{ctl, metrics};
pub use affinity::keep_off_worker_cores;
use engine::{engine_config, worker_config, PathHandler};

/// How often routes are re-read when nothing asks sooner.
const ROUTE_REFRESH: Duration = Duration::from_secs(1);
/// How often the engine checks again that XDP frames leave by each port.
const EGRESS_PROBE: Duration = Duration::from_secs(1);
/// How soon an unresolved next hop is looked at again.
const RESOLVE_RETRY: Duration = Duration::from_millis(100);
/// How long a stopping VRRP instance may take to send its priority-0 advert.
const VRRP_STOP: Duration = Duration::from_secs(1);
/// How long connection sync may take to send what is still queued.
const SYNC_STOP: Duration = Duration::from_secs(1);

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

/// Starts every configured VRRP instance on its dataplane interface; their
/// live views go into `state` for the control socket.
fn start_vrrp(
    state: &mut NodeState,
    counters: &Arc<dataplane::counters::Counters>,
    owner: &mpsc::UnboundedSender<Ownership>,
    neighbours: &Neighbours,
    sync_hold: Option<watch::Receiver<bool>>,
) -> anyhow::Result<Vec<vrrp_rt::Handle>> {
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
        let primary = match v.family() {
            AddressFamily::Ipv4 => IpAddr::V4(
                v.unicast_src
                    .or_else(|| port.ipv4.first().copied())
                    .with_context(|| {
                        format!(
                            "VRRP instance {}: interface {} has no IPv4 address to send adverts from; add one or set unicast_src",
                            v.name, v.interface
                        )
                    })?,
            ),
            AddressFamily::Ipv6 => IpAddr::V6(
                vrrp_rt::link_local(&v.interface)
                    .with_context(|| format!("VRRP instance {}", v.name))?,
            ),
        };
        let mut rcfg = vrrp_rt::RuntimeConfig::new(v, port.ifindex, primary);
        rcfg.elsewhere = elsewhere(state, v);
        let handle = vrrp_rt::spawn(
            rcfg,
            Some(counters.clone()),
            owner.clone(),
            neighbours.clone(),
            sync_hold.clone(),
        )
        .with_context(|| format!("starting VRRP instance {}", v.name))?;
        state.vrrp.push(handle.control.clone());
        vrrp.push(handle);
    }
    Ok(vrrp)
}

/// The addresses instance `v` holds on interfaces other than its own, by
/// interface: its floating addresses and the full-NAT sources that move
/// with it.
fn elsewhere(state: &NodeState, v: &VrrpInstance) -> Vec<vrrp_rt::OtherLink> {
    let snat = state
        .config
        .services
        .iter()
        .flat_map(|s| s.snat.iter().copied())
        .filter(|a| state.snat_instance(*a).is_some_and(|i| i.name == v.name));
    let mut links: Vec<vrrp_rt::OtherLink> = Vec::new();
    for addr in v.vips.iter().copied().chain(snat) {
        let Some(port) = state.ports.get(usize::from(state.home_port(addr))) else {
            continue;
        };
        if port.name == v.interface {
            continue;
        }
        match links.iter_mut().find(|l| l.ifindex == port.ifindex) {
            Some(l) if !l.addrs.contains(&addr) => l.addrs.push(addr),
            Some(_) => {}
            None => links.push(vrrp_rt::OtherLink {
                interface: port.name.clone(),
                ifindex: port.ifindex,
                addrs: vec![addr],
            }),
        }
    }
    links
}

/// Runs the node until SIGTERM or SIGINT; `config_path` is what `reload`
/// reads again.
pub async fn run(cfg: Config, config_path: std::path::PathBuf) -> anyhow::Result<()> {
    for w in node::shared_prefix_warnings(&cfg) {
        warn!("{w}");
    }
    let published = Published::new(Default::default());
    let sync_local = cfg.sync.as_ref().map(sync::local).transpose()?;
    let mut wcfg = worker_config(&cfg);
    wcfg.sync_origin = sync_local.as_ref().map(|l| l.node_id);
    let mut queries = Vec::new();
    let mut sync_links = Vec::new();
    let engine = {
        let published = published.clone();
        Engine::start(&engine_config(&cfg), |w, n| {
            let mut worker = Worker::new(w, n, wcfg, published.clone());
            worker.start_snat_ports_at(crate::random::random(w) as u32);
            queries.push(worker.queries());
            sync_links.extend(worker.sync_link());
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
    let mut neighbours = Neighbours::follow()
        .await
        .context("reading the kernel's neighbour table over rtnetlink")?;
    let sync = match (&cfg.sync, &sync_local) {
        (Some(s), Some(local)) => Some(sync::start(s, local, sync_links)?),
        _ => None,
    };
    let mut sync_hold = sync.as_ref().map(|s| s.hold.clone());
    let mut state = NodeState::new(cfg, engine.ports().to_vec());
    state.sync_holding = sync_hold.as_ref().is_some_and(|h| *h.borrow());
    state.refresh_routes();
    state.set_neighbours(neighbours.now());
    node::apply_steering(engine.steering(), &state.steering())?;
    let (health_tx, mut health_rx) = mpsc::channel::<HealthEvent>(1024);
    let (owner_tx, mut owner_rx) = mpsc::unbounded_channel::<Ownership>();
    let vrrp = start_vrrp(
        &mut state,
        engine.counters(),
        &owner_tx,
        &neighbours,
        sync_hold.clone(),
    )?;
    drop(owner_tx);
    let socket_path = state.config.control.socket.clone();
    let bgp = state.config.bgp.clone();
    let node = Arc::new(Node::new(node::Parts {
        state,
        counters: engine.counters().clone(),
        steering: Some(engine.steering().clone()),
        published,
        runtime: Runtime::new(config_path, health_tx, queries),
        interfaces: engine.ports().iter().map(|p| p.name.clone()).collect(),
        sync: sync.as_ref().map(|s| s.status.clone()),
    }));
    let mut unresolved = {
        let st = node.state.lock().await;
        node.runtime.sync_checkers(&st);
        node.publish(&st)
    };
    let _drain_monitor = node.clone().watch_drain();
    let ctl_task = ctl::serve(node.clone())
        .await
        .with_context(|| format!("control socket {}", socket_path.display()))?;
    let metrics_task = metrics::serve(node.clone()).await?;
    let speaker = match &bgp {
        Some(bgp) => Some(Speaker::start(bgp, node.announcer(), node.bgp.clone())?),
        None => None,
    };

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(RESOLVE_RETRY);
    let mut arp_watch = arp_watch::ArpWatch::default();
    let mut following = true;
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
            Some(holding) = hold_changed(&mut sync_hold) => {
                let mut st = node.state.lock().await;
                st.sync_holding = holding;
                node.publish(&st);
            }
            more = neighbours.changed(), if following => {
                following = more;
                let mut st = node.state.lock().await;
                if st.set_neighbours(neighbours.now()) {
                    unresolved = node.publish(&st);
                }
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
                if wanted || !unresolved.is_empty() || last_refresh.elapsed() >= ROUTE_REFRESH {
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
                    if st.refresh_routes() || wanted || changed {
                        unresolved = node.publish(&st);
                    }
                    for addr in &unresolved {
                        neigh::prompt_resolution(addr.addr, addr.ifindex);
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
    if let Some(sync) = sync {
        sync.shutdown(SYNC_STOP).await;
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
