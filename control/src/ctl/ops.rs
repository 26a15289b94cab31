//! The dispatch table: one arm per [`Command`]. Parts of the node that gain
//! commands (VRRP, BGP) add their variant to `Command` and their arm here.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use log::info;
use serde_json::json;

use super::proto::{self, BackendOp, Command, Reply, MAX_TOP};
use super::views;
use crate::config::Prefix;
use crate::node::BackendChange;
use crate::node::Node;
use crate::vrrp::runtime::InstanceControl;
use crate::vrrp::State;

/// How often a handover looks at the instance's status.
const HANDOVER_POLL: Duration = Duration::from_millis(5);

/// Busiest clients listed by `flows` unless asked otherwise.
const DEFAULT_TOP: usize = 10;

pub async fn execute(node: &Node, cmd: Command) -> Reply {
    let result = match cmd {
        Command::Status {} => Ok(views::status(node).await),
        Command::Stats {} => Ok(views::stats(node)),
        Command::Backends {} => Ok(views::backends(node).await),
        Command::Services {} => Ok(views::services(node).await),
        Command::Flows { client, top } => match client.as_deref().map(str::parse::<Ipv4Addr>) {
            Some(Err(_)) => Err(format!(
                "client {:?} is not an IPv4 address",
                client.unwrap_or_default()
            )),
            Some(Ok(ip)) => {
                Ok(views::flows(node, Some(ip), top.unwrap_or(DEFAULT_TOP).min(MAX_TOP)).await)
            }
            None => Ok(views::flows(node, None, top.unwrap_or(DEFAULT_TOP).min(MAX_TOP)).await),
        },
        Command::Backend {
            op,
            service,
            address,
            weight,
        } => backend(node, op, &service, &address, weight).await,
        Command::Bgp {} => Ok(node.bgp.to_json()),
        Command::Vrrp {} => Ok(views::vrrp(node).await),
        Command::BgpWithdraw { prefix } => bgp_override(node, &prefix, true).await,
        Command::BgpAnnounce { prefix } => bgp_override(node, &prefix, false).await,
        Command::VrrpHandover {
            instance,
            back,
            timeout_s,
        } => handover(node, &instance, back, timeout_s).await,
        Command::VrrpRelease { instance } => release(node, &instance).await,
        Command::Reload {} => match node.reload().await {
            Ok(s) => {
                info!(
                    "config reloaded: {} backend(s) added, {} removed, {} kept; services added {:?}, removed {:?}",
                    s.backends_added, s.backends_removed, s.backends_kept, s.services_added, s.services_removed
                );
                Ok(json!({
                    "services_added": s.services_added,
                    "services_removed": s.services_removed,
                    "backends_added": s.backends_added,
                    "backends_removed": s.backends_removed,
                    "backends_kept": s.backends_kept,
                }))
            }
            Err(errors) => Err(format!("reload refused:\n{}", errors.join("\n"))),
        },
    };
    match result {
        Ok(v) => Reply::ok(v),
        Err(e) => Reply::err(e),
    }
}

async fn backend(
    node: &Node,
    op: BackendOp,
    service: &str,
    address: &str,
    weight: Option<u32>,
) -> Result<serde_json::Value, String> {
    let addr: SocketAddrV4 = address.parse().map_err(|_| {
        format!("backend {address:?} is not an IPv4 address with a port, such as 10.0.0.1:8080")
    })?;
    let change = match (op, weight) {
        (BackendOp::Add, w) => BackendChange::Add {
            weight: w.unwrap_or(1),
        },
        (BackendOp::Weight, Some(w)) => BackendChange::Weight(w),
        (BackendOp::Weight, None) => return Err("backend weight needs a weight".into()),
        (_, Some(_)) => return Err(format!("backend {} takes no weight", op.as_str())),
        (BackendOp::Remove, None) => BackendChange::Remove,
        (BackendOp::Drain, None) => BackendChange::Drain,
        (BackendOp::Enable, None) => BackendChange::Enable,
        (BackendOp::Disable, None) => BackendChange::Disable,
    };
    let id = node.change_backend(service, addr, change).await?;
    info!("control: backend {addr} of service {service}: {change:?}");
    Ok(
        json!({ "service": service, "address": addr.to_string(), "id": id, "change": format!("{change:?}") }),
    )
}

/// Sets or clears the operator withdrawal of a configured announce prefix.
async fn bgp_override(
    node: &Node,
    prefix: &str,
    withdraw: bool,
) -> Result<serde_json::Value, String> {
    let p: Prefix = prefix
        .parse()
        .map_err(|e| format!("{prefix:?} is not an IPv4 prefix such as 10.0.0.0/25: {e}"))?;
    let mut st = node.state.lock().await;
    let configured: Vec<Prefix> = st
        .config
        .bgp
        .as_ref()
        .map(|b| b.announces.iter().map(|a| a.prefix).collect())
        .unwrap_or_default();
    if !configured.contains(&p) {
        let list: Vec<String> = configured.iter().map(ToString::to_string).collect();
        return Err(if list.is_empty() {
            format!("{p} is not announced: this node has no [[bgp.announce]] prefixes")
        } else {
            format!(
                "{p} is not a configured [[bgp.announce]] prefix; configured: {}",
                list.join(", ")
            )
        });
    }
    let was = st.bgp_withdrawn.contains(&p);
    if withdraw && !was {
        st.bgp_withdrawn.push(p);
    } else if !withdraw {
        st.bgp_withdrawn.retain(|w| *w != p);
    }
    drop(st);
    let changed = was != withdraw;
    if changed {
        // Wakes the announce policy now rather than at its next tick.
        node.changed.send_modify(|n| *n = n.wrapping_add(1));
        if withdraw {
            info!("control: BGP prefix {p} withdrawn by the operator");
        } else {
            info!("control: operator withdrawal of BGP prefix {p} cleared; the announce policy decides again");
        }
    }
    let change = match (changed, withdraw) {
        (true, true) => "withdrawn: no longer advertised until `vipctl bgp announce`",
        (true, false) => "override cleared: advertised while its condition holds",
        (false, true) => "already withdrawn",
        (false, false) => "no override was set: the announce policy already decides",
    };
    Ok(json!({
        "prefix": p.to_string(),
        "withdrawn": withdraw,
        "changed": changed,
        "change": change,
    }))
}

async fn vrrp_control(node: &Node, instance: &str) -> Result<InstanceControl, String> {
    let st = node.state.lock().await;
    let found = st.vrrp.iter().find(|c| {
        c.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .name
            .eq(instance)
    });
    match found {
        Some(c) => Ok(c.clone()),
        None => {
            let names: Vec<String> = st
                .vrrp
                .iter()
                .map(|c| {
                    c.status
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .name
                        .clone()
                })
                .collect();
            Err(format!(
                "no VRRP instance {instance:?} on this node; configured: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        }
    }
}

/// Polls the instance's status until `done` says yes or `timeout` passes.
async fn wait_for<T>(
    c: &InstanceControl,
    timeout: Duration,
    done: impl Fn(&crate::vrrp::runtime::Status) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = done(&c.status.lock().unwrap_or_else(|e| e.into_inner())) {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(HANDOVER_POLL).await;
    }
}

fn state_of(c: &InstanceControl) -> State {
    c.status.lock().unwrap_or_else(|e| e.into_inner()).state
}

async fn handover(
    node: &Node,
    instance: &str,
    back: bool,
    timeout_s: Option<f64>,
) -> Result<serde_json::Value, String> {
    let timeout = proto::handover_timeout(instance, timeout_s)?;
    let c = vrrp_control(node, instance).await?;
    let state = state_of(&c);
    if state != State::Master {
        return Err(format!(
            "VRRP instance {instance} is {state} on this node, not master: run the handover on the node that holds the VIPs"
        ));
    }
    info!("control: operator handover of VRRP instance {instance}: stepping down");
    let asked = Instant::now();
    c.set_hold(true);
    // A handover record from an earlier drill must not count.
    let taken = wait_for(&c, timeout, |s| {
        s.handover
            .as_ref()
            .filter(|h| h.since >= asked)
            .and_then(|h| h.new_master)
    })
    .await;
    let mut out = json!({
        "instance": instance,
        "stepped_down": true,
        "peer_took_over": taken.is_some(),
        "new_master": taken.map(|(a, _)| a.to_string()),
        "switch_over_ms": taken.map(|(_, d)| d.as_secs_f64() * 1000.0),
        "state": state_of(&c).as_str(),
    });
    let Some((peer, _)) = taken else {
        // Nobody took over: holding would only delay the VIPs' return.
        c.set_hold(false);
        out["held"] = false.into();
        out["note"] = format!(
            "no peer advertised as master within {timeout:?}; the hold was released so this node keeps the VIPs. Check that a backup for {instance} is running"
        )
        .into();
        return Ok(out);
    };
    if !back {
        out["held"] = true.into();
        out["note"] = format!(
            "{peer} is master; this node stays backup until `vipctl vrrp release {instance}`"
        )
        .into();
        return Ok(out);
    }
    let released = Instant::now();
    c.set_hold(false);
    let back_after = wait_for(&c, timeout, |s| {
        (s.state == State::Master).then(|| released.elapsed())
    })
    .await;
    out["held"] = false.into();
    out["back"] = json!({
        "master_again": back_after.is_some(),
        "after_ms": back_after.map(|d| d.as_secs_f64() * 1000.0),
        "state": state_of(&c).as_str(),
    });
    if back_after.is_none() {
        out["note"] = format!(
            "released, but not master again within {timeout:?}: is preempt off for {instance}, or does {peer} have a higher priority?"
        )
        .into();
    }
    Ok(out)
}

async fn release(node: &Node, instance: &str) -> Result<serde_json::Value, String> {
    let c = vrrp_control(node, instance).await?;
    let was = c.set_hold(false);
    if was {
        info!("control: operator hold on VRRP instance {instance} released");
    }
    Ok(json!({
        "instance": instance,
        "was_held": was,
        "state": state_of(&c).as_str(),
    }))
}
