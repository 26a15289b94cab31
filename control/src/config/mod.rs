//! vipd's configuration: a TOML file read into a validated [`Config`].
//!
//! [`load`] and [`parse`] either return a complete, valid configuration or
//! every error found, each naming the file, line, field and what to fix. A
//! configuration is never returned half-read, so a bad file can never be
//! half-applied.

mod error;
mod file;
mod prefix;
mod reader;
mod section;
mod validate;

use std::net::IpAddr;

pub use error::{ConfigError, ConfigErrors};
pub use file::load;
pub use prefix::{Prefix, PrefixError};
pub use section::bgp::{Announce, AnnounceCondition, Bfd, Bgp, BgpPeer, DrainRoutes};
pub use section::check::{BodyDigest, Check, CheckKind, HttpGet, QType, Tls};
pub use section::control::Control;
pub use section::dataplane::{Dataplane, FlowTimeouts, XdpMode};
pub use section::node::Identity;
pub use section::service::{Backend, DownAction, ForwardMode, Protocol, SchedulerKind, Service};
pub use section::sync::Sync;
pub use section::vrrp::{TrackInterface, TrackScript, VrrpInstance};

/// A whole node configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub node: Identity,
    pub dataplane: Dataplane,
    pub control: Control,
    pub services: Vec<Service>,
    pub vrrp: Vec<VrrpInstance>,
    pub bgp: Option<Bgp>,
    pub sync: Option<Sync>,
}

/// Parses and validates configuration text; `file` is used in error messages.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    let mut cx = reader::Ctx::new(file, text);
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let line = cx.line(e.span()).unwrap_or(0);
            cx.err(
                line,
                "",
                format!("TOML syntax error: {}", e.message().trim_end()),
            );
            return Err(ConfigErrors(cx.errors));
        }
    };
    let root = reader::Tbl::root(doc.as_table(), &mut cx);
    let config = section::config(&mut cx, &root);
    match config {
        Some(c) if cx.errors.is_empty() => Ok(c),
        _ => {
            let mut errors = cx.errors;
            // Stable sort: file order, and read order within a line.
            errors.sort_by_key(|e| e.line);
            Err(ConfigErrors(errors))
        }
    }
}

impl Config {
    /// The VRRP instance that decides whether this node owns `vip`; `None`
    /// means the node owns it outright (or it is no VIP of this node).
    pub fn vip_owner(&self, vip: impl Into<IpAddr>) -> Option<&VrrpInstance> {
        let vip = vip.into();
        self.vrrp.iter().find(|v| v.vips.contains(&vip))
    }

    /// Addresses a VRRP instance holds that no service uses as its VIP or
    /// full-NAT source: gateways, other nodes' full-NAT sources, answered
    /// only by the instance's master.
    pub fn floating_addresses(&self) -> impl Iterator<Item = (&VrrpInstance, IpAddr)> {
        self.vrrp.iter().flat_map(move |v| {
            v.vips
                .iter()
                .copied()
                .filter(move |a| {
                    !self
                        .services
                        .iter()
                        .any(|s| s.vip == *a || s.snat.contains(a))
                })
                .map(move |a| (v, a))
        })
    }

    /// One line per service: `name vip:port proto scheduler forward N backends`.
    pub fn summary(&self) -> String {
        self.services
            .iter()
            .map(|s| {
                format!(
                    "{} {} {} {} {} {} backend{}\n",
                    s.name,
                    s.endpoint(),
                    s.protocol,
                    s.scheduler,
                    s.forward,
                    s.backends.len(),
                    if s.backends.len() == 1 { "" } else { "s" }
                )
            })
            .collect()
    }
}
