//! Backend health checks: TCP connect, HTTP or HTTPS GET (status and
//! optional body digest), UDP request/reply, DNS query, ICMP echo, external
//! script, or none.
//!
//! [`HealthState`] is the sans-IO rise/fall logic, [`probe_once`] runs one
//! check, and [`Checker`] runs a check periodically on the tokio runtime and
//! reports every result over a channel.
//!
//! A backend starts DOWN: it gets traffic only after a check has succeeded,
//! so a backend that is unreachable when vipd starts never receives any. One
//! success is enough for that first transition (waiting for `rise` would only
//! delay a healthy pool at boot); after it has been UP, a DOWN backend needs
//! `rise` consecutive successes and an UP one `fall` consecutive failures.

mod datagram;
mod digest;
pub mod dns;
mod error;
mod http;
mod icmp;
mod probe;
mod quote;
mod script;
pub(crate) mod tls;

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

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
    Tcp { addr: SocketAddrV4 },
    /// A GET over HTTP/1.1, or over TLS when `get.tls` is set.
    Http { addr: SocketAddrV4, get: HttpGet },
    /// Sends `payload` in one datagram; healthy when a reply arrives (and
    /// holds `expect`, if set). An ICMP port unreachable fails at once.
    Udp {
        addr: SocketAddrV4,
        payload: Vec<u8>,
        expect: Option<Vec<u8>>,
    },
    /// Asks for `name`'s `qtype` records; healthy on a NOERROR reply with
    /// at least one.
    Dns {
        addr: SocketAddrV4,
        name: String,
        qtype: QType,
    },
    /// ICMP echo; healthy when the reply comes back.
    Ping { ip: Ipv4Addr },
    /// argv of a program; exit 0 = healthy. Killed (SIGKILL) at the timeout.
    /// Only the program itself is killed: a script should `exec` any
    /// long-running command so that nothing outlives the check.
    Script { command: Vec<String> },
    /// Always healthy.
    None,
}

impl fmt::Display for Probe {
    /// Names the checked target for log lines ("10.1.1.11:8080").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Tcp { addr }
            | Probe::Http { addr, .. }
            | Probe::Udp { addr, .. }
            | Probe::Dns { addr, .. } => write!(f, "{addr}"),
            Probe::Ping { ip } => write!(f, "{ip}"),
            Probe::Script { command } => write!(f, "(check script {:?})", command.join(" ")),
            Probe::None => f.write_str("(no check)"),
        }
    }
}

/// A periodic check of one backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    /// The service the backend serves; log lines name it with the backend.
    pub service: String,
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

/// Rise/fall logic: turns consecutive check results into state changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthState {
    rise: u32,
    fall: u32,
    healthy: bool,
    /// False until the first UP transition, which needs one success only.
    been_up: bool,
    last_ok: Option<bool>,
    streak: u32,
}

impl HealthState {
    /// A new backend, DOWN until its first successful check.
    pub fn new(rise: u32, fall: u32) -> Self {
        HealthState {
            rise: rise.max(1),
            fall: fall.max(1),
            healthy: false,
            been_up: false,
            last_ok: None,
            streak: 0,
        }
    }

    /// Records one check result; returns the new state if it changed.
    pub fn record(&mut self, ok: bool) -> Option<bool> {
        if self.last_ok == Some(ok) {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.last_ok = Some(ok);
            self.streak = 1;
        }
        let change = match (self.healthy, ok) {
            (false, true) if !self.been_up || self.streak >= self.rise => true,
            (true, false) => self.streak >= self.fall,
            _ => false,
        };
        if !change {
            return None;
        }
        self.healthy = ok;
        self.been_up |= ok;
        Some(ok)
    }

    /// Whether the backend should get traffic.
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// How many results in a row had the same outcome as the last one.
    pub fn streak(&self) -> u32 {
        self.streak
    }
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

/// Handle to a running periodic check; dropping it or calling
/// [`Checker::stop`] ends the check (a running script is killed).
#[derive(Debug)]
#[must_use = "dropping a Checker stops its health check"]
pub struct Checker {
    task: JoinHandle<()>,
}

impl Checker {
    /// Starts checking on the current tokio runtime (must be called from
    /// within one). The first check runs after a random delay of up to 10% of
    /// the interval, so checkers started together spread out. Every result is
    /// sent on `tx`; sending waits when the channel is full, so a slow
    /// consumer delays checks rather than losing transitions. The check ends
    /// by itself when the receiver is dropped.
    pub fn spawn(key: u64, spec: CheckSpec, tx: mpsc::Sender<HealthEvent>) -> Checker {
        Checker {
            task: tokio::spawn(run(key, spec, tx)),
        }
    }

    /// Ends the check.
    pub fn stop(self) {}
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A random delay in `[0, interval / 10)`.
fn start_jitter(key: u64, interval: Duration) -> Duration {
    let span = interval.as_nanos() / 10;
    if span == 0 {
        return Duration::ZERO;
    }
    // RandomState is seeded randomly per process and per instance, which is
    // all the randomness spreading check start times needs.
    let r = RandomState::new().hash_one(key);
    Duration::from_nanos(u64::try_from(u128::from(r) % span).unwrap_or(0))
}

async fn run(key: u64, spec: CheckSpec, tx: mpsc::Sender<HealthEvent>) {
    let interval = spec.interval.max(Duration::from_millis(1));
    let mut state = HealthState::new(spec.rise, spec.fall);
    let mut ticker =
        tokio::time::interval_at(Instant::now() + start_jitter(key, interval), interval);
    // A check that overran its interval is followed by the next one at once,
    // then the schedule continues from there instead of bursting to catch up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        ticker.tick().await;
        let result = probe_once(&spec.probe, spec.timeout).await;
        let change = state.record(result.ok);
        log_result(&spec, &state, change, first, &result);
        first = false;
        let event = HealthEvent {
            key,
            healthy: state.healthy(),
            result,
            transition: change.is_some(),
        };
        if tx.send(event).await.is_err() {
            return;
        }
    }
}

fn log_result(
    spec: &CheckSpec,
    state: &HealthState,
    change: Option<bool>,
    first: bool,
    result: &CheckResult,
) {
    if let Some(line) = transition_line(spec, state, change, first, result) {
        log::info!("{line}");
    }
}

/// What a health transition logs: the service, the backend and why.
fn transition_line(
    spec: &CheckSpec,
    state: &HealthState,
    change: Option<bool>,
    first: bool,
    result: &CheckResult,
) -> Option<String> {
    let n = state.streak();
    let checks = if n == 1 { "check" } else { "checks" };
    let (service, probe, detail) = (&spec.service, &spec.probe, &result.detail);
    match change {
        Some(true) => Some(format!(
            "service {service}: backend {probe} UP after {n} successful {checks}: {detail}"
        )),
        Some(false) => Some(format!(
            "service {service}: backend {probe} DOWN after {n} failed {checks}: {detail}"
        )),
        None if first && !result.ok => Some(format!(
            "service {service}: backend {probe} stays DOWN until its first successful check: {detail}"
        )),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_name_the_service_and_the_backend() {
        let spec = CheckSpec {
            service: "web".into(),
            probe: Probe::Tcp {
                addr: "10.0.0.11:8080".parse().expect("address"),
            },
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            rise: 1,
            fall: 1,
        };
        let mut state = HealthState::new(1, 1);
        let failed = CheckResult {
            ok: false,
            detail: "connect refused".into(),
            duration: Duration::ZERO,
            at: SystemTime::now(),
        };
        let change = state.record(false);
        let line = transition_line(&spec, &state, change, true, &failed).expect("logged");
        assert!(line.starts_with("service web: backend "), "{line}");
        assert!(
            line.contains("10.0.0.11:8080") && line.contains("connect refused"),
            "{line}"
        );
    }

    /// Feeds `results` ('+' ok, '-' fail) and returns the transitions as a
    /// string of the same length ('U' up, 'D' down, '.' none).
    fn run_sequence(rise: u32, fall: u32, results: &str) -> String {
        let mut s = HealthState::new(rise, fall);
        results
            .chars()
            .map(|c| match s.record(c == '+') {
                Some(true) => {
                    assert!(s.healthy());
                    'U'
                }
                Some(false) => {
                    assert!(!s.healthy());
                    'D'
                }
                None => '.',
            })
            .collect()
    }

    #[test]
    fn rise_fall_sequences() {
        let cases: &[(u32, u32, &str, &str)] = &[
            // First success is enough to come up, whatever `rise` is.
            (3, 3, "+", "U"),
            (3, 3, "---+", "...U"),
            // Starts DOWN: failures before the first success change nothing.
            (1, 1, "----", "...."),
            // Fall needs consecutive failures; a success resets the count.
            (2, 3, "+--+---", "U.....D"),
            (2, 2, "+-+-+--", "U.....D"),
            // After a DOWN, rise needs consecutive successes.
            (2, 2, "+--+-++", "U.D...U"),
            (3, 1, "+-++-+++", "UD.....U"),
            (1, 1, "+-+-", "UDUD"),
            // 0 behaves as 1.
            (0, 0, "+-+", "UDU"),
            // Staying in a state never re-reports it.
            (1, 1, "++++----", "U...D..."),
        ];
        for (rise, fall, input, want) in cases {
            assert_eq!(
                run_sequence(*rise, *fall, input),
                *want,
                "rise={rise} fall={fall} input={input}"
            );
        }
    }

    #[test]
    fn streak_counts_same_outcomes() {
        let mut s = HealthState::new(2, 3);
        for (ok, want) in [
            (true, 1),
            (false, 1),
            (false, 2),
            (false, 3),
            (true, 1),
            (true, 2),
        ] {
            s.record(ok);
            assert_eq!(s.streak(), want);
        }
        assert!(s.healthy());
    }

    #[test]
    fn jitter_stays_within_tenth_of_interval() {
        let interval = Duration::from_millis(200);
        let mut distinct = std::collections::HashSet::new();
        for key in 0..200 {
            let j = start_jitter(key, interval);
            assert!(j < interval / 10, "{j:?}");
            distinct.insert(j);
        }
        assert!(
            distinct.len() > 100,
            "jitter is not spread: {}",
            distinct.len()
        );
        assert_eq!(start_jitter(1, Duration::from_nanos(5)), Duration::ZERO);
    }

    #[test]
    fn probe_names_target() {
        let addr = SocketAddrV4::new([10, 1, 1, 11].into(), 8080);
        assert_eq!(Probe::Tcp { addr }.to_string(), "10.1.1.11:8080");
        let script = Probe::Script {
            command: vec!["/bin/check".into(), "a".into()],
        };
        assert_eq!(script.to_string(), "(check script \"/bin/check a\")");
    }
}
