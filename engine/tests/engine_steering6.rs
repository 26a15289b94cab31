//! What the XDP steering program sends to the engine of IPv6, on crafted
//! frames (needs root and python3-scapy at /usr/bin/python3): packets to an
//! owned IPv6 address, Neighbor Solicitations for one, and replies and
//! ICMPv6 errors of a connection whose key a worker handed over reach the
//! engine; the kernel's own Neighbor Discovery, router advertisements and
//! any other IPv6 stay with the kernel.

mod engine_common;

use std::net::Ipv6Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dataplane::flow::{FlowKey, Ip6, SteerAction, SteerChange};
use dataplane::verdict::{DropReason, PortId, Verdict};
use engine::{Engine, EngineConfig, Handler};
use engine_common::*;

const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 9, 0, 0, 0, 0, 9);
const A6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 1, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x200, 2, 0, 0, 0, 0, 1);

/// Records the marker of every frame it sees and drops the frame; on
/// `mark-open` it hands the XDP program the reply key of a NAT connection
/// from A6:40000 to the backend B6:8080, as a worker does.
struct Capture {
    seen: Arc<Mutex<Vec<String>>>,
    open: bool,
}

impl Handler for Capture {
    fn begin_batch(&mut self, _now_ms: u64) {}
    fn handle(&mut self, frame: &mut [u8], _ingress: PortId) -> Verdict {
        if let Some(pos) = frame.windows(5).position(|w| w == b"mark-") {
            let tail = &frame[pos..];
            let end = tail
                .iter()
                .position(|b| !b.is_ascii_alphanumeric() && *b != b'-')
                .unwrap_or(tail.len());
            let mark = String::from_utf8_lossy(&tail[..end]).into_owned();
            self.open |= mark == "mark-open";
            self.seen.lock().unwrap().push(mark);
        }
        Verdict::Drop(DropReason::NoService)
    }
    fn housekeeping(&mut self, _now_ms: u64, _seen: &mut dyn dataplane::flow::FastSeenAll) {}
    fn steer_changes6(&mut self, out: &mut Vec<SteerChange<Ip6>>) {
        if std::mem::take(&mut self.open) {
            out.push(SteerChange {
                port: 0,
                key: FlowKey {
                    src_ip: B6.octets(),
                    dst_ip: A6.octets(),
                    src_port: 8080,
                    dst_port: 40000,
                    proto: 17,
                },
                action: SteerAction::ToWorker,
            });
        }
    }
}

/// Runs the scapy `script` in A with argv: A's MAC, l0's MAC, VIP6, A6, B6.
fn send_from_a(lab: &Lab, script: &str) {
    lab.scapy_in_a(
        script,
        &[&VIP6.to_string(), &A6.to_string(), &B6.to_string()],
    );
}

const PRELUDE: &str = r#"
import sys
from scapy.all import *
src, dst, vip, a, b = sys.argv[1:6]
e = lambda: Ether(src=src, dst=dst)
reply = lambda mark, dport=40000: e() / IPv6(src=b, dst=a) / UDP(sport=8080, dport=dport) / Raw(mark)
error = lambda mark: e() / IPv6(src="fd00:200:2::fe", dst=a) / ICMPv6PacketTooBig(mtu=1280) / IPv6(src=a, dst=b) / UDP(sport=40000, dport=8080) / Raw(mark)
"#;

/// Pass frames first: once the last steered frame arrived, every earlier
/// one has been decided.
const FIRST: &str = r#"
sendp([
    e() / IPv6(src=a, dst="fd00:200:9::99") / UDP(dport=9) / Raw(b"mark-pass-other-dst"),
    e() / IPv6(src=a, dst="ff02::1:ff00:99") / ICMPv6ND_NS(tgt="fd00:200:9::99") / ICMPv6NDOptSrcLLAddr(lladdr=src) / Raw(b"mark-pass-ns-other"),
    e() / IPv6(src="fe80::1", dst="ff02::1") / ICMPv6ND_RA() / Raw(b"mark-pass-ra"),
    e() / IPv6(src=a, dst="fd00:200:1::2") / TCP(dport=22, flags="S") / Raw(b"mark-pass-ssh"),
    reply(b"mark-pass-reply-before"),
    error(b"mark-pass-error-before"),
    e() / IPv6(src=a, dst=vip) / UDP(dport=9) / Raw(b"mark-udp"),
    e() / Dot1Q(vlan=10) / IPv6(src=a, dst=vip) / TCP(dport=80, flags="S") / Raw(b"mark-vlan-tcp"),
    e() / IPv6(src=a, dst=vip) / IPv6ExtHdrFragment(m=1) / UDP(dport=9) / Raw(b"mark-fragment"),
    e() / IPv6(src=a, dst=vip) / ICMPv6EchoRequest() / Raw(b"mark-echo"),
    e() / IPv6(src=a, dst="ff02::1:ff00:9", hlim=255) / ICMPv6ND_NS(tgt=vip) / ICMPv6NDOptSrcLLAddr(lladdr=src) / Raw(b"mark-ns-vip"),
    e() / IPv6(src=a, dst=vip) / UDP(dport=9) / Raw(b"mark-open"),
], iface="a0", verbose=False)
"#;

const SECOND: &str = r#"
sendp([
    reply(b"mark-pass-reply-other-port", dport=40001),
    reply(b"mark-reply"),
    error(b"mark-error"),
], iface="a0", verbose=False)
"#;

/// Turns IPv6 on for l0 (with an address of each scope) and starts an
/// engine on l0 and l1 that records the marker of every frame it sees.
fn start_capturing6(lab: &Lab) -> (Engine, Arc<Mutex<Vec<String>>>) {
    // The lab turns IPv6 off; l0 gets an address of each scope.
    lab.l.exec(&[
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.disable_ipv6=0",
        "net.ipv6.conf.l0.disable_ipv6=0",
    ]);
    lab.l.exec(&[
        "ip",
        "-6",
        "addr",
        "add",
        "fd00:200:1::2/64",
        "dev",
        "l0",
        "nodad",
    ]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let capture = Arc::clone(&seen);
    let cfg = EngineConfig {
        interfaces: vec!["l0".into(), "l1".into()],
        ..EngineConfig::default()
    };
    let engine: Engine = lab
        .l
        .run(move || {
            Engine::start(&cfg, move |_, _| Capture {
                seen: Arc::clone(&capture),
                open: false,
            })
        })
        .unwrap_or_else(|e| panic!("engine start: {e}"));
    assert_eq!(
        engine.ports()[0].ipv6.first(),
        Some(&"fd00:200:1::2".parse::<Ipv6Addr>().unwrap()),
        "the port's global address comes before its link-local one"
    );
    (engine, seen)
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn steers_only_the_dataplane_ipv6_traffic() {
    let lab = Lab::new("es6", 1);
    let (engine, seen) = start_capturing6(&lab);
    engine.steering().set_vips6(&[VIP6]).unwrap();
    let before = engine.steering().xdp_stats().unwrap();

    let arrived = |marks: &[&str]| {
        wait_for(Duration::from_secs(10), || {
            let seen = seen.lock().unwrap();
            marks.iter().all(|m| seen.iter().any(|s| s == m))
        })
    };
    send_from_a(&lab, &format!("{PRELUDE}{FIRST}"));
    let first = [
        "mark-udp",
        "mark-vlan-tcp",
        "mark-fragment",
        "mark-echo",
        "mark-ns-vip",
        "mark-open",
    ];
    assert!(arrived(&first), "the engine saw {:?}", seen.lock().unwrap());
    // The reply key is applied at the worker's next housekeeping.
    std::thread::sleep(Duration::from_millis(500));
    send_from_a(&lab, &format!("{PRELUDE}{SECOND}"));
    assert!(
        arrived(&["mark-reply", "mark-error"]),
        "the engine saw {:?}",
        seen.lock().unwrap()
    );

    let seen = seen.lock().unwrap().clone();
    let passed: Vec<_> = seen
        .iter()
        .filter(|s| s.starts_with("mark-pass-"))
        .collect();
    assert!(
        passed.is_empty(),
        "frames for the kernel reached the engine: {passed:?}"
    );
    let after = engine.steering().xdp_stats().unwrap();
    assert!(after.redirected - before.redirected >= 8, "{after:?}");
    assert!(after.pass_ipv6 - before.pass_ipv6 >= 6, "{after:?}");
    engine.stop();
}

/// argv as [`send_from_a`]'s, then how many SYNs: that many SYNs to the
/// VIP, one SYN behind a destination options header, then 20 marked ACKs.
const SYNS_THEN_ACKS6: &str = r#"
n = int(sys.argv[6])
frames = [e() / IPv6(src=a, dst=vip) / TCP(sport=20000 + i, dport=80, flags="S") / Raw(b"mark-syn-%d" % i) for i in range(n)]
frames.append(e() / IPv6(src=a, dst=vip) / IPv6ExtHdrDestOpt() / TCP(sport=29999, dport=80, flags="S") / Raw(b"mark-extsyn"))
frames += [e() / IPv6(src=a, dst=vip) / TCP(sport=30000 + i, dport=80, flags="A") / Raw(b"mark-ack-%d" % i) for i in range(20)]
sendp(frames, iface="a0", verbose=False)
"#;

/// `syn_rate_limit` holds for IPv6 VIPs as for IPv4 ones: SYNs over the
/// rate are dropped and counted, other segments never; a SYN behind
/// extension headers goes to the workers, which judge the chain.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn syn_admission_holds_for_ipv6_vips() {
    let lab = Lab::new("es7", 1);
    let (engine, seen) = start_capturing6(&lab);
    engine.steering().set_vips6(&[VIP6]).unwrap();
    check_syn_admission(&engine, |syns| {
        let (seen, sending) = syn_round(&seen, || {
            lab.scapy_in_a(
                &format!("{PRELUDE}{SYNS_THEN_ACKS6}"),
                &[
                    &VIP6.to_string(),
                    &A6.to_string(),
                    &B6.to_string(),
                    &syns.to_string(),
                ],
            )
        });
        assert!(
            seen.iter().any(|s| s == "mark-extsyn"),
            "the SYN behind an extension header was judged here: {seen:?}"
        );
        (seen, sending)
    });
    engine.stop();
}
