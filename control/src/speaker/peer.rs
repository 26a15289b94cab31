//! One BGP peer: a task that owns the TCP connection and the timers of a
//! `bgp::Session` and carries out what the session asks for.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bgp::{Input, LogLevel, Output, PeerConfig, Route, Session, State, TimerKind};
use log::{debug, error, info, warn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{sockopt, BgpStatus, PeerStatus};
use crate::config::{Announce, BgpPeer};

/// A peer that does not take our octets for this long is treated as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const READ_BUFFER: usize = 64 * 1024;
const TIMERS: [TimerKind; 3] = [
    TimerKind::ConnectRetry,
    TimerKind::Hold,
    TimerKind::Keepalive,
];

pub(super) enum Cmd {
    /// The announces the policy wants advertised now (replaces the previous set).
    Desired(Vec<Announce>),
    /// A connection the listener accepted from this peer's address.
    Accepted(TcpStream),
    /// BFD's verdict on the path to the peer: a failure (`up` false, `why`
    /// says what BFD saw) closes the session at once; Up restarts it.
    Bfd { up: bool, why: String },
    /// Send Cease / Administrative Shutdown with `reason`, close, and end.
    Stop {
        reason: String,
        done: oneshot::Sender<()>,
    },
}

/// What woke the peer task.
enum Event {
    Cmd(Option<Cmd>),
    Read(io::Result<usize>),
    Connected(io::Result<TcpStream>),
    Timer,
}

pub(super) struct Peer {
    cfg: BgpPeer,
    name: String,
    session: Session,
    out: Vec<Output>,
    reader: Option<OwnedReadHalf>,
    writer: Option<OwnedWriteHalf>,
    connecting: Option<JoinHandle<io::Result<TcpStream>>>,
    timers: [Option<Instant>; 3],
    /// Our address on the last connection: the default next hop of IPv4 routes.
    local_addr: Option<IpAddr>,
    desired: Vec<Announce>,
    /// Why the last connect attempt failed, shown while the session is down.
    connect_error: Option<String>,
    status: Arc<Mutex<BgpStatus>>,
    index: usize,
    /// BFD took the session down; it stays down until BFD is Up again.
    bfd_down: bool,
}

/// The session configuration of `[[bgp.peer]]` `cfg`.
pub(super) fn session_config(cfg: &BgpPeer, local_as: u32, router_id: Ipv4Addr) -> PeerConfig {
    let mut pc = PeerConfig::new(cfg.address.to_string(), local_as, cfg.remote_as, router_id);
    pc.hold_time = cfg.hold_time_s;
    pc.keepalive = cfg.keepalive_s;
    pc.passive = cfg.passive;
    pc.connect_retry = Duration::from_secs(u64::from(cfg.connect_retry_s));
    // Back off a little when the peer keeps refusing, but not so far that
    // a repaired site waits long to be announced again.
    pc.connect_retry_max = pc.connect_retry.saturating_mul(4);
    pc.families = cfg.families.clone();
    pc.ipv6_next_hop = cfg.ipv6_next_hop;
    pc.graceful_restart = cfg.graceful_restart;
    pc.max_prefixes = Some(cfg.max_prefixes);
    pc
}

impl Peer {
    pub(crate) fn new(
        cfg: BgpPeer,
        pc: PeerConfig,
        status: Arc<Mutex<BgpStatus>>,
        index: usize,
    ) -> Peer {
        Peer {
            name: pc.name.clone(),
            session: Session::new(pc),
            out: Vec::new(),
            reader: None,
            writer: None,
            connecting: None,
            timers: [None; 3],
            local_addr: cfg.local_address,
            desired: Vec::new(),
            connect_error: None,
            status,
            index,
            bfd_down: false,
            cfg,
        }
    }

    pub(crate) async fn run(mut self, mut cmds: mpsc::UnboundedReceiver<Cmd>) {
        let mut buf = vec![0u8; READ_BUFFER];
        self.feed(Input::Start);
        self.apply().await;
        loop {
            let deadline = self.timers.iter().flatten().min().copied();
            let ev = tokio::select! {
                c = cmds.recv() => Event::Cmd(c),
                r = read_some(&mut self.reader, &mut buf) => Event::Read(r),
                c = join_connect(&mut self.connecting) => Event::Connected(c),
                _ = sleep_until(deadline) => Event::Timer,
            };
            match ev {
                Event::Cmd(None) => return,
                Event::Cmd(Some(Cmd::Stop { reason, done })) => {
                    self.feed(Input::Stop { reason });
                    self.apply().await;
                    self.close().await;
                    let _ = done.send(());
                    return;
                }
                Event::Cmd(Some(Cmd::Desired(list))) => {
                    self.desired = list;
                    self.sync_routes();
                }
                Event::Cmd(Some(Cmd::Accepted(stream))) => self.accepted(stream),
                Event::Cmd(Some(Cmd::Bfd { up, why })) => self.bfd(up, why),
                Event::Read(Ok(0)) => {
                    self.drop_connection();
                    self.feed(Input::TcpClosed);
                }
                Event::Read(Ok(n)) => {
                    let data = buf.get(..n).unwrap_or_default();
                    self.session
                        .handle(Input::Bytes(data), Instant::now(), &mut self.out);
                }
                Event::Read(Err(e)) => {
                    info!("BGP peer {}: connection broke: {e}", self.name);
                    self.drop_connection();
                    self.feed(Input::TcpClosed);
                }
                Event::Connected(Ok(stream)) => {
                    self.connecting = None;
                    self.connect_error = None;
                    self.attach(stream);
                }
                Event::Connected(Err(e)) => {
                    self.connecting = None;
                    let to = SocketAddr::new(self.cfg.address, self.cfg.port);
                    let why = format!("TCP connect to {to} failed: {e}");
                    // Said once per cause, not on every retry.
                    if self.connect_error.as_ref() != Some(&why) {
                        warn!("BGP peer {}: {why}", self.name);
                    } else {
                        debug!("BGP peer {}: {why}", self.name);
                    }
                    self.connect_error = Some(why);
                    self.feed(Input::TcpFailed);
                }
                Event::Timer => {
                    let now = Instant::now();
                    for kind in TIMERS {
                        let slot = &mut self.timers[timer_index(kind)];
                        if slot.is_some_and(|at| at <= now) {
                            *slot = None;
                            self.feed(Input::Timer(kind));
                        }
                    }
                }
            }
            self.apply().await;
        }
    }

    fn feed(&mut self, input: Input) {
        self.session.handle(input, Instant::now(), &mut self.out);
    }

    /// Waiting out the hold time after BFD saw the path fail would keep the
    /// peer's routes through us alive for seconds: stop at once instead.
    fn bfd(&mut self, up: bool, why: String) {
        if !up && !self.bfd_down {
            self.bfd_down = true;
            warn!(
                "BGP peer {}: {why}: closing the session now; it restarts when BFD is Up again",
                self.name
            );
            self.feed(Input::Stop { reason: why });
        } else if up && self.bfd_down {
            self.bfd_down = false;
            info!(
                "BGP peer {}: BFD is Up again: restarting the session",
                self.name
            );
            self.feed(Input::Start);
        }
    }

    /// A connection from the listener: taken only while the session waits for one.
    fn accepted(&mut self, stream: TcpStream) {
        if !self.session.wants_connection() || self.writer.is_some() {
            info!(
                "BGP peer {}: incoming connection refused, session is {}",
                self.name,
                self.session.state()
            );
            return;
        }
        if self.cfg.ttl_security {
            if let Err(e) = sockopt::ttl_security(&stream, self.cfg.address.is_ipv6()) {
                warn!("BGP peer {}: cannot apply ttl_security to the accepted connection: {e}; closing it", self.name);
                return;
            }
        }
        if let Some(task) = self.connecting.take() {
            task.abort();
        }
        self.attach(stream);
    }

    fn attach(&mut self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        if let Ok(a) = stream.local_addr() {
            if self.cfg.local_address.is_none() {
                self.local_addr = Some(a.ip().to_canonical());
            }
        }
        let (r, w) = stream.into_split();
        self.reader = Some(r);
        self.writer = Some(w);
        // Next hops default to our end of this connection: set them before OPEN.
        self.sync_routes();
        self.feed(Input::TcpConnected);
    }

    fn drop_connection(&mut self) {
        self.reader = None;
        self.writer = None;
        if let Some(task) = self.connecting.take() {
            task.abort();
        }
    }

    /// Closes after flushing what was written (a NOTIFICATION must arrive).
    async fn close(&mut self) {
        if let Some(mut w) = self.writer.take() {
            let _ = tokio::time::timeout(WRITE_TIMEOUT, w.shutdown()).await;
        }
        self.drop_connection();
    }

    /// Brings the session's advertised set in line with `desired`.
    fn sync_routes(&mut self) {
        let mut want: BTreeMap<bgp::Prefix, Route> = BTreeMap::new();
        for a in &self.desired {
            let Some(nh) = self.next_hop(a) else {
                continue;
            };
            match route(a, nh) {
                Ok(r) => {
                    want.insert(r.prefix, r);
                }
                Err(e) => error!("BGP peer {}: cannot announce {}: {e}", self.name, a.prefix),
            }
        }
        let stale: Vec<bgp::Prefix> = self
            .session
            .advertised()
            .map(|r| r.prefix)
            .filter(|p| !want.contains_key(p))
            .collect();
        for p in stale {
            self.feed(Input::Withdraw(p));
        }
        for r in want.into_values() {
            self.feed(Input::Announce(r));
        }
    }

    /// The next hop `a` goes out with: its own, else for IPv6 the peer's
    /// `next_hop_v6` (config load requires one), else our IPv4 end of the
    /// session (none yet before the first connection).
    fn next_hop(&self, a: &Announce) -> Option<IpAddr> {
        if let Some(nh) = a.next_hop {
            return Some(nh);
        }
        if a.prefix.is_ipv6() {
            return self.cfg.ipv6_next_hop.map(|h| IpAddr::V6(h.global));
        }
        self.local_addr.filter(IpAddr::is_ipv4)
    }

    /// Families the peer negotiated, and why each configured one it did not
    /// is left out, for status displays.
    fn families(&self) -> (Vec<String>, Vec<String>) {
        let Some(n) = self.session.negotiated() else {
            return (Vec::new(), Vec::new());
        };
        let unsent = self
            .cfg
            .families
            .iter()
            .filter(|f| !n.families.contains(f))
            .map(|f| format!("{f}: the peer did not offer it in its OPEN"))
            .collect();
        (n.families.iter().map(ToString::to_string).collect(), unsent)
    }

    /// Carries out the session's outputs, including any they lead to.
    async fn apply(&mut self) {
        while !self.out.is_empty() {
            let outs = std::mem::take(&mut self.out);
            for o in outs {
                self.apply_one(o).await;
            }
        }
        self.publish_status();
    }

    async fn apply_one(&mut self, o: Output) {
        match o {
            Output::Connect => {
                self.drop_connection();
                let (addr, port) = (self.cfg.address, self.cfg.port);
                let local = self.cfg.local_address;
                let ttl = self.cfg.ttl_security;
                let md5 = self.cfg.md5_password.clone();
                // A peer that drops our SYNs would otherwise hold the attempt
                // for the kernel's two minutes of SYN retries.
                let within = Duration::from_secs(u64::from(self.cfg.connect_retry_s.max(1)));
                self.connecting = Some(tokio::spawn(async move {
                    connect(addr, port, local, ttl, md5, within).await
                }));
            }
            Output::Send(bytes) => {
                let Some(w) = self.writer.as_mut() else {
                    debug!("BGP peer {}: message dropped, no connection", self.name);
                    return;
                };
                let res = tokio::time::timeout(WRITE_TIMEOUT, w.write_all(&bytes)).await;
                let err = match res {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("peer took no data for {WRITE_TIMEOUT:?}"),
                };
                info!("BGP peer {}: write failed: {err}", self.name);
                self.drop_connection();
                self.feed(Input::TcpClosed);
            }
            Output::CloseTcp => self.close().await,
            Output::SetTimer(kind, at) => self.timers[timer_index(kind)] = at,
            Output::StateChanged { from, to } => {
                debug!("BGP peer {}: {from} -> {to}", self.name)
            }
            Output::Established => info!(
                "BGP peer {} (AS{}): session established",
                self.name, self.cfg.remote_as
            ),
            Output::Down { reason } => warn!(
                "BGP peer {} (AS{}): session down: {reason}; routes announced to it are gone from its table",
                self.name, self.cfg.remote_as
            ),
            Output::RoutesReceived {
                announced,
                withdrawn,
            } => debug!(
                "BGP peer {}: received {} announced, {} withdrawn prefix(es); counted, not installed",
                self.name,
                announced.len(),
                withdrawn.len()
            ),
            Output::Log(level, msg) => match level {
                LogLevel::Error => error!("{msg}"),
                LogLevel::Warn => warn!("{msg}"),
                LogLevel::Info => info!("{msg}"),
                LogLevel::Debug => debug!("{msg}"),
            },
        }
    }

    fn publish_status(&self) {
        let stats = self.session.stats();
        let (families, unsent_families) = self.families();
        let st = PeerStatus {
            families,
            unsent_families,
            address: self.cfg.address,
            remote_as: self.cfg.remote_as,
            state: self.session.state().to_string(),
            established_since: stats.established_since,
            received: stats.prefixes_received_v4 + stats.prefixes_received_v6,
            last_error: match (&self.connect_error, self.session.state()) {
                (Some(e), State::Connect | State::Active | State::Idle) => Some(e.clone()),
                _ => stats.last_error.clone(),
            },
            // Routes of a family the peer did not negotiate are held, not sent.
            advertised: self
                .session
                .advertised()
                .filter(|r| {
                    self.session
                        .negotiated()
                        .is_none_or(|n| n.families.contains(&r.prefix.family()))
                })
                .map(|r| r.prefix.to_string())
                .collect(),
            messages_in: stats.messages_in,
            messages_out: stats.messages_out,
            established_count: stats.established_count,
            bfd: None,
        };
        let mut all = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = all.peers.get_mut(self.index) {
            // The BFD task owns that part.
            *slot = PeerStatus {
                bfd: slot.bfd.take(),
                ..st
            };
        }
    }
}

fn timer_index(kind: TimerKind) -> usize {
    match kind {
        TimerKind::ConnectRetry => 0,
        TimerKind::Hold => 1,
        TimerKind::Keepalive => 2,
    }
}

/// The BGP route for an announce with next hop `nh`.
fn route(a: &Announce, nh: IpAddr) -> Result<Route, bgp::PrefixError> {
    let prefix = bgp::Prefix::new(a.prefix.addr, a.prefix.len)?;
    let mut r = Route::new(prefix, nh);
    r.med = a.med;
    r.local_pref = a.local_pref;
    r.communities = a
        .communities
        .iter()
        .map(|&(asn, v)| (u32::from(asn) << 16) | u32::from(v))
        .collect();
    r.large_communities = a
        .large_communities
        .iter()
        .map(|&(g, d1, d2)| [g, d1, d2])
        .collect();
    r.prepend = a.prepend;
    Ok(r)
}

async fn connect(
    peer: IpAddr,
    port: u16,
    local: Option<IpAddr>,
    ttl_security: bool,
    md5: Option<String>,
    within: Duration,
) -> io::Result<TcpStream> {
    let keyed = md5.is_some();
    let sock = if peer.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    if ttl_security {
        sockopt::ttl_security(&sock, peer.is_ipv6())?;
    }
    if let Some(key) = md5 {
        sockopt::md5_key(&sock, peer, key.as_bytes())?;
    }
    if let Some(l) = local {
        sock.bind(SocketAddr::new(l, 0))?;
    }
    match tokio::time::timeout(within, sock.connect(SocketAddr::new(peer, port))).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            no_answer(within, keyed),
        )),
    }
}

/// Why a connect attempt got no answer at all. A host that expects a TCP
/// MD5 signature, or checks it with another key, drops the SYN without a
/// reply, which looks exactly like this.
fn no_answer(within: Duration, keyed: bool) -> String {
    if keyed {
        format!(
            "no answer within {within:?}; the likely cause is a TCP MD5 key mismatch (the peer drops segments signed with another key, or signed at all when it has none, silently): check md5_password against the peer's password, then the route and firewall"
        )
    } else {
        format!(
            "no answer within {within:?}; if the peer requires TCP MD5 it drops unsigned segments silently: set md5_password to its password; otherwise check the route and firewall"
        )
    }
}

async fn read_some(r: &mut Option<OwnedReadHalf>, buf: &mut [u8]) -> io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

async fn join_connect(
    task: &mut Option<JoinHandle<io::Result<TcpStream>>>,
) -> io::Result<TcpStream> {
    match task {
        Some(t) => t
            .await
            .unwrap_or_else(|e| Err(io::Error::other(format!("connect task ended: {e}")))),
        None => std::future::pending().await,
    }
}

pub(super) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AnnounceCondition;
    use bgp::message::{Capability, Message, Open, SessionCtx};

    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    /// A listener on loopback that wants MD5 from 127.0.0.1 with `key`.
    fn keyed_listener(key: &[u8]) -> std::net::TcpListener {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        sockopt::md5_key(&l, LOCALHOST, key).expect("MD5 key");
        l
    }

    #[tokio::test]
    async fn a_wrong_or_missing_md5_key_is_named_within_connect_retry() {
        let l = keyed_listener(b"right");
        let port = l.local_addr().expect("port").port();
        let within = Duration::from_millis(700);
        for (key, wanted) in [
            (Some("wrong".to_string()), "MD5 key mismatch"),
            (None, "set md5_password"),
        ] {
            let start = Instant::now();
            let e = connect(LOCALHOST, port, None, false, key, within)
                .await
                .expect_err("the listener drops the SYN");
            let took = start.elapsed();
            assert!(took >= within && took < within * 3, "took {took:?}");
            assert!(e.to_string().contains(wanted), "{e}");
        }
        // The right key connects: the listener is there, only the key was wrong.
        let s = connect(LOCALHOST, port, None, false, Some("right".into()), within).await;
        assert!(s.is_ok(), "{s:?}");
    }

    fn announce(prefix: &str) -> Announce {
        Announce {
            prefix: prefix.parse().expect("valid prefix"),
            next_hop: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
            med: None,
            local_pref: None,
            prepend: 0,
            condition: AnnounceCondition::Always,
        }
    }

    fn peer_config(port: u16) -> BgpPeer {
        BgpPeer {
            address: LOCALHOST,
            remote_as: 65000,
            hold_time_s: 3,
            keepalive_s: Some(1),
            passive: false,
            port,
            local_address: None,
            families: vec![bgp::Family::Ipv4Unicast],
            ipv6_next_hop: None,
            ttl_security: false,
            md5_password: None,
            connect_retry_s: 1,
            max_prefixes: 10,
            graceful_restart: false,
            bfd: None,
        }
    }

    /// Reads messages from vipd until one that is not a KEEPALIVE.
    async fn next_message(s: &mut TcpStream, rx: &mut Vec<u8>) -> Message {
        let ctx = SessionCtx {
            four_octet_as: true,
        };
        loop {
            match bgp::decode(rx, &ctx).expect("vipd sends well-formed messages") {
                Some((Message::Keepalive, n)) => {
                    rx.drain(..n);
                }
                Some((m, n)) => {
                    rx.drain(..n);
                    return m;
                }
                None => {
                    let mut buf = [0u8; 4096];
                    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                        .await
                        .expect("vipd answers within 5 s")
                        .expect("read from vipd");
                    assert!(n > 0, "vipd closed the connection early");
                    rx.extend_from_slice(&buf[..n]);
                }
            }
        }
    }

    /// The test peer's OPEN, offering `family`, and its first KEEPALIVE.
    async fn answer_open(s: &mut TcpStream, family: bgp::Family) {
        let ours = Open::new(
            65000,
            3,
            Ipv4Addr::new(10, 1, 1, 1),
            vec![
                Capability::multiprotocol(family),
                Capability::FourOctetAs(65000),
            ],
        );
        let ctx = SessionCtx {
            four_octet_as: true,
        };
        let mut out = Vec::new();
        bgp::encode(&Message::Open(ours), &SessionCtx::default(), &mut out).expect("encode");
        bgp::encode(&Message::Keepalive, &ctx, &mut out).expect("encode");
        s.write_all(&out).await.expect("write");
    }

    fn prefixes(m: &Message) -> (Vec<String>, Vec<String>) {
        let Message::Update(u) = m else {
            panic!("expected an UPDATE, got {m:?}");
        };
        (
            u.announced().map(ToString::to_string).collect(),
            u.withdrawn_all().map(ToString::to_string).collect(),
        )
    }

    #[tokio::test]
    async fn peer_announces_withdraws_and_stops_with_a_shutdown_communication() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let status = Arc::new(Mutex::new(BgpStatus {
            peers: vec![PeerStatus::idle(LOCALHOST, 65000)],
            ..BgpStatus::default()
        }));
        let cfg = peer_config(port);
        let pc = session_config(&cfg, 4_200_000_001, Ipv4Addr::new(10, 9, 9, 9));
        let peer = Peer::new(cfg, pc, status.clone(), 0);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(peer.run(rx));
        tx.send(Cmd::Desired(vec![announce("10.0.0.0/25")]))
            .expect("peer task runs");

        let (mut s, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .expect("vipd connects within 5 s")
            .expect("accept");
        let mut rx_buf = Vec::new();
        let Message::Open(open) = next_message(&mut s, &mut rx_buf).await else {
            panic!("vipd must open with OPEN");
        };
        assert_eq!(open.four_octet_as(), Some(4_200_000_001));
        answer_open(&mut s, bgp::Family::Ipv4Unicast).await;

        // Established: the desired route, with our end of the TCP connection as next hop.
        let m = next_message(&mut s, &mut rx_buf).await;
        assert_eq!(prefixes(&m).0, vec!["10.0.0.0/25".to_string()]);
        if let Message::Update(u) = &m {
            assert_eq!(u.attributes.next_hop, Some(Ipv4Addr::LOCALHOST));
        }
        let end_of_rib = next_message(&mut s, &mut rx_buf).await;
        assert_eq!(prefixes(&end_of_rib), (Vec::new(), Vec::new()));

        tx.send(Cmd::Desired(Vec::new())).expect("peer task runs");
        let m = next_message(&mut s, &mut rx_buf).await;
        assert_eq!(prefixes(&m).1, vec!["10.0.0.0/25".to_string()]);
        {
            let st = status.lock().unwrap_or_else(|e| e.into_inner());
            assert_eq!(st.peers[0].state, "Established");
            assert!(st.peers[0].advertised.is_empty());
        }

        let (done, wait) = oneshot::channel();
        tx.send(Cmd::Stop {
            reason: "maintenance".into(),
            done,
        })
        .expect("peer task runs");
        let Message::Notification(n) = next_message(&mut s, &mut rx_buf).await else {
            panic!("a stop must send a NOTIFICATION");
        };
        assert_eq!(
            (n.code, n.subcode),
            (6, 2),
            "Cease / Administrative Shutdown"
        );
        assert_eq!(n.shutdown_message().as_deref(), Some("maintenance"));
        wait.await.expect("stop confirmed");
        task.await.expect("peer task ends");
    }

    #[tokio::test]
    async fn over_ipv6_an_ipv6_prefix_goes_out_with_the_configured_next_hop() {
        let listener = tokio::net::TcpListener::bind("[::1]:0")
            .await
            .expect("bind IPv6 loopback");
        let port = listener.local_addr().expect("local addr").port();
        let peer_addr = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
        let status = Arc::new(Mutex::new(BgpStatus {
            peers: vec![PeerStatus::idle(peer_addr, 65000)],
            ..BgpStatus::default()
        }));
        let next_hop = bgp::Ipv6NextHop {
            global: "2001:db8:20::2".parse().expect("v6"),
            link_local: Some("fe80::2".parse().expect("v6")),
        };
        let cfg = BgpPeer {
            address: peer_addr,
            families: vec![bgp::Family::Ipv6Unicast],
            ipv6_next_hop: Some(next_hop),
            ..peer_config(port)
        };
        let pc = session_config(&cfg, 65001, Ipv4Addr::new(10, 9, 9, 9));
        assert!(pc.validate().is_empty(), "{:?}", pc.validate());
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(Peer::new(cfg, pc, status.clone(), 0).run(rx));
        tx.send(Cmd::Desired(vec![announce("2001:db8::/48")]))
            .expect("peer task runs");

        let (mut s, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .expect("vipd connects within 5 s")
            .expect("accept");
        let mut rx_buf = Vec::new();
        let Message::Open(_) = next_message(&mut s, &mut rx_buf).await else {
            panic!("vipd must open with OPEN");
        };
        answer_open(&mut s, bgp::Family::Ipv6Unicast).await;

        let m = next_message(&mut s, &mut rx_buf).await;
        assert_eq!(prefixes(&m).0, vec!["2001:db8::/48".to_string()]);
        let Message::Update(u) = &m else {
            panic!("expected an UPDATE, got {m:?}");
        };
        let reach = u.attributes.mp_reach.as_ref().expect("MP_REACH_NLRI");
        assert_eq!(reach.next_hop, IpAddr::V6(next_hop.global));
        assert_eq!(reach.link_local, next_hop.link_local);
        {
            let st = status.lock().unwrap_or_else(|e| e.into_inner());
            assert_eq!(st.peers[0].families, ["ipv6-unicast"]);
            assert_eq!(st.peers[0].advertised, ["2001:db8::/48"]);
        }
        task.abort();
    }

    #[test]
    fn announce_attributes_map_onto_the_route() {
        let a = Announce {
            prefix: "10.0.0.0/25".parse().expect("valid prefix"),
            next_hop: None,
            communities: vec![(65001, 100), (0xffff, 0xff01)],
            large_communities: vec![(4_200_000_001, 1, 2)],
            med: Some(50),
            local_pref: Some(200),
            prepend: 2,
            condition: AnnounceCondition::VipHealthy,
        };
        let r = route(&a, IpAddr::V4(Ipv4Addr::new(172, 16, 1, 2))).expect("valid prefix");
        assert_eq!(r.prefix.to_string(), "10.0.0.0/25");
        assert_eq!(r.next_hop, IpAddr::V4(Ipv4Addr::new(172, 16, 1, 2)));
        assert_eq!(r.communities, vec![0xfde9_0064, 0xffff_ff01]);
        assert_eq!(r.large_communities, vec![[4_200_000_001, 1, 2]]);
        assert_eq!((r.med, r.local_pref, r.prepend), (Some(50), Some(200), 2));
    }
}
