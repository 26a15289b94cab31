//! End to end: hostile IPv6 into the live engine — extension-header loops
//! and floods, truncated options, fragments, lying lengths, Neighbor
//! Solicitations for addresses the node does not own (left to its kernel,
//! unanswered), duplicate address probes for the VIP, router
//! advertisements and redirects — is each counted, changes nothing, and
//! IPv6 VIP traffic goes on.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use viplab::{Gateway, Lab, LabSpec};

/// Sends every class of hostile IPv6 frame at the VIP from the client,
/// then asks who has an address the node does not own and prints the
/// answering MACs (none expected from the node).
const HOSTILE6: &str = r#"
import sys
from scapy.all import (Ether, IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting,
    IPv6ExtHdrFragment, TCP, UDP, Raw, ICMPv6EchoRequest, ICMPv6ND_NS, ICMPv6ND_RA,
    ICMPv6ND_Redirect, ICMPv6NDOptSrcLLAddr, in6_getnsma, in6_getnsmac, inet_pton, inet_ntop,
    socket, sendp, srp, conf)
conf.verb = 0
vip, unowned, client, dmac, smac = sys.argv[1:6]
e = Ether(src=smac, dst=dmac)
ip = IPv6(src=client, dst=vip)
tcp = TCP(sport=40000, dport=8080, flags="A")
frames = []
# a flood of destination options headers, more than any chain is walked
chain = IPv6ExtHdrDestOpt()
for _ in range(20):
    chain = chain / IPv6ExtHdrDestOpt()
frames.append(e / ip / chain / tcp)
# a hop-by-hop header anywhere but first (a loop back to it)
frames.append(e / ip / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / tcp)
# an option running past its header: PadN claiming 200 bytes
frames.append(e / ip / IPv6ExtHdrDestOpt(options=[]) / Raw(b""))
bad = bytearray(bytes(IPv6(src=client, dst=vip, nh=60) / Raw(bytes([6, 0, 1, 200, 0, 0, 0, 0])) / tcp))
frames.append(Ether(src=smac, dst=dmac, type=0x86dd) / Raw(bytes(bad)))
# a routing header of an unknown type with segments left: must not be skipped
frames.append(e / ip / IPv6ExtHdrRouting(type=250, segleft=1, addresses=[]) / tcp)
# fragments, first and later
frames.append(e / ip / IPv6ExtHdrFragment(m=1, offset=0, id=7) / tcp)
frames.append(e / ip / IPv6ExtHdrFragment(m=0, offset=100, id=7) / Raw(b"y" * 16))
# payload length beyond the frame
frames.append(e / IPv6(src=client, dst=vip, plen=1400) / tcp)
# version 4 in an IPv6 frame
raw = bytearray(bytes(ip / tcp)); raw[0] = 0x40
frames.append(Ether(src=smac, dst=dmac, type=0x86dd) / Raw(bytes(raw)))
# an echo request with a wrong checksum
frames.append(e / ip / ICMPv6EchoRequest(cksum=0x1234, id=1, seq=1))
# router advertisement and redirect at the VIP
frames.append(e / IPv6(src="fe80::bad", dst=vip, hlim=255) / ICMPv6ND_RA(routerlifetime=9000))
frames.append(e / IPv6(src="fe80::bad", dst=vip, hlim=255) / ICMPv6ND_Redirect(tgt="fe80::bad", dst=vip))
# a duplicate address probe for the VIP
nsma = inet_ntop(socket.AF_INET6, in6_getnsma(inet_pton(socket.AF_INET6, vip)))
frames.append(Ether(src=smac, dst=in6_getnsmac(inet_pton(socket.AF_INET6, vip)))
    / IPv6(src="::", dst=nsma, hlim=255) / ICMPv6ND_NS(tgt=vip))
sendp(frames, iface="eth0")
# who has the unowned address, asked of the node directly
ns = (Ether(src=smac, dst=dmac) / IPv6(src=client, dst=unowned, hlim=255)
      / ICMPv6ND_NS(tgt=unowned) / ICMPv6NDOptSrcLLAddr(lladdr=smac))
answered, _ = srp(ns, iface="eth0", timeout=1)
print(" ".join(r[Ether].src for _, r in answered))
"#;

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn hostile_ipv6_is_counted_and_harmless() {
    let vip = viplab::vip6(3);
    let lab = Lab::up(LabSpec {
        name: viplab::unique_name("hostile6"),
        backends: 2,
        backend_gateway: Gateway::Lb(1),
        ipv6: true,
        ..LabSpec::default()
    })
    .expect("lab up");
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
    .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
    let addr = SocketAddr::new(vip.into(), SERVICE_PORT);
    let lb_mac = mac_of(&lab, "lb1", "eth0").expect("mac");
    let client_mac = mac_of(&lab, "client", "eth0").expect("mac");
    let unowned = viplab::vip6(4);
    let answered = python(
        &lab,
        "client",
        HOSTILE6,
        &[
            &vip.to_string(),
            &unowned.to_string(),
            &lab.client_ip6().to_string(),
            &lb_mac,
            &client_mac,
        ],
    )
    .expect("scapy sends hostile IPv6");
    assert!(
        !answered.contains(&lb_mac),
        "the node answered a solicitation for {unowned}, which it does not own: {answered:?}"
    );

    let expected = [
        "bad_ipv6_ext_headers",
        "ipv6_fragment",
        "bad_ipv6_length",
        "bad_ipv6_header",
        "bad_icmp_checksum",
        "ipv6_router_message",
    ];
    lab.wait_until(
        "every hostile IPv6 class counted",
        Duration::from_secs(10),
        || expected.iter().all(|r| vipd.drops(r) > 0),
    )
    .unwrap_or_else(|e| {
        let missing: Vec<&&str> = expected.iter().filter(|r| vipd.drops(r) == 0).collect();
        panic!("{e}: not counted {missing:?}; {:?}", vipd.stats())
    });
    // A probe for an address is no attack on it: counted apart from drops.
    assert!(
        vipd.stats()
            .ignored
            .get("nd_dad_probe")
            .copied()
            .unwrap_or(0)
            > 0,
        "duplicate address probe not counted: {:?}",
        vipd.stats()
    );

    // The probe took nothing: the VIP is still the node's, and serves.
    assert!(vipd.is_running(), "vipd died:\n{}", vipd.log());
    lab.exec_ok("client", &["ip", "-6", "neigh", "flush", "dev", "eth0"])
        .expect("flush the client's neighbours");
    let report = lab.http_burst("client", addr, 200, 4).expect("burst");
    assert_eq!(
        report.failed, 0,
        "IPv6 VIP traffic hurt by hostile input: {:?}",
        report.errors
    );
    assert_eq!(
        client_neighbour(&lab, vip).as_deref(),
        Some(lb_mac.as_str()),
        "the client's neighbour entry for the VIP after the duplicate address probe"
    );
}
