//! Each section of the file is read into its typed form by its own module,
//! which also checks what can be checked within one entry. Checks that span
//! entries live in `validate`.

pub(super) mod bgp;
mod bgp_families;
pub(super) mod check;
pub(super) mod control;
pub(super) mod dataplane;
pub(super) mod node;
pub(super) mod service;
pub(super) mod sync;
pub(super) mod vrrp;

use super::reader::{Ctx, Tbl};
use super::Config;
use service::Service;
use vrrp::VrrpInstance;

pub(super) const IPV4: &str = "an IPv4 address such as 10.0.0.1";
pub(super) const IP: &str = "an IPv4 or IPv6 address such as 10.0.0.1 or 2001:db8::1";
pub(super) const SOCK: &str = "an address and port such as 10.0.0.1:8080 or [2001:db8::1]:8080";

/// A whole file; `None` when a required section could not be read at all.
pub(super) fn config(cx: &mut Ctx, root: &Tbl) -> Option<Config> {
    root.check_keys(
        cx,
        &[
            "node",
            "dataplane",
            "control",
            "service",
            "vrrp",
            "bgp",
            "sync",
        ],
    );
    let node = root
        .must("node", root.table(cx, "node"), cx)
        .and_then(|t| node::read(cx, &t));
    let dataplane = root
        .must("dataplane", root.table(cx, "dataplane"), cx)
        .and_then(|t| dataplane::read(cx, &t));
    let control = match root.table(cx, "control") {
        Some(t) => control::read(cx, &t),
        None if root.has("control") => None,
        None => Some(control::default_control()),
    };
    let services: Vec<Option<Service>> = root.each(cx, "service", service::read);
    let vrrp: Vec<Option<VrrpInstance>> = root.each(cx, "vrrp", vrrp::read);
    let bgp = root.table(cx, "bgp").map(|t| bgp::read(cx, &t));
    let sync = root.table(cx, "sync").map(|t| sync::read(cx, &t));

    super::validate::cross_checks(
        cx,
        dataplane.as_ref(),
        &services,
        &vrrp,
        bgp.as_ref().and_then(Option::as_ref),
    );

    Some(Config {
        node: node?,
        dataplane: dataplane?,
        control: control?,
        services: services.into_iter().collect::<Option<_>>()?,
        vrrp: vrrp.into_iter().collect::<Option<_>>()?,
        bgp: match bgp {
            Some(b) => Some(b?),
            None => None,
        },
        sync: match sync {
            Some(s) => Some(s?),
            None => None,
        },
    })
}
