//! The immutable service snapshot the control plane publishes to workers.
//!
//! Everything a worker needs to forward a packet lives here: services and
//! their backends, which VIPs this node owns right now, the full-NAT source
//! addresses, and the resolved next hop of every backend. The control plane
//! builds a new snapshot on any change and swaps it in atomically; workers
//! pick it up at their next batch, so a change is never seen half-applied.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::flow::Ip6;
use crate::sched::{BackendWeight, MaglevTable, SchedulerKind};
use crate::verdict::PortId;
use wire::MacAddr;

/// Declares an enum whose variants are spelled as keywords in the config,
/// with `as_str`, `Display` and a `FromStr` whose error lists the keywords.
#[macro_export]
macro_rules! keyword_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every keyword, in declaration order.
            pub const WORDS: &'static [&'static str] = &[$($word),+];

            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $word),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(format!("expected one of: {}", Self::WORDS.join(", "))),
                }
            }
        }
    };
}

keyword_enum!(
    /// How a service reaches its backends.
    ForwardMode {
        /// Destination NAT; backends route replies back through this node.
        Nat => "nat",
        /// Destination and source NAT from the service's `snat` addresses.
        FullNat => "fullnat",
        /// Direct routing: only the MAC is rewritten; backends answer clients directly.
        Dr => "dr",
    }
);

keyword_enum!(
    /// What happens to open connections of a backend that fails its health check.
    DownAction {
        /// Keep forwarding them (the backend may still serve them).
        Keep => "keep",
        /// Drop their packets so clients fail fast and reconnect elsewhere.
        Drop => "drop",
    }
);

/// Where to send frames for an address: out of which port, to which MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    pub port: PortId,
    pub mac: MacAddr,
}

/// A backend as the dataplane sees it.
#[derive(Clone, Debug)]
pub struct Backend {
    /// Of the service's VIP's family.
    pub ip: IpAddr,
    pub port: u16,
    /// Resolved next hop; `None` until its MAC is known.
    pub hop: Option<Hop>,
}

/// One virtual service.
#[derive(Clone, Debug)]
pub struct Service {
    pub name: String,
    pub vip: IpAddr,
    pub port: u16,
    /// IP protocol number (6 TCP, 17 UDP).
    pub proto: u8,
    pub scheduler: SchedulerKind,
    /// lblc/lblcr: how long a destination's entry lives unused, and how long
    /// an lblcr server set stays unchanged before it shrinks.
    pub locality_expire_ms: u64,
    pub forward: ForwardMode,
    /// Scheduler view of the backends: stable id, weight, availability.
    pub weights: Vec<BackendWeight>,
    /// Addresses and hops, index-aligned with `weights`.
    pub backends: Vec<Backend>,
    pub maglev: Option<Arc<MaglevTable>>,
    /// Full-NAT source addresses, of the VIP's family.
    pub snat: Vec<IpAddr>,
    /// Answers when no backend is available.
    pub sorry: Option<Backend>,
    /// Source-IP persistence timeout, if enabled.
    pub persistence_ms: Option<u64>,
    pub on_down: DownAction,
}

/// A VIP, full-NAT source or floating address this node may answer for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAddr {
    /// Whether this node owns it right now (VRRP master, or no VRRP).
    pub owned: bool,
    /// Source MAC for ARP replies and frames sent on its behalf
    /// (the VRRP virtual MAC, or the port's own MAC).
    pub mac: MacAddr,
    /// `mac` is a VRRP virtual MAC, answered on every port; otherwise
    /// full-NAT and floating addresses are answered with the MAC of the
    /// port asked on.
    pub shared_mac: bool,
    /// The port it lives on: replies of a connection learned from a peer
    /// leave by it until the client's first packet shows where it is.
    pub port: PortId,
    pub kind: LocalKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalKind {
    Vip,
    Snat,
    /// An address a VRRP instance holds that no service uses: a gateway
    /// the backends route through, answered only by the master.
    Floating,
}

/// A port (interface) of the node.
#[derive(Clone, Debug)]
pub struct Port {
    pub name: String,
    pub mac: MacAddr,
    /// The largest IP packet the port sends: larger ones get ICMP
    /// fragmentation-needed (IPv4 with DF), ICMPv6 Packet Too Big, or are
    /// dropped.
    pub mtu: u16,
    /// The node's own addresses on the port: never a client's, and the
    /// source of the ICMP errors the node sends there.
    pub ipv4: Vec<Ipv4Addr>,
    /// Likewise for IPv6.
    pub ipv6: Vec<Ipv6Addr>,
    /// Frames the XDP program sends by it leave, so connections whose
    /// packets leave here may be offloaded.
    pub xdp_xmit: bool,
}

impl Port {
    /// A port with the Ethernet MTU, no address of its own, usable by XDP.
    pub fn new(name: &str, mac: MacAddr) -> Port {
        Port {
            name: name.to_string(),
            mac,
            mtu: 1500,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            xdp_xmit: true,
        }
    }
}

/// Fast, fixed hasher for the small lookup maps on the hot path (keys are
/// addresses we configured, not attacker-chosen at scale).
#[derive(Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<AddrHasher>>;
pub type FastSet<K> = HashSet<K, BuildHasherDefault<AddrHasher>>;

/// Key of the service map: (VIP, port, protocol).
pub type ServiceKey<A = u32> = (A, u16, u8);

/// Everything the workers read. Immutable once published.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub ports: Vec<Port>,
    pub services: Vec<Service>,
    pub by_key: FastMap<ServiceKey, u16>,
    /// VIPs and full-NAT addresses by address.
    pub locals: FastMap<u32, LocalAddr>,
    /// The IPv6 services' keys and IPv6 local addresses, apart so the
    /// IPv4 maps keep their 4-byte keys.
    pub by_key6: FastMap<ServiceKey<Ip6>, u16>,
    pub locals6: FastMap<Ip6, LocalAddr>,
    /// Backends whose existing flows must be dropped (failed with `on_down = drop`).
    pub dead_backends: FastSet<u32>,
    /// Established connections are forwarded by the XDP program (where the
    /// engine has one), not by the workers.
    pub fast_path: bool,
    /// VRRP virtual MACs of instances this node is not master of. Frames it
    /// still forwards for their connections must not carry them as source:
    /// a switch would learn the virtual MAC back toward this node and send
    /// the new master's traffic here.
    pub released_macs: Vec<MacAddr>,
    /// Where workers record other hosts' ARP claims on owned addresses;
    /// the same record in every snapshot of a node.
    pub arp_claims: std::sync::Arc<crate::arp_claims::ArpClaims>,
}

impl Snapshot {
    /// Builds the lookup maps from `services` and `locals` entries already set.
    pub fn index(&mut self) {
        self.by_key.clear();
        self.by_key6.clear();
        for (i, s) in self.services.iter().enumerate() {
            match s.vip {
                IpAddr::V4(v) => self.by_key.insert((v.to_bits(), s.port, s.proto), i as u16),
                IpAddr::V6(v) => self.by_key6.insert((v.octets(), s.port, s.proto), i as u16),
            };
        }
    }

    pub fn service(&self, vip: u32, port: u16, proto: u8) -> Option<(u16, &Service)> {
        let id = *self.by_key.get(&(vip, port, proto))?;
        Some((id, self.services.get(usize::from(id))?))
    }

    pub fn service6(&self, vip: Ip6, port: u16, proto: u8) -> Option<(u16, &Service)> {
        let id = *self.by_key6.get(&(vip, port, proto))?;
        Some((id, self.services.get(usize::from(id))?))
    }

    /// Whether `src` is an address no client can have: "this network"
    /// (0/8), loopback, multicast, reserved and broadcast (224/3), a VIP or
    /// full-NAT address, or one of the node's own.
    pub fn is_martian_source(&self, src: Ipv4Addr) -> bool {
        let first = src.octets()[0];
        first == 0
            || first == 127
            || first >= 224
            || self.locals.contains_key(&src.to_bits())
            || self.ports.iter().any(|p| p.ipv4.contains(&src))
    }

    /// Whether `src` is an IPv6 address no client can have: unspecified,
    /// loopback, multicast, IPv4-mapped, a VIP or full-NAT address, or one
    /// of the node's own.
    pub fn is_martian_source6(&self, src: Ipv6Addr) -> bool {
        src.is_unspecified()
            || src.is_loopback()
            || src.is_multicast()
            || src.to_ipv4_mapped().is_some()
            || self.locals6.contains_key(&src.octets())
            || self.ports.iter().any(|p| p.ipv6.contains(&src))
    }

    /// The source MAC for a frame leaving by `port` that a connection wants
    /// sent from `mac`: the port's own MAC if `mac` is a released virtual MAC.
    pub fn source_mac(&self, mac: [u8; 6], port: PortId) -> [u8; 6] {
        if self.released_macs.is_empty() || !self.released_macs.contains(&MacAddr(mac)) {
            return mac;
        }
        self.ports.get(usize::from(port)).map_or(mac, |p| p.mac.0)
    }
}

/// The channel between the control plane and the workers: the current
/// snapshot plus a generation number workers poll once per batch.
#[derive(Default)]
pub struct Published {
    snapshot: ArcSwap<Snapshot>,
    generation: AtomicU64,
    /// Set by a worker that met an unresolved next hop; the control plane
    /// resolves and clears it.
    pub resolve_wanted: AtomicBool,
}

impl Published {
    pub fn new(snapshot: Snapshot) -> Arc<Self> {
        Arc::new(Published {
            snapshot: ArcSwap::from_pointee(snapshot),
            generation: AtomicU64::new(1),
            resolve_wanted: AtomicBool::new(false),
        })
    }

    pub fn publish(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn load(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }
}
