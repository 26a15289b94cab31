//! Scenario 7: failover under load. A client sends a paced UDP stream with
//! sequence numbers to a VIP; UDP echo servers on the backends answer each
//! packet with its sequence number, the source address they saw and their
//! name. The client tells from that who served each packet, and per failure
//! event counts what was lost and the longest outage.
//!
//! Two labs, one after the other, each with its own namespaces (not the
//! gen/DUT/sink line of the throughput scenarios):
//!
//! - VRRP: `lab::Lab` with two vipd nodes (VRRPv3, 100 ms adverts,
//!   priorities 200/100) in full NAT, each with its own SNAT address, so the
//!   backend sees which node forwarded. Events: SIGKILL of the master, then
//!   (once it is back and master again) SIGTERM of the master.
//! - BGP: `lab::TwoSiteLab`, a vipd node per site behind a BIRD router; site
//!   A announces the VIP's /25, site B the /24. Event: SIGKILL of site A's
//!   vipd, so BIRD falls back to site B's shorter prefix.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use lab::sites::{SiteService, SITE_VIP};
use lab::{Lab, LabProcess, LabSpec, Site, TwoSiteLab};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

use crate::rate::per_second;
use crate::report::{FailoverEvent, Measured};
use crate::topo;

/// UDP port of the echo service behind the VIP.
const ECHO_PORT: u16 = 9000;
const VRID: u8 = 51;
/// VRRP priorities of lb1 (the master while it runs) and lb2.
const PRIORITIES: [u8; 2] = [200, 100];
/// Sequence number (8 bytes, big endian); the echo appends the source
/// address it saw (4 bytes) and its name.
const SEQ_LEN: usize = 8;
/// How long a reply may take once the stream has stopped.
const REPLY_GRACE: Duration = Duration::from_millis(250);
/// Deadlines of the waits: daemons starting, sessions coming up, traffic
/// moving. Generous: the machine is shared.
const START_DEADLINE: Duration = Duration::from_secs(30);
const BGP_DEADLINE: Duration = Duration::from_secs(60);
const MOVE_DEADLINE: Duration = Duration::from_secs(20);

/// Settings of one failover run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The vipd binary.
    pub vipd: PathBuf,
    /// Target rate of the client's stream.
    pub pps: u64,
    /// Load kept up after the new server answers, per event.
    pub after: Duration,
    /// Where configs and vipd logs go.
    pub work_dir: PathBuf,
}

/// Runs every event and returns the scenario's figures. `progress` hears
/// which event is running.
pub fn run(settings: &Settings, progress: &mut dyn FnMut(&str)) -> Result<Measured> {
    if settings.pps == 0 {
        bail!("the failover stream needs a rate above 0 packets per second");
    }
    let mut events = Vec::new();
    progress("VRRP lab: two vipd nodes");
    events.extend(vrrp(settings, progress).context("VRRP failover")?);
    progress("two-site BGP lab");
    events.push(bgp(settings, progress).context("BGP site failover")?);
    let sent: u64 = events.iter().map(|e| e.sent).sum();
    let delivered = sent - events.iter().map(|e| e.lost).sum::<u64>();
    let seconds: f64 = events
        .iter()
        .filter(|e| e.rate_pps > 0.0)
        .map(|e| e.sent as f64 / e.rate_pps)
        .sum();
    let rate = |n: u64| per_second(n, Duration::from_secs_f64(seconds));
    Ok(Measured {
        seconds,
        sent,
        delivered,
        offered_pps: rate(sent),
        delivered_pps: rate(delivered),
        notes: vec![format!(
            "{} failover events, UDP echo at {} pps: packets answered of those sent; figures per \
             event in the failover table; vipd nodes run unpinned, not on the DUT core",
            events.len(),
            settings.pps
        )],
        failover: events,
        ..Measured::default()
    })
}

// ---- the VRRP lab ----

/// A vipd node of the VRRP lab.
struct Node {
    k: usize,
    process: Option<LabProcess>,
    socket: PathBuf,
}

impl Node {
    fn role(&self) -> String {
        format!("lb{}", self.k)
    }

    /// The node's VRRP state ("master", "backup", ...), or "" when it does
    /// not answer.
    fn state(&self) -> String {
        control::ctl::client::request_within(
            &self.socket,
            json!({"cmd": "vrrp"}),
            Duration::from_secs(2),
        )
        .ok()
        .and_then(|v| v["instances"][0]["state"].as_str().map(str::to_string))
        .unwrap_or_default()
    }

    fn signal(&self, sig: Signal) -> Result<()> {
        let p = self
            .process
            .as_ref()
            .ok_or_else(|| anyhow!("lb{} is not running", self.k))?;
        let pid = i32::try_from(p.pid()).context("pid out of range")?;
        kill(Pid::from_raw(pid), sig)
            .with_context(|| format!("sending {sig} to vipd on lb{} (pid {pid})", self.k))
    }
}

/// Full NAT source address of node `k`: the backends see who forwarded.
fn snat(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 1, 200 + u8::try_from(k).unwrap_or(0))
}

fn vrrp_config(lab: &Lab, k: usize, socket: &Path) -> String {
    let vip = lab::vip(1);
    let priority = PRIORITIES.get(k - 1).copied().unwrap_or(100);
    let mut out = format!(
        "[node]\nname = \"lb{k}\"\nsite = \"bench\"\n\n[dataplane]\ninterfaces = [\"eth0\", \"eth1\"]\n\
         queues = 1\n\n[control]\nsocket = \"{}\"\n\n[[service]]\nname = \"echo\"\nvip = \"{vip}\"\n\
         port = {ECHO_PORT}\nprotocol = \"udp\"\nscheduler = \"rr\"\nforward = \"fullnat\"\n\
         snat = [\"{}\"]\n",
        socket.display(),
        snat(k)
    );
    for b in 1..=lab.spec().backends {
        out += &format!(
            "  [[service.backend]]\n  address = \"{}\"\n  check = {{ kind = \"none\" }}\n",
            SocketAddrV4::new(lab.backend_ip(b), ECHO_PORT)
        );
    }
    out + &format!(
        "\n[[vrrp]]\nname = \"bench\"\ninterface = \"eth0\"\nvrid = {VRID}\nvips = [\"{vip}\"]\n\
         version = 3\nadvert_interval_ms = 100\npriority = {priority}\n"
    )
}

/// Starts vipd on `lb<k>` and waits until its control socket answers.
fn start_node(lab: &Lab, s: &Settings, k: usize) -> Result<Node> {
    let role = format!("lb{k}");
    let socket = lab.dir().join(format!("{role}.sock"));
    let conf = s.work_dir.join(format!("failover-vrrp-{role}.toml"));
    std::fs::write(&conf, vrrp_config(lab, k, &socket))
        .with_context(|| format!("writing {}", conf.display()))?;
    let mut process = lab.spawn(
        &role,
        &[
            &s.vipd.to_string_lossy(),
            "--config",
            &conf.to_string_lossy(),
        ],
    )?;
    let up = lab.wait_until(
        &format!("vipd on {role} answers on its control socket"),
        START_DEADLINE,
        || {
            process.is_running()
                && control::ctl::client::request_within(
                    &socket,
                    json!({"cmd": "status"}),
                    Duration::from_secs(2),
                )
                .is_ok()
        },
    );
    if let Err(e) = up {
        keep_log(&process, &s.work_dir, &format!("failover-vrrp-{role}"));
        bail!("{e}; vipd log:\n{}", process.log());
    }
    Ok(Node {
        k,
        process: Some(process),
        socket,
    })
}

/// Copies a process's log into the work directory (the lab's goes with it).
fn keep_log(p: &LabProcess, dir: &Path, name: &str) {
    if let Some(src) = p.log_path() {
        let _ = std::fs::copy(src, dir.join(format!("{name}.log")));
    }
}

fn stop_node(node: &mut Node, dir: &Path, run: usize) {
    if let Some(p) = node.process.take() {
        keep_log(&p, dir, &format!("failover-vrrp-{}-{run}", node.role()));
    }
}

fn wait_states(lab: &Lab, nodes: &[&Node], want: &[&str]) -> Result<()> {
    let what = nodes
        .iter()
        .zip(want)
        .map(|(n, w)| format!("{} {w}", n.role()))
        .collect::<Vec<_>>()
        .join(", ");
    lab.wait_until(&format!("VRRP states {what}"), START_DEADLINE, || {
        nodes.iter().zip(want).all(|(n, w)| n.state() == *w)
    })
    .map_err(|e| {
        let seen: Vec<String> = nodes
            .iter()
            .map(|n| format!("{} {:?}", n.role(), n.state()))
            .collect();
        anyhow!("{e} (states now: {})", seen.join(", "))
    })
}

fn vrrp(s: &Settings, progress: &mut dyn FnMut(&str)) -> Result<Vec<FailoverEvent>> {
    let lab = Lab::up(LabSpec {
        name: lab::unique_name("fovrrp"),
        lb_nodes: 2,
        backends: 2,
        ..LabSpec::default()
    })?;
    let _echo = Echo::start(&lab, &["be1", "be2"])?;
    let mut lb1 = start_node(&lab, s, 1)?;
    let mut lb2 = start_node(&lab, s, 2)?;
    let result = vrrp_events(&lab, s, &mut lb1, &lb2, progress);
    stop_node(&mut lb1, &s.work_dir, 2);
    stop_node(&mut lb2, &s.work_dir, 1);
    result
}

fn vrrp_events(
    lab: &Lab,
    s: &Settings,
    lb1: &mut Node,
    lb2: &Node,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<FailoverEvent>> {
    let target = SocketAddrV4::new(lab::vip(1), ECHO_PORT);
    let names: Vec<(Ipv4Addr, String)> = (1..=2).map(|k| (snat(k), format!("lb{k}"))).collect();
    let who = move |src: Ipv4Addr, _: &str| {
        names
            .iter()
            .find(|(a, _)| *a == src)
            .map_or_else(|| format!("unknown source {src}"), |(_, n)| n.clone())
    };
    let mut events = Vec::new();
    wait_states(lab, &[lb1, lb2], &["master", "backup"])?;
    progress("VRRP: SIGKILL of the master lb1");
    events.push(measure(
        lab,
        s,
        target,
        Box::new(who.clone()),
        Failure {
            event: "vrrp_sigkill",
            label: "VRRP master SIGKILL",
            fail: &mut || lb1.signal(Signal::SIGKILL),
            settled: "lb2 VRRP master",
            is_settled: &mut || lb2.state() == "master",
        },
    )?);

    progress("VRRP: lb1 restarts and takes the VIP back");
    stop_node(lb1, &s.work_dir, 1);
    *lb1 = start_node(lab, s, 1)?;
    wait_states(lab, &[lb1, lb2], &["master", "backup"])?;
    progress("VRRP: SIGTERM of the master lb1");
    events.push(measure(
        lab,
        s,
        target,
        Box::new(who),
        Failure {
            event: "vrrp_sigterm",
            label: "VRRP master SIGTERM (priority 0)",
            fail: &mut || lb1.signal(Signal::SIGTERM),
            settled: "lb2 VRRP master",
            is_settled: &mut || lb2.state() == "master",
        },
    )?);
    Ok(events)
}

// ---- the two-site BGP lab ----

fn bgp(s: &Settings, progress: &mut dyn FnMut(&str)) -> Result<FailoverEvent> {
    let lab = TwoSiteLab::up(
        &lab::unique_name("fobgp"),
        lab::LabSpec::default().backend_port,
    )?;
    let _echo = Echo::start(&lab, &["be1", "be2", "be3", "be4"])?;
    let bird = lab.start_bird(&TwoSiteLab::bird_config())?;
    let service = SiteService {
        name: "echo",
        port: ECHO_PORT,
        protocol: "udp",
        check: "{ kind = \"none\" }",
    };
    let mut a = Some(lab.start_vipd(&s.vipd, Site::A, &[service])?);
    let b = lab.start_vipd(&s.vipd, Site::B, &[service])?;
    let result = (|| {
        lab.wait_until(
            "both sites' prefixes in the router's kernel table",
            BGP_DEADLINE,
            || {
                lab.kernel_next_hop(Site::A.prefix()) == Some(Site::A.uplink_ip())
                    && lab.kernel_next_hop(Site::B.prefix()) == Some(Site::B.uplink_ip())
            },
        )
        .map_err(|e| {
            anyhow!(
                "{e}; BIRD says:\n{}",
                lab.birdc(&["show", "protocols", "all"]).unwrap_or_default()
            )
        })?;
        progress("BGP: SIGKILL of site A's vipd");
        let for_vip = SITE_VIP.to_string();
        let via = |site: Site| format!("via {}", site.uplink_ip());
        measure(
            &lab,
            s,
            SocketAddrV4::new(SITE_VIP, ECHO_PORT),
            Box::new(|_, name: &str| {
                Site::of_body(name).map_or_else(
                    || format!("unknown backend {name}"),
                    |site| format!("site {site:?}"),
                )
            }),
            Failure {
                event: "bgp_site_sigkill",
                label: "BGP site A vipd SIGKILL",
                fail: &mut || {
                    let p = a.as_ref().ok_or_else(|| anyhow!("site A is not running"))?;
                    let pid = i32::try_from(p.pid()).context("pid out of range")?;
                    kill(Pid::from_raw(pid), Signal::SIGKILL)
                        .with_context(|| format!("killing site A's vipd (pid {pid})"))
                },
                settled: "BIRD routes the VIP to site B only",
                is_settled: &mut || {
                    lab.birdc(&["show", "route", "for", &for_vip])
                        .is_ok_and(|o| o.contains(&via(Site::B)) && !o.contains(&via(Site::A)))
                },
            },
        )
    })();
    for (p, site) in [(a.take(), "sitea"), (Some(b), "siteb")] {
        if let Some(p) = p {
            keep_log(&p, &s.work_dir, &format!("failover-bgp-{site}"));
        }
    }
    keep_log(&bird, &s.work_dir, "failover-bgp-bird");
    result
}

// ---- one event under load ----

/// One failure: what to do, and the control-plane condition that says the
/// other node or site has taken over.
struct Failure<'a> {
    event: &'static str,
    label: &'static str,
    fail: &'a mut dyn FnMut() -> Result<()>,
    settled: &'static str,
    is_settled: &'a mut dyn FnMut() -> bool,
}

/// Starts the stream, waits until it is answered, fails, waits for the
/// takeover (control plane, then traffic from another server), keeps the
/// load up for `s.after`, and analyses what the client saw.
fn measure(
    lab: &Lab,
    s: &Settings,
    target: SocketAddrV4,
    who: Classifier,
    f: Failure,
) -> Result<FailoverEvent> {
    let load = Load::start(&lab.ns("client"), target, s.pps, who)?;
    // A tenth of a second of answers: the path is up and warm.
    let warm = (s.pps / 10).max(5);
    lab.wait_until(
        &format!("{warm} answers from {target} before: {}", f.label),
        START_DEADLINE,
        || load.answers().count >= warm,
    )?;
    let trigger = load.sent();
    let before = load
        .answers()
        .last_server()
        .ok_or_else(|| anyhow!("no answer before the failure"))?;
    (f.fail)()?;
    lab.wait_until(f.settled, MOVE_DEADLINE, || (f.is_settled)())?;
    let mut moved_at = None;
    lab.wait_until(
        &format!(
            "{target} answered by another server than {before} after: {}",
            f.label
        ),
        MOVE_DEADLINE,
        || {
            let a = load.answers();
            moved_at = a.first_from_other(trigger, &before);
            moved_at.is_some()
        },
    )?;
    let moved_at = moved_at.unwrap_or(trigger);
    let more = (s.after.as_secs_f64() * s.pps as f64) as u64;
    lab.wait_until(
        &format!("{more} more answers after: {}", f.label),
        MOVE_DEADLINE + s.after,
        || load.answers().count_since(moved_at) >= more,
    )?;
    let trace = load.finish()?;
    let seen = trace.analyse(usize::try_from(trigger).unwrap_or(usize::MAX));
    Ok(FailoverEvent {
        event: f.event.into(),
        label: f.label.into(),
        rate_pps: seen.rate_pps,
        sent: seen.sent,
        lost: seen.lost,
        outage_ms: seen.outage_ns as f64 / 1e6,
        before: seen.before.unwrap_or_default(),
        after: seen.after.unwrap_or_default(),
        answered_after: seen.answered_after,
    })
}

// ---- echo servers ----

/// UDP echo servers on backends: each answers a datagram with its first
/// [`SEQ_LEN`] bytes, the source address it came from and the backend's
/// name. Dropping this stops them.
struct Echo {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Echo {
    fn start(lab: &Lab, roles: &[&str]) -> Result<Echo> {
        let mut echo = Echo {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        };
        for role in roles {
            let sock = topo::in_ns(&lab.ns(role), || {
                let s = UdpSocket::bind(("0.0.0.0", ECHO_PORT))?;
                // Bounds how long a stop request waits.
                s.set_read_timeout(Some(Duration::from_millis(50)))?;
                Ok(s)
            })
            .with_context(|| format!("UDP echo server on {role} port {ECHO_PORT}"))?;
            let stop = echo.stop.clone();
            let name = role.as_bytes().to_vec();
            echo.threads.push(
                std::thread::Builder::new()
                    .name(format!("echo-{role}"))
                    .spawn(move || serve_echo(&sock, &name, &stop))
                    .context("starting an echo thread")?,
            );
        }
        Ok(echo)
    }
}

fn serve_echo(sock: &UdpSocket, name: &[u8], stop: &AtomicBool) {
    let mut buf = [0u8; 2048];
    let mut reply = Vec::with_capacity(SEQ_LEN + 4 + name.len());
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        // Anything shorter carries no sequence number: not the client's.
        let seq = buf.get(..n).and_then(|b| b.get(..SEQ_LEN));
        let (Some(seq), SocketAddr::V4(from)) = (seq, from) else {
            continue;
        };
        reply.clear();
        reply.extend_from_slice(seq);
        reply.extend_from_slice(&from.ip().octets());
        reply.extend_from_slice(name);
        let _ = sock.send_to(&reply, from);
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

// ---- the client's stream ----

/// Names the server of a reply from the source address the backend saw and
/// the backend's name.
type Classifier = Box<dyn Fn(Ipv4Addr, &str) -> String + Send>;

/// Replies by sequence number.
#[derive(Debug, Default)]
struct Answers {
    /// Per sequence number: 0 unanswered, else 1 + index into `servers`.
    by_seq: Vec<u8>,
    servers: Vec<String>,
    count: u64,
    /// Highest answered sequence number.
    last: Option<u64>,
}

impl Answers {
    fn server_of(&self, seq: u64) -> Option<&String> {
        let id = *self.by_seq.get(usize::try_from(seq).ok()?)?;
        self.servers.get(usize::from(id).checked_sub(1)?)
    }

    fn last_server(&self) -> Option<String> {
        self.server_of(self.last?).cloned()
    }

    /// First answered sequence number from `from` on whose server is not
    /// `not`.
    fn first_from_other(&self, from: u64, not: &str) -> Option<u64> {
        let start = usize::try_from(from).ok()?;
        let later = self.by_seq.get(start..)?;
        let at = later.iter().position(|&id| {
            usize::from(id)
                .checked_sub(1)
                .and_then(|i| self.servers.get(i))
                .is_some_and(|s| s != not)
        })?;
        Some(from + at as u64)
    }

    fn count_since(&self, from: u64) -> u64 {
        let start = usize::try_from(from).unwrap_or(usize::MAX);
        self.by_seq
            .get(start..)
            .map_or(0, |v| v.iter().filter(|&&id| id != 0).count() as u64)
    }

    fn record(&mut self, seq: u64, server: String) {
        let Ok(i) = usize::try_from(seq) else {
            return;
        };
        if self.by_seq.len() <= i {
            self.by_seq.resize(i + 1, 0);
        }
        if self.by_seq[i] != 0 {
            return;
        }
        let id = match self.servers.iter().position(|s| *s == server) {
            Some(p) => p + 1,
            None => {
                self.servers.push(server);
                self.servers.len()
            }
        };
        // More distinct servers than fit would be a broken lab; they are
        // not recorded rather than misattributed.
        let Ok(id) = u8::try_from(id) else {
            return;
        };
        self.by_seq[i] = id;
        self.count += 1;
        self.last = Some(self.last.map_or(seq, |l| l.max(seq)));
    }
}

/// A paced stream from the client: a sender thread and a receiver thread on
/// one connected UDP socket created in the client namespace.
struct Load {
    stop_send: Arc<AtomicBool>,
    stop_recv: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    answers: Arc<Mutex<Answers>>,
    sender: Option<JoinHandle<Vec<u64>>>,
    receiver: Option<JoinHandle<()>>,
    interval_ns: u64,
}

impl Load {
    fn start(ns: &str, target: SocketAddrV4, pps: u64, who: Classifier) -> Result<Load> {
        let sock = topo::in_ns(ns, move || {
            let s = UdpSocket::bind(("0.0.0.0", 0))?;
            s.connect(target)?;
            s.set_read_timeout(Some(Duration::from_millis(20)))?;
            Ok(s)
        })
        .with_context(|| format!("client socket to {target}"))?;
        let rx = sock.try_clone().context("cloning the client socket")?;
        let interval_ns = (1_000_000_000 / pps.max(1)).max(1);
        let mut load = Load {
            stop_send: Arc::new(AtomicBool::new(false)),
            stop_recv: Arc::new(AtomicBool::new(false)),
            sent: Arc::new(AtomicU64::new(0)),
            answers: Arc::new(Mutex::new(Answers::default())),
            sender: None,
            receiver: None,
            interval_ns,
        };
        let (stop, sent) = (load.stop_send.clone(), load.sent.clone());
        load.sender = Some(
            std::thread::Builder::new()
                .name("failover-send".into())
                .spawn(move || send_paced(&sock, interval_ns, &stop, &sent))
                .context("starting the sender")?,
        );
        let (stop, sent, answers) = (
            load.stop_recv.clone(),
            load.sent.clone(),
            load.answers.clone(),
        );
        load.receiver = Some(
            std::thread::Builder::new()
                .name("failover-recv".into())
                .spawn(move || receive(&rx, &who, &stop, &sent, &answers))
                .context("starting the receiver")?,
        );
        Ok(load)
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Acquire)
    }

    fn answers(&self) -> MutexGuard<'_, Answers> {
        self.answers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops sending, waits [`REPLY_GRACE`] for the last replies, and
    /// returns what was sent and answered.
    fn finish(mut self) -> Result<Trace> {
        self.stop_send.store(true, Ordering::Relaxed);
        let sent_at = self
            .sender
            .take()
            .ok_or_else(|| anyhow!("the sender is gone"))?
            .join()
            .map_err(|_| anyhow!("the sender thread panicked"))?;
        std::thread::sleep(REPLY_GRACE);
        self.stop_recv.store(true, Ordering::Relaxed);
        if let Some(r) = self.receiver.take() {
            r.join()
                .map_err(|_| anyhow!("the receiver thread panicked"))?;
        }
        let answers = std::mem::take(&mut *self.answers());
        Ok(Trace {
            sent_at,
            answers,
            interval_ns: self.interval_ns,
        })
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop_send.store(true, Ordering::Relaxed);
        self.stop_recv.store(true, Ordering::Relaxed);
        if let Some(t) = self.sender.take() {
            let _ = t.join();
        }
        if let Some(r) = self.receiver.take() {
            let _ = r.join();
        }
    }
}

/// Sends sequence numbers 0, 1, … every `interval_ns` (monotonic clock)
/// until `stop`; returns each packet's send time in ns from the start.
fn send_paced(sock: &UdpSocket, interval_ns: u64, stop: &AtomicBool, sent: &AtomicU64) -> Vec<u64> {
    let interval = Duration::from_nanos(interval_ns);
    // A stall of this thread longer than this is skipped, not replayed as a
    // burst the path would drop.
    let max_lag = Duration::from_millis(20);
    let start = Instant::now();
    let mut next = start;
    let mut times = Vec::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(1)));
            continue;
        }
        if now - next > max_lag {
            next = now;
        }
        while next <= now {
            // Counted before sending, so the receiver never sees an answer
            // to a number not yet counted as sent.
            sent.store(seq + 1, Ordering::Release);
            times.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
            // A failed send (e.g. an ICMP error queued on the socket) is a
            // lost packet like any other.
            let _ = sock.send(&seq.to_be_bytes());
            seq += 1;
            next += interval;
        }
    }
    times
}

fn receive(
    sock: &UdpSocket,
    who: &Classifier,
    stop: &AtomicBool,
    sent: &AtomicU64,
    answers: &Mutex<Answers>,
) {
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        let Ok(n) = sock.recv(&mut buf) else {
            continue;
        };
        let Some(reply) = Reply::parse(buf.get(..n).unwrap_or_default()) else {
            continue;
        };
        // Only numbers this client sent: anything else is not an answer.
        if reply.seq >= sent.load(Ordering::Acquire) {
            continue;
        }
        let server = who(reply.src, &reply.name);
        answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .record(reply.seq, server);
    }
}

/// An echo server's reply.
#[derive(Debug, PartialEq)]
struct Reply {
    seq: u64,
    src: Ipv4Addr,
    name: String,
}

impl Reply {
    fn parse(b: &[u8]) -> Option<Reply> {
        let seq = u64::from_be_bytes(b.get(..SEQ_LEN)?.try_into().ok()?);
        let src: [u8; 4] = b.get(SEQ_LEN..SEQ_LEN + 4)?.try_into().ok()?;
        let name = String::from_utf8_lossy(b.get(SEQ_LEN + 4..)?).into_owned();
        Some(Reply {
            seq,
            src: Ipv4Addr::from(src),
            name,
        })
    }
}

/// What one stream sent and got back.
struct Trace {
    /// Send time of each sequence number, ns from the stream's start.
    sent_at: Vec<u64>,
    answers: Answers,
    interval_ns: u64,
}

/// The figures of one event.
#[derive(Debug, PartialEq)]
struct Seen {
    sent: u64,
    lost: u64,
    rate_pps: f64,
    outage_ns: u64,
    before: Option<String>,
    after: Option<String>,
    answered_after: u64,
}

impl Trace {
    fn answered(&self, seq: usize) -> bool {
        self.answers.by_seq.get(seq).is_some_and(|&id| id != 0)
    }

    /// Figures from the first answered packet on (what was lost while the
    /// path first came up is not the failover's); `trigger` is the first
    /// sequence number sent after the failure began.
    fn analyse(&self, trigger: usize) -> Seen {
        let n = self.sent_at.len();
        let from = (0..n).find(|&i| self.answered(i)).unwrap_or(n);
        let at = |i: usize| self.sent_at.get(i).copied().unwrap_or(0);
        let lost = (from..n).filter(|&i| !self.answered(i)).count() as u64;
        // Longest outage: from the last answered packet before a run of
        // unanswered ones to the first answered one after it; a run never
        // answered lasts until the stream's end.
        let mut outage = 0;
        let mut last_ok = None;
        let mut gap = false;
        for i in from..n {
            if self.answered(i) {
                if let (true, Some(l)) = (gap, last_ok) {
                    outage = outage.max(at(i).saturating_sub(at(l)));
                }
                last_ok = Some(i);
                gap = false;
            } else {
                gap = true;
            }
        }
        if let (true, Some(l)) = (gap, last_ok) {
            let end = at(n.saturating_sub(1)) + self.interval_ns;
            outage = outage.max(end.saturating_sub(at(l)));
        }
        let server = |i: usize| self.answers.server_of(i as u64).cloned();
        let before = (from..trigger.min(n))
            .rev()
            .find(|&i| self.answered(i))
            .and_then(server);
        let last = (trigger.min(n)..n).rev().find(|&i| self.answered(i));
        let after = last.and_then(server);
        let answered_after = (trigger.min(n)..n)
            .filter(|&i| after.is_some() && server(i) == after)
            .count() as u64;
        let span = at(n.saturating_sub(1)).saturating_sub(at(from)) + self.interval_ns;
        Seen {
            sent: (n - from) as u64,
            lost,
            rate_pps: per_second((n - from) as u64, Duration::from_nanos(span)),
            outage_ns: outage,
            before,
            after,
            answered_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(pattern: &str, trigger_servers: (&str, &str), at: usize) -> Trace {
        let mut answers = Answers::default();
        for (i, c) in pattern.chars().enumerate() {
            if c == 'x' {
                let s = if i < at {
                    trigger_servers.0
                } else {
                    trigger_servers.1
                };
                answers.record(i as u64, s.to_string());
            }
        }
        Trace {
            sent_at: (0..pattern.len() as u64).map(|i| i * 1_000_000).collect(),
            answers,
            interval_ns: 1_000_000,
        }
    }

    #[test]
    fn the_longest_run_of_losses_is_bounded_by_answers() {
        // 1 ms apart; two gaps: 2 lost (3 ms), 4 lost (5 ms).
        let t = trace("..xx..xxx....xxx", ("lb1", "lb2"), 9);
        let seen = t.analyse(9);
        assert_eq!(seen.sent, 14, "counted from the first answer on");
        assert_eq!(seen.lost, 6);
        assert_eq!(seen.outage_ns, 5_000_000);
        assert_eq!(seen.before.as_deref(), Some("lb1"));
        assert_eq!(seen.after.as_deref(), Some("lb2"));
        assert_eq!(seen.answered_after, 3);
        assert!((seen.rate_pps - 1000.0).abs() < 1e-6);
    }

    #[test]
    fn a_stream_never_answered_again_is_one_outage_to_its_end() {
        let t = trace("xx....", ("a", "b"), 2);
        let seen = t.analyse(2);
        assert_eq!(seen.lost, 4);
        assert_eq!(seen.outage_ns, 5_000_000);
        assert_eq!(seen.after, None);
        assert_eq!(seen.answered_after, 0);
    }

    #[test]
    fn replies_parse_and_short_ones_are_refused() {
        let mut b = 7u64.to_be_bytes().to_vec();
        b.extend_from_slice(&[10, 77, 1, 201]);
        b.extend_from_slice(b"be2");
        assert_eq!(
            Reply::parse(&b),
            Some(Reply {
                seq: 7,
                src: Ipv4Addr::new(10, 77, 1, 201),
                name: "be2".into()
            })
        );
        assert_eq!(Reply::parse(&b[..10]), None);
        assert_eq!(Reply::parse(&[]), None);
    }

    #[test]
    fn answers_find_the_first_reply_from_another_server() {
        let mut a = Answers::default();
        a.record(0, "lb1".into());
        a.record(1, "lb1".into());
        a.record(5, "lb2".into());
        a.record(5, "lb1".into());
        assert_eq!(a.count, 3, "a duplicate answer counts once");
        assert_eq!(a.first_from_other(1, "lb1"), Some(5));
        assert_eq!(a.first_from_other(6, "lb1"), None);
        assert_eq!(a.count_since(2), 1);
        assert_eq!(a.last_server().as_deref(), Some("lb2"));
    }
}
