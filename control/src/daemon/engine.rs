//! The AF_XDP engine as the node runs it: the packet path as its handler,
//! and the engine's and workers' settings from the config.

use std::time::Duration;

use dataplane::flow::Timeouts;
use dataplane::path::{Worker, WorkerConfig};
use dataplane::verdict::{PortId, Verdict};
use engine::{EngineConfig, Handler};

use crate::config::Config;

/// Adapts the pure packet path to the engine.
pub(super) struct PathHandler(pub(super) Worker);

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
    fn housekeeping(&mut self, now_ms: u64, seen: &mut dyn dataplane::flow::FastSeenAll) {
        self.0.housekeeping(now_ms, seen);
    }
    fn steer_changes(&mut self, out: &mut Vec<dataplane::flow::SteerChange>) {
        self.0.take_steer_changes(out);
    }
    fn steer_changes6(
        &mut self,
        out: &mut Vec<dataplane::flow::SteerChange<dataplane::flow::Ip6>>,
    ) {
        self.0.take_steer_changes6(out);
    }
}

pub(super) fn engine_config(cfg: &Config) -> EngineConfig {
    EngineConfig {
        interfaces: cfg.dataplane.interfaces.clone(),
        queues: cfg.dataplane.queues,
        cores: cfg.dataplane.cores.clone(),
        xdp_mode: cfg.dataplane.xdp_mode,
        frames_per_worker: cfg.dataplane.frames_per_worker,
        batch: 64,
        // Both keys of every connection, when all are offloaded.
        reply_keys: engine::connection_keys(cfg.dataplane.flow_capacity, cfg.dataplane.queues),
        reply_keys6: engine::connection_keys(
            dataplane::path::flows6_capacity(cfg.dataplane.flow_capacity),
            cfg.dataplane.queues,
        ),
    }
}

pub(super) fn worker_config(cfg: &Config) -> WorkerConfig {
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
        sync_origin: None,
    }
}
