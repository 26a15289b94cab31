//! What the wire shows of VRRP: the virtual MAC in a bridge's table and
//! adverts caught by tcpdump.

use std::net::Ipv4Addr;
use std::time::Duration;

use viplab::{Lab, LabProcess};

use super::VMAC;

/// Whether `bridge fdb show dev eth0` on `role` lists the virtual MAC (in
/// the interface's unicast filter).
pub fn vmac_in_fdb(lab: &Lab, role: &str) -> bool {
    lab.exec_ok(role, &["bridge", "fdb", "show", "dev", "eth0"])
        .unwrap_or_else(|e| panic!("bridge fdb show on {role}: {e}"))
        .contains(VMAC)
}

/// Starts tcpdump on `role`'s eth0, printing link-level and IP header
/// detail of VRRP packets, and waits until it listens.
pub fn sniff_vrrp(lab: &Lab, role: &str) -> LabProcess {
    let sniff = lab
        .spawn(
            role,
            &[
                "tcpdump",
                "-l",
                "-n",
                "-e",
                "-v",
                "-i",
                "eth0",
                "ip proto 112",
            ],
        )
        .expect("tcpdump");
    lab.wait_until("tcpdump listens", Duration::from_secs(5), || {
        sniff.log().contains("listening on")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", sniff.log()));
    sniff
}

/// Whether tcpdump saw an advert from `src` to `dst` sent from the virtual
/// MAC to `dst_mac`, TTL 255, DF off. With `-e -v` the first line of a
/// packet has the MACs and IP header fields, the next one the addresses.
pub fn saw_vmac_advert(sniff: &LabProcess, src: Ipv4Addr, dst: Ipv4Addr, dst_mac: &str) -> bool {
    let log = sniff.log();
    let lines: Vec<&str> = log.lines().collect();
    lines.windows(2).any(|w| {
        w[0].contains(&format!("{VMAC} > {dst_mac}, ethertype IPv4"))
            && w[0].contains("ttl 255")
            && w[0].contains("flags [none]")
            && w[0].contains("proto VRRP (112)")
            && w[1]
                .trim_start()
                .starts_with(&format!("{src} > {dst}: VRRP"))
    })
}
