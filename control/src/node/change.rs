//! Changes an operator makes while the node runs: backend edits and a
//! reloaded config. They edit [`NodeState`] only; the caller republishes the
//! snapshot and restarts health checkers from it, so the state stays the one
//! source of truth. Backends keep their stable id across every change, which
//! is what lets their open flows continue. Runtime edits last until the next
//! reload or restart, both of which read the config file again.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::state::{BackendHealth, BackendRef, NodeState};
use crate::config::{Backend, CheckKind, Config};

/// Largest weight a backend may have, as in the config file.
pub(crate) use ctlproto::request::MAX_WEIGHT;
/// Most backends one service may have, as in the config file.
const MAX_BACKENDS: usize = 256;

/// Why a backend edit was refused; the message is what `vipctl` shows.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChangeError {
    #[error("no service named {service:?} (see `vipctl services`)")]
    NoService { service: String },
    #[error("service {service} has no backend {addr} (see `vipctl backends`)")]
    NoBackend { service: String, addr: SocketAddr },
    #[error("service {service} already has backend {addr}")]
    Exists { service: String, addr: SocketAddr },
    #[error("backend {addr} is not of service {service}'s family: its backends are {family} (a dual-stack service is two services, one per family)")]
    Family {
        service: String,
        addr: SocketAddr,
        family: ::vrrp::AddressFamily,
    },
    #[error("service {service} already has {MAX_BACKENDS} backends, the most allowed")]
    Full { service: String },
    #[error("{addr} is the last backend of service {service}; add another first or drain it")]
    LastBackend { service: String, addr: SocketAddr },
    #[error("weight {weight} is out of range 0..={MAX_WEIGHT}")]
    Weight { weight: u32 },
    /// The edit is recorded but the dataplane did not take it.
    #[error("{0:#}")]
    Apply(anyhow::Error),
}

/// One edit to one backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackendChange {
    /// A new backend, checked like the service's other backends.
    Add {
        weight: u32,
    },
    /// Gone from scheduling and the config; its flows finish on their own.
    Remove,
    Weight(u32),
    /// Weight 0: open flows finish, no new ones are scheduled.
    Drain,
    Enable,
    /// Not offered to the scheduler; open flows continue.
    Disable,
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ReloadSummary {
    pub(crate) services_added: Vec<String>,
    pub(crate) services_removed: Vec<String>,
    pub(crate) backends_added: usize,
    pub(crate) backends_removed: usize,
    pub(crate) backends_kept: usize,
}

impl NodeState {
    /// The backend `addr` of service `service`, or an error naming what
    /// does not exist.
    pub(crate) fn find_backend(
        &self,
        service: &str,
        addr: SocketAddr,
    ) -> Result<BackendRef, ChangeError> {
        let s = self.service_index(service)?;
        let b = self.config.services[s]
            .backends
            .iter()
            .position(|b| b.address == addr)
            .ok_or_else(|| ChangeError::NoBackend {
                service: service.to_string(),
                addr,
            })?;
        Ok(BackendRef {
            service: s,
            backend: b,
            id: self.ids[s][b],
        })
    }

    fn service_index(&self, service: &str) -> Result<usize, ChangeError> {
        self.config
            .services
            .iter()
            .position(|s| s.name == service)
            .ok_or_else(|| ChangeError::NoService {
                service: service.to_string(),
            })
    }

    /// Applies one backend edit; returns the backend's stable id.
    pub(crate) fn change_backend(
        &mut self,
        service: &str,
        addr: SocketAddr,
        change: BackendChange,
    ) -> Result<u32, ChangeError> {
        if let BackendChange::Add { weight } = change {
            return self.add_backend(service, addr, weight);
        }
        let r = self.find_backend(service, addr)?;
        let backend = &mut self.config.services[r.service].backends[r.backend];
        match change {
            BackendChange::Add { .. } => {}
            BackendChange::Weight(w) => backend.weight = check_weight(w)?,
            BackendChange::Drain => backend.weight = 0,
            BackendChange::Enable => {
                self.disabled.remove(&r.id);
            }
            BackendChange::Disable => {
                self.disabled.insert(r.id);
            }
            BackendChange::Remove => {
                if self.config.services[r.service].backends.len() == 1 {
                    return Err(ChangeError::LastBackend {
                        service: service.to_string(),
                        addr,
                    });
                }
                self.config.services[r.service].backends.remove(r.backend);
                self.ids[r.service].remove(r.backend);
                self.health.remove(&r.id);
                self.disabled.remove(&r.id);
            }
        }
        Ok(r.id)
    }

    fn add_backend(
        &mut self,
        service: &str,
        addr: SocketAddr,
        weight: u32,
    ) -> Result<u32, ChangeError> {
        let weight = check_weight(weight)?;
        if self.find_backend(service, addr).is_ok() {
            return Err(ChangeError::Exists {
                service: service.to_string(),
                addr,
            });
        }
        let s = self.service_index(service)?;
        let svc = &mut self.config.services[s];
        if svc.vip.is_ipv4() != addr.is_ipv4() {
            return Err(ChangeError::Family {
                service: service.to_string(),
                addr,
                family: ::vrrp::AddressFamily::of(&svc.vip),
            });
        }
        if svc.backends.len() >= MAX_BACKENDS {
            return Err(ChangeError::Full {
                service: service.to_string(),
            });
        }
        let check = svc
            .backends
            .first()
            .map(|b| b.check.clone())
            .unwrap_or_default();
        let healthy = matches!(check.kind, CheckKind::None);
        svc.backends.push(Backend {
            address: addr,
            weight,
            check,
        });
        let id = self.next_id;
        self.next_id += 1;
        self.ids[s].push(id);
        self.health.insert(
            id,
            BackendHealth {
                healthy,
                last: None,
            },
        );
        Ok(id)
    }

    /// Swaps in a newly loaded config. Refuses (changing nothing) what
    /// cannot be applied while running; otherwise backends that stay — same
    /// service name, same address — keep their id, health and enabled state.
    pub(crate) fn replace_config(&mut self, new: Config) -> Result<ReloadSummary, Vec<String>> {
        let mut refused = Vec::new();
        let old = &self.config;
        // The SYN admission rate is a steering-map value, changed live (an
        // operator tightens it during a flood), and the fast path a snapshot
        // flag; the rest is set up at start.
        let fixed = |d: &crate::config::Dataplane| crate::config::Dataplane {
            syn_rate_limit: 0,
            syn_burst: 0,
            fast_path: true,
            ..d.clone()
        };
        if fixed(&new.dataplane) != fixed(&old.dataplane) {
            refused.push("[dataplane] changed: interfaces, queues and tables are set up at start; restart vipd to apply".to_string());
        }
        if new.control.socket != old.control.socket
            || new.control.socket_mode != old.control.socket_mode
            || new.control.socket_group != old.control.socket_group
            || new.control.metrics != old.control.metrics
        {
            refused.push("[control] changed: the socket and metrics listener are bound at start; restart vipd to apply".to_string());
        }
        if new.node != old.node {
            refused.push("[node] changed: restart vipd to rename the node".to_string());
        }
        if new.vrrp != old.vrrp {
            refused.push(
                "[[vrrp]] changed: VRRP instances are applied at start; restart vipd to apply"
                    .to_string(),
            );
        }
        if new.bgp != old.bgp {
            refused.push(
                "[bgp] changed: BGP sessions are applied at start; restart vipd to apply"
                    .to_string(),
            );
        }
        if new.sync != old.sync {
            refused.push(
                "[sync] changed: connection sync is set up at start; restart vipd to apply"
                    .to_string(),
            );
        }
        if !refused.is_empty() {
            return Err(refused);
        }
        let mut old_ids: HashMap<(String, SocketAddr), u32> = HashMap::new();
        for r in self.backends() {
            let svc = &self.config.services[r.service];
            old_ids.insert((svc.name.clone(), svc.backends[r.backend].address), r.id);
        }
        let mut summary = ReloadSummary::default();
        for svc in &new.services {
            if !self.config.services.iter().any(|s| s.name == svc.name) {
                summary.services_added.push(svc.name.clone());
            }
        }
        for svc in &self.config.services {
            if !new.services.iter().any(|s| s.name == svc.name) {
                summary.services_removed.push(svc.name.clone());
            }
        }
        let mut ids = Vec::with_capacity(new.services.len());
        let mut health = HashMap::new();
        for svc in &new.services {
            let mut row = Vec::with_capacity(svc.backends.len());
            for b in &svc.backends {
                let id = match old_ids.remove(&(svc.name.clone(), b.address)) {
                    Some(id) => {
                        summary.backends_kept += 1;
                        id
                    }
                    None => {
                        summary.backends_added += 1;
                        let id = self.next_id;
                        self.next_id += 1;
                        id
                    }
                };
                let h = self.health.get(&id).cloned().unwrap_or(BackendHealth {
                    healthy: matches!(b.check.kind, CheckKind::None),
                    last: None,
                });
                health.insert(id, h);
                row.push(id);
            }
            ids.push(row);
        }
        summary.backends_removed = old_ids.len();
        self.disabled.retain(|id| health.contains_key(id));
        self.ids = ids;
        self.health = health;
        self.config = new;
        Ok(summary)
    }
}

fn check_weight(weight: u32) -> Result<u32, ChangeError> {
    if weight > MAX_WEIGHT {
        return Err(ChangeError::Weight { weight });
    }
    Ok(weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn cfg(extra_backend: bool, queues: u16) -> Config {
        let mut text = format!(
            "[node]\nname = \"t\"\n[dataplane]\ninterfaces = [\"eth0\"]\nqueues = {queues}\n\
             [[service]]\nname = \"web\"\nvip = \"10.0.0.1\"\nport = 80\n\
             [[service.backend]]\naddress = \"10.1.0.1:80\"\n\
             [[service.backend]]\naddress = \"10.1.0.2:80\"\n"
        );
        if extra_backend {
            text += "[[service.backend]]\naddress = \"10.1.0.3:80\"\n";
        }
        config::parse(&text, "t.toml").expect("test config parses")
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    fn weights(st: &NodeState) -> Vec<(u32, u32, bool)> {
        let (snap, _) = st.snapshot();
        snap.services[0]
            .weights
            .iter()
            .map(|w| (w.id, w.weight, w.available))
            .collect()
    }

    #[test]
    fn edits_keep_ids_and_reach_the_snapshot() {
        let mut st = NodeState::new(cfg(false, 1), Vec::new());
        for id in [1, 2] {
            st.health.insert(
                id,
                BackendHealth {
                    healthy: true,
                    last: None,
                },
            );
        }
        let b2 = addr("10.1.0.2:80");
        let change = |st: &mut NodeState, service: &str, c| {
            st.change_backend(service, b2, c).map_err(|e| e.to_string())
        };
        assert_eq!(change(&mut st, "web", BackendChange::Weight(7)), Ok(2));
        assert_eq!(change(&mut st, "web", BackendChange::Disable), Ok(2));
        assert_eq!(weights(&st), vec![(1, 1, true), (2, 7, false)]);
        let (snap, _) = st.snapshot();
        assert!(!snap.dead_backends.contains(&2), "disabled is not dead");
        assert_eq!(change(&mut st, "web", BackendChange::Enable), Ok(2));
        assert_eq!(change(&mut st, "web", BackendChange::Drain), Ok(2));
        assert_eq!(weights(&st), vec![(1, 1, true), (2, 0, true)]);
        assert_eq!(change(&mut st, "web", BackendChange::Remove), Ok(2));
        let id = change(&mut st, "web", BackendChange::Add { weight: 2 });
        assert_eq!(id, Ok(3), "a re-added backend gets a new id");
        assert!(change(&mut st, "web", BackendChange::Add { weight: 2 }).is_err());
        assert!(change(&mut st, "web", BackendChange::Weight(70_000)).is_err());
        assert!(change(&mut st, "nope", BackendChange::Drain)
            .unwrap_err()
            .contains("nope"));
    }

    #[test]
    fn reload_keeps_ids_of_backends_that_stay() {
        let mut st = NodeState::new(cfg(false, 1), Vec::new());
        st.health.insert(
            1,
            BackendHealth {
                healthy: true,
                last: None,
            },
        );
        st.disabled.insert(2);
        let s = st.replace_config(cfg(true, 1)).expect("applies");
        assert_eq!(
            (s.backends_added, s.backends_kept, s.backends_removed),
            (1, 2, 0)
        );
        assert_eq!(st.ids, vec![vec![1, 2, 3]]);
        assert!(st.health.get(&1).is_some_and(|h| h.healthy), "health kept");
        assert!(st.disabled.contains(&2), "disabled kept");
        let s = st.replace_config(cfg(false, 1)).expect("applies");
        assert_eq!(s.backends_removed, 1);
        assert_eq!(st.ids, vec![vec![1, 2]]);
        let before = st.config.clone();
        let e = st.replace_config(cfg(true, 2)).unwrap_err();
        assert!(e[0].contains("[dataplane]"), "{e:?}");
        assert_eq!(st.config, before, "a refused reload changes nothing");
    }

    #[test]
    fn reload_changes_the_syn_admission_rate_live() {
        let mut st = NodeState::new(cfg(false, 1), Vec::new());
        let mut new = cfg(false, 1);
        new.dataplane.syn_rate_limit = 100_000;
        new.dataplane.syn_burst = 10_000;
        st.replace_config(new).expect("a SYN rate change applies");
        let limit = st.steering().syn_limit;
        assert_eq!((limit.rate, limit.burst), (100_000, 10_000));
    }

    #[test]
    fn reload_switches_the_fast_path_live() {
        let mut st = NodeState::new(cfg(false, 1), Vec::new());
        assert!(st.snapshot().0.fast_path, "on by default");
        let mut new = cfg(false, 1);
        new.dataplane.fast_path = false;
        st.replace_config(new).expect("a fast path switch applies");
        assert!(!st.snapshot().0.fast_path);
    }
}
