//! The connection-sync tests' harness: two vipd nodes with `[sync]` towards
//! each other, line echo servers on the backends, and a client keeping
//! hundreds of connections busy through a VIP while the nodes fail over.

mod scripts;

pub use scripts::{CAPTURE_UDP, HOSTILE_SYNC, SEND_SPOOFED};

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use viplab::{Gateway, Lab, LabProcess, LabSpec, Side};

use super::{node_config, vipctl_json, ServiceConf, Vipd};

/// UDP port of vipd's connection sync (its default).
pub const SYNC_PORT: u16 = 8848;
/// Port of the backends' echo servers and of the services in front of them.
pub const ECHO_PORT: u16 = 7100;
/// Connections the echo client keeps open.
pub const CONNS: usize = 200;
/// The NAT backends' gateway: a floating address on the backend segment
/// that the VRRP master holds.
pub const FLOATING_GW: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);
/// The full-NAT source address both nodes share (it follows the VIP's
/// VRRP instance), so a connection keeps its source across a failover.
pub const SHARED_SNAT: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 200);
/// How long a starting node waits for its peer's dump before it may take
/// mastership anyway.
pub const DUMP_DEADLINE_MS: u64 = 5000;

/// How a service forwards to its backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Nat,
    FullNat,
    Dr,
}

impl Mode {
    pub fn forward(self) -> &'static str {
        match self {
            Mode::Nat => "nat",
            Mode::FullNat => "fullnat",
            Mode::Dr => "dr",
        }
    }
}

/// A two-node lab with two backends for `mode` on `vips`: NAT backends
/// route via [`FLOATING_GW`], direct-routing backends hold the VIPs on
/// their loopback; `queues` queues on every LB node interface.
pub fn sync_lab(tag: &str, mode: Mode, queues: u16, vips: &[Ipv4Addr]) -> Lab {
    sync_lab_of(tag, 2, mode, queues, vips)
}

/// [`sync_lab`] with `nodes` LB nodes.
pub fn sync_lab_of(tag: &str, nodes: usize, mode: Mode, queues: u16, vips: &[Ipv4Addr]) -> Lab {
    Lab::up(sync_lab_spec(tag, nodes, mode, queues, vips)).expect("lab up")
}

/// [`sync_lab`] with IPv6 beside IPv4 on every lab interface: every
/// address, the floating gateway and the VIPs on DR backends have their
/// IPv6 twins ([`viplab::ipv6_twin`]).
pub fn sync_lab_dual_stack(tag: &str, mode: Mode, queues: u16, vips: &[Ipv4Addr]) -> Lab {
    Lab::up(LabSpec {
        ipv6: true,
        ..sync_lab_spec(tag, 2, mode, queues, vips)
    })
    .expect("lab up")
}

fn sync_lab_spec(tag: &str, nodes: usize, mode: Mode, queues: u16, vips: &[Ipv4Addr]) -> LabSpec {
    LabSpec {
        name: viplab::unique_name(tag),
        lb_nodes: nodes,
        backends: 2,
        queues,
        backend_gateway: match mode {
            Mode::Nat => Gateway::Floating(FLOATING_GW),
            Mode::FullNat | Mode::Dr => Gateway::Router,
        },
        dr_vips: if mode == Mode::Dr {
            vips.to_vec()
        } else {
            Vec::new()
        },
        ..LabSpec::default()
    }
}

/// Writes a fresh random sync key (32 bytes, hex) into the lab directory:
/// every test's nodes share a key no other test's know.
pub fn write_key(lab: &Lab) -> PathBuf {
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .expect("reading /dev/urandom");
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let path = lab.dir().join("sync.key");
    std::fs::write(&path, hex + "\n").expect("writing the sync key");
    path
}

/// The service on `vip`: the echo port, both backends, TCP checks.
pub fn echo_service(
    vip: impl Into<IpAddr>,
    mode: Mode,
    scheduler: &str,
    snat: impl Into<IpAddr>,
) -> ServiceConf<'_> {
    let snat = snat.into();
    ServiceConf {
        vip: vip.into(),
        port: ECHO_PORT,
        scheduler,
        forward: mode.forward(),
        weights: vec![1, 1],
        check: r#"{ kind = "tcp", interval_ms = 200, timeout_ms = 500, rise = 1, fall = 2 }"#
            .into(),
        extra: if mode == Mode::FullNat {
            format!("snat = [\"{snat}\"]")
        } else {
            String::new()
        },
    }
}

/// One VRRP instance on `eth0` as both nodes configure it; `priority[k-1]`
/// is node k's.
pub struct Instance {
    pub name: &'static str,
    pub vrid: u8,
    /// VIPs and floating addresses, of one family.
    pub vips: Vec<IpAddr>,
    pub priority: Vec<u8>,
}

/// `[sync]` of node `k` of `nodes`: on `eth1`, unicast to the others.
pub fn sync_section(lab: &Lab, k: usize, nodes: usize, key: &Path) -> String {
    let peers: Vec<String> = (1..=nodes)
        .filter(|&j| j != k)
        .map(|j| format!("\"{}\"", lab.lb_ip(j, Side::Backend)))
        .collect();
    format!(
        "[sync]\ninterface = \"eth1\"\npeers = [{}]\nkey_file = \"{}\"\nnode_id = {k}\ndump_deadline_ms = {DUMP_DEADLINE_MS}\n",
        peers.join(", "),
        key.display()
    )
}

/// Node `k`'s whole config: the services, the VRRP instances (v3, 100 ms
/// adverts, preempting) and `[sync]`.
pub fn node_conf(
    lab: &Lab,
    k: usize,
    queues: u16,
    services: &[ServiceConf],
    instances: &[Instance],
    key: &Path,
) -> String {
    let mut out = node_config(lab, &format!("lb{k}"), queues, "", services);
    for i in instances {
        let vips: Vec<String> = i.vips.iter().map(|v| format!("\"{v}\"")).collect();
        out += &format!(
            "[[vrrp]]\nname = \"{}\"\ninterface = \"eth0\"\nvrid = {}\nvips = [{}]\nversion = 3\nadvert_interval_ms = 100\npriority = {}\npreempt = true\n\n",
            i.name,
            i.vrid,
            vips.join(", "),
            i.priority[k - 1]
        );
    }
    let nodes = instances.first().map_or(2, |i| i.priority.len());
    out + &sync_section(lab, k, nodes, key)
}

/// Starts node `k` and waits until it sees `backends` healthy backends.
pub fn start_node(lab: &Lab, k: usize, config: &str, backends: usize) -> Vipd {
    let vipd = Vipd::start(lab, &format!("lb{k}"), config)
        .unwrap_or_else(|e| panic!("lb{k} starts: {e:#}"));
    lab.wait_until(
        &format!("lb{k} sees its backends healthy"),
        Duration::from_secs(20),
        || vipd.healthy_backends() == backends,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
    vipd
}

/// Runs the echo server on [`ECHO_PORT`] in every backend (for the lab's
/// lifetime, over IPv6 too in a dual-stack lab) and waits until each
/// listens.
pub fn start_echo_servers(lab: &Lab, backends: usize) {
    let address = if lab.spec().ipv6 { "::" } else { "0.0.0.0" };
    for i in 1..=backends {
        let p = lab
            .spawn(
                &format!("be{i}"),
                &[
                    "/usr/bin/python3",
                    "-c",
                    scripts::ECHO_SERVER,
                    &ECHO_PORT.to_string(),
                    address,
                ],
            )
            .expect("echo server");
        lab.wait_until(
            &format!("be{i}'s echo server listens"),
            Duration::from_secs(10),
            || p.log().contains("ready"),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", p.log()));
        p.detach();
    }
}

/// What one window of the echo client saw.
#[derive(Clone, Debug, Default)]
pub struct Window {
    /// Connections that had at least one echo in the window.
    pub ok_conns: u64,
    pub ok: u64,
    pub wrong: u64,
    pub resets: u64,
    /// The longest wait for an echo that arrived in the window.
    pub max_wait_ms: u64,
}

/// The echo client's report.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub n: u64,
    pub opened: u64,
    pub alive: u64,
    pub ok: u64,
    pub wrong: u64,
    pub resets: u64,
    /// Connection ends by kind (`eof`, `ConnectionResetError`, errno names).
    pub errors: String,
    pub max_wait_ms: u64,
    /// The longest wait still going on: a connection whose echo is late.
    pub pending_max_ms: u64,
    /// Connections waiting over a second for their echo.
    pub stalled: u64,
    pub windows: HashMap<String, Window>,
}

impl Report {
    fn parse(text: &str) -> Result<Report, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("{e}: {text:?}"))?;
        let n = |v: &Value, k: &str| v[k].as_u64().ok_or_else(|| format!("no {k} in {text:?}"));
        let mut windows = HashMap::new();
        for (name, w) in v["windows"].as_object().into_iter().flatten() {
            windows.insert(
                name.clone(),
                Window {
                    ok_conns: n(w, "ok_conns")?,
                    ok: n(w, "ok")?,
                    wrong: n(w, "wrong")?,
                    resets: n(w, "resets")?,
                    max_wait_ms: n(w, "max_wait_ms")?,
                },
            );
        }
        Ok(Report {
            n: n(&v, "n")?,
            opened: n(&v, "opened")?,
            alive: n(&v, "alive")?,
            ok: n(&v, "ok")?,
            wrong: n(&v, "wrong")?,
            resets: n(&v, "resets")?,
            errors: v["errors"].to_string(),
            max_wait_ms: n(&v, "max_wait_ms")?,
            pending_max_ms: n(&v, "pending_max_ms")?,
            stalled: n(&v, "stalled")?,
            windows,
        })
    }

    pub fn window(&self, name: &str) -> Window {
        self.windows.get(name).cloned().unwrap_or_default()
    }
}

/// The echo client in the `client` namespace: `n` connections to
/// `vip`:[`ECHO_PORT`], driven through request files in its directory.
pub struct EchoClient {
    pub vip: IpAddr,
    process: LabProcess,
    dir: PathBuf,
    next: u64,
}

impl EchoClient {
    /// Starts the client and waits until all `n` connections are open and
    /// have had their first echo.
    pub fn start(lab: &Lab, vip: impl Into<IpAddr>, n: usize) -> EchoClient {
        let vip = vip.into();
        let dir = lab.dir().join(format!("echo-{vip}"));
        std::fs::create_dir_all(&dir).expect("echo client directory");
        let process = lab
            .spawn(
                "client",
                &[
                    "/usr/bin/python3",
                    "-c",
                    scripts::ECHO_CLIENT,
                    &vip.to_string(),
                    &ECHO_PORT.to_string(),
                    &n.to_string(),
                    dir.to_str().expect("lab paths are UTF-8"),
                ],
            )
            .expect("echo client");
        let mut client = EchoClient {
            vip,
            process,
            dir,
            next: 0,
        };
        lab.wait_until(
            &format!("{n} connections to {vip} open and echoing"),
            Duration::from_secs(60),
            || {
                let said = client.process.log();
                said.contains("ready") || said.contains("opened ") || !client.process.is_running()
            },
        )
        .unwrap_or_else(|e| panic!("{e}: {}", client.process.log()));
        let said = client.process.log();
        assert!(
            said.lines().any(|l| l == "ready"),
            "echo client to {vip} did not open its {n} connections: {said}"
        );
        client
    }

    fn request(&mut self, lab: &Lab, what: &str) -> Report {
        self.next += 1;
        let id = self.next;
        let tmp = self.dir.join(".req");
        std::fs::write(&tmp, format!("{id} {what}\n")).expect("writing a request");
        std::fs::rename(&tmp, self.dir.join("req")).expect("posting a request");
        let rep = self.dir.join(format!("rep-{id}.json"));
        lab.wait_until(
            &format!("echo client to {} answers {what:?}", self.vip),
            Duration::from_secs(10),
            || rep.exists() || !self.process.is_running(),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", self.process.log()));
        let text = std::fs::read_to_string(&rep)
            .unwrap_or_else(|e| panic!("echo client exited ({e}): {}", self.process.log()));
        let _ = std::fs::remove_file(&rep);
        Report::parse(&text).unwrap_or_else(|e| panic!("echo client report: {e}"))
    }

    pub fn report(&mut self, lab: &Lab) -> Report {
        self.request(lab, "report")
    }

    /// Starts window `name` (letters, digits, `-`).
    pub fn mark(&mut self, lab: &Lab, name: &str) -> Report {
        self.request(lab, &format!("mark {name}"))
    }

    /// Waits until every connection had an echo in window `name`, or one
    /// died (then returns at once: waiting longer changes nothing);
    /// returns the last report.
    pub fn wait_all_echoed(&mut self, lab: &Lab, name: &str, within: Duration) -> Report {
        let mut last = Report::default();
        let _ = lab.wait_until(
            &format!("every connection to {} echoes in {name}", self.vip),
            within,
            || {
                last = self.report(lab);
                last.window(name).ok_conns >= last.n || last.alive < last.opened
            },
        );
        last
    }

    /// Stops the client and returns its final report.
    pub fn finish(mut self, lab: &Lab) -> Report {
        std::fs::write(self.dir.join("stop"), b"").expect("writing the stop file");
        let fin = self.dir.join("final.json");
        lab.wait_until("echo client exits", Duration::from_secs(10), || {
            !self.process.is_running()
        })
        .unwrap_or_else(|e| panic!("{e}: {}", self.process.log()));
        let text = std::fs::read_to_string(&fin)
            .unwrap_or_else(|e| panic!("echo client's final report ({e}): {}", self.process.log()));
        Report::parse(&text).unwrap_or_else(|e| panic!("echo client report: {e}"))
    }
}

/// Messages a node's sync refused so far, over every reason but its own
/// looped-back multicast: `bad_header`, `bad_mac`, `bad_record`,
/// `replayed`, `stranger` and `truncated` of `vipctl --json sync`'s
/// `counters.rejected`. Also returns the `replayed` count alone.
pub fn sync_rejected(vipd: &Vipd) -> Result<(u64, u64), String> {
    let v: Value = vipctl_json(&vipd.socket, &["sync"])?;
    let rejected = &v["counters"]["rejected"];
    let Some(reasons) = rejected.as_object() else {
        return Err(format!("no counters.rejected in `vipctl --json sync`: {v}"));
    };
    let total = reasons
        .iter()
        .filter(|(k, _)| k.as_str() != "own")
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    Ok((total, rejected["replayed"].as_u64().unwrap_or(0)))
}
