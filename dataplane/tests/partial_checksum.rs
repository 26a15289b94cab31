//! Frames whose sender left the TCP or UDP checksum for its NIC to finish
//! (CHECKSUM_PARTIAL, the default on veth and virtio): the checksum field
//! holds the folded pseudo-header sum. Every forwarding mode must send them
//! on with a complete checksum, in both directions; an independent decoder
//! (etherparse) verifies every checksum of the output.

mod support;

use std::net::Ipv4Addr;

use dataplane::flow::Timeouts;
use dataplane::path::{Worker, WorkerConfig};
use dataplane::sched::SchedulerKind;
use dataplane::service::ForwardMode;
use dataplane::verdict::Verdict;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use support::*;

const ETH: usize = 14;

fn worker(forward: ForwardMode, proto: u8) -> Worker {
    let mut snap = snapshot(forward, SchedulerKind::Rr, &[1]);
    snap.services[0].proto = proto;
    snap.index();
    let cfg = WorkerConfig {
        flow_capacity: 1024,
        persistence_capacity: 16,
        timeouts: Timeouts::default(),
        steer_replies: false,
        sync_origin: None,
    };
    let mut w = Worker::new(0, 1, cfg, published(snap));
    w.begin_batch(1_000);
    w
}

/// Addresses and ports of an output frame whose IPv4, TCP or UDP checksums
/// all verify.
fn verified(frame: &[u8]) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse decodes the output");
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        panic!("no ipv4")
    };
    let iph = ip.header().to_header();
    assert_eq!(
        iph.header_checksum,
        iph.calc_header_checksum(),
        "IPv4 header"
    );
    let src = Ipv4Addr::from(iph.source);
    let dst = Ipv4Addr::from(iph.destination);
    match p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let th = t.to_header();
            let want = th.calc_checksum_ipv4(&iph, t.payload()).expect("sum");
            assert_eq!(th.checksum, want, "TCP checksum of {src} -> {dst}");
            (src, th.source_port, dst, th.destination_port)
        }
        Some(TransportSlice::Udp(u)) => {
            let uh = u.to_header();
            let want = uh.calc_checksum_ipv4(&iph, u.payload()).expect("sum");
            assert_eq!(uh.checksum, want, "UDP checksum of {src} -> {dst}");
            (src, uh.source_port, dst, uh.destination_port)
        }
        _ => panic!("no TCP or UDP"),
    }
}

fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(CLIENT_MAC, PORT0_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build udp frame");
    out
}

fn l4(proto: u8, src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, flags: &str) -> Vec<u8> {
    // An odd length makes the finished checksum cover a padded last word.
    let payload = b"GET /a-partial-checksum HTTP/1.1\r\nHost: v\r\n\r\n!";
    if proto == 6 {
        tcp(
            CLIENT_MAC, PORT0_MAC, src, dst, sport, dport, flags, payload,
        )
    } else {
        udp(src, dst, sport, dport, payload)
    }
}

/// A client → VIP packet and the backend's answer, both in partial form,
/// come out with complete checksums and the mode's addresses.
fn both_directions(forward: ForwardMode, proto: u8) {
    let mut w = worker(forward, proto);
    let mut first = l4(proto, CLIENT, VIP, 40_000, VPORT, "S");
    make_partial(&mut first);
    assert_eq!(w.process(&mut first, 0), Verdict::Tx(1), "{forward:?}");
    let (src, sport, dst, dport) = verified(&first);
    match forward {
        ForwardMode::Dr => {
            assert_eq!((src, sport, dst, dport), (CLIENT, 40_000, VIP, VPORT));
            return;
        }
        ForwardMode::Nat => assert_eq!((src, sport), (CLIENT, 40_000)),
        ForwardMode::FullNat => assert_eq!(src, SNAT),
    }
    assert_eq!(dst, backend_ip(0));
    let mut answer = l4(proto, dst, src, dport, sport, "SA");
    make_partial(&mut answer);
    assert_eq!(w.process(&mut answer, 1), Verdict::Tx(0), "{forward:?}");
    assert_eq!(verified(&answer), (VIP, VPORT, CLIENT, 40_000));
}

#[test]
fn nat_finishes_partial_tcp_and_udp_checksums_both_ways() {
    both_directions(ForwardMode::Nat, 6);
    both_directions(ForwardMode::Nat, 17);
}

#[test]
fn fullnat_finishes_partial_tcp_and_udp_checksums_both_ways() {
    both_directions(ForwardMode::FullNat, 6);
    both_directions(ForwardMode::FullNat, 17);
}

#[test]
fn dr_finishes_partial_tcp_and_udp_checksums() {
    both_directions(ForwardMode::Dr, 6);
    both_directions(ForwardMode::Dr, 17);
}

#[test]
fn complete_checksums_stay_complete_in_every_mode() {
    for forward in [ForwardMode::Nat, ForwardMode::FullNat, ForwardMode::Dr] {
        for proto in [6, 17] {
            let mut w = worker(forward, proto);
            let mut f = l4(proto, CLIENT, VIP, 40_001, VPORT, "S");
            assert_eq!(w.process(&mut f, 0), Verdict::Tx(1));
            verified(&f);
        }
    }
}

#[test]
fn a_udp_datagram_without_checksum_keeps_none() {
    let mut w = worker(ForwardMode::Nat, 17);
    let mut f = l4(17, CLIENT, VIP, 40_002, VPORT, "");
    let at = ETH + 20 + 6;
    f[at..at + 2].copy_from_slice(&[0, 0]);
    assert_eq!(w.process(&mut f, 0), Verdict::Tx(1));
    assert_eq!(
        &f[at..at + 2],
        &[0, 0],
        "zero means no checksum in IPv4 UDP"
    );
}
