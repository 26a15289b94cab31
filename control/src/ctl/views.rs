//! Read-only views of the node for the control socket, one typed reply per
//! command.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ctlproto::reply;
use dataplane::verdict::DropReason;

use crate::node::Node;
use crate::node::NodeState;

/// What `status` and `services` both say of service `s`.
fn service_summary(st: &NodeState, s: usize) -> reply::ServiceSummary {
    let svc = &st.config.services[s];
    reply::ServiceSummary {
        name: svc.name.clone(),
        vip: svc.vip.to_string(),
        port: svc.port,
        owned: st.owns(svc.vip),
        backends: svc.backends.len(),
        healthy: st.healthy_backends(s),
    }
}

pub(crate) async fn status(node: &Node) -> reply::Status {
    let st = node.state.lock().await;
    let services = (0..st.config.services.len())
        .map(|s| service_summary(&st, s))
        .collect();
    let vrrp: Vec<reply::VrrpSummary> = st
        .vrrp
        .iter()
        .map(|c| {
            let i = c.status.lock().unwrap_or_else(|e| e.into_inner());
            reply::VrrpSummary {
                name: i.name.clone(),
                state: i.state.as_str().to_string(),
                priority: i.priority,
                held: i.held,
                last: i
                    .transitions
                    .back()
                    .map(|t| format!("{} -> {}", t.from.as_str(), t.to.as_str())),
            }
        })
        .collect();
    let interfaces = st
        .ports
        .iter()
        .map(|p| {
            let max = engine::MAX_MTU;
            reply::InterfaceStatus {
                name: p.name.clone(),
                xdp_mode: p.xdp_mode.as_str().to_string(),
                mtu: p.mtu,
                fast_path_egress: p.xdp_xmit,
                error: (p.mtu > max).then(|| {
                    format!(
                        "MTU {} is above the {max} bytes vipd can receive: larger packets are lost; \
                         lower it (`ip link set dev {} mtu {max}`)",
                        p.mtu, p.name
                    )
                }),
            }
        })
        .collect();
    let bgp = bgp(node).speaker.map(|b| reply::BgpSummary {
        announced: b.announced,
        withdrawn: b.withdrawn,
        peers: b
            .peers
            .into_iter()
            .map(|p| reply::PeerSummary {
                peer: p.address,
                state: p.state,
            })
            .collect(),
    });
    let drain = drain_of(node, &st);
    let sync = sync(node).node.map(|s| reply::SyncSummary {
        state: s.state,
        peers_up: s.peers.iter().filter(|p| p.up).count(),
        peers: s.peers.len(),
        lag_p99_us: s.peers.iter().map(|p| p.lag_p99_us).max().unwrap_or(0),
    });
    reply::Status {
        drain,
        sync,
        node: st.config.node.name.clone(),
        site: st.config.node.site.clone(),
        uptime_s: node.started.elapsed().as_secs(),
        workers: node.counters.cores().count(),
        interfaces,
        services,
        vrrp: (!vrrp.is_empty()).then_some(vrrp),
        bgp,
    }
}

/// The drain's progress while the node is drained.
fn drain_of(node: &Node, st: &NodeState) -> Option<reply::Drain> {
    st.drain
        .map(|d| node.drain_progress().reply(&d, std::time::Instant::now()))
}

/// `node`, and the answer to `node_drain` / `node_undrain`.
pub(crate) async fn node(node: &Node, changed: bool) -> reply::Node {
    let st = node.state.lock().await;
    let drain = drain_of(node, &st);
    let note = match (&st.config.bgp, st.drain.is_some()) {
        (None, true) => Some(
            "this node has no [bgp]: draining changes no route, so traffic keeps arriving; \
             move it away by other means (VRRP priority, the upstream router)"
                .to_string(),
        ),
        (Some(_), true) if drain.as_ref().is_some_and(|d| d.empty) => {
            Some("empty: no connection and no packet; the node can be stopped".to_string())
        }
        _ => None,
    };
    reply::Node {
        node: st.config.node.name.clone(),
        draining: st.drain.is_some(),
        mode: crate::node::drain_mode(st.config.bgp.as_ref()).to_string(),
        changed,
        drain,
        note,
    }
}

/// The node's packet counters: what `stats` answers and `/metrics` exposes.
pub(crate) fn stats(node: &Node) -> reply::Stats {
    let cores = node
        .counters
        .cores()
        .enumerate()
        .map(|(i, c)| reply::CoreStats {
            worker: i,
            rx_packets: c.rx_packets.get(),
            rx_bytes: c.rx_bytes.get(),
            tx_packets: c.tx_packets.get(),
            tx_bytes: c.tx_bytes.get(),
            handoff_out: c.handoff_out.get(),
            handoff_in: c.handoff_in.get(),
            drops: DropReason::ALL
                .iter()
                .filter(|r| r.is_drop() && c.drop(**r).get() > 0)
                .map(|r| (r.name().to_string(), c.drop(*r).get()))
                .collect(),
        })
        .collect();
    let by_reason = |drop: bool| -> BTreeMap<String, u64> {
        DropReason::ALL
            .iter()
            .filter(|r| r.is_drop() == drop)
            .map(|r| (r.name().to_string(), node.counters.drops(*r)))
            .collect()
    };
    let xdp = match node.steering.as_ref().map(|s| s.xdp_stats()) {
        None => reply::XdpStats::Unavailable {
            error: "this node has no dataplane".into(),
        },
        Some(Ok(x)) => reply::XdpStats::Counters {
            reply_keys_refused: node.counters.reply_keys_refused(),
            by_decision: x
                .by_decision()
                .iter()
                .map(|(name, n)| (name.to_string(), *n))
                .collect(),
        },
        Some(Err(e)) => reply::XdpStats::Unavailable {
            error: e.to_string(),
        },
    };
    let interfaces = node
        .interfaces
        .iter()
        .map(|name| match engine::link_counters(name) {
            Ok(l) => reply::LinkStats::Counters {
                name: name.clone(),
                rx_errors: l.rx_errors,
                rx_dropped: l.rx_dropped,
                tx_errors: l.tx_errors,
                tx_dropped: l.tx_dropped,
            },
            Err(e) => reply::LinkStats::Unavailable {
                name: name.clone(),
                error: e.to_string(),
            },
        })
        .collect();
    let k = node.counters.sockets();
    reply::Stats {
        cores,
        drops: by_reason(true),
        ignored: by_reason(false),
        arp_claims: node.published.load().arp_claims.seen(),
        xdp,
        afxdp: reply::SocketStats {
            rx_ring_full: k.rx_ring_full,
            rx_dropped: k.rx_dropped,
            fill_ring_empty: k.fill_ring_empty,
            invalid_descs: k.invalid_descs,
        },
        interfaces,
    }
}

pub(crate) async fn backends(node: &Node) -> reply::Backends {
    let ids: Vec<u32> = node.state.lock().await.backends().map(|b| b.id).collect();
    let (flows, missing) = node.runtime.query_flows(ids.clone(), None, 0).await;
    let totals = crate::node::Runtime::backend_totals(&flows, node.steering.as_deref(), &ids);
    let st = node.state.lock().await;
    let backends = st
        .backends()
        .map(|b| {
            let svc = &st.config.services[b.service];
            let be = &svc.backends[b.backend];
            let h = st.health.get(&b.id);
            let t = totals.get(&b.id).copied().unwrap_or_default();
            reply::Backend {
                service: svc.name.clone(),
                address: be.address.to_string(),
                id: b.id,
                weight: be.weight,
                enabled: !st.disabled.contains(&b.id),
                healthy: h.is_some_and(|h| h.healthy),
                active: t.active,
                inactive: t.inactive,
                packets: t.packets,
                bytes: t.bytes,
                last_check: h
                    .and_then(|h| h.last.as_ref())
                    .map(|r| reply::CheckOutcome {
                        ok: r.ok,
                        detail: r.detail.clone(),
                    }),
            }
        })
        .collect();
    reply::Backends {
        backends,
        workers_not_answering: missing,
    }
}

pub(crate) async fn services(node: &Node) -> reply::Services {
    let st = node.state.lock().await;
    let services = st
        .config
        .services
        .iter()
        .enumerate()
        .map(|(s, svc)| reply::Service {
            summary: service_summary(&st, s),
            protocol: svc.protocol.as_str().to_string(),
            scheduler: svc.scheduler.to_string(),
            forward: svc.forward.as_str().to_string(),
            persistence_s: svc.persistence_timeout.map(|d| d.as_secs()),
            sorry_server: svc.sorry_server.map(|a| a.to_string()),
            snat: svc.snat.iter().map(ToString::to_string).collect(),
        })
        .collect();
    reply::Services { services }
}

pub(crate) async fn flows(node: &Node, client: Option<IpAddr>, top: usize) -> reply::Flows {
    let (summaries, missing) = node.runtime.query_flows(Vec::new(), client, top).await;
    let st = node.state.lock().await;
    let mut clients: std::collections::HashMap<IpAddr, u64> = Default::default();
    for (ip, n) in summaries.iter().flat_map(|s| s.top_clients.iter()) {
        *clients.entry(*ip).or_default() += u64::from(*n);
    }
    let mut top_clients: Vec<(IpAddr, u64)> = clients.into_iter().collect();
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
    let matches = summaries
        .iter()
        .flat_map(|s| s.matches.iter().map(move |m| (s.worker, m)))
        .map(|(w, m)| {
            let (service, backend) = backend_of(m.backend_id).unzip();
            reply::FlowMatch {
                worker: w,
                client: m.client.to_string(),
                destination: m.destination.to_string(),
                protocol: match m.proto {
                    6 => "tcp".to_string(),
                    17 => "udp".to_string(),
                    p => p.to_string(),
                },
                service,
                backend,
                state: m.state.to_string(),
                fast_path: m.offloaded,
                fast_path_idle_ms: m
                    .fast_last_seen_ms
                    .map(|t| engine::monotonic_ms().saturating_sub(t)),
                picked_up: m.picked_up,
                learned: m.learned,
            }
        })
        .collect();
    reply::Flows {
        workers: summaries
            .iter()
            .map(|s| reply::WorkerFlows {
                worker: s.worker,
                flows: s.total,
                fast_path_flows: s.offloaded,
                capacity: s.capacity,
            })
            .collect(),
        fast_path_flows: summaries.iter().map(|s| s.offloaded).sum(),
        total: summaries.iter().map(|s| s.total).sum(),
        picked_up: summaries.iter().map(|s| s.picked_up).sum(),
        picked_up_total: summaries.iter().map(|s| s.picked_up_total).sum(),
        top_clients: top_clients
            .iter()
            .map(|(ip, n)| reply::ClientFlows {
                client: ip.to_string(),
                flows: *n,
            })
            .collect(),
        clients_partial: summaries.iter().any(|s| s.clients_truncated),
        client: client.map(|c| c.to_string()),
        matches,
        matches_partial: summaries.iter().any(|s| s.matches_truncated),
        workers_not_answering: missing,
    }
}

pub(crate) async fn vrrp(node: &Node) -> reply::Vrrp {
    let shared: Vec<_> = node.state.lock().await.vrrp.clone();
    let instances = shared
        .iter()
        .map(|s| {
            let s = s.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let st = &s.stats;
            let transitions = s
                .transitions
                .iter()
                .map(|t| reply::VrrpTransition {
                    unix_ms: t
                        .at
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or(0),
                    from: t.from.as_str().to_string(),
                    to: t.to.as_str().to_string(),
                    priority: t.priority,
                    reason: t.reason.to_string(),
                })
                .collect();
            reply::VrrpInstance {
                name: s.name.clone(),
                vrid: s.vrid,
                version: s.version.number(),
                interface: s.interface.clone(),
                address: s.primary.to_string(),
                family: s.family.to_string(),
                vips: s.vips.iter().map(ToString::to_string).collect(),
                state: s.state.as_str().to_string(),
                priority: s.priority,
                base_priority: s.base_priority,
                track_weight: s.weight_sum,
                track_fault: s.fault,
                held: s.held,
                transitions,
                counters: reply::VrrpCounters {
                    adverts_received: st.adverts_received,
                    adverts_sent: st.adverts_sent,
                    priority_zero_received: st.priority_zero_received,
                    priority_zero_sent: st.priority_zero_sent,
                    became_master: st.became_master,
                    released_master: st.released_master,
                    protocol_errors: st.protocol_errors,
                    ttl_errors: st.ttl_errors,
                    version_errors: st.version_errors,
                    type_errors: st.type_errors,
                    truncated: st.truncated,
                    checksum_errors: st.checksum_errors,
                    other_vrid: st.other_vrid,
                    own_adverts: st.own_adverts,
                    unknown_peer: st.unknown_peer,
                    auth_errors: st.auth_errors,
                    interval_mismatch: st.interval_mismatch,
                    address_mismatch: st.address_mismatch,
                    malformed_ip: s.shell.malformed_ip,
                    false_owner: st.false_owner,
                    family_errors: st.family_errors,
                    source_errors: st.source_errors,
                    destination_errors: st.destination_errors,
                    length_errors: st.length_errors,
                    v2_over_ipv6: st.v2_over_ipv6,
                    send_errors: s.shell.send_errors,
                    receive_errors: s.shell.receive_errors,
                    garps_sent: s.shell.garps_sent,
                    notify_runs: s.shell.notify_runs,
                },
            }
        })
        .collect();
    reply::Vrrp { instances }
}

/// The BGP speaker's sessions and prefixes; `configured: false` without
/// `[bgp]`.
fn bfd_session(b: &crate::speaker::BfdStatus) -> reply::BfdSession {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    reply::BfdSession {
        state: b.state.to_string(),
        remote_state: b.remote_state.to_string(),
        diag: b.diag.to_string(),
        interval_ms: ms(b.interval),
        multiplier: b.multiplier,
        detection_ms: ms(b.detection_time),
        packets_in: b.stats.packets_in,
        packets_out: b.stats.packets_out,
        dropped_malformed: b.stats.dropped_malformed,
        dropped_ttl: b.stats.dropped_ttl,
        dropped_auth: b.stats.dropped_auth,
        dropped_discriminator: b.stats.dropped_discriminator,
        up_count: b.stats.up_count,
        failures: b.stats.failures,
    }
}

pub(crate) fn sync(node: &Node) -> reply::Sync {
    reply::Sync {
        configured: node.sync.is_some(),
        node: node
            .sync
            .as_ref()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone()),
    }
}

pub(crate) fn bgp(node: &Node) -> reply::Bgp {
    let s = node.bgp.snapshot();
    let Some(router_id) = s.router_id else {
        return reply::Bgp::default();
    };
    let prefixes = s
        .configured
        .iter()
        .map(|p| reply::BgpPrefix {
            prefix: p.clone(),
            announced: s.wanted.contains(p),
            operator: if s.withdrawn.contains(p) {
                "withdrawn"
            } else {
                "-"
            }
            .to_string(),
        })
        .collect();
    let peers = s
        .peers
        .iter()
        .map(|p| reply::BgpPeer {
            address: p.address.to_string(),
            remote_as: p.remote_as,
            state: p.state.clone(),
            uptime_s: p.established_since.map(|t| t.elapsed().as_secs()),
            received: p.received,
            advertised: p.advertised.clone(),
            last_error: p.last_error.clone(),
            messages_in: p.messages_in,
            messages_out: p.messages_out,
            established_count: p.established_count,
            families: p.families.clone(),
            unsent_families: p.unsent_families.clone(),
            bfd: p.bfd.as_ref().map(bfd_session),
        })
        .collect();
    reply::Bgp {
        configured: true,
        speaker: Some(reply::BgpSpeaker {
            local_as: s.local_as,
            router_id: router_id.to_string(),
            announced: s.wanted,
            withdrawn: s.withdrawn,
            prefixes,
            peers,
        }),
    }
}
