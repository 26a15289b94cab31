//! The BGP speaker: one task per `[[bgp.peer]]` driving a `bgp::Session` over
//! TCP, a listener for passive peers, and the announce policy that decides
//! which `[[bgp.announce]]` prefixes are advertised. Routes received are
//! counted (and limited by `max_prefixes`), never installed. The speaker
//! sees the node only through [`Announcements`], and reports through
//! [`Status`].

mod bfd;
mod peer;
mod sockopt;

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use log::{info, warn};
use tokio::net::TcpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub(crate) use self::bfd::BfdStatus;
use crate::config::{Announce, Bgp, DrainRoutes, Prefix};
use peer::{Cmd, Peer};

/// The announce policy's liveness check runs at least this often, so a
/// stalled dataplane is noticed within this period plus the stale threshold.
const POLICY_TICK: Duration = Duration::from_millis(50);
/// How long a clean stop waits for the NOTIFICATIONs to go out.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// What the node decided about the `[[bgp.announce]]` prefixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Indices of the announces to advertise now.
    pub(crate) wanted: Vec<usize>,
    /// Prefixes the operator withdrew (`vipctl bgp withdraw`).
    pub(crate) withdrawn: Vec<Prefix>,
    /// Whether every dataplane worker runs.
    pub(crate) alive: bool,
    /// Set while the node is drained: what to do to its routes.
    pub(crate) drain: Option<DrainRoutes>,
}

/// What the speaker reads from the node.
pub(crate) trait Announcements: Send + 'static {
    /// Which of `announces` to advertise now.
    fn decide(&self, announces: &[Announce]) -> impl Future<Output = Decision> + Send;
    /// Resolves when the node state may have changed; `false` once the node
    /// is gone.
    fn changed(&mut self) -> impl Future<Output = bool> + Send;
}

/// One peer as the control socket shows it.
#[derive(Clone, Debug)]
pub(crate) struct PeerStatus {
    pub(crate) address: IpAddr,
    pub(crate) remote_as: u32,
    pub(crate) state: String,
    pub(crate) established_since: Option<Instant>,
    /// Prefixes the peer currently announces to us.
    pub(crate) received: usize,
    pub(crate) last_error: Option<String>,
    /// Prefixes in our Adj-RIB-Out toward this peer.
    pub(crate) advertised: Vec<String>,
    pub(crate) messages_in: u64,
    pub(crate) messages_out: u64,
    pub(crate) established_count: u64,
    /// Families negotiated on the current session.
    pub(crate) families: Vec<String>,
    /// Configured families the session does not carry, each with why.
    pub(crate) unsent_families: Vec<String>,
    /// The BFD session, when the peer sets `bfd`.
    pub(crate) bfd: Option<bfd::BfdStatus>,
}

impl PeerStatus {
    /// A configured peer no session has been opened with yet.
    pub(crate) fn idle(address: IpAddr, remote_as: u32) -> PeerStatus {
        PeerStatus {
            address,
            remote_as,
            state: bgp::State::Idle.to_string(),
            established_since: None,
            received: 0,
            last_error: None,
            advertised: Vec::new(),
            messages_in: 0,
            messages_out: 0,
            established_count: 0,
            families: Vec::new(),
            unsent_families: Vec::new(),
            bfd: None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct BgpStatus {
    pub(crate) local_as: u32,
    pub(crate) router_id: Option<Ipv4Addr>,
    pub(crate) peers: Vec<PeerStatus>,
    /// Prefixes the announce policy wants advertised now.
    pub(crate) wanted: Vec<String>,
    /// Prefixes the operator withdrew (`vipctl bgp withdraw`).
    pub(crate) withdrawn: Vec<String>,
    /// Every `[[bgp.announce]]` prefix, in config order.
    pub(crate) configured: Vec<String>,
    /// BFD packets from addresses no BFD session is configured for.
    pub(crate) bfd_unmatched: u64,
}

/// Shared view of the speaker, read by the control socket.
#[derive(Clone, Debug, Default)]
pub(crate) struct Status(Arc<Mutex<BgpStatus>>);

impl Status {
    /// A copy of the current status.
    pub(crate) fn snapshot(&self) -> BgpStatus {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The running speaker; [`Speaker::shutdown`] stops it cleanly.
pub(crate) struct Speaker {
    peers: Vec<(mpsc::UnboundedSender<Cmd>, JoinHandle<()>)>,
    helpers: Vec<JoinHandle<()>>,
    bfd: Option<bfd::Bfd>,
}

impl Speaker {
    /// Starts the peers of `bgp`, the listeners of passive peers and the
    /// announce policy, which follows `node`.
    pub(crate) fn start(
        bgp: &Bgp,
        node: impl Announcements,
        status: Status,
    ) -> anyhow::Result<Speaker> {
        let sessions: Vec<bgp::PeerConfig> = bgp
            .peers
            .iter()
            .map(|p| peer::session_config(p, bgp.local_as, bgp.router_id))
            .collect();
        let errors: Vec<String> = sessions.iter().flat_map(|pc| pc.validate()).collect();
        if !errors.is_empty() {
            anyhow::bail!("{}", errors.join("; "));
        }
        {
            let mut s = status.0.lock().unwrap_or_else(|e| e.into_inner());
            s.local_as = bgp.local_as;
            s.router_id = Some(bgp.router_id);
            s.configured = bgp.announces.iter().map(|a| a.prefix.to_string()).collect();
            s.peers = bgp
                .peers
                .iter()
                .map(|p| PeerStatus::idle(p.address, p.remote_as))
                .collect();
        }
        let mut peers = Vec::new();
        // One listener per port and address family.
        let mut by_port: HashMap<(u16, bool), Vec<PassivePeer>> = HashMap::new();
        for (i, (p, pc)) in bgp.peers.iter().zip(sessions).enumerate() {
            let (tx, rx) = mpsc::unbounded_channel();
            let peer = Peer::new(p.clone(), pc, status.0.clone(), i);
            if p.passive {
                by_port
                    .entry((p.port, p.address.is_ipv6()))
                    .or_default()
                    .push((p.address, tx.clone()));
            }
            peers.push((tx, tokio::spawn(peer.run(rx))));
        }
        let mut helpers = Vec::new();
        for ((port, ipv6), routes) in by_port {
            match listen(bgp, port, ipv6) {
                Ok(l) => helpers.push(tokio::spawn(accept_loop(l, port, routes))),
                Err(e) => {
                    for (_, t) in &peers {
                        t.abort();
                    }
                    return Err(e);
                }
            }
        }
        let senders: Vec<_> = peers.iter().map(|(tx, _)| tx.clone()).collect();
        let bfd = match bfd::Bfd::start(bgp, &senders, status.0.clone()) {
            Ok(b) => b,
            Err(e) => {
                for t in peers.iter().map(|(_, t)| t).chain(&helpers) {
                    t.abort();
                }
                return Err(e);
            }
        };
        let policy = tokio::spawn(run_policy(
            node,
            bgp.announces.clone(),
            senders,
            status.clone(),
        ));
        info!(
            "BGP: AS{} router id {}, {} peer(s), {} announce(s)",
            bgp.local_as,
            bgp.router_id,
            bgp.peers.len(),
            bgp.announces.len()
        );
        helpers.push(policy);
        Ok(Speaker {
            peers,
            helpers,
            bfd,
        })
    }

    /// Sends BFD AdminDown, then withdraws everything by ending every
    /// session with Cease / Administrative Shutdown carrying `reason`
    /// (RFC 8203), then returns.
    pub(crate) async fn shutdown(self, reason: &str) {
        // AdminDown first: the routers then take the Cease that follows as
        // the stop it is, not as a path failure.
        if let Some(b) = self.bfd {
            b.stop().await;
        }
        for h in &self.helpers {
            h.abort();
        }
        let mut waits = Vec::new();
        for (tx, _) in &self.peers {
            let (done, wait) = oneshot::channel();
            if tx
                .send(Cmd::Stop {
                    reason: reason.to_string(),
                    done,
                })
                .is_ok()
            {
                waits.push(wait);
            }
        }
        let all = async {
            for w in waits {
                let _ = w.await;
            }
        };
        if tokio::time::timeout(STOP_TIMEOUT, all).await.is_err() {
            warn!(
                "BGP: not every peer confirmed the shutdown NOTIFICATION within {STOP_TIMEOUT:?}"
            );
        }
        for (_, task) in self.peers {
            task.abort();
        }
    }
}

/// A passive peer's address and its task, for the listener to hand
/// connections from that address to.
type PassivePeer = (IpAddr, mpsc::UnboundedSender<Cmd>);

/// Binds the BGP port for the passive peers of one address family, with
/// their MD5 keys.
fn listen(bgp: &Bgp, port: u16, ipv6: bool) -> anyhow::Result<tokio::net::TcpListener> {
    let family = if ipv6 { "IPv6" } else { "IPv4" };
    let what = || format!("BGP listener on port {port} for passive {family} peers");
    let (sock, any) = if ipv6 {
        let s = TcpSocket::new_v6().with_context(what)?;
        sockopt::ipv6_only(&s).with_context(what)?;
        (s, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    } else {
        let s = TcpSocket::new_v4().with_context(what)?;
        (s, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    };
    sock.set_reuseaddr(true).with_context(what)?;
    let passive =
        |p: &&crate::config::BgpPeer| p.passive && p.port == port && p.address.is_ipv6() == ipv6;
    for p in bgp.peers.iter().filter(passive) {
        if let Some(key) = &p.md5_password {
            sockopt::md5_key(&sock, p.address, key.as_bytes()).with_context(|| {
                format!("setting the TCP MD5 key of passive BGP peer {}", p.address)
            })?;
        }
    }
    sock.bind(SocketAddr::new(any, port))
        .with_context(|| format!("{}: is another BGP daemon running on this node?", what()))?;
    sock.listen(16).with_context(what)
}

/// Hands each accepted connection to the passive peer it comes from.
async fn accept_loop(listener: tokio::net::TcpListener, port: u16, peers: Vec<PassivePeer>) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => match peers.iter().find(|(a, _)| *a == from.ip()) {
                Some((_, tx)) => {
                    let _ = tx.send(Cmd::Accepted(stream));
                }
                None => info!(
                    "BGP: connection from {from} on port {port} closed: not a configured passive peer"
                ),
            },
            Err(e) => {
                warn!("BGP: accepting on port {port} failed: {e}");
                tokio::time::sleep(POLICY_TICK).await;
            }
        }
    }
}

/// Re-evaluates the announce policy on every published change of the node
/// state and every [`POLICY_TICK`], and tells the peers when the set changes.
async fn run_policy(
    mut node: impl Announcements,
    announces: Vec<Announce>,
    peers: Vec<mpsc::UnboundedSender<Cmd>>,
    status: Status,
) {
    let mut tick = tokio::time::interval(POLICY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<(Vec<usize>, Option<DrainRoutes>)> = None;
    loop {
        tokio::select! {
            more = node.changed() => if !more { return },
            _ = tick.tick() => {}
        }
        let Decision {
            wanted: set,
            withdrawn,
            alive,
            drain,
        } = node.decide(&announces).await;
        status.0.lock().unwrap_or_else(|e| e.into_inner()).withdrawn =
            withdrawn.iter().map(ToString::to_string).collect();
        if last.as_ref().is_some_and(|(s, d)| *s == set && *d == drain) {
            continue;
        }
        if last.as_ref().is_some_and(|(_, d)| *d != drain) {
            log_drain(drain);
        }
        let last_set = last.as_ref().map(|(s, _)| s);
        for (i, a) in announces.iter().enumerate() {
            let before = last_set.is_some_and(|l| l.contains(&i));
            let now = set.contains(&i);
            if now && !before {
                info!(
                    "BGP: announcing {} (condition {} holds)",
                    a.prefix, a.condition
                );
            } else if before && !now {
                let why = if drain == Some(DrainRoutes::Withdraw) {
                    "the node is drained (vipctl node undrain restores it)"
                } else if withdrawn.contains(&a.prefix) {
                    "the operator withdrew it (vipctl bgp announce restores it)"
                } else if alive {
                    "no VIP inside it is owned here with a healthy backend"
                } else {
                    "the dataplane workers stopped running"
                };
                warn!("BGP: withdrawing {}: {why}", a.prefix);
            }
        }
        let list: Vec<Announce> = set
            .iter()
            .filter_map(|&i| announces.get(i).map(|a| de_prefer(a, drain)))
            .collect();
        for p in &peers {
            let _ = p.send(Cmd::Desired(list.clone()));
        }
        status.0.lock().unwrap_or_else(|e| e.into_inner()).wanted =
            list.iter().map(|a| a.prefix.to_string()).collect();
        last = Some((set, drain));
    }
}

/// `a` as a drained node announces it: with the drain MED, or with more
/// AS copies prepended.
fn de_prefer(a: &Announce, drain: Option<DrainRoutes>) -> Announce {
    let mut a = a.clone();
    match drain {
        Some(DrainRoutes::Med(med)) => a.med = Some(med),
        Some(DrainRoutes::Prepend(n)) => a.prepend = a.prepend.saturating_add(n),
        Some(DrainRoutes::Withdraw) | None => {}
    }
    a
}

fn log_drain(drain: Option<DrainRoutes>) {
    match drain {
        Some(DrainRoutes::Med(med)) => {
            info!("BGP: node drained: announcing with MED {med} so routers prefer other nodes")
        }
        Some(DrainRoutes::Prepend(n)) => info!(
            "BGP: node drained: announcing with the local AS prepended {n} more times so routers prefer other nodes"
        ),
        Some(DrainRoutes::Withdraw) => {}
        None => info!("BGP: node drain ended: announcing as configured"),
    }
}
