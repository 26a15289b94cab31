//! The node's state and the operations that change it: what the control
//! socket reads and edits, what the announce policy decides from, and how a
//! change reaches the dataplane (health checkers, steering maps, snapshot).
//! It starts nothing itself: `daemon::run` builds a [`Node`] and hands each
//! component the part it needs.

mod announce;
mod change;
mod checks;
mod drain;
mod runtime;
mod state;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use dataplane::service::Published;
use tokio::sync::{mpsc, watch, Mutex};

use crate::config::{self, Config};
use crate::speaker;
pub(crate) use announce::{shared_prefix_warnings, Announcer};
pub(crate) use change::{BackendChange, ChangeError, ReloadSummary};
pub(crate) use checks::check_spec;
pub(crate) use drain::{mode_name as drain_mode, Drain};
pub(crate) use runtime::Runtime;
pub use state::NodeState;
pub(crate) use state::Unresolved;
pub(crate) use state::{BackendHealth, Steering};

/// The running node, shared with the control socket and the metrics
/// listener.
pub struct Node {
    pub(crate) state: Arc<Mutex<NodeState>>,
    pub(crate) counters: Arc<dataplane::counters::Counters>,
    /// `None` on a node without a dataplane ([`Node::detached`]).
    pub(crate) steering: Option<Arc<engine::XdpSteering>>,
    pub(crate) published: Arc<Published>,
    pub(crate) started: Instant,
    pub(crate) runtime: Runtime,
    /// The dataplane interfaces, in port order.
    pub(crate) interfaces: Vec<String>,
    /// Bumped on every publish, so the BGP announce policy re-evaluates at once.
    pub(crate) changed: watch::Sender<u64>,
    pub(crate) bgp: speaker::Status,
    /// The drain monitor's last sample.
    drain: std::sync::Mutex<drain::Progress>,
    /// Connection sync's status, when `[sync]` is configured.
    pub(crate) sync: Option<Arc<std::sync::Mutex<ctlproto::reply::SyncNode>>>,
}

/// What a running node is built from; [`Node::detached`] is the same with
/// no dataplane.
pub(crate) struct Parts {
    pub(crate) state: NodeState,
    pub(crate) counters: Arc<dataplane::counters::Counters>,
    pub(crate) steering: Option<Arc<engine::XdpSteering>>,
    pub(crate) published: Arc<Published>,
    pub(crate) runtime: Runtime,
    pub(crate) interfaces: Vec<String>,
    pub(crate) sync: Option<Arc<std::sync::Mutex<ctlproto::reply::SyncNode>>>,
}

impl Node {
    pub(crate) fn new(p: Parts) -> Node {
        Node {
            state: Arc::new(Mutex::new(p.state)),
            counters: p.counters,
            steering: p.steering,
            published: p.published,
            started: Instant::now(),
            runtime: p.runtime,
            interfaces: p.interfaces,
            changed: watch::Sender::new(0),
            bgp: speaker::Status::default(),
            drain: std::sync::Mutex::default(),
            sync: p.sync,
        }
    }

    /// A node with no dataplane, VRRP or BGP: its control socket, config and
    /// health checkers work, packets go nowhere. For tests and fuzzing of
    /// the control protocol.
    pub fn detached(cfg: Config, config_path: std::path::PathBuf) -> Node {
        let (health_tx, _) = mpsc::channel(1);
        Node::new(Parts {
            state: NodeState::new(cfg, Vec::new()),
            counters: Arc::new(dataplane::counters::Counters::new(0)),
            steering: None,
            published: Published::new(Default::default()),
            runtime: Runtime::new(config_path, health_tx, Vec::new()),
            interfaces: Vec::new(),
            sync: None,
        })
    }

    /// What the BGP speaker reads: the announce decisions and their changes.
    pub(crate) fn announcer(&self) -> Announcer {
        Announcer::new(
            self.state.clone(),
            self.counters.clone(),
            self.changed.subscribe(),
        )
    }

    /// Rebuilds and publishes the snapshot; returns next hops still unresolved.
    pub(crate) fn publish(&self, state: &NodeState) -> Vec<Unresolved> {
        let (snap, unresolved) = state.snapshot();
        self.published.publish(snap);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        unresolved
    }

    /// Pushes the current state everywhere it matters: checkers, steering
    /// maps, snapshot. The run loop then re-resolves next hops at once.
    fn apply(&self, state: &NodeState) -> anyhow::Result<()> {
        self.runtime.sync_checkers(state);
        if let Some(steering) = &self.steering {
            apply_steering(steering, &state.steering())?;
        }
        self.publish(state);
        self.published.resolve_wanted.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Applies one backend edit and makes it live.
    pub(crate) async fn change_backend(
        &self,
        service: &str,
        addr: SocketAddr,
        change: BackendChange,
    ) -> Result<u32, ChangeError> {
        let mut st = self.state.lock().await;
        let id = st.change_backend(service, addr, change)?;
        self.apply(&st).map_err(ChangeError::Apply)?;
        Ok(id)
    }

    /// Re-reads the config file; applies it whole or not at all.
    pub(crate) async fn reload(&self) -> Result<ReloadSummary, Vec<String>> {
        let path = self.runtime.config_path.clone();
        let new = config::load(&path)
            .map_err(|errors| errors.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        let mut st = self.state.lock().await;
        let summary = st.replace_config(new).map_err(|mut e| {
            e.insert(
                0,
                format!("{}: not applied, the running config stays", path.display()),
            );
            e
        })?;
        self.apply(&st).map_err(|e| vec![format!("{e:#}")])?;
        Ok(summary)
    }
}

/// Makes the XDP steering maps match `s`.
pub(crate) fn apply_steering(steer: &engine::XdpSteering, s: &Steering) -> anyhow::Result<()> {
    steer
        .set_vips(&s.vips)
        .context("updating the XDP VIP map")?;
    steer
        .set_vips6(&s.vips6)
        .context("updating the XDP IPv6 VIP map")?;
    steer
        .set_syn_limit(s.syn_limit)
        .context("updating the XDP SYN admission rate")?;
    Ok(())
}
