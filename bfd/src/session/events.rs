use std::fmt;
use std::time::Instant;

use crate::packet::{Diag, PacketError, State};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// Leave AdminDown and start sending.
    Start,
    /// Go AdminDown (diagnostic 7) and tell the peer, which then does not
    /// count it as a failure.
    Stop,
    /// A UDP payload received on port 3784 from this session's peer, with
    /// the IP TTL it arrived with.
    Received { packet: &'a [u8], ttl: u8 },
    /// A timer armed by `Output::SetTimer` fired; pass a `now` at or after
    /// its deadline. Firings of a cancelled or replaced deadline are ignored.
    Timer(TimerKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// The next periodic packet.
    Transmit,
    /// The peer's packets stopped for the detection time.
    Detect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this UDP payload to the peer's port 3784 with TTL 255.
    Send(Vec<u8>),
    /// Arm (`Some`) or cancel (`None`) a one-shot timer, replacing any earlier one.
    SetTimer(TimerKind, Option<Instant>),
    /// `failure`: the session left Up for a reason other than the peer's
    /// AdminDown or our own stop; what a client protocol should act on.
    StateChanged {
        from: State,
        to: State,
        diag: Diag,
        failure: bool,
    },
    /// A received packet was discarded (already counted in the stats).
    Dropped(Discard),
}

/// Why a received packet was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    Malformed(PacketError),
    /// Single hop packets arrive with TTL 255 (RFC 5881 section 5).
    Ttl(u8),
    /// The A bit: this implementation does no authentication.
    Authentication,
    /// Your Discriminator names another session.
    Discriminator(u32),
    /// Your Discriminator is 0 in a packet whose state needs it.
    NoDiscriminator(State),
}

impl Discard {
    /// The reason's short name, as in [`SessionStats::dropped_by_reason`](crate::SessionStats::dropped_by_reason).
    pub fn kind(&self) -> &'static str {
        match self {
            Discard::Malformed(_) => "malformed",
            Discard::Ttl(_) => "ttl",
            Discard::Authentication => "authentication",
            Discard::Discriminator(_) | Discard::NoDiscriminator(_) => "discriminator",
        }
    }
}

impl fmt::Display for Discard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discard::Malformed(e) => write!(f, "malformed control packet: {e}"),
            Discard::Ttl(t) => write!(
                f,
                "arrived with TTL {t}, not 255: not from a directly connected peer (RFC 5881)"
            ),
            Discard::Authentication => f.write_str(
                "authentication section present; authentication is not supported, configure the peer without it",
            ),
            Discard::Discriminator(d) => write!(f, "your discriminator {d} is not this session's"),
            Discard::NoDiscriminator(s) => {
                write!(f, "your discriminator 0 in a packet with state {s}")
            }
        }
    }
}
