//! The vipd control plane: configuration, health checks, VRRP, the BGP
//! speaker, connection sync, the control socket, the node's state, and the daemon that
//! composes them and publishes service snapshots to the dataplane.

pub mod config;
pub mod ctl;
pub mod daemon;
pub mod health;
pub mod keepalived;
pub mod metrics;
pub(crate) mod neigh;
pub mod node;
pub(crate) mod random;
pub(crate) mod speaker;
pub(crate) mod sync;
pub mod vrrp;
