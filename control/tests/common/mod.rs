//! Shared pieces of the end-to-end tests: a vipd node running inside a lab
//! namespace, driven through its control socket, its configuration, and the
//! lab around it. `vrrp`, `vrrp6`, `conn_sync`, `stock` and `two_sites` hold the harnesses
//! of the VRRP, connection-sync, stock-network and BGP tests.

// Each test binary uses a different subset of these.
#![allow(dead_code, unused_imports)]

mod config;
pub mod conn_sync;
mod lab;
mod metrics;
mod shares;
pub mod stock;
pub mod two_sites;
mod vipd;
pub mod vrrp;
pub mod vrrp6;

pub use config::*;
pub use lab::*;
pub use metrics::*;
pub use shares::*;
pub use vipd::*;
