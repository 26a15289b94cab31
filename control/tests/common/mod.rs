//! Shared pieces of the end-to-end tests: a vipd node running inside a lab
//! namespace, driven through its control socket.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ctlproto::reply;
use lab::{Lab, LabProcess};

pub const SERVICE_PORT: u16 = 8080;

/// A vipd process in an LB node's namespace.
pub struct Vipd {
    pub process: Option<LabProcess>,
    pub socket: PathBuf,
    pub config: PathBuf,
}

impl Vipd {
    /// Writes `config` into the lab directory and starts vipd with it in `role`.
    pub fn start(lab: &Lab, role: &str, config: &str) -> Result<Vipd> {
        let path = lab.dir().join(format!("{role}.toml"));
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
        let socket = socket_path(lab, role);
        let process = lab.spawn(
            role,
            &[
                env!("CARGO_BIN_EXE_vipd"),
                "--config",
                path.to_str().unwrap_or_default(),
            ],
        )?;
        let mut vipd = Vipd {
            process: Some(process),
            socket,
            config: path,
        };
        let ready = lab.wait_until(
            "vipd control socket answers",
            Duration::from_secs(30),
            || {
                vipd.is_running()
                    && vipd
                        .call::<reply::Status>(ctlproto::Command::Status {})
                        .is_ok()
            },
        );
        if let Err(e) = ready {
            bail!("{e}\nvipd log:\n{}", vipd.log());
        }
        Ok(vipd)
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.is_running())
    }

    pub fn log(&self) -> String {
        self.process.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    /// One control request, its reply read as `R`.
    pub fn call<R: serde::de::DeserializeOwned>(&self, cmd: ctlproto::Command) -> Result<R> {
        Ok(ctlproto::call(&self.socket, &cmd, ctlproto::REPLY_TIMEOUT)?)
    }

    /// The node's counters; all zero when it does not answer.
    pub fn stats(&self) -> reply::Stats {
        self.call(ctlproto::Command::Stats {}).unwrap_or_default()
    }

    pub fn drops(&self, reason: &str) -> u64 {
        self.stats().drops.get(reason).copied().unwrap_or(0)
    }

    /// Number of backends the node currently considers healthy.
    pub fn healthy_backends(&self) -> usize {
        self.call::<reply::Backends>(ctlproto::Command::Backends {})
            .map(|v| v.backends.iter().filter(|b| b.healthy).count())
            .unwrap_or(0)
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(&mut self, lab: &Lab) -> Result<()> {
        let Some(p) = self.process.as_mut() else {
            return Ok(());
        };
        let pid = i32::try_from(p.pid()).context("pid out of range")?;
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        lab.wait_until("vipd exits after SIGTERM", Duration::from_secs(15), || {
            !self.is_running()
        })
    }
}

pub fn socket_path(lab: &Lab, role: &str) -> PathBuf {
    lab.dir().join(format!("{role}.sock"))
}

/// A service block for the config, with one backend per lab backend.
pub struct ServiceConf<'a> {
    pub vip: Ipv4Addr,
    pub port: u16,
    pub scheduler: &'a str,
    pub forward: &'a str,
    pub weights: Vec<u32>,
    pub check: String,
    pub extra: String,
}

/// One round-robin service on `vip` with one HTTP-checked backend.
pub fn single_service(vip: Ipv4Addr, forward: &str) -> ServiceConf<'_> {
    ServiceConf {
        vip,
        port: SERVICE_PORT,
        scheduler: "rr",
        forward,
        weights: vec![1],
        check: http_check(200, 1, 2),
        extra: String::new(),
    }
}

/// A lab whose backends route replies through lb1, as `nat` services need.
pub fn nat_lab(tag: &str, backends: usize, sorry_server: bool) -> Lab {
    Lab::up(lab::LabSpec {
        name: lab::unique_name(tag),
        backends,
        backend_gateway: lab::Gateway::Lb(1),
        sorry_server,
        ..lab::LabSpec::default()
    })
    .expect("lab up")
}

pub fn http_check(interval_ms: u64, rise: u32, fall: u32) -> String {
    format!(
        r#"{{ kind = "http", path = "/", expect_status = 200, interval_ms = {interval_ms}, timeout_ms = 500, rise = {rise}, fall = {fall} }}"#
    )
}

pub fn node_config(
    lab: &Lab,
    role: &str,
    queues: u16,
    extra_dataplane: &str,
    services: &[ServiceConf],
) -> String {
    let mut out = format!(
        "[node]\nname = \"{role}\"\nsite = \"test\"\n\n[dataplane]\ninterfaces = [\"eth0\", \"eth1\"]\nqueues = {queues}\n{extra_dataplane}\n\n[control]\nsocket = \"{}\"\n\n",
        socket_path(lab, role).display()
    );
    for (i, s) in services.iter().enumerate() {
        out += &format!(
            "[[service]]\nname = \"svc{i}\"\nvip = \"{}\"\nport = {}\nprotocol = \"tcp\"\nscheduler = \"{}\"\nforward = \"{}\"\n{}\n",
            s.vip, s.port, s.scheduler, s.forward, s.extra
        );
        for (b, w) in s.weights.iter().enumerate() {
            out += &format!(
                "  [[service.backend]]\n  address = \"{}\"\n  weight = {w}\n  check = {}\n",
                SocketAddrV4::new(lab.backend_ip(b + 1), s.port),
                s.check
            );
        }
        out += "\n";
    }
    out
}

/// MAC address of `ifname` in `role`'s namespace.
pub fn mac_of(lab: &Lab, role: &str, ifname: &str) -> Result<String> {
    Ok(lab
        .exec_ok(role, &["cat", &format!("/sys/class/net/{ifname}/address")])?
        .trim()
        .to_string())
}

/// The MAC the client's neighbour table holds for `ip`, if any.
pub fn client_neighbour(lab: &Lab, ip: Ipv4Addr) -> Option<String> {
    let out = lab
        .exec_ok("client", &["ip", "neigh", "show", &ip.to_string()])
        .ok()?;
    let mut words = out.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_string)
}

/// Whether `ip link show` lists an XDP program on the interface.
pub fn has_xdp(lab: &Lab, role: &str, ifname: &str) -> bool {
    lab.exec_ok(role, &["ip", "link", "show", ifname])
        .map(|o| o.contains("xdp"))
        .unwrap_or(false)
}

/// Asserts that `counts` split in proportion to `weights`, each share within
/// `tolerance` (relative) of its expected value.
pub fn assert_proportional(counts: &[usize], weights: &[u32], tolerance: f64) {
    let total: usize = counts.iter().sum();
    let wsum: u32 = weights.iter().sum();
    for (i, (&c, &w)) in counts.iter().zip(weights).enumerate() {
        let expected = total as f64 * f64::from(w) / f64::from(wsum);
        let err = (c as f64 - expected).abs() / expected.max(1.0);
        assert!(
            err <= tolerance,
            "backend be{} got {c} of {total} requests, expected {expected:.0} (weight {w} of {wsum}): off by {:.1}%",
            i + 1,
            err * 100.0
        );
    }
}

/// Answers every line with the backend's name: a TCP connection that lives
/// as long as the client keeps it.
const NAME_SERVER: &str = r#"
import socket, socketserver, sys
name, port = sys.argv[1], int(sys.argv[2])
class H(socketserver.StreamRequestHandler):
    def handle(self):
        for _ in self.rfile:
            self.wfile.write((name + "\n").encode()); self.wfile.flush()
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("0.0.0.0", port), H).serve_forever()
"#;

/// Starts a name server on `port` in each of backends `be1..=beN`; they run
/// until the lab is torn down.
pub fn start_name_servers(lab: &Lab, backends: usize, port: u16) {
    for i in 1..=backends {
        lab.spawn(
            &format!("be{i}"),
            &[
                "/usr/bin/python3",
                "-c",
                NAME_SERVER,
                &format!("be{i}"),
                &port.to_string(),
            ],
        )
        .map(|p| p.detach())
        .expect("name server");
    }
}

/// A strict reader of the Prometheus text format: every sample belongs to a
/// family declared by `# TYPE` before it, counters end in `_total`, names
/// and labels are well formed, values are numbers.
pub fn parse_prometheus(text: &str) -> Result<HashMap<String, f64>, String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = HashMap::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    for (i, line) in text.lines().enumerate() {
        let at = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let mut w = rest.splitn(3, ' ');
            match (w.next(), w.next(), w.next()) {
                (Some("HELP"), Some(n), Some(_)) if name_ok(n) => {}
                (Some("TYPE"), Some(n), Some(t)) if name_ok(n) => {
                    if !["counter", "gauge"].contains(&t) {
                        return Err(at("unknown type"));
                    }
                    if t == "counter" && !n.ends_with("_total") {
                        return Err(at("counter without _total"));
                    }
                    types.insert(n.to_string(), t.to_string());
                }
                _ => return Err(at("bad comment")),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| at("no value"))?;
        let value: f64 = value.parse().map_err(|_| at("value not a number"))?;
        let name = series.split('{').next().unwrap_or_default();
        if !name_ok(name) || !types.contains_key(name) {
            return Err(at("sample of an undeclared family"));
        }
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .ok_or_else(|| at("bad label braces"))?;
            let mut rest = inner;
            while !rest.is_empty() {
                let (k, v) = rest.split_once("=\"").ok_or_else(|| at("bad label"))?;
                if !name_ok(k) {
                    return Err(at("bad label name"));
                }
                let mut end = None;
                let mut esc = false;
                for (j, c) in v.char_indices() {
                    match (esc, c) {
                        (true, _) => esc = false,
                        (false, '\\') => esc = true,
                        (false, '"') => {
                            end = Some(j);
                            break;
                        }
                        _ => {}
                    }
                }
                let end = end.ok_or_else(|| at("unterminated label value"))?;
                rest = v[end + 1..].strip_prefix(',').unwrap_or(&v[end + 1..]);
            }
        }
        if samples.insert(series.to_string(), value).is_some() {
            return Err(at("duplicate series"));
        }
    }
    Ok(samples)
}

/// vipd's /metrics at `addr`, fetched from inside `role`'s namespace and
/// read strictly.
pub fn scrape_metrics(lab: &Lab, role: &str, addr: &str) -> HashMap<String, f64> {
    let text = lab
        .exec_ok(
            role,
            &[
                "curl",
                "-sS",
                "--max-time",
                "10",
                &format!("http://{addr}/metrics"),
            ],
        )
        .expect("metrics answer");
    parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// `vipctl ARGS` against the control socket `socket`: whether it succeeded,
/// its standard output and its standard error.
pub fn vipctl_run(socket: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("vipctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `vipctl --json ARGS`: the reply read as `R`, or the error text.
pub fn vipctl_json<R: serde::de::DeserializeOwned>(
    socket: &std::path::Path,
    args: &[&str],
) -> std::result::Result<R, String> {
    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(args);
    let (ok, out, err) = vipctl_run(socket, &json_args);
    if !ok {
        return Err(err);
    }
    serde_json::from_str(&out).map_err(|e| e.to_string())
}

/// Resident memory of process `pid` in KiB (0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
