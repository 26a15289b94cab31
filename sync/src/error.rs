//! Everything that can be wrong with a configuration, a record or a
//! received datagram. One enum, so the codec, the message view and the
//! session report through the same type; the session maps it onto the
//! per-reason reject counters of [`crate::Stats`].

/// Why bytes were not accepted, or why a configuration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("{got} bytes, need at least {need}")]
    Truncated { got: usize, need: usize },
    #[error("magic {0:02x?}, not \"VS\"")]
    Magic([u8; 2]),
    #[error("version {0}, only version 1 exists")]
    Version(u8),
    #[error("unknown message type {0}")]
    MessageType(u8),
    #[error("{len}-byte datagram does not match its type and record count {count}")]
    Length { count: u16, len: usize },
    #[error("authentication tag does not verify")]
    Auth,
    #[error("epoch {epoch} seq {seq} already seen or too old")]
    Replay { epoch: u64, seq: u64 },
    #[error("source address is not a configured peer")]
    Stranger,
    #[error("dump message addressed to node {0}, not to us")]
    Misdirected(u16),
    #[error("record field {field}: invalid value {value}")]
    RecordField { field: &'static str, value: u8 },
    #[error("sync key is {0} bytes, at least 16 are needed")]
    KeyTooShort(usize),
    #[error("max datagram {0} bytes: must hold the header, one record and the tag and fit a UDP datagram")]
    MaxDatagram(usize),
    #[error("{0} must be greater than zero")]
    ZeroInterval(&'static str),
    #[error("peer timeout {timeout_ms} ms must exceed the heartbeat interval {heartbeat_ms} ms")]
    PeerTimeout { timeout_ms: u64, heartbeat_ms: u64 },
}
