//! The vipd packet path.
//!
//! `flow` holds the per-worker connection table, `sched` the LVS schedulers
//! and Maglev, `service` the immutable snapshot of services the control plane
//! publishes, and `path` the pure function that turns one frame (read through
//! the `wire` crate's views) into a verdict. The `engine` crate feeds frames
//! to it from AF_XDP sockets on pinned cores; nothing here needs the kernel.

pub mod arp_claims;
pub mod counters;
pub mod flow;
pub mod path;
pub mod sched;
pub mod service;
pub mod verdict;
