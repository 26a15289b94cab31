//! Lab helpers for the engine tests: network namespaces joined by veth
//! pairs, and running code inside a namespace.
//!
//! Topology (per test, names unique by test name and pid):
//!
//! ```text
//!   ns A  a0 10.200.1.1 ──── l0 10.200.1.2  ns L  l1 10.200.2.2 ──── b0 10.200.2.1  ns B
//!                                        (engine)                     (+ the VIP, to receive)
//! ```

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use viplab::netns;

pub const A_ADDR: Ipv4Addr = Ipv4Addr::new(10, 200, 1, 1);
pub const L0_ADDR: Ipv4Addr = Ipv4Addr::new(10, 200, 1, 2);
pub const L1_ADDR: Ipv4Addr = Ipv4Addr::new(10, 200, 2, 2);
pub const B_ADDR: Ipv4Addr = Ipv4Addr::new(10, 200, 2, 1);
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 200, 9, 9);

/// A network namespace, deleted on drop (also when the test fails).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: String) -> Netns {
        // A leftover from a crashed earlier run with the same pid.
        let _ = netns::remove(&name);
        netns::add(&name).unwrap_or_else(|e| panic!("namespace {name}: {e:#}"));
        Netns { name }
    }

    /// Runs a command inside the namespace, failing the test if it fails.
    pub fn exec(&self, args: &[&str]) -> String {
        netns::exec_ok(&self.name, args).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Runs `f` on a thread that has entered this namespace; threads it
    /// spawns (engine workers) and sockets it opens stay in it.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        netns::in_ns(&self.name, move || Ok(f())).unwrap_or_else(|e| panic!("{e:#}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = netns::remove(&self.name);
    }
}

/// The three namespaces of a test and their interface names.
pub struct Lab {
    pub a: Netns,
    pub l: Netns,
    pub b: Netns,
}

/// Short unique prefix: namespace and interface names must stay under 16
/// bytes, and tests run in parallel.
fn prefix(tag: &str) -> String {
    format!("{tag}{}", std::process::id() % 100_000)
}

/// Fails the test with the builder's message.
fn must(what: &str, r: anyhow::Result<()>) {
    if let Err(e) = r {
        panic!("{what}: {e:#}");
    }
}

impl Lab {
    /// Builds A — L — B with `queues` rx/tx queues on every veth.
    pub fn new(tag: &str, queues: u16) -> Lab {
        must("lab", netns::check_root());
        let p = prefix(tag);
        let lab = Lab {
            a: Netns::new(format!("{p}a")),
            l: Netns::new(format!("{p}l")),
            b: Netns::new(format!("{p}b")),
        };
        for (left, left_ns, right, right_ns) in
            [("a0", &lab.a, "l0", &lab.l), ("l1", &lab.l, "b0", &lab.b)]
        {
            let a = netns::End {
                ns: &left_ns.name,
                ifname: left,
            };
            let b = netns::End {
                ns: &right_ns.name,
                ifname: right,
            };
            must("veth", netns::veth(a, b, queues));
        }
        for (ns, dev, cidr) in [
            (&lab.a, "a0", "10.200.1.1/24"),
            (&lab.l, "l0", "10.200.1.2/24"),
            (&lab.l, "l1", "10.200.2.2/24"),
            (&lab.b, "b0", "10.200.2.1/24"),
            // B accepts the forwarded VIP traffic as its own.
            (&lab.b, "b0", "10.200.9.9/32"),
        ] {
            must("address", netns::addr(&ns.name, dev, cidr));
        }
        for (ns, dev) in [
            (&lab.a, "a0"),
            (&lab.l, "l0"),
            (&lab.l, "l1"),
            (&lab.b, "b0"),
        ] {
            must("link", netns::link_up(&ns.name, dev));
        }
        must(
            "route",
            netns::route(&lab.a.name, "10.200.9.0/24", "10.200.1.2"),
        );
        must(
            "route",
            netns::route(&lab.b.name, "10.200.1.0/24", "10.200.2.2"),
        );
        lab
    }

    /// MAC address of `dev` in `ns`.
    /// Runs the scapy `script` in A with argv: A's MAC, l0's MAC, then
    /// `args`.
    pub fn scapy_in_a(&self, script: &str, args: &[&str]) {
        let mac = |ns: &Netns, dev: &str| {
            ns.exec(&["cat", &format!("/sys/class/net/{dev}/address")])
                .trim()
                .to_string()
        };
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.a.name,
                "/usr/bin/python3",
                "-c",
                script,
            ])
            .arg(mac(&self.a, "a0"))
            .arg(mac(&self.l, "l0"))
            .args(args)
            .output()
            .expect("run python3 with scapy");
        assert!(
            out.status.success(),
            "scapy sender failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn mac(ns: &Netns, dev: &str) -> [u8; 6] {
        let out = ns.exec(&["cat", &format!("/sys/class/net/{dev}/address")]);
        let mut mac = [0u8; 6];
        for (m, part) in mac.iter_mut().zip(out.trim().split(':')) {
            *m = u8::from_str_radix(part, 16).expect("MAC from sysfs");
        }
        mac
    }

    /// Whether an XDP program is attached to `dev` in `ns`.
    pub fn has_xdp(ns: &Netns, dev: &str) -> bool {
        ns.exec(&["ip", "link", "show", "dev", dev]).contains("xdp")
    }
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends one round of SYNs marked `mark-syn-*` followed by 20 segments of
/// established connections marked `mark-ack-*`, to an engine whose handler
/// records markers in `seen`; waits until all the ACKs arrived (then every
/// SYN has been decided). Returns what the engine saw and how long the
/// sending took.
pub fn syn_round(
    seen: &std::sync::Mutex<Vec<String>>,
    send: impl FnOnce(),
) -> (Vec<String>, Duration) {
    seen.lock().unwrap().clear();
    let start = Instant::now();
    send();
    let sending = start.elapsed();
    let all_acks = wait_for(Duration::from_secs(10), || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.starts_with("mark-ack-"))
            .count()
            == 20
    });
    let seen = seen.lock().unwrap().clone();
    assert!(all_acks, "established segments were lost: {seen:?}");
    (seen, sending)
}

/// SYN admission on a running engine: at 1 SYN/s with a burst of 4, of
/// 40 SYNs only the burst and one per second of sending reach the
/// workers, and every other one is counted; with no limit, 10 of 10 do.
/// `round(n)` is a [`syn_round`] of `n` SYNs.
pub fn check_syn_admission(
    engine: &engine::Engine,
    mut round: impl FnMut(usize) -> (Vec<String>, Duration),
) {
    let admitted = |seen: &[String]| seen.iter().filter(|s| s.starts_with("mark-syn-")).count();
    let burst = 4;
    engine
        .steering()
        .set_syn_limit(engine::SynLimit { rate: 1, burst })
        .unwrap();
    let before = engine.steering().xdp_stats().unwrap();
    let (seen, sending) = round(40);
    let passed = admitted(&seen);
    let limit = burst as usize + sending.as_secs() as usize + 1;
    assert!(
        (1..=limit).contains(&passed),
        "{passed} of 40 SYNs admitted at 1/s with burst {burst} over {sending:?}"
    );
    let after = engine.steering().xdp_stats().unwrap();
    assert_eq!(
        after.drop_syn_limit - before.drop_syn_limit,
        40 - passed as u64,
        "every SYN not admitted is counted"
    );

    engine
        .steering()
        .set_syn_limit(engine::SynLimit::default())
        .unwrap();
    let (seen, _) = round(10);
    assert_eq!(admitted(&seen), 10, "with no limit every SYN is admitted");
}
