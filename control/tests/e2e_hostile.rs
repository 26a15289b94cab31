//! End to end: hostile frames into the live engine are each counted under a
//! drop reason, nothing crashes, and VIP traffic is unaffected. A SYN flood
//! larger than the flow table does not evict an established connection.

mod common;

use std::net::SocketAddrV4;
use std::time::Duration;

use common::*;
use ctlproto::reply;
use serde_json::Value;

/// Sends every class of malformed frame at the VIP from the client.
const HOSTILE: &str = r#"
import sys
from scapy.all import Ether, IP, TCP, UDP, ARP, IPv6, Raw, sendp, conf
conf.verb = 0
vip, dmac, smac = sys.argv[1], sys.argv[2], sys.argv[3]
e = Ether(src=smac, dst=dmac)
good = bytes(IP(src="10.77.0.2", dst=vip) / TCP(sport=40000, dport=8080, flags="S"))
frames = []
# IPv4 total length larger than the frame
frames.append(e / IP(src="10.77.0.2", dst=vip, len=1400) / TCP(dport=8080))
# IHL below 5
bad = bytearray(good); bad[0] = 0x43; frames.append(Ether(src=smac, dst=dmac, type=0x0800) / Raw(bytes(bad)))
# wrong header checksum
frames.append(e / IP(src="10.77.0.2", dst=vip, chksum=0x1234) / TCP(dport=8080))
# fragments
frames.append(e / IP(src="10.77.0.2", dst=vip, flags="MF", frag=0) / UDP(dport=8080) / Raw(b"x" * 32))
frames.append(e / IP(src="10.77.0.2", dst=vip, frag=10) / Raw(b"y" * 32))
# TCP header cut short
frames.append(e / IP(src="10.77.0.2", dst=vip, proto=6) / Raw(b"\x9c\x40\x1f"))
# unknown IP protocol
frames.append(e / IP(src="10.77.0.2", dst=vip, proto=47) / Raw(b"z" * 8))
# ARP for the VIP that is not Ethernet/IPv4
frames.append(Ether(src=smac, dst="ff:ff:ff:ff:ff:ff") / ARP(hwlen=8, op=1, pdst=vip))
# unknown ethertype and IPv6 go to the kernel
frames.append(Ether(src=smac, dst=dmac, type=0x88b5) / Raw(b"u" * 46))
frames.append(Ether(src=smac, dst=dmac) / IPv6(dst="fd00::1") / UDP(dport=9))
# every TCP flag combination
for flags in range(256):
    frames.append(e / IP(src="10.77.0.2", dst=vip) / TCP(sport=41000 + flags, dport=8080, flags=flags))
sendp(frames, iface="eth0")
"#;

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn hostile_frames_are_counted_and_harmless() {
    let vip = viplab::vip(3);
    let lab = nat_lab("hostile", 2, false);
    let services = [ServiceConf {
        vip: vip.into(),
        port: SERVICE_PORT,
        scheduler: "rr",
        forward: "nat",
        weights: vec![1, 1],
        check: http_check(200, 1, 2),
        extra: String::new(),
    }];
    let mut vipd =
        Vipd::start(&lab, "lb1", &node_config(&lab, "lb1", 1, "", &services)).expect("vipd starts");
    lab.wait_until("backends healthy", Duration::from_secs(20), || {
        vipd.healthy_backends() == 2
    })
    .expect("healthy");
    let addr = SocketAddrV4::new(vip, SERVICE_PORT);
    let lb_mac = mac_of(&lab, "lb1", "eth0").expect("mac");
    let client_mac = mac_of(&lab, "client", "eth0").expect("mac");
    python(
        &lab,
        "client",
        HOSTILE,
        &[&vip.to_string(), &lb_mac, &client_mac],
    )
    .expect("scapy sends hostile frames");

    let expected = [
        "bad_ipv4_length",
        "bad_ipv4_header",
        "bad_ipv4_checksum",
        "ipv4_fragment",
        "truncated_l4",
        "unsupported_protocol",
        "malformed_arp",
        "bad_tcp_flags",
        "no_flow",
    ];
    lab.wait_until(
        "every hostile class counted",
        Duration::from_secs(10),
        || expected.iter().all(|r| vipd.drops(r) > 0),
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", vipd.stats()));
    let xdp = vipd.stats().xdp;
    let decided = |d: &str| match &xdp {
        reply::XdpStats::Counters { by_decision, .. } => by_decision.get(d).copied().unwrap_or(0),
        reply::XdpStats::Unavailable { .. } => 0,
    };
    assert!(
        decided("pass_other_ethertype") > 0,
        "unknown ethertype not counted: {xdp:?}"
    );
    assert!(decided("pass_ipv6") > 0, "IPv6 not counted: {xdp:?}");

    assert!(vipd.is_running(), "vipd died:\n{}", vipd.log());
    let report = lab.http_burst("client", addr, 200, 4).expect("burst");
    assert_eq!(
        report.failed, 0,
        "VIP traffic hurt by hostile input: {:?}",
        report.errors
    );
}

/// Keeps one connection to the echo port going for `secs`, counting answers.
/// It speaks every 300 ms, longer than the flood takes to cycle the whole
/// table, so only a table that never evicts established flows keeps it.
const STEADY: &str = r#"
import json, socket, sys, time
addr = (sys.argv[1], int(sys.argv[2])); secs = float(sys.argv[3])
s = socket.create_connection(addr, timeout=5); f = s.makefile("rwb")
print("connected", flush=True)
ok = failed = 0; names = set(); at = []; end = time.time() + secs
while time.time() < end:
    try:
        f.write(b"x\n"); f.flush(); line = f.readline().decode().strip()
        if line: ok += 1; names.add(line); at.append(time.time())
        else: failed += 1; break
    except Exception:
        failed += 1; break
    time.sleep(0.3)
print(json.dumps({"ok": ok, "failed": failed, "names": sorted(names), "at": at}))
"#;

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn syn_flood_does_not_evict_established_connection() {
    const CAPACITY: usize = 1024;
    let vip = viplab::vip(4);
    let lab = nat_lab("flood", 2, false);
    start_name_servers(&lab, 2, 9000);
    let mk = |port: u16| ServiceConf {
        vip: vip.into(),
        port,
        scheduler: "rr",
        forward: "nat",
        weights: vec![1, 1],
        check: r#"{ kind = "tcp", interval_ms = 200, timeout_ms = 500, rise = 1, fall = 3 }"#
            .into(),
        extra: String::new(),
    };
    let services = [mk(SERVICE_PORT), mk(9000)];
    let extra = format!("flow_capacity = {CAPACITY}");
    let mut vipd = Vipd::start(&lab, "lb1", &node_config(&lab, "lb1", 1, &extra, &services))
        .expect("vipd starts");
    lab.wait_until("backends healthy", Duration::from_secs(20), || {
        vipd.healthy_backends() == 4
    })
    .expect("healthy");
    let pid = vipd.process.as_ref().map(|p| p.pid()).unwrap_or(0);
    let rss_before = rss_kib(pid);

    let steady = lab
        .spawn(
            "client",
            &[
                "/usr/bin/python3",
                "-c",
                STEADY,
                &vip.to_string(),
                "9000",
                "6",
            ],
        )
        .expect("steady connection");
    lab.wait_until(
        "steady connection established",
        Duration::from_secs(10),
        || steady.log().contains("connected"),
    )
    .expect("steady connection up");
    let unix_now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    let flood_start = unix_now();
    lab.exec(
        "client",
        &[
            "timeout",
            "4",
            "hping3",
            "-q",
            "-S",
            "-p",
            "8080",
            // 10k SYN/s: ten times the table per second, well within what
            // a debug build forwards, so only eviction could break the
            // established connection, not overload.
            "-i",
            "u100",
            "--rand-source",
            &vip.to_string(),
        ],
    )
    .expect("hping3 flood");
    let flood_end = unix_now();
    let mut steady = steady;
    lab.wait_until(
        "steady connection finishes",
        Duration::from_secs(20),
        || !steady.is_running(),
    )
    .expect("steady ends");
    let log = steady.log();
    let last = log.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {log}"));
    assert_eq!(
        v["failed"],
        0,
        "established connection broke during the flood: {v}\n{:?}",
        vipd.stats()
    );
    // Answers kept coming while the flood ran, not only before or after.
    let during = v["at"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_f64)
                .filter(|t| (flood_start..=flood_end).contains(t))
                .count()
        })
        .unwrap_or(0);
    assert!(
        during >= 2,
        "the established connection got {during} answers during the {:.1} s flood: {v}",
        flood_end - flood_start
    );
    assert_eq!(
        v["names"].as_array().map(Vec::len),
        Some(1),
        "established connection changed backend: {v}"
    );
    let stats = vipd.stats();
    let received = stats.cores.first().map_or(0, |c| c.rx_packets);
    assert!(
        received > 10 * CAPACITY as u64,
        "the flood ({received} frames) was not larger than the table: {stats:?}"
    );
    let growth = rss_kib(pid).saturating_sub(rss_before);
    assert!(
        growth < 64 * 1024,
        "vipd grew {growth} KiB during the flood (table capacity {CAPACITY})"
    );
    assert!(vipd.is_running(), "vipd died:\n{}", vipd.log());
}
