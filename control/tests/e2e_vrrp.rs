//! End to end: vipd's VRRP against keepalived and against itself, in a
//! namespace lab with two LB nodes on one client segment. The client tells
//! who serves the VIP by the HTTP body: a backend name (`be1`, `be2`) when
//! vipd forwards, `keepalived-lbK` when a keepalived node holds the VIP on
//! its own kernel interface and answers from a local server.
//!
//! Failover is measured from the client: a prober sends a UDP probe to an
//! echo service behind the VIP every 10 ms and reports every outage, from
//! the last answered probe before unanswered ones to the first answered one
//! after them, with how long the host froze the whole machine inside it
//! (which the limits do not count). Run with `--nocapture` to see the
//! figures.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use ctlproto::{reply, Command};
use lab::{Lab, LabProcess, LabSpec, Side};
use serde_json::Value;

const VRID: u8 = 51;
const VMAC: &str = "00:00:5e:00:01:33";
/// UDP port of the failover prober's echo service.
const PROBE_PORT: u16 = 9000;

/// HTTP server answering every GET with argv[1].
const NAME_HTTP: &str = r#"
import http.server, socketserver, sys
body = (sys.argv[1] + "\n").encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
S(("0.0.0.0", 8080), H).serve_forever()
"#;

/// argv: HOST PORT SECONDS STOPFILE. Sends a numbered UDP probe every
/// 10 ms; a probe counts if its echo comes back within 250 ms. Prints `warm`
/// after 10 answered probes, runs until 2 s after STOPFILE appears (at most
/// SECONDS), and prints a JSON summary of the outages at the end. UDP
/// rather than a TCP request per probe: a connection in flight when the
/// master changes dies with the old master's flow state, which would add
/// the request's duration to the measured outage.
///
/// Every outage also says how long the host froze this whole machine
/// inside it: time every vCPU lost to steal (/proc/stat) at once. Nothing
/// in the lab runs then, client and nodes alike, so that part of an outage
/// is the host's, not vipd's.
const PROBER: &str = r#"
import json, os, select, socket, struct, sys, time
host, port, dur, stop = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
tick = 1.0 / os.sysconf("SC_CLK_TCK")
def steal():
    with open("/proc/stat") as f:
        return [int(l.split()[8]) for l in f if l.startswith("cpu") and l[3].isdigit()]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic(); next_t = start
sent = []; ok = set(); said = False
frozen = []; st, st_t = steal(), 0.0
while True:
    now = time.monotonic()
    if dur - (now - start) > 2.0 and os.path.exists(stop):
        dur = now - start + 2.0
    if now - start >= dur + 0.25:
        break
    cur = steal()
    lost_all = min(b - a for a, b in zip(st, cur)) * tick
    if lost_all > 0:
        frozen.append((st_t, now - start, lost_all))
    st, st_t = cur, now - start
    if now >= next_t and now - start < dur:
        s.sendto(struct.pack("!I", len(sent)), (host, port))
        sent.append(now - start)
        next_t = max(next_t + 0.01, now - 0.02)
    r, _, _ = select.select([s], [], [], max(0.0, min(next_t - time.monotonic(), 0.01)))
    if r:
        d, _ = s.recvfrom(2048)
        if len(d) >= 4:
            i = struct.unpack("!I", d[:4])[0]
            if i < len(sent) and time.monotonic() - start - sent[i] <= 0.25:
                ok.add(i)
                if not said and len(ok) >= 10:
                    print("warm", flush=True); said = True
def frozen_in(a, b):
    return sum(f * max(0.0, min(b, t1) - max(a, t0)) / max(t1 - t0, 1e-9) for t0, t1, f in frozen)
# An outage runs from the last answered probe before a run of unanswered
# ones to the first answered probe after it; a pause of the prober itself
# (nothing sent) is no outage.
outages, last, lost = [], None, False
for i, t in enumerate(sent):
    if i not in ok:
        lost = True
        continue
    if lost and last is not None:
        outages.append({"at_ms": round(last * 1000), "ms": round((t - last) * 1000),
                        "frozen_ms": round(min(frozen_in(last, t), t - last) * 1000)})
    last, lost = t, False
tail = dur - last if last is not None else dur
print(json.dumps({"sent": len(sent), "ok": len(ok), "tail_ms": round(tail * 1000),
                  "outages": outages}), flush=True)
"#;

/// UDP echo server on port argv[1].
const UDP_ECHO: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(d, a)
"#;

/// argv: VIP CLIENT_MAC MODE. Sends hostile VRRPv3 adverts for vrid 51
/// from the client: 5 of each kind, then (MODE flood) 10000 with a bad
/// checksum, as fast as a packet socket takes them.
const HOSTILE: &str = r#"
import socket, struct, sys
from scapy.all import Ether, IP, Raw
vip, mac, mode = sys.argv[1], sys.argv[2], sys.argv[3]
src = "10.77.0.2"
def csum(data):
    if len(data) % 2: data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def advert(vrid=51, prio=100, good=True, src=src):
    body = bytes([0x31, vrid, prio, 1]) + struct.pack("!H", 10) + b"\0\0" + socket.inet_aton(vip)
    pseudo = socket.inet_aton(src) + socket.inet_aton("224.0.0.18") + struct.pack("!BBH", 0, 112, len(body))
    c = csum(pseudo + body) ^ (0 if good else 0x5a5a)
    return body[:6] + struct.pack("!H", c) + body[8:]
def frame(payload, ttl=255, src=src):
    return bytes(Ether(src=mac, dst="01:00:5e:00:00:12") / IP(src=src, dst="224.0.0.18", ttl=ttl, proto=112) / Raw(payload))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
kinds = {
    "ttl": frame(advert(prio=200), ttl=64),
    "vrid": frame(advert(vrid=52, prio=200)),
    "checksum": frame(advert(prio=200, good=False)),
    "truncated": frame(advert(prio=200)[:6]),
    "owner": frame(advert(prio=255)),
}
for f in kinds.values():
    for _ in range(5):
        s.send(f)
if mode == "flood":
    f = frame(advert(prio=254, good=False))
    for _ in range(10000):
        s.send(f)
print("sent", flush=True)
"#;

/// argv: PID RELEASE_FILE. Stops every `vipd-worker-*` thread of PID with
/// ptrace (only those threads; the control plane keeps running), prints
/// `frozen`, and lets them go once RELEASE_FILE exists.
const FREEZE_WORKERS: &str = r#"
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
pid, release = int(sys.argv[1]), sys.argv[2]
tids = [int(t) for t in os.listdir("/proc/%d/task" % pid)
        if open("/proc/%d/task/%s/comm" % (pid, t)).read().startswith("vipd-worker")]
if not tids:
    sys.exit("no worker threads")
for t in tids:
    if libc.ptrace(0x4206, t, None, None) != 0:  # PTRACE_SEIZE
        sys.exit("seize %d: errno %d" % (t, ctypes.get_errno()))
    libc.ptrace(0x4207, t, None, None)  # PTRACE_INTERRUPT
    os.waitpid(t, 0x40000000)  # __WALL
print("frozen", len(tids), flush=True)
while not os.path.exists(release):
    time.sleep(0.01)
for t in tids:
    libc.ptrace(17, t, None, None)  # PTRACE_DETACH
print("released", flush=True)
"#;

/// Failover is measured in milliseconds on a two-core machine: a test that
/// measures it runs with no other lab of this binary up, or it would measure
/// the other lab's load. Tests that only check behaviour share the machine.
static TURNS: std::sync::RwLock<()> = std::sync::RwLock::new(());

enum Turn {
    Shared {
        _turn: std::sync::RwLockReadGuard<'static, ()>,
    },
    Alone {
        _turn: std::sync::RwLockWriteGuard<'static, ()>,
    },
}

/// A two-node lab and this test's turn; the lab is torn down before the
/// turn ends.
struct VrrpLab {
    lab: Lab,
    turn: Turn,
}

impl std::ops::Deref for VrrpLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

fn lab_up(tag: &str, turn: Turn) -> VrrpLab {
    let lab = Lab::up(LabSpec {
        name: lab::unique_name(tag),
        lb_nodes: 2,
        backends: 2,
        ..LabSpec::default()
    })
    .expect("lab up");
    VrrpLab { lab, turn }
}

/// A lab for a test that checks behaviour, not timing.
fn lab2(tag: &str) -> VrrpLab {
    let turn = TURNS.read().unwrap_or_else(|p| p.into_inner());
    lab_up(tag, Turn::Shared { _turn: turn })
}

/// A lab for a test that measures failover: it waits until no other lab of
/// this binary is up, and none starts until it is done.
fn lab2_alone(tag: &str) -> VrrpLab {
    let turn = TURNS.write().unwrap_or_else(|p| p.into_inner());
    lab_up(tag, Turn::Alone { _turn: turn })
}

fn vip() -> Ipv4Addr {
    lab::vip(1)
}

fn vip_addr() -> SocketAddrV4 {
    SocketAddrV4::new(vip(), SERVICE_PORT)
}

/// A vipd node config: full NAT (its own source address per node, so
/// either node can serve) and one VRRP instance with `vrrp_extra` keys.
fn vipd_config(lab: &Lab, k: usize, vrrp_extra: &str) -> String {
    let services = [ServiceConf {
        vip: vip(),
        port: SERVICE_PORT,
        scheduler: "rr",
        forward: "fullnat",
        weights: vec![1, 1],
        check: http_check(200, 1, 2),
        extra: format!("snat = [\"10.77.1.{}\"]", 200 + k),
    }];
    let role = format!("lb{k}");
    // The prober's UDP echo service; common::node_config writes TCP only.
    let mut udp = format!(
        "[[service]]\nname = \"probe\"\nvip = \"{}\"\nport = {PROBE_PORT}\nprotocol = \"udp\"\nscheduler = \"rr\"\nforward = \"fullnat\"\nsnat = [\"10.77.1.{}\"]\n",
        vip(),
        200 + k
    );
    for b in 1..=2 {
        udp += &format!(
            "  [[service.backend]]\n  address = \"{}\"\n  check = {{ kind = \"none\" }}\n",
            SocketAddrV4::new(lab.backend_ip(b), PROBE_PORT)
        );
    }
    format!(
        "{}{udp}\n[[vrrp]]\nname = \"vi\"\ninterface = \"eth0\"\nvrid = {VRID}\nvips = [\"{}\"]\n{vrrp_extra}\n",
        node_config(lab, &role, 1, "", &services),
        vip()
    )
}

fn vrrp_keys(version: u8, interval_ms: u64, priority: u8) -> String {
    format!("version = {version}\nadvert_interval_ms = {interval_ms}\npriority = {priority}\n")
}

fn start_vipd(lab: &Lab, k: usize, vrrp_extra: &str) -> Vipd {
    let role = format!("lb{k}");
    let vipd = Vipd::start(lab, &role, &vipd_config(lab, k, vrrp_extra)).expect("vipd starts");
    lab.wait_until("backends healthy", Duration::from_secs(20), || {
        vipd.healthy_backends() == 4
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
    vipd
}

/// The one VRRP instance of a vipd node, if it answers.
fn vrrp_instance(vipd: &Vipd) -> Option<reply::VrrpInstance> {
    vipd.call::<reply::Vrrp>(Command::Vrrp {})
        .ok()?
        .instances
        .into_iter()
        .next()
}

/// The one VRRP instance of a vipd node; empty (no state, counters 0) when
/// it does not answer.
fn instance(vipd: &Vipd) -> reply::VrrpInstance {
    vrrp_instance(vipd).unwrap_or_default()
}

fn state(vipd: &Vipd) -> String {
    instance(vipd).state
}

/// Reads one counter of a VRRP instance.
type Read = fn(&reply::VrrpCounters) -> u64;

fn counter(vipd: &Vipd, read: Read) -> u64 {
    read(&instance(vipd).counters)
}

fn wait_state(lab: &Lab, vipd: &Vipd, want: &str, within: Duration) {
    lab.wait_until(&format!("vipd VRRP state {want}"), within, || {
        state(vipd) == want
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", instance(vipd), vipd.log()));
}

/// Who answers the VIP from the client, if anyone does.
fn server(lab: &Lab) -> Option<String> {
    lab.http_get("client", vip_addr(), Duration::from_millis(500))
        .ok()
        .map(|b| b.trim().to_string())
}

fn wait_server(lab: &Lab, what: &str, within: Duration, ok: impl Fn(&str) -> bool) {
    lab.wait_until(what, within, || server(lab).is_some_and(|s| ok(&s)))
        .unwrap_or_else(|e| panic!("{e}; last answer: {:?}", server(lab)));
}

fn is_backend(s: &str) -> bool {
    s == "be1" || s == "be2"
}

/// A keepalived node: its VRRP daemon and a local HTTP server on :8080.
struct Keepalived {
    process: Option<LabProcess>,
    _http: LabProcess,
    role: String,
}

impl Keepalived {
    fn start(
        lab: &Lab,
        k: usize,
        version: u8,
        interval_ms: u64,
        priority: u8,
        extra: &str,
    ) -> Self {
        let role = format!("lb{k}");
        let dir = lab.dir();
        let conf = dir.join(format!("{role}-keepalived.conf"));
        let text = format!(
            "global_defs {{\n  router_id {role}\n}}\nvrrp_instance VI {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {VRID}\n  priority {priority}\n  advert_int {}\n  version {version}\n{extra}\n  virtual_ipaddress {{\n    {}/32 dev eth0\n  }}\n}}\n",
            interval_ms as f64 / 1000.0,
            vip()
        );
        std::fs::write(&conf, text).expect("write keepalived.conf");
        let file = |name: &str| dir.join(format!("{role}-{name}")).display().to_string();
        let http = lab
            .spawn(
                &role,
                &[
                    "/usr/bin/python3",
                    "-c",
                    NAME_HTTP,
                    &format!("keepalived-{role}"),
                ],
            )
            .expect("http server");
        let process = lab
            .spawn(
                &role,
                &[
                    "keepalived",
                    "-n",
                    "-l",
                    "-D",
                    "-P",
                    "-f",
                    &conf.display().to_string(),
                    "-p",
                    &file("keepalived.pid"),
                    "-r",
                    &file("vrrp.pid"),
                    "-c",
                    &file("checkers.pid"),
                ],
            )
            .expect("keepalived");
        Keepalived {
            process: Some(process),
            _http: http,
            role,
        }
    }

    /// Whether keepalived has put the VIP on its interface (it is master).
    fn holds_vip(&self, lab: &Lab) -> bool {
        lab.exec_ok(&self.role, &["ip", "-4", "addr", "show", "dev", "eth0"])
            .is_ok_and(|o| o.contains(&format!("{}/32", vip())))
    }

    fn log(&self) -> String {
        self.process.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    fn signal(&self, sig: i32) {
        if let Some(p) = &self.process {
            if let Ok(pid) = i32::try_from(p.pid()) {
                // SAFETY: signalling a child we spawned and have not reaped.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }
}

fn signal(vipd: &Vipd, sig: i32) {
    if let Some(pid) = vipd
        .process
        .as_ref()
        .and_then(|p| i32::try_from(p.pid()).ok())
    {
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(pid, sig) };
    }
}

/// One outage the prober saw.
#[derive(Debug)]
struct Outage {
    /// When it began, from the prober's start.
    at_ms: u64,
    ms: u64,
    /// How much of it the host kept every vCPU of the machine from running.
    frozen_ms: u64,
}

impl Outage {
    /// The part of the outage the lab was running for.
    fn running_ms(&self) -> u64 {
        self.ms.saturating_sub(self.frozen_ms)
    }
}

/// Result of one prober run.
#[derive(Debug)]
struct Gap {
    outages: Vec<Outage>,
    tail_ms: u64,
    ok: u64,
}

impl Gap {
    /// The longest outage, wall clock.
    fn max_gap_ms(&self) -> u64 {
        self.outages.iter().map(|o| o.ms).max().unwrap_or(0)
    }

    /// The outage longest while the machine ran: what the failover itself
    /// cost the client.
    fn worst(&self) -> Option<&Outage> {
        self.outages.iter().max_by_key(|o| o.running_ms())
    }
}

/// Runs a UDP echo server for the prober in each role (kept for the lab's
/// lifetime).
fn udp_echo(lab: &Lab, roles: &[&str]) {
    for role in roles {
        lab.spawn(
            role,
            &["/usr/bin/python3", "-c", UDP_ECHO, &PROBE_PORT.to_string()],
        )
        .map(LabProcess::detach)
        .expect("UDP echo server");
    }
}

/// Starts the prober, waits for its first success, runs `fail`, and returns
/// the longest outage the client saw.
fn measure(lab: &VrrpLab, fail: impl FnOnce()) -> Gap {
    assert!(
        matches!(lab.turn, Turn::Alone { .. }),
        "failover is measured only in a lab from lab2_alone"
    );
    // The prober stops 2 s after the failure: long enough to see the
    // client recover, short enough that a host freeze rarely falls inside.
    let stop = lab.dir().join("prober.stop");
    let _ = std::fs::remove_file(&stop);
    let prober = lab
        .spawn(
            "client",
            &[
                "/usr/bin/python3",
                "-c",
                PROBER,
                &vip().to_string(),
                &PROBE_PORT.to_string(),
                "8",
                stop.to_str().expect("lab paths are UTF-8"),
            ],
        )
        .expect("prober");
    // Successes before the failure give the gap its start; a loaded machine
    // may take a while to start python, so the prober runs long enough.
    lab.wait_until("ten successful probes", Duration::from_secs(6), || {
        prober.log().contains("warm")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", prober.log()));
    fail();
    std::fs::write(&stop, b"").expect("writing the prober's stop file");
    let mut prober = prober;
    lab.wait_until("prober finishes", Duration::from_secs(15), || {
        !prober.is_running()
    })
    .expect("prober exits");
    let log = prober.log();
    let line = log.lines().last().unwrap_or_default();
    let v: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("prober output {log:?}: {e}"));
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    let outages: Vec<Outage> = v["outages"]
        .as_array()
        .unwrap_or_else(|| panic!("prober output without outages: {log:?}"))
        .iter()
        .map(|o| Outage {
            at_ms: n(o, "at_ms"),
            ms: n(o, "ms"),
            frozen_ms: n(o, "frozen_ms"),
        })
        .collect();
    Gap {
        outages,
        tail_ms: n(&v, "tail_ms"),
        ok: n(&v, "ok"),
    }
}

fn assert_gap(what: &str, gap: &Gap, limit_ms: u64) {
    let (worst, frozen, at) = gap
        .worst()
        .map_or((0, 0, 0), |o| (o.running_ms(), o.frozen_ms, o.at_ms));
    println!(
        "failover {what}: {worst} ms (limit {limit_ms} ms){}",
        if frozen > 0 {
            format!("; the host froze the machine for {frozen} ms more inside it")
        } else {
            String::new()
        }
    );
    assert!(
        gap.tail_ms < 500 && gap.ok > 0,
        "{what}: the client never recovered: {gap:?}"
    );
    assert!(
        worst <= limit_ms,
        "{what}: the client saw a {worst} ms outage while the machine ran, {at} ms into the probe run, limit {limit_ms} ms ({gap:?})"
    );
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Whether `bridge fdb show dev eth0` on `role` lists the virtual MAC (in
/// the interface's unicast filter).
fn vmac_in_fdb(lab: &Lab, role: &str) -> bool {
    lab.exec_ok(role, &["bridge", "fdb", "show", "dev", "eth0"])
        .unwrap_or_else(|e| panic!("bridge fdb show on {role}: {e}"))
        .contains(VMAC)
}

/// Starts tcpdump on `role`'s eth0, printing link-level and IP header
/// detail of VRRP packets, and waits until it listens.
fn sniff_vrrp(lab: &Lab, role: &str) -> LabProcess {
    let sniff = lab
        .spawn(
            role,
            &[
                "tcpdump",
                "-l",
                "-n",
                "-e",
                "-v",
                "-i",
                "eth0",
                "ip proto 112",
            ],
        )
        .expect("tcpdump");
    lab.wait_until("tcpdump listens", Duration::from_secs(5), || {
        sniff.log().contains("listening on")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", sniff.log()));
    sniff
}

/// Whether tcpdump saw an advert from `src` to `dst` sent from the virtual
/// MAC to `dst_mac`, TTL 255, DF off. With `-e -v` the first line of a
/// packet has the MACs and IP header fields, the next one the addresses.
fn saw_vmac_advert(sniff: &LabProcess, src: Ipv4Addr, dst: Ipv4Addr, dst_mac: &str) -> bool {
    let log = sniff.log();
    let lines: Vec<&str> = log.lines().collect();
    lines.windows(2).any(|w| {
        w[0].contains(&format!("{VMAC} > {dst_mac}, ethertype IPv4"))
            && w[0].contains("ttl 255")
            && w[0].contains("flags [none]")
            && w[0].contains("proto VRRP (112)")
            && w[1]
                .trim_start()
                .starts_with(&format!("{src} > {dst}: VRRP"))
    })
}

/// vipd (priority 150, lb1) against keepalived (100, lb2): vipd is master,
/// loses the VIP to keepalived while its link is down, preempts back after.
/// vipd's adverts leave from the virtual MAC, which sits in eth0's unicast
/// filter while vipd runs.
fn vipd_master_over_keepalived(version: u8, interval_ms: u64) {
    let lab = lab2(&format!("kav{version}"));
    let notify_log = lab.dir().join("notify.log");
    let notify = lab.dir().join("notify.sh");
    std::fs::write(
        &notify,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", notify_log.display()),
    )
    .expect("notify script");
    lab.exec_ok("lb1", &["chmod", "+x", &notify.display().to_string()])
        .expect("chmod");
    let ka = Keepalived::start(&lab, 2, version, interval_ms, 100, "");
    assert!(
        !vmac_in_fdb(&lab, "lb1"),
        "virtual MAC in lb1's fdb before vipd"
    );
    let sniff = sniff_vrrp(&lab, "client");
    let mut vipd = start_vipd(
        &lab,
        1,
        &format!(
            "{}notify = \"{}\"\n",
            vrrp_keys(version, interval_ms, 150),
            notify.display()
        ),
    );
    let mdi = Duration::from_millis(interval_ms * 4 + 2000);
    wait_state(&lab, &vipd, "master", mdi * 2);
    wait_server(&lab, "vipd's backends serve the VIP", mdi, is_backend);
    lab.wait_until("keepalived backs off", mdi, || !ka.holds_vip(&lab))
        .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));
    assert!(counter(&vipd, |c| c.adverts_sent) > 0);
    let lb1 = lab.lb_ip(1, Side::Client);
    lab.wait_until("an advert from the virtual MAC", mdi, || {
        saw_vmac_advert(
            &sniff,
            lb1,
            "224.0.0.18".parse().unwrap(),
            "01:00:5e:00:00:12",
        )
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", sniff.log()));
    assert!(vmac_in_fdb(&lab, "lb1"), "virtual MAC not in lb1's fdb");

    lab.link_down("lb1", "eth0").expect("link down");
    wait_server(&lab, "keepalived serves the VIP", mdi, |s| {
        s == "keepalived-lb2"
    });
    wait_state(&lab, &vipd, "fault", mdi);

    lab.link_up("lb1", "eth0").expect("link up");
    wait_state(&lab, &vipd, "master", mdi * 2);
    wait_server(&lab, "vipd serves the VIP again", mdi, is_backend);
    lab.wait_until("keepalived backs off again", mdi, || !ka.holds_vip(&lab))
        .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));

    let notes = std::fs::read_to_string(&notify_log).unwrap_or_default();
    for line in [
        "vi backup master 150",
        "vi master fault 150",
        "vi fault backup 150",
    ] {
        assert!(notes.contains(line), "notify log lacks {line:?}:\n{notes}");
    }
    let inst = instance(&vipd);
    assert!(
        inst.transitions.len() >= 5,
        "expected init→backup→master→fault→backup→master: {inst:?}"
    );
    assert_eq!(inst.counters.became_master, 2, "{inst:?}");

    vipd.terminate(&lab).expect("vipd stops");
    assert!(
        !vmac_in_fdb(&lab, "lb1"),
        "virtual MAC left in lb1's fdb after vipd stopped:\n{}",
        vipd.log()
    );
}

#[test]
fn vipd_master_over_keepalived_v3() {
    vipd_master_over_keepalived(3, 100);
}

#[test]
fn vipd_master_over_keepalived_v2() {
    vipd_master_over_keepalived(2, 1000);
}

/// keepalived (150) is master; vipd (100) stays backup and takes over only
/// when keepalived's link goes down.
#[test]
fn vipd_backup_to_keepalived() {
    let lab = lab2("kaback");
    let ka = Keepalived::start(&lab, 2, 3, 100, 150, "");
    let vipd = start_vipd(&lab, 1, &vrrp_keys(3, 100, 100));
    lab.wait_until("keepalived is master", Duration::from_secs(5), || {
        ka.holds_vip(&lab)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));
    wait_server(&lab, "keepalived serves", Duration::from_secs(10), |s| {
        s == "keepalived-lb2"
    });
    wait_state(&lab, &vipd, "backup", Duration::from_secs(2));
    // Ten advert intervals: vipd hears keepalived and stays backup.
    let heard = counter(&vipd, |c| c.adverts_received);
    lab.wait_until(
        "ten more adverts from keepalived",
        Duration::from_secs(3),
        || counter(&vipd, |c| c.adverts_received) >= heard + 10,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", instance(&vipd)));
    assert_eq!(
        counter(&vipd, |c| c.became_master),
        0,
        "{:?}",
        instance(&vipd)
    );
    assert_eq!(state(&vipd), "backup");

    lab.link_down("lb2", "eth0").expect("link down");
    wait_state(&lab, &vipd, "master", Duration::from_secs(2));
    wait_server(&lab, "vipd serves", Duration::from_secs(10), is_backend);
}

/// Two vipd nodes at 100 ms v3 adverts: failover measured from the client
/// for a link failure, a SIGKILL and a SIGTERM of the master.
#[test]
fn two_vipd_nodes_failover() {
    let lab = lab2_alone("vv");
    udp_echo(&lab, &["be1", "be2"]);
    let mut lb1 = start_vipd(&lab, 1, &vrrp_keys(3, 100, 250));
    let lb2 = start_vipd(&lab, 2, &vrrp_keys(3, 100, 200));
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    wait_server(&lab, "the VIP answers", Duration::from_secs(10), is_backend);

    let link = measure(&lab, || lab.link_down("lb1", "eth0").expect("link down"));
    assert_eq!(state(&lb2), "master");
    lab.link_up("lb1", "eth0").expect("link up");
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));

    let kill = measure(&lab, || signal(&lb1, libc::SIGKILL));
    assert_eq!(state(&lb2), "master");
    lb1.process.take();
    lb1 = start_vipd(&lab, 1, &vrrp_keys(3, 100, 250));
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));

    let zero_before = counter(&lb2, |c| c.priority_zero_received);
    let term = measure(&lab, || signal(&lb1, libc::SIGTERM));
    assert_eq!(state(&lb2), "master");
    assert!(
        counter(&lb2, |c| c.priority_zero_received) > zero_before,
        "no priority-0 advert on SIGTERM: {:?}",
        instance(&lb2)
    );
    println!("vipd, v3 100 ms adverts, priorities 250/200:");
    assert_gap("vipd link down", &link, 400);
    assert_gap("vipd SIGKILL", &kill, 400);
    assert_gap("vipd SIGTERM", &term, 150);
}

/// The same measurement between two keepalived nodes, for comparison only.
#[test]
fn two_keepalived_nodes_failover_reference() {
    let lab = lab2_alone("kk");
    udp_echo(&lab, &["lb1", "lb2"]);
    let lb1 = Keepalived::start(&lab, 1, 3, 100, 250, "");
    let lb2 = Keepalived::start(&lab, 2, 3, 100, 200, "");
    wait_server(
        &lab,
        "keepalived lb1 serves",
        Duration::from_secs(10),
        |s| s == "keepalived-lb1",
    );
    let link = measure(&lab, || lab.link_down("lb1", "eth0").expect("link down"));
    assert!(lb2.holds_vip(&lab), "{}", lb2.log());
    lab.link_up("lb1", "eth0").expect("link up");
    wait_server(
        &lab,
        "keepalived lb1 serves again",
        Duration::from_secs(10),
        |s| s == "keepalived-lb1",
    );
    let term = measure(&lab, || lb1.signal(libc::SIGTERM));
    println!(
        "keepalived, v3 100 ms adverts, priorities 250/200: link down {} ms, SIGTERM {} ms (not asserted)",
        link.max_gap_ms(), term.max_gap_ms()
    );
    assert!(
        link.ok > 0 && term.ok > 0,
        "prober saw nothing: {link:?} {term:?}"
    );
}

/// A track script with weight −60 watches a process; when it dies vipd's
/// priority drops from 150 to 90 and keepalived (100) takes over; when it
/// is back vipd preempts.
#[test]
fn track_script_moves_mastership() {
    let lab = lab2("track");
    let pidfile = lab.dir().join("tracked.pid");
    let tracked = lab
        .spawn("lb1", &["sleep", "600"])
        .expect("tracked process");
    std::fs::write(&pidfile, tracked.pid().to_string()).expect("pid file");
    let check = format!("kill -0 $(cat {})", pidfile.display());
    let ka = Keepalived::start(&lab, 2, 3, 100, 100, "");
    let vipd = start_vipd(
        &lab,
        1,
        &format!(
            "{}[[vrrp.track_script]]\nname = \"lbproc\"\ncommand = [\"/bin/sh\", \"-c\", \"{check}\"]\ninterval_ms = 100\nweight = -60\n",
            vrrp_keys(3, 100, 150)
        ),
    );
    wait_state(&lab, &vipd, "master", Duration::from_secs(3));
    wait_server(&lab, "vipd serves", Duration::from_secs(10), is_backend);

    drop(tracked);
    lab.wait_until("priority drops to 90", Duration::from_secs(3), || {
        instance(&vipd).priority == 90
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", instance(&vipd)));
    wait_state(&lab, &vipd, "backup", Duration::from_secs(3));
    wait_server(&lab, "keepalived serves", Duration::from_secs(10), |s| {
        s == "keepalived-lb2"
    });

    let again = lab
        .spawn("lb1", &["sleep", "600"])
        .expect("tracked process");
    std::fs::write(&pidfile, again.pid().to_string()).expect("pid file");
    wait_state(&lab, &vipd, "master", Duration::from_secs(3));
    wait_server(
        &lab,
        "vipd serves again",
        Duration::from_secs(10),
        is_backend,
    );
    lab.wait_until("keepalived backs off", Duration::from_secs(3), || {
        !ka.holds_vip(&lab)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));
}

/// With preempt off, a higher-priority vipd joining a live keepalived
/// master stays backup; with a preempt delay it takes over only after it.
#[test]
fn nopreempt_and_preempt_delay() {
    let lab = lab2("preempt");
    let ka = Keepalived::start(&lab, 2, 3, 100, 100, "");
    lab.wait_until("keepalived is master", Duration::from_secs(5), || {
        ka.holds_vip(&lab)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));

    let mut vipd = start_vipd(
        &lab,
        1,
        &format!("{}preempt = false\n", vrrp_keys(3, 100, 150)),
    );
    wait_state(&lab, &vipd, "backup", Duration::from_secs(2));
    let heard = counter(&vipd, |c| c.adverts_received);
    lab.wait_until(
        "ten adverts from the lower-priority master",
        Duration::from_secs(3),
        || counter(&vipd, |c| c.adverts_received) >= heard + 10,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", instance(&vipd)));
    assert_eq!(state(&vipd), "backup", "{:?}", instance(&vipd));
    assert!(ka.holds_vip(&lab));
    vipd.terminate(&lab).expect("vipd stops");

    let vipd = start_vipd(
        &lab,
        1,
        &format!("{}preempt_delay_ms = 1500\n", vrrp_keys(3, 100, 150)),
    );
    wait_state(&lab, &vipd, "master", Duration::from_secs(5));
    let inst = instance(&vipd);
    let at = |to: &str| {
        inst.transitions
            .iter()
            .find(|x| x.to == to)
            .map(|x| x.unix_ms)
            .unwrap_or_else(|| panic!("no transition to {to}: {inst:?}"))
    };
    let waited = at("master") - at("backup");
    println!("preempt_delay 1500 ms: master after {waited} ms in backup");
    assert!(
        (1500..2500).contains(&waited),
        "took over {waited} ms after entering backup, expected 1500 ms + up to a master-down interval: {inst:?}"
    );
    wait_server(&lab, "vipd serves", Duration::from_secs(10), is_backend);
}

/// Adverts from lb1 are dropped on the switch, so lb2 also becomes master;
/// when the drop is lifted exactly one master remains and it announces the
/// VIP again with gratuitous ARP.
#[test]
fn split_brain_heals() {
    let lab = lab2("split");
    let lb1 = start_vipd(&lab, 1, &vrrp_keys(3, 100, 150));
    let lb2 = start_vipd(&lab, 2, &vrrp_keys(3, 100, 100));
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    let nft = |rules: &str| {
        lab.exec_ok("sw", &["nft", rules])
            .unwrap_or_else(|e| panic!("nft {rules}: {e}"))
    };
    nft("add table bridge vrrpsplit");
    nft("add chain bridge vrrpsplit filt { type filter hook forward priority 0; }");
    nft("add rule bridge vrrpsplit filt iifname \"lb1c\" ip protocol 112 drop");
    wait_state(&lab, &lb2, "master", Duration::from_secs(3));
    assert_eq!(state(&lb1), "master", "split brain: both masters");

    let sniff = lab
        .spawn(
            "client",
            &["tcpdump", "-l", "-n", "-e", "-tt", "-i", "eth0", "arp"],
        )
        .expect("tcpdump");
    lab.wait_until("tcpdump listens", Duration::from_secs(5), || {
        sniff.log().contains("listening on")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", sniff.log()));
    let lifted_ms = unix_ms_now();
    nft("delete table bridge vrrpsplit");
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    assert_eq!(state(&lb1), "master");
    let garp_after_lift = || {
        sniff.log().lines().any(|l| {
            let ts = l
                .split_whitespace()
                .next()
                .and_then(|t| t.parse::<f64>().ok())
                .map(|t| (t * 1000.0) as u64)
                .unwrap_or(0);
            ts >= lifted_ms
                && l.contains(VMAC)
                && l.contains(&format!("who-has {} tell {}", vip(), vip()))
        })
    };
    lab.wait_until(
        "a gratuitous ARP after the split",
        Duration::from_secs(3),
        garp_after_lift,
    )
    .unwrap_or_else(|e| panic!("{e}:\n{}", sniff.log()));
    // Still exactly one master a few intervals later.
    let sent = counter(&lb1, |c| c.adverts_sent);
    lab.wait_until("five more adverts", Duration::from_secs(3), || {
        counter(&lb1, |c| c.adverts_sent) >= sent + 5
    })
    .expect("adverts flow");
    assert_eq!(
        (state(&lb1), state(&lb2)),
        ("master".into(), "backup".into())
    );
    wait_server(&lab, "the VIP answers", Duration::from_secs(10), is_backend);
}

/// Forged adverts from the client are counted under their reason and change
/// nothing, even a flood of 10000.
#[test]
fn hostile_adverts_are_counted() {
    let lab = lab2("hostvr");
    let lb1 = start_vipd(&lab, 1, &vrrp_keys(3, 100, 150));
    let lb2 = start_vipd(&lab, 2, &vrrp_keys(3, 100, 100));
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    let before = instance(&lb1);
    let backup_before = instance(&lb2);
    let client_mac = mac_of(&lab, "client", "eth0").expect("mac");
    lab.exec_ok(
        "client",
        &[
            "/usr/bin/python3",
            "-c",
            HOSTILE,
            &vip().to_string(),
            &client_mac,
            "flood",
        ],
    )
    .expect("scapy sends hostile adverts");
    lab.wait_until("the flood is counted", Duration::from_secs(5), || {
        let now = instance(&lb1);
        // A loaded machine may drop part of the flood in the socket buffer
        // before vipd reads it; what arrives must be counted.
        now.counters.checksum_errors >= before.counters.checksum_errors + 5000
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", instance(&lb1)));
    let after = instance(&lb1);
    let counted: [(&str, Read, u64); 4] = [
        ("ttl_errors", |c| c.ttl_errors, 5),
        ("other_vrid", |c| c.other_vrid, 5),
        ("truncated", |c| c.truncated, 5),
        ("false_owner", |c| c.false_owner, 5),
    ];
    for (k, read, n) in counted {
        assert_eq!(
            read(&after.counters) - read(&before.counters),
            n,
            "{k}: {after:?}"
        );
    }
    let flood = after.counters.checksum_errors - before.counters.checksum_errors;
    println!("flood: {flood} of 10005 bad-checksum adverts counted");
    assert!(flood <= 10005, "{after:?}");
    for (node, was, now) in [
        (&lb1, &before, &after),
        (&lb2, &backup_before, &instance(&lb2)),
    ] {
        assert_eq!(now.state, was.state, "{now:?}");
        assert_eq!(
            now.counters.became_master,
            was.counters.became_master,
            "{now:?}\n{}",
            node.log()
        );
    }
    wait_server(
        &lab,
        "the VIP still answers",
        Duration::from_secs(10),
        is_backend,
    );
}

/// Adverts to unicast peers instead of the multicast group: the backup
/// hears the master and takes over when it stops. Once the kernel has
/// resolved the peer, adverts go to its MAC from the virtual MAC.
#[test]
fn unicast_peers_instead_of_multicast() {
    let lab = lab2("unicast");
    let sniff = sniff_vrrp(&lab, "lb2");
    let lb2_mac = lab
        .exec_ok("lb2", &["cat", "/sys/class/net/eth0/address"])
        .expect("lb2's MAC")
        .trim()
        .to_string();
    let peer = |k: usize| format!("unicast_peers = [\"10.77.0.{}\"]\n", 10 + k);
    let mut lb1 = start_vipd(&lab, 1, &format!("{}{}", vrrp_keys(3, 100, 150), peer(2)));
    let lb2 = start_vipd(&lab, 2, &format!("{}{}", vrrp_keys(3, 100, 100), peer(1)));
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    let heard = counter(&lb2, |c| c.adverts_received);
    lab.wait_until(
        "the backup hears unicast adverts",
        Duration::from_secs(3),
        || counter(&lb2, |c| c.adverts_received) >= heard + 10,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", instance(&lb2)));
    assert_eq!(
        counter(&lb2, |c| c.became_master),
        0,
        "{:?}",
        instance(&lb2)
    );
    let (ip1, ip2) = (lab.lb_ip(1, Side::Client), lab.lb_ip(2, Side::Client));
    lab.wait_until(
        "a unicast advert from the virtual MAC",
        Duration::from_secs(3),
        || saw_vmac_advert(&sniff, ip1, ip2, &lb2_mac),
    )
    .unwrap_or_else(|e| panic!("{e}:\n{}", sniff.log()));
    lb1.terminate(&lab).expect("lb1 stops");
    wait_state(&lab, &lb2, "master", Duration::from_secs(2));
    assert!(
        counter(&lb2, |c| c.priority_zero_received) > 0,
        "{:?}",
        instance(&lb2)
    );
    wait_server(&lab, "lb2 serves", Duration::from_secs(10), is_backend);
}

/// The box is up but its dataplane is stuck: the VRRP instance notices the
/// workers' heartbeat stop, gives up mastership, and takes it back when the
/// workers run again.
#[test]
fn stalled_dataplane_gives_up_mastership() {
    let lab = lab2("stall");
    let lb1 = start_vipd(&lab, 1, &vrrp_keys(3, 100, 150));
    let lb2 = start_vipd(&lab, 2, &vrrp_keys(3, 100, 100));
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    let release = lab.dir().join("release");
    let pid = lb1
        .process
        .as_ref()
        .map(|p| p.pid().to_string())
        .unwrap_or_default();
    let mut freezer = lab
        .spawn(
            "lb1",
            &[
                "/usr/bin/python3",
                "-c",
                FREEZE_WORKERS,
                &pid,
                &release.display().to_string(),
            ],
        )
        .expect("freezer");
    lab.wait_until("workers frozen", Duration::from_secs(5), || {
        freezer.log().contains("frozen")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", freezer.log()));
    // The liveness limit is 3 s.
    wait_state(&lab, &lb1, "fault", Duration::from_secs(6));
    wait_state(&lab, &lb2, "master", Duration::from_secs(2));
    wait_server(&lab, "lb2 serves", Duration::from_secs(10), is_backend);

    std::fs::write(&release, "").expect("release file");
    lab.wait_until("workers released", Duration::from_secs(5), || {
        !freezer.is_running()
    })
    .expect("freezer exits");
    assert!(freezer.log().contains("released"), "{}", freezer.log());
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    wait_server(
        &lab,
        "lb1 serves again",
        Duration::from_secs(10),
        is_backend,
    );
}

/// Dual master: two nodes, two instances, each node master of one VIP and
/// backup of the other, so neither box idles; one node fails and the other
/// serves both VIPs; it returns and takes its own VIP back.
#[test]
fn two_nodes_each_master_of_one_vip() {
    let lab = lab2("dual");
    let vips = [lab::vip(1), lab::vip(2)];
    let config = |k: usize| {
        let services: Vec<ServiceConf> = vips
            .iter()
            .map(|&vip| ServiceConf {
                vip,
                port: SERVICE_PORT,
                scheduler: "rr",
                forward: "fullnat",
                weights: vec![1, 1],
                check: http_check(200, 1, 2),
                extra: format!("snat = [\"10.77.1.{}\"]", 200 + k),
            })
            .collect();
        let mut out = node_config(&lab, &format!("lb{k}"), 1, "", &services);
        for (i, (name, vip)) in ["a", "b"].iter().zip(vips).enumerate() {
            // lb1 leads instance a, lb2 leads instance b.
            let priority = if i + 1 == k { 150 } else { 100 };
            out += &format!(
                "[[vrrp]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {}\nvips = [\"{vip}\"]\n{}\n",
                61 + i,
                vrrp_keys(3, 100, priority)
            );
        }
        out
    };
    let states = |v: &Vipd| -> Vec<String> {
        let r: reply::Vrrp = v.call(Command::Vrrp {}).unwrap_or_default();
        ["a", "b"]
            .iter()
            .map(|n| {
                r.instances
                    .iter()
                    .find(|i| i.name == *n)
                    .map(|i| i.state.clone())
                    .unwrap_or_default()
            })
            .collect()
    };
    let lb1 = Vipd::start(&lab, "lb1", &config(1)).expect("lb1 starts");
    let lb2 = Vipd::start(&lab, "lb2", &config(2)).expect("lb2 starts");
    let both = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
    lab.wait_until("lb1 leads a, lb2 leads b", Duration::from_secs(10), || {
        states(&lb1) == both("master", "backup") && states(&lb2) == both("backup", "master")
    })
    .unwrap_or_else(|e| panic!("{e}: {:?} {:?}", states(&lb1), states(&lb2)));
    let serves = |vip: Ipv4Addr| {
        lab.http_get(
            "client",
            SocketAddrV4::new(vip, SERVICE_PORT),
            Duration::from_secs(1),
        )
        .is_ok_and(|b| is_backend(b.trim()))
    };
    for (vip, vrid) in vips.iter().zip([61u8, 62]) {
        lab.wait_until(&format!("{vip} answers"), Duration::from_secs(10), || {
            serves(*vip)
        })
        .expect("both VIPs answer");
        let vmac = format!("00:00:5e:00:01:{vrid:02x}");
        assert_eq!(
            client_neighbour(&lab, *vip).as_deref(),
            Some(vmac.as_str()),
            "{vip}"
        );
    }

    lab.link_down("lb1", "eth0").expect("link down");
    lab.wait_until("lb2 leads both", Duration::from_secs(5), || {
        states(&lb2) == both("master", "master")
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", states(&lb2)));
    for vip in vips {
        lab.wait_until(
            &format!("{vip} answers through lb2"),
            Duration::from_secs(5),
            || serves(vip),
        )
        .expect("lb2 serves both");
    }
    lab.link_up("lb1", "eth0").expect("link up");
    lab.wait_until("lb1 takes a back", Duration::from_secs(10), || {
        states(&lb1) == both("master", "backup") && states(&lb2) == both("backup", "master")
    })
    .unwrap_or_else(|e| panic!("{e}: {:?} {:?}", states(&lb1), states(&lb2)));
    for vip in vips {
        lab.wait_until(
            &format!("{vip} answers again"),
            Duration::from_secs(5),
            || serves(vip),
        )
        .expect("both VIPs answer after preemption");
    }
}

/// Metrics listener of each vipd node (each in its own namespace).
const METRICS: &str = "127.0.0.1:9100";

fn metric(m: &std::collections::HashMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no series {series} in /metrics: {m:?}"))
}

#[test]
fn operator_handover_keeps_the_vip_and_comes_back() {
    let lab = lab2_alone("ho");
    udp_echo(&lab, &["be1", "be2"]);
    let start = |k: usize, prio: u8| {
        let role = format!("lb{k}");
        let conf = vipd_config(&lab, k, &vrrp_keys(3, 100, prio)).replace(
            "[control]\n",
            &format!("[control]\nmetrics = \"{METRICS}\"\n"),
        );
        let vipd = Vipd::start(&lab, &role, &conf).expect("vipd starts");
        lab.wait_until("backends healthy", Duration::from_secs(20), || {
            vipd.healthy_backends() == 4
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
        vipd
    };
    let lb1 = start(1, 250);
    let lb2 = start(2, 200);
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    wait_server(&lab, "the VIP answers", Duration::from_secs(10), is_backend);

    let err = vipctl_json::<reply::Handover>(&lb2.socket, &["vrrp", "handover", "vi"])
        .expect_err("backup refuses");
    assert!(err.contains("not master"), "{err}");
    let err = vipctl_json::<reply::Handover>(&lb1.socket, &["vrrp", "handover", "nope"])
        .expect_err("unknown instance");
    assert!(err.contains("configured: vi"), "{err}");

    let mut handover = reply::Handover::default();
    let gap = measure(&lab, || {
        handover = vipctl_json(&lb1.socket, &["vrrp", "handover", "vi", "--timeout", "5"])
            .expect("handover");
        // Right away: over the prober's seconds a host freeze longer than
        // the master-down interval would rightly let the held lb1 take over.
        assert_eq!(state(&lb2), "master");
        assert_eq!(state(&lb1), "backup");
    });
    println!("handover: {handover:?}");
    assert!(handover.peer_took_over, "{handover:?}");
    assert_eq!(
        handover.new_master.as_deref(),
        Some(instance(&lb2).address.as_str()),
        "{handover:?}"
    );
    let ms = handover.switch_over_ms.expect("switch-over time");
    assert!(ms > 0.0 && ms < 1000.0, "switch-over {ms} ms");
    assert!(handover.held);
    assert_gap("operator handover", &gap, 150);

    // Held: lb1 does not preempt although its priority is higher.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(state(&lb1), "backup", "{:?}", instance(&lb1));
    let before = vrrp_instance(&lb1).expect("lb1 answers");
    let m = scrape_metrics(&lab, "lb1", METRICS);
    let after = vrrp_instance(&lb1).expect("lb1 answers");
    let l = |name: &str| format!("{name}{{instance=\"vi\"}}");
    assert_eq!(
        metric(&m, "vipd_vrrp_state{instance=\"vi\",state=\"backup\"}"),
        1.0
    );
    assert_eq!(
        metric(&m, "vipd_vrrp_state{instance=\"vi\",state=\"master\"}"),
        0.0
    );
    assert_eq!(metric(&m, &l("vipd_vrrp_held")), 1.0);
    assert_eq!(metric(&m, &l("vipd_vrrp_priority")), 250.0);
    let transitions = after.transitions.len() as f64;
    assert_eq!(metric(&m, &l("vipd_vrrp_transitions_total")), transitions);
    assert_eq!(
        metric(&m, &l("vipd_vrrp_adverts_sent_total")),
        after.counters.adverts_sent as f64,
        "a held backup sends nothing"
    );
    let received = metric(&m, &l("vipd_vrrp_adverts_received_total"));
    let lo = before.counters.adverts_received as f64;
    let hi = after.counters.adverts_received as f64;
    assert!(
        lo <= received && received <= hi,
        "{lo} <= {received} <= {hi}"
    );
    assert!(received > 0.0);
    let m2 = scrape_metrics(&lab, "lb2", METRICS);
    assert_eq!(
        metric(&m2, "vipd_vrrp_state{instance=\"vi\",state=\"master\"}"),
        1.0
    );
    assert_eq!(metric(&m2, &l("vipd_vrrp_held")), 0.0);

    let released: reply::Release =
        vipctl_json(&lb1.socket, &["vrrp", "release", "vi"]).expect("release");
    assert!(released.was_held, "{released:?}");
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));

    let mut handover = reply::Handover::default();
    let gap = measure(&lab, || {
        handover = vipctl_json(
            &lb1.socket,
            &["vrrp", "handover", "vi", "--back", "--timeout", "5"],
        )
        .expect("handover --back");
    });
    println!("handover --back: {handover:?}");
    // lb1's gratuitous ARPs reached lb2 and got no answer: an answer from
    // the virtual MAC would pull the VIP's traffic back to lb2. They are
    // ignored, not dropped.
    let stats: reply::Stats = lb2.call(Command::Stats {}).expect("stats");
    assert!(
        stats
            .ignored
            .get("arp_announcement")
            .is_some_and(|n| *n > 0),
        "{stats:?}"
    );
    assert!(!stats.drops.contains_key("arp_announcement"), "{stats:?}");
    assert!(handover.peer_took_over, "{handover:?}");
    let back = handover.back.as_ref();
    assert!(back.is_some_and(|b| b.master_again), "{handover:?}");
    assert!(back.and_then(|b| b.after_ms).is_some_and(|t| t > 0.0));
    assert!(!handover.held);
    assert_eq!(state(&lb1), "master");
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    assert!(!instance(&lb1).held);
    assert_gap("operator handover and back", &gap, 150);
}
