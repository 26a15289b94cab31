//! The dispatch table: one arm per [`Command`]. Parts of the node that gain
//! commands (VRRP, BGP) add their variant to `Command` and their arm here.

use std::time::{Duration, Instant};

use ctlproto::reply;
use ctlproto::request::{self, BackendOp, Command, MAX_TOP};
use ctlproto::Reply;
use log::info;

use super::views;
use crate::config::Prefix;
use crate::node::Node;
use crate::node::{BackendChange, ChangeError};
use crate::vrrp::runtime::InstanceControl;
use crate::vrrp::State;

/// How often a handover looks at the instance's status.
const HANDOVER_POLL: Duration = Duration::from_millis(5);

/// Busiest clients listed by `flows` unless asked otherwise.
const DEFAULT_TOP: usize = 10;

/// Why the node could not carry out a well-formed request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpError {
    #[error(transparent)]
    Request(#[from] request::RequestError),
    #[error("backend weight needs a weight")]
    NoWeight,
    #[error("backend {} takes no weight", .0.as_str())]
    TakesNoWeight(BackendOp),
    /// The node refused the backend edit; its message names the backend.
    #[error(transparent)]
    Backend(#[from] ChangeError),
    #[error("reload refused:\n{}", .0.join("\n"))]
    Reload(Vec<String>),
    #[error("{prefix:?} is not a prefix such as 10.0.0.0/25 or 2001:db8::/48: {reason}")]
    Prefix {
        prefix: String,
        reason: crate::config::PrefixError,
    },
    #[error("{0} is not announced: this node has no [[bgp.announce]] prefixes")]
    NoAnnounces(Prefix),
    #[error("{prefix} is not a configured [[bgp.announce]] prefix; configured: {configured}")]
    NotAnnounced { prefix: Prefix, configured: String },
    #[error("no VRRP instance {instance:?} on this node; configured: {configured}")]
    NoInstance {
        instance: String,
        configured: String,
    },
    #[error("VRRP instance {instance} is {state} on this node, not master: run the handover on the node that holds the VIPs")]
    NotMaster { instance: String, state: State },
}

pub(crate) async fn execute(node: &Node, cmd: Command) -> Reply {
    let result = match cmd {
        Command::Status {} => Ok(Reply::ok(&views::status(node).await)),
        Command::Stats {} => Ok(Reply::ok(&views::stats(node))),
        Command::Backends {} => Ok(Reply::ok(&views::backends(node).await)),
        Command::Services {} => Ok(Reply::ok(&views::services(node).await)),
        Command::Flows { client, top } => {
            let top = top.unwrap_or(DEFAULT_TOP).min(MAX_TOP);
            match client.as_deref().map(request::flows_client).transpose() {
                Ok(client) => Ok(Reply::ok(&views::flows(node, client, top).await)),
                Err(e) => Err(OpError::Request(e)),
            }
        }
        Command::Backend {
            op,
            service,
            address,
            weight,
        } => backend(node, op, &service, &address, weight)
            .await
            .map(|r| Reply::ok(&r)),
        Command::Bgp {} => Ok(Reply::ok(&views::bgp(node))),
        Command::Vrrp {} => Ok(Reply::ok(&views::vrrp(node).await)),
        Command::Sync {} => Ok(Reply::ok(&views::sync(node))),
        Command::BgpWithdraw { prefix } => bgp_override(node, &prefix, true)
            .await
            .map(|r| Reply::ok(&r)),
        Command::BgpAnnounce { prefix } => bgp_override(node, &prefix, false)
            .await
            .map(|r| Reply::ok(&r)),
        Command::VrrpHandover {
            instance,
            back,
            timeout_s,
        } => handover(node, &instance, back, timeout_s)
            .await
            .map(|r| Reply::ok(&r)),
        Command::VrrpRelease { instance } => release(node, &instance).await.map(|r| Reply::ok(&r)),
        Command::Node {} => Ok(Reply::ok(&views::node(node, false).await)),
        Command::NodeDrain { timeout_s } => match request::drain_timeout(timeout_s) {
            Ok(timeout) => {
                let changed = node.set_drain(true, timeout).await;
                Ok(Reply::ok(&views::node(node, changed).await))
            }
            Err(e) => Err(OpError::Request(e)),
        },
        Command::NodeUndrain {} => {
            let changed = node.set_drain(false, None).await;
            Ok(Reply::ok(&views::node(node, changed).await))
        }
        Command::Reload {} => match node.reload().await {
            Ok(s) => {
                info!(
                    "config reloaded: {} backend(s) added, {} removed, {} kept; services added {:?}, removed {:?}",
                    s.backends_added, s.backends_removed, s.backends_kept, s.services_added, s.services_removed
                );
                Ok(Reply::ok(&reply::Reload {
                    services_added: s.services_added,
                    services_removed: s.services_removed,
                    backends_added: s.backends_added,
                    backends_removed: s.backends_removed,
                    backends_kept: s.backends_kept,
                }))
            }
            Err(errors) => Err(OpError::Reload(errors)),
        },
    };
    result.unwrap_or_else(|e| Reply::err(e.to_string()))
}

async fn backend(
    node: &Node,
    op: BackendOp,
    service: &str,
    address: &str,
    weight: Option<u32>,
) -> Result<reply::BackendChange, OpError> {
    let addr = request::backend_address(service, address)?;
    let change = match (op, weight) {
        (BackendOp::Add, w) => BackendChange::Add {
            weight: w.unwrap_or(1),
        },
        (BackendOp::Weight, Some(w)) => BackendChange::Weight(w),
        (BackendOp::Weight, None) => return Err(OpError::NoWeight),
        (_, Some(_)) => return Err(OpError::TakesNoWeight(op)),
        (BackendOp::Remove, None) => BackendChange::Remove,
        (BackendOp::Drain, None) => BackendChange::Drain,
        (BackendOp::Enable, None) => BackendChange::Enable,
        (BackendOp::Disable, None) => BackendChange::Disable,
    };
    let id = node
        .change_backend(service, addr, change)
        .await
        .map_err(OpError::Backend)?;
    info!("control: backend {addr} of service {service}: {change:?}");
    Ok(reply::BackendChange {
        service: service.to_string(),
        address: addr.to_string(),
        id,
        change: format!("{change:?}"),
    })
}

/// Sets or clears the operator withdrawal of a configured announce prefix.
async fn bgp_override(
    node: &Node,
    prefix: &str,
    withdraw: bool,
) -> Result<reply::BgpOverride, OpError> {
    let p: Prefix = prefix.parse().map_err(|reason| OpError::Prefix {
        prefix: prefix.to_string(),
        reason,
    })?;
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
            OpError::NoAnnounces(p)
        } else {
            OpError::NotAnnounced {
                prefix: p,
                configured: list.join(", "),
            }
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
    Ok(reply::BgpOverride {
        prefix: p.to_string(),
        withdrawn: withdraw,
        changed,
        change: change.to_string(),
    })
}

async fn vrrp_control(node: &Node, instance: &str) -> Result<InstanceControl, OpError> {
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
            Err(OpError::NoInstance {
                instance: instance.to_string(),
                configured: if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                },
            })
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
) -> Result<reply::Handover, OpError> {
    let timeout = request::handover_timeout(instance, timeout_s)?;
    let c = vrrp_control(node, instance).await?;
    let state = state_of(&c);
    if state != State::Master {
        return Err(OpError::NotMaster {
            instance: instance.to_string(),
            state,
        });
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
    let mut out = reply::Handover {
        instance: instance.to_string(),
        stepped_down: true,
        peer_took_over: taken.is_some(),
        new_master: taken.map(|(a, _)| a.to_string()),
        switch_over_ms: taken.map(|(_, d)| d.as_secs_f64() * 1000.0),
        state: state_of(&c).as_str().to_string(),
        ..reply::Handover::default()
    };
    let Some((peer, _)) = taken else {
        // Nobody took over: holding would only delay the VIPs' return.
        c.set_hold(false);
        out.held = false;
        out.note = Some(format!(
            "no peer advertised as master within {timeout:?}; the hold was released so this node keeps the VIPs. Check that a backup for {instance} is running"
        ));
        return Ok(out);
    };
    if !back {
        out.held = true;
        out.note = Some(format!(
            "{peer} is master; this node stays backup until `vipctl vrrp release {instance}`"
        ));
        return Ok(out);
    }
    let released = Instant::now();
    c.set_hold(false);
    let back_after = wait_for(&c, timeout, |s| {
        (s.state == State::Master).then(|| released.elapsed())
    })
    .await;
    out.held = false;
    out.back = Some(reply::HandoverBack {
        master_again: back_after.is_some(),
        after_ms: back_after.map(|d| d.as_secs_f64() * 1000.0),
        state: state_of(&c).as_str().to_string(),
    });
    if back_after.is_none() {
        out.note = Some(format!(
            "released, but not master again within {timeout:?}: is preempt off for {instance}, or does {peer} have a higher priority?"
        ));
    }
    Ok(out)
}

async fn release(node: &Node, instance: &str) -> Result<reply::Release, OpError> {
    let c = vrrp_control(node, instance).await?;
    let was = c.set_hold(false);
    if was {
        info!("control: operator hold on VRRP instance {instance} released");
    }
    Ok(reply::Release {
        instance: instance.to_string(),
        was_held: was,
        state: state_of(&c).as_str().to_string(),
    })
}
