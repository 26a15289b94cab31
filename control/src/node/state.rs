//! The node's runtime state and the snapshot it turns into.
//!
//! `NodeState` holds what changes while the node runs — backend health, VIP
//! ownership, next hops — next to the loaded config. `snapshot()` is a pure
//! function of it, so what the dataplane sees can always be rebuilt from
//! scratch and is never patched in place.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use dataplane::sched::{BackendWeight, MaglevTable, SchedulerKind};
use dataplane::service::{self as ds, Hop, LocalAddr, LocalKind, Snapshot};
use engine::{PortInfo, SynLimit};
use wire::MacAddr;

use crate::config::Prefix;
use crate::config::{CheckKind, Config, DownAction, Protocol, VrrpInstance};
use crate::health::CheckResult;
use crate::neigh::{self, Route};
use crate::vrrp::runtime::InstanceControl;

/// Health of one backend as the checker last reported it.
#[derive(Clone, Debug)]
pub(crate) struct BackendHealth {
    pub(crate) healthy: bool,
    pub(crate) last: Option<CheckResult>,
}

/// Where a backend sits in the config, and its stable id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BackendRef {
    pub(crate) service: usize,
    pub(crate) backend: usize,
    pub(crate) id: u32,
}

pub struct NodeState {
    pub(crate) config: Config,
    pub(crate) ports: Vec<PortInfo>,
    /// Stable backend ids, `[service][backend]`.
    pub(crate) ids: Vec<Vec<u32>>,
    pub(crate) health: HashMap<u32, BackendHealth>,
    /// VRRP instance name → this node is master.
    pub(crate) masters: HashMap<String, bool>,
    /// Live view of each running VRRP instance (state, priority, counters,
    /// recent transitions), in config order.
    pub(crate) vrrp: Vec<InstanceControl>,
    /// `[[bgp.announce]]` prefixes the operator withdrew (`vipctl bgp
    /// withdraw`); the announce policy leaves them out whatever their
    /// condition until `vipctl bgp announce` clears the override.
    pub(crate) bgp_withdrawn: Vec<Prefix>,
    /// The operator's drain (`vipctl node drain`); kept across reloads.
    pub(crate) drain: Option<super::Drain>,
    pub(crate) routes: Vec<Route>,
    /// The kernel's neighbour table, as the neighbour watcher last gave it.
    pub(crate) neighbours: neigh::Table,
    /// Backends an operator took out of scheduling; their flows continue.
    pub(crate) disabled: HashSet<u32>,
    /// The id the next added backend gets; ids are never reused.
    pub(crate) next_id: u32,
    /// Other hosts' ARP claims on owned addresses, recorded by the workers.
    pub(crate) arp_claims: std::sync::Arc<dataplane::arp_claims::ArpClaims>,
    /// A starting node still waits for its sync peers' connections: it
    /// announces nothing until they are in.
    pub(crate) sync_holding: bool,
}

impl NodeState {
    pub(crate) fn new(config: Config, ports: Vec<PortInfo>) -> Self {
        let mut next = 0u32;
        let ids: Vec<Vec<u32>> = config
            .services
            .iter()
            .map(|s| {
                s.backends
                    .iter()
                    .map(|_| {
                        next += 1;
                        next
                    })
                    .collect()
            })
            .collect();
        let mut health = HashMap::new();
        for (s, svc) in config.services.iter().enumerate() {
            for (b, backend) in svc.backends.iter().enumerate() {
                // A backend gets traffic only after a check says it serves;
                // with no check it is taken on trust.
                let healthy = matches!(backend.check.kind, CheckKind::None);
                health.insert(
                    ids[s][b],
                    BackendHealth {
                        healthy,
                        last: None,
                    },
                );
            }
        }
        NodeState {
            config,
            ports,
            ids,
            health,
            masters: HashMap::new(),
            bgp_withdrawn: Vec::new(),
            drain: None,
            vrrp: Vec::new(),
            routes: Vec::new(),
            neighbours: neigh::Table::default(),
            disabled: HashSet::new(),
            next_id: next + 1,
            arp_claims: Default::default(),
            sync_holding: false,
        }
    }

    pub(crate) fn backends(&self) -> impl Iterator<Item = BackendRef> + '_ {
        self.ids.iter().enumerate().flat_map(|(service, ids)| {
            ids.iter()
                .enumerate()
                .map(move |(backend, &id)| BackendRef {
                    service,
                    backend,
                    id,
                })
        })
    }

    pub(crate) fn backend_ref(&self, id: u32) -> Option<BackendRef> {
        self.backends().find(|b| b.id == id)
    }

    /// Re-reads the routing table; true if it changed.
    pub(crate) fn refresh_routes(&mut self) -> bool {
        let routes = neigh::read_routes();
        let changed = routes != self.routes;
        self.routes = routes;
        changed
    }

    /// Takes the neighbour table `now`; true if it changed.
    pub(crate) fn set_neighbours(&mut self, now: neigh::Table) -> bool {
        let changed = now != self.neighbours;
        self.neighbours = now;
        changed
    }

    /// Whether backend `id` passes its health check.
    pub(crate) fn is_healthy(&self, id: u32) -> bool {
        self.health.get(&id).is_some_and(|h| h.healthy)
    }

    /// How many backends of service `s` pass their health check.
    pub(crate) fn healthy_backends(&self, s: usize) -> usize {
        self.ids.get(s).map_or(0, |ids| {
            ids.iter().filter(|id| self.is_healthy(**id)).count()
        })
    }

    /// Records which ports the XDP fast path can send by, as the engine
    /// last found; true when that changed.
    pub(crate) fn set_fast_path_egress(&mut self, ports: &[engine::PortInfo]) -> bool {
        let mut changed = false;
        for (mine, now) in self.ports.iter_mut().zip(ports) {
            changed |= mine.xdp_xmit != now.xdp_xmit;
            mine.xdp_xmit = now.xdp_xmit;
        }
        changed
    }

    /// Re-reads the MTU of every dataplane interface; true when one changed
    /// (the snapshot then carries the new MTU, so ICMP
    /// fragmentation-needed states it). An MTU above what the engine can
    /// receive is logged as an error and shown by `vipctl status`.
    pub(crate) fn refresh_mtus(&mut self) -> bool {
        let mut changed = false;
        for port in &mut self.ports {
            let Ok(mtu) = engine::interface_mtu(&port.name) else {
                continue;
            };
            if mtu == port.mtu {
                continue;
            }
            let max = engine::MAX_MTU;
            if mtu > max {
                log::error!(
                    "interface {}: MTU changed from {} to {mtu}, above the {max} bytes vipd \
                     can receive: larger packets are lost; set it back to {max} or less \
                     (`ip link set dev {} mtu {max}`)",
                    port.name,
                    port.mtu,
                    port.name
                );
            } else {
                log::warn!(
                    "interface {}: MTU changed from {} to {mtu}; packets leaving by it are \
                     held to the new MTU",
                    port.name,
                    port.mtu
                );
            }
            port.mtu = mtu;
            changed = true;
        }
        changed
    }

    /// Whether this node owns `vip` right now.
    pub(crate) fn owns(&self, vip: impl Into<IpAddr>) -> bool {
        match self.config.vip_owner(vip) {
            Some(inst) => self.masters.get(&inst.name).copied().unwrap_or(false),
            None => true,
        }
    }

    fn port_of(&self, dev: &str) -> Option<u8> {
        self.ports
            .iter()
            .position(|p| p.name == dev)
            .and_then(|i| u8::try_from(i).ok())
    }

    fn port_mac(&self, port: u8) -> MacAddr {
        self.ports
            .get(usize::from(port))
            .map(|p| MacAddr(p.mac))
            .unwrap_or_default()
    }

    /// The port an address of ours lives on: the interface the kernel routes it to.
    /// The port `addr` lives on by the routing table; port 0 when none.
    pub(crate) fn home_port(&self, addr: IpAddr) -> u8 {
        neigh::lookup(&self.routes, addr)
            .and_then(|r| self.port_of(&r.dev))
            .unwrap_or(0)
    }

    /// The next hop of `addr`, or the one whose MAC is still missing.
    fn hop(&self, addr: IpAddr) -> Result<Hop, Unresolved> {
        let unknown = |addr| Unresolved { addr, ifindex: 0 };
        let (dev, nh) = neigh::next_hop(&self.routes, addr).ok_or(unknown(addr))?;
        let port = self.port_of(&dev).ok_or(unknown(nh))?;
        let ifindex = self
            .ports
            .get(usize::from(port))
            .ok_or(unknown(nh))?
            .ifindex;
        let mac = self
            .neighbours
            .get(nh, ifindex)
            .ok_or(Unresolved { addr: nh, ifindex })?;
        Ok(Hop { port, mac })
    }

    /// Builds the dataplane snapshot, and lists next hops whose MAC is unknown.
    pub(crate) fn snapshot(&self) -> (Snapshot, Vec<Unresolved>) {
        let mut unresolved = Vec::new();
        let mut resolve = |addr: std::net::SocketAddr| {
            let hop = self.hop(addr.ip()).map_err(|nh| unresolved.push(nh)).ok();
            ds::Backend {
                ip: addr.ip(),
                port: addr.port(),
                hop,
            }
        };
        let mut snap = Snapshot {
            ports: self
                .ports
                .iter()
                .map(|p| ds::Port {
                    mtu: u16::try_from(p.mtu).unwrap_or(u16::MAX),
                    ipv4: p.ipv4.clone(),
                    ipv6: p.ipv6.clone(),
                    xdp_xmit: p.xdp_xmit,
                    ..ds::Port::new(&p.name, MacAddr(p.mac))
                })
                .collect(),
            released_macs: self
                .config
                .vrrp
                .iter()
                .filter(|v| !self.masters.get(&v.name).copied().unwrap_or(false))
                .map(|v| MacAddr(v.virtual_mac()))
                .collect(),
            arp_claims: self.arp_claims.clone(),
            fast_path: self.config.dataplane.fast_path,
            ..Snapshot::default()
        };
        for (s, svc) in self.config.services.iter().enumerate() {
            let weights: Vec<BackendWeight> = svc
                .backends
                .iter()
                .enumerate()
                .map(|(b, backend)| {
                    let id = self.ids[s][b];
                    let healthy = self.is_healthy(id);
                    BackendWeight {
                        id,
                        weight: backend.weight,
                        available: healthy && !self.disabled.contains(&id),
                    }
                })
                .collect();
            let backends = svc.backends.iter().map(|b| resolve(b.address)).collect();
            let sorry = svc.sorry_server.map(&mut resolve);
            let scheduler = svc.scheduler;
            let maglev = (scheduler == SchedulerKind::Maglev)
                .then(|| {
                    MaglevTable::build(&weights, svc.maglev_table_size)
                        .ok()
                        .map(Arc::new)
                })
                .flatten();
            if svc.on_backend_down == DownAction::Drop {
                // Disabled is not dead: its flows are meant to finish.
                snap.dead_backends.extend(
                    weights
                        .iter()
                        .map(|w| w.id)
                        .filter(|id| !self.is_healthy(*id)),
                );
            }
            snap.services.push(ds::Service {
                name: svc.name.clone(),
                vip: svc.vip,
                port: svc.port,
                proto: match svc.protocol {
                    Protocol::Tcp => wire::ip_proto::TCP,
                    Protocol::Udp => wire::ip_proto::UDP,
                },
                scheduler,
                locality_expire_ms: svc.locality_expiration.as_millis() as u64,
                forward: svc.forward,
                weights,
                backends,
                maglev,
                snat: svc.snat.clone(),
                sorry,
                persistence_ms: svc.persistence_timeout.map(|d| d.as_millis() as u64),
                on_down: svc.on_backend_down,
            });
            insert_local(
                &mut snap,
                svc.vip,
                self.local(svc.vip, svc.vip, LocalKind::Vip),
            );
            for &a in &svc.snat {
                if !is_local(&snap, a) {
                    insert_local(&mut snap, a, self.snat_local(a));
                }
            }
        }
        for (_, a) in self.config.floating_addresses() {
            insert_local(&mut snap, a, self.local(a, a, LocalKind::Floating));
        }
        snap.index();
        unresolved.sort();
        unresolved.dedup();
        (snap, unresolved)
    }

    /// How the dataplane answers for `addr`, which is held as long as
    /// `held_by` (a VIP or floating address) is owned here: by a VRRP
    /// instance's virtual MAC on every port, or by the port's own MAC.
    fn local(&self, addr: IpAddr, held_by: IpAddr, kind: LocalKind) -> LocalAddr {
        let port = self.home_port(addr);
        match self.config.vip_owner(held_by) {
            Some(inst) => LocalAddr {
                owned: self.owns(held_by),
                mac: MacAddr(inst.virtual_mac()),
                shared_mac: true,
                port,
                kind,
            },
            None => LocalAddr {
                owned: true,
                mac: self.port_mac(port),
                shared_mac: false,
                port,
                kind,
            },
        }
    }

    /// The VRRP instance full-NAT source `addr` moves with: its own, or
    /// the one instance holding the VIPs of every service that uses it
    /// (the backends' answers must reach whichever node serves the
    /// connections now). `None`: it is this node's own.
    pub(crate) fn snat_instance(&self, addr: IpAddr) -> Option<&VrrpInstance> {
        if let Some(own) = self.config.vip_owner(addr) {
            return Some(own);
        }
        let mut holders = self
            .config
            .services
            .iter()
            .filter(|s| s.snat.contains(&addr))
            .map(|s| self.config.vip_owner(s.vip));
        let first = holders.next()??;
        holders
            .all(|h| h.is_some_and(|i| i.name == first.name))
            .then_some(first)
    }

    /// How the dataplane answers for full-NAT source `addr`: with its
    /// instance ([`NodeState::snat_instance`]), or, as this node's own,
    /// from the port's MAC while any VIP of the services using it is owned.
    fn snat_local(&self, addr: IpAddr) -> LocalAddr {
        if let Some(inst) = self.snat_instance(addr) {
            let held_by = inst.vips.first().copied().unwrap_or(addr);
            return self.local(addr, held_by, LocalKind::Snat);
        }
        let port = self.home_port(addr);
        LocalAddr {
            owned: self
                .config
                .services
                .iter()
                .any(|s| s.snat.contains(&addr) && self.owns(s.vip)),
            mac: self.port_mac(port),
            shared_mac: false,
            port,
            kind: LocalKind::Snat,
        }
    }

    /// Steering map contents: addresses whose traffic the dataplane takes.
    pub(crate) fn steering(&self) -> Steering {
        let mut s = Steering::default();
        let mut add = |a: IpAddr| match a {
            IpAddr::V4(a) => s.vips.push(a),
            IpAddr::V6(a) => s.vips6.push(a),
        };
        for svc in &self.config.services {
            add(svc.vip);
            svc.snat.iter().copied().for_each(&mut add);
        }
        // Their ARP and Neighbor Discovery, which only the workers answer.
        self.config.floating_addresses().for_each(|(_, a)| add(a));
        s.vips.sort();
        s.vips.dedup();
        s.vips6.sort();
        s.vips6.dedup();
        s.syn_limit = SynLimit {
            rate: self.config.dataplane.syn_rate_limit,
            burst: self.config.dataplane.syn_burst,
        };
        s
    }
}

/// A next hop whose MAC the kernel has not resolved yet; `ifindex` is 0
/// when no dataplane interface leads to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Unresolved {
    pub(crate) addr: IpAddr,
    pub(crate) ifindex: u32,
}

fn insert_local(snap: &mut Snapshot, addr: IpAddr, local: LocalAddr) {
    match addr {
        IpAddr::V4(a) => snap.locals.insert(a.to_bits(), local),
        IpAddr::V6(a) => snap.locals6.insert(a.octets(), local),
    };
}

fn is_local(snap: &Snapshot, addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => snap.locals.contains_key(&a.to_bits()),
        IpAddr::V6(a) => snap.locals6.contains_key(&a.octets()),
    }
}

/// What the XDP steering program must send to the workers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Steering {
    pub(crate) vips: Vec<Ipv4Addr>,
    pub(crate) vips6: Vec<Ipv6Addr>,
    pub(crate) syn_limit: SynLimit,
}
