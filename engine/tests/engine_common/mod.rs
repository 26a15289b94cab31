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

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

pub const A_ADDR: Ipv4Addr = Ipv4Addr::new(10, 200, 1, 1);
pub const L0_ADDR: Ipv4Addr = Ipv4Addr::new(10, 200, 1, 2);
pub const L1_ADDR: Ipv4Addr = Ipv4Addr::new(10, 200, 2, 2);
pub const B_ADDR: Ipv4Addr = Ipv4Addr::new(10, 200, 2, 1);
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 200, 9, 9);

/// Runs `ip ARGS`, failing the test with its output if it fails.
pub fn ip(args: &[&str]) -> String {
    run("ip", args)
}

pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace, deleted on drop (also when the test fails).
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: String) -> Netns {
        // A leftover from a crashed earlier run with the same pid.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace, failing the test if it fails.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Runs `f` on a thread that has entered this namespace; threads it
    /// spawns (engine workers) and sockets it opens stay in it.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: setns on a namespace file we hold open; it only
            // changes this (dedicated) thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread panicked")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
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

impl Lab {
    /// Builds A — L — B with `queues` rx/tx queues on every veth.
    pub fn new(tag: &str, queues: u16) -> Lab {
        let p = prefix(tag);
        let lab = Lab {
            a: Netns::new(format!("{p}a")),
            l: Netns::new(format!("{p}l")),
            b: Netns::new(format!("{p}b")),
        };
        let q = queues.to_string();
        for (left, left_ns, right, right_ns) in
            [("a0", &lab.a, "l0", &lab.l), ("l1", &lab.l, "b0", &lab.b)]
        {
            // Created under temporary names in the root namespace, then
            // moved and renamed, so parallel tests never clash.
            let tl = format!("{p}{left}");
            let tr = format!("{p}{right}");
            ip(&[
                "link",
                "add",
                &tl,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                &tr,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
            ]);
            ip(&["link", "set", &tl, "netns", &left_ns.name]);
            ip(&["link", "set", &tr, "netns", &right_ns.name]);
            left_ns.exec(&["ip", "link", "set", &tl, "name", left]);
            right_ns.exec(&["ip", "link", "set", &tr, "name", right]);
        }
        lab.a
            .exec(&["ip", "addr", "add", "10.200.1.1/24", "dev", "a0"]);
        lab.l
            .exec(&["ip", "addr", "add", "10.200.1.2/24", "dev", "l0"]);
        lab.l
            .exec(&["ip", "addr", "add", "10.200.2.2/24", "dev", "l1"]);
        lab.b
            .exec(&["ip", "addr", "add", "10.200.2.1/24", "dev", "b0"]);
        // B accepts the forwarded VIP traffic as its own.
        lab.b
            .exec(&["ip", "addr", "add", "10.200.9.9/32", "dev", "b0"]);
        for (ns, dev) in [
            (&lab.a, "a0"),
            (&lab.l, "l0"),
            (&lab.l, "l1"),
            (&lab.b, "b0"),
        ] {
            ns.exec(&["ip", "link", "set", dev, "up"]);
        }
        lab.a
            .exec(&["ip", "route", "add", "10.200.9.0/24", "via", "10.200.1.2"]);
        lab.b
            .exec(&["ip", "route", "add", "10.200.1.0/24", "via", "10.200.2.2"]);
        lab
    }

    /// MAC address of `dev` in `ns`.
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
