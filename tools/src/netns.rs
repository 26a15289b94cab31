//! The one builder of network namespaces and the links between them, used by
//! the lab topologies, the demo and vipbench: namespaces, veth pairs,
//! bridges, addresses, routes, sysctls, offloads, entering a namespace and
//! removing one with everything running in it.
//!
//! Every link is created directly inside its namespaces, so nothing is ever
//! left in the root namespace.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::process;

/// Run a command in the root namespace; a non-zero exit is an error showing
/// the command and its stderr. Returns stdout.
pub(crate) fn run(argv: &[&str]) -> Result<String> {
    let Some((program, args)) = argv.split_first() else {
        bail!("empty command");
    };
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not run `{}` (is it installed?)", shown(argv)))?;
    check_output(&shown(argv), out)
}

/// Run `argv` inside namespace `ns` and return its output, whatever its exit
/// status.
pub(crate) fn exec(ns: &str, argv: &[&str]) -> Result<Output> {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(argv)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `{}` in {ns}", shown(argv)))
}

/// Like [`exec`] but a non-zero exit is an error; returns stdout.
pub fn exec_ok(ns: &str, argv: &[&str]) -> Result<String> {
    let out = exec(ns, argv)?;
    check_output(&format!("{} (in {ns})", shown(argv)), out)
}

/// The command line for messages: embedded scripts would drown it.
pub(crate) fn shown(argv: &[&str]) -> String {
    argv.iter()
        .map(|a| if a.contains('\n') { "<script>" } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_output(what: &str, out: Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "command `{what}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Namespaces need root: fail early, saying how the lab tests are run.
pub fn check_root() -> Result<()> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .ok_or_else(|| anyhow!("no Uid line in /proc/self/status"))?;
    if euid != "0" {
        bail!(
            "the lab creates network namespaces and needs root (effective uid is {euid}); \
             run as root: the lab tests with `scripts/test` (or `cargo test --features lab` as root)"
        );
    }
    Ok(())
}

/// Create namespace `ns` with its loopback up and IPv6 off, so no router
/// solicitations or DAD frames reach the interfaces under test.
pub fn add(ns: &str) -> Result<()> {
    run(&["ip", "netns", "add", ns])?;
    run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
    sysctl(
        ns,
        &[
            "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1",
        ],
    )
}

/// Kill everything running in `ns`, then delete it (its veths go with it).
pub fn remove(ns: &str) -> Result<()> {
    let pids = run(&["ip", "netns", "pids", ns])?;
    let pids: Vec<String> = pids.split_whitespace().map(str::to_string).collect();
    process::kill_pids(&pids);
    run(&["ip", "netns", "del", ns])?;
    Ok(())
}

/// Every namespace on the host.
pub(crate) fn list() -> Result<Vec<String>> {
    let out = run(&["ip", "netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// One end of a veth pair: interface `ifname` in namespace `ns`.
#[derive(Clone, Copy, Debug)]
pub struct End<'a> {
    pub ns: &'a str,
    pub ifname: &'a str,
}

/// A veth pair from `a` to `b`, both ends created in their namespaces, with
/// `queues` rx/tx queues each (the kernel default when 1). Links stay down.
pub fn veth(a: End, b: End, queues: u16) -> Result<()> {
    let q = queues.to_string();
    let qargs = ["numtxqueues", &q, "numrxqueues", &q];
    let mut argv = vec!["ip", "link", "add", a.ifname, "netns", a.ns];
    if queues > 1 {
        argv.extend(qargs);
    }
    argv.extend(["type", "veth", "peer", "name", b.ifname, "netns", b.ns]);
    if queues > 1 {
        argv.extend(qargs);
    }
    run(&argv).map(drop)
}

/// A bridge `name` in `ns`, up. Multicast snooping is off so VRRP adverts
/// reach every port without an IGMP querier.
pub(crate) fn bridge(ns: &str, name: &str) -> Result<()> {
    run(&[
        "ip",
        "-n",
        ns,
        "link",
        "add",
        name,
        "type",
        "bridge",
        "mcast_snooping",
        "0",
    ])?;
    link_up(ns, name)
}

/// Attach `ifname` to `bridge` (both in `ns`).
pub(crate) fn attach(ns: &str, ifname: &str, bridge: &str) -> Result<()> {
    run(&["ip", "-n", ns, "link", "set", ifname, "master", bridge]).map(drop)
}

pub fn link_up(ns: &str, ifname: &str) -> Result<()> {
    run(&["ip", "-n", ns, "link", "set", ifname, "up"]).map(drop)
}

pub(crate) fn link_down(ns: &str, ifname: &str) -> Result<()> {
    run(&["ip", "-n", ns, "link", "set", ifname, "down"]).map(drop)
}

/// Set the MTU of `ifname` to 1500 and bring it up.
pub(crate) fn link_up_mtu1500(ns: &str, ifname: &str) -> Result<()> {
    run(&["ip", "-n", ns, "link", "set", ifname, "mtu", "1500", "up"]).map(drop)
}

/// Add address `cidr` ("10.77.0.2/24") to `ifname`.
pub fn addr(ns: &str, ifname: &str, cidr: &str) -> Result<()> {
    run(&["ip", "-n", ns, "addr", "add", cidr, "dev", ifname]).map(drop)
}

/// IPv6 address `ip`/64 on `ifname`, usable at once: the lab assigns every
/// address itself, so duplicate address detection would only delay it.
pub fn addr6(ns: &str, ifname: &str, ip: std::net::Ipv6Addr) -> Result<()> {
    let cidr = format!("{ip}/64");
    run(&[
        "ip", "-n", ns, "-6", "addr", "add", &cidr, "dev", ifname, "nodad",
    ])
    .map(drop)
}

/// Route `dest` ("default", "10.77.1.0/24", "2001:db8:77:1::/64") via
/// `gw`, replacing any route there was; the family is `gw`'s.
pub fn route(ns: &str, dest: &str, gw: &str) -> Result<()> {
    let family = if gw.contains(':') { "-6" } else { "-4" };
    run(&["ip", "-n", ns, family, "route", "replace", dest, "via", gw]).map(drop)
}

/// A permanent neighbour entry: `ip` is at `mac` on `dev`.
pub fn neigh(ns: &str, ip: std::net::IpAddr, mac: &str, dev: &str) -> Result<()> {
    let ip = ip.to_string();
    let argv = [
        "neigh",
        "replace",
        &ip,
        "lladdr",
        mac,
        "dev",
        dev,
        "nud",
        "permanent",
    ];
    run(&[&["ip", "-n", ns][..], &argv[..]].concat()).map(drop)
}

/// Turns IPv6 on in `ns` once its interfaces exist, without duplicate
/// address detection (which would keep link-local addresses tentative
/// for a second) or router discovery (routes are set by whoever builds
/// the namespace).
pub fn ipv6_on(ns: &str) -> Result<()> {
    let mut settings = vec![
        "net.ipv6.conf.all.accept_dad=0".to_string(),
        "net.ipv6.conf.default.accept_dad=0".to_string(),
        "net.ipv6.conf.all.accept_ra=0".to_string(),
        "net.ipv6.conf.default.accept_ra=0".to_string(),
        "net.ipv6.conf.all.router_solicitations=0".to_string(),
        "net.ipv6.conf.default.router_solicitations=0".to_string(),
    ];
    for ifname in interfaces(ns)? {
        settings.push(format!("net.ipv6.conf.{ifname}.accept_dad=0"));
        settings.push(format!("net.ipv6.conf.{ifname}.accept_ra=0"));
        settings.push(format!("net.ipv6.conf.{ifname}.router_solicitations=0"));
    }
    settings.push("net.ipv6.conf.all.disable_ipv6=0".to_string());
    settings.push("net.ipv6.conf.default.disable_ipv6=0".to_string());
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    sysctl(ns, &settings)
}

/// The names of the interfaces in `ns`.
pub fn interfaces(ns: &str) -> Result<Vec<String>> {
    let out = exec_ok(ns, &["ls", "/sys/class/net"])?;
    Ok(out.split_whitespace().map(str::to_string).collect())
}

/// Set sysctls (`key=value`) inside `ns`.
pub fn sysctl(ns: &str, settings: &[&str]) -> Result<()> {
    let mut argv = vec!["sysctl", "-q", "-w"];
    argv.extend_from_slice(settings);
    exec_ok(ns, &argv).map(drop)
}

/// Turn GRO on for `ifname`: frames XDP redirects into a veth need NAPI on
/// its receiving end, which GRO provides when no XDP program is attached.
pub fn gro_on(ns: &str, ifname: &str) -> Result<()> {
    exec_ok(ns, &["ethtool", "-K", ifname, "gro", "on"]).map(drop)
}

/// With br_netfilter loaded, bridges in `ns` would pass frames through
/// netfilter, which drops malformed IPv4 before it reaches a node under
/// test: a lab's wire must carry exactly what hosts send.
pub(crate) fn bridge_netfilter_off(ns: &str) -> Result<()> {
    if !exec(ns, &["test", "-d", "/proc/sys/net/bridge"])?
        .status
        .success()
    {
        return Ok(());
    }
    sysctl(
        ns,
        &[
            "net.bridge.bridge-nf-call-iptables=0",
            "net.bridge.bridge-nf-call-ip6tables=0",
            "net.bridge.bridge-nf-call-arptables=0",
        ],
    )
}

/// Move the calling thread into namespace `ns` (setns(2)). It stays there:
/// do this on a thread dedicated to that namespace.
pub fn enter(ns: &str) -> Result<()> {
    use std::os::fd::AsRawFd;
    let path = Path::new("/run/netns").join(ns);
    let file = std::fs::File::open(&path)
        .with_context(|| format!("opening namespace {}", path.display()))?;
    // SAFETY: setns only reads the descriptor, which `file` keeps open for
    // the duration of the call; it changes nothing else in our memory.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("entering namespace {}", path.display()));
    }
    Ok(())
}

/// Run `f` on a new thread that has entered namespace `ns`; threads it
/// spawns and sockets it opens stay in that namespace.
pub fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let ns_name = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns_name)?;
        f()
    })
    .join()
    .map_err(|_| anyhow!("a thread working in namespace {ns} panicked"))?
}
