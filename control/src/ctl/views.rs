//! Read-only views of the node for the control socket.

use serde_json::{json, Value};

use crate::node::Node;
use crate::node::NodeState;
use dataplane::verdict::DropReason;

/// What `status` and `services` both say of service `s`.
fn service_summary(st: &NodeState, s: usize) -> Value {
    let svc = &st.config.services[s];
    json!({
        "name": svc.name,
        "vip": svc.vip.to_string(),
        "port": svc.port,
        "owned": st.owns(svc.vip),
        "backends": svc.backends.len(),
        "healthy": st.healthy_backends(s),
    })
}

pub async fn status(node: &Node) -> Value {
    let st = node.state.lock().await;
    let services: Vec<Value> = st
        .config
        .services
        .iter()
        .enumerate()
        .map(|(s, _)| service_summary(&st, s))
        .collect();
    let vrrp: Vec<Value> = st
        .vrrp
        .iter()
        .map(|c| {
            let i = c.status.lock().unwrap_or_else(|e| e.into_inner());
            let last = i
                .transitions
                .back()
                .map(|t| format!("{} -> {}", t.from.as_str(), t.to.as_str()));
            json!({"name": i.name, "state": i.state.as_str(), "priority": i.priority, "held": i.held, "last": last})
        })
        .collect();
    let bgp = node.bgp.to_json();
    let peers: Vec<Value> = bgp["peers"]
        .as_array()
        .map(|p| {
            p.iter()
                .map(|p| json!({"peer": p["address"], "state": p["state"]}))
                .collect()
        })
        .unwrap_or_default();
    let interfaces: Vec<Value> = st
        .ports
        .iter()
        .map(|p| {
            let max = engine::MAX_MTU;
            let mut i = json!({
                "name": p.name,
                "xdp_mode": p.xdp_mode.as_str(),
                "mtu": p.mtu,
                "fast_path_egress": p.xdp_xmit,
            });
            if p.mtu > max {
                i["error"] = json!(format!(
                    "MTU {} is above the {max} bytes vipd can receive: larger packets are lost; \
                     lower it (`ip link set dev {} mtu {max}`)",
                    p.mtu, p.name
                ));
            }
            i
        })
        .collect();
    let mut out = json!({
        "node": st.config.node.name,
        "site": st.config.node.site,
        "uptime_s": node.started.elapsed().as_secs(),
        "workers": node.counters.cores().count(),
        "interfaces": interfaces,
        "services": services,
    });
    if !vrrp.is_empty() {
        out["vrrp"] = vrrp.into();
    }
    if bgp["configured"] == true {
        out["bgp"] =
            json!({"announced": bgp["announced"], "withdrawn": bgp["withdrawn"], "peers": peers});
    }
    out
}

pub fn stats(node: &Node) -> Value {
    let cores: Vec<Value> = node
        .counters
        .cores()
        .enumerate()
        .map(|(i, c)| {
            let drops: serde_json::Map<String, Value> = DropReason::ALL
                .iter()
                .filter(|r| r.is_drop() && c.drop(**r).get() > 0)
                .map(|r| (r.name().to_string(), json!(c.drop(*r).get())))
                .collect();
            json!({
                "worker": i,
                "rx_packets": c.rx_packets.get(),
                "rx_bytes": c.rx_bytes.get(),
                "tx_packets": c.tx_packets.get(),
                "tx_bytes": c.tx_bytes.get(),
                "handoff_out": c.handoff_out.get(),
                "handoff_in": c.handoff_in.get(),
                "drops": drops,
            })
        })
        .collect();
    let by_reason = |drop: bool| -> serde_json::Map<String, Value> {
        DropReason::ALL
            .iter()
            .filter(|r| r.is_drop() == drop)
            .map(|r| (r.name().to_string(), json!(node.counters.drops(*r))))
            .collect()
    };
    let (drops, ignored) = (by_reason(true), by_reason(false));
    let arp_claims = node.published.load().arp_claims.seen();
    let xdp = match node.steering.as_ref().map(|s| s.xdp_stats()) {
        None => json!({ "error": "this node has no dataplane" }),
        Some(Ok(x)) => {
            let mut v: serde_json::Map<String, Value> = x
                .by_decision()
                .iter()
                .map(|(name, n)| (name.to_string(), json!(n)))
                .collect();
            v.insert(
                "reply_keys_refused".into(),
                json!(node.counters.reply_keys_refused()),
            );
            Value::Object(v)
        }
        Some(Err(e)) => json!({ "error": e.to_string() }),
    };
    let interfaces: Vec<Value> = node
        .interfaces
        .iter()
        .map(|name| match engine::link_counters(name) {
            Ok(l) => json!({
                "name": name,
                "rx_errors": l.rx_errors,
                "rx_dropped": l.rx_dropped,
                "tx_errors": l.tx_errors,
                "tx_dropped": l.tx_dropped,
            }),
            Err(e) => json!({"name": name, "error": e.to_string()}),
        })
        .collect();
    let k = node.counters.sockets();
    let afxdp = json!({
        "rx_ring_full": k.rx_ring_full,
        "rx_dropped": k.rx_dropped,
        "fill_ring_empty": k.fill_ring_empty,
        "invalid_descs": k.invalid_descs,
    });
    json!({
        "cores": cores,
        "drops": drops,
        "ignored": ignored,
        "arp_claims": arp_claims,
        "xdp": xdp,
        "afxdp": afxdp,
        "interfaces": interfaces,
    })
}

pub async fn backends(node: &Node) -> Value {
    let ids: Vec<u32> = node.state.lock().await.backends().map(|b| b.id).collect();
    let (flows, missing) = node.runtime.query_flows(ids.clone(), None, 0).await;
    let totals = crate::node::Runtime::backend_totals(&flows, node.steering.as_deref(), &ids);
    let st = node.state.lock().await;
    let list: Vec<Value> = st
        .backends()
        .map(|b| {
            let svc = &st.config.services[b.service];
            let be = &svc.backends[b.backend];
            let h = st.health.get(&b.id);
            let t = totals.get(&b.id).copied().unwrap_or_default();
            json!({
                "service": svc.name,
                "address": be.address.to_string(),
                "id": b.id,
                "weight": be.weight,
                "enabled": !st.disabled.contains(&b.id),
                "healthy": h.is_some_and(|h| h.healthy),
                "active": t.active,
                "inactive": t.inactive,
                "packets": t.packets,
                "bytes": t.bytes,
                "last_check": h.and_then(|h| h.last.as_ref()).map(|r| json!({"ok": r.ok, "detail": r.detail})),
            })
        })
        .collect();
    json!({ "backends": list, "workers_not_answering": missing })
}

pub async fn services(node: &Node) -> Value {
    let st = node.state.lock().await;
    let list: Vec<Value> = st
        .config
        .services
        .iter()
        .enumerate()
        .map(|(s, svc)| {
            let mut v = service_summary(&st, s);
            v["protocol"] = svc.protocol.as_str().into();
            v["scheduler"] = svc.scheduler.to_string().into();
            v["forward"] = svc.forward.as_str().into();
            v["persistence_s"] = json!(svc.persistence_timeout.map(|d| d.as_secs()));
            v["sorry_server"] = json!(svc.sorry_server.map(|a| a.to_string()));
            v["snat"] = json!(svc.snat.iter().map(ToString::to_string).collect::<Vec<_>>());
            v
        })
        .collect();
    json!({ "services": list })
}

pub async fn flows(node: &Node, client: Option<std::net::Ipv4Addr>, top: usize) -> Value {
    let (summaries, missing) = node.runtime.query_flows(Vec::new(), client, top).await;
    let st = node.state.lock().await;
    let mut clients: std::collections::HashMap<std::net::Ipv4Addr, u64> = Default::default();
    for (ip, n) in summaries.iter().flat_map(|s| s.top_clients.iter()) {
        *clients.entry(*ip).or_default() += u64::from(*n);
    }
    let mut top_clients: Vec<(std::net::Ipv4Addr, u64)> = clients.into_iter().collect();
    top_clients.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top_clients.truncate(top);
    // By backend id, not the flow's service index: ids survive reloads.
    let backend_of = |id: u32| {
        st.backend_ref(id).map(|r| {
            let svc = &st.config.services[r.service];
            (
                svc.name.clone(),
                svc.backends[r.backend].address.to_string(),
            )
        })
    };
    let matches: Vec<Value> = summaries
        .iter()
        .flat_map(|s| s.matches.iter().map(move |m| (s.worker, m)))
        .map(|(w, m)| {
            json!({
                "worker": w,
                "client": m.client.to_string(),
                "destination": m.destination.to_string(),
                "protocol": match m.proto { 6 => "tcp".to_string(), 17 => "udp".to_string(), p => p.to_string() },
                "service": backend_of(m.backend_id).map(|b| b.0),
                "backend": backend_of(m.backend_id).map(|b| b.1),
                "state": m.state,
                "fast_path": m.offloaded,
                "fast_path_idle_ms": m.fast_last_seen_ms.map(|t| engine::monotonic_ms().saturating_sub(t)),
            })
        })
        .collect();
    json!({
        "workers": summaries.iter().map(|s| json!({"worker": s.worker, "flows": s.total, "fast_path_flows": s.offloaded, "capacity": s.capacity})).collect::<Vec<_>>(),
        "fast_path_flows": summaries.iter().map(|s| s.offloaded).sum::<usize>(),
        "total": summaries.iter().map(|s| s.total).sum::<usize>(),
        "top_clients": top_clients.iter().map(|(ip, n)| json!({"client": ip.to_string(), "flows": n})).collect::<Vec<_>>(),
        "clients_partial": summaries.iter().any(|s| s.clients_truncated),
        "client": client.map(|c| c.to_string()),
        "matches": matches,
        "matches_partial": summaries.iter().any(|s| s.matches_truncated),
        "workers_not_answering": missing,
    })
}

pub async fn vrrp(node: &Node) -> Value {
    let shared: Vec<_> = node.state.lock().await.vrrp.clone();
    let list: Vec<Value> = shared
        .iter()
        .map(|s| {
            let s = s.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let st = &s.stats;
            let transitions: Vec<Value> = s
                .transitions
                .iter()
                .map(|t| {
                    let ms =
                        t.at.duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_millis() as u64)
                            .unwrap_or(0);
                    json!({
                        "unix_ms": ms,
                        "from": t.from.as_str(),
                        "to": t.to.as_str(),
                        "priority": t.priority,
                        "reason": t.reason,
                    })
                })
                .collect();
            json!({
                "name": s.name,
                "vrid": s.vrid,
                "version": s.version.number(),
                "interface": s.interface,
                "address": s.primary.to_string(),
                "state": s.state.as_str(),
                "priority": s.priority,
                "base_priority": s.base_priority,
                "track_weight": s.weight_sum,
                "track_fault": s.fault,
                "held": s.held,
                "transitions": transitions,
                "counters": {
                    "adverts_received": st.adverts_received,
                    "adverts_sent": st.adverts_sent,
                    "priority_zero_received": st.priority_zero_received,
                    "priority_zero_sent": st.priority_zero_sent,
                    "became_master": st.became_master,
                    "released_master": st.released_master,
                    "ttl_errors": st.ttl_errors,
                    "version_errors": st.version_errors,
                    "type_errors": st.type_errors,
                    "truncated": st.truncated,
                    "checksum_errors": st.checksum_errors,
                    "other_vrid": st.other_vrid,
                    "own_adverts": st.own_adverts,
                    "unknown_peer": st.unknown_peer,
                    "auth_errors": st.auth_errors,
                    "interval_mismatch": st.interval_mismatch,
                    "address_mismatch": st.address_mismatch,
                    "malformed_ip": s.shell.malformed_ip,
                    "false_owner": st.false_owner,
                    "send_errors": s.shell.send_errors,
                    "receive_errors": s.shell.receive_errors,
                    "garps_sent": s.shell.garps_sent,
                    "notify_runs": s.shell.notify_runs,
                },
            })
        })
        .collect();
    json!({ "instances": list })
}
