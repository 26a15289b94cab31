//! Shared pieces of the end-to-end tests: a vipd node running inside a lab
//! namespace, driven through its control socket, its configuration, and the
//! lab around it. `vrrp` and `stock` hold the harnesses of the VRRP and
//! stock-network tests.

// Each test binary uses a different subset of these.
#![allow(dead_code, unused_imports)]

mod config;
mod lab;
mod metrics;
mod shares;
pub mod stock;
mod vipd;
pub mod vrrp;

pub use config::*;
pub use lab::*;
pub use metrics::*;
pub use shares::*;
pub use vipd::*;
