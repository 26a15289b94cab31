//! What `vipctl sync` and the metrics show of connection sync.

use std::sync::atomic::Ordering;

use connsync::{DumpState, Released, Session, State};
use ctlproto::reply;
use dataplane::path::sync::SyncLink;

use super::Local;
use crate::config::Sync;

/// Where messages for every peer go, for logs and status.
pub(super) fn destination(cfg: &Sync) -> String {
    if cfg.peers.is_empty() {
        format!("multicast {}:{}", cfg.group, cfg.port)
    } else {
        let peers: Vec<String> = cfg.peers.iter().map(|p| p.to_string()).collect();
        format!("unicast to {} port {}", peers.join(", "), cfg.port)
    }
}

/// The status before the task has run.
pub(super) fn initial(cfg: &Sync, local: &Local) -> reply::SyncNode {
    reply::SyncNode {
        node_id: local.node_id,
        interface: cfg.interface.clone(),
        destination: destination(cfg),
        state: "holding".to_string(),
        ..Default::default()
    }
}

/// The parts of the status the running session and workers give.
pub(super) struct View {
    state: String,
    ready_reason: Option<String>,
    peers: Vec<reply::SyncPeer>,
    counters: reply::SyncCounters,
}

/// `now_ms` is the session's clock, which peers' `last_heard_ms` are on.
pub(super) fn view(
    session: &Session,
    now_ms: u64,
    links: &[SyncLink],
    delivery_overflow: u64,
) -> View {
    let (state, ready_reason) = match session.state() {
        State::Idle | State::Holding { .. } => ("holding", None),
        State::Ready { reason } => (
            "ready",
            Some(match reason {
                Released::Dumped => "the peers' connections were applied",
                Released::Deadline => "the dump deadline passed",
            }),
        ),
    };
    let peers = session
        .peers()
        .map(|p| {
            let (dump, dump_records) = match p.dump {
                DumpState::NotAsked => ("not asked".to_string(), 0),
                DumpState::InProgress { received } => ("in progress".to_string(), received),
                DumpState::Done {
                    received,
                    announced,
                } => (format!("done ({received} of {announced})"), received),
            };
            reply::SyncPeer {
                node_id: p.node,
                address: p.addr.to_string(),
                up: p.up,
                last_heard_ms_ago: (p.last_heard_ms > 0)
                    .then(|| now_ms.saturating_sub(p.last_heard_ms)),
                restarts: p.restarts,
                records_received: p.records_received,
                lag_last_us: p.last_lag_us,
                lag_p50_us: p.lag_p50_us().unwrap_or(0),
                lag_p99_us: p.lag_p99_us().unwrap_or(0),
                dump,
                dump_records,
            }
        })
        .collect();
    let s = session.stats();
    let r = &s.rejected;
    let mut c = reply::SyncCounters {
        messages_sent: s.sent_messages,
        records_sent: s.sent_records,
        records_sent_v6: s.sent_records6,
        messages_received: s.received_messages,
        records_received: s.received_records,
        records_received_v6: s.received_records6,
        pending: session.pending() as u64,
        dumps_served: s.dumps_served,
        rejected: reply::SyncRejected {
            truncated: r.truncated,
            bad_magic: r.bad_magic,
            bad_version: r.bad_version,
            unknown_type: r.unknown_type,
            bad_length: r.bad_length,
            bad_auth: r.bad_auth,
            replayed: r.replayed,
            stranger: r.stranger,
            misdirected: r.misdirected,
            bad_record: r.bad_record,
            own: s.own,
        },
        overflow: delivery_overflow,
        ..Default::default()
    };
    for l in links {
        let w = l.counters();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        c.applied += get(&w.applied);
        c.deleted += get(&w.deleted);
        c.activated += get(&w.activated);
        c.conflicts += get(&w.conflicts);
        c.overflow += get(&w.overflow);
        let n = &mut c.not_applied;
        n.bad_state += get(&w.bad_state);
        n.no_service += get(&w.no_service);
        n.no_backend += get(&w.no_backend);
        n.unresolved += get(&w.unresolved);
        n.snat_unknown += get(&w.snat_unknown);
        n.wrong_worker += get(&w.wrong_worker);
        n.table_full += get(&w.table_full);
    }
    View {
        state: state.to_string(),
        ready_reason: ready_reason.map(str::to_string),
        peers,
        counters: c,
    }
}

pub(super) fn update(st: &mut reply::SyncNode, v: View) {
    if st.ready_unix_ms.is_none() && v.state == "ready" {
        st.ready_unix_ms = Some(super::unix_us() / 1000);
    }
    st.state = v.state;
    st.ready_reason = v.ready_reason;
    st.peers = v.peers;
    st.counters = v.counters;
}
