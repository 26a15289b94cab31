//! Replies: the envelope every answer comes in, and the result of each
//! command. Field names are the wire format; scripts read them through
//! `vipctl --json`. A result must have every field its type names (only
//! optional ones may be absent); fields the type does not know are ignored,
//! so a newer vipd may add some.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::VERSION;

/// The answer to one request: `result` when `ok`, `error` otherwise.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub v: u32,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    /// A successful reply carrying `result`.
    pub fn ok(result: &impl Serialize) -> Self {
        match serde_json::to_value(result) {
            Ok(result) => Reply {
                v: VERSION,
                ok: true,
                result: Some(result),
                error: None,
            },
            Err(e) => Reply::err(format!("vipd could not encode its reply: {e}")),
        }
    }

    pub fn err(msg: impl Into<String>) -> Self {
        Reply {
            v: VERSION,
            ok: false,
            result: None,
            error: Some(msg.into()),
        }
    }
}

/// What `status` and `services` both say of a service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceSummary {
    pub name: String,
    pub vip: String,
    pub port: u16,
    pub owned: bool,
    /// Backends configured.
    pub backends: usize,
    /// Of them, passing their health check.
    pub healthy: usize,
}

/// `status`: the node, its interfaces, services, and the VRRP and BGP
/// sections when those are configured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub node: String,
    pub site: String,
    pub uptime_s: u64,
    pub workers: usize,
    pub interfaces: Vec<InterfaceStatus>,
    pub services: Vec<ServiceSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vrrp: Option<Vec<VrrpSummary>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp: Option<BgpSummary>,
    /// Present while the node is drained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
    /// Present when `[sync]` is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncSummary>,
}

/// Connection sync in `status`: `vipctl sync` has the rest.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncSummary {
    /// `holding` or `ready`.
    pub state: String,
    pub peers_up: usize,
    pub peers: usize,
    /// The worst peer's recent p99 lag.
    pub lag_p99_us: u64,
}

/// `node`, `node_drain`, `node_undrain`: whether the node is drained and
/// how far it has emptied.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub node: String,
    pub draining: bool,
    /// `withdraw`, `med` or `prepend` (`[bgp] drain`); `none` without BGP.
    pub mode: String,
    /// Whether the request changed the drain state (always false for `node`).
    pub changed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A drain's progress, sampled every second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Drain {
    pub since_s: f64,
    /// Time left of the timeout the operator gave, if one was.
    pub timeout_left_s: Option<f64>,
    /// Connections that carried a packet in the last second.
    pub connections: usize,
    /// Entries in the flow tables, idle ones included (they expire).
    pub flow_entries: usize,
    /// Packets per second reaching the dataplane over the last second.
    pub pps: f64,
    /// No connection and no packet for `empty_for_s`.
    pub empty: bool,
    pub empty_for_s: f64,
    /// Workers whose flows are missing from the counts.
    pub workers_not_answering: Vec<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub xdp_mode: String,
    pub mtu: u32,
    pub fast_path_egress: bool,
    /// A problem the operator must fix (an MTU vipd cannot receive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VrrpSummary {
    pub name: String,
    pub state: String,
    pub priority: u8,
    pub held: bool,
    /// The last transition, `from -> to`.
    pub last: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BgpSummary {
    pub announced: Vec<String>,
    pub withdrawn: Vec<String>,
    pub peers: Vec<PeerSummary>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerSummary {
    pub peer: String,
    pub state: String,
}

/// `services`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Services {
    pub services: Vec<Service>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    #[serde(flatten)]
    pub summary: ServiceSummary,
    pub protocol: String,
    pub scheduler: String,
    pub forward: String,
    pub persistence_s: Option<u64>,
    pub sorry_server: Option<String>,
    pub snat: Vec<String>,
}

/// `backends`: every backend with its health and connection counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Backends {
    pub backends: Vec<Backend>,
    /// Workers whose counts are missing from the totals.
    pub workers_not_answering: Vec<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Backend {
    pub service: String,
    pub address: String,
    pub id: u32,
    pub weight: u32,
    pub enabled: bool,
    pub healthy: bool,
    /// Established connections.
    pub active: u32,
    pub inactive: u32,
    pub packets: u64,
    pub bytes: u64,
    pub last_check: Option<CheckOutcome>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub ok: bool,
    pub detail: String,
}

/// `flows`: per-worker table sizes, the busiest clients, and with a
/// `client` that client's flows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Flows {
    pub workers: Vec<WorkerFlows>,
    pub fast_path_flows: usize,
    pub total: usize,
    /// Live flows that began on another node and were picked up here.
    #[serde(default)]
    pub picked_up: usize,
    /// Connections picked up since the workers started.
    #[serde(default)]
    pub picked_up_total: u64,
    pub top_clients: Vec<ClientFlows>,
    /// A worker had more distinct clients than it lists.
    pub clients_partial: bool,
    pub client: Option<String>,
    pub matches: Vec<FlowMatch>,
    pub matches_partial: bool,
    pub workers_not_answering: Vec<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerFlows {
    pub worker: u16,
    pub flows: usize,
    pub fast_path_flows: usize,
    pub capacity: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientFlows {
    pub client: String,
    pub flows: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FlowMatch {
    pub worker: u16,
    pub client: String,
    pub destination: String,
    /// `tcp`, `udp` or the IP protocol number.
    pub protocol: String,
    pub service: Option<String>,
    pub backend: Option<String>,
    pub state: String,
    pub fast_path: bool,
    /// Since the XDP program last forwarded a packet of the flow.
    pub fast_path_idle_ms: Option<u64>,
    /// Began on another node; picked up here mid-stream.
    #[serde(default)]
    pub picked_up: bool,
    /// Learned from a peer node by connection sync and not yet forwarded
    /// here.
    #[serde(default)]
    pub learned: bool,
}

/// `stats`: the node's packet counters. `/metrics` exposes the same
/// observation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub cores: Vec<CoreStats>,
    /// Frames dropped, by reason, every reason listed.
    pub drops: BTreeMap<String, u64>,
    /// Frames let go without an answer as none is needed, by reason.
    pub ignored: BTreeMap<String, u64>,
    pub arp_claims: u64,
    pub xdp: XdpStats,
    pub afxdp: SocketStats,
    pub interfaces: Vec<LinkStats>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoreStats {
    pub worker: usize,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub handoff_out: u64,
    pub handoff_in: u64,
    /// Only the reasons this worker has dropped frames for.
    pub drops: BTreeMap<String, u64>,
}

/// The XDP program's counters, or why they could not be read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum XdpStats {
    Unavailable {
        error: String,
    },
    Counters {
        /// Connection keys the program's flow map refused.
        reply_keys_refused: u64,
        /// Frames by the program's decision.
        #[serde(flatten)]
        by_decision: BTreeMap<String, u64>,
    },
}

impl Default for XdpStats {
    fn default() -> Self {
        XdpStats::Counters {
            reply_keys_refused: 0,
            by_decision: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketStats {
    pub rx_ring_full: u64,
    pub rx_dropped: u64,
    pub fill_ring_empty: u64,
    pub invalid_descs: u64,
}

/// The kernel's counters of a dataplane interface, or why they could not
/// be read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LinkStats {
    Unavailable {
        name: String,
        error: String,
    },
    Counters {
        name: String,
        rx_errors: u64,
        rx_dropped: u64,
        tx_errors: u64,
        tx_dropped: u64,
    },
}

/// `vrrp`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vrrp {
    pub instances: Vec<VrrpInstance>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VrrpInstance {
    pub name: String,
    pub vrid: u8,
    pub version: u8,
    pub interface: String,
    /// Where adverts come from: an IPv4 address, or the interface's
    /// link-local IPv6 address.
    pub address: String,
    /// `IPv4` or `IPv6`, that of the VIPs.
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub vips: Vec<String>,
    pub state: String,
    pub priority: u8,
    pub base_priority: u8,
    pub track_weight: i32,
    pub track_fault: bool,
    pub held: bool,
    /// Recent transitions, oldest first.
    pub transitions: Vec<VrrpTransition>,
    pub counters: VrrpCounters,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VrrpTransition {
    pub unix_ms: u64,
    pub from: String,
    pub to: String,
    pub priority: u8,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpCounters {
    pub adverts_received: u64,
    pub adverts_sent: u64,
    pub priority_zero_received: u64,
    pub priority_zero_sent: u64,
    pub became_master: u64,
    pub released_master: u64,
    pub protocol_errors: u64,
    pub ttl_errors: u64,
    pub version_errors: u64,
    pub type_errors: u64,
    pub truncated: u64,
    pub checksum_errors: u64,
    pub other_vrid: u64,
    pub own_adverts: u64,
    pub unknown_peer: u64,
    pub auth_errors: u64,
    pub interval_mismatch: u64,
    pub address_mismatch: u64,
    pub malformed_ip: u64,
    pub false_owner: u64,
    /// Source or destination of the other address family.
    #[serde(default)]
    pub family_errors: u64,
    /// IPv6 source not link-local.
    #[serde(default)]
    pub source_errors: u64,
    /// IPv6 destination neither ff02::12 nor, with unicast peers, ours.
    #[serde(default)]
    pub destination_errors: u64,
    /// IPv6 advert longer than its address count says.
    #[serde(default)]
    pub length_errors: u64,
    /// VRRPv2 over IPv6.
    #[serde(default)]
    pub v2_over_ipv6: u64,
    pub send_errors: u64,
    pub receive_errors: u64,
    pub garps_sent: u64,
    pub notify_runs: u64,
}

/// `sync`: `{"configured": false}` on a node without `[sync]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sync {
    pub configured: bool,
    #[serde(flatten)]
    pub node: Option<SyncNode>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncNode {
    pub node_id: u16,
    pub interface: String,
    /// `unicast` to the listed peers, or the multicast group.
    pub destination: String,
    /// `holding` (a starting node waiting for its peers' connections) or
    /// `ready`.
    pub state: String,
    /// Why it is ready: the peers' dumps were applied, or the deadline
    /// passed.
    pub ready_reason: Option<String>,
    /// When it became ready (Unix ms).
    pub ready_unix_ms: Option<u64>,
    pub peers: Vec<SyncPeer>,
    pub counters: SyncCounters,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncPeer {
    pub node_id: u16,
    pub address: String,
    pub up: bool,
    pub last_heard_ms_ago: Option<u64>,
    pub restarts: u64,
    pub records_received: u64,
    /// Sender's clock at sending to this node's at receiving, of the last
    /// message and over recent ones.
    pub lag_last_us: u64,
    pub lag_p50_us: u64,
    pub lag_p99_us: u64,
    /// `not asked`, `in progress` or `done`, with the records received.
    pub dump: String,
    pub dump_records: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncCounters {
    pub messages_sent: u64,
    pub records_sent: u64,
    /// Of `records_sent`, IPv6 connections.
    #[serde(default)]
    pub records_sent_v6: u64,
    pub messages_received: u64,
    pub records_received: u64,
    /// Of `records_received`, IPv6 connections.
    #[serde(default)]
    pub records_received_v6: u64,
    /// Records waiting to be sent.
    pub pending: u64,
    pub dumps_served: u64,
    /// Messages refused, by reason: each changed nothing.
    pub rejected: SyncRejected,
    /// What the workers did with their peers' records.
    pub applied: u64,
    pub deleted: u64,
    /// Learned connections that carried their first packet here.
    pub activated: u64,
    /// Connections kept against a peer's (split brain).
    pub conflicts: u64,
    pub not_applied: SyncNotApplied,
    /// Records lost because a worker's or the sender's queue was full.
    pub overflow: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRejected {
    pub truncated: u64,
    pub bad_magic: u64,
    pub bad_version: u64,
    pub unknown_type: u64,
    pub bad_length: u64,
    /// Wrong key, or altered on the way.
    pub bad_auth: u64,
    pub replayed: u64,
    /// From an address that is no configured peer.
    pub stranger: u64,
    /// A dump meant for another node.
    pub misdirected: u64,
    pub bad_record: u64,
    /// Carrying this node's own id: our multicast looped back, or another
    /// node configured with the same `node_id`.
    pub own: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncNotApplied {
    pub bad_state: u64,
    pub no_service: u64,
    pub no_backend: u64,
    pub unresolved: u64,
    pub snat_unknown: u64,
    pub wrong_worker: u64,
    pub table_full: u64,
}

/// `bgp`: `{"configured": false}` on a node without `[bgp]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bgp {
    pub configured: bool,
    #[serde(flatten)]
    pub speaker: Option<BgpSpeaker>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BgpSpeaker {
    pub local_as: u32,
    pub router_id: String,
    /// Prefixes the announce policy wants advertised now.
    pub announced: Vec<String>,
    /// Prefixes the operator withdrew.
    pub withdrawn: Vec<String>,
    pub prefixes: Vec<BgpPrefix>,
    pub peers: Vec<BgpPeer>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BgpPrefix {
    pub prefix: String,
    pub announced: bool,
    /// `withdrawn` while the operator withdrew it, `-` otherwise.
    #[serde(rename = "override")]
    pub operator: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BgpPeer {
    pub address: String,
    pub remote_as: u32,
    pub state: String,
    pub uptime_s: Option<u64>,
    pub received: usize,
    pub advertised: Vec<String>,
    pub last_error: Option<String>,
    pub messages_in: u64,
    pub messages_out: u64,
    pub established_count: u64,
    /// Address families negotiated on the current session, e.g. `ipv6-unicast`.
    #[serde(default)]
    pub families: Vec<String>,
    /// Configured families the session does not carry, each as `FAMILY: why`;
    /// their routes are kept and sent once the peer offers the family.
    #[serde(default)]
    pub unsent_families: Vec<String>,
    /// The peer's BFD session, when its `[[bgp.peer]]` sets `bfd`.
    #[serde(default)]
    pub bfd: Option<BfdSession>,
}

/// A BFD session (RFC 5880) guarding one BGP peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BfdSession {
    /// AdminDown, Down, Init or Up.
    pub state: String,
    /// The state the peer last reported.
    pub remote_state: String,
    /// Why the session last went down, as RFC 5880 words it.
    pub diag: String,
    pub interval_ms: u64,
    pub multiplier: u8,
    /// How long the peer may stay silent before the session goes Down;
    /// 0 until it has been heard.
    pub detection_ms: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub dropped_malformed: u64,
    pub dropped_ttl: u64,
    pub dropped_auth: u64,
    pub dropped_discriminator: u64,
    pub up_count: u64,
    /// Times the session went from Up to Down other than by the peer's AdminDown.
    pub failures: u64,
}

/// `backend`: the edit made.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendChange {
    pub service: String,
    pub address: String,
    pub id: u32,
    pub change: String,
}

/// `reload`: what the new config changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reload {
    pub services_added: Vec<String>,
    pub services_removed: Vec<String>,
    pub backends_added: usize,
    pub backends_removed: usize,
    pub backends_kept: usize,
}

/// `bgp_withdraw` and `bgp_announce`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BgpOverride {
    pub prefix: String,
    pub withdrawn: bool,
    pub changed: bool,
    pub change: String,
}

/// `vrrp_handover`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Handover {
    pub instance: String,
    pub stepped_down: bool,
    pub peer_took_over: bool,
    pub new_master: Option<String>,
    pub switch_over_ms: Option<f64>,
    pub state: String,
    pub held: bool,
    /// With `back`: how mastership came back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub back: Option<HandoverBack>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HandoverBack {
    pub master_again: bool,
    pub after_ms: Option<f64>,
    pub state: String,
}

/// `vrrp_release`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub instance: String,
    pub was_held: bool,
    pub state: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bgp_without_a_speaker_is_configured_false_alone() {
        let off = serde_json::to_value(Bgp::default()).expect("encodes");
        assert_eq!(off, json!({"configured": false}));
        let read: Bgp = serde_json::from_value(off).expect("reads");
        assert_eq!(read, Bgp::default());
    }

    #[test]
    fn xdp_counters_and_their_absence_keep_one_flat_object() {
        let counters = XdpStats::Counters {
            reply_keys_refused: 2,
            by_decision: [("redirected".to_string(), 7)].into(),
        };
        let v = serde_json::to_value(&counters).expect("encodes");
        assert_eq!(v, json!({"redirected": 7, "reply_keys_refused": 2}));
        assert_eq!(serde_json::from_value::<XdpStats>(v).ok(), Some(counters));
        let none = json!({"error": "this node has no dataplane"});
        assert!(matches!(
            serde_json::from_value::<XdpStats>(none),
            Ok(XdpStats::Unavailable { .. })
        ));
    }

    #[test]
    fn a_reply_missing_a_field_is_refused_and_a_new_field_ignored() {
        let e = serde_json::from_value::<SocketStats>(json!({"rx_ring_full": 1}))
            .expect_err("fields missing");
        assert!(e.to_string().contains("rx_dropped"), "{e}");
        let v = json!({"instance": "vi", "was_held": true, "state": "master", "since": 1});
        let r: Release = serde_json::from_value(v).expect("extra field ignored");
        assert!(r.was_held);
    }

    #[test]
    fn optional_sections_are_left_out_when_absent() {
        let v = serde_json::to_value(Status::default()).expect("encodes");
        assert!(v.get("vrrp").is_none() && v.get("bgp").is_none(), "{v}");
        let v = serde_json::to_value(Sync::default()).expect("encodes");
        assert_eq!(v, json!({"configured": false}));
        let v = serde_json::to_value(Handover::default()).expect("encodes");
        assert!(v.get("back").is_none() && v.get("note").is_none(), "{v}");
        assert_eq!(v["new_master"], serde_json::Value::Null, "{v}");
    }
}
