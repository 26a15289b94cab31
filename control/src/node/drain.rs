//! Node drain: the node turns traffic away (its BGP announcements are
//! withdrawn or de-preferred, as `[bgp] drain` says) and keeps serving what
//! still arrives. A monitor samples, every second, the connections that
//! still carry packets and the packet rate, and says when the node is empty.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ctlproto::reply;
use log::info;
use tokio::task::JoinHandle;

use super::Node;
use crate::config::DrainRoutes;

/// How often the monitor samples, and the window a connection must have
/// carried a packet in to count as still using the node.
const SAMPLE: Duration = Duration::from_secs(1);
/// A drained node is empty once it has seen no connection and no packet
/// for this long.
const EMPTY_AFTER: Duration = Duration::from_secs(2);

/// A drain in force, kept in [`super::NodeState`] so it survives reloads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Drain {
    pub(crate) since: Instant,
    /// How long the operator said they would wait for the node to empty.
    pub(crate) timeout: Option<Duration>,
}

/// What the monitor measured last.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    /// Whether a sample was taken during the current drain.
    sampled: bool,
    connections: usize,
    flow_entries: usize,
    pps: f64,
    quiet_since: Option<Instant>,
    missing: Vec<usize>,
}

impl Progress {
    /// The drain's reply section.
    pub(crate) fn reply(&self, d: &Drain, now: Instant) -> reply::Drain {
        let quiet = self
            .quiet_since
            .map_or(Duration::ZERO, |q| now.saturating_duration_since(q));
        reply::Drain {
            since_s: now.saturating_duration_since(d.since).as_secs_f64(),
            timeout_left_s: d.timeout.map(|t| {
                t.saturating_sub(now.saturating_duration_since(d.since))
                    .as_secs_f64()
            }),
            connections: self.connections,
            flow_entries: self.flow_entries,
            pps: self.pps,
            empty: self.sampled && quiet >= EMPTY_AFTER,
            empty_for_s: quiet.as_secs_f64(),
            workers_not_answering: self.missing.clone(),
        }
    }
}

/// The drain mode of `bgp` as the replies name it.
pub(crate) fn mode_name(bgp: Option<&crate::config::Bgp>) -> &'static str {
    bgp.map_or("none", |b| b.drain.as_str())
}

/// Packets reaching the dataplane so far: those the workers received and
/// those the XDP program forwarded itself.
fn packets(node: &Node) -> u64 {
    let workers: u64 = node.counters.cores().map(|c| c.rx_packets.get()).sum();
    let fast = node
        .steering
        .as_ref()
        .and_then(|s| s.xdp_stats().ok())
        .and_then(|x| {
            x.by_decision()
                .iter()
                .find(|(name, _)| *name == "fast_forwarded")
                .map(|(_, n)| *n)
        })
        .unwrap_or(0);
    workers + fast
}

impl Node {
    /// Starts or ends a drain; returns whether the state changed. A drain
    /// already in force keeps its start and takes the new timeout.
    pub(crate) async fn set_drain(&self, on: bool, timeout: Option<Duration>) -> bool {
        let mut st = self.state.lock().await;
        let changed = st.drain.is_some() != on;
        let mode = mode_name(st.config.bgp.as_ref());
        st.drain = match (on, st.drain) {
            (false, _) => None,
            (true, Some(d)) => Some(Drain { timeout, ..d }),
            (true, None) => Some(Drain {
                since: Instant::now(),
                timeout,
            }),
        };
        drop(st);
        if changed {
            *self.drain_progress() = Progress::default();
            // Wakes the announce policy now rather than at its next tick.
            self.changed.send_modify(|n| *n = n.wrapping_add(1));
            if on {
                info!("control: node drained by the operator (BGP: {mode}); serving what still arrives");
            } else {
                info!("control: node drain ended by the operator; announcements restored");
            }
        }
        changed
    }

    pub(crate) fn drain_progress(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.drain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Samples the drain's progress every second while the node runs.
    pub(crate) fn watch_drain(self: Arc<Self>) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = (Instant::now(), packets(&self));
            loop {
                tick.tick().await;
                let draining = self.state.lock().await.drain.is_some();
                let now = (Instant::now(), packets(&self));
                let secs = now.0.saturating_duration_since(last.0).as_secs_f64();
                let pps = if secs > 0.0 {
                    now.1.saturating_sub(last.1) as f64 / secs
                } else {
                    0.0
                };
                last = now;
                if !draining {
                    continue;
                }
                let window = u64::try_from(SAMPLE.as_millis()).unwrap_or(u64::MAX);
                let (summaries, missing) = self.runtime.query_active(window).await;
                let connections = summaries.iter().filter_map(|s| s.active).sum();
                let mut p = self.drain_progress();
                p.sampled = true;
                p.connections = connections;
                p.flow_entries = summaries.iter().map(|s| s.total).sum();
                p.pps = pps;
                p.missing = missing;
                if connections == 0 && pps == 0.0 {
                    p.quiet_since.get_or_insert(now.0);
                } else {
                    p.quiet_since = None;
                }
            }
        })
    }
}

/// What the speaker does to the routes of a drained node.
pub(crate) fn routes(st: &super::NodeState) -> Option<DrainRoutes> {
    st.drain?;
    st.config.bgp.as_ref().map(|b| b.drain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_only_after_a_quiet_spell_that_was_measured() {
        let since = Instant::now();
        let d = Drain {
            since,
            timeout: Some(Duration::from_secs(10)),
        };
        let later = since + Duration::from_secs(4);
        let unsampled = Progress {
            quiet_since: Some(since),
            ..Progress::default()
        };
        assert!(!unsampled.reply(&d, later).empty, "nothing measured yet");
        let quiet = Progress {
            sampled: true,
            quiet_since: Some(since + Duration::from_secs(1)),
            ..Progress::default()
        };
        let r = quiet.reply(&d, later);
        assert!(r.empty && r.empty_for_s >= 2.0, "{r:?}");
        assert_eq!(r.timeout_left_s, Some(6.0));
        let busy = Progress {
            sampled: true,
            connections: 3,
            pps: 40.0,
            ..Progress::default()
        };
        let r = busy.reply(&d, later);
        assert!(!r.empty && r.connections == 3, "{r:?}");
        let overdue = busy.reply(&d, since + Duration::from_secs(30));
        assert_eq!(overdue.timeout_left_s, Some(0.0));
    }
}
