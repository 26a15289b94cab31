//! Network-namespace lab for vipd's end-to-end tests, the demo and vipbench.
//!
//! A lab is a set of namespaces named `vl-<lab>-<role>`:
//!
//! ```text
//!  client ──┐                ┌── be1 … beN   (10.77.1.101…)
//! 10.77.0.2 │   sw (router)  │   sorry       (10.77.1.250, optional)
//!           brc ─────────── brb
//!   10.77.0.254 │        │ 10.77.1.254
//!           eth0│        │eth1
//!              lb1 … lbK   (10.77.0.1K / 10.77.1.1K)
//! ```
//!
//! Addresses are identical in every lab (the namespaces isolate them), so many
//! labs run side by side. Nothing is created in the root namespace: veth pairs
//! are created directly inside their namespaces. IPv6 is disabled in every lab
//! namespace so no router solicitations or DAD frames reach the load balancer.
//!
//! Dropping a [`Lab`] kills every process inside it and deletes its
//! namespaces (also while a test unwinds from a panic; the process logs in
//! [`Lab::dir`] are then kept). [`down_all`] removes labs left behind by a
//! killed run. Indices are 1-based, as in the role names (`lb1`, `be1`).
//!
//! ```no_run
//! use lab::{Gateway, Lab, LabSpec};
//! use std::time::Duration;
//!
//! let lab = Lab::up(LabSpec {
//!     name: lab::unique_name("nat_wrr"),
//!     backends: 3,
//!     backend_gateway: Gateway::Lb(1),
//!     ..LabSpec::default()
//! })?;
//! let _vipd = lab.spawn("lb1", &["vipd", "--config", "/path/to/vipd.toml"])?;
//! let vip = std::net::SocketAddrV4::new(lab::vip(1), 8080);
//! lab.wait_until("the VIP to answer", Duration::from_secs(5), || {
//!     lab.http_get("client", vip, Duration::from_millis(500)).is_ok()
//! })?;
//! let report = lab.http_burst("client", vip, 1000, 16)?;
//! assert_eq!(report.ok, 1000);
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod demo;
mod process;
mod scripts;
pub mod sites;

pub use process::LabProcess;
pub use sites::{ProbeSample, Prober, Site, TwoSiteLab};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every lab namespace starts with this; `down_all` only touches these.
pub const NS_PREFIX: &str = "vl-";

const MAX_NAME_LEN: usize = 16;
const MAX_LB_NODES: usize = 8;
const MAX_BACKENDS: usize = 8;
const MAX_QUEUES: u16 = 64;
/// How long a freshly started HTTP server may take to bind its ports.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Which segment of the lab an address is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// 10.77.0.0/24, bridge `brc`: the client and the LB nodes' `eth0`.
    Client,
    /// 10.77.1.0/24, bridge `brb`: the backends, the sorry server and the LB
    /// nodes' `eth1`.
    Backend,
}

/// Where backends send traffic that is not for their own segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gateway {
    /// Via LB node K's `eth1` (1-based). NAT mode: replies must come back
    /// through the load balancer. That node also routes (`ip_forward=1`) the
    /// backends' own traffic, and the client reaches the backend segment
    /// through it.
    Lb(usize),
    /// Via the router `sw` (10.77.1.254). Direct routing and full NAT.
    Router,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabSpec {
    /// Short lab name: lowercase ASCII letters and digits, at most 16
    /// characters. [`unique_name`] makes suitable ones.
    pub name: String,
    /// Load-balancer nodes `lb1..`: 1..=8.
    pub lb_nodes: usize,
    /// Backends `be1..`: 1..=8.
    pub backends: usize,
    /// Queues on each LB node interface (and its switch-side peer).
    pub queues: u16,
    /// Port every backend's (and the sorry server's) HTTP server listens on.
    pub backend_port: u16,
    /// More ports served by the same backend processes (e.g. 80 for direct
    /// routing, where the VIP's port reaches the backend unchanged).
    pub extra_backend_ports: Vec<u16>,
    /// VIPs configured on every backend's loopback, with arp_ignore=1 and
    /// arp_announce=2, for direct routing.
    pub dr_vips: Vec<Ipv4Addr>,
    pub backend_gateway: Gateway,
    /// Start the sorry server `sorry` (10.77.1.250).
    pub sorry_server: bool,
}

impl Default for LabSpec {
    fn default() -> LabSpec {
        LabSpec {
            name: String::new(),
            lb_nodes: 1,
            backends: 2,
            queues: 1,
            backend_port: 8080,
            extra_backend_ports: Vec::new(),
            dr_vips: Vec::new(),
            backend_gateway: Gateway::Router,
            sorry_server: false,
        }
    }
}

impl LabSpec {
    fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        if !(1..=MAX_LB_NODES).contains(&self.lb_nodes) {
            bail!(
                "lab {}: lb_nodes = {} is out of range; use 1..={MAX_LB_NODES}",
                self.name,
                self.lb_nodes
            );
        }
        if !(1..=MAX_BACKENDS).contains(&self.backends) {
            bail!(
                "lab {}: backends = {} is out of range; use 1..={MAX_BACKENDS}",
                self.name,
                self.backends
            );
        }
        if !(1..=MAX_QUEUES).contains(&self.queues) {
            bail!(
                "lab {}: queues = {} is out of range; use 1..={MAX_QUEUES}",
                self.name,
                self.queues
            );
        }
        if self.backend_port == 0 || self.extra_backend_ports.contains(&0) {
            bail!("lab {}: backend port 0 is not a usable port", self.name);
        }
        if let Gateway::Lb(k) = self.backend_gateway {
            if !(1..=self.lb_nodes).contains(&k) {
                bail!(
                    "lab {}: backend gateway lb{k} does not exist (the lab has {} LB node(s))",
                    self.name,
                    self.lb_nodes
                );
            }
        }
        Ok(())
    }

    fn ports(&self) -> Vec<u16> {
        let mut ports = vec![self.backend_port];
        for p in &self.extra_backend_ports {
            if !ports.contains(p) {
                ports.push(*p);
            }
        }
        ports
    }
}

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        bail!(
            "invalid lab name {name:?}: use 1 to {MAX_NAME_LEN} lowercase ASCII letters or digits \
             (it becomes part of namespace names vl-<lab>-<role>)"
        );
    }
    Ok(())
}

/// Suggested VIP number `n` (1..=50) on the client segment: 10.77.0.(100+n).
/// Clients reach it directly over `brc`, so whichever LB node answers ARP for
/// it receives the traffic.
pub fn vip(n: u8) -> Ipv4Addr {
    assert!((1..=50).contains(&n), "lab::vip({n}): use 1..=50");
    Ipv4Addr::new(10, 77, 0, 100 + n)
}

/// Result of [`Lab::http_burst`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct BurstReport {
    pub ok: usize,
    pub failed: usize,
    /// Successful responses by body, surrounding whitespace stripped
    /// (`"be1"`, `"sorry"`).
    pub by_body: BTreeMap<String, usize>,
    /// Failed requests by kind (`"timeout"`, `"ECONNREFUSED"`, …).
    #[serde(default)]
    pub errors: BTreeMap<String, usize>,
}

/// A running lab. Dropping it tears everything down.
pub struct Lab {
    spec: LabSpec,
    /// Namespaces created so far, in creation order (teardown also works on a
    /// half-built lab).
    namespaces: Vec<String>,
    /// Backend servers, index i-1 for `be<i>`; `None` while stopped.
    backends: Mutex<Vec<Option<LabProcess>>>,
    sorry: Option<LabProcess>,
    dir: PathBuf,
    spawned: AtomicUsize,
    armed: bool,
}

impl Lab {
    /// Build the lab described by `spec` and start its HTTP servers.
    pub fn up(spec: LabSpec) -> Result<Lab> {
        let mut lab = Lab::empty(spec)?;
        // On error `lab` is dropped here, which removes the partial build.
        lab.build()
            .with_context(|| format!("bringing up lab {}", lab.spec.name))?;
        Ok(lab)
    }

    /// A lab with nothing built yet, after the checks every lab needs: a
    /// valid spec, root, and no lab of that name already up. Dropping it
    /// removes whatever was built so far.
    pub(crate) fn empty(spec: LabSpec) -> Result<Lab> {
        spec.validate()?;
        check_root()?;
        let existing = lab_namespaces(&spec.name)?;
        if !existing.is_empty() {
            bail!(
                "lab {} already exists (namespaces {}); remove it with `viplab down {}`",
                spec.name,
                existing.join(", "),
                spec.name
            );
        }
        let dir = lab_dir(&spec.name);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating lab directory {}", dir.display()))?;
        Ok(Lab {
            backends: Mutex::new((0..spec.backends).map(|_| None).collect()),
            spec,
            namespaces: Vec::new(),
            sorry: None,
            dir,
            spawned: AtomicUsize::new(0),
            armed: true,
        })
    }

    fn build(&mut self) -> Result<()> {
        let spec = self.spec.clone();
        let mut roles = vec!["sw".to_string(), "client".to_string()];
        roles.extend((1..=spec.lb_nodes).map(|k| format!("lb{k}")));
        roles.extend((1..=spec.backends).map(|i| format!("be{i}")));
        if spec.sorry_server {
            roles.push("sorry".to_string());
        }
        for role in &roles {
            let ns = self.ns(role);
            run(&["ip", "netns", "add", &ns])?;
            self.namespaces.push(ns.clone());
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
            self.sysctl(
                role,
                &[
                    "net.ipv6.conf.all.disable_ipv6=1",
                    "net.ipv6.conf.default.disable_ipv6=1",
                ],
            )?;
        }

        // Router: rp_filter off so direct-routing replies (source VIP, which
        // is not on its backend segment) are forwarded to the client.
        self.sysctl(
            "sw",
            &[
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
            ],
        )?;
        // With br_netfilter loaded the bridges would pass frames through
        // netfilter, which drops malformed IPv4 before it reaches an LB node;
        // the lab's wire must carry exactly what hosts send.
        if self
            .exec("sw", &["test", "-d", "/proc/sys/net/bridge"])?
            .status
            .success()
        {
            self.sysctl(
                "sw",
                &[
                    "net.bridge.bridge-nf-call-iptables=0",
                    "net.bridge.bridge-nf-call-ip6tables=0",
                    "net.bridge.bridge-nf-call-arptables=0",
                ],
            )?;
        }
        let sw = self.ns("sw");
        for (bridge, side) in [("brc", Side::Client), ("brb", Side::Backend)] {
            self.bridge("sw", bridge)?;
            let addr = format!("{}/24", router_ip(side));
            run(&["ip", "-n", &sw, "addr", "add", &addr, "dev", bridge])?;
        }

        self.host("client", "cl", "brc", client_ip())?;

        for k in 1..=spec.lb_nodes {
            let role = format!("lb{k}");
            let ns = self.ns(&role);
            for (ifname, side) in [("eth0", Side::Client), ("eth1", Side::Backend)] {
                let (port, bridge) = match side {
                    Side::Client => (format!("lb{k}c"), "brc"),
                    Side::Backend => (format!("lb{k}b"), "brb"),
                };
                self.veth(&port, bridge, &role, ifname, spec.queues)?;
                // GRO on the peer lets XDP redirect into this veth.
                self.exec_ok("sw", &["ethtool", "-K", &port, "gro", "on"])?;
                let addr = format!("{}/24", lb_ip(k, side));
                run(&["ip", "-n", &ns, "addr", "add", &addr, "dev", ifname])?;
                run(&["ip", "-n", &ns, "link", "set", ifname, "mtu", "1500", "up"])?;
            }
            self.set_default_route(&role)?;
            if spec.backend_gateway == Gateway::Lb(k) {
                // The backends' gateway routes their own traffic (and the
                // client's to them) in its kernel, like any router; rp_filter
                // off so direct-routing replies (source VIP) pass too.
                self.sysctl(
                    &role,
                    &[
                        "net.ipv4.ip_forward=1",
                        "net.ipv4.conf.all.rp_filter=0",
                        "net.ipv4.conf.default.rp_filter=0",
                        "net.ipv4.conf.eth0.rp_filter=0",
                        "net.ipv4.conf.eth1.rp_filter=0",
                    ],
                )?;
            } else {
                // The kernel must not forward what the XDP program passes up.
                self.sysctl(&role, &["net.ipv4.ip_forward=0"])?;
            }
        }
        if let Gateway::Lb(k) = spec.backend_gateway {
            // The client reaches the backends' own addresses through their
            // gateway, so both directions cross the same node.
            let via = lb_ip(k, Side::Client).to_string();
            let subnet = format!("{}/24", Ipv4Addr::new(10, 77, side_octet(Side::Backend), 0));
            run(&[
                "ip",
                "-n",
                &self.ns("client"),
                "route",
                "replace",
                &subnet,
                "via",
                &via,
            ])?;
        }

        for i in 1..=spec.backends {
            let role = format!("be{i}");
            self.host(&role, &role, "brb", backend_ip(i))?;
            self.sysctl(
                &role,
                &[
                    "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.default.rp_filter=0",
                    "net.ipv4.conf.eth0.rp_filter=0",
                ],
            )?;
            if !spec.dr_vips.is_empty() {
                // Backends own the VIPs for direct routing but must never
                // answer ARP for them, or they would steal the LB's traffic.
                self.sysctl(
                    &role,
                    &[
                        "net.ipv4.conf.all.arp_ignore=1",
                        "net.ipv4.conf.all.arp_announce=2",
                        "net.ipv4.conf.eth0.arp_ignore=1",
                        "net.ipv4.conf.eth0.arp_announce=2",
                    ],
                )?;
                let ns = self.ns(&role);
                for v in &spec.dr_vips {
                    let addr = format!("{v}/32");
                    run(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "lo"])?;
                }
            }
        }
        if spec.sorry_server {
            let sorry = *self.sorry_addr().ip();
            self.host("sorry", "sorry", "brb", sorry)?;
        }

        for i in 1..=spec.backends {
            self.start_backend(i)?;
        }
        if spec.sorry_server {
            self.sorry = Some(self.start_http_server("sorry", "sorry")?);
        }
        Ok(())
    }

    /// A single-homed host `role` with `eth0` on `bridge`, whose switch-side
    /// port is `port`.
    fn host(&self, role: &str, port: &str, bridge: &str, ip: Ipv4Addr) -> Result<()> {
        self.veth(port, bridge, role, "eth0", 1)?;
        let ns = self.ns(role);
        let addr = format!("{ip}/24");
        run(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
        run(&["ip", "-n", &ns, "link", "set", "eth0", "up"])?;
        self.set_default_route(role)
    }

    /// The interface and gateway of `role`'s default route, if it has one.
    fn default_route(&self, role: &str) -> Option<(&'static str, Ipv4Addr)> {
        if role == "client" || role.starts_with("lb") {
            Some(("eth0", router_ip(Side::Client)))
        } else if role.starts_with("be") || role == "sorry" {
            // The sorry server stands in for backends, so it routes like them.
            match self.spec.backend_gateway {
                Gateway::Lb(k) => Some(("eth0", lb_ip(k, Side::Backend))),
                Gateway::Router => Some(("eth0", router_ip(Side::Backend))),
            }
        } else {
            None
        }
    }

    fn set_default_route(&self, role: &str) -> Result<()> {
        let Some((_, gw)) = self.default_route(role) else {
            return Ok(());
        };
        let gw = gw.to_string();
        run(&[
            "ip",
            "-n",
            &self.ns(role),
            "route",
            "replace",
            "default",
            "via",
            &gw,
        ])?;
        Ok(())
    }

    /// veth pair created directly in its namespaces: `port` in `sw` (attached
    /// to `bridge`) and `ifname` in `role`.
    /// A bridge `name` in `role`'s namespace, up. Multicast snooping is off
    /// so VRRP adverts reach every port without an IGMP querier.
    pub(crate) fn bridge(&self, role: &str, name: &str) -> Result<()> {
        let ns = self.ns(role);
        run(&[
            "ip",
            "-n",
            &ns,
            "link",
            "add",
            name,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        run(&["ip", "-n", &ns, "link", "set", name, "up"])?;
        Ok(())
    }

    fn veth(&self, port: &str, bridge: &str, role: &str, ifname: &str, queues: u16) -> Result<()> {
        let sw = self.ns("sw");
        let ns = self.ns(role);
        let q = queues.to_string();
        let mut argv = vec!["ip", "link", "add", port, "netns", &sw];
        let qargs = ["numtxqueues", &q, "numrxqueues", &q];
        if queues > 1 {
            argv.extend(qargs);
        }
        argv.extend(["type", "veth", "peer", "name", ifname, "netns", &ns]);
        if queues > 1 {
            argv.extend(qargs);
        }
        run(&argv)?;
        run(&["ip", "-n", &sw, "link", "set", port, "master", bridge])?;
        run(&["ip", "-n", &sw, "link", "set", port, "up"])?;
        Ok(())
    }

    fn sysctl(&self, role: &str, settings: &[&str]) -> Result<()> {
        let mut argv = vec!["sysctl", "-q", "-w"];
        argv.extend_from_slice(settings);
        self.exec_ok(role, &argv).map(|_| ())
    }

    /// Start the HTTP server of `role`, answering `body_name`, and wait until
    /// it listens.
    fn start_http_server(&self, role: &str, body_name: &str) -> Result<LabProcess> {
        let ports: Vec<String> = self.spec.ports().iter().map(u16::to_string).collect();
        let mut argv = vec![
            scripts::PYTHON,
            "-c",
            scripts::BACKEND_PY,
            &self.spec.name,
            body_name,
        ];
        argv.extend(ports.iter().map(String::as_str));
        let mut proc = self.spawn_with(role, &argv, true)?;
        let Some(stdout) = proc.child_mut().stdout.take() else {
            bail!("{role}: HTTP server started without a stdout pipe");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let got = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(got.map(|_| line));
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(line)) if line.trim() == "ready" => Ok(proc),
            Ok(_) | Err(_) => {
                // Let the log settle if the server is dying.
                let _ = proc.is_running();
                bail!(
                    "HTTP server in {} did not come up on port(s) {} within {:?}; its output:\n{}",
                    self.ns(role),
                    ports.join(","),
                    READY_TIMEOUT,
                    proc.log()
                )
            }
        }
    }

    fn spawn_with(&self, role: &str, argv: &[&str], pipe_stdout: bool) -> Result<LabProcess> {
        let Some(program) = argv.first() else {
            bail!("spawn in {}: empty command", self.ns(role));
        };
        let ns = self.ns(role);
        let seq = self.spawned.fetch_add(1, Ordering::Relaxed);
        let prog_name = Path::new(program)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let log = self.dir.join(format!("{role}-{seq}-{prog_name}.log"));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("creating log file {}", log.display()))?;
        let stdout = if pipe_stdout {
            Stdio::piped()
        } else {
            Stdio::from(file.try_clone()?)
        };
        // setsid (the program) execs in place since a fresh child is not a
        // process-group leader, so the pid is the program's and it leads its
        // own group: one signal kills it and everything it forks, and it
        // survives the exit of `viplab up`.
        let child = Command::new("setsid")
            .args(["ip", "netns", "exec", &ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::from(file))
            .spawn()
            .with_context(|| format!("starting `{}` in {ns}", argv.join(" ")))?;
        let what = format!("{ns}: {}", shown(argv));
        Ok(LabProcess::new(child, what, Some(log)))
    }

    /// Full namespace name for a role: "sw", "client", "lb1", "be2", "sorry".
    pub fn ns(&self, role: &str) -> String {
        format!("{NS_PREFIX}{}-{role}", self.spec.name)
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn spec(&self) -> &LabSpec {
        &self.spec
    }

    /// Directory holding the logs of processes started in this lab.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every namespace of the lab, router first.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Run `argv` inside `role`'s namespace and return its output, whatever
    /// its exit status.
    pub fn exec(&self, role: &str, argv: &[&str]) -> Result<Output> {
        let ns = self.ns(role);
        Command::new("ip")
            .args(["netns", "exec", &ns])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running `{}` in {ns}", shown(argv)))
    }

    /// Like [`Lab::exec`] but a non-zero exit is an error (showing the command
    /// and its stderr); returns stdout.
    pub fn exec_ok(&self, role: &str, argv: &[&str]) -> Result<String> {
        let out = self.exec(role, argv)?;
        check_output(&format!("{} (in {})", shown(argv), self.ns(role)), out)
    }

    /// Start `argv` in `role`'s namespace; stdout and stderr go to a log file
    /// in [`Lab::dir`]. Dropping the returned value kills its process group.
    pub fn spawn(&self, role: &str, argv: &[&str]) -> Result<LabProcess> {
        self.spawn_with(role, argv, false)
    }

    /// Stop backend `be<i>` (1-based): afterwards its ports refuse
    /// connections.
    pub fn stop_backend(&self, i: usize) -> Result<()> {
        let mut backends = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = i.checked_sub(1).and_then(|j| backends.get_mut(j)) else {
            bail!("lab {} has no backend be{i}", self.spec.name);
        };
        // Dropping kills and reaps: once this returns the sockets are closed.
        slot.take();
        Ok(())
    }

    /// (Re)start backend `be<i>` (1-based) and wait until it listens. A
    /// backend that is already running is left alone.
    pub fn start_backend(&self, i: usize) -> Result<()> {
        let role = format!("be{i}");
        let mut backends = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = i.checked_sub(1).and_then(|j| backends.get_mut(j)) else {
            bail!("lab {} has no backend {role}", self.spec.name);
        };
        if let Some(p) = slot.as_mut() {
            if p.is_running() {
                return Ok(());
            }
        }
        *slot = Some(self.start_http_server(&role, &role)?);
        Ok(())
    }

    pub fn link_down(&self, role: &str, ifname: &str) -> Result<()> {
        run(&["ip", "-n", &self.ns(role), "link", "set", ifname, "down"]).map(|_| ())
    }

    /// Bring `ifname` in `role` back up, restoring the default route the
    /// kernel dropped while the link was down.
    pub fn link_up(&self, role: &str, ifname: &str) -> Result<()> {
        run(&["ip", "-n", &self.ns(role), "link", "set", ifname, "up"])?;
        if self
            .default_route(role)
            .is_some_and(|(dev, _)| dev == ifname)
        {
            self.set_default_route(role)?;
        }
        Ok(())
    }

    /// One `GET /` from `from_role` (curl); returns the body.
    pub fn http_get(
        &self,
        from_role: &str,
        addr: SocketAddrV4,
        timeout: Duration,
    ) -> Result<String> {
        self.http_get_path(from_role, addr, "/", timeout)
    }

    /// One `GET path` from `from_role` (curl); returns the body. Backends
    /// answer `/peer` with `NAME IP:PORT`, the source they saw.
    pub fn http_get_path(
        &self,
        from_role: &str,
        addr: SocketAddrV4,
        path: &str,
        timeout: Duration,
    ) -> Result<String> {
        let url = format!("http://{addr}{path}");
        let max_time = format!("{:.3}", timeout.as_secs_f64());
        self.exec_ok(
            from_role,
            &[
                "curl",
                "-sS",
                "--noproxy",
                "*",
                "--max-time",
                &max_time,
                &url,
            ],
        )
        .with_context(|| format!("GET {url} from {}", self.ns(from_role)))
    }

    /// `n` GET requests to `addr` from `from_role`, each on a new connection,
    /// `concurrency` at a time, each bounded by 2 s.
    pub fn http_burst(
        &self,
        from_role: &str,
        addr: SocketAddrV4,
        n: usize,
        concurrency: usize,
    ) -> Result<BurstReport> {
        let args = [
            addr.ip().to_string(),
            addr.port().to_string(),
            n.to_string(),
            concurrency.max(1).to_string(),
        ];
        let mut argv = vec![scripts::PYTHON, "-c", scripts::BURST_PY];
        argv.extend(args.iter().map(String::as_str));
        let out = self
            .exec_ok(from_role, &argv)
            .with_context(|| format!("HTTP burst to {addr} from {}", self.ns(from_role)))?;
        let report: BurstReport = serde_json::from_str(out.trim())
            .with_context(|| format!("HTTP burst to {addr}: unreadable report {out:?}"))?;
        if report.ok + report.failed != n {
            bail!(
                "HTTP burst to {addr}: asked for {n} requests but the report accounts for {}",
                report.ok + report.failed
            );
        }
        Ok(report)
    }

    /// Poll `f` every 20 ms until it returns true; error if `deadline` passes
    /// first, naming `what` was awaited.
    pub fn wait_until(
        &self,
        what: &str,
        deadline: Duration,
        mut f: impl FnMut() -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            if f() {
                return Ok(());
            }
            if start.elapsed() >= deadline {
                bail!(
                    "lab {}: timed out after {deadline:?} waiting for: {what}",
                    self.spec.name
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Move the calling thread into `role`'s network namespace (setns(2)).
    /// It stays there: do this on a thread dedicated to that namespace.
    pub fn enter(&self, role: &str) -> Result<()> {
        use std::os::fd::AsRawFd;
        let path = Path::new("/run/netns").join(self.ns(role));
        let file = std::fs::File::open(&path)
            .with_context(|| format!("opening namespace {}", path.display()))?;
        // SAFETY: setns only reads the descriptor, which `file` keeps open for
        // the duration of the call; it changes nothing else in our memory.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("entering namespace {}", path.display()));
        }
        Ok(())
    }

    /// Keep the lab after this value is gone: namespaces stay, its HTTP
    /// servers keep running. `viplab down NAME` removes it.
    pub fn persist(mut self) {
        self.armed = false;
        let backends = std::mem::take(self.backends.get_mut().unwrap_or_else(|e| e.into_inner()));
        for p in backends.into_iter().flatten() {
            p.detach();
        }
        if let Some(p) = self.sorry.take() {
            p.detach();
        }
    }

    // ---- addresses (1-based indices, as in the role names) ----

    pub fn client_ip(&self) -> Ipv4Addr {
        client_ip()
    }

    /// LB node `k`'s address on `side` (`eth0` client side, `eth1` backend
    /// side).
    pub fn lb_ip(&self, k: usize, side: Side) -> Ipv4Addr {
        assert!(
            (1..=self.spec.lb_nodes).contains(&k),
            "lab {} has {} LB node(s); lb{k} does not exist",
            self.spec.name,
            self.spec.lb_nodes
        );
        lb_ip(k, side)
    }

    pub fn backend_ip(&self, i: usize) -> Ipv4Addr {
        self.assert_backend(i);
        backend_ip(i)
    }

    /// Backend `i`'s HTTP server at `backend_port`.
    pub fn backend_addr(&self, i: usize) -> SocketAddrV4 {
        SocketAddrV4::new(self.backend_ip(i), self.spec.backend_port)
    }

    /// The body backend `i` answers, trimmed (`"be1"`).
    pub fn backend_name(&self, i: usize) -> String {
        self.assert_backend(i);
        format!("be{i}")
    }

    fn assert_backend(&self, i: usize) {
        assert!(
            (1..=self.spec.backends).contains(&i),
            "lab {} has {} backend(s); be{i} does not exist",
            self.spec.name,
            self.spec.backends
        );
    }

    pub fn router_ip(&self, side: Side) -> Ipv4Addr {
        router_ip(side)
    }

    /// The sorry server's HTTP address (10.77.1.250 at `backend_port`);
    /// running only if the spec asked for it.
    pub fn sorry_addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 77, 1, 250), self.spec.backend_port)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let backends = std::mem::take(self.backends.get_mut().unwrap_or_else(|e| e.into_inner()));
        drop(backends);
        self.sorry.take();
        // Processes started by the test itself (possibly still owned by it)
        // die with the namespaces.
        for ns in self.namespaces.iter().rev() {
            if let Err(e) = remove_namespace(ns) {
                eprintln!(
                    "lab {}: teardown could not remove namespace {ns}: {e:#}; run `viplab down {}`",
                    self.spec.name, self.spec.name
                );
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "lab {}: logs of its processes kept in {}",
                self.spec.name,
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn client_ip() -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, 2)
}

fn lb_ip(k: usize, side: Side) -> Ipv4Addr {
    let host = u8::try_from(10 + k).unwrap_or(u8::MAX);
    Ipv4Addr::new(10, 77, side_octet(side), host)
}

fn backend_ip(i: usize) -> Ipv4Addr {
    let host = u8::try_from(100 + i).unwrap_or(u8::MAX);
    Ipv4Addr::new(10, 77, 1, host)
}

fn router_ip(side: Side) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, side_octet(side), 254)
}

fn side_octet(side: Side) -> u8 {
    match side {
        Side::Client => 0,
        Side::Backend => 1,
    }
}

fn lab_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{NS_PREFIX}{name}"))
}

fn shown(argv: &[&str]) -> String {
    // The embedded Python programs would drown the message.
    argv.iter()
        .map(|a| if a.contains('\n') { "<script>" } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_output(what: &str, out: Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "command `{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Run a command in the root namespace; non-zero exit is an error.
fn run(argv: &[&str]) -> Result<String> {
    let Some((program, args)) = argv.split_first() else {
        bail!("empty command");
    };
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not run `{}` (is it installed?)", shown(argv)))?;
    check_output(&shown(argv), out)
}

fn check_root() -> Result<()> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .ok_or_else(|| anyhow!("no Uid line in /proc/self/status"))?;
    if euid != "0" {
        bail!("the lab creates network namespaces and needs root (effective uid is {euid}); run as root");
    }
    Ok(())
}

/// Namespaces whose names start with `vl-`.
fn all_lab_namespaces() -> Result<Vec<String>> {
    let out = run(&["ip", "netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NS_PREFIX))
        .map(str::to_string)
        .collect())
}

/// Lab name of a lab namespace `vl-<lab>-<role>`.
fn lab_of(ns: &str) -> Option<&str> {
    let (lab, _role) = ns.strip_prefix(NS_PREFIX)?.rsplit_once('-')?;
    Some(lab)
}

fn lab_namespaces(name: &str) -> Result<Vec<String>> {
    Ok(all_lab_namespaces()?
        .into_iter()
        .filter(|ns| lab_of(ns) == Some(name))
        .collect())
}

/// Kill everything running in `ns`, then delete it (its veths go with it).
fn remove_namespace(ns: &str) -> Result<()> {
    let pids = run(&["ip", "netns", "pids", ns])?;
    let pids: Vec<String> = pids.split_whitespace().map(str::to_string).collect();
    process::kill_pids(&pids);
    run(&["ip", "netns", "del", ns])?;
    Ok(())
}

/// Remove lab `name` (namespaces, processes in them, log directory), whether
/// or not it is complete. Returns whether there was anything to remove.
pub fn down(name: &str) -> Result<bool> {
    validate_name(name)?;
    let namespaces = lab_namespaces(name)?;
    let dir = lab_dir(name);
    let found = !namespaces.is_empty() || dir.exists();
    let mut failures = Vec::new();
    for ns in &namespaces {
        if let Err(e) = remove_namespace(ns) {
            failures.push(format!("{ns}: {e:#}"));
        }
    }
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            failures.push(format!("{}: {e}", dir.display()));
        }
    }
    if !failures.is_empty() {
        bail!(
            "lab {name}: could not remove {}; check that you are root",
            failures.join("; ")
        );
    }
    Ok(found)
}

/// Remove every lab (optionally only those whose name starts with
/// `prefix_filter`): namespaces `vl-*` and their log directories. Returns how
/// many labs were removed.
pub fn down_all(prefix_filter: Option<&str>) -> Result<usize> {
    let mut names: Vec<String> = all_lab_namespaces()?
        .iter()
        .filter_map(|ns| lab_of(ns))
        .map(str::to_string)
        .collect();
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(lab) = file_name.to_str().and_then(|n| n.strip_prefix(NS_PREFIX)) else {
                continue;
            };
            if validate_name(lab).is_ok() && entry.path().is_dir() {
                names.push(lab.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    let mut removed = 0;
    for name in names {
        if prefix_filter.is_some_and(|p| !name.starts_with(p)) {
            continue;
        }
        if down(&name)? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// A lab name unique per process and call, derived from `test` (e.g. the
/// test's name): up to 6 of its letters, then the pid (7 digits) and a
/// 3-character counter. Because the tag is letters only and the rest has a
/// fixed length starting with a digit, no result is a prefix of another.
pub fn unique_name(test: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let mut tag: String = test
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .take(6)
        .collect();
    if tag.is_empty() {
        tag.push('t');
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) % (36 * 36 * 36);
    let digit = |d: usize| char::from_digit(u32::try_from(d).unwrap_or(0), 36).unwrap_or('0');
    format!(
        "{tag}{:07}{}{}{}",
        std::process::id() % 10_000_000,
        digit(n / 1296),
        digit(n / 36 % 36),
        digit(n % 36)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_distinct_and_prefix_free() {
        let names: Vec<String> = ["drain", "drain", "a", "abc123def", "", "wrr-weights"]
            .iter()
            .map(|t| unique_name(t))
            .collect();
        for (i, a) in names.iter().enumerate() {
            validate_name(a).unwrap();
            for (j, b) in names.iter().enumerate() {
                if i != j {
                    assert!(!b.starts_with(a.as_str()), "{a} is a prefix of {b}");
                }
            }
        }
        assert!(names[0].starts_with("drain"));
        assert!(names[4].starts_with('t'));
    }

    #[test]
    fn lab_name_is_recovered_from_namespace() {
        assert_eq!(lab_of("vl-abc0001234000-lb1"), Some("abc0001234000"));
        assert_eq!(lab_of("vl-x-client"), Some("x"));
        assert_eq!(lab_of("other-ns"), None);
        assert_eq!(lab_of("vl-nodash"), None);
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        let ok = LabSpec {
            name: "a1".into(),
            ..LabSpec::default()
        };
        ok.validate().unwrap();
        let cases = [
            LabSpec {
                name: "Bad-Name".into(),
                ..ok.clone()
            },
            LabSpec {
                backends: 0,
                ..ok.clone()
            },
            LabSpec {
                backends: 9,
                ..ok.clone()
            },
            LabSpec {
                lb_nodes: 0,
                ..ok.clone()
            },
            LabSpec {
                queues: 0,
                ..ok.clone()
            },
            LabSpec {
                backend_gateway: Gateway::Lb(2),
                ..ok.clone()
            },
        ];
        for spec in cases {
            assert!(spec.validate().is_err(), "{spec:?} was accepted");
        }
    }

    #[test]
    fn addresses_follow_the_plan() {
        assert_eq!(lb_ip(2, Side::Backend), Ipv4Addr::new(10, 77, 1, 12));
        assert_eq!(lb_ip(1, Side::Client), Ipv4Addr::new(10, 77, 0, 11));
        assert_eq!(backend_ip(3), Ipv4Addr::new(10, 77, 1, 103));
        assert_eq!(router_ip(Side::Client), Ipv4Addr::new(10, 77, 0, 254));
        assert_eq!(vip(1), Ipv4Addr::new(10, 77, 0, 101));
    }
}
