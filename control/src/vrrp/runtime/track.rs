//! Tracking: scripts, interfaces and the dataplane's liveness, folded into
//! the (weight sum, fault) pair the core takes as [`Input::Track`].
//!
//! [`Input::Track`]: ::vrrp::Input::Track

use std::time::{Duration, Instant};

use log::{info, warn};
use tokio::sync::mpsc;

use crate::config::{TrackInterface, TrackScript};

/// Consecutive-result filter: `rise` successes to count as up, `fall`
/// failures to count as down. Unknown until the first threshold is met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RiseFall {
    rise: u32,
    fall: u32,
    up: Option<bool>,
    /// Consecutive results against the current state.
    streak: u32,
    last: Option<bool>,
}

impl RiseFall {
    pub(crate) fn new(rise: u32, fall: u32) -> Self {
        RiseFall {
            rise: rise.max(1),
            fall: fall.max(1),
            up: None,
            streak: 0,
            last: None,
        }
    }

    pub(crate) fn up(&self) -> Option<bool> {
        self.up
    }

    /// Records one result; true if the state changed.
    pub(crate) fn record(&mut self, ok: bool) -> bool {
        if self.up == Some(ok) {
            self.streak = 0;
            self.last = Some(ok);
            return false;
        }
        self.streak = if self.last == Some(ok) {
            self.streak + 1
        } else {
            1
        };
        self.last = Some(ok);
        let need = if ok { self.rise } else { self.fall };
        if self.streak >= need {
            self.up = Some(ok);
            self.streak = 0;
            return true;
        }
        false
    }
}

/// What a tracked script contributes, per keepalived: a negative weight is
/// added while it fails, a positive one while it succeeds, and weight 0
/// makes its failure a fault. Unknown (not yet decided) contributes nothing.
pub fn script_effect(weight: i32, up: Option<bool>) -> (i32, bool) {
    match (up, weight) {
        (Some(false), 0) => (0, true),
        (Some(false), w) if w < 0 => (w, false),
        (Some(true), w) if w > 0 => (w, false),
        _ => (0, false),
    }
}

/// What a tracked interface contributes: its weight while down, or a fault
/// when it has none.
pub fn interface_effect(weight: Option<i32>, up: bool) -> (i32, bool) {
    match (up, weight) {
        (true, _) => (0, false),
        (false, Some(w)) => (w, false),
        (false, None) => (0, true),
    }
}

/// Judges the dataplane from the workers' heartbeats (engine clock, ms):
/// stalled once no heartbeat has advanced for `limit` of time in which we
/// ourselves kept running. If our own polls were far apart, the whole
/// process (or machine) was starved and the workers cannot be blamed, so
/// judging starts over.
#[derive(Debug)]
pub(crate) struct Liveness {
    limit: Duration,
    last_beat: u64,
    quiet_since: Instant,
    last_poll: Instant,
}

impl Liveness {
    pub(crate) fn new(limit: Duration, now: Instant) -> Self {
        Liveness {
            limit,
            last_beat: 0,
            quiet_since: now,
            last_poll: now,
        }
    }

    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// Feeds the freshest heartbeat seen at `now` (`None`: no workers);
    /// returns whether the dataplane counts as stalled.
    pub(crate) fn observe(&mut self, beat: Option<u64>, now: Instant) -> bool {
        let starved = now.saturating_duration_since(self.last_poll) > self.limit / 2;
        self.last_poll = now;
        match beat {
            Some(b) if b != self.last_beat => {
                self.last_beat = b;
                self.quiet_since = now;
            }
            _ if starved => self.quiet_since = now,
            _ => {}
        }
        beat.is_none() || now.saturating_duration_since(self.quiet_since) > self.limit
    }
}

/// How long the dataplane may be silent before the node gives up
/// mastership: three advert intervals, at least 3 s. On a busy two-core
/// machine idle workers have been seen not to loop for up to 2 s while the
/// control plane ran; a shorter limit made mastership flap. A wedged
/// dataplane stays wedged, so a few seconds still move the VIP in time; a
/// dead process stops advertising and fails over at VRRP speed anyway.
pub(crate) const DATAPLANE_MIN_LIMIT: Duration = Duration::from_secs(3);

pub(crate) fn dataplane_limit(advert_interval: Duration) -> Duration {
    (advert_interval * 3).max(DATAPLANE_MIN_LIMIT)
}

/// Link state from sysfs: up when the operational state is `up` (or
/// `unknown`, which drivers without carrier reporting give). A missing
/// interface is down.
pub(crate) fn link_up(interface: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{interface}/operstate"))
        .map(|s| matches!(s.trim(), "up" | "unknown"))
        .unwrap_or(false)
}

/// State of every tracked thing of one instance.
#[derive(Debug)]
pub(crate) struct Tracks {
    pub(crate) scripts: Vec<(TrackScript, RiseFall)>,
    pub(crate) interfaces: Vec<(TrackInterface, bool)>,
    /// The instance's own interface: down is a fault, as in keepalived.
    pub(crate) own_interface: (String, bool),
    pub(crate) dataplane_alive: bool,
}

impl Tracks {
    pub(crate) fn new(
        scripts: &[TrackScript],
        interfaces: &[TrackInterface],
        own_interface: &str,
    ) -> Self {
        Tracks {
            scripts: scripts
                .iter()
                .map(|s| (s.clone(), RiseFall::new(s.rise, s.fall)))
                .collect(),
            interfaces: interfaces
                .iter()
                .map(|i| (i.clone(), link_up(&i.name)))
                .collect(),
            own_interface: (own_interface.to_string(), link_up(own_interface)),
            dataplane_alive: true,
        }
    }

    /// The sum of the active weights and whether anything is in fault.
    pub(crate) fn verdict(&self) -> (i32, bool) {
        let scripts = self
            .scripts
            .iter()
            .map(|(s, rf)| script_effect(s.weight, rf.up()));
        let interfaces = self
            .interfaces
            .iter()
            .map(|(i, up)| interface_effect(i.weight, *up));
        let mut sum = 0i32;
        let mut fault = !self.own_interface.1 || !self.dataplane_alive;
        for (w, f) in scripts.chain(interfaces) {
            sum = sum.saturating_add(w);
            fault |= f;
        }
        (sum, fault)
    }

    /// Re-reads link states; true if any changed. Logs each change.
    pub(crate) fn poll_links(&mut self, instance: &str) -> bool {
        let mut changed = false;
        let own = &mut self.own_interface;
        for (name, up) in std::iter::once((&own.0, &mut own.1))
            .chain(self.interfaces.iter_mut().map(|(i, up)| (&i.name, up)))
        {
            let now = link_up(name);
            if now != *up {
                *up = now;
                changed = true;
                if now {
                    info!("VRRP instance {instance}: tracked interface {name} is up again");
                } else {
                    warn!("VRRP instance {instance}: tracked interface {name} went down");
                }
            }
        }
        changed
    }
}

/// One finished run of a tracked script.
#[derive(Debug)]
pub(crate) struct ScriptResult {
    pub(crate) index: usize,
    pub(crate) ok: bool,
    pub(crate) detail: String,
}

/// Runs `script` every interval until `results` is closed, reporting each
/// outcome. A run that outlives its timeout is killed and counts as failed.
pub(crate) async fn run_script(
    index: usize,
    script: TrackScript,
    results: mpsc::Sender<ScriptResult>,
) {
    let mut tick = tokio::time::interval(script.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (ok, detail) = run_once(&script).await;
        if results
            .send(ScriptResult { index, ok, detail })
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn run_once(script: &TrackScript) -> (bool, String) {
    let Some((program, args)) = script.command.split_first() else {
        return (false, "empty command".into());
    };
    let child = super::notify::silent(program, args);
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot start {program}: {e}")),
    };
    match tokio::time::timeout(script.timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => (true, "exit 0".into()),
        Ok(Ok(status)) => (false, format!("{status}")),
        Ok(Err(e)) => (false, format!("waiting for {program} failed: {e}")),
        Err(_) => {
            let _ = child.kill().await;
            (
                false,
                format!("timed out after {} ms", script.timeout.as_millis()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_need_consecutive_results() {
        let mut rf = RiseFall::new(2, 3);
        assert_eq!(rf.up(), None);
        assert!(!rf.record(true));
        assert!(!rf.record(false), "a failure breaks the success streak");
        assert!(!rf.record(true));
        assert!(rf.record(true), "two successes in a row: up");
        assert_eq!(rf.up(), Some(true));
        assert!(!rf.record(true));
        assert!(!rf.record(false));
        assert!(!rf.record(false));
        assert!(!rf.record(true), "a success resets the failure streak");
        assert!(!rf.record(false));
        assert!(!rf.record(false));
        assert!(rf.record(false), "three failures in a row: down");
        assert_eq!(rf.up(), Some(false));
    }

    #[test]
    fn weights_and_faults_follow_keepalived() {
        assert_eq!(script_effect(-60, Some(false)), (-60, false));
        assert_eq!(script_effect(-60, Some(true)), (0, false));
        assert_eq!(script_effect(20, Some(true)), (20, false));
        assert_eq!(script_effect(20, Some(false)), (0, false));
        assert_eq!(script_effect(0, Some(false)), (0, true));
        assert_eq!(script_effect(0, None), (0, false));
        assert_eq!(script_effect(-60, None), (0, false));
        assert_eq!(interface_effect(None, false), (0, true));
        assert_eq!(interface_effect(Some(-30), false), (-30, false));
        assert_eq!(interface_effect(Some(-30), true), (0, false));
    }

    #[test]
    fn verdict_sums_weights_and_ors_faults() {
        let script = |weight| TrackScript {
            name: "s".into(),
            command: vec!["true".into()],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            weight,
            fall: 1,
            rise: 1,
        };
        let mut t = Tracks {
            scripts: vec![
                (script(-60), RiseFall::new(1, 1)),
                (script(10), RiseFall::new(1, 1)),
            ],
            interfaces: vec![(
                TrackInterface {
                    name: "x".into(),
                    weight: Some(-5),
                },
                false,
            )],
            own_interface: ("eth0".into(), true),
            dataplane_alive: true,
        };
        assert_eq!(t.verdict(), (-5, false));
        t.scripts[0].1.record(false);
        t.scripts[1].1.record(true);
        assert_eq!(t.verdict(), (-55, false));
        t.dataplane_alive = false;
        assert_eq!(t.verdict(), (-55, true));
        t.dataplane_alive = true;
        t.own_interface.1 = false;
        assert!(t.verdict().1, "own interface down is a fault");
    }

    #[test]
    fn dataplane_stalls_only_while_we_run_and_no_heartbeat_moves() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut l = Liveness::new(Duration::from_millis(300), t0);
        // Heartbeats advance: alive.
        for (i, at) in (0..10).map(|i| (i, ms(i * 50))) {
            assert!(!l.observe(Some(1000 + i), at));
        }
        // Heartbeat frozen, we keep polling every 50 ms: stalled after 300 ms.
        let frozen = 1009;
        let mut stalled_at = None;
        for n in 10..30 {
            if l.observe(Some(frozen), ms(n * 50)) && stalled_at.is_none() {
                stalled_at = Some(n * 50);
            }
        }
        assert_eq!(
            stalled_at,
            Some(800),
            "450 ms last advance + 300 ms, next poll"
        );
        // It moves again: alive at once.
        assert!(!l.observe(Some(frozen + 1), ms(1500)));

        // We were starved ourselves (a 400 ms gap between polls): no verdict
        // against the workers, judging restarts.
        let mut l = Liveness::new(Duration::from_millis(300), t0);
        assert!(!l.observe(Some(5), ms(0)));
        assert!(!l.observe(Some(5), ms(400)), "our own stall is not theirs");
        for n in [500, 600, 700] {
            assert!(!l.observe(Some(5), ms(n)), "{n}");
        }
        assert!(l.observe(Some(5), ms(750)), "then 350 ms of our own polls");

        let mut l = Liveness::new(Duration::from_millis(300), t0);
        assert!(l.observe(None, ms(0)), "no workers at all");
        assert_eq!(
            dataplane_limit(Duration::from_millis(100)),
            DATAPLANE_MIN_LIMIT
        );
        assert_eq!(
            dataplane_limit(Duration::from_secs(5)),
            Duration::from_secs(15)
        );
    }

    #[tokio::test]
    async fn scripts_report_exit_status_and_timeouts() {
        let script = |cmd: &[&str], timeout_ms| TrackScript {
            name: "s".into(),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            interval: Duration::from_millis(10),
            timeout: Duration::from_millis(timeout_ms),
            weight: 0,
            fall: 1,
            rise: 1,
        };
        assert!(run_once(&script(&["true"], 2000)).await.0);
        let (ok, detail) = run_once(&script(&["false"], 2000)).await;
        assert!(!ok && detail.contains("exit status: 1"), "{detail}");
        let (ok, detail) = run_once(&script(&["sleep", "5"], 50)).await;
        assert!(!ok && detail.contains("timed out after 50 ms"), "{detail}");
        let (ok, detail) = run_once(&script(&["/nonexistent/check"], 100)).await;
        assert!(!ok && detail.contains("cannot start"), "{detail}");
    }
}
