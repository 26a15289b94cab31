//! What the XDP steering program sends to the engine, on crafted frames
//! (needs root and python3-scapy at /usr/bin/python3): VLAN tags, IPv4
//! fragments and malformed headers for a VIP reach the engine (which counts
//! such drops itself); everything else stays with the kernel.

mod engine_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dataplane::verdict::{DropReason, PortId, Verdict};
use engine::{Engine, EngineConfig, Handler, XdpStats};
use engine_common::*;

/// Records the marker of every frame it sees and drops the frame.
struct Capture(Arc<Mutex<Vec<String>>>);

impl Handler for Capture {
    fn begin_batch(&mut self, _now_ms: u64) {}
    fn handle(&mut self, frame: &mut [u8], _ingress: PortId) -> Verdict {
        if let Some(pos) = frame.windows(5).position(|w| w == b"mark-") {
            let tail = &frame[pos..];
            let end = tail
                .iter()
                .position(|b| !b.is_ascii_alphanumeric() && *b != b'-')
                .unwrap_or(tail.len());
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&tail[..end]).into_owned());
        }
        Verdict::Drop(DropReason::NoService)
    }
    fn housekeeping(&mut self, _now_ms: u64, _seen: &mut dyn dataplane::flow::FastSeenAll) {}
}

/// An engine on l0/l1 whose handler records every marker it sees, with the
/// VIP steered to it.
fn start_capturing(lab: &Lab) -> (Engine, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let capture = Arc::clone(&seen);
    let cfg = EngineConfig {
        interfaces: vec!["l0".into(), "l1".into()],
        ..EngineConfig::default()
    };
    let engine = lab
        .l
        .run(move || Engine::start(&cfg, move |_, _| Capture(Arc::clone(&capture))))
        .unwrap_or_else(|e| panic!("engine start: {e}"));
    engine.steering().set_vips(&[VIP]).unwrap();
    (engine, seen)
}

/// Runs the scapy `script` in A with argv: A's MAC, l0's MAC, the VIP, `last`.
fn send_from_a(lab: &Lab, script: &str, last: &str) {
    lab.scapy_in_a(script, &[&VIP.to_string(), last]);
}

/// Frames sent from A into l0, in order. `mark-pass-*` frames must stay
/// with the kernel, the other markers must reach the engine. The pass frames go first, so once the
/// last steered frame arrived every earlier frame has been decided.
const FRAMES: &str = r#"
import sys
from scapy.all import Ether, Dot1Q, IP, UDP, ARP, IPv6, Raw, sendp
src, dst, vip, local = sys.argv[1:5]
e = lambda t=None: Ether(src=src, dst=dst) if t is None else Ether(src=src, dst=dst, type=t)
frames = [
    e() / IP(src="10.200.1.1", dst="10.200.1.99") / UDP(dport=9) / Raw(b"mark-pass-other-dst"),
    e() / IP(src="10.200.1.1", dst=local) / UDP(dport=9) / Raw(b"mark-pass-local"),
    e() / IPv6(dst="fd00::1") / UDP(dport=9) / Raw(b"mark-pass-ipv6"),
    e(0x88b5) / Raw(b"mark-pass-ethertype"),
    e(0x0800) / Raw(b"\x45\x00mark-pass-short"),
    e() / ARP(op=1, psrc="10.200.1.1", pdst=local, hwsrc=src) / Raw(b"mark-pass-arp-local"),
    e() / Dot1Q(vlan=10) / IP(src="10.200.1.1", dst="10.200.1.98") / UDP(dport=9) / Raw(b"mark-pass-vlan-other"),
    e() / IP(src="10.200.1.1", dst=vip) / UDP(dport=9) / Raw(b"mark-plain"),
    e() / Dot1Q(vlan=10) / IP(src="10.200.1.1", dst=vip) / UDP(dport=9) / Raw(b"mark-vlan"),
    e(0x88a8) / Dot1Q(vlan=20, type=0x8100) / Dot1Q(vlan=30) / IP(src="10.200.1.1", dst=vip) / UDP(dport=9) / Raw(b"mark-qinq"),
    e() / IP(src="10.200.1.1", dst=vip, flags="MF") / UDP(dport=9) / Raw(b"mark-fragment"),
    e() / IP(src="10.200.1.1", dst=vip, ihl=3) / UDP(dport=9) / Raw(b"mark-bad-ihl"),
    e() / ARP(op=1, psrc="10.200.1.1", pdst=vip, hwsrc=src) / Raw(b"mark-arp-vip"),
    e() / ARP(op=2, psrc=vip, pdst="10.200.1.1", hwsrc=src) / Raw(b"mark-arp-claim"),
    e() / ARP(op=1, psrc=vip, pdst=local, hwsrc=src) / Raw(b"mark-pass-arp-from-vip"),
]
sendp(frames, iface="a0", verbose=False)
"#;

const STEERED: [&str; 7] = [
    "mark-plain",
    "mark-vlan",
    "mark-qinq",
    "mark-fragment",
    "mark-bad-ihl",
    "mark-arp-vip",
    "mark-arp-claim",
];

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn steers_only_the_dataplane_traffic() {
    let lab = Lab::new("es1", 1);
    let (engine, seen) = start_capturing(&lab);
    let before = engine.steering().xdp_stats().unwrap();

    send_from_a(&lab, FRAMES, &L0_ADDR.to_string());

    let all_seen = wait_for(Duration::from_secs(10), || {
        let seen = seen.lock().unwrap();
        STEERED.iter().all(|m| seen.iter().any(|s| s == m))
    });
    let seen = seen.lock().unwrap().clone();
    assert!(all_seen, "steered frames missing; the engine saw {seen:?}");
    let passed: Vec<_> = seen
        .iter()
        .filter(|s| s.starts_with("mark-pass-"))
        .collect();
    assert!(
        passed.is_empty(),
        "frames for the kernel reached the engine: {passed:?}"
    );
    assert_eq!(
        engine.counters().drops(DropReason::NoService),
        seen.len() as u64,
        "the engine counted every frame its handler dropped"
    );

    let after = engine.steering().xdp_stats().unwrap();
    let delta = |f: fn(&XdpStats) -> u64| f(&after) - f(&before);
    assert!(delta(|s| s.redirected) >= STEERED.len() as u64);
    assert!(delta(|s| s.pass_truncated) >= 1, "{after:?}");
    assert!(delta(|s| s.pass_other_ethertype) >= 1, "{after:?}");
    assert!(delta(|s| s.pass_ipv6) >= 1, "{after:?}");
    assert!(delta(|s| s.pass_arp) >= 1, "{after:?}");
    assert!(delta(|s| s.pass_ipv4) >= 3, "{after:?}");
    engine.stop();
}

/// argv: src MAC, dst MAC, VIP, then how many SYNs. Sends that many SYNs
/// (every other one with IP options, so the TCP header moves), then 20
/// ACKs of established connections, each marked.
const SYNS_THEN_ACKS: &str = r#"
import sys
from scapy.all import Ether, IP, IPOption_NOP, TCP, Raw, sendp
src, dst, vip, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
e = lambda: Ether(src=src, dst=dst)
syn = lambda i: (IP(src="10.200.1.1", dst=vip, options=[IPOption_NOP()] * 4) if i % 2 else IP(src="10.200.1.1", dst=vip)) / TCP(sport=20000 + i, dport=80, flags="S")
frames = [e() / syn(i) / Raw(b"mark-syn-%d" % i) for i in range(n)]
frames += [e() / IP(src="10.200.1.1", dst=vip) / TCP(sport=30000 + i, dport=80, flags="A") / Raw(b"mark-ack-%d" % i) for i in range(20)]
sendp(frames, iface="a0", verbose=False)
"#;

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn syn_admission_drops_excess_syns_and_never_other_segments() {
    let lab = Lab::new("es2", 1);
    let (engine, seen) = start_capturing(&lab);
    check_syn_admission(&engine, |syns| {
        syn_round(&seen, || {
            send_from_a(&lab, SYNS_THEN_ACKS, &syns.to_string())
        })
    });
    engine.stop();
}
