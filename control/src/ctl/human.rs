//! Human-readable tables for `vipctl` replies. Absent values (no last
//! check, no peer error) print as `-`.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::fmt::Write as _;

use ctlproto::reply;
use serde::{Deserialize, Serialize};

/// A reply `vipctl` prints as a table or a line.
pub trait Human {
    fn render(&self) -> String;
}

/// An optional value, `-` when absent.
fn opt<T: Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "-".into(), ToString::to_string)
}

/// An address with a port as `vipctl` shows it: IPv6 in brackets.
fn with_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The width of a column of addresses: `min` (what IPv4 needs, so IPv4
/// tables look as they always did), or its widest cell so IPv6 rows stay
/// aligned.
fn width<'a>(min: usize, cells: impl IntoIterator<Item = &'a str>) -> usize {
    cells
        .into_iter()
        .map(|c| c.chars().count())
        .fold(min, usize::max)
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// `key=value` pairs of a reply section as its JSON has them.
fn fields(v: &impl Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                serde_json::Value::Null => format!("{k}=-"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join("  "),
        Ok(other) => other.to_string(),
        Err(e) => format!("({e})"),
    }
}

impl Human for reply::BackendChange {
    fn render(&self) -> String {
        format!(
            "backend {} of {}: {} (id {})\n",
            self.address, self.service, self.change, self.id
        )
    }
}

impl Human for reply::Reload {
    fn render(&self) -> String {
        format!(
            "reloaded: backends +{} -{} ={}; services added {}, removed {}\n",
            self.backends_added,
            self.backends_removed,
            self.backends_kept,
            names(&self.services_added),
            names(&self.services_removed)
        )
    }
}

impl Human for reply::BgpOverride {
    fn render(&self) -> String {
        format!("{}: {}\n", self.prefix, self.change)
    }
}

impl Human for reply::Release {
    fn render(&self) -> String {
        let what = if self.was_held {
            "hold released"
        } else {
            "was not held"
        };
        format!("{}: {what}; now {}\n", self.instance, self.state)
    }
}

impl Human for reply::Vrrp {
    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<14} {:<9} {:>4} {:<4} {:<4} {:<8} {:>4}  LAST TRANSITION",
            "INSTANCE", "INTERFACE", "VRID", "VER", "FAM", "STATE", "PRIO"
        );
        for i in &self.instances {
            let last = i
                .transitions
                .last()
                .map(|t| format!("{} -> {} ({})", t.from, t.to, t.reason))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "{:<14} {:<9} {:>4} {:<4} {:<4} {:<8} {:>4}  {last}",
                i.name,
                i.interface,
                i.vrid,
                format!("v{}", i.version),
                i.family.replace("IP", "ip"),
                i.state,
                i.priority
            );
            let _ = writeln!(
                out,
                "{:<14} from {}, vips {}",
                "",
                i.address,
                i.vips.join(" ")
            );
            let c = &i.counters;
            let rejected = [
                ("family", c.family_errors),
                ("source", c.source_errors),
                ("destination", c.destination_errors),
                ("length", c.length_errors),
                ("v2-over-ipv6", c.v2_over_ipv6),
                ("ttl", c.ttl_errors),
                ("checksum", c.checksum_errors),
                ("version", c.version_errors),
                ("false-owner", c.false_owner),
            ]
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(why, n)| format!("{why} {n}"))
            .collect::<Vec<_>>();
            if !rejected.is_empty() {
                let _ = writeln!(out, "{:<14} rejected: {}", "", rejected.join(", "));
            }
        }
        out
    }
}

impl Human for reply::Sync {
    fn render(&self) -> String {
        let mut out = String::new();
        let Some(s) = self.node.as_ref().filter(|_| self.configured) else {
            return "connection sync is not configured on this node\n".into();
        };
        let _ = writeln!(
            out,
            "node {} on {}, {}: {}{}",
            s.node_id,
            s.interface,
            s.destination,
            s.state,
            s.ready_reason
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "{:>6} {:<16} {:<5} {:>9} {:>10} {:>9} {:>9} {:>9}  DUMP",
            "PEER", "ADDRESS", "UP", "HEARD MS", "RECORDS", "LAG US", "P50 US", "P99 US"
        );
        for p in &s.peers {
            let _ = writeln!(
                out,
                "{:>6} {:<16} {:<5} {:>9} {:>10} {:>9} {:>9} {:>9}  {}",
                p.node_id,
                p.address,
                p.up,
                opt(&p.last_heard_ms_ago),
                p.records_received,
                p.lag_last_us,
                p.lag_p50_us,
                p.lag_p99_us,
                p.dump
            );
        }
        let c = &s.counters;
        let r = &c.rejected;
        let _ = writeln!(
            out,
            "sent {} messages, {} records ({} IPv6); received {} messages, {} records ({} IPv6); {} pending; {} dumps served",
            c.messages_sent,
            c.records_sent,
            c.records_sent_v6,
            c.messages_received,
            c.records_received,
            c.records_received_v6,
            c.pending,
            c.dumps_served
        );
        let _ = writeln!(
            out,
            "workers: {} applied, {} deleted, {} activated by a takeover, {} conflicts, {} lost to full queues",
            c.applied, c.deleted, c.activated, c.conflicts, c.overflow
        );
        let n = &c.not_applied;
        let _ = writeln!(
            out,
            "not applied: {} bad state, {} no service, {} no backend, {} backend MAC unknown, {} unknown full-NAT source, {} wrong worker, {} table full",
            n.bad_state, n.no_service, n.no_backend, n.unresolved, n.snat_unknown, n.wrong_worker, n.table_full
        );
        let _ = writeln!(
            out,
            "rejected: {} truncated, {} bad magic, {} bad version, {} unknown type, {} bad length, {} bad authentication, {} replayed, {} from strangers, {} misdirected, {} bad records; {} own",
            r.truncated, r.bad_magic, r.bad_version, r.unknown_type, r.bad_length, r.bad_auth, r.replayed, r.stranger, r.misdirected, r.bad_record, r.own
        );
        out
    }
}

impl Human for reply::Bgp {
    fn render(&self) -> String {
        let mut out = String::new();
        let Some(b) = self.speaker.as_ref().filter(|_| self.configured) else {
            return "BGP is not configured on this node\n".into();
        };
        let _ = writeln!(
            out,
            "AS {}  router id {}  announced: {}",
            b.local_as,
            b.router_id,
            names(&b.announced)
        );
        // Wide enough for IPv6 prefixes and peer addresses.
        let _ = writeln!(out, "{:<24} {:<10} OVERRIDE", "PREFIX", "ANNOUNCED");
        for p in &b.prefixes {
            let _ = writeln!(out, "{:<24} {:<10} {}", p.prefix, p.announced, p.operator);
        }
        let _ = writeln!(
            out,
            "{:<24} {:>10} {:<12} {:>8} {:>9}  LAST ERROR",
            "PEER", "AS", "STATE", "UP S", "RECEIVED"
        );
        for p in &b.peers {
            let _ = writeln!(
                out,
                "{:<24} {:>10} {:<12} {:>8} {:>9}  {}",
                p.address,
                p.remote_as,
                p.state,
                opt(&p.uptime_s),
                p.received,
                opt(&p.last_error)
            );
            if !p.families.is_empty() {
                let _ = writeln!(out, "  families: {}", p.families.join(", "));
            }
            for why in &p.unsent_families {
                let _ = writeln!(out, "  not carried: {why}");
            }
            if let Some(f) = &p.bfd {
                let _ = writeln!(
                    out,
                    "  BFD {} (peer {}, {})  {} ms x{}  detect {} ms  in {} out {}  dropped {}  up {}  failures {}",
                    f.state,
                    f.remote_state,
                    f.diag,
                    f.interval_ms,
                    f.multiplier,
                    f.detection_ms,
                    f.packets_in,
                    f.packets_out,
                    f.dropped_malformed + f.dropped_ttl + f.dropped_auth + f.dropped_discriminator,
                    f.up_count,
                    f.failures
                );
            }
        }
        out
    }
}

impl Human for reply::Handover {
    fn render(&self) -> String {
        let mut out = String::new();
        let inst = &self.instance;
        if self.peer_took_over {
            let _ = writeln!(
                out,
                "{inst}: stepped down; {} took over after {:.0} ms",
                opt(&self.new_master),
                self.switch_over_ms.unwrap_or(f64::NAN)
            );
        } else {
            let _ = writeln!(out, "{inst}: stepped down, but no peer took over");
        }
        if let Some(b) = &self.back {
            if b.master_again {
                let _ = writeln!(
                    out,
                    "{inst}: released; master again after {:.0} ms",
                    b.after_ms.unwrap_or(f64::NAN)
                );
            } else {
                let _ = writeln!(out, "{inst}: released; still {}", b.state);
            }
        }
        if let Some(note) = &self.note {
            let _ = writeln!(out, "{note}");
        }
        out
    }
}

impl Human for reply::Status {
    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "node {}  site {}  up {}s  workers {}",
            self.node, self.site, self.uptime_s, self.workers
        );
        for i in &self.interfaces {
            let _ = writeln!(
                out,
                "interface {}  xdp {}  mtu {}",
                i.name, i.xdp_mode, i.mtu
            );
            if let Some(e) = &i.error {
                let _ = writeln!(out, "  ERROR: {e}");
            }
        }
        let vips: Vec<String> = self
            .services
            .iter()
            .map(|s| with_port(&s.vip, s.port))
            .collect();
        let vw = width(21, vips.iter().map(String::as_str));
        let _ = writeln!(
            out,
            "{:<16} {:<vw$} {:<6} {:>8}",
            "SERVICE", "VIP", "OWNED", "HEALTHY"
        );
        for (svc, vip) in self.services.iter().zip(&vips) {
            let _ = writeln!(
                out,
                "{:<16} {:<vw$} {:<6} {:>8}",
                svc.name,
                vip,
                svc.owned,
                format!("{}/{}", svc.healthy, svc.backends)
            );
        }
        if let Some(vrrp) = &self.vrrp {
            let _ = writeln!(out, "VRRP:");
            for i in vrrp {
                let _ = writeln!(out, "  {}", fields(i));
            }
        }
        if let Some(bgp) = &self.bgp {
            let _ = writeln!(out, "BGP: {}", fields(bgp));
        }
        if let Some(d) = &self.drain {
            let _ = writeln!(out, "DRAINED: {}", drain_line(d));
        }
        if let Some(s) = &self.sync {
            let _ = writeln!(out, "SYNC: {}", fields(s));
        }
        out
    }
}

/// One line of drain progress: what `vipctl node drain --timeout` prints
/// every second.
pub fn drain_line(d: &reply::Drain) -> String {
    let mut line = format!(
        "{:>6.1}s  connections {:>5}  pps {:>8.1}  flow entries {:>6}",
        d.since_s, d.connections, d.pps, d.flow_entries
    );
    if d.empty {
        let _ = write!(line, "  EMPTY for {:.1}s", d.empty_for_s);
    }
    if let Some(left) = d.timeout_left_s {
        let _ = write!(line, "  timeout in {left:.0}s");
    }
    if !d.workers_not_answering.is_empty() {
        let _ = write!(
            line,
            "  (workers not answering: {:?})",
            d.workers_not_answering
        );
    }
    line
}

impl Human for reply::Node {
    fn render(&self) -> String {
        let mut out = format!(
            "node {}: {} (drain mode {}){}\n",
            self.node,
            if self.draining {
                "drained"
            } else {
                "in service"
            },
            self.mode,
            if self.changed { ", changed now" } else { "" }
        );
        if let Some(d) = &self.drain {
            let _ = writeln!(out, "{}", drain_line(d));
        }
        if let Some(n) = &self.note {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }
}

impl Human for reply::Services {
    fn render(&self) -> String {
        let mut out = String::new();
        let vips: Vec<String> = self
            .services
            .iter()
            .map(|s| with_port(&s.summary.vip, s.summary.port))
            .collect();
        let vw = width(21, vips.iter().map(String::as_str));
        let _ = writeln!(
            out,
            "{:<16} {:<vw$} {:<5} {:<8} {:<8} {:<6} {:>8} SORRY",
            "SERVICE", "VIP", "PROTO", "SCHED", "FORWARD", "OWNED", "HEALTHY"
        );
        for (svc, vip) in self.services.iter().zip(&vips) {
            let sum = &svc.summary;
            let _ = writeln!(
                out,
                "{:<16} {:<vw$} {:<5} {:<8} {:<8} {:<6} {:>8} {}",
                sum.name,
                vip,
                svc.protocol,
                svc.scheduler,
                svc.forward,
                sum.owned,
                format!("{}/{}", sum.healthy, sum.backends),
                opt(&svc.sorry_server)
            );
        }
        out
    }
}

impl Human for reply::Backends {
    fn render(&self) -> String {
        let mut out = String::new();
        let bw = width(21, self.backends.iter().map(|b| b.address.as_str()));
        let _ = writeln!(
            out,
            "{:<16} {:<bw$} {:>6} {:<8} {:>8} {:>8} LAST CHECK",
            "SERVICE", "BACKEND", "WEIGHT", "HEALTH", "ACTIVE", "INACTIVE"
        );
        for b in &self.backends {
            let mut health = if b.healthy { "up" } else { "down" }.to_string();
            if !b.enabled {
                health += ",off";
            }
            let _ = writeln!(
                out,
                "{:<16} {:<bw$} {:>6} {:<8} {:>8} {:>8} {}",
                b.service,
                b.address,
                b.weight,
                health,
                b.active,
                b.inactive,
                opt(&b.last_check.as_ref().map(|c| &c.detail))
            );
        }
        not_answering(&mut out, &self.workers_not_answering);
        out
    }
}

fn not_answering(out: &mut String, workers: &[usize]) {
    if !workers.is_empty() {
        let list: Vec<String> = workers.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "note: worker(s) {} did not answer in time; flow counts leave them out",
            list.join(", ")
        );
    }
}

impl Human for reply::Flows {
    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{:<7} {:>10} {:>10}", "WORKER", "FLOWS", "CAPACITY");
        for w in &self.workers {
            let _ = writeln!(out, "{:<7} {:>10} {:>10}", w.worker, w.flows, w.capacity);
        }
        let _ = writeln!(
            out,
            "total {}  picked up {} (since start {})",
            self.total, self.picked_up, self.picked_up_total
        );
        if let Some(client) = &self.client {
            // No colon after the address: it would read as part of an IPv6 one.
            let _ = writeln!(out, "flows of client {client}");
            let cw = width(21, self.matches.iter().map(|m| m.client.as_str()));
            let dw = width(21, self.matches.iter().map(|m| m.destination.as_str()));
            let backends: Vec<String> = self.matches.iter().map(|m| opt(&m.backend)).collect();
            let bw = width(21, backends.iter().map(String::as_str));
            let _ = writeln!(
                out,
                "{:<cw$} {:<dw$} {:<5} {:<16} {:<bw$} STATE",
                "CLIENT", "DESTINATION", "PROTO", "SERVICE", "BACKEND"
            );
            for (m, backend) in self.matches.iter().zip(&backends) {
                let _ = writeln!(
                    out,
                    "{:<cw$} {:<dw$} {:<5} {:<16} {:<bw$} {}{}",
                    m.client,
                    m.destination,
                    m.protocol,
                    opt(&m.service),
                    backend,
                    m.state,
                    match (m.picked_up, m.learned) {
                        (_, true) => " (learned from a peer)",
                        (true, false) => " (picked up)",
                        (false, false) => "",
                    }
                );
            }
        } else {
            let tw = width(16, self.top_clients.iter().map(|c| c.client.as_str()));
            let _ = writeln!(out, "{:<tw$} {:>8}", "TOP CLIENT", "FLOWS");
            for c in &self.top_clients {
                let _ = writeln!(out, "{:<tw$} {:>8}", c.client, c.flows);
            }
        }
        not_answering(&mut out, &self.workers_not_answering);
        out
    }
}

impl Human for reply::Stats {
    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<7} {:>12} {:>14} {:>12} {:>14} {:>10} {:>10}",
            "WORKER", "RX PKTS", "RX BYTES", "TX PKTS", "TX BYTES", "HANDOFF", "DROPS"
        );
        for c in &self.cores {
            let _ = writeln!(
                out,
                "{:<7} {:>12} {:>14} {:>12} {:>14} {:>10} {:>10}",
                c.worker,
                c.rx_packets,
                c.rx_bytes,
                c.tx_packets,
                c.tx_bytes,
                c.handoff_out,
                c.drops.values().sum::<u64>()
            );
        }
        for (reason, d) in self.drops.iter().filter(|(_, d)| **d > 0) {
            let _ = writeln!(out, "  drop {reason:<24} {d}");
        }
        for (reason, d) in self.ignored.iter().filter(|(_, d)| **d > 0) {
            let _ = writeln!(out, "  ignored {reason:<21} {d}");
        }
        if self.arp_claims > 0 {
            let _ = writeln!(
                out,
                "  arp claims on owned addresses, answered: {}",
                self.arp_claims
            );
        }
        for i in &self.interfaces {
            let line = match i {
                reply::LinkStats::Counters {
                    name,
                    rx_errors,
                    rx_dropped,
                    tx_errors,
                    tx_dropped,
                } => format!(
                    "interface {name}: rx_dropped={rx_dropped}  rx_errors={rx_errors}  tx_dropped={tx_dropped}  tx_errors={tx_errors}"
                ),
                reply::LinkStats::Unavailable { name, .. } => format!(
                    "interface {name}: rx_dropped=-  rx_errors=-  tx_dropped=-  tx_errors=-"
                ),
            };
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "xdp: {}", fields(&self.xdp));
        let _ = writeln!(out, "af_xdp sockets: {}", fields(&self.afxdp));
        out
    }
}

/// Rates between two `stats` replies: what `vipctl stats --watch` prints.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub interval_s: f64,
    pub cores: Vec<CoreRates>,
    /// Drops per second by reason, the reasons that rose only.
    pub drops_per_s: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoreRates {
    pub worker: usize,
    pub rx_pps: f64,
    pub rx_bps: f64,
    pub tx_pps: f64,
    pub tx_bps: f64,
    pub drops_per_s: f64,
}

/// Rates between two `stats` replies taken `secs` apart: per worker packets
/// and bits per second, and drops per second by reason.
pub fn rates(old: &reply::Stats, new: &reply::Stats, secs: f64) -> Rates {
    let secs = secs.max(1e-3);
    let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
    let cores = new
        .cores
        .iter()
        .map(|c| {
            let prev = old
                .cores
                .iter()
                .find(|o| o.worker == c.worker)
                .cloned()
                .unwrap_or_default();
            let drops: u64 = c.drops.values().sum();
            let old_drops: u64 = prev.drops.values().sum();
            CoreRates {
                worker: c.worker,
                rx_pps: rate(prev.rx_packets, c.rx_packets),
                rx_bps: rate(prev.rx_bytes, c.rx_bytes) * 8.0,
                tx_pps: rate(prev.tx_packets, c.tx_packets),
                tx_bps: rate(prev.tx_bytes, c.tx_bytes) * 8.0,
                drops_per_s: drops.saturating_sub(old_drops) as f64 / secs,
            }
        })
        .collect();
    let drops_per_s = new
        .drops
        .iter()
        .map(|(reason, d)| {
            let was = old.drops.get(reason).copied().unwrap_or(0);
            (reason.clone(), rate(was, *d))
        })
        .filter(|(_, r)| *r > 0.0)
        .collect();
    Rates {
        interval_s: secs,
        cores,
        drops_per_s,
    }
}

impl Human for Rates {
    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<7} {:>12} {:>14} {:>12} {:>14} {:>10}",
            "WORKER", "RX PPS", "RX BIT/S", "TX PPS", "TX BIT/S", "DROPS/S"
        );
        for c in &self.cores {
            let _ = writeln!(
                out,
                "{:<7} {:>12.0} {:>14.0} {:>12.0} {:>14.0} {:>10.0}",
                c.worker, c.rx_pps, c.rx_bps, c.tx_pps, c.tx_bps, c.drops_per_s
            );
        }
        for (reason, r) in &self.drops_per_s {
            let _ = writeln!(out, "  drop {reason:<24} {r:.0}/s");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core(rx_packets: u64, rx_bytes: u64, ttl: u64) -> reply::CoreStats {
        reply::CoreStats {
            rx_packets,
            rx_bytes,
            tx_packets: rx_packets / 2,
            tx_bytes: rx_bytes / 2,
            drops: [("ttl".to_string(), ttl)].into(),
            ..reply::CoreStats::default()
        }
    }

    #[test]
    fn rates_come_from_counter_deltas() {
        let old = reply::Stats {
            cores: vec![core(100, 1000, 1)],
            drops: [("ttl".to_string(), 1)].into(),
            ..reply::Stats::default()
        };
        let new = reply::Stats {
            cores: vec![core(300, 3000, 5)],
            drops: [("ttl".to_string(), 5)].into(),
            ..reply::Stats::default()
        };
        let r = rates(&old, &new, 2.0);
        assert_eq!(r.cores[0].rx_pps, 100.0);
        assert_eq!(r.cores[0].rx_bps, 8000.0);
        assert_eq!(r.cores[0].tx_pps, 50.0);
        assert_eq!(r.cores[0].drops_per_s, 2.0);
        assert_eq!(r.drops_per_s["ttl"], 2.0);
        let table = r.render();
        assert!(table.contains("drop ttl"), "{table}");
    }

    #[test]
    fn bgp_shows_each_peers_bfd_session_under_it() {
        let peer = |address: &str, bfd| reply::BgpPeer {
            address: address.into(),
            state: "Established".into(),
            bfd,
            ..reply::BgpPeer::default()
        };
        let b = reply::Bgp {
            configured: true,
            speaker: Some(reply::BgpSpeaker {
                peers: vec![
                    peer(
                        "172.16.1.1",
                        Some(reply::BfdSession {
                            state: "Up".into(),
                            remote_state: "Up".into(),
                            diag: "no diagnostic".into(),
                            interval_ms: 50,
                            multiplier: 3,
                            detection_ms: 150,
                            dropped_ttl: 2,
                            failures: 1,
                            ..reply::BfdSession::default()
                        }),
                    ),
                    peer("172.16.2.1", None),
                ],
                ..reply::BgpSpeaker::default()
            }),
        };
        let t = b.render();
        let lines: Vec<&str> = t.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with("172.16.1.1"))
            .expect("peer line");
        let bfd = lines[at + 1];
        for want in [
            "BFD Up",
            "50 ms x3",
            "detect 150 ms",
            "dropped 2",
            "failures 1",
        ] {
            assert!(bfd.contains(want), "`{want}` not in `{bfd}`");
        }
        assert_eq!(t.matches("BFD").count(), 1, "{t}");
    }

    #[test]
    fn stats_separate_drops_from_ignored_frames_and_show_arp_claims() {
        let v = reply::Stats {
            drops: [("no_flow".to_string(), 3), ("ttl_expired".to_string(), 0)].into(),
            ignored: [("arp_announcement".to_string(), 7)].into(),
            arp_claims: 2,
            ..reply::Stats::default()
        };
        let t = v.render();
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
    fn status_prints_its_vrrp_and_bgp_sections() {
        let v = reply::Status {
            node: "lb1".into(),
            vrrp: Some(vec![reply::VrrpSummary {
                name: "site-a".into(),
                state: "master".into(),
                ..reply::VrrpSummary::default()
            }]),
            bgp: Some(reply::BgpSummary {
                announced: vec!["10.0.0.0/25".into()],
                ..reply::BgpSummary::default()
            }),
            ..reply::Status::default()
        };
        let t = v.render();
        assert!(t.contains("VRRP:") && t.contains("state=master"), "{t}");
        assert!(t.contains("last=-") && t.contains("name=site-a"), "{t}");
        assert!(t.contains("BGP: announced=[\"10.0.0.0/25\"]"), "{t}");
    }

    #[test]
    fn ipv6_peers_and_their_families_are_shown() {
        let v = reply::Bgp {
            configured: true,
            speaker: Some(reply::BgpSpeaker {
                local_as: 1,
                router_id: "1.1.1.1".into(),
                prefixes: vec![reply::BgpPrefix {
                    prefix: "2001:db8:ffff:ffff::/64".into(),
                    announced: true,
                    operator: "-".into(),
                }],
                peers: vec![reply::BgpPeer {
                    address: "2001:db8:ffff:ffff::1".into(),
                    remote_as: 65000,
                    state: "Established".into(),
                    families: vec!["ipv4-unicast".into()],
                    unsent_families: vec![
                        "ipv6-unicast: the peer did not offer it in its OPEN".into()
                    ],
                    ..reply::BgpPeer::default()
                }],
                ..reply::BgpSpeaker::default()
            }),
        };
        let t = v.render();
        // The longest addresses still leave a gap before the next column.
        assert!(t.contains("2001:db8:ffff:ffff::/64  true"), "{t}");
        assert!(t.contains("2001:db8:ffff:ffff::1 "), "{t}");
        assert!(t.contains("  families: ipv4-unicast\n"), "{t}");
        assert!(
            t.contains("  not carried: ipv6-unicast: the peer did not offer it"),
            "{t}"
        );
    }

    /// Asserts that the `rows` lines after the header naming `column` each
    /// have a cell starting where the header's `column` does.
    fn assert_aligned(table: &str, column: &str, rows: usize) {
        let mut lines = table.lines().skip_while(|l| !l.contains(column));
        let head = lines
            .next()
            .unwrap_or_else(|| panic!("no {column}: {table}"));
        let at = head.find(column).expect("the column");
        let rows: Vec<&str> = lines.take(rows).collect();
        for row in &rows {
            let (before, cell) = row.split_at(at.min(row.len()));
            assert!(
                before.ends_with(' ') && cell.starts_with(|c: char| c != ' '),
                "{column} not aligned in `{row}`:\n{table}"
            );
        }
    }

    fn summary(name: &str, vip: &str) -> reply::ServiceSummary {
        reply::ServiceSummary {
            name: name.into(),
            vip: vip.into(),
            port: 80,
            owned: true,
            backends: 2,
            healthy: 1,
        }
    }

    #[test]
    fn ipv6_vips_are_bracketed_before_their_port_in_aligned_columns() {
        let ipv4_only = reply::Status {
            services: vec![summary("web", "10.9.0.50")],
            ..reply::Status::default()
        }
        .render();
        assert!(
            ipv4_only.contains("\nSERVICE          VIP                   OWNED   HEALTHY\n"),
            "IPv4 tables keep their widths:\n{ipv4_only}"
        );
        let v = reply::Status {
            services: vec![
                summary("web", "10.9.0.50"),
                summary("web6", "2001:db8:9::50"),
            ],
            ..reply::Status::default()
        };
        let t = v.render();
        assert!(t.contains(" 10.9.0.50:80 "), "{t}");
        assert!(t.contains(" [2001:db8:9::50]:80 "), "{t}");
        assert_aligned(&t, "OWNED", 2);
        assert_aligned(&t, "VIP", 2);

        let service = |summary, sorry: Option<&str>| reply::Service {
            summary,
            protocol: "tcp".into(),
            scheduler: "wrr".into(),
            forward: "nat".into(),
            sorry_server: sorry.map(Into::into),
            ..reply::Service::default()
        };
        let long = "2001:db8:ffff:ffff:ffff:ffff:ffff:50";
        let t = reply::Services {
            services: vec![
                service(summary("web", "10.9.0.50"), None),
                service(summary("web6", long), Some("[2001:db8:9:1::250]:8080")),
            ],
        }
        .render();
        assert!(t.contains(&format!(" [{long}]:80 ")), "{t}");
        assert!(t.contains(" [2001:db8:9:1::250]:8080"), "{t}");
        for column in ["PROTO", "SCHED", "OWNED", "SORRY"] {
            assert_aligned(&t, column, 2);
        }
    }

    #[test]
    fn ipv6_backends_clients_and_flows_are_listed_in_aligned_columns() {
        let backend = |service: &str, address: &str| reply::Backend {
            service: service.into(),
            address: address.into(),
            weight: 1,
            healthy: true,
            enabled: true,
            ..reply::Backend::default()
        };
        let t = reply::Backends {
            backends: vec![
                backend("web", "10.9.1.11:8080"),
                backend("web6", "[2001:db8:9:1:ffff:ffff:ffff:11]:8080"),
            ],
            workers_not_answering: Vec::new(),
        }
        .render();
        assert!(
            t.contains("web6             [2001:db8:9:1:ffff:ffff:ffff:11]:8080 "),
            "{t}"
        );
        assert_aligned(&t, "HEALTH", 2);
        assert_aligned(&t, "LAST CHECK", 2);

        let flow = |port: u16, backend: Option<&str>| reply::FlowMatch {
            client: format!("[2001:db8::7]:{port}"),
            destination: "[2001:db8:9:ffff:ffff:ffff:ffff:50]:80".into(),
            protocol: "tcp".into(),
            service: Some("web6".into()),
            backend: backend.map(Into::into),
            state: "ESTABLISHED".into(),
            ..reply::FlowMatch::default()
        };
        let t = reply::Flows {
            client: Some("2001:db8::7".into()),
            matches: vec![
                flow(41000, Some("[2001:db8:9:1::11]:8080")),
                flow(41001, None),
            ],
            ..reply::Flows::default()
        }
        .render();
        assert!(t.contains("flows of client 2001:db8::7\n"), "{t}");
        assert!(t.contains("[2001:db8::7]:41000 "), "{t}");
        assert!(t.contains(" [2001:db8:9:1::11]:8080 "), "{t}");
        for column in ["DESTINATION", "PROTO", "SERVICE", "BACKEND", "STATE"] {
            assert_aligned(&t, column, 2);
        }

        let client = |client: &str, flows| reply::ClientFlows {
            client: client.into(),
            flows,
        };
        let t = reply::Flows {
            top_clients: vec![
                client("2001:db8:ffff:ffff:ffff:ffff:ffff:7", 12),
                client("10.0.0.7", 3),
            ],
            ..reply::Flows::default()
        }
        .render();
        let table: Vec<&str> = t
            .lines()
            .skip_while(|l| !l.starts_with("TOP CLIENT"))
            .collect();
        assert_eq!(table.len(), 3, "{t}");
        // FLOWS is right-aligned: every line ends where its header does.
        assert!(table.iter().all(|l| l.len() == table[0].len()), "{t}");
        assert!(
            table[1].starts_with("2001:db8:ffff:ffff:ffff:ffff:ffff:7 "),
            "{t}"
        );
    }

    #[test]
    fn operator_overrides_and_handovers_are_spelled_out() {
        let v = reply::Bgp {
            configured: true,
            speaker: Some(reply::BgpSpeaker {
                local_as: 1,
                router_id: "1.1.1.1".into(),
                prefixes: vec![reply::BgpPrefix {
                    prefix: "10.0.0.0/25".into(),
                    announced: false,
                    operator: "withdrawn".into(),
                }],
                ..reply::BgpSpeaker::default()
            }),
        };
        let t = v.render();
        let row = t
            .lines()
            .find(|l| l.starts_with("10.0.0.0/25"))
            .unwrap_or_default();
        assert!(row.contains("false") && row.ends_with("withdrawn"), "{t}");
        let v = reply::Handover {
            instance: "vi".into(),
            peer_took_over: true,
            new_master: Some("10.0.0.2".into()),
            switch_over_ms: Some(25.4),
            back: Some(reply::HandoverBack {
                master_again: true,
                after_ms: Some(304.2),
                state: "master".into(),
            }),
            ..reply::Handover::default()
        };
        let t = v.render();
        assert!(t.contains("10.0.0.2 took over after 25 ms"), "{t}");
        assert!(t.contains("master again after 304 ms"), "{t}");
        let t = reply::Handover {
            instance: "vi".into(),
            note: Some("check the backup".into()),
            ..reply::Handover::default()
        }
        .render();
        assert!(
            t.contains("no peer took over") && t.contains("check the backup"),
            "{t}"
        );
    }
}
