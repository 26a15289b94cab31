//! End to end: a hostile client on the control socket cannot kill the node
//! or lock the operator out. After each attack — crafted requests, hundreds
//! of silent connections from root and from another user, a client that
//! never reads its replies — `vipctl status` answers within a second and
//! VIP traffic still flows.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddrV4;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use ctlproto::Reply;
use viplab::Lab;

/// Requests that once crashed the node, or might: out-of-range, negative,
/// NaN and infinite numbers, wrong types, duplicate keys, invalid UTF-8.
const CRAFTED: &[&[u8]] = &[
    br#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":2e19}"#,
    br#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":1e308}"#,
    br#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":-1e308}"#,
    br#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":NaN}"#,
    br#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":1e999}"#,
    br#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":"forever"}"#,
    br#"{"v":1,"cmd":"flows","top":18446744073709551615}"#,
    br#"{"v":1,"cmd":"flows","top":-1}"#,
    br#"{"v":1,"cmd":"backend","op":"weight","service":"svc0","address":"10.77.1.11:8080","weight":4294967296}"#,
    br#"{"v":1,"cmd":"backend","op":"add","service":["svc0"],"address":{}}"#,
    br#"{"v":1,"v":2,"cmd":"status"}"#,
    br#"{"v":1,"cmd":"backend","op":"drain","op":"remove","service":"svc0","address":"10.77.1.11:8080"}"#,
    b"{\"v\":1,\"cmd\":\"sta\xff\xfetus\"}",
    b"\xff\xff\xff\xff",
];

/// Sends `line` on a fresh connection and returns the reply.
fn one_request(sock: &Path, line: &[u8]) -> Reply {
    let mut s = UnixStream::connect(sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(line).expect("write");
    s.write_all(b"\n").expect("write");
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).expect("reply");
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply:?}"))
}

/// The operator's view: `vipctl status` within a second, and the VIP serves.
fn assert_serving(lab: &Lab, vipd: &mut Vipd, vip: SocketAddrV4, after: &str) {
    let start = Instant::now();
    let (ok, _, err) = vipctl_run(&vipd.socket, &["status"]);
    let took = start.elapsed();
    assert!(
        ok,
        "after {after}: vipctl status failed: {err}\n{}",
        vipd.log()
    );
    assert!(
        took < Duration::from_secs(1),
        "after {after}: vipctl status took {took:?}"
    );
    let r = lab.http_burst("client", vip, 10, 2).expect("burst");
    assert_eq!(
        r.failed, 0,
        "after {after}: VIP traffic failed: {:?}",
        r.errors
    );
    assert!(
        vipd.is_running(),
        "after {after}: vipd died:\n{}",
        vipd.log()
    );
}

/// Opens `n` connections to the socket as user nobody and holds them,
/// printing how many are still open once a second.
const SILENT_AS_NOBODY: &str = r#"
import socket, sys, time, select
path, n = sys.argv[1], int(sys.argv[2])
conns = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX); s.connect(path); conns.append(s)
print("open", len(conns), flush=True)
deadline = time.time() + 30
while conns and time.time() < deadline:
    r, _, _ = select.select(conns, [], [], 0.2)
    for s in r:
        if not s.recv(4096):
            conns.remove(s); s.close()
print("closed by vipd", flush=True)
"#;

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn hostile_control_clients_neither_kill_nor_lock_out() {
    let vip = viplab::vip(41);
    let lab = nat_lab("ctlhostile", 1, false);
    let services = [single_service(vip, "nat")];
    // Other users may connect, so their connections count against the limit.
    let config = node_config(&lab, "lb1", 1, "", &services)
        .replace("[control]\n", "[control]\nsocket_mode = \"0666\"\n");
    let mut vipd = Vipd::start(&lab, "lb1", &config).expect("vipd starts");
    lab.wait_until("backend healthy", Duration::from_secs(20), || {
        vipd.healthy_backends() == 1
    })
    .expect("healthy");
    let sock = vipd.socket.clone();
    let addr = SocketAddrV4::new(vip, SERVICE_PORT);
    assert_serving(&lab, &mut vipd, addr, "start");

    for line in CRAFTED {
        let reply = one_request(&sock, line);
        let shown = String::from_utf8_lossy(line);
        assert!(!reply.ok, "{shown} accepted: {reply:?}");
        assert!(
            reply.error.as_deref().is_some_and(|e| !e.is_empty()),
            "{shown}: no reason given: {reply:?}"
        );
        assert_serving(&lab, &mut vipd, addr, &shown);
    }

    // 200 silent connections from root: root's newest connections displace
    // its idle ones, so the operator is served while they are open.
    let silent: Vec<UnixStream> = (0..200)
        .map(|_| UnixStream::connect(&sock).expect("connect"))
        .collect();
    assert_serving(&lab, &mut vipd, addr, "200 silent root connections");
    // Those left are closed for idleness within seconds.
    let start = Instant::now();
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
    assert!(
        start.elapsed() < control::ctl::IDLE + Duration::from_secs(3),
        "silent connections held {:?}",
        start.elapsed()
    );

    // 200 silent connections from another user: that user is capped, root
    // is not affected.
    std::fs::set_permissions(lab.dir(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut nobody = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .args(["/usr/bin/python3", "-c", SILENT_AS_NOBODY])
        .arg(&sock)
        .arg("200")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("setpriv runs");
    let mut out = BufReader::new(nobody.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("python reports");
    assert!(line.starts_with("open 200"), "{line}");
    assert_serving(
        &lab,
        &mut vipd,
        addr,
        "200 silent connections of user nobody",
    );
    line.clear();
    out.read_line(&mut line).expect("python reports");
    assert!(
        line.starts_with("closed by vipd"),
        "nobody's connections were not all closed: {line}"
    );
    let _ = nobody.wait();

    // A client that sends requests and never reads the replies: its socket
    // buffer fills, vipd stops writing after a bound and closes it; vipd's
    // memory does not grow with what the client did not read.
    let pid = vipd.process.as_ref().map_or(0, |p| p.pid());
    let rss_before = rss_kib(pid);
    let mut greedy = UnixStream::connect(&sock).expect("connect");
    greedy
        .set_write_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let request = b"{\"v\":1,\"cmd\":\"stats\"}\n".repeat(1000);
    let mut sent = 0usize;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        match greedy.write(&request) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert_serving(&lab, &mut vipd, addr, "a client that never reads");
    // vipd gives up on it by itself: writing then fails as the peer is gone.
    greedy
        .set_write_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    lab.wait_until(
        "vipd closes the client that does not read",
        control::ctl::WRITE_TIMEOUT * 3,
        || {
            matches!(greedy.write(b"x"), Err(e) if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ))
        },
    )
    .expect("non-reading client closed");
    greedy
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // What vipd wrote before giving up; closing with our requests unread
    // may reset the connection instead of ending it.
    let mut taken = Vec::new();
    let end = greedy.read_to_end(&mut taken);
    assert!(
        end.is_ok()
            || end
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "reading what vipd sent: {end:?}"
    );
    let replies = taken.iter().filter(|b| **b == b'\n').count();
    assert!(
        replies < sent / 22,
        "vipd answered all {replies} requests: the client was never cut off"
    );
    let growth = rss_kib(pid).saturating_sub(rss_before);
    assert!(
        growth < 16 * 1024,
        "vipd grew {growth} KiB for one slow reader"
    );
    assert_serving(&lab, &mut vipd, addr, "the non-reading client was closed");
}
