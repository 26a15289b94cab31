//! Failover as the client sees it: a UDP prober behind the VIP and its
//! outages.

use std::time::Duration;

use serde_json::Value;
use viplab::{Lab, LabProcess};

use super::scripts::{PROBER, UDP_ECHO};
use super::{vip, Turn, VrrpLab, PROBE_PORT};

#[derive(Debug)]
pub struct Outage {
    /// When it began, from the prober's start.
    pub at_ms: u64,
    pub ms: u64,
    /// How much of it the host kept every vCPU of the machine from running.
    pub frozen_ms: u64,
}

impl Outage {
    /// The part of the outage the lab was running for.
    pub fn running_ms(&self) -> u64 {
        self.ms.saturating_sub(self.frozen_ms)
    }
}

/// Result of one prober run.
#[derive(Debug)]
pub struct Gap {
    pub outages: Vec<Outage>,
    pub tail_ms: u64,
    pub ok: u64,
}

impl Gap {
    /// The longest outage, wall clock.
    pub fn max_gap_ms(&self) -> u64 {
        self.outages.iter().map(|o| o.ms).max().unwrap_or(0)
    }

    /// The outage longest while the machine ran: what the failover itself
    /// cost the client.
    pub fn worst(&self) -> Option<&Outage> {
        self.outages.iter().max_by_key(|o| o.running_ms())
    }
}

/// Runs a UDP echo server for the prober in each role (kept for the lab's
/// lifetime).
pub fn udp_echo(lab: &Lab, roles: &[&str]) {
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
pub fn measure(lab: &VrrpLab, fail: impl FnOnce()) -> Gap {
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

pub fn assert_gap(what: &str, gap: &Gap, limit_ms: u64) {
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
