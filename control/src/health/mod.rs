//! Backend health checks: TCP connect, HTTP or HTTPS GET (status and
//! optional body digest), UDP request/reply, DNS query, ICMP echo, external
//! script, or none.
//!
//! `state` holds the sans-IO rise/fall logic, [`probe_once`] runs one
//! check, and [`Checker`] runs a check periodically on the tokio runtime and
//! reports every result over a channel.
//!
//! A backend starts DOWN: it gets traffic only after a check has succeeded,
//! so a backend that is unreachable when vipd starts never receives any. One
//! success is enough for that first transition (waiting for `rise` would only
//! delay a healthy pool at boot); after it has been UP, a DOWN backend needs
//! `rise` consecutive successes and an UP one `fall` consecutive failures.

mod checker;
mod datagram;
mod digest;
pub mod dns;
mod error;
mod http;
mod icmp;
mod probe;
mod quote;
mod script;
mod state;
pub(crate) mod tls;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

pub use checker::Checker;
pub use digest::{BodyDigest, DigestError};
pub use dns::QType;
pub use http::HttpGet;
pub use probe::probe_once;
pub use tls::Tls;

/// Largest HTTP body read for a digest check; larger bodies fail the check.
pub const MAX_HTTP_BODY: usize = http::MAX_BODY;

/// What a check does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Healthy when a TCP connection can be opened.
    Tcp { addr: SocketAddr },
    /// A GET over HTTP/1.1, or over TLS when `get.tls` is set.
    Http { addr: SocketAddr, get: HttpGet },
    /// Sends `payload` in one datagram; healthy when a reply arrives (and
    /// holds `expect`, if set). An ICMP port unreachable fails at once.
    Udp {
        addr: SocketAddr,
        payload: Vec<u8>,
        expect: Option<Vec<u8>>,
    },
    /// Asks for `name`'s `qtype` records; healthy on a NOERROR reply with
    /// at least one.
    Dns {
        addr: SocketAddr,
        name: String,
        qtype: QType,
    },
    /// ICMP echo; healthy when the reply comes back.
    Ping { ip: IpAddr },
    /// argv of a program; exit 0 = healthy. Killed (SIGKILL) at the timeout.
    /// Only the program itself is killed: a script should `exec` any
    /// long-running command so that nothing outlives the check.
    Script { command: Vec<String> },
    /// Always healthy.
    None,
}

impl Probe {
    /// How a log line tells this check beside `backend`, the backend it
    /// checks: None for a connection to the backend's own address.
    pub fn beside(&self, backend: SocketAddr) -> Option<String> {
        match self {
            Probe::Tcp { addr }
            | Probe::Http { addr, .. }
            | Probe::Udp { addr, .. }
            | Probe::Dns { addr, .. } => (*addr != backend).then(|| format!("checked at {addr}")),
            Probe::Ping { ip } if *ip == backend.ip() => Some("ping".into()),
            Probe::Ping { ip } => Some(format!("ping {ip}")),
            Probe::Script { command } => Some(format!("check script {:?}", command.join(" "))),
            Probe::None => Some("no check".into()),
        }
    }
}

/// A periodic check of one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    /// The service the backend serves; log lines name it with the backend.
    pub service: String,
    /// The backend checked, as log lines name it.
    pub backend: SocketAddr,
    pub probe: Probe,
    /// Time between the starts of two checks (at least 1 ms is used).
    pub interval: Duration,
    /// Limit for one check, connect included.
    pub timeout: Duration,
    /// Consecutive successes that bring a DOWN backend back UP (0 acts as 1).
    pub rise: u32,
    /// Consecutive failures that take an UP backend DOWN (0 acts as 1).
    pub fall: u32,
}

/// Outcome of one check.
#[derive(Clone, Debug)]
pub struct CheckResult {
    pub ok: bool,
    /// Why, for operators: "connect refused", "HTTP 503 (expected 200)",
    /// "timeout after 500 ms connecting", "exit status 2: <stderr line>"...
    pub detail: String,
    /// How long the check took.
    pub duration: Duration,
    /// When the check finished.
    pub at: SystemTime,
}

/// Sent after every check of a backend.
#[derive(Clone, Debug)]
pub struct HealthEvent {
    /// The caller's key for the backend, as given to [`Checker::spawn`].
    pub key: u64,
    /// Health after this result.
    pub healthy: bool,
    pub result: CheckResult,
    /// True when this result changed `healthy`.
    pub transition: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_tells_how_it_checks_unless_it_connects_to_the_backend() {
        let backend = SocketAddr::new([10, 1, 1, 11].into(), 80);
        let other = SocketAddr::new([10, 1, 1, 11].into(), 8080);
        assert_eq!(Probe::Tcp { addr: backend }.beside(backend), None);
        assert_eq!(
            Probe::Tcp { addr: other }.beside(backend).as_deref(),
            Some("checked at 10.1.1.11:8080")
        );
        assert_eq!(
            Probe::Ping { ip: backend.ip() }.beside(backend).as_deref(),
            Some("ping")
        );
        assert_eq!(
            Probe::Ping {
                ip: [10, 1, 1, 12].into()
            }
            .beside(backend)
            .as_deref(),
            Some("ping 10.1.1.12")
        );
        let script = Probe::Script {
            command: vec!["/bin/check".into(), "a".into()],
        };
        assert_eq!(
            script.beside(backend).as_deref(),
            Some("check script \"/bin/check a\"")
        );
        assert_eq!(Probe::None.beside(backend).as_deref(), Some("no check"));
    }
}
