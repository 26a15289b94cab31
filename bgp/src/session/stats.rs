//! Counters and negotiated parameters, for status displays and metrics.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::prefix::Family;

/// What the OPEN exchange settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_as: u32,
    pub peer_router_id: Ipv4Addr,
    /// Seconds; 0 means no hold timer and no keepalives.
    pub hold_time: u16,
    pub keepalive: Option<Duration>,
    pub four_octet_as: bool,
    pub route_refresh: bool,
    pub peer_graceful_restart: bool,
    /// Families both sides offered: only these are sent and accepted.
    pub families: Vec<Family>,
    /// Families the peer offered (IPv4 unicast alone when it sent no multiprotocol capability).
    pub peer_families: Vec<Family>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub messages_in: u64,
    pub messages_out: u64,
    pub updates_in: u64,
    pub updates_out: u64,
    pub keepalives_in: u64,
    pub keepalives_out: u64,
    pub notifications_in: u64,
    pub notifications_out: u64,
    /// UPDATEs handled as withdraw or with attributes dropped (RFC 7606).
    pub treat_as_withdraw: u64,
    pub attributes_discarded: u64,
    pub prefixes_received_v4: usize,
    pub prefixes_received_v6: usize,
    pub prefixes_advertised: usize,
    /// How often the session reached Established.
    pub established_count: u64,
    pub established_since: Option<Instant>,
    /// Why the session last went down or failed to come up.
    pub last_error: Option<String>,
}
