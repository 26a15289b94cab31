//! What goes into a session and what comes out of it.

use std::net::IpAddr;

use crate::AnyRecord;

/// The caller's clocks at the time of an input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds: timers.
    pub ms: u64,
    /// Wall clock, µs since the Unix epoch: stamped on what we send, and
    /// compared with the peers' stamps for the sync lag.
    pub unix_us: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// Ask every peer for its table and hold until they have sent it.
    Start,
    /// A change of one of our connections, for the peers.
    Local(AnyRecord),
    /// The daemon's periodic tick (every few ms).
    Tick,
    /// A datagram received on the sync socket.
    Datagram { from: IpAddr, bytes: &'a [u8] },
    /// Part of our table for the node that asked ([`Output::DumpWanted`]).
    DumpRecords { to: u16, records: &'a [AnyRecord] },
    /// The whole table went out to that node.
    DumpDone { to: u16 },
}

/// Where a datagram goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Every configured peer, or the multicast group.
    All,
    Peer(IpAddr),
}

/// Why a starting node stopped holding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Released {
    /// Every peer finished its dump (or there are none to wait for).
    Dumped,
    /// The dump deadline passed first.
    Deadline,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send {
        to: Dest,
        bytes: Vec<u8>,
    },
    /// Install or remove a peer's connection. `origin` is the node that
    /// sent it.
    Apply {
        origin: u16,
        record: AnyRecord,
        from_dump: bool,
    },
    /// A peer asked for our table: feed it through
    /// [`Input::DumpRecords`] and close with [`Input::DumpDone`].
    DumpWanted {
        peer: u16,
    },
    /// The node may take VIPs over now; comes exactly once after Start.
    HoldReleased {
        reason: Released,
    },
    PeerUp {
        node: u16,
        addr: IpAddr,
    },
    PeerDown {
        node: u16,
        addr: IpAddr,
    },
    /// The peer came back with a new epoch.
    PeerRestarted {
        node: u16,
        addr: IpAddr,
    },
}

/// Where a session is in its start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Created, not started.
    Idle,
    /// Waiting for the peers' dumps until `deadline_ms` at most.
    Holding {
        deadline_ms: u64,
    },
    Ready {
        reason: Released,
    },
}
