//! Scenario 7: failover under load. A client sends a paced UDP stream with
//! sequence numbers to a VIP; UDP echo servers on the backends answer each
//! packet with its sequence number, the source address they saw and their
//! name. The client tells from that who served each packet, and per failure
//! event counts what was lost and the longest outage.
//!
//! Two labs, one after the other, each with its own namespaces (not the
//! gen/DUT/sink line of the throughput scenarios):
//!
//! - VRRP: `viplab::Lab` with two vipd nodes (VRRPv3, 100 ms adverts,
//!   priorities 200/100) in full NAT, each with its own SNAT address, so the
//!   backend sees which node forwarded. Events: SIGKILL of the master, then
//!   (once it is back and master again) SIGTERM of the master.
//! - BGP: `viplab::TwoSiteLab`, a vipd node per site behind a BIRD router; site
//!   A announces the VIP's /25, site B the /24. Event: SIGKILL of site A's
//!   vipd, so BIRD falls back to site B's shorter prefix.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ctlproto::{reply, Command};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use viplab::sites::{SiteService, SITE_VIP};
use viplab::{Lab, LabProcess, LabSpec, Site, TwoSiteLab};

use crate::rate::per_second;
use crate::report::{FailoverEvent, Measured};
use echo::Echo;
use stream::{Classifier, Load};

mod echo;
mod stream;

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
        ctlproto::call::<reply::Vrrp>(&self.socket, &Command::Vrrp {}, Duration::from_secs(2))
            .ok()
            .and_then(|v| v.instances.into_iter().next())
            .map(|i| i.state)
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
    let vip = viplab::vip(1);
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
                && ctlproto::call::<reply::Status>(
                    &socket,
                    &Command::Status {},
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
        name: viplab::unique_name("fovrrp"),
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
    let target = SocketAddrV4::new(viplab::vip(1), ECHO_PORT);
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
        &viplab::unique_name("fobgp"),
        viplab::LabSpec::default().backend_port,
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
