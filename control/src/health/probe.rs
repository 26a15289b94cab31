//! One-shot probes: TCP connect, HTTP or HTTPS GET with optional body
//! digest, an external script, and the datagram probes of `datagram`. Each
//! runs under a single deadline and turns every outcome, including any
//! server misbehaviour, into a [`CheckResult`].

use std::net::SocketAddrV4;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::time::Instant;

use super::datagram;
use super::http::{self, BodyReader};
use super::tls::{self, TlsStream};
use super::{BodyDigest, CheckResult, Probe};

/// How long stderr of a finished script is still read: a background process
/// it left behind may hold the pipe open forever.
const STDERR_GRACE: Duration = Duration::from_millis(50);
/// Longest first stderr line kept in a detail.
const STDERR_LINE: usize = 200;

/// Runs `probe` once. The whole check, connect included, gets `timeout`.
pub async fn probe_once(probe: &Probe, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let deadline = started + timeout;
    let outcome = match probe {
        Probe::Tcp { addr } => tcp(*addr, deadline, timeout).await,
        Probe::Http {
            addr,
            path,
            host,
            expect_status,
            digest,
        } => {
            let host = host.clone().unwrap_or_else(|| addr.to_string());
            let check = HttpCheck {
                path,
                host: &host,
                expect_status: *expect_status,
                digest: digest.as_ref(),
            };
            plain_http(&check, *addr, deadline, timeout).await
        }
        Probe::Https {
            addr,
            path,
            host,
            expect_status,
            digest,
            sni,
            ca_file,
        } => {
            let host = host.clone().unwrap_or_else(|| addr.to_string());
            let check = HttpCheck {
                path,
                host: &host,
                expect_status: *expect_status,
                digest: digest.as_ref(),
            };
            let tls = TlsTarget {
                sni: sni.as_deref(),
                ca_file: ca_file.as_deref(),
            };
            https(&check, *addr, tls, deadline, timeout).await
        }
        Probe::Udp {
            addr,
            payload,
            expect,
        } => datagram::udp(*addr, payload, expect.as_deref(), deadline, timeout).await,
        Probe::Dns { addr, name, qtype } => {
            datagram::dns(*addr, name, *qtype, deadline, timeout).await
        }
        Probe::Ping { ip } => datagram::ping(*ip, deadline, timeout).await,
        Probe::Script { command } => script(command, deadline, timeout).await,
        Probe::None => Ok("no check configured".to_string()),
    };
    let (ok, detail) = match outcome {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    CheckResult {
        ok,
        detail,
        duration: started.elapsed(),
        at: SystemTime::now(),
    }
}

fn timed_out(timeout: Duration, doing: &str) -> String {
    format!("timeout after {} ms {doing}", timeout.as_millis())
}

/// Awaits `fut` until `deadline`, naming what was pending if it expires.
pub(super) async fn within<T>(
    deadline: Instant,
    timeout: Duration,
    doing: &str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    tokio::time::timeout_at(deadline, fut)
        .await
        .map_err(|_| timed_out(timeout, doing))
}

async fn connect(
    addr: SocketAddrV4,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, String> {
    within(deadline, timeout, "connecting", TcpStream::connect(addr))
        .await?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => "connect refused".to_string(),
            _ => format!("connect failed: {e}"),
        })
}

async fn tcp(addr: SocketAddrV4, deadline: Instant, timeout: Duration) -> Result<String, String> {
    connect(addr, deadline, timeout).await?;
    Ok("connected".to_string())
}

/// A byte stream an HTTP check runs over: plain TCP or TLS.
trait Transport {
    async fn send(&mut self, data: &[u8]) -> Result<(), String>;
    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, String>;
}

impl Transport for TcpStream {
    async fn send(&mut self, data: &[u8]) -> Result<(), String> {
        self.write_all(data)
            .await
            .map_err(|e| format!("sending HTTP request failed: {e}"))
    }

    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        self.read(buf)
            .await
            .map_err(|e| format!("reading HTTP response failed: {e}"))
    }
}

impl Transport for TlsStream {
    async fn send(&mut self, data: &[u8]) -> Result<(), String> {
        TlsStream::send(self, data)
            .await
            .map_err(|e| format!("sending HTTP request failed: {e}"))
    }

    async fn recv(&mut self, buf: &mut [u8]) -> Result<usize, String> {
        TlsStream::recv(self, buf)
            .await
            .map_err(|e| format!("reading HTTP response failed: {e}"))
    }
}

async fn plain_http(
    check: &HttpCheck<'_>,
    addr: SocketAddrV4,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, String> {
    let request = check.request()?;
    let mut stream = connect(addr, deadline, timeout).await?;
    check.run(&mut stream, &request, deadline, timeout).await
}

#[derive(Clone, Copy)]
struct TlsTarget<'a> {
    sni: Option<&'a str>,
    /// Verify the certificate against these trust anchors.
    ca_file: Option<&'a std::path::Path>,
}

async fn https(
    check: &HttpCheck<'_>,
    addr: SocketAddrV4,
    target: TlsTarget<'_>,
    deadline: Instant,
    timeout: Duration,
) -> Result<String, String> {
    let request = check.request()?;
    // Read at every check, so a replaced CA file takes effect without a reload.
    let config = tls::client_config(target.ca_file).map_err(|e| e.to_string())?;
    let name = tls::server_name(target.sni, *addr.ip()).map_err(|e| e.to_string())?;
    let tcp = connect(addr, deadline, timeout).await?;
    let mut stream = within(
        deadline,
        timeout,
        "in the TLS handshake",
        TlsStream::handshake(tcp, config, name),
    )
    .await?
    .map_err(|e| e.to_string())?;
    check.run(&mut stream, &request, deadline, timeout).await
}

struct HttpCheck<'a> {
    path: &'a str,
    host: &'a str,
    expect_status: u16,
    digest: Option<&'a BodyDigest>,
}

impl HttpCheck<'_> {
    /// The request, checked before any connection is made.
    fn request(&self) -> Result<Vec<u8>, String> {
        http::build_request(self.path, self.host)
    }

    async fn run(
        &self,
        stream: &mut impl Transport,
        request: &[u8],
        deadline: Instant,
        timeout: Duration,
    ) -> Result<String, String> {
        within(
            deadline,
            timeout,
            "sending HTTP request",
            stream.send(request),
        )
        .await??;

        let mut buf = Vec::with_capacity(4096);
        let mut chunk = vec![0u8; 16 * 1024];
        let (head, used) = loop {
            if let Some(parsed) = http::parse_head(&buf)? {
                break parsed;
            }
            let n = within(
                deadline,
                timeout,
                "waiting for HTTP response",
                stream.recv(&mut chunk),
            )
            .await??;
            let Some(data) = chunk.get(..n).filter(|d| !d.is_empty()) else {
                return Err(if buf.is_empty() {
                    "connection closed without an HTTP response".to_string()
                } else {
                    format!(
                        "connection closed inside the HTTP response head after {} bytes",
                        buf.len()
                    )
                });
            };
            buf.extend_from_slice(data);
        };
        if head.status != self.expect_status {
            return Err(format!(
                "HTTP {} (expected {})",
                head.status, self.expect_status
            ));
        }
        let Some(want) = self.digest else {
            return Ok(format!("HTTP {}", head.status));
        };

        let mut body = BodyReader::new(head.framing);
        body.feed(buf.get(used..).unwrap_or_default())?;
        while !body.done() {
            let n = within(
                deadline,
                timeout,
                "reading HTTP body",
                stream.recv(&mut chunk),
            )
            .await??;
            match chunk.get(..n).filter(|d| !d.is_empty()) {
                Some(data) => body.feed(data)?,
                None => break,
            }
        }
        let body = body.finish()?;
        let got = want.of_same_kind(&body);
        if &got == want {
            Ok(format!("HTTP {}, body digest ok", head.status))
        } else {
            Err(format!(
                "body digest mismatch: got {got} over {} bytes, expected {want} ({})",
                body.len(),
                want.algorithm()
            ))
        }
    }
}

async fn script(
    command: &[String],
    deadline: Instant,
    timeout: Duration,
) -> Result<String, String> {
    let Some((program, args)) = command.split_first() else {
        return Err("empty check script command".to_string());
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Aborting the checker drops this future; the script must die with it.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run check script {program:?}: {e}"))?;
    let mut stderr = child.stderr.take();
    let mut first_line = Vec::new();
    let mut line_done = false;
    let mut scratch = [0u8; 4096];

    // Stderr is drained while waiting: a script that fills the pipe would
    // otherwise block, and closing the pipe early could kill it with SIGPIPE.
    let waited = tokio::time::timeout_at(deadline, async {
        loop {
            tokio::select! {
                status = child.wait() => break status,
                n = read_opt(&mut stderr, &mut scratch) => {
                    keep_first_line(&mut first_line, &mut line_done, &mut stderr, &scratch, n);
                }
            }
        }
    })
    .await;

    let status = match waited {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(format!("waiting for check script {program:?} failed: {e}")),
        Err(_) => {
            // SIGKILL, then reap, so no zombie or stray script outlives its check.
            let _ = child.kill().await;
            return Err(format!(
                "{} (script killed)",
                timed_out(timeout, "running script")
            ));
        }
    };
    let grace = deadline.min(Instant::now() + STDERR_GRACE);
    while stderr.is_some() && !line_done {
        match tokio::time::timeout_at(grace, read_opt(&mut stderr, &mut scratch)).await {
            Ok(n) => keep_first_line(&mut first_line, &mut line_done, &mut stderr, &scratch, n),
            Err(_) => break,
        }
    }
    describe_exit(status, &first_line)
}

/// Reads from the pipe if it is still open; pends forever once it is closed,
/// so the `select!` above simply waits for the exit status.
async fn read_opt(
    pipe: &mut Option<tokio::process::ChildStderr>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(p) => p.read(buf).await,
        None => std::future::pending().await,
    }
}

fn keep_first_line(
    line: &mut Vec<u8>,
    done: &mut bool,
    pipe: &mut Option<tokio::process::ChildStderr>,
    scratch: &[u8],
    n: std::io::Result<usize>,
) {
    let data = match n {
        Ok(n) if n > 0 => scratch.get(..n).unwrap_or_default(),
        _ => {
            *pipe = None;
            return;
        }
    };
    if *done {
        return;
    }
    let (part, ended) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (data.get(..i).unwrap_or_default(), true),
        None => (data, false),
    };
    let room = STDERR_LINE.saturating_sub(line.len());
    line.extend_from_slice(part.get(..part.len().min(room)).unwrap_or_default());
    *done = ended || line.len() >= STDERR_LINE;
}

fn describe_exit(status: ExitStatus, stderr_line: &[u8]) -> Result<String, String> {
    if status.success() {
        return Ok("exit status 0".to_string());
    }
    let mut detail = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => format!("failed: {status}"),
    };
    // Terminal escapes or other control bytes must not reach logs verbatim.
    let text: String = String::from_utf8_lossy(stderr_line)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if !text.is_empty() {
        detail.push_str(": ");
        detail.push_str(text);
    }
    Err(detail)
}
