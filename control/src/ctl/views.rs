//! Read-only views of the node for the control socket.

use serde_json::{json, Value};

use crate::daemon::Node;
use dataplane::verdict::DropReason;

pub async fn status(node: &Node) -> Value {
    let st = node.state.lock().await;
    let services: Vec<Value> = st
        .config
        .services
        .iter()
        .enumerate()
        .map(|(s, svc)| {
            let healthy = st.ids[s]
                .iter()
                .filter(|id| st.health.get(id).is_some_and(|h| h.healthy))
                .count();
            json!({
                "name": svc.name,
                "vip": svc.vip.to_string(),
                "port": svc.port,
                "owned": st.owns(svc.vip),
                "backends": svc.backends.len(),
                "healthy": healthy,
            })
        })
        .collect();
    json!({
        "node": st.config.node.name,
        "site": st.config.node.site,
        "uptime_s": node.started.elapsed().as_secs(),
        "workers": node.counters.cores().count(),
        "services": services,
    })
}

pub fn stats(node: &Node) -> Value {
    let cores: Vec<Value> = node
        .counters
        .cores()
        .enumerate()
        .map(|(i, c)| {
            let drops: serde_json::Map<String, Value> = DropReason::ALL
                .iter()
                .filter(|r| c.drop(**r).get() > 0)
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
    let drops: serde_json::Map<String, Value> = DropReason::ALL
        .iter()
        .map(|r| (r.name().to_string(), json!(node.counters.drops(*r))))
        .collect();
    let xdp = match node.steering.xdp_stats() {
        Ok(x) => json!({
            "redirected": x.redirected,
            "pass_arp": x.pass_arp,
            "pass_ipv4": x.pass_ipv4,
            "pass_ipv6": x.pass_ipv6,
            "pass_other_ethertype": x.pass_other_ethertype,
            "pass_truncated": x.pass_truncated,
        }),
        Err(e) => json!({ "error": e.to_string() }),
    };
    json!({ "cores": cores, "drops": drops, "xdp": xdp })
}

pub async fn backends(node: &Node) -> Value {
    let st = node.state.lock().await;
    let list: Vec<Value> = st
        .backends()
        .map(|b| {
            let svc = &st.config.services[b.service];
            let be = &svc.backends[b.backend];
            let h = st.health.get(&b.id);
            json!({
                "service": svc.name,
                "address": be.address.to_string(),
                "weight": be.weight,
                "healthy": h.is_some_and(|h| h.healthy),
                "last_check": h.and_then(|h| h.last.as_ref()).map(|r| json!({"ok": r.ok, "detail": r.detail})),
            })
        })
        .collect();
    json!({ "backends": list })
}
