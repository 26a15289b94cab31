//! The bench topology: three namespaces in a line,
//!
//! ```text
//!  gen ns            DUT ns                     sink ns
//!  gen0 ───veth─── dut0 [device under test] dut1 ───veth─── snk0
//!  10.88.0.2       10.88.0.1        10.88.1.1               10.88.1.2 (+ backends .11–.14)
//!  2001:db8::2     2001:db8::1      2001:db8:1::1           2001:db8:1::2 (+ backends ::11–::14)
//! ```
//!
//! named like lab namespaces (`vl-<name>-gen|dut|sink`), so `viplab down`
//! removes what a killed run left behind.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{bail, Context, Result};
use viplab::netns::{self, End};

use crate::plan::Family;

/// The VIP the DUT serves, on the generator side.
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 100);
pub const VIP_PORT: u16 = 80;
pub const GEN_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
pub const DUT_IN_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
pub const DUT_OUT_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 1);
pub const SINK_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 2);
/// Full-NAT source address of the DUT.
pub const SNAT_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 100);
/// First source address of the generated flows (10.90.0.0/16).
pub const FLOW_BASE: Ipv4Addr = Ipv4Addr::new(10, 90, 0, 0);
/// First source address of the established flows in the SYN-flood mix.
pub const EST_BASE: Ipv4Addr = Ipv4Addr::new(10, 91, 0, 0);
/// The sync link between the DUT (the master) and the backup node of the
/// sync scenario.
pub const SYNC_MASTER_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 2, 1);
pub const SYNC_BACKUP_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 2, 2);
/// The backup's own addresses on its (unconnected) dataplane ports.
pub const BACKUP_IN_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 3);
pub const BACKUP_OUT_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 1, 3);
/// Backends: "virtual" addresses on the sink's interface.
pub const BACKENDS: usize = 4;

pub fn backend_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 88, 1, 11 + i as u8)
}

/// The IPv6 twins of the addresses above: 2001:db8::/64 on the generator
/// side, 2001:db8:1::/64 on the sink side.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50);
pub const GEN_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
pub const DUT_IN_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
pub const DUT_OUT_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
pub const SINK_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
/// First source address of the generated IPv6 flows (2001:db8:90::/64; the
/// generator varies the last 32 bits).
pub const FLOW_BASE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x90, 0, 0, 0, 0, 0);
/// Full-NAT source address of the DUT for IPv6 services.
pub const SNAT_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x100);

pub fn backend_ip6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x11 + i as u16)
}

/// The VIP of `family`.
pub fn vip(family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => VIP.into(),
        Family::Ipv6 => VIP6.into(),
    }
}

/// Backend `i` of `family`.
pub fn backend(family: Family, i: usize) -> IpAddr {
    match family {
        Family::Ipv4 => backend_ip(i).into(),
        Family::Ipv6 => backend_ip6(i).into(),
    }
}

/// The full-NAT source address of `family`.
pub fn snat(family: Family) -> IpAddr {
    match family {
        Family::Ipv4 => SNAT_IP.into(),
        Family::Ipv6 => SNAT_IP6.into(),
    }
}

/// One interface of the topology.
#[derive(Clone, Debug)]
pub struct Iface {
    pub ns: String,
    pub name: &'static str,
    pub ifindex: u32,
    pub mac: [u8; 6],
}

/// The running topology; dropping it deletes the namespaces.
pub struct Topo {
    pub name: String,
    pub gen: Iface,
    pub dut_in: Iface,
    pub dut_out: Iface,
    pub sink: Iface,
}

fn read_iface(ns: &str, name: &'static str) -> Result<Iface> {
    let ifindex = netns::exec_ok(ns, &["cat", &format!("/sys/class/net/{name}/ifindex")])?
        .trim()
        .parse()
        .with_context(|| format!("ifindex of {name} in {ns}"))?;
    let text = netns::exec_ok(ns, &["cat", &format!("/sys/class/net/{name}/address")])?;
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = text.trim().split(':').collect();
    if parts.len() != 6 {
        bail!("unexpected MAC address `{}` of {name} in {ns}", text.trim());
    }
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).with_context(|| format!("MAC of {name} in {ns}"))?;
    }
    Ok(Iface {
        ns: ns.to_string(),
        name,
        ifindex,
        mac,
    })
}

pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Topo {
    /// Builds the topology under lab name `name` (see `viplab::unique_name`).
    pub fn up(name: &str) -> Result<Topo> {
        let ns = |role: &str| format!("{}{name}-{role}", viplab::NS_PREFIX);
        let (g, d, s) = (ns("gen"), ns("dut"), ns("sink"));
        let mut made = Vec::new();
        let built = (|| -> Result<Topo> {
            for n in [&g, &d, &s] {
                netns::add(n)?;
                made.push(n.clone());
            }
            let end = |ns, ifname| End { ns, ifname };
            netns::veth(end(&g, "gen0"), end(&d, "dut0"), 1)?;
            netns::veth(end(&d, "dut1"), end(&s, "snk0"), 1)?;
            netns::addr(&g, "gen0", &format!("{GEN_IP}/24"))?;
            netns::addr(&d, "dut0", &format!("{DUT_IN_IP}/24"))?;
            netns::addr(&d, "dut1", &format!("{DUT_OUT_IP}/24"))?;
            netns::addr(&s, "snk0", &format!("{SINK_IP}/24"))?;
            for i in 0..BACKENDS {
                netns::addr(&s, "snk0", &format!("{}/24", backend_ip(i)))?;
            }
            // IPv6 beside IPv4: the lab's namespaces start with it off. Our
            // addresses skip duplicate address detection (addr6), so they
            // are in use at once rather than tentative for a second or more.
            let sink6: Vec<Ipv6Addr> = [SINK_IP6]
                .into_iter()
                .chain((0..BACKENDS).map(backend_ip6))
                .collect();
            for n in [&g, &d, &s] {
                netns::ipv6_on(n)?;
            }
            for (n, dev, ips) in [
                (&g, "gen0", &[GEN_IP6][..]),
                (&d, "dut0", &[DUT_IN_IP6][..]),
                (&d, "dut1", &[DUT_OUT_IP6][..]),
                (&s, "snk0", &sink6[..]),
            ] {
                for &ip in ips {
                    netns::addr6(n, dev, ip)?;
                }
            }
            for (n, dev) in [(&g, "gen0"), (&d, "dut0"), (&d, "dut1"), (&s, "snk0")] {
                netns::link_up(n, dev)?;
            }
            // Frames redirected into a veth need NAPI on the receiving end
            // (XDP or GRO): GRO keeps dut0 receiving when no XDP program is
            // attached (the kernel baseline). Threaded NAPI gives dut0's
            // receive path a kthread we can pin to the DUT's core.
            netns::gro_on(&d, "dut0")?;
            netns::exec_ok(&d, &["sh", "-c", "echo 1 > /sys/class/net/dut0/threaded"])?;
            netns::sysctl(
                &d,
                &[
                    "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.default.rp_filter=0",
                    "net.ipv4.conf.dut0.rp_filter=0",
                ],
            )?;
            // The generated flows' sources (and the SYN flood's established
            // ones) are behind the generator.
            netns::route(&d, "10.90.0.0/15", &GEN_IP.to_string())?;
            netns::route(&d, &format!("{FLOW_BASE6}/64"), &GEN_IP6.to_string())?;
            let sink = read_iface(&s, "snk0")?;
            let gen = read_iface(&g, "gen0")?;
            let dut_in = read_iface(&d, "dut0")?;
            let dut_out = read_iface(&d, "dut1")?;
            // Static neighbours: the DUT reaches the virtual backends (and the
            // generator) without ARP, so the sink only has to count.
            let (sink_mac, gen_mac) = (mac_string(&sink.mac), mac_string(&gen.mac));
            for i in 0..BACKENDS {
                netns::neigh(&d, backend_ip(i).into(), &sink_mac, "dut1")?;
                netns::neigh(&d, backend_ip6(i).into(), &sink_mac, "dut1")?;
            }
            for ip in [IpAddr::from(SINK_IP), SINK_IP6.into()] {
                netns::neigh(&d, ip, &sink_mac, "dut1")?;
            }
            for ip in [IpAddr::from(GEN_IP), GEN_IP6.into()] {
                netns::neigh(&d, ip, &gen_mac, "dut0")?;
            }
            Ok(Topo {
                name: name.to_string(),
                gen,
                dut_in,
                dut_out,
                sink,
            })
        })();
        if built.is_err() {
            for n in made.iter().rev() {
                let _ = netns::remove(n);
            }
        }
        built.with_context(|| format!("building the bench topology {name}"))
    }

    /// Frames the generator's veth could not hand to dut0 because dut0's
    /// receive ring was full (`ethtool -S`: the `*_xdp_xmit_errors`
    /// counters): they were lost before any DUT code ran.
    pub fn refused_before_dut(&self) -> Result<u64> {
        let out = netns::exec_ok(&self.gen.ns, &["ethtool", "-S", self.gen.name])?;
        Ok(xmit_errors(&out))
    }

    pub fn gen_ns(&self) -> &str {
        &self.gen.ns
    }
    pub fn dut_ns(&self) -> &str {
        &self.dut_in.ns
    }
    pub fn sink_ns(&self) -> &str {
        &self.sink.ns
    }
}

/// The backup node's namespace (`vl-<name>-bk`) of the sync scenario:
///
/// ```text
///  DUT ns                        backup ns
///  dsy0 ─────────veth────────── bsy0          (sync, 10.88.2.0/24)
///  10.88.2.1                    10.88.2.2
///                               bk0 ─veth─ bkp0, bk1 ─veth─ bkp1
/// ```
///
/// bk0 and bk1 are the backup's dataplane ports (10.88.0.3, 10.88.1.3),
/// looped to peers in its own namespace: it forwards nothing in the
/// scenario, but holds the same services and resolves the same backends
/// (static neighbours on bk1), so it can apply the master's records.
/// Dropping it deletes the namespace and with it dsy0.
pub struct Backup {
    pub ns: String,
    pub sync: Iface,
    pub master_sync: Iface,
}

impl Topo {
    /// Adds the backup namespace and the sync link to the DUT namespace.
    pub fn backup(&self) -> Result<Backup> {
        let b = format!("{}{}-bk", viplab::NS_PREFIX, self.name);
        let d = self.dut_ns().to_string();
        netns::add(&b)?;
        let built = (|| -> Result<Backup> {
            let end = |ns, ifname| End { ns, ifname };
            netns::veth(end(&d, "dsy0"), end(&b, "bsy0"), 1)?;
            netns::veth(end(&b, "bk0"), end(&b, "bkp0"), 1)?;
            netns::veth(end(&b, "bk1"), end(&b, "bkp1"), 1)?;
            netns::addr(&d, "dsy0", &format!("{SYNC_MASTER_IP}/24"))?;
            netns::addr(&b, "bsy0", &format!("{SYNC_BACKUP_IP}/24"))?;
            netns::addr(&b, "bk0", &format!("{BACKUP_IN_IP}/24"))?;
            netns::addr(&b, "bk1", &format!("{BACKUP_OUT_IP}/24"))?;
            netns::link_up(&d, "dsy0")?;
            for dev in ["bsy0", "bk0", "bkp0", "bk1", "bkp1"] {
                netns::link_up(&b, dev)?;
            }
            let peer = read_iface(&b, "bkp1")?;
            for ip in (0..BACKENDS).map(backend_ip) {
                netns::neigh(&b, ip.into(), &mac_string(&peer.mac), "bk1")?;
            }
            Ok(Backup {
                ns: b.clone(),
                sync: read_iface(&b, "bsy0")?,
                master_sync: read_iface(&d, "dsy0")?,
            })
        })();
        if built.is_err() {
            let _ = netns::remove(&b);
        }
        built.context("building the backup node's namespace")
    }
}

impl Drop for Backup {
    fn drop(&mut self) {
        if let Err(e) = netns::remove(&self.ns) {
            eprintln!("vipbench: removing {}: {e:#}", self.ns);
        }
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        if let Err(e) = viplab::down(&self.name) {
            eprintln!("vipbench: removing topology {}: {e:#}", self.name);
        }
    }
}

/// Pins the threaded-NAPI kthreads of interface `dev` (named `napi/<dev>-<id>`)
/// to `core`; returns their pids. Interfaces of the same name in other
/// namespaces are pinned too (harmless: only one bench runs at a time).
pub fn pin_napi(dev: &str, core: usize) -> Result<Vec<u32>> {
    let prefix = format!("napi/{dev}-");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .context("listing /proc")?
        .flatten()
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim().starts_with(&prefix) {
            let mut set = nix::sched::CpuSet::new();
            set.set(core).context("core number out of range")?;
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(pid as i32), &set)
                .with_context(|| format!("pinning NAPI thread {pid} of {dev} to core {core}"))?;
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// Sums the `*_xdp_xmit_errors` counters of `ethtool -S` output.
fn xmit_errors(ethtool_s: &str) -> u64 {
    ethtool_s
        .lines()
        .filter_map(|l| l.trim().split_once(':'))
        .filter(|(k, _)| k.trim().ends_with("_xdp_xmit_errors"))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xmit_errors_sums_every_queue_and_nothing_else() {
        let out = "NIC statistics:\n     peer_ifindex: 7\n     rx_queue_0_xdp_packets: 99\n     \
                   tx_queue_0_xdp_xmit: 2399744\n     tx_queue_0_xdp_xmit_errors: 5439640\n     \
                   tx_queue_1_xdp_xmit_errors: 10\n     garbage line\n";
        assert_eq!(xmit_errors(out), 5_439_650);
        assert_eq!(xmit_errors(""), 0);
    }
}
