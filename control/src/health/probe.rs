//! One-shot probes: [`probe_once`] runs a check under a single deadline and
//! turns every outcome, including any server misbehaviour, into a
//! [`CheckResult`].

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::error::{CheckError, Timeout};
use super::{datagram, http, script, CheckResult, Probe};

/// Runs `probe` once. The whole check, connect included, gets `timeout`.
pub async fn probe_once(probe: &Probe, timeout: Duration) -> CheckResult {
    let started = Instant::now();
    let deadline = started + timeout;
    let outcome = match probe {
        Probe::Tcp { addr } => tcp(*addr, deadline, timeout).await,
        Probe::Http { addr, get } => http::check(get, *addr, deadline, timeout).await,
        Probe::Udp {
            addr,
            payload,
            expect,
        } => datagram::udp(*addr, payload, expect.as_deref(), deadline, timeout).await,
        Probe::Dns { addr, name, qtype } => {
            datagram::dns(*addr, name, *qtype, deadline, timeout).await
        }
        Probe::Ping { ip } => datagram::ping(*ip, deadline, timeout).await,
        Probe::Script { command } => script::script(command, deadline, timeout).await,
        Probe::None => Ok("no check configured".to_string()),
    };
    let (ok, detail) = match outcome {
        Ok(detail) => (true, detail),
        Err(e) => (false, e.to_string()),
    };
    CheckResult {
        ok,
        detail,
        duration: started.elapsed(),
        at: SystemTime::now(),
    }
}

/// Awaits `fut` until `deadline`, naming what was pending if it expires.
pub(super) async fn within<T>(
    deadline: Instant,
    timeout: Duration,
    doing: &'static str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, Timeout> {
    tokio::time::timeout_at(deadline, fut)
        .await
        .map_err(|_| Timeout { timeout, doing })
}

pub(super) async fn connect(
    addr: SocketAddr,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, CheckError> {
    within(deadline, timeout, "connecting", TcpStream::connect(addr))
        .await?
        .map_err(CheckError::connect)
}

async fn tcp(addr: SocketAddr, deadline: Instant, timeout: Duration) -> Result<String, CheckError> {
    connect(addr, deadline, timeout).await?;
    Ok("connected".to_string())
}
