//! Prometheus text exposition on `[control] metrics`: a tiny HTTP/1.0
//! responder for `GET /metrics`. Per-core counters are summed at scrape time.
//!
//! Each part of the node contributes a section through [`SECTIONS`]; a part
//! that gains metrics (VRRP, BGP) adds its function there. The packet
//! counters come from the same observation as `vipctl stats`: the sections
//! read that reply, so both always agree.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use log::{debug, info};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::node::Node;
use crate::node::NodeState;
use ctlproto::reply;
use dataplane::path::query::{BackendStats, FlowSummary};

/// Scrapes served at once; more wait for a slot.
const MAX_SCRAPERS: usize = 16;
/// A scraper must send its request within this time.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REQUEST: usize = 8192;

/// What a section sees: the node, its state (locked), the workers' flow
/// counts for the backends in that state, and the packet counters as
/// `vipctl stats` reports them.
pub(crate) struct Scrape<'a> {
    pub node: &'a Node,
    pub state: &'a NodeState,
    pub flows: &'a [FlowSummary],
    pub stats: &'a reply::Stats,
}

/// The metric sections, in output order.
const SECTIONS: &[fn(&Scrape, &mut Exposition)] = &[
    dataplane_counters,
    xdp_counters,
    socket_counters,
    flow_counts,
    node_drain,
    backend_health,
    vrrp_instances,
    bgp_sessions,
    bfd_sessions,
    connection_sync,
];

/// Prometheus text format, version 0.0.4.
#[derive(Default)]
pub(crate) struct Exposition {
    text: String,
}

impl Exposition {
    /// Starts a metric family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample; label values are escaped as the format requires.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.text, "{k}=\"{v}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    pub fn into_text(self) -> String {
        self.text
    }
}

/// A counter family read off the `stats` reply: its name, help, and value.
type Counter<T> = (&'static str, &'static str, fn(&T) -> u64);

/// The workers' traffic counters, summed over workers.
const WORKER_COUNTERS: [Counter<reply::CoreStats>; 4] = [
    (
        "vipd_rx_packets_total",
        "Frames received by the workers.",
        |c| c.rx_packets,
    ),
    (
        "vipd_rx_bytes_total",
        "Bytes received by the workers.",
        |c| c.rx_bytes,
    ),
    (
        "vipd_tx_packets_total",
        "Frames sent by the workers.",
        |c| c.tx_packets,
    ),
    ("vipd_tx_bytes_total", "Bytes sent by the workers.", |c| {
        c.tx_bytes
    }),
];

/// The AF_XDP sockets' counters that are a family of their own.
const SOCKET_COUNTERS: [Counter<reply::SocketStats>; 2] = [
    (
        "vipd_afxdp_fill_ring_empty_total",
        "Times the kernel found a worker's fill ring empty.",
        |k| k.fill_ring_empty,
    ),
    (
        "vipd_afxdp_invalid_descriptors_total",
        "Ring descriptors the kernel rejected (an engine fault).",
        |k| k.invalid_descs,
    ),
];

fn dataplane_counters(s: &Scrape, out: &mut Exposition) {
    for (name, help, read) in WORKER_COUNTERS {
        out.family(name, "counter", help);
        out.sample(
            name,
            &[],
            s.stats.cores.iter().map(read).sum::<u64>() as f64,
        );
    }
    for (name, help, by_reason) in [
        (
            "vipd_drops_total",
            "Frames dropped by the workers, by reason.",
            &s.stats.drops,
        ),
        (
            "vipd_ignored_total",
            "Frames the workers let go without an answer, as none is needed (other hosts' ARP announcements), by reason.",
            &s.stats.ignored,
        ),
    ] {
        out.family(name, "counter", help);
        for (reason, n) in by_reason {
            out.sample(name, &[("reason", reason)], *n as f64);
        }
    }
    out.family(
        "vipd_arp_claims_total",
        "counter",
        "ARP replies or announcements from another MAC for an address this node owns; each was answered with a gratuitous ARP.",
    );
    out.sample("vipd_arp_claims_total", &[], s.stats.arp_claims as f64);
}

fn xdp_counters(s: &Scrape, out: &mut Exposition) {
    let reply::XdpStats::Counters {
        reply_keys_refused,
        by_decision,
    } = &s.stats.xdp
    else {
        return;
    };
    out.family(
        "vipd_xdp_packets_total",
        "counter",
        "Frames seen by the XDP program, by decision (fast_forwarded: packets of offloaded connections it forwarded itself).",
    );
    for (decision, v) in by_decision {
        out.sample(
            "vipd_xdp_packets_total",
            &[("decision", decision)],
            *v as f64,
        );
    }
    let refused = "vipd_xdp_reply_keys_refused_total";
    out.family(
        refused,
        "counter",
        "Connection keys the XDP program's flow map refused (full or out of memory): a NAT connection's replies went to the kernel, an offloaded connection stayed in the workers.",
    );
    out.sample(refused, &[], *reply_keys_refused as f64);
    let name = "vipd_interface_dropped_total";
    out.family(
        name,
        "counter",
        "Frames the kernel counted as lost on a dataplane interface, by direction and kind (a veth peer or NIC refusing a transmitted frame shows as tx dropped).",
    );
    for link in &s.stats.interfaces {
        let reply::LinkStats::Counters {
            name: iface,
            rx_errors,
            rx_dropped,
            tx_errors,
            tx_dropped,
        } = link
        else {
            continue;
        };
        for (direction, kind, v) in [
            ("rx", "dropped", rx_dropped),
            ("rx", "errors", rx_errors),
            ("tx", "dropped", tx_dropped),
            ("tx", "errors", tx_errors),
        ] {
            out.sample(
                name,
                &[
                    ("interface", iface),
                    ("direction", direction),
                    ("kind", kind),
                ],
                *v as f64,
            );
        }
    }
}

fn socket_counters(s: &Scrape, out: &mut Exposition) {
    let k = &s.stats.afxdp;
    out.family(
        "vipd_afxdp_rx_lost_total",
        "counter",
        "Frames the XDP program steered to a worker that the kernel dropped before its AF_XDP socket, by cause (ring_full: the worker fell behind; no_frame: no free frame in the fill ring, or too large).",
    );
    for (cause, v) in [("ring_full", k.rx_ring_full), ("no_frame", k.rx_dropped)] {
        out.sample("vipd_afxdp_rx_lost_total", &[("cause", cause)], v as f64);
    }
    for (name, help, read) in SOCKET_COUNTERS {
        out.family(name, "counter", help);
        out.sample(name, &[], read(k) as f64);
    }
}

fn flow_counts(s: &Scrape, out: &mut Exposition) {
    out.family(
        "vipd_flows",
        "gauge",
        "Connections in each worker's flow table.",
    );
    for f in s.flows {
        out.sample(
            "vipd_flows",
            &[("worker", &f.worker.to_string())],
            f.total as f64,
        );
    }
    out.family(
        "vipd_backend_connections",
        "gauge",
        "Connections per backend, summed over workers, by state (active = established).",
    );
    let ids: Vec<u32> = s.state.backends().map(|r| r.id).collect();
    let totals = crate::node::Runtime::backend_totals(s.flows, s.node.steering.as_deref(), &ids);
    let total = |id: u32| totals.get(&id).copied().unwrap_or_default();
    for r in s.state.backends() {
        let svc = &s.state.config.services[r.service];
        let addr = svc.backends[r.backend].address.to_string();
        let t = total(r.id);
        for (state, v) in [("active", t.active), ("inactive", t.inactive)] {
            out.sample(
                "vipd_backend_connections",
                &[("service", &svc.name), ("backend", &addr), ("state", state)],
                f64::from(v),
            );
        }
    }
    for (name, help, of) in [
        (
            "packets",
            "Packets forwarded to and from the backend, by the workers and the XDP fast path.",
            (|t: &BackendStats| t.packets) as fn(&BackendStats) -> u64,
        ),
        (
            "bytes",
            "Bytes (whole frames) forwarded to and from the backend, by the workers and the XDP fast path.",
            |t: &BackendStats| t.bytes,
        ),
    ] {
        let family = format!("vipd_backend_{name}_total");
        out.family(&family, "counter", help);
        for r in s.state.backends() {
            let svc = &s.state.config.services[r.service];
            let addr = svc.backends[r.backend].address.to_string();
            out.sample(
                &family,
                &[("service", &svc.name), ("backend", &addr)],
                of(&total(r.id)) as f64,
            );
        }
        let family = format!("vipd_service_{name}_total");
        out.family(&family, "counter", &help.replace("the backend", "the service's backends"));
        for (i, svc) in s.state.config.services.iter().enumerate() {
            let sum: u64 = s
                .state
                .backends()
                .filter(|r| r.service == i)
                .map(|r| of(&total(r.id)))
                .sum();
            out.sample(&family, &[("service", &svc.name)], sum as f64);
        }
    }
}

fn node_drain(s: &Scrape, out: &mut Exposition) {
    out.family(
        "vipd_node_draining",
        "gauge",
        "1 while the node is drained (vipctl node drain).",
    );
    out.sample(
        "vipd_node_draining",
        &[],
        f64::from(u8::from(s.state.drain.is_some())),
    );
    out.family(
        "vipd_picked_up_total",
        "counter",
        "Connections picked up mid-stream: begun on another node, forwarded here by consistent hashing.",
    );
    let picked: u64 = s.flows.iter().map(|f| f.picked_up_total).sum();
    out.sample("vipd_picked_up_total", &[], picked as f64);
}

fn backend_health(s: &Scrape, out: &mut Exposition) {
    out.family(
        "vipd_backend_healthy",
        "gauge",
        "1 while the backend's health check passes.",
    );
    for r in s.state.backends() {
        let svc = &s.state.config.services[r.service];
        let addr = svc.backends[r.backend].address.to_string();
        let healthy = s.state.is_healthy(r.id);
        out.sample(
            "vipd_backend_healthy",
            &[("service", &svc.name), ("backend", &addr)],
            f64::from(u8::from(healthy)),
        );
    }
    out.family(
        "vipd_backend_weight",
        "gauge",
        "The backend's scheduling weight (0 while drained).",
    );
    for r in s.state.backends() {
        let svc = &s.state.config.services[r.service];
        let b = &svc.backends[r.backend];
        out.sample(
            "vipd_backend_weight",
            &[("service", &svc.name), ("backend", &b.address.to_string())],
            f64::from(b.weight),
        );
    }
}

/// A per-instance VRRP family: name, help, and its value for one instance.
type VrrpSeries = (
    &'static str,
    &'static str,
    fn(&crate::vrrp::runtime::Status) -> f64,
);

fn vrrp_instances(s: &Scrape, out: &mut Exposition) {
    use crate::vrrp::State;
    const STATES: [State; 4] = [
        State::Initialize,
        State::Backup,
        State::Master,
        State::Fault,
    ];
    let all: Vec<_> = s
        .state
        .vrrp
        .iter()
        .map(|c| c.status.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .collect();
    out.family(
        "vipd_vrrp_state",
        "gauge",
        "1 for the VRRP instance's current state, 0 for the others.",
    );
    for i in &all {
        for st in STATES {
            out.sample(
                "vipd_vrrp_state",
                &[("instance", &i.name), ("state", st.as_str())],
                f64::from(u8::from(i.state == st)),
            );
        }
    }
    let gauges: [VrrpSeries; 2] = [
        (
            "vipd_vrrp_priority",
            "Effective priority: the base plus the tracking weights.",
            |i| f64::from(i.priority),
        ),
        (
            "vipd_vrrp_held",
            "1 while an operator handover holds the instance down.",
            |i| f64::from(u8::from(i.held)),
        ),
    ];
    let counters: [VrrpSeries; 5] = [
        (
            "vipd_vrrp_transitions_total",
            "State changes of the VRRP instance.",
            |i| i.shell.transitions as f64,
        ),
        (
            "vipd_vrrp_became_master_total",
            "Times the VRRP instance became master.",
            |i| i.stats.became_master as f64,
        ),
        (
            "vipd_vrrp_adverts_received_total",
            "Valid adverts received from peers.",
            |i| i.stats.adverts_received as f64,
        ),
        (
            "vipd_vrrp_adverts_sent_total",
            "Adverts sent, priority-0 resignations included.",
            |i| i.stats.adverts_sent as f64,
        ),
        (
            "vipd_vrrp_priority_zero_received_total",
            "Priority-0 adverts received: a master resigned.",
            |i| i.stats.priority_zero_received as f64,
        ),
    ];
    for (name, help, value) in gauges {
        out.family(name, "gauge", help);
        for i in &all {
            out.sample(name, &[("instance", &i.name)], value(i));
        }
    }
    for (name, help, value) in counters {
        out.family(name, "counter", help);
        for i in &all {
            out.sample(name, &[("instance", &i.name)], value(i));
        }
    }
    let name = "vipd_vrrp_adverts_rejected_total";
    out.family(
        name,
        "counter",
        "Received packets the VRRP instance dropped, by reason.",
    );
    for i in &all {
        for (reason, n) in rejections(&i.stats) {
            out.sample(name, &[("instance", &i.name), ("reason", reason)], n as f64);
        }
    }
}

/// Every rejection counter of an instance with its reason label.
fn rejections(s: &::vrrp::InstanceStats) -> [(&'static str, u64); 17] {
    [
        ("protocol", s.protocol_errors),
        ("family", s.family_errors),
        ("ttl", s.ttl_errors),
        ("source", s.source_errors),
        ("destination", s.destination_errors),
        ("false_owner", s.false_owner),
        ("version", s.version_errors),
        ("type", s.type_errors),
        ("truncated", s.truncated),
        ("length", s.length_errors),
        ("v2_over_ipv6", s.v2_over_ipv6),
        ("checksum", s.checksum_errors),
        ("other_vrid", s.other_vrid),
        ("own_advert", s.own_adverts),
        ("unknown_peer", s.unknown_peer),
        ("auth", s.auth_errors),
        ("interval", s.interval_mismatch),
    ]
}

fn bgp_sessions(s: &Scrape, out: &mut Exposition) {
    let b = s.node.bgp.snapshot();
    if b.router_id.is_none() {
        return;
    }
    let peers: Vec<(String, &crate::speaker::PeerStatus)> =
        b.peers.iter().map(|p| (p.address.to_string(), p)).collect();
    out.family(
        "vipd_bgp_session_established",
        "gauge",
        "1 while the BGP session with the peer is Established.",
    );
    for (addr, p) in &peers {
        out.sample(
            "vipd_bgp_session_established",
            &[("peer", addr)],
            f64::from(u8::from(p.state == bgp::State::Established.to_string())),
        );
    }
    out.family(
        "vipd_bgp_session_state",
        "gauge",
        "1, labelled with the BGP session's current FSM state.",
    );
    for (addr, p) in &peers {
        out.sample(
            "vipd_bgp_session_state",
            &[("peer", addr), ("state", &p.state)],
            1.0,
        );
    }
    out.family(
        "vipd_bgp_prefixes_received",
        "gauge",
        "Prefixes the peer currently announces to this node.",
    );
    for (addr, p) in &peers {
        out.sample(
            "vipd_bgp_prefixes_received",
            &[("peer", addr)],
            p.received as f64,
        );
    }
    out.family(
        "vipd_bgp_prefixes_announced",
        "gauge",
        "Prefixes this node advertises to the peer.",
    );
    for (addr, p) in &peers {
        out.sample(
            "vipd_bgp_prefixes_announced",
            &[("peer", addr)],
            p.advertised.len() as f64,
        );
    }
    out.family(
        "vipd_bgp_established_total",
        "counter",
        "Times the BGP session with the peer reached Established.",
    );
    for (addr, p) in &peers {
        out.sample(
            "vipd_bgp_established_total",
            &[("peer", addr)],
            p.established_count as f64,
        );
    }
    out.family(
        "vipd_bgp_family_negotiated",
        "gauge",
        "1 for each address family the current session with the peer carries.",
    );
    for (addr, p) in &peers {
        for f in &p.families {
            out.sample(
                "vipd_bgp_family_negotiated",
                &[("peer", addr), ("family", f)],
                1.0,
            );
        }
    }
    out.family(
        "vipd_bgp_prefix_withdrawn",
        "gauge",
        "1 while the operator withdrew the configured prefix (vipctl bgp withdraw).",
    );
    for p in &b.configured {
        out.sample(
            "vipd_bgp_prefix_withdrawn",
            &[("prefix", p)],
            f64::from(u8::from(b.withdrawn.contains(p))),
        );
    }
}

fn bfd_sessions(s: &Scrape, out: &mut Exposition) {
    let b = s.node.bgp.snapshot();
    let peers: Vec<(String, &crate::speaker::BfdStatus)> = b
        .peers
        .iter()
        .filter_map(|p| Some((p.address.to_string(), p.bfd.as_ref()?)))
        .collect();
    if peers.is_empty() {
        return;
    }
    out.family(
        "vipd_bfd_session_up",
        "gauge",
        "1 while the BFD session with the BGP peer is Up.",
    );
    for (addr, f) in &peers {
        out.sample(
            "vipd_bfd_session_up",
            &[("peer", addr)],
            f64::from(u8::from(f.state == bfd::State::Up)),
        );
    }
    type Counter = fn(&bfd::SessionStats) -> u64;
    let counters: [(&str, &str, Counter); 4] = [
        (
            "vipd_bfd_packets_received_total",
            "BFD control packets accepted from the peer.",
            |c| c.packets_in,
        ),
        (
            "vipd_bfd_packets_sent_total",
            "BFD control packets sent to the peer.",
            |c| c.packets_out,
        ),
        (
            "vipd_bfd_up_total",
            "Times the BFD session with the peer came Up.",
            |c| c.up_count,
        ),
        (
            "vipd_bfd_failures_total",
            "Times the BFD session went from Up to Down other than by the peer's AdminDown; each closed the BGP session.",
            |c| c.failures,
        ),
    ];
    for (name, help, value) in counters {
        out.family(name, "counter", help);
        for (addr, f) in &peers {
            out.sample(name, &[("peer", addr)], value(&f.stats) as f64);
        }
    }
    out.family(
        "vipd_bfd_packets_dropped_total",
        "counter",
        "BFD packets from the peer discarded, by reason.",
    );
    for (addr, f) in &peers {
        for (reason, n) in f.stats.dropped_by_reason() {
            out.sample(
                "vipd_bfd_packets_dropped_total",
                &[("peer", addr), ("reason", reason)],
                n as f64,
            );
        }
    }
    out.family(
        "vipd_bfd_unmatched_packets_total",
        "counter",
        "BFD packets from addresses no BFD session is configured for.",
    );
    out.sample(
        "vipd_bfd_unmatched_packets_total",
        &[],
        b.bfd_unmatched as f64,
    );
}

fn connection_sync(s: &Scrape, out: &mut Exposition) {
    let Some(st) = s.node.sync.as_ref() else {
        return;
    };
    let st = st.lock().unwrap_or_else(|e| e.into_inner()).clone();
    out.family(
        "vipd_sync_holding",
        "gauge",
        "1 while this starting node waits for its sync peers' connections before it may take mastership.",
    );
    out.sample(
        "vipd_sync_holding",
        &[],
        f64::from(u8::from(st.state == "holding")),
    );
    out.family(
        "vipd_sync_peer_up",
        "gauge",
        "1 while the sync peer is heard.",
    );
    out.family(
        "vipd_sync_peer_lag_seconds",
        "gauge",
        "Sync lag from the peer (its send time to our receive time), by quantile over recent messages.",
    );
    for p in &st.peers {
        let node = p.node_id.to_string();
        out.sample(
            "vipd_sync_peer_up",
            &[("peer", &node), ("address", &p.address)],
            f64::from(u8::from(p.up)),
        );
        for (q, us) in [("0.5", p.lag_p50_us), ("0.99", p.lag_p99_us)] {
            out.sample(
                "vipd_sync_peer_lag_seconds",
                &[("peer", &node), ("quantile", q)],
                us as f64 / 1e6,
            );
        }
    }
    let c = &st.counters;
    type Counter = fn(&reply::SyncCounters) -> u64;
    let counters: [(&str, &str, Counter); 11] = [
        ("vipd_sync_messages_sent_total", "Sync messages sent.", |c| c.messages_sent),
        ("vipd_sync_records_sent_total", "Connection records sent to the peers.", |c| c.records_sent),
        ("vipd_sync_messages_received_total", "Sync messages accepted from the peers.", |c| c.messages_received),
        ("vipd_sync_records_received_total", "Connection records received from the peers.", |c| c.records_received),
        ("vipd_sync_records_sent_v6_total", "IPv6 connection records sent to the peers (also in vipd_sync_records_sent_total).", |c| c.records_sent_v6),
        ("vipd_sync_records_received_v6_total", "IPv6 connection records received from the peers (also in vipd_sync_records_received_total).", |c| c.records_received_v6),
        ("vipd_sync_records_applied_total", "Peer records the workers applied.", |c| c.applied),
        ("vipd_sync_activated_total", "Connections learned from a peer that carried their first packet here (taken over).", |c| c.activated),
        ("vipd_sync_conflicts_total", "Peer records refused because this node serves the connection from another origin (split brain).", |c| c.conflicts),
        ("vipd_sync_records_lost_total", "Records lost to a full queue between the workers and the sync task.", |c| c.overflow),
        ("vipd_sync_dumps_served_total", "Full connection dumps sent to starting peers.", |c| c.dumps_served),
    ];
    for (name, help, value) in counters {
        out.family(name, "counter", help);
        out.sample(name, &[], value(c) as f64);
    }
    out.family(
        "vipd_sync_rejected_total",
        "counter",
        "Sync datagrams refused, by reason; none changed any state.",
    );
    let r = &c.rejected;
    for (reason, n) in [
        ("truncated", r.truncated),
        ("bad_magic", r.bad_magic),
        ("bad_version", r.bad_version),
        ("unknown_type", r.unknown_type),
        ("bad_length", r.bad_length),
        ("bad_auth", r.bad_auth),
        ("replayed", r.replayed),
        ("stranger", r.stranger),
        ("misdirected", r.misdirected),
        ("bad_record", r.bad_record),
    ] {
        out.sample("vipd_sync_rejected_total", &[("reason", reason)], n as f64);
    }
    out.family(
        "vipd_sync_not_applied_total",
        "counter",
        "Peer records the workers could not apply, by reason.",
    );
    let n = &c.not_applied;
    for (reason, v) in [
        ("bad_state", n.bad_state),
        ("no_service", n.no_service),
        ("no_backend", n.no_backend),
        ("backend_mac_unknown", n.unresolved),
        ("snat_unknown", n.snat_unknown),
        ("wrong_worker", n.wrong_worker),
        ("table_full", n.table_full),
    ] {
        out.sample(
            "vipd_sync_not_applied_total",
            &[("reason", reason)],
            v as f64,
        );
    }
}

/// Renders every section.
pub async fn render(node: &Node) -> String {
    let ids: Vec<u32> = {
        let st = node.state.lock().await;
        st.backends().map(|b| b.id).collect()
    };
    let (flows, _) = node.runtime.query_flows(ids, None, 0).await;
    let stats = crate::ctl::views::stats(node);
    let st = node.state.lock().await;
    let scrape = Scrape {
        node,
        state: &st,
        flows: &flows,
        stats: &stats,
    };
    let mut out = Exposition::default();
    for section in SECTIONS {
        section(&scrape, &mut out);
    }
    out.into_text()
}

/// Listens on `[control] metrics` if it is set.
pub async fn serve(node: Arc<Node>) -> anyhow::Result<Option<JoinHandle<()>>> {
    let addr = node.state.lock().await.config.control.metrics;
    let Some(addr) = addr else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("[control] metrics: cannot listen on {addr}"))?;
    info!("metrics on http://{addr}/metrics");
    let slots = Arc::new(Semaphore::new(MAX_SCRAPERS));
    Ok(Some(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let node = node.clone();
            tokio::spawn(async move {
                if let Err(e) = respond(&node, stream).await {
                    debug!("metrics client: {e}");
                }
                drop(permit);
            });
        }
    })))
}

async fn respond(node: &Node, mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        Ok::<_, std::io::Error>(())
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
    let (status, body) = if line.starts_with(b"GET /metrics ") || line == b"GET /metrics" {
        ("200 OK", render(node).await)
    } else {
        ("404 Not Found", "only GET /metrics is served here\n".into())
    };
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
