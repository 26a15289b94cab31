//! The vipd packet path.
//!
//! `wire` holds zero-copy views over frames, `flow` the per-worker connection
//! table, `sched` the LVS schedulers and Maglev, `service` the immutable
//! snapshot of services the control plane publishes, `path` the pure function
//! that turns one frame into a verdict, and `engine` the AF_XDP machinery that
//! feeds frames to it on pinned cores.

pub mod arp_claims;
pub mod counters;
pub mod engine;
pub mod flow;
pub mod path;
pub mod sched;
pub mod service;
pub mod verdict;
pub mod wire;
