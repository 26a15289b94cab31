//! Checks that relate entries to each other: uniqueness across services and
//! VRRP instances, interfaces, VIP ownership and announced prefixes.
//!
//! Entries that could not be read (`None`) are skipped: their own errors are
//! already reported and guessing their values would only add noise.

use std::collections::HashMap;
use std::net::IpAddr;

use super::reader::Ctx;
use super::{AnnounceCondition, Bgp, Dataplane, Protocol, Service, VrrpInstance};

pub(super) fn cross_checks(
    cx: &mut Ctx,
    dataplane: Option<&Dataplane>,
    services: &[Option<Service>],
    vrrp: &[Option<VrrpInstance>],
    bgp: Option<&Bgp>,
) {
    check_services(cx, services);
    check_vrrp(cx, dataplane, vrrp);
    if let Some(bgp) = bgp {
        check_announces(cx, bgp, services);
    }
}

fn check_services(cx: &mut Ctx, services: &[Option<Service>]) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut endpoints: HashMap<(IpAddr, u16, Protocol), usize> = HashMap::new();
    for (i, s) in services.iter().enumerate() {
        let Some(s) = s else { continue };
        if let Some(first) = names.insert(&s.name, i) {
            let line = cx.line_of(&format!("service[{first}].name"));
            cx.err_at(
                &format!("service[{i}].name"),
                format!(
                    "service name `{}` is already used by service[{first}] (line {line}); names must be unique",
                    s.name
                ),
            );
            names.insert(&s.name, first);
        }
        if let Some(first) = endpoints.insert((s.vip, s.port, s.protocol), i) {
            let line = cx.line_of(&format!("service[{first}].vip"));
            cx.err_at(
                &format!("service[{i}].vip"),
                format!(
                    "{}/{} is already served by service[{first}] (line {line}); each VIP, port and protocol belongs to one service",
                    s.endpoint(), s.protocol
                ),
            );
            endpoints.insert((s.vip, s.port, s.protocol), first);
        }
    }
}

fn check_vrrp(cx: &mut Ctx, dataplane: Option<&Dataplane>, vrrp: &[Option<VrrpInstance>]) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    // An IPv4 and an IPv6 instance may share a vrid: their virtual MACs differ.
    let mut vrids: HashMap<(&str, ::vrrp::AddressFamily, u8), usize> = HashMap::new();
    let mut vips: HashMap<IpAddr, usize> = HashMap::new();
    for (i, v) in vrrp.iter().enumerate() {
        let Some(v) = v else { continue };
        if let Some(first) = names.get(v.name.as_str()) {
            cx.err_at(
                &format!("vrrp[{i}].name"),
                format!(
                    "instance name `{}` is already used by vrrp[{first}]; names must be unique",
                    v.name
                ),
            );
        } else {
            names.insert(&v.name, i);
        }
        if let Some(dp) = dataplane {
            if !dp.interfaces.contains(&v.interface) {
                cx.err_at(
                    &format!("vrrp[{i}].interface"),
                    format!(
                        "interface `{}` is not one of dataplane.interfaces ({}); VRRP runs on an interface vipd drives",
                        v.interface,
                        dp.interfaces.join(", ")
                    ),
                );
            }
        }
        if let Some(first) = vrids.get(&(v.interface.as_str(), v.family(), v.vrid)) {
            cx.err_at(
                &format!("vrrp[{i}].vrid"),
                format!(
                    "vrid {} is already used on {} by vrrp[{first}]; the virtual MAC {} would clash",
                    v.vrid,
                    v.interface,
                    wire::MacAddr(v.virtual_mac())
                ),
            );
        } else {
            vrids.insert((&v.interface, v.family(), v.vrid), i);
        }
        for (j, ip) in v.vips.iter().enumerate() {
            match vips.get(ip) {
                Some(first) if *first == i => cx.err_at(
                    &format!("vrrp[{i}].vips[{j}]"),
                    format!("VIP {ip} is listed twice in this instance"),
                ),
                Some(first) => cx.err_at(
                    &format!("vrrp[{i}].vips[{j}]"),
                    format!(
                        "VIP {ip} already belongs to vrrp[{first}]; a VIP can be owned by one instance only"
                    ),
                ),
                None => {
                    vips.insert(*ip, i);
                }
            }
        }
    }
}

fn check_announces(cx: &mut Ctx, bgp: &Bgp, services: &[Option<Service>]) {
    // An unreadable service may hold the VIP an announce is meant for.
    if services.iter().any(Option::is_none) {
        return;
    }
    for (i, a) in bgp.announces.iter().enumerate() {
        if a.condition == AnnounceCondition::Always {
            continue;
        }
        let covers_vip = services.iter().flatten().any(|s| a.prefix.contains(s.vip));
        if !covers_vip {
            cx.err_at(
                &format!("bgp.announce[{i}].prefix"),
                format!(
                    "{} contains no service VIP, so with condition = \"vip_healthy\" it would never be announced; fix the prefix or set condition = \"always\"",
                    a.prefix
                ),
            );
        }
    }
}
