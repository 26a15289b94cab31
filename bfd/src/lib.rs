//! Sans-IO BFD: RFC 5880 asynchronous mode over RFC 5881 single hop.
//!
//! Nothing here touches sockets or clocks: the caller feeds received
//! datagrams (with their IP TTL), timer firings and the current time into
//! [`Session::handle`] and carries out the [`Output`]s it returns, in order:
//! send the packets to the peer's UDP port [`PORT`] with TTL 255 from a
//! source port in [`SOURCE_PORTS`], arm the timers, and act on state changes.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bfd::{Input, Output, Session, SessionConfig};
//!
//! let cfg = SessionConfig::new("10.20.1.1", 1, Duration::from_millis(50), 3);
//! let mut session = Session::new(cfg, 0x5eed);
//! let mut out = Vec::new();
//! session.handle(Input::Start, Instant::now(), &mut out);
//! for o in out.drain(..) {
//!     match o {
//!         Output::Send(bytes) => { /* send to the peer's port 3784, TTL 255 */ }
//!         Output::SetTimer(kind, at) => { /* (re)arm or cancel; on expiry feed Input::Timer(kind) */ }
//!         Output::StateChanged { .. } => { /* Up, or Down with a diagnostic */ }
//!         Output::Dropped(why) => { /* log it; already counted in the stats */ }
//!     }
//! }
//! ```

mod packet;
mod session;

pub use packet::{Control, ControlPacket, Diag, PacketError, State, PACKET_LEN};
pub use session::{Discard, Input, Output, Session, SessionConfig, SessionStats, TimerKind};

/// UDP port of single-hop BFD control packets (RFC 5881).
pub const PORT: u16 = 3784;
/// Source ports a single-hop sender must use (RFC 5881 section 4).
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// The TTL every single-hop packet is sent with and must arrive with (GTSM).
pub const TTL: u8 = 255;

#[cfg(test)]
mod tests;
