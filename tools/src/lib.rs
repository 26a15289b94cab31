//! Network-namespace lab for vipd's end-to-end tests, the demo and vipbench.
//!
//! A lab is a set of namespaces named `vl-<lab>-<role>`:
//!
//! ```text
//!  client ──┐                ┌── be1 … beN   (10.77.1.101…)
//! 10.77.0.2 │   sw (router)  │   sorry       (10.77.1.250, optional)
//!           brc ─────────── brb
//!   10.77.0.254 │        │ 10.77.1.254
//!           eth0│        │eth1
//!              lb1 … lbK   (10.77.0.1K / 10.77.1.1K)
//! ```
//!
//! Addresses are identical in every lab (the namespaces isolate them), so many
//! labs run side by side. Every namespace, link, address and route is made by
//! [`netns`], the one builder also used by vipbench's topology: nothing is
//! created in the root namespace. IPv6 is off in every lab namespace unless
//! the spec asks for it (`LabSpec::ipv6`, addresses by [`ipv6_twin`]).
//!
//! Dropping a [`Lab`] kills every process inside it and deletes its
//! namespaces (also while a test unwinds from a panic; the process logs in
//! [`Lab::dir`] are then kept). [`down_all`] removes labs left behind by a
//! killed run. Indices are 1-based, as in the role names (`lb1`, `be1`).
//!
//! ```no_run
//! use viplab::{Gateway, Lab, LabSpec};
//! use std::time::Duration;
//!
//! let lab = Lab::up(LabSpec {
//!     name: viplab::unique_name("nat_wrr"),
//!     backends: 3,
//!     backend_gateway: Gateway::Lb(1),
//!     ..LabSpec::default()
//! })?;
//! let _vipd = lab.spawn("lb1", &["vipd", "--config", "/path/to/vipd.toml"])?;
//! let vip = std::net::SocketAddrV4::new(viplab::vip(1), 8080);
//! lab.wait_until("the VIP to answer", Duration::from_secs(5), || {
//!     lab.http_get("client", vip, Duration::from_millis(500)).is_ok()
//! })?;
//! let report = lab.http_burst("client", vip, 1000, 16)?;
//! assert_eq!(report.ok, 1000);
//! # Ok::<(), anyhow::Error>(())
//! ```

mod bird;
mod cleanup;
pub mod demo;
pub mod ecmp;
mod http;
mod ipv6;
mod lab;
mod names;
pub mod netns;
mod plan;
mod process;
mod scripts;
mod servers;
pub mod sites;
mod spec;
mod topology;

pub use cleanup::{down, down_all};
pub use ecmp::{EchoClients, EchoReport, EcmpLab};
pub use http::BurstReport;
pub use ipv6::{ipv6_twin, vip6};
pub use lab::Lab;
pub use names::{unique_name, NS_PREFIX};
pub use plan::{vip, Side};
pub use process::LabProcess;
pub use sites::{ProbeSample, Prober, Site, TwoSiteLab};
pub use spec::{Gateway, LabSpec};
