//! Connection sync between the load-balancer nodes of a site.
//!
//! Every node is sender and receiver at once: the owner of a connection
//! sends its creation, state changes, refreshes and deletion to the other
//! nodes, so the node that takes a VIP over already knows its connections.
//! This crate is sans-IO: it encodes and authenticates batches, rejects
//! forged and replayed ones, and tracks peers and the bulk dump a starting
//! node waits for. Sockets, workers and timers live in the daemon.

mod record;

pub use record::{ConnRecord, RecordOp};
