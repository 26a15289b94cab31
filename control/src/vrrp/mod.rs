//! VRRP on this node: the runtime that runs each configured virtual router
//! of the sans-IO `vrrp` crate over raw sockets, timers and netlink.

pub mod runtime;

pub use ::vrrp::State;
