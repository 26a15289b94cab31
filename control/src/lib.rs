//! The vipd control plane: configuration, health checks, VRRP and the glue
//! that publishes service snapshots to the dataplane.

pub mod config;
pub mod health;
pub mod vrrp;
