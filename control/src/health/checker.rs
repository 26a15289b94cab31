//! Runs a check periodically on the tokio runtime and reports every result.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::state::HealthState;
use super::{probe_once, CheckResult, CheckSpec, HealthEvent};

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
    let (service, backend, detail) = (&spec.service, backend_label(spec), &result.detail);
    match change {
        Some(true) => Some(format!(
            "service {service}: backend {backend} UP after {n} successful {checks}: {detail}"
        )),
        Some(false) => Some(format!(
            "service {service}: backend {backend} DOWN after {n} failed {checks}: {detail}"
        )),
        None if first && !result.ok => Some(format!(
            "service {service}: backend {backend} stays DOWN until its first successful check: {detail}"
        )),
        None => None,
    }
}

/// The backend's address, and how it is checked where the check is not a
/// connection to that address itself: "10.0.0.11:80 (checked at
/// 10.0.0.11:8080)", "10.0.0.11:80 (no check)".
fn backend_label(spec: &CheckSpec) -> String {
    match spec.probe.beside(spec.backend) {
        Some(how) => format!("{} ({how})", spec.backend),
        None => spec.backend.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::health::Probe;

    #[test]
    fn transitions_name_the_service_and_the_backend() {
        let spec = CheckSpec {
            service: "web".into(),
            backend: "10.0.0.11:80".parse().expect("address"),
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
        assert_eq!(
            line,
            "service web: backend 10.0.0.11:80 (checked at 10.0.0.11:8080) stays DOWN until \
             its first successful check: connect refused"
        );

        let unchecked = CheckSpec {
            probe: Probe::None,
            ..spec.clone()
        };
        assert_eq!(backend_label(&unchecked), "10.0.0.11:80 (no check)");
        let own = CheckSpec {
            probe: Probe::Tcp { addr: spec.backend },
            ..spec
        };
        assert_eq!(backend_label(&own), "10.0.0.11:80");
    }

    /// Feeds `results` ('+' ok, '-' fail) and returns the transitions as a
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
}
