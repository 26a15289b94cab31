//! What goes into a session and what comes out.

use std::fmt;
use std::time::Instant;

use crate::prefix::Prefix;

use super::Route;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerKind {
    ConnectRetry,
    Hold,
    Keepalive,
}

impl TimerKind {
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// Bring the session up (connect, or wait for the peer when passive).
    Start,
    /// Bring the session down for good; `reason` goes to the peer (RFC 8203).
    Stop { reason: String },
    /// The TCP connection asked for by `Output::Connect` (or accepted) is up.
    TcpConnected,
    /// The connection attempt failed.
    TcpFailed,
    /// The connection closed or broke.
    TcpClosed,
    /// Octets read from the connection, in order.
    Bytes(&'a [u8]),
    /// A timer armed by `Output::SetTimer` fired; pass a `now` at or after its
    /// deadline. Firings for a cancelled or replaced deadline are ignored.
    Timer(TimerKind),
    /// Add or replace a route in the set advertised to this peer.
    Announce(Route),
    /// Remove a route from the set advertised to this peer.
    Withdraw(Prefix),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection to the peer, then report `TcpConnected` or `TcpFailed`.
    Connect,
    /// Write these octets to the connection.
    Send(Vec<u8>),
    /// Close the connection (or abandon the attempt in progress).
    CloseTcp,
    /// Arm (`Some`) or cancel (`None`) a one-shot timer, replacing any earlier one.
    SetTimer(TimerKind, Option<Instant>),
    StateChanged {
        from: State,
        to: State,
    },
    Established,
    /// The session left Established.
    Down {
        reason: String,
    },
    /// Prefixes the peer announced or withdrew (already counted, not stored).
    RoutesReceived {
        announced: Vec<Prefix>,
        withdrawn: Vec<Prefix>,
    },
    Log(LogLevel, String),
}
