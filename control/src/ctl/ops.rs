//! The dispatch table: one arm per [`Command`]. Parts of the node that gain
//! commands (VRRP, BGP) add their variant to `Command` and their arm here.

use std::net::{Ipv4Addr, SocketAddrV4};

use log::info;
use serde_json::json;

use super::proto::{BackendOp, Command, Reply};
use super::views;
use crate::daemon::change::BackendChange;
use crate::daemon::Node;

/// Busiest clients listed by `flows` unless asked otherwise.
const DEFAULT_TOP: usize = 10;
/// Most clients `flows` lists.
const MAX_TOP: usize = 1000;

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
        (_, Some(_)) => return Err(format!("backend {op:?} takes no weight").to_lowercase()),
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
