//! End to end: `vipctl` against a running vipd in a namespace lab. Every
//! verb in human and JSON form; run-time backend edits and reloads under
//! traffic without dropping flows; the metrics endpoint; the control socket's
//! permissions and its behaviour under garbage and many clients (hostile
//! clients: `e2e_ctl_hostile`).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddrV4;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use control::ctl::human::Rates;
use ctlproto::{reply, Reply};
use serde::de::DeserializeOwned;
use viplab::Lab;

const ECHO_PORT: u16 = 9000;

/// The socket test hammers the control plane on purpose; the traffic test
/// counts every timed-out request as a failure, so they take turns on a
/// two-core machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
const METRICS: &str = "127.0.0.1:9100";

/// Holds one connection: asks once, waits for the flag file, asks 3 more
/// times; prints each answer as it comes.
const LONG: &str = r#"
import os, socket, sys, time
addr, flag = (sys.argv[1], int(sys.argv[2])), sys.argv[3]
s = socket.create_connection(addr, timeout=5); f = s.makefile("rwb")
def ask():
    f.write(b"x\n"); f.flush(); return f.readline().decode().strip() or "EOF"
print("first", ask(), flush=True)
while not os.path.exists(flag):
    time.sleep(0.02)
for _ in range(3):
    print("after", ask(), flush=True)
print("done", flush=True)
"#;

/// `n` short connections, one question each; prints the names as JSON.
const SHORT: &str = r#"
import json, socket, sys
addr, n = (sys.argv[1], int(sys.argv[2])), int(sys.argv[3])
names = []
for _ in range(n):
    s = socket.create_connection(addr, timeout=3); f = s.makefile("rwb")
    f.write(b"x\n"); f.flush(); names.append(f.readline().decode().strip()); s.close()
print(json.dumps(names))
"#;

/// Runs a verb in both forms; returns the human text and the JSON reply.
fn both<R: DeserializeOwned>(socket: &Path, args: &[&str]) -> (String, R) {
    let (ok, human, err) = vipctl_run(socket, args);
    assert!(ok, "vipctl {args:?} failed: {err}");
    let v = vipctl_json(socket, args).unwrap_or_else(|e| panic!("vipctl --json {args:?}: {e}"));
    (human, v)
}

fn backend<'a>(v: &'a reply::Backends, service: &str, addr: &str) -> Option<&'a reply::Backend> {
    v.backends
        .iter()
        .find(|b| b.service == service && b.address == addr)
}

fn short_names(lab: &Lab, addr: SocketAddrV4, n: usize) -> Vec<String> {
    let out = lab
        .exec_ok(
            "client",
            &[
                "/usr/bin/python3",
                "-c",
                SHORT,
                &addr.ip().to_string(),
                &addr.port().to_string(),
                &n.to_string(),
            ],
        )
        .expect("short connections");
    serde_json::from_str(out.trim()).expect("names")
}

fn scrape(lab: &Lab) -> HashMap<String, f64> {
    scrape_metrics(lab, "lb1", METRICS)
}

#[test]
fn prometheus_reader_is_strict() {
    assert!(parse_prometheus("# TYPE a_total counter\na_total 1\n").is_ok());
    assert!(parse_prometheus("a_total 1\n").is_err());
    assert!(parse_prometheus("# TYPE a counter\na 1\n").is_err());
    assert!(parse_prometheus("# TYPE a gauge\na{x=\"1\" 1\n").is_err());
    assert!(parse_prometheus("# TYPE a gauge\na{x=\"1\"} one\n").is_err());
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn operator_verbs_change_a_running_node() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let vip = viplab::vip(5);
    let lab = nat_lab("ctl", 2, false);
    start_name_servers(&lab, 2, ECHO_PORT);
    let services = [
        ServiceConf {
            vip: vip.into(),
            port: SERVICE_PORT,
            scheduler: "wrr",
            forward: "nat",
            weights: vec![1, 1],
            check: http_check(200, 1, 2),
            extra: String::new(),
        },
        ServiceConf {
            vip: vip.into(),
            port: ECHO_PORT,
            scheduler: "rr",
            forward: "nat",
            weights: vec![1, 1],
            check: r#"{ kind = "tcp", interval_ms = 200, timeout_ms = 500, rise = 1, fall = 2 }"#
                .into(),
            extra: String::new(),
        },
    ];
    let config = node_config(&lab, "lb1", 1, "", &services).replace(
        "[control]\n",
        &format!("[control]\nmetrics = \"{METRICS}\"\n"),
    );
    let vipd = Vipd::start(&lab, "lb1", &config).expect("vipd starts");
    let sock = vipd.socket.clone();
    lab.wait_until("4 backends healthy", Duration::from_secs(20), || {
        vipd.healthy_backends() == 4
    })
    .expect("healthy");
    let web = SocketAddrV4::new(vip, SERVICE_PORT);
    let echo = SocketAddrV4::new(vip, ECHO_PORT);
    let be = |i: usize| SocketAddrV4::new(lab.backend_ip(i), SERVICE_PORT).to_string();
    let be_echo = |i: usize| SocketAddrV4::new(lab.backend_ip(i), ECHO_PORT).to_string();
    let before = scrape(&lab);
    let burst = lab.http_burst("client", web, 40, 4).expect("burst");
    assert_eq!(burst.failed, 0, "{burst:?}");

    // Read verbs, both forms.
    let (h, v) = both::<reply::Status>(&sock, &["status"]);
    assert_eq!(v.node, "lb1");
    assert!(
        h.contains("node lb1") && h.contains("svc1") && h.contains("2/2"),
        "{h}"
    );
    let (h, v) = both::<reply::Services>(&sock, &["services"]);
    assert_eq!(v.services[1].scheduler, "rr");
    assert_eq!(v.services[0].summary.vip, vip.to_string());
    assert!(
        h.contains("SCHED") && h.contains(&format!("{vip}:{ECHO_PORT}")),
        "{h}"
    );
    let (h, v) = both::<reply::Backends>(&sock, &["backends"]);
    assert_eq!(v.backends.len(), 4);
    let inactive: u64 = v
        .backends
        .iter()
        .filter(|b| b.service == "svc0")
        .map(|b| u64::from(b.active) + u64::from(b.inactive))
        .sum();
    assert!(
        inactive > 0,
        "the 40 closed connections should still be in the table: {v:?}"
    );
    assert!(
        h.contains("ACTIVE") && h.contains(&be(1)) && h.contains("up"),
        "{h}"
    );
    let (h, v) = both::<reply::Stats>(&sock, &["stats"]);
    let rx: u64 = v.cores.first().map_or(0, |c| c.rx_packets);
    assert!(rx > 0, "{v:?}");
    assert!(h.contains("RX PKTS"), "{h}");
    // The kernel's AF_XDP socket counts are read (the reply has every
    // field, or it would not read as `Stats`), and no descriptor the kernel
    // rejected.
    assert_eq!(v.afxdp.invalid_descs, 0, "{v:?}");
    assert!(
        h.contains("af_xdp sockets: ") && h.contains("rx_ring_full="),
        "{h}"
    );
    let (h, v) = both::<Rates>(&sock, &["stats", "--watch", "--count", "1"]);
    assert!(!v.cores.is_empty() && v.interval_s > 0.5, "{v:?}");
    assert!(h.contains("RX PPS"), "{h}");

    // Metrics: well formed, and the counters moved with the burst.
    let after = scrape(&lab);
    let rx_before = before.get("vipd_rx_packets_total").copied().unwrap_or(-1.0);
    let rx_after = after.get("vipd_rx_packets_total").copied().unwrap_or(-1.0);
    assert!(
        rx_before >= 0.0 && rx_after >= rx_before + 40.0,
        "rx {rx_before} -> {rx_after}"
    );
    let healthy_key = format!(
        "vipd_backend_healthy{{service=\"svc0\",backend=\"{}\"}}",
        be(1)
    );
    assert_eq!(after.get(&healthy_key), Some(&1.0), "{after:?}");
    for cause in ["ring_full", "no_frame"] {
        let key = format!("vipd_afxdp_rx_lost_total{{cause=\"{cause}\"}}");
        assert!(
            after.get(&key).is_some_and(|v| *v >= 0.0),
            "{key}: {after:?}"
        );
    }
    assert_eq!(
        after.get("vipd_afxdp_invalid_descriptors_total"),
        Some(&0.0),
        "{after:?}"
    );

    // A long-lived connection shows up in flows, and survives a drain.
    let flag = lab.dir().join("go1");
    let long = lab
        .spawn(
            "client",
            &[
                "/usr/bin/python3",
                "-c",
                LONG,
                &vip.to_string(),
                &ECHO_PORT.to_string(),
                flag.to_str().unwrap_or_default(),
            ],
        )
        .expect("long client");
    lab.wait_until("long connection answered", Duration::from_secs(10), || {
        long.log().contains("first be")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", long.log()));
    let first = long
        .log()
        .lines()
        .find_map(|l| l.strip_prefix("first ").map(str::to_string))
        .unwrap_or_default();
    let held = if first == "be1" { 1 } else { 2 };
    let client = lab.client_ip().to_string();
    let (h, v) = both::<reply::Flows>(&sock, &["flows", "--client", &client]);
    assert!(
        v.matches.iter().any(|m| m.destination == echo.to_string()
            && m.backend.as_deref() == Some(be_echo(held).as_str())
            && m.state == "ESTABLISHED"),
        "{v:?}"
    );
    assert!(
        h.contains(&echo.to_string()) && h.contains("ESTABLISHED"),
        "{h}"
    );
    let (h, v) = both::<reply::Flows>(&sock, &["flows"]);
    assert_eq!(
        v.top_clients.first().map(|c| c.client.as_str()),
        Some(client.as_str())
    );
    assert!(v.total >= 1);
    assert!(h.contains("TOP CLIENT") && h.contains(&client), "{h}");

    let (h, v) = both::<reply::BackendChange>(&sock, &["backend", "drain", "svc1", &be_echo(held)]);
    assert_eq!(v.address, be_echo(held));
    assert!(h.contains("Drain"), "{h}");
    let v: reply::Backends = vipd.call(ctlproto::Command::Backends {}).expect("backends");
    assert_eq!(
        backend(&v, "svc1", &be_echo(held)).map(|b| b.weight),
        Some(0)
    );
    let names = short_names(&lab, echo, 10);
    let other = format!("be{}", 3 - held);
    assert!(
        names.iter().all(|n| *n == other),
        "new connections must avoid the drained be{held}: {names:?}"
    );
    std::fs::write(&flag, b"").expect("flag");
    let mut long = long;
    lab.wait_until("long client done", Duration::from_secs(10), || {
        !long.is_running()
    })
    .expect("long done");
    let after: Vec<String> = long
        .log()
        .lines()
        .filter_map(|l| l.strip_prefix("after ").map(str::to_string))
        .collect();
    assert_eq!(
        after,
        vec![first.clone(); 3],
        "the drained backend's open connection must continue: {}",
        long.log()
    );

    // Weight changes the split of new connections.
    let (ok, _, err) = vipctl_run(&sock, &["backend", "weight", "svc0", &be(1), "3"]);
    assert!(ok, "{err}");
    let (ok, _, err) = vipctl_run(&sock, &["backend", "weight", "svc0", &be(2), "1"]);
    assert!(ok, "{err}");
    let r = lab.http_burst("client", web, 200, 4).expect("burst");
    assert_eq!(r.failed, 0, "{r:?}");
    let counts = [
        r.by_body.get("be1").copied().unwrap_or(0),
        r.by_body.get("be2").copied().unwrap_or(0),
    ];
    assert_proportional(&counts, &[3, 1], 0.2);

    // Disable: no new connections, enable: back again.
    let (ok, _, err) = vipctl_run(&sock, &["backend", "disable", "svc0", &be(1)]);
    assert!(ok, "{err}");
    let r = lab.http_burst("client", web, 20, 2).expect("burst");
    assert_eq!(r.by_body.get("be2"), Some(&20), "{r:?}");
    let (ok, _, err) = vipctl_run(&sock, &["backend", "enable", "svc0", &be(1)]);
    assert!(ok, "{err}");
    let r = lab.http_burst("client", web, 40, 2).expect("burst");
    assert!(r.by_body.get("be1").copied().unwrap_or(0) > 0, "{r:?}");

    // Remove then add while a client loop runs: no request fails.
    let tx = || {
        vipd.call::<reply::Stats>(ctlproto::Command::Stats {})
            .ok()
            .and_then(|v| v.cores.first().map(|c| c.tx_packets))
            .unwrap_or(0)
    };
    let tx_before = tx();
    std::thread::scope(|s| {
        let traffic = s.spawn(|| lab.http_burst("client", web, 600, 2).expect("burst"));
        lab.wait_until("traffic flowing", Duration::from_secs(10), || {
            tx() > tx_before + 50
        })
        .expect("traffic");
        let (ok, _, err) = vipctl_run(&sock, &["backend", "remove", "svc0", &be(2)]);
        assert!(ok, "{err}");
        let v: reply::Backends = vipd.call(ctlproto::Command::Backends {}).expect("backends");
        assert!(backend(&v, "svc0", &be(2)).is_none(), "{v:?}");
        let (ok, _, err) = vipctl_run(&sock, &["backend", "add", "svc0", &be(2), "--weight", "1"]);
        assert!(ok, "{err}");
        assert!(
            !traffic.is_finished(),
            "the client loop ended before the change; it must run through it"
        );
        let r = traffic.join().expect("traffic thread");
        assert_eq!(
            r.failed, 0,
            "requests failed while a backend was removed and added: {r:?}"
        );
    });
    lab.wait_until("re-added backend healthy", Duration::from_secs(10), || {
        vipd.healthy_backends() == 4
    })
    .expect("healthy again");

    // A broken file is refused with its error and changes nothing.
    let good = std::fs::read_to_string(&vipd.config).expect("config");
    std::fs::write(
        &vipd.config,
        good.replace("scheduler = \"rr\"", "scheduler = \"fastest\""),
    )
    .expect("write");
    let (ok, _, err) = vipctl_run(&sock, &["reload"]);
    assert!(!ok, "a broken file must be refused");
    assert!(
        err.contains("scheduler") && err.contains("lb1.toml:"),
        "{err}"
    );
    let r = lab.http_burst("client", web, 20, 2).expect("burst");
    assert_eq!(r.failed, 0, "{r:?}");
    let v: reply::Services = vipd.call(ctlproto::Command::Services {}).expect("services");
    assert_eq!(v.services[1].scheduler, "rr");

    // A good file applies while a long-lived connection stays up.
    let flag = lab.dir().join("go2");
    let mut long = lab
        .spawn(
            "client",
            &[
                "/usr/bin/python3",
                "-c",
                LONG,
                &vip.to_string(),
                &ECHO_PORT.to_string(),
                flag.to_str().unwrap_or_default(),
            ],
        )
        .expect("long client");
    lab.wait_until("long connection answered", Duration::from_secs(10), || {
        long.log().contains("first be")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", long.log()));
    let first = long
        .log()
        .lines()
        .find_map(|l| l.strip_prefix("first ").map(str::to_string))
        .unwrap_or_default();
    let reloaded = good.replace("scheduler = \"rr\"", "scheduler = \"wlc\"");
    std::fs::write(&vipd.config, reloaded).expect("write");
    let (h, v) = both::<reply::Reload>(&sock, &["reload"]);
    assert!(h.contains("reloaded"), "{h}");
    assert_eq!(v.backends_removed, 0);
    let v: reply::Services = vipd.call(ctlproto::Command::Services {}).expect("services");
    assert_eq!(v.services[1].scheduler, "wlc");
    std::fs::write(&flag, b"").expect("flag");
    lab.wait_until("long client done", Duration::from_secs(10), || {
        !long.is_running()
    })
    .expect("long done");
    let after: Vec<String> = long
        .log()
        .lines()
        .filter_map(|l| l.strip_prefix("after ").map(str::to_string))
        .collect();
    assert_eq!(
        after,
        vec![first; 3],
        "the connection must survive the reload: {}",
        long.log()
    );
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn control_socket_is_guarded_and_stays_responsive() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let vip = viplab::vip(6);
    let lab = nat_lab("ctlsock", 1, false);
    let services = [single_service(vip, "nat")];
    let config = node_config(&lab, "lb1", 1, "", &services).replace(
        "[control]\n",
        "[control]\nsocket_mode = \"0660\"\nsocket_group = \"adm\"\n",
    );
    let vipd = Vipd::start(&lab, "lb1", &config).expect("vipd starts");
    let sock = vipd.socket.clone();

    // Owner, group and mode as configured.
    let meta = std::fs::metadata(&sock).expect("socket exists");
    assert_eq!((meta.uid(), meta.gid()), (0, 4), "owner root, group adm");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);

    // nobody without the group is refused; with it, served.
    let bin = lab.dir().join("vipctl");
    std::fs::copy(env!("CARGO_BIN_EXE_vipctl"), &bin).expect("copy vipctl");
    std::fs::set_permissions(lab.dir(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let as_nobody = |groups: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup"])
            .args(groups)
            .arg(&bin)
            .arg("--socket")
            .arg(&sock)
            .arg("status")
            .output()
            .expect("setpriv runs")
    };
    let out = as_nobody(&["--clear-groups"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.to_lowercase().contains("permission denied"), "{err}");
    let out = as_nobody(&["--groups=4"]);
    assert!(
        out.status.success(),
        "nobody in group adm: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 1000 garbage requests, each answered with an error naming the problem.
    let mut stream = UnixStream::connect(&sock).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let garbage = [
        "nonsense",
        "[1,2]",
        r#"{"cmd":"status"}"#,
        r#"{"v":9,"cmd":"status"}"#,
        r#"{"v":1,"cmd":"explode"}"#,
        r#"{"v":1,"cmd":"backend","op":"drain"}"#,
    ];
    let expected = [
        "not JSON",
        "object",
        "no protocol version",
        "version 9",
        "explode",
        "service",
    ];
    for i in 0..1000 {
        let k = i % garbage.len();
        stream
            .write_all(format!("{}\n", garbage[k]).as_bytes())
            .expect("write");
        let mut line = String::new();
        reader.read_line(&mut line).expect("reply");
        let v: Reply = serde_json::from_str(&line).expect("reply is JSON");
        assert!(!v.ok);
        let e = v.error.unwrap_or_default();
        assert!(
            e.contains(expected[k]),
            "request {:?} got {e:?}",
            garbage[k]
        );
    }
    drop(reader);
    drop(stream);
    // An endless line is cut off, not buffered.
    let mut big = UnixStream::connect(&sock).expect("connect");
    big.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = big.write_all(&vec![b'x'; 200_000]);
    let mut line = String::new();
    let _ = BufReader::new(big).read_line(&mut line);
    assert!(line.contains("longer than"), "{line}");

    // 50 clients at once, each served.
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                s.spawn(|| {
                    vipd.call::<reply::Status>(ctlproto::Command::Status {})
                        .map(|v| v.node == "lb1")
                })
            })
            .collect();
        for h in handles {
            assert!(
                matches!(h.join(), Ok(Ok(true))),
                "a concurrent client was not served"
            );
        }
    });

    let r = lab.http_burst("client", SocketAddrV4::new(vip, SERVICE_PORT), 10, 2);
    assert!(
        r.is_ok_and(|r| r.failed == 0),
        "the dataplane must keep serving"
    );
}
