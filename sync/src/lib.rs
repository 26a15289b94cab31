//! Connection sync between the load-balancer nodes of a site.
//!
//! Every node is sender and receiver at once: the owner of a connection
//! sends its creation, state changes, refreshes and deletion to the other
//! nodes, so the node that takes a VIP over already knows its connections.
//! This crate is sans-IO: it encodes and authenticates batches, rejects
//! forged and replayed ones, and tracks peers and the bulk dump a starting
//! node waits for. Sockets, workers and timers live in the daemon, which
//! feeds [`Input`]s with its clocks into [`Session::handle`] and carries out
//! the [`Output`]s in order.
//!
//! ```
//! use connsync::{Config, Input, Now, Output, Session};
//!
//! let cfg = Config::new(1, *b"a site key of 16+ bytes", None, 1_700_000_000_000_000);
//! let now = Now { ms: 0, unix_us: 1_700_000_000_000_000 };
//! let mut session = Session::new(cfg, now).expect("valid config");
//! let mut out = Vec::new();
//! session.handle(Input::Start, now, &mut out);
//! for o in out.drain(..) {
//!     match o {
//!         Output::Send { to, bytes } => { /* to every peer (the group) or one */ }
//!         Output::Apply { record, .. } => { /* into the connection table */ }
//!         Output::DumpWanted { peer } => { /* stream the table: DumpRecords, DumpDone */ }
//!         Output::HoldReleased { .. } => { /* may take VIPs over now */ }
//!         Output::PeerUp { .. } | Output::PeerDown { .. } | Output::PeerRestarted { .. } => {}
//!     }
//! }
//! ```

mod auth;
mod error;
mod message;
mod record;
mod replay;
mod session;
mod stats;

pub use auth::{MIN_KEY_LEN, TAG_LEN};
pub use error::SyncError;
pub use message::{
    records_per_message, MessageType, MessageView, HEADER_LEN, MAGIC, MAX_UDP_PAYLOAD,
    MIN_MESSAGE_LEN, VERSION,
};
pub use record::{AddrFamily, AnyRecord, ConnRecord, ConnRecord6, Record, RecordOp, WireAddr};
pub use replay::WINDOW;
pub use session::{
    Config, Dest, DumpState, Input, Now, Output, PeerStatus, Released, Session, State, LAG_SAMPLES,
    MAX_PEERS,
};
pub use stats::{Rejected, Stats};

#[cfg(test)]
mod tests;
