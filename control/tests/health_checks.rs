//! Health checks against real servers on 127.0.0.1 (ephemeral ports).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use control::health::{
    probe_once, BodyDigest, CheckResult, CheckSpec, Checker, HealthEvent, HttpGet, Probe,
};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// What the test HTTP server does after reading a request.
#[derive(Clone)]
enum Reply {
    /// Writes these bytes, then closes.
    Raw(Vec<u8>),
    /// Writes each piece after its delay, then closes.
    Slow(Vec<(Duration, Vec<u8>)>),
    /// Writes these bytes, then keeps the connection open without more.
    ThenHang(Vec<u8>),
}

struct HttpServer {
    addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
    last_request: Arc<Mutex<String>>,
    task: JoinHandle<()>,
}

impl HttpServer {
    async fn start(reply: Reply) -> HttpServer {
        HttpServer::start_on(LOCALHOST.into(), reply).await
    }

    async fn start_on(ip: IpAddr, reply: Reply) -> HttpServer {
        let listener = TcpListener::bind((ip, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let reply = Arc::new(Mutex::new(reply));
        let last_request = Arc::new(Mutex::new(String::new()));
        let (r, l) = (reply.clone(), last_request.clone());
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let reply = r.lock().expect("reply lock").clone();
                tokio::spawn(serve(conn, reply, l.clone()));
            }
        });
        HttpServer {
            addr,
            reply,
            last_request,
            task,
        }
    }

    fn set(&self, reply: Reply) {
        *self.reply.lock().expect("reply lock") = reply;
    }

    fn last_request(&self) -> String {
        self.last_request.lock().expect("request lock").clone()
    }

    fn probe(&self, path: &str, expect_status: u16, body_md5: Option<[u8; 16]>) -> Probe {
        Probe::Http {
            addr: self.addr,
            get: HttpGet {
                path: path.to_string(),
                host: None,
                expect_status,
                digest: body_md5.map(BodyDigest::Md5),
                tls: None,
            },
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut conn: TcpStream, reply: Reply, last: Arc<Mutex<String>>) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    *last.lock().expect("request lock") = String::from_utf8_lossy(&req).into_owned();
    match reply {
        Reply::Raw(bytes) => {
            let _ = conn.write_all(&bytes).await;
        }
        Reply::Slow(pieces) => {
            for (delay, bytes) in pieces {
                tokio::time::sleep(delay).await;
                if conn.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
        Reply::ThenHang(bytes) => {
            let _ = conn.write_all(&bytes).await;
            // Hold the connection until the client gives up.
            let _ = conn.read(&mut buf).await;
        }
    }
}

fn response(status: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn md5_of(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn assert_fails_with(result: &CheckResult, want: &str) {
    assert!(
        !result.ok,
        "check passed, expected failure containing {want:?}: {result:?}"
    );
    assert!(
        result.detail.contains(want),
        "detail {:?} lacks {want:?}",
        result.detail
    );
}

fn assert_ok(result: &CheckResult, want_detail: &str) {
    assert!(result.ok, "check failed: {result:?}");
    assert_eq!(result.detail, want_detail);
}

/// An address that refuses connections: a port that was just free.
fn refused_addr() -> SocketAddr {
    refused_addr_on(LOCALHOST.into())
}

fn refused_addr_on(ip: IpAddr) -> SocketAddr {
    let l = std::net::TcpListener::bind((ip, 0)).expect("bind");
    l.local_addr().expect("local addr")
}

#[tokio::test]
async fn tcp_and_http_over_ipv6() {
    let listener = TcpListener::bind((Ipv6Addr::LOCALHOST, 0))
        .await
        .expect("bind [::1]");
    let addr = listener.local_addr().expect("local addr");
    assert_ok(
        &probe_once(&Probe::Tcp { addr }, ms(1000)).await,
        "connected",
    );
    let addr = refused_addr_on(Ipv6Addr::LOCALHOST.into());
    let r = probe_once(&Probe::Tcp { addr }, ms(1000)).await;
    assert_eq!(r.detail, "connect refused", "{r:?}");

    let srv = HttpServer::start_on(
        Ipv6Addr::LOCALHOST.into(),
        Reply::Raw(response("200 OK", b"ok")),
    )
    .await;
    assert_ok(
        &probe_once(&srv.probe("/", 200, None), ms(2000)).await,
        "HTTP 200",
    );
    // An IPv6 literal in Host is bracketed (RFC 7230 §5.4, RFC 3986).
    let host = format!("\r\nHost: [::1]:{}\r\n", srv.addr.port());
    assert!(
        srv.last_request().contains(&host),
        "{:?}",
        srv.last_request()
    );
}

#[tokio::test]
async fn tcp_connects() {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let r = probe_once(&Probe::Tcp { addr }, ms(1000)).await;
    assert_ok(&r, "connected");
    assert!(r.duration < ms(1000));
}

#[tokio::test]
async fn tcp_refused() {
    let addr = refused_addr();
    let r = probe_once(&Probe::Tcp { addr }, ms(1000)).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "connect refused");
}

#[tokio::test]
async fn tcp_times_out_on_full_backlog() {
    // A listener that never accepts: once its queue is full the kernel drops
    // further SYNs, so a connect neither succeeds nor is refused.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind((LOCALHOST, 0).into()).expect("bind");
    let listener = socket.listen(1).expect("listen");
    let addr = listener.local_addr().expect("local addr");
    let mut held = Vec::new();
    let mut full = false;
    for _ in 0..16 {
        match tokio::time::timeout(ms(200), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("filling the backlog of {addr} failed: {e}"),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    assert!(
        full,
        "backlog of {addr} never filled after {} connections",
        held.len()
    );
    let r = probe_once(&Probe::Tcp { addr }, ms(300)).await;
    assert_fails_with(&r, "timeout after 300 ms connecting");
    assert!(
        r.duration >= ms(300) && r.duration < ms(2000),
        "{:?}",
        r.duration
    );
}

#[tokio::test]
async fn http_status_and_request() {
    let srv = HttpServer::start(Reply::Raw(response("200 OK", b"ok"))).await;
    let r = probe_once(&srv.probe("/healthz?full=1", 200, None), ms(2000)).await;
    assert_ok(&r, "HTTP 200");
    let req = srv.last_request();
    assert!(
        req.starts_with("GET /healthz?full=1 HTTP/1.1\r\n"),
        "{req:?}"
    );
    assert!(
        req.contains(&format!("\r\nHost: {}\r\n", srv.addr)),
        "{req:?}"
    );
    assert!(req.contains("\r\nConnection: close\r\n"), "{req:?}");

    let probe = Probe::Http {
        addr: srv.addr,
        get: HttpGet {
            path: "/".into(),
            host: Some("www.example.test".into()),
            expect_status: 200,
            digest: None,
            tls: None,
        },
    };
    assert_ok(&probe_once(&probe, ms(2000)).await, "HTTP 200");
    assert!(srv
        .last_request()
        .contains("\r\nHost: www.example.test\r\n"));

    srv.set(Reply::Raw(response("503 Service Unavailable", b"busy")));
    let r = probe_once(&srv.probe("/", 200, None), ms(2000)).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "HTTP 503 (expected 200)");

    // The expected status need not be 200.
    let r = probe_once(&srv.probe("/", 503, None), ms(2000)).await;
    assert_ok(&r, "HTTP 503");
}

#[tokio::test]
async fn http_garbage_fails_fast() {
    // A non-HTTP service answering with a banner and then waiting must not
    // run into the timeout.
    let srv = HttpServer::start(Reply::ThenHang(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec())).await;
    let r = probe_once(&srv.probe("/", 200, None), ms(3000)).await;
    assert_fails_with(&r, "malformed HTTP status line: \"SSH-2.0-OpenSSH_9.6\"");
    assert!(r.duration < ms(2000), "took {:?}", r.duration);

    srv.set(Reply::Raw(b"HTTP/1.1 OK 200\r\n\r\n".to_vec()));
    let r = probe_once(&srv.probe("/", 200, None), ms(2000)).await;
    assert_fails_with(&r, "malformed HTTP status line");

    srv.set(Reply::Raw(Vec::new()));
    let r = probe_once(&srv.probe("/", 200, None), ms(2000)).await;
    assert_fails_with(&r, "connection closed without an HTTP response");

    srv.set(Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-".to_vec()));
    let r = probe_once(&srv.probe("/", 200, None), ms(2000)).await;
    assert_fails_with(&r, "connection closed inside the HTTP response head");

    let r = probe_once(&srv.probe("no-slash", 200, None), ms(2000)).await;
    assert_fails_with(&r, "invalid check path");
}

#[tokio::test]
async fn http_body_digest() {
    let body = b"vipd backend ok\n".to_vec();
    let srv = HttpServer::start(Reply::Raw(response("200 OK", &body))).await;
    let probe = srv.probe("/", 200, Some(md5_of(&body)));
    assert_ok(
        &probe_once(&probe, ms(2000)).await,
        "HTTP 200, body digest ok",
    );
    // The same body by SHA-256.
    let sha: BodyDigest = "a5f2f4a8e4b0ec5ab5b0b30e6e1b1fca0b85f8cd73e0c6fca8e4d3d34567e7ec"
        .parse()
        .expect("64 hex digits");
    let right = sha.of_same_kind(&body);
    let by_sha = Probe::Http {
        addr: srv.addr,
        get: HttpGet {
            path: "/".into(),
            host: None,
            expect_status: 200,
            digest: Some(right),
            tls: None,
        },
    };
    assert_ok(
        &probe_once(&by_sha, ms(2000)).await,
        "HTTP 200, body digest ok",
    );
    let wrong = Probe::Http {
        addr: srv.addr,
        get: HttpGet {
            path: "/".into(),
            host: None,
            expect_status: 200,
            digest: Some(sha),
            tls: None,
        },
    };
    let r = probe_once(&wrong, ms(2000)).await;
    assert_fails_with(&r, &format!("expected {sha} (SHA-256)"));
    assert_fails_with(&r, &right.to_string());

    srv.set(Reply::Raw(response("200 OK", b"vipd backend degraded\n")));
    let r = probe_once(&probe, ms(2000)).await;
    assert_fails_with(&r, "body digest mismatch");
    let got = md5_of(b"vipd backend degraded\n");
    let got_hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
    assert_fails_with(&r, &got_hex);

    // Body delimited by EOF (no Content-Length).
    let mut raw = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
    raw.extend_from_slice(&body);
    srv.set(Reply::Raw(raw));
    assert_ok(
        &probe_once(&probe, ms(2000)).await,
        "HTTP 200, body digest ok",
    );

    // A body cut short of its Content-Length.
    let mut raw = response("200 OK", &body);
    raw.truncate(raw.len() - 3);
    srv.set(Reply::Raw(raw));
    let r = probe_once(&probe, ms(2000)).await;
    assert_fails_with(
        &r,
        &format!(
            "connection closed after {} of {} HTTP body bytes",
            body.len() - 3,
            body.len()
        ),
    );

    // A body over the cap is refused rather than buffered.
    let huge = vec![b'x'; control::health::MAX_HTTP_BODY + 1];
    srv.set(Reply::Raw(response("200 OK", &huge)));
    let r = probe_once(&srv.probe("/", 200, Some(md5_of(&huge))), ms(5000)).await;
    assert_fails_with(&r, "larger than");
}

#[tokio::test]
async fn http_chunked_and_slow_within_timeout() {
    let body = b"Wikipedia in \r\n\r\nchunks.";
    let pieces: Vec<&[u8]> = vec![
        b"HTTP/1.1 200 OK\r\nTransfer-",
        b"Encoding: chunked\r\n\r\n4\r\nWi",
        b"ki\r\n6;note=slow\r\npedia \r\n",
        b"E\r\nin \r\n\r\nchunks.\r\n0\r\n\r\n",
    ];
    let slow = pieces.into_iter().map(|p| (ms(60), p.to_vec())).collect();
    let srv = HttpServer::start(Reply::Slow(slow)).await;
    let r = probe_once(&srv.probe("/", 200, Some(md5_of(body))), ms(3000)).await;
    assert_ok(&r, "HTTP 200, body digest ok");
    assert!(
        r.duration >= ms(240),
        "server pauses not observed: {:?}",
        r.duration
    );

    // The same digest must not match when one chunk differs.
    let r2 = probe_once(
        &srv.probe("/", 200, Some(md5_of(b"Wikipedia in chunks."))),
        ms(3000),
    )
    .await;
    assert_fails_with(&r2, "body digest mismatch");
}

#[tokio::test]
async fn http_timeouts_name_the_stage() {
    // Accepts and reads the request but never answers.
    let srv = HttpServer::start(Reply::ThenHang(Vec::new())).await;
    let r = probe_once(&srv.probe("/", 200, None), ms(300)).await;
    assert_fails_with(&r, "timeout after 300 ms waiting for HTTP response");
    assert!(
        r.duration >= ms(300) && r.duration < ms(2000),
        "{:?}",
        r.duration
    );

    // Head arrives, body stalls.
    let mut partial = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_vec();
    partial.extend_from_slice(b"first part");
    srv.set(Reply::ThenHang(partial));
    let r = probe_once(&srv.probe("/", 200, Some([0; 16])), ms(300)).await;
    assert_fails_with(&r, "timeout after 300 ms reading HTTP body");

    // Without a digest the status alone decides; the stalled body is not awaited.
    let r = probe_once(&srv.probe("/", 200, None), ms(300)).await;
    assert_ok(&r, "HTTP 200");
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("vipd-health-{}-{name}", std::process::id()))
}

fn sh(script: &str) -> Probe {
    Probe::Script {
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
    }
}

/// Waits until `cond` holds, failing the test after `limit`.
async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(ms(10)).await;
    }
}

fn process_gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test]
async fn script_exit_codes() {
    assert_ok(&probe_once(&sh("exit 0"), ms(2000)).await, "exit status 0");

    let r = probe_once(
        &sh("echo 'disk /data full' >&2; echo second line >&2; exit 1"),
        ms(2000),
    )
    .await;
    assert!(!r.ok);
    assert_eq!(r.detail, "exit status 1: disk /data full");

    // Control characters are blanked and a long line is cut.
    let r = probe_once(&sh("printf 'bad\\033[31m state\\n' >&2; exit 3"), ms(2000)).await;
    assert_eq!(r.detail, "exit status 3: bad [31m state");
    let r = probe_once(&sh("printf '%0300d' 0 >&2; exit 4"), ms(2000)).await;
    assert_eq!(r.detail, format!("exit status 4: {}", "0".repeat(200)));

    let r = probe_once(&sh("exit 2"), ms(2000)).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "exit status 2");

    // Lots of stderr must neither block the script nor break it with SIGPIPE.
    let r = probe_once(
        &sh("i=0; while [ $i -lt 2000 ]; do echo noise line $i >&2; i=$((i+1)); done; exit 0"),
        ms(5000),
    )
    .await;
    assert_ok(&r, "exit status 0");

    let r = probe_once(&sh("kill -TERM $$"), ms(2000)).await;
    assert!(!r.ok);
    assert_eq!(r.detail, "killed by signal 15");

    let missing = Probe::Script {
        command: vec!["/nonexistent/vipd-check".into()],
    };
    assert_fails_with(
        &probe_once(&missing, ms(2000)).await,
        "cannot run check script \"/nonexistent/vipd-check\"",
    );
    let empty = Probe::Script {
        command: Vec::new(),
    };
    assert_fails_with(
        &probe_once(&empty, ms(2000)).await,
        "empty check script command",
    );
}

#[tokio::test]
async fn script_timeout_kills_child() {
    let pidfile = temp_path("timeout.pid");
    let _ = std::fs::remove_file(&pidfile);
    let script = format!("echo $$ > {}; exec sleep 30", pidfile.display());
    let r = probe_once(&sh(&script), ms(400)).await;
    assert_fails_with(&r, "timeout after 400 ms running script (script killed)");
    assert!(r.duration < ms(3000), "{:?}", r.duration);
    let pid = read_pid(&pidfile).expect("script wrote its pid");
    let _ = std::fs::remove_file(&pidfile);
    // The probe reaps the killed script before returning.
    assert!(
        process_gone(pid),
        "check script {pid} still exists after its timeout"
    );
}

#[tokio::test]
async fn none_is_always_healthy() {
    assert_ok(
        &probe_once(&Probe::None, ms(0)).await,
        "no check configured",
    );
}

async fn next_event(rx: &mut mpsc::Receiver<HealthEvent>, limit: Duration) -> HealthEvent {
    match tokio::time::timeout(limit, rx.recv()).await {
        Ok(Some(ev)) => ev,
        Ok(None) => panic!("checker ended unexpectedly"),
        Err(_) => panic!("no health event within {limit:?}"),
    }
}

/// Receives events until a transition; returns it and the events that led up
/// to it (itself included).
async fn until_transition(
    rx: &mut mpsc::Receiver<HealthEvent>,
    limit: Duration,
) -> Vec<HealthEvent> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = next_event(rx, left).await;
        let done = ev.transition;
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

async fn bind_reusable(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("SO_REUSEADDR");
    socket.bind(addr).expect("bind");
    socket.listen(128).expect("listen")
}

fn accept_forever(listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            drop(conn);
        }
    })
}

#[tokio::test]
async fn checker_follows_server_down_and_up() {
    let listener = bind_reusable(SocketAddr::new(LOCALHOST.into(), 0)).await;
    let addr = listener.local_addr().expect("local addr");
    let server = accept_forever(listener);
    let (rise, fall, interval, timeout) = (3u32, 2u32, ms(100), ms(200));
    let spec = CheckSpec {
        service: "test".into(),
        backend: addr,
        probe: Probe::Tcp { addr },
        interval,
        timeout,
        rise,
        fall,
    };
    let (tx, mut rx) = mpsc::channel(64);
    let checker = Checker::spawn(42, spec, tx);

    // The first success is enough to bring a new backend up.
    let first = next_event(&mut rx, ms(2000)).await;
    assert_eq!(first.key, 42);
    assert!(
        first.result.ok && first.healthy && first.transition,
        "{first:?}"
    );
    assert_eq!(first.result.detail, "connected");

    // Steady state: every result is reported, without transitions.
    let steady = next_event(&mut rx, ms(2000)).await;
    assert!(steady.healthy && !steady.transition, "{steady:?}");

    server.abort();
    let _ = server.await;
    let killed = Instant::now();
    let margin = ms(1500);
    let down_limit = interval * fall + timeout + margin;
    let events = until_transition(&mut rx, down_limit).await;
    let down = events.last().expect("transition event");
    assert!(
        killed.elapsed() <= down_limit,
        "DOWN took {:?}",
        killed.elapsed()
    );
    assert!(!down.healthy && !down.result.ok, "{down:?}");
    assert_eq!(down.result.detail, "connect refused");
    let trailing_failures = events.iter().rev().take_while(|e| !e.result.ok).count();
    assert_eq!(
        trailing_failures, fall as usize,
        "DOWN must come after exactly `fall` failures: {events:?}"
    );

    let server = accept_forever(bind_reusable(addr).await);
    let up_limit = interval * (rise + 1) + timeout + margin;
    let events = until_transition(&mut rx, up_limit).await;
    let up = events.last().expect("transition event");
    assert!(up.healthy && up.result.ok, "{up:?}");
    let trailing_ok = events.iter().rev().take_while(|e| e.result.ok).count();
    assert_eq!(
        trailing_ok, rise as usize,
        "UP must come after exactly `rise` successes: {events:?}"
    );

    // Stopping ends the task: the channel closes once buffered events are read.
    checker.stop();
    let closed = tokio::time::timeout(ms(2000), async { while rx.recv().await.is_some() {} }).await;
    assert!(closed.is_ok(), "checker kept running after stop()");
    server.abort();
}

#[tokio::test]
async fn dropping_checker_kills_running_script() {
    let pidfile = temp_path("drop.pid");
    let _ = std::fs::remove_file(&pidfile);
    let spec = CheckSpec {
        service: "test".into(),
        backend: "127.0.0.1:80".parse().unwrap(),
        probe: sh(&format!("echo $$ > {}; exec sleep 30", pidfile.display())),
        interval: ms(1000),
        timeout: ms(20_000),
        rise: 1,
        fall: 1,
    };
    let (tx, mut rx) = mpsc::channel(4);
    let checker = Checker::spawn(7, spec, tx);
    wait_for("the check script to start", ms(5000), || {
        read_pid(&pidfile).is_some()
    })
    .await;
    let pid = read_pid(&pidfile).expect("pid");
    let _ = std::fs::remove_file(&pidfile);
    assert!(!process_gone(pid), "script {pid} should still be running");
    drop(checker);
    wait_for("the check script to be killed", ms(5000), || {
        process_gone(pid)
    })
    .await;
    assert!(
        rx.recv().await.is_none(),
        "no result is reported for an aborted check"
    );
}
