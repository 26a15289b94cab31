//! The node's running parts that follow [`NodeState`]: a health checker per
//! backend, and the workers' answers about their flows.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use dataplane::path::query::{BackendStats, FlowQuery, FlowSummary, QuerySender};
use tokio::sync::mpsc;

use super::check_spec;
use super::state::NodeState;
use crate::config::Check;
use crate::health::{Checker, HealthEvent};

/// How long the control side waits for the workers' flow answers.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A running checker and what it was started for, to know when to restart it.
struct Running {
    address: SocketAddr,
    check: Check,
    _checker: Checker,
}

/// The node's moving parts that follow [`NodeState`].
pub(crate) struct Runtime {
    /// The file `reload` reads again.
    pub(crate) config_path: PathBuf,
    health_tx: mpsc::Sender<HealthEvent>,
    checkers: std::sync::Mutex<HashMap<u32, Running>>,
    queries: Vec<QuerySender>,
}

impl Runtime {
    pub(crate) fn new(
        config_path: PathBuf,
        health_tx: mpsc::Sender<HealthEvent>,
        queries: Vec<QuerySender>,
    ) -> Self {
        Runtime {
            config_path,
            health_tx,
            checkers: std::sync::Mutex::new(HashMap::new()),
            queries,
        }
    }

    /// Starts checkers for new or changed backends and stops those of
    /// backends that are gone; unchanged ones keep running.
    pub(crate) fn sync_checkers(&self, state: &NodeState) {
        let mut running = self
            .checkers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut wanted = HashMap::new();
        for r in state.backends() {
            let s = &state.config.services[r.service];
            wanted.insert(r.id, (s.name.as_str(), &s.backends[r.backend]));
        }
        running.retain(|id, run| {
            wanted
                .get(id)
                .is_some_and(|(_, b)| b.address == run.address && b.check == run.check)
        });
        for (id, (service, b)) in wanted {
            running.entry(id).or_insert_with(|| Running {
                address: b.address,
                check: b.check.clone(),
                _checker: Checker::spawn(
                    u64::from(id),
                    check_spec(service, b),
                    self.health_tx.clone(),
                ),
            });
        }
    }

    pub(crate) fn stop_checkers(&self) {
        self.checkers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Connections and traffic of each backend of `ids`: the workers' counts
    /// from `summaries` plus what the XDP fast path forwarded.
    pub(crate) fn backend_totals(
        summaries: &[FlowSummary],
        steering: Option<&engine::XdpSteering>,
        ids: &[u32],
    ) -> HashMap<u32, BackendStats> {
        let mut totals: HashMap<u32, BackendStats> = ids
            .iter()
            .map(|&id| {
                (
                    id,
                    BackendStats {
                        id,
                        ..BackendStats::default()
                    },
                )
            })
            .collect();
        for b in summaries.iter().flat_map(|s| s.backends.iter()) {
            if let Some(t) = totals.get_mut(&b.id) {
                t.active += b.active;
                t.inactive += b.inactive;
                t.packets += b.packets;
                t.bytes += b.bytes;
            }
        }
        let fast = steering.and_then(|s| s.backend_traffic(ids).ok());
        for (id, (packets, bytes)) in ids.iter().zip(fast.into_iter().flatten()) {
            if let Some(t) = totals.get_mut(id) {
                t.packets += packets;
                t.bytes += bytes;
            }
        }
        totals
    }

    /// Asks every worker about its flows; workers that do not answer within
    /// [`QUERY_TIMEOUT`] are listed by number instead.
    pub(crate) async fn query_flows(
        &self,
        backends: Vec<u32>,
        client: Option<IpAddr>,
        top: usize,
    ) -> (Vec<FlowSummary>, Vec<usize>) {
        self.query(backends, client, top, None).await
    }

    /// Asks every worker which of its flows carried a packet within
    /// `window_ms`, as [`Runtime::query_flows`] does.
    pub(crate) async fn query_active(&self, window_ms: u64) -> (Vec<FlowSummary>, Vec<usize>) {
        self.query(Vec::new(), None, 0, Some(window_ms)).await
    }

    async fn query(
        &self,
        backends: Vec<u32>,
        client: Option<IpAddr>,
        top: usize,
        active_within_ms: Option<u64>,
    ) -> (Vec<FlowSummary>, Vec<usize>) {
        let mut waiting = Vec::new();
        let mut missing = Vec::new();
        for (w, q) in self.queries.iter().enumerate() {
            let (reply, rx) = std::sync::mpsc::sync_channel(1);
            let query = FlowQuery {
                backends: backends.clone(),
                client,
                top,
                active_within_ms,
                reply,
            };
            match q.send(query) {
                Ok(()) => waiting.push((w, rx)),
                Err(_) => missing.push(w),
            }
        }
        let answers = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + QUERY_TIMEOUT;
            waiting
                .into_iter()
                .map(|(w, rx)| {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    (w, rx.recv_timeout(left).ok())
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let mut got = Vec::new();
        for (w, a) in answers {
            match a {
                Some(a) => got.push(a),
                None => missing.push(w),
            }
        }
        missing.sort_unstable();
        (got, missing)
    }
}
