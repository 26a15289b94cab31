//! Counters of a session, for the daemon's metrics and logs.

use crate::SyncError;

/// Datagrams refused, by reason. None of them changed any state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejected {
    /// Shorter than a header and a tag.
    pub truncated: u64,
    pub bad_magic: u64,
    pub bad_version: u64,
    pub unknown_type: u64,
    /// Length not what the type and record count say.
    pub bad_length: u64,
    /// Tag did not verify: wrong key, or altered on the way.
    pub bad_auth: u64,
    /// Seen already, older than the window, or from an older epoch.
    pub replayed: u64,
    /// Unicast mode: the source is not a configured peer. Also a new node
    /// id when the peer table is full of live peers.
    pub stranger: u64,
    /// A dump for another node.
    pub misdirected: u64,
    /// An authenticated message with an invalid record field.
    pub bad_record: u64,
}

impl Rejected {
    pub(crate) fn count(&mut self, why: &SyncError) {
        let c = match why {
            SyncError::Truncated { .. } => &mut self.truncated,
            SyncError::Magic(_) => &mut self.bad_magic,
            SyncError::Version(_) => &mut self.bad_version,
            SyncError::MessageType(_) => &mut self.unknown_type,
            SyncError::Length { .. } => &mut self.bad_length,
            SyncError::Auth => &mut self.bad_auth,
            SyncError::Replay { .. } => &mut self.replayed,
            SyncError::Stranger => &mut self.stranger,
            SyncError::Misdirected(_) => &mut self.misdirected,
            SyncError::RecordField { .. } => &mut self.bad_record,
            // Configuration errors, never a datagram's.
            SyncError::KeyTooShort(_)
            | SyncError::MaxDatagram(_)
            | SyncError::ZeroInterval(_)
            | SyncError::PeerTimeout { .. } => return,
        };
        *c += 1;
    }

    pub fn total(&self) -> u64 {
        self.by_reason().iter().map(|(_, n)| n).sum()
    }

    /// Every reason with its count, for metrics.
    pub fn by_reason(&self) -> [(&'static str, u64); 10] {
        [
            ("truncated", self.truncated),
            ("bad_magic", self.bad_magic),
            ("bad_version", self.bad_version),
            ("unknown_type", self.unknown_type),
            ("bad_length", self.bad_length),
            ("bad_auth", self.bad_auth),
            ("replayed", self.replayed),
            ("stranger", self.stranger),
            ("misdirected", self.misdirected),
            ("bad_record", self.bad_record),
        ]
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub sent_messages: u64,
    /// Records sent in batches and dumps.
    pub sent_records: u64,
    /// Of those, IPv6 records.
    pub sent_records6: u64,
    pub sent_bytes: u64,
    /// Messages accepted.
    pub received_messages: u64,
    /// Records applied, from batches and dumps.
    pub received_records: u64,
    /// Of those, IPv6 records.
    pub received_records6: u64,
    pub rejected: Rejected,
    /// Our own multicast looped back: expected, not an error. In unicast
    /// mode a non-zero count means another node uses our node id.
    pub own: u64,
    /// Dumps we finished sending to a requester.
    pub dumps_served: u64,
    /// Records received in dumps (also counted in `received_records`).
    pub dump_records_received: u64,
}
