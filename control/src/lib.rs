//! The vipd control plane: configuration, health checks, VRRP, the BGP
//! speaker, the control socket, and the daemon that publishes service
//! snapshots to the dataplane.

pub mod bgp;
pub mod config;
pub mod ctl;
pub mod daemon;
pub mod health;
pub mod keepalived;
pub mod metrics;
pub mod vrrp;
