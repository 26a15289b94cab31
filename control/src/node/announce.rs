//! The announce policy: which `[[bgp.announce]]` prefixes this node should
//! advertise right now. Pure functions of the node state, so they are tested
//! without sockets; [`Announcer`] hands their answer to the BGP speaker.

use std::sync::Arc;

use dataplane::counters::Counters;
use tokio::sync::{watch, Mutex};

use super::state::NodeState;
use crate::config::{Announce, AnnounceCondition, Config, DrainRoutes};
use crate::speaker::{Announcements, Decision};

/// A worker whose heartbeat is older than this is considered stuck; its queue
/// would black-hole traffic, so the site must stop attracting it.
const HEARTBEAT_STALE_MS: u64 = 500;

/// The speaker's read-only view of the node: the announce decision and
/// when it may have changed.
pub(crate) struct Announcer {
    state: Arc<Mutex<NodeState>>,
    counters: Arc<Counters>,
    changed: watch::Receiver<u64>,
}

impl Announcer {
    pub(super) fn new(
        state: Arc<Mutex<NodeState>>,
        counters: Arc<Counters>,
        changed: watch::Receiver<u64>,
    ) -> Self {
        Announcer {
            state,
            counters,
            changed,
        }
    }
}

impl Announcements for Announcer {
    async fn decide(&self, announces: &[Announce]) -> Decision {
        let alive = dataplane_alive(&self.counters, engine::monotonic_ms());
        let st = self.state.lock().await;
        Decision {
            wanted: wanted_set(announces, &st, alive),
            withdrawn: st.bgp_withdrawn.clone(),
            alive,
            drain: super::drain::routes(&st),
        }
    }

    async fn changed(&mut self) -> bool {
        self.changed.changed().await.is_ok()
    }
}

/// Whether every dataplane worker has looped recently. `now_ms` is
/// `engine::monotonic_ms()`, the workers' clock.
fn dataplane_alive(counters: &Counters, now_ms: u64) -> bool {
    let mut any = false;
    for core in counters.cores() {
        any = true;
        let beat = core.heartbeat_ms.get();
        if beat == 0 || now_ms.saturating_sub(beat) > HEARTBEAT_STALE_MS {
            return false;
        }
    }
    any
}

/// Whether `announce` should be advertised. `vip_healthy` holds while some
/// service VIP inside the prefix is owned by this node, as are its
/// full-NAT sources (the backends' answers must come back here), has at
/// least one healthy backend, and the dataplane is alive; `always` holds unconditionally
/// (the session being up is implied by announcing at all). A prefix the
/// operator withdrew is never wanted, nor any while the node is drained in
/// `withdraw` mode (the other modes keep the routes and de-prefer them),
/// nor while a starting node waits for its sync peers' connections.
fn wanted(announce: &Announce, state: &NodeState, dataplane_alive: bool) -> bool {
    if state.bgp_withdrawn.contains(&announce.prefix)
        || state.sync_holding
        || super::drain::routes(state) == Some(DrainRoutes::Withdraw)
    {
        return false;
    }
    match announce.condition {
        AnnounceCondition::Always => true,
        AnnounceCondition::VipHealthy => {
            dataplane_alive
                && state
                    .config
                    .services
                    .iter()
                    .zip(&state.ids)
                    .any(|(svc, ids)| {
                        announce.prefix.contains(svc.vip)
                            && state.owns(svc.vip)
                            && svc.snat.iter().all(|a| state.owns(*a))
                            && ids.iter().any(|id| state.is_healthy(*id))
                    })
        }
    }
}

/// Announces that follow VIP ownership but cover the VIPs of more than one
/// VRRP instance, each as a warning: while different nodes are masters of
/// those instances, each announces the prefix and the router sends every
/// node traffic for VIPs it does not own, which it drops.
pub(crate) fn shared_prefix_warnings(cfg: &Config) -> Vec<String> {
    let Some(bgp) = &cfg.bgp else {
        return Vec::new();
    };
    bgp.announces
        .iter()
        .filter(|a| a.condition == AnnounceCondition::VipHealthy)
        .filter_map(|a| {
            let instances: Vec<&str> = cfg
                .vrrp
                .iter()
                .filter(|v| v.ipv4_vips().any(|ip| a.prefix.contains(ip)))
                .map(|v| v.name.as_str())
                .collect();
            (instances.len() > 1).then(|| {
                format!(
                    "BGP announce {} covers the VIPs of VRRP instances {}: while different nodes are their masters, each announces {} and the router sends each node traffic for VIPs it does not own (dropped as vip_not_owned); give each instance a prefix of its own",
                    a.prefix,
                    instances.join(", "),
                    a.prefix
                )
            })
        })
        .collect()
}

/// Indices of the announces wanted now.
fn wanted_set(announces: &[Announce], state: &NodeState, dataplane_alive: bool) -> Vec<usize> {
    announces
        .iter()
        .enumerate()
        .filter(|(_, a)| wanted(a, state, dataplane_alive))
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::BackendHealth;

    const CONF: &str = r#"
[node]
name = "t"
[dataplane]
interfaces = ["eth0", "eth1"]
[control]
socket = "/tmp/vipd-policy-test.sock"
[[service]]
name = "web"
vip = "10.0.0.10"
port = 80
protocol = "tcp"
scheduler = "rr"
forward = "nat"
  [[service.backend]]
  address = "192.168.10.11:8080"
  check = { kind = "tcp", interval_ms = 200, timeout_ms = 100 }
  [[service.backend]]
  address = "192.168.10.12:8080"
  check = { kind = "tcp", interval_ms = 200, timeout_ms = 100 }
[[vrrp]]
name = "v10"
interface = "eth0"
vrid = 10
priority = 150
vips = ["10.0.0.10"]
[bgp]
local_as = 4200000001
router_id = "172.16.1.2"
  [[bgp.peer]]
  address = "172.16.1.1"
  remote_as = 65000
  [[bgp.announce]]
  prefix = "10.0.0.0/25"
  [[bgp.announce]]
  prefix = "10.0.0.128/25"
  condition = "always"
"#;

    fn state() -> NodeState {
        let cfg = crate::config::parse(CONF, "policy-test.toml").expect("test config is valid");
        NodeState::new(cfg, Vec::new())
    }

    fn set_health(st: &mut NodeState, healthy: &[bool]) {
        let ids: Vec<u32> = st.ids.iter().flatten().copied().collect();
        for (id, h) in ids.iter().zip(healthy) {
            st.health.insert(
                *id,
                BackendHealth {
                    healthy: *h,
                    last: None,
                },
            );
        }
    }

    #[test]
    fn vip_healthy_needs_ownership_a_healthy_backend_and_a_live_dataplane() {
        let mut st = state();
        let announces = st.config.bgp.clone().expect("bgp section").announces;
        // Not master yet, no backend healthy: only the unconditional one.
        assert_eq!(wanted_set(&announces, &st, true), vec![1]);
        st.masters.insert("v10".into(), true);
        assert_eq!(wanted_set(&announces, &st, true), vec![1]);
        set_health(&mut st, &[false, true]);
        assert_eq!(wanted_set(&announces, &st, true), vec![0, 1]);
        assert_eq!(wanted_set(&announces, &st, false), vec![1]);
        st.masters.insert("v10".into(), false);
        assert_eq!(wanted_set(&announces, &st, true), vec![1]);
        st.masters.insert("v10".into(), true);
        set_health(&mut st, &[false, false]);
        assert_eq!(wanted_set(&announces, &st, true), vec![1]);
    }

    #[test]
    fn operator_withdrawal_overrides_every_condition() {
        let mut st = state();
        let announces = st.config.bgp.clone().expect("bgp section").announces;
        st.masters.insert("v10".into(), true);
        set_health(&mut st, &[true, true]);
        assert_eq!(wanted_set(&announces, &st, true), vec![0, 1]);
        st.bgp_withdrawn.push(announces[1].prefix);
        assert_eq!(wanted_set(&announces, &st, true), vec![0], "always");
        st.bgp_withdrawn.push(announces[0].prefix);
        assert_eq!(wanted_set(&announces, &st, true), Vec::<usize>::new());
        st.bgp_withdrawn.retain(|p| *p != announces[1].prefix);
        assert_eq!(wanted_set(&announces, &st, true), vec![1]);
    }

    #[test]
    fn a_full_nat_service_is_announced_only_while_its_sources_are_owned_here() {
        let conf = CONF
            .replacen("forward = \"nat\"", "forward = \"fullnat\"\nsnat = [\"192.168.10.201\"]", 1)
            .replacen(
                "[bgp]",
                "[[vrrp]]\nname = \"src\"\ninterface = \"eth1\"\nvrid = 11\nvips = [\"192.168.10.201\"]\n[bgp]",
                1,
            );
        let cfg = crate::config::parse(&conf, "policy-test.toml").expect("test config is valid");
        let mut st = NodeState::new(cfg, Vec::new());
        let announces = st.config.bgp.clone().expect("bgp section").announces;
        st.masters.insert("v10".into(), true);
        set_health(&mut st, &[true, true]);
        assert_eq!(
            wanted_set(&announces, &st, true),
            vec![1],
            "source not owned"
        );
        st.masters.insert("src".into(), true);
        assert_eq!(wanted_set(&announces, &st, true), vec![0, 1]);
    }

    #[test]
    fn a_node_waiting_for_its_sync_peers_announces_nothing() {
        let mut st = state();
        let announces = st.config.bgp.clone().expect("bgp section").announces;
        st.masters.insert("v10".into(), true);
        set_health(&mut st, &[true, true]);
        st.sync_holding = true;
        assert_eq!(wanted_set(&announces, &st, true), Vec::<usize>::new());
        st.sync_holding = false;
        assert_eq!(wanted_set(&announces, &st, true), vec![0, 1]);
    }

    #[test]
    fn a_drain_withdraws_everything_or_de_prefers_it() {
        let mut st = state();
        let announces = st.config.bgp.clone().expect("bgp section").announces;
        st.masters.insert("v10".into(), true);
        set_health(&mut st, &[true, true]);
        st.drain = Some(crate::node::Drain {
            since: std::time::Instant::now(),
            timeout: None,
        });
        assert_eq!(
            super::super::drain::routes(&st),
            Some(DrainRoutes::Withdraw)
        );
        assert_eq!(wanted_set(&announces, &st, true), Vec::<usize>::new());
        if let Some(b) = st.config.bgp.as_mut() {
            b.drain = DrainRoutes::Prepend(3);
        }
        assert_eq!(
            wanted_set(&announces, &st, true),
            vec![0, 1],
            "kept, de-preferred"
        );
        assert_eq!(
            super::super::drain::routes(&st),
            Some(DrainRoutes::Prepend(3))
        );
        st.drain = None;
        assert_eq!(super::super::drain::routes(&st), None);
    }

    #[test]
    fn dataplane_is_alive_only_while_every_worker_beats() {
        let c = Counters::new(2);
        assert!(!dataplane_alive(&c, 10_000), "never started");
        c.core(0).heartbeat_ms.set(9_990);
        assert!(!dataplane_alive(&c, 10_000), "one worker silent");
        c.core(1).heartbeat_ms.set(9_700);
        assert!(dataplane_alive(&c, 10_000));
        assert!(!dataplane_alive(&c, 9_700 + HEARTBEAT_STALE_MS + 1));
        assert!(!dataplane_alive(&Counters::new(0), 10_000), "no workers");
    }

    #[test]
    fn a_prefix_shared_by_vrrp_instances_is_warned_about() {
        let one = state().config;
        assert!(shared_prefix_warnings(&one).is_empty(), "one instance");
        let two = CONF.replace(
            "[bgp]",
            "[[vrrp]]\nname = \"v20\"\ninterface = \"eth0\"\nvrid = 20\nvips = [\"10.0.0.20\"]\n[bgp]",
        );
        let two = crate::config::parse(&two, "policy-test.toml").expect("valid");
        let warnings = shared_prefix_warnings(&two);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("10.0.0.0/25") && warnings[0].contains("v10, v20"),
            "{warnings:?}"
        );
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        for name in ["site-a-lb1", "site-a-lb2", "site-b-lb1", "site-b-lb2"] {
            let cfg = crate::config::load(&dir.join(format!("{name}.toml"))).expect("example");
            assert_eq!(shared_prefix_warnings(&cfg), Vec::<String>::new(), "{name}");
        }
    }
}
