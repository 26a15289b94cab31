//! Human-readable tables for `vipctl` replies. Missing fields print as `-`
//! so an older or newer vipd still gives a readable table.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Renders the reply to `kind` (a command name, or `rates` for a
/// `stats --watch` sample).
pub fn render(kind: &str, v: &Value) -> String {
    let mut out = String::new();
    match kind {
        "status" => status(&mut out, v),
        "services" => services(&mut out, v),
        "backends" => backends(&mut out, v),
        "flows" => flows(&mut out, v),
        "stats" => stats(&mut out, v),
        "rates" => rates_table(&mut out, v),
        "backend" => {
            let _ = writeln!(
                out,
                "backend {} of {}: {} (id {})",
                s(&v["address"]),
                s(&v["service"]),
                s(&v["change"]),
                s(&v["id"])
            );
        }
        "reload" => {
            let _ = writeln!(
                out,
                "reloaded: backends +{} -{} ={}; services added {}, removed {}",
                s(&v["backends_added"]),
                s(&v["backends_removed"]),
                s(&v["backends_kept"]),
                names(&v["services_added"]),
                names(&v["services_removed"])
            );
        }
        "vrrp" => vrrp(&mut out, v),
        "bgp" => bgp(&mut out, v),
        "bgp_override" => {
            let _ = writeln!(out, "{}: {}", s(&v["prefix"]), s(&v["change"]));
        }
        "handover" => handover(&mut out, v),
        "release" => {
            let what = if v["was_held"] == true {
                "hold released"
            } else {
                "was not held"
            };
            let _ = writeln!(out, "{}: {what}; now {}", s(&v["instance"]), s(&v["state"]));
        }
        _ => {
            let _ = writeln!(out, "{v:#}");
        }
    }
    out
}

fn vrrp(out: &mut String, v: &Value) {
    let _ = writeln!(
        out,
        "{:<14} {:<9} {:>4} {:<4} {:<8} {:>4}  LAST TRANSITION",
        "INSTANCE", "INTERFACE", "VRID", "VER", "STATE", "PRIO"
    );
    for i in list(&v["instances"]) {
        let last = list(&i["transitions"])
            .last()
            .map(|t| format!("{} -> {} ({})", s(&t["from"]), s(&t["to"]), s(&t["reason"])))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<14} {:<9} {:>4} {:<4} {:<8} {:>4}  {last}",
            s(&i["name"]),
            s(&i["interface"]),
            s(&i["vrid"]),
            format!("v{}", s(&i["version"])),
            s(&i["state"]),
            s(&i["priority"])
        );
    }
}

fn bgp(out: &mut String, v: &Value) {
    if v["configured"] == false {
        let _ = writeln!(out, "BGP is not configured on this node");
        return;
    }
    let _ = writeln!(
        out,
        "AS {}  router id {}  announced: {}",
        s(&v["local_as"]),
        s(&v["router_id"]),
        names(&v["announced"])
    );
    let _ = writeln!(out, "{:<20} {:<10} OVERRIDE", "PREFIX", "ANNOUNCED");
    for p in list(&v["prefixes"]) {
        let _ = writeln!(
            out,
            "{:<20} {:<10} {}",
            s(&p["prefix"]),
            s(&p["announced"]),
            s(&p["override"])
        );
    }
    let _ = writeln!(
        out,
        "{:<16} {:>10} {:<12} {:>8} {:>9}  LAST ERROR",
        "PEER", "AS", "STATE", "UP S", "RECEIVED"
    );
    for p in list(&v["peers"]) {
        let _ = writeln!(
            out,
            "{:<16} {:>10} {:<12} {:>8} {:>9}  {}",
            s(&p["address"]),
            s(&p["remote_as"]),
            s(&p["state"]),
            s(&p["uptime_s"]),
            s(&p["received"]),
            s(&p["last_error"])
        );
    }
}

fn handover(out: &mut String, v: &Value) {
    let inst = s(&v["instance"]);
    if v["peer_took_over"] == true {
        let _ = writeln!(
            out,
            "{inst}: stepped down; {} took over after {:.0} ms",
            s(&v["new_master"]),
            v["switch_over_ms"].as_f64().unwrap_or(f64::NAN)
        );
    } else {
        let _ = writeln!(out, "{inst}: stepped down, but no peer took over");
    }
    if v["back"].is_object() {
        let b = &v["back"];
        if b["master_again"] == true {
            let _ = writeln!(
                out,
                "{inst}: released; master again after {:.0} ms",
                b["after_ms"].as_f64().unwrap_or(f64::NAN)
            );
        } else {
            let _ = writeln!(out, "{inst}: released; still {}", s(&b["state"]));
        }
    }
    if let Some(note) = v["note"].as_str() {
        let _ = writeln!(out, "{note}");
    }
}

fn names(v: &Value) -> String {
    let names: Vec<String> = list(v).iter().map(s).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn status(out: &mut String, v: &Value) {
    let _ = writeln!(
        out,
        "node {}  site {}  up {}s  workers {}",
        s(&v["node"]),
        s(&v["site"]),
        s(&v["uptime_s"]),
        s(&v["workers"])
    );
    for i in list(&v["interfaces"]) {
        let _ = writeln!(
            out,
            "interface {}  xdp {}  mtu {}",
            s(&i["name"]),
            s(&i["xdp_mode"]),
            s(&i["mtu"])
        );
        if let Some(e) = i["error"].as_str() {
            let _ = writeln!(out, "  ERROR: {e}");
        }
    }
    let _ = writeln!(
        out,
        "{:<16} {:<21} {:<6} {:>8}",
        "SERVICE", "VIP", "OWNED", "HEALTHY"
    );
    for svc in list(&v["services"]) {
        let vip = format!("{}:{}", s(&svc["vip"]), s(&svc["port"]));
        let healthy = format!("{}/{}", s(&svc["healthy"]), s(&svc["backends"]));
        let _ = writeln!(
            out,
            "{:<16} {:<21} {:<6} {:>8}",
            s(&svc["name"]),
            vip,
            s(&svc["owned"]),
            healthy
        );
    }
    // Sections other parts of the node add to the status reply.
    for section in ["vrrp", "bgp"] {
        if let Some(items) = v[section].as_array() {
            let _ = writeln!(out, "{}:", section.to_uppercase());
            for item in items {
                let _ = writeln!(out, "  {}", fields(item));
            }
        } else if v[section].is_object() {
            let _ = writeln!(out, "{}: {}", section.to_uppercase(), fields(&v[section]));
        }
    }
}

/// `key=value` pairs of an object, for sections this build does not know.
fn fields(v: &Value) -> String {
    match v.as_object() {
        Some(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", s(v)))
            .collect::<Vec<_>>()
            .join("  "),
        None => s(v),
    }
}

fn services(out: &mut String, v: &Value) {
    let _ = writeln!(
        out,
        "{:<16} {:<21} {:<5} {:<8} {:<8} {:<6} {:>8} SORRY",
        "SERVICE", "VIP", "PROTO", "SCHED", "FORWARD", "OWNED", "HEALTHY"
    );
    for svc in list(&v["services"]) {
        let _ = writeln!(
            out,
            "{:<16} {:<21} {:<5} {:<8} {:<8} {:<6} {:>8} {}",
            s(&svc["name"]),
            format!("{}:{}", s(&svc["vip"]), s(&svc["port"])),
            s(&svc["protocol"]),
            s(&svc["scheduler"]),
            s(&svc["forward"]),
            s(&svc["owned"]),
            format!("{}/{}", s(&svc["healthy"]), s(&svc["backends"])),
            s(&svc["sorry_server"])
        );
    }
}

fn backends(out: &mut String, v: &Value) {
    let _ = writeln!(
        out,
        "{:<16} {:<21} {:>6} {:<8} {:>8} {:>8} LAST CHECK",
        "SERVICE", "BACKEND", "WEIGHT", "HEALTH", "ACTIVE", "INACTIVE"
    );
    for b in list(&v["backends"]) {
        let mut health = if b["healthy"].as_bool().unwrap_or(false) {
            "up".to_string()
        } else {
            "down".to_string()
        };
        if b["enabled"] == false {
            health += ",off";
        }
        let _ = writeln!(
            out,
            "{:<16} {:<21} {:>6} {:<8} {:>8} {:>8} {}",
            s(&b["service"]),
            s(&b["address"]),
            s(&b["weight"]),
            health,
            s(&b["active"]),
            s(&b["inactive"]),
            s(&b["last_check"]["detail"])
        );
    }
    not_answering(out, v);
}

fn not_answering(out: &mut String, v: &Value) {
    if !list(&v["workers_not_answering"]).is_empty() {
        let _ = writeln!(
            out,
            "note: worker(s) {} did not answer in time; flow counts leave them out",
            names(&v["workers_not_answering"])
        );
    }
}

fn flows(out: &mut String, v: &Value) {
    let _ = writeln!(out, "{:<7} {:>10} {:>10}", "WORKER", "FLOWS", "CAPACITY");
    for w in list(&v["workers"]) {
        let _ = writeln!(
            out,
            "{:<7} {:>10} {:>10}",
            s(&w["worker"]),
            s(&w["flows"]),
            s(&w["capacity"])
        );
    }
    let _ = writeln!(out, "total {}", s(&v["total"]));
    if v["client"].is_string() {
        let _ = writeln!(out, "flows of client {}:", s(&v["client"]));
        let _ = writeln!(
            out,
            "{:<21} {:<21} {:<5} {:<16} {:<21} STATE",
            "CLIENT", "DESTINATION", "PROTO", "SERVICE", "BACKEND"
        );
        for m in list(&v["matches"]) {
            let _ = writeln!(
                out,
                "{:<21} {:<21} {:<5} {:<16} {:<21} {}",
                s(&m["client"]),
                s(&m["destination"]),
                s(&m["protocol"]),
                s(&m["service"]),
                s(&m["backend"]),
                s(&m["state"])
            );
        }
    } else {
        let _ = writeln!(out, "{:<16} {:>8}", "TOP CLIENT", "FLOWS");
        for c in list(&v["top_clients"]) {
            let _ = writeln!(out, "{:<16} {:>8}", s(&c["client"]), s(&c["flows"]));
        }
    }
    not_answering(out, v);
}

fn stats(out: &mut String, v: &Value) {
    let _ = writeln!(
        out,
        "{:<7} {:>12} {:>14} {:>12} {:>14} {:>10} {:>10}",
        "WORKER", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES", "HANDOFF", "DROPS"
    );
    for c in list(&v["cores"]) {
        let drops: u64 = c["drops"]
            .as_object()
            .map(|m| m.values().map(n).sum())
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "{:<7} {:>12} {:>14} {:>12} {:>14} {:>10} {:>10}",
            s(&c["worker"]),
            s(&c["rx_packets"]),
            s(&c["rx_bytes"]),
            s(&c["tx_packets"]),
            s(&c["tx_bytes"]),
            s(&c["handoff_out"]),
            drops
        );
    }
    if let Some(drops) = v["drops"].as_object() {
        for (reason, d) in drops.iter().filter(|(_, d)| n(d) > 0) {
            let _ = writeln!(out, "  drop {reason:<24} {}", s(d));
        }
    }
    if let Some(ignored) = v["ignored"].as_object() {
        for (reason, d) in ignored.iter().filter(|(_, d)| n(d) > 0) {
            let _ = writeln!(out, "  ignored {reason:<21} {}", s(d));
        }
    }
    if n(&v["arp_claims"]) > 0 {
        let _ = writeln!(
            out,
            "  arp claims on owned addresses, answered: {}",
            s(&v["arp_claims"])
        );
    }
    for i in list(&v["interfaces"]) {
        let _ = writeln!(
            out,
            "interface {}: rx_dropped={}  rx_errors={}  tx_dropped={}  tx_errors={}",
            s(&i["name"]),
            s(&i["rx_dropped"]),
            s(&i["rx_errors"]),
            s(&i["tx_dropped"]),
            s(&i["tx_errors"])
        );
    }
    for (label, key) in [("xdp", "xdp"), ("af_xdp sockets", "afxdp")] {
        if let Some(x) = v[key].as_object() {
            let _ = writeln!(
                out,
                "{label}: {}",
                x.iter()
                    .map(|(k, v)| format!("{k}={}", s(v)))
                    .collect::<Vec<_>>()
                    .join("  ")
            );
        }
    }
}

/// Rates between two `stats` replies taken `secs` apart: per worker packets
/// and bits per second, and drops per second by reason.
pub fn rates(old: &Value, new: &Value, secs: f64) -> Value {
    let secs = secs.max(1e-3);
    let rate = |a: &Value, b: &Value| (n(b).saturating_sub(n(a))) as f64 / secs;
    let cores: Vec<Value> = list(&new["cores"])
        .iter()
        .map(|c| {
            let prev = list(&old["cores"])
                .iter()
                .find(|o| o["worker"] == c["worker"])
                .cloned()
                .unwrap_or(Value::Null);
            let drops: u64 = c["drops"]
                .as_object()
                .map(|m| m.values().map(n).sum())
                .unwrap_or(0);
            let old_drops: u64 = prev["drops"]
                .as_object()
                .map(|m| m.values().map(n).sum())
                .unwrap_or(0);
            json!({
                "worker": c["worker"],
                "rx_pps": rate(&prev["rx_packets"], &c["rx_packets"]),
                "rx_bps": rate(&prev["rx_bytes"], &c["rx_bytes"]) * 8.0,
                "tx_pps": rate(&prev["tx_packets"], &c["tx_packets"]),
                "tx_bps": rate(&prev["tx_bytes"], &c["tx_bytes"]) * 8.0,
                "drops_per_s": drops.saturating_sub(old_drops) as f64 / secs,
            })
        })
        .collect();
    let mut drops = Map::new();
    if let Some(m) = new["drops"].as_object() {
        for (reason, d) in m {
            let r = rate(&old["drops"][reason], d);
            if r > 0.0 {
                drops.insert(reason.clone(), json!(r));
            }
        }
    }
    json!({ "interval_s": secs, "cores": cores, "drops_per_s": drops })
}

fn rates_table(out: &mut String, v: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let _ = writeln!(
        out,
        "{:<7} {:>12} {:>14} {:>12} {:>14} {:>10}",
        "WORKER", "RX PPS", "RX BIT/S", "TX PPS", "TX BIT/S", "DROPS/S"
    );
    for c in list(&v["cores"]) {
        let _ = writeln!(
            out,
            "{:<7} {:>12.0} {:>14.0} {:>12.0} {:>14.0} {:>10.0}",
            s(&c["worker"]),
            f(&c["rx_pps"]),
            f(&c["rx_bps"]),
            f(&c["tx_pps"]),
            f(&c["tx_bps"]),
            f(&c["drops_per_s"])
        );
    }
    if let Some(m) = v["drops_per_s"].as_object() {
        for (reason, r) in m {
            let _ = writeln!(out, "  drop {reason:<24} {:.0}/s", f(r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_counter_deltas() {
        let old = json!({"cores": [{"worker": 0, "rx_packets": 100, "rx_bytes": 1000, "tx_packets": 50, "tx_bytes": 500, "drops": {"ttl": 1}}], "drops": {"ttl": 1}});
        let new = json!({"cores": [{"worker": 0, "rx_packets": 300, "rx_bytes": 3000, "tx_packets": 150, "tx_bytes": 1500, "drops": {"ttl": 5}}], "drops": {"ttl": 5}});
        let r = rates(&old, &new, 2.0);
        assert_eq!(r["cores"][0]["rx_pps"], 100.0);
        assert_eq!(r["cores"][0]["rx_bps"], 8000.0);
        assert_eq!(r["cores"][0]["tx_pps"], 50.0);
        assert_eq!(r["cores"][0]["drops_per_s"], 2.0);
        assert_eq!(r["drops_per_s"]["ttl"], 2.0);
        let table = render("rates", &r);
        assert!(table.contains("drop ttl"), "{table}");
    }

    #[test]
    fn stats_separate_drops_from_ignored_frames_and_show_arp_claims() {
        let v = json!({"cores": [], "drops": {"no_flow": 3, "ttl_expired": 0},
            "ignored": {"arp_announcement": 7}, "arp_claims": 2});
        let t = render("stats", &v);
        assert!(
            t.contains("drop no_flow") && !t.contains("ttl_expired"),
            "{t}"
        );
        assert!(
            t.contains("ignored arp_announcement") && t.contains(" 7"),
            "{t}"
        );
        assert!(
            t.contains("arp claims on owned addresses, answered: 2"),
            "{t}"
        );
    }

    #[test]
    fn status_prints_sections_it_does_not_know() {
        let v =
            json!({"node": "lb1", "services": [], "vrrp": [{"name": "site-a", "state": "master"}]});
        let t = render("status", &v);
        assert!(t.contains("VRRP:") && t.contains("state=master"), "{t}");
    }

    #[test]
    fn operator_overrides_and_handovers_are_spelled_out() {
        let v = json!({"configured": true, "local_as": 1, "router_id": "1.1.1.1", "announced": [],
            "prefixes": [{"prefix": "10.0.0.0/25", "announced": false, "override": "withdrawn"}], "peers": []});
        let t = render("bgp", &v);
        let row = t
            .lines()
            .find(|l| l.starts_with("10.0.0.0/25"))
            .unwrap_or_default();
        assert!(row.contains("false") && row.ends_with("withdrawn"), "{t}");
        let v = json!({"instance": "vi", "peer_took_over": true, "new_master": "10.0.0.2",
            "switch_over_ms": 25.4, "back": {"master_again": true, "after_ms": 304.2}});
        let t = render("handover", &v);
        assert!(t.contains("10.0.0.2 took over after 25 ms"), "{t}");
        assert!(t.contains("master again after 304 ms"), "{t}");
        let t = render(
            "handover",
            &json!({"instance": "vi", "peer_took_over": false, "note": "check the backup"}),
        );
        assert!(
            t.contains("no peer took over") && t.contains("check the backup"),
            "{t}"
        );
    }
}
