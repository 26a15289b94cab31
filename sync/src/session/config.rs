//! A session's parameters and the checks that refuse unusable ones at
//! start rather than misbehaving later.

use std::fmt;
use std::net::IpAddr;

use crate::auth::Key;
use crate::message::{records_per_message, MAX_UDP_PAYLOAD};
use crate::{AddrFamily, SyncError};

#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Ours; unique within the site.
    pub node_id: u16,
    /// Shared by every node of the site, at least 16 bytes.
    pub key: Vec<u8>,
    /// Unicast mode: the other nodes' addresses; only they are heard.
    /// `None`: multicast mode, any source that authenticates is a peer.
    pub peers: Option<Vec<IpAddr>>,
    /// Largest datagram we send (UDP payload).
    pub max_datagram: usize,
    /// How long a local record may wait for more to fill its batch.
    pub flush_after_ms: u64,
    /// Silence after which we send a heartbeat.
    pub heartbeat_ms: u64,
    /// Silence after which a peer counts as down.
    pub peer_timeout_ms: u64,
    /// How long a starting node holds for the peers' dumps at most.
    pub dump_deadline_ms: u64,
    /// Distinct on every start and increasing (the daemon uses its wall
    /// clock in µs), so (epoch, seq) never repeats across restarts.
    pub epoch: u64,
}

impl Config {
    pub const DEFAULT_MAX_DATAGRAM: usize = 1400;
    pub const DEFAULT_FLUSH_AFTER_MS: u64 = 5;
    pub const DEFAULT_HEARTBEAT_MS: u64 = 1000;
    pub const DEFAULT_PEER_TIMEOUT_MS: u64 = 3000;
    pub const DEFAULT_DUMP_DEADLINE_MS: u64 = 10_000;

    /// The defaults for everything but identity, key, peers and epoch.
    pub fn new(
        node_id: u16,
        key: impl Into<Vec<u8>>,
        peers: Option<Vec<IpAddr>>,
        epoch: u64,
    ) -> Config {
        Config {
            node_id,
            key: key.into(),
            peers,
            max_datagram: Self::DEFAULT_MAX_DATAGRAM,
            flush_after_ms: Self::DEFAULT_FLUSH_AFTER_MS,
            heartbeat_ms: Self::DEFAULT_HEARTBEAT_MS,
            peer_timeout_ms: Self::DEFAULT_PEER_TIMEOUT_MS,
            dump_deadline_ms: Self::DEFAULT_DUMP_DEADLINE_MS,
            epoch,
        }
    }

    pub(crate) fn validate(&self) -> Result<Key, SyncError> {
        let key = Key::new(&self.key)?;
        // The larger record must fit, so either family can be sent.
        if records_per_message(self.max_datagram, AddrFamily::V6) == 0
            || self.max_datagram > MAX_UDP_PAYLOAD
        {
            return Err(SyncError::MaxDatagram(self.max_datagram));
        }
        if self.heartbeat_ms == 0 {
            return Err(SyncError::ZeroInterval("heartbeat_ms"));
        }
        if self.peer_timeout_ms <= self.heartbeat_ms {
            return Err(SyncError::PeerTimeout {
                timeout_ms: self.peer_timeout_ms,
                heartbeat_ms: self.heartbeat_ms,
            });
        }
        Ok(key)
    }
}

// Keeps the key out of logs.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("node_id", &self.node_id)
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field("peers", &self.peers)
            .field("max_datagram", &self.max_datagram)
            .field("flush_after_ms", &self.flush_after_ms)
            .field("heartbeat_ms", &self.heartbeat_ms)
            .field("peer_timeout_ms", &self.peer_timeout_ms)
            .field("dump_deadline_ms", &self.dump_deadline_ms)
            .field("epoch", &self.epoch)
            .finish()
    }
}
