//! Golden IPv6 frames through the pure packet path, every field and
//! checksum confirmed by an independent decoder (etherparse).

mod support;

use std::net::Ipv6Addr;

use dataplane::flow::{FastSeen, FlowKey, Ip6, SteerAction, SteerChange, Timeouts};
use dataplane::path::{Worker, WorkerConfig};
use dataplane::sched::SchedulerKind;
use dataplane::service::ForwardMode;
use dataplane::verdict::{DropReason, Verdict};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use support::v6::*;
use support::*;

/// What an independent decoder sees in a TCP or UDP frame over IPv6, with
/// the L4 checksum verified.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hops: u8,
    sport: u16,
    dport: u16,
}

fn decode(frame: &[u8]) -> Seen {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse decodes the output");
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!("no ipv6")
    };
    let iph = ip.header().to_header();
    let (sport, dport) = match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let th = t.to_header();
            let want = th.calc_checksum_ipv6(&iph, t.payload()).expect("sum");
            assert_eq!(th.checksum, want, "TCP checksum");
            (th.source_port, th.destination_port)
        }
        Some(TransportSlice::Udp(u)) => {
            let uh = u.to_header();
            let want = uh.calc_checksum_ipv6(&iph, u.payload()).expect("sum");
            assert_eq!(uh.checksum, want, "UDP checksum");
            (uh.source_port, uh.destination_port)
        }
        other => panic!("no tcp/udp: {other:?}"),
    };
    Seen {
        src_mac: frame[6..12].try_into().unwrap(),
        dst_mac: frame[..6].try_into().unwrap(),
        src: Ipv6Addr::from(iph.source),
        dst: Ipv6Addr::from(iph.destination),
        hops: iph.hop_limit,
        sport,
        dport,
    }
}

fn backend_of(seen: &Seen) -> usize {
    (0..8)
        .find(|&i| backend_ip6(i) == seen.dst)
        .expect("sent to a backend")
}

fn client_syn(sport: u16, vlan: Option<u16>) -> Vec<u8> {
    tcp6(
        (CLIENT_MAC, PORT0_MAC),
        vlan,
        CLIENT6,
        VIP6,
        sport,
        VPORT,
        "S",
        b"",
    )
}

#[test]
fn nat_rewrites_destination_and_reverses_replies_tagged_or_not() {
    for vlan in [None, Some(7)] {
        let mut w = worker(snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1, 1]));
        let mut syn = client_syn(40000, vlan);
        assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1), "{vlan:?}");
        let out = decode(&syn);
        let k = backend_of(&out);
        assert_eq!(
            out,
            Seen {
                src_mac: PORT1_MAC,
                dst_mac: backend_mac(k),
                src: CLIENT6,
                dst: backend_ip6(k),
                hops: 63,
                sport: 40000,
                dport: 8080
            }
        );
        let mut synack = tcp6(
            (backend_mac(k), PORT1_MAC),
            vlan,
            backend_ip6(k),
            CLIENT6,
            8080,
            40000,
            "SA",
            b"",
        );
        assert_eq!(w.process(&mut synack, 1), Verdict::Tx(0));
        assert_eq!(
            decode(&synack),
            Seen {
                src_mac: PORT0_MAC,
                dst_mac: CLIENT_MAC,
                src: VIP6,
                dst: CLIENT6,
                hops: 63,
                sport: VPORT,
                dport: 40000
            }
        );
        let mut data = tcp6(
            (CLIENT_MAC, PORT0_MAC),
            vlan,
            CLIENT6,
            VIP6,
            40000,
            VPORT,
            "AP",
            b"GET / HTTP/1.0\r\n\r\n",
        );
        assert_eq!(w.process(&mut data, 0), Verdict::Tx(1));
        assert_eq!(
            decode(&data).dst,
            backend_ip6(k),
            "the connection keeps its backend"
        );
        assert_eq!(w.flows6().len(), 1);
        assert!(
            w.flows().is_empty(),
            "IPv6 connections stay out of the IPv4 table"
        );
    }
}

#[test]
fn fullnat_rewrites_both_ends_both_ways_tagged_or_not() {
    for vlan in [None, Some(7)] {
        let mut w = worker(snapshot6(ForwardMode::FullNat, SchedulerKind::Rr, &[1]));
        let mut syn = client_syn(40001, vlan);
        assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
        let out = decode(&syn);
        assert_eq!(
            (out.src, out.dst, out.dport, out.hops),
            (SNAT6, backend_ip6(0), 8080, 63)
        );
        assert!(out.sport >= 1024);
        let mut synack = tcp6(
            (backend_mac(0), PORT1_MAC),
            vlan,
            backend_ip6(0),
            SNAT6,
            8080,
            out.sport,
            "SA",
            b"",
        );
        assert_eq!(w.process(&mut synack, 1), Verdict::Tx(0));
        let back = decode(&synack);
        assert_eq!(
            (back.src, back.dst, back.sport, back.dport, back.dst_mac),
            (VIP6, CLIENT6, VPORT, 40001, CLIENT_MAC)
        );
    }
}

#[test]
fn both_directions_of_an_ipv6_connection_have_one_owner() {
    for mode in [ForwardMode::Nat, ForwardMode::FullNat] {
        let p = published(snapshot6(mode, SchedulerKind::Rr, &[1]));
        let mut workers = [worker_of(0, 2, p.clone()), worker_of(1, 2, p)];
        for sport in 41000..41064u16 {
            let mut handled = None;
            let mut out = Vec::new();
            for (i, w) in workers.iter_mut().enumerate() {
                let mut syn = client_syn(sport, None);
                match w.process(&mut syn, 0) {
                    Verdict::Tx(1) => {
                        handled = Some(i);
                        out = syn;
                    }
                    Verdict::Handoff(o) => assert_eq!(usize::from(o), 1 - i),
                    v => panic!("unexpected {v:?}"),
                }
            }
            let owner = handled.expect("one worker owns the connection");
            let seen = decode(&out);
            let reply = tcp6(
                (backend_mac(0), PORT1_MAC),
                None,
                seen.dst,
                seen.src,
                seen.dport,
                seen.sport,
                "SA",
                b"",
            );
            assert_eq!(
                workers[1 - owner].process(&mut reply.clone(), 1),
                Verdict::Handoff(owner as u16),
                "{mode:?} reply owner"
            );
            assert_eq!(
                workers[owner].process(&mut reply.clone(), 1),
                Verdict::Tx(0)
            );
        }
    }
}

#[test]
fn a_failed_backends_connections_follow_the_down_action() {
    use dataplane::service::{DownAction, Published};
    let mut snap = snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1]);
    snap.services[0].on_down = DownAction::Drop;
    let p = Published::new(snap.clone());
    let mut w = worker_of(0, 1, p.clone());
    let mut syn = client_syn(40050, None);
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    snap.services[0].weights[0].available = false;
    snap.dead_backends.insert(1);
    p.publish(snap);
    w.begin_batch(2_000);
    let mut ack = tcp6(
        (CLIENT_MAC, PORT0_MAC),
        None,
        CLIENT6,
        VIP6,
        40050,
        VPORT,
        "A",
        b"",
    );
    assert_eq!(
        w.process(&mut ack, 0),
        Verdict::Drop(DropReason::BackendDown)
    );
}

#[test]
fn dr_rewrites_only_macs_and_hop_limit() {
    let mut w = worker(snapshot6(ForwardMode::Dr, SchedulerKind::Rr, &[1]));
    let mut syn = client_syn(40002, Some(12));
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    assert_eq!(
        decode(&syn),
        Seen {
            src_mac: PORT1_MAC,
            dst_mac: backend_mac(0),
            src: CLIENT6,
            dst: VIP6,
            hops: 63,
            sport: 40002,
            dport: VPORT
        }
    );
}

#[test]
fn udp_and_partial_checksums_are_finished_both_ways() {
    let mut snap = snapshot6(ForwardMode::FullNat, SchedulerKind::Rr, &[1]);
    snap.services[0].proto = 17;
    snap.index();
    let mut w = worker(snap);
    let mut q = udp6(
        (CLIENT_MAC, PORT0_MAC),
        CLIENT6,
        VIP6,
        5353,
        VPORT,
        b"query",
    );
    make_partial6(&mut q);
    assert_eq!(w.process(&mut q, 0), Verdict::Tx(1));
    let out = decode(&q);
    assert_eq!((out.src, out.dst), (SNAT6, backend_ip6(0)));
    let mut a = udp6(
        (backend_mac(0), PORT1_MAC),
        backend_ip6(0),
        SNAT6,
        8080,
        out.sport,
        b"answer",
    );
    make_partial6(&mut a);
    assert_eq!(w.process(&mut a, 1), Verdict::Tx(0));
    assert_eq!((decode(&a).src, decode(&a).dport), (VIP6, 5353));

    let mut w = worker(snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1]));
    let mut syn = client_syn(40003, None);
    make_partial6(&mut syn);
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    assert_eq!(decode(&syn).dst, backend_ip6(0), "TCP checksum finished");
}

#[test]
fn weighted_round_robin_holds_its_weights_over_ipv6() {
    let mut w = worker(snapshot6(ForwardMode::Nat, SchedulerKind::Wrr, &[3, 2, 1]));
    let mut counts = [0usize; 3];
    for i in 0..600 {
        let mut syn = client_syn(10_000 + i, None);
        assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
        counts[backend_of(&decode(&syn))] += 1;
    }
    assert_eq!(counts, [300, 200, 100]);
}

#[test]
fn maglev_and_source_hashing_pick_alike_on_every_worker() {
    for kind in [SchedulerKind::Maglev, SchedulerKind::Sh] {
        let picks = |_: u8| -> Vec<usize> {
            let mut w = worker(snapshot6(ForwardMode::Dr, kind, &[1, 1, 1]));
            (0..50)
                .map(|i| {
                    let mut syn = client_syn(20_000 + i, None);
                    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
                    let mac: [u8; 6] = syn[..6].try_into().unwrap();
                    (0..3).position(|k| backend_mac(k) == mac).unwrap()
                })
                .collect()
        };
        let first = picks(0);
        assert_eq!(first, picks(1), "{kind:?}");
        // Source hashing keeps one client on one backend; Maglev spreads
        // its connections.
        let spread = first.iter().any(|&b| b != first[0]);
        assert_eq!(spread, kind == SchedulerKind::Maglev, "{kind:?}");
    }
}

#[test]
fn a_killed_backend_gets_no_new_connections_and_the_sorry_server_the_rest() {
    let mut snap = snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1, 1]);
    snap.services[0].weights[0].available = false;
    let mut w = worker(snap.clone());
    for i in 0..10 {
        let mut syn = client_syn(30_000 + i, None);
        assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
        assert_eq!(decode(&syn).dst, backend_ip6(1));
    }
    snap.services[0].weights[1].available = false;
    let mut w = worker(snap.clone());
    let mut syn = client_syn(31_000, None);
    assert_eq!(w.process(&mut syn, 0), Verdict::Drop(DropReason::NoBackend));
    let mut sorry = snap.services[0].backends[0].clone();
    sorry.ip = backend_ip6(7).into();
    snap.services[0].sorry = Some(sorry);
    let mut w = worker(snap);
    let mut syn = client_syn(31_001, None);
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    assert_eq!(decode(&syn).dst, backend_ip6(7));
}

#[test]
fn persistence_keeps_an_ipv6_client_on_one_backend() {
    let mut snap = snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1, 1, 1]);
    snap.services[0].persistence_ms = Some(60_000);
    let mut w = worker(snap);
    let first: Vec<Ipv6Addr> = (0..6)
        .map(|i| {
            let mut syn = client_syn(32_000 + i, None);
            assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
            decode(&syn).dst
        })
        .collect();
    assert!(first.iter().all(|d| *d == first[0]), "{first:?}");
}

fn advert_of(frame: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, Ipv6Addr, [u8; 6]) {
    let p = SlicedPacket::from_ethernet(frame).expect("decodes");
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!("ipv6")
    };
    let iph = ip.header().to_header();
    let Some(TransportSlice::Icmpv6(m)) = &p.transport else {
        panic!("icmpv6")
    };
    let h = m.header();
    assert_eq!(
        h.checksum,
        h.icmp_type
            .calc_checksum(iph.source, iph.destination, m.payload())
            .expect("sum"),
        "ICMPv6 checksum"
    );
    assert_eq!(m.type_u8(), 136, "a Neighbor Advertisement");
    let body = m.payload();
    let target = Ipv6Addr::from(<[u8; 16]>::try_from(&body[..16]).unwrap());
    assert_eq!(&body[16..18], &[2, 1], "target link-layer option");
    let tlla: [u8; 6] = body[18..24].try_into().unwrap();
    let flags = m.bytes5to8()[0];
    (
        Ipv6Addr::from(iph.source),
        Ipv6Addr::from(iph.destination),
        flags,
        target,
        tlla,
    )
}

#[test]
fn neighbor_solicitation_for_an_owned_vip_gets_a_solicited_advert() {
    let mut w = worker(snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1]));
    let mut ns = neighbor_solicitation(CLIENT6, VIP6);
    assert_eq!(w.process(&mut ns, 0), Verdict::Tx(0));
    assert_eq!(&ns[..6], &CLIENT_MAC, "back to the asker");
    assert_eq!(&ns[6..12], &PORT0_MAC);
    let (src, dst, flags, target, tlla) = advert_of(&ns);
    assert_eq!((src, dst, target, tlla), (VIP6, CLIENT6, VIP6, PORT0_MAC));
    assert_eq!(flags, 0x60, "solicited and override, not router");
    // A full-NAT source without a shared MAC is answered with the MAC of
    // the port asked on, as ARP is.
    let mut w = worker(snapshot6(ForwardMode::FullNat, SchedulerKind::Rr, &[1]));
    let mut ns = neighbor_solicitation(backend_ip6(0), SNAT6);
    assert_eq!(w.process(&mut ns, 0), Verdict::Tx(0));
    assert_eq!(advert_of(&ns).4, PORT0_MAC);
}

#[test]
fn the_virtual_mac_answers_where_arp_would_use_it() {
    let mut snap = snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1]);
    let vmac = wire::MacAddr([0, 0, 0x5e, 0, 1, 51]);
    for l in snap.locals6.values_mut() {
        l.mac = vmac;
        l.shared_mac = true;
    }
    let mut w = worker(snap);
    let mut ns = neighbor_solicitation(CLIENT6, VIP6);
    assert_eq!(w.process(&mut ns, 0), Verdict::Tx(0));
    assert_eq!(advert_of(&ns).4, vmac.0);
    assert_eq!(&ns[6..12], &vmac.0);
}

#[test]
fn solicitations_not_to_answer_are_counted_by_reason() {
    let mut snap = snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1]);
    let mut w = worker(snap.clone());
    let other = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 0x999);
    let mut ns = neighbor_solicitation(CLIENT6, other);
    assert_eq!(w.process(&mut ns, 0), Verdict::Drop(DropReason::NdNotOwned));
    let mut dad = neighbor_solicitation(Ipv6Addr::UNSPECIFIED, VIP6);
    assert_eq!(
        w.process(&mut dad, 0),
        Verdict::Drop(DropReason::NdDadProbe)
    );
    assert!(!DropReason::NdDadProbe.is_drop());
    let mut bad_hops = neighbor_solicitation(CLIENT6, VIP6);
    bad_hops[14 + 7] = 64;
    assert_eq!(
        w.process(&mut bad_hops, 0),
        Verdict::Drop(DropReason::MalformedNd)
    );
    for l in snap.locals6.values_mut() {
        l.owned = false;
    }
    let mut w = worker(snap);
    let mut ns = neighbor_solicitation(CLIENT6, VIP6);
    assert_eq!(w.process(&mut ns, 0), Verdict::Drop(DropReason::NdNotOwned));
}

#[test]
fn echo_to_an_ipv6_vip_is_answered() {
    let mut w = worker(snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1]));
    let mut ping = icmp6(
        (CLIENT_MAC, PORT0_MAC),
        CLIENT6,
        VIP6,
        64,
        128,
        0,
        [0, 7, 0, 1],
        b"abcdefgh",
    );
    assert_eq!(w.process(&mut ping, 0), Verdict::Tx(0));
    let p = SlicedPacket::from_ethernet(&ping).expect("decodes");
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!("ipv6")
    };
    let iph = ip.header().to_header();
    assert_eq!(
        (Ipv6Addr::from(iph.source), Ipv6Addr::from(iph.destination)),
        (VIP6, CLIENT6)
    );
    let Some(TransportSlice::Icmpv6(m)) = &p.transport else {
        panic!("icmpv6")
    };
    assert_eq!(m.type_u8(), 129);
    assert_eq!(m.payload(), b"abcdefgh");
    let h = m.header();
    assert_eq!(
        h.checksum,
        h.icmp_type
            .calc_checksum(iph.source, iph.destination, m.payload())
            .unwrap()
    );
    assert_eq!(
        (&ping[..6], &ping[6..12]),
        (&CLIENT_MAC[..], &PORT0_MAC[..])
    );
    let mut bad = icmp6(
        (CLIENT_MAC, PORT0_MAC),
        CLIENT6,
        VIP6,
        64,
        128,
        0,
        [0, 7, 0, 2],
        b"x",
    );
    let at = bad.len() - 1;
    bad[at] ^= 0xff;
    assert_eq!(
        w.process(&mut bad, 0),
        Verdict::Drop(DropReason::BadIcmpChecksum)
    );
}

#[test]
fn a_packet_over_the_egress_mtu_gets_packet_too_big() {
    let mut snap = snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1]);
    snap.ports[1].mtu = 1280;
    let mut w = worker(snap);
    let mut syn = client_syn(40010, None);
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    let mut big = tcp6(
        (CLIENT_MAC, PORT0_MAC),
        None,
        CLIENT6,
        VIP6,
        40010,
        VPORT,
        "A",
        &[0x55; 1400],
    );
    let Verdict::Answer { port, len, dropped } = w.process(&mut big, 0) else {
        panic!("answered")
    };
    assert_eq!((port, dropped), (0, DropReason::TooBigDf));
    let f = &big[..usize::from(len)];
    assert!(f.len() - 14 <= 1280, "within the minimum MTU");
    let p = SlicedPacket::from_ethernet(f).expect("decodes");
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!("ipv6")
    };
    let iph = ip.header().to_header();
    assert_eq!(
        (Ipv6Addr::from(iph.source), Ipv6Addr::from(iph.destination)),
        (VIP6, CLIENT6)
    );
    let Some(TransportSlice::Icmpv6(m)) = &p.transport else {
        panic!("icmpv6")
    };
    assert_eq!(m.type_u8(), 2);
    assert_eq!(m.bytes5to8(), 1280u32.to_be_bytes());
    let h = m.header();
    assert_eq!(
        h.checksum,
        h.icmp_type
            .calc_checksum(iph.source, iph.destination, m.payload())
            .unwrap()
    );
    assert_eq!(&f[..6], &CLIENT_MAC);
}

#[test]
fn packet_too_big_from_a_backend_follows_the_connection_with_the_quote_rewritten() {
    let mut w = worker(snapshot6(ForwardMode::FullNat, SchedulerKind::Rr, &[1]));
    let mut syn = client_syn(40020, None);
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    let snat_port = decode(&syn).sport;
    // A router behind the node reports the translated segment as too big.
    let router = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 1, 0, 0, 0, 0xfe);
    let quote = syn[14..].to_vec();
    let mut ptb = icmp6(
        (backend_mac(0), PORT1_MAC),
        router,
        SNAT6,
        64,
        2,
        0,
        1400u32.to_be_bytes(),
        &quote,
    );
    assert_eq!(w.process(&mut ptb, 1), Verdict::Tx(0));
    let p = SlicedPacket::from_ethernet(&ptb).expect("decodes");
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        panic!("ipv6")
    };
    let iph = ip.header().to_header();
    assert_eq!(
        (
            Ipv6Addr::from(iph.source),
            Ipv6Addr::from(iph.destination),
            iph.hop_limit
        ),
        (router, CLIENT6, 63)
    );
    let Some(TransportSlice::Icmpv6(m)) = &p.transport else {
        panic!("icmpv6")
    };
    let h = m.header();
    assert_eq!(
        h.checksum,
        h.icmp_type
            .calc_checksum(iph.source, iph.destination, m.payload())
            .unwrap()
    );
    let q = m.payload();
    assert_eq!(
        Ipv6Addr::from(<[u8; 16]>::try_from(&q[8..24]).unwrap()),
        CLIENT6
    );
    assert_eq!(
        Ipv6Addr::from(<[u8; 16]>::try_from(&q[24..40]).unwrap()),
        VIP6
    );
    assert_eq!(
        (
            u16::from_be_bytes([q[40], q[41]]),
            u16::from_be_bytes([q[42], q[43]])
        ),
        (40020, VPORT)
    );
    assert_ne!(snat_port, 40020);
    assert_eq!(&ptb[..6], &CLIENT_MAC);
}

#[test]
fn fragments_router_messages_and_bad_chains_are_dropped_by_name() {
    let mut w = worker(snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1]));
    // A fragment header (44) in front of TCP.
    let mut frag = client_syn(40030, None);
    let mut fh = vec![6u8, 0, 0, 1, 0, 0, 0, 9];
    fh.extend_from_slice(&frag[54..]);
    frag.truncate(54);
    frag.extend_from_slice(&fh);
    frag[14 + 6] = 44;
    let plen = (frag.len() - 54) as u16;
    frag[18..20].copy_from_slice(&plen.to_be_bytes());
    assert_eq!(
        w.process(&mut frag, 0),
        Verdict::Drop(DropReason::Ipv6Fragment)
    );
    // A destination options header cut short.
    let mut chain = client_syn(40031, None);
    chain[14 + 6] = 60;
    chain[54 + 1] = 200;
    assert_eq!(
        w.process(&mut chain, 0),
        Verdict::Drop(DropReason::BadIpv6ExtHeaders)
    );
    let router = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let mut ra = icmp6(
        (CLIENT_MAC, [0x33, 0x33, 0, 0, 0, 1]),
        router,
        all_nodes,
        255,
        134,
        0,
        [64, 0, 0, 0],
        &[0; 8],
    );
    assert_eq!(
        w.process(&mut ra, 0),
        Verdict::Drop(DropReason::RouterMessage)
    );
    let mut redirect = icmp6(
        (CLIENT_MAC, PORT0_MAC),
        router,
        CLIENT6,
        255,
        137,
        0,
        [0; 4],
        &[0; 32],
    );
    assert_eq!(
        w.process(&mut redirect, 0),
        Verdict::Drop(DropReason::RouterMessage)
    );
    let mut short = client_syn(40032, None);
    short.truncate(14 + 30);
    assert_eq!(
        w.process(&mut short, 0),
        Verdict::Drop(DropReason::TruncatedIpv6)
    );
    let mut hop1 = client_syn(40033, None);
    hop1[14 + 7] = 1;
    assert_eq!(
        w.process(&mut hop1, 0),
        Verdict::Drop(DropReason::TtlExpired)
    );
}

#[test]
fn nat_connections_hand_their_reply_key_to_the_xdp_program_for_their_life() {
    use dataplane::flow::{FlowKey, SteerAction};
    let cfg = WorkerConfig {
        flow_capacity: 4096,
        persistence_capacity: 256,
        timeouts: Timeouts::default(),
        steer_replies: true,
        sync_origin: None,
    };
    let mut w = Worker::new(
        0,
        1,
        cfg,
        published(snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1])),
    );
    w.begin_batch(1_000);
    let mut syn = client_syn(40040, None);
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    let mut log = Vec::new();
    w.take_steer_changes6(&mut log);
    let reply_key = FlowKey {
        src_ip: backend_ip6(0).octets(),
        dst_ip: CLIENT6.octets(),
        src_port: 8080,
        dst_port: 40040,
        proto: 6,
    };
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(
        (log[0].port, log[0].key, log[0].action),
        (1, reply_key, SteerAction::ToWorker)
    );
    let mut ipv4_log = Vec::new();
    w.take_steer_changes(&mut ipv4_log);
    assert!(ipv4_log.is_empty(), "IPv6 keys never reach the IPv4 map");
    let mut rst = tcp6(
        (CLIENT_MAC, PORT0_MAC),
        None,
        CLIENT6,
        VIP6,
        40040,
        VPORT,
        "R",
        b"",
    );
    assert_eq!(w.process(&mut rst, 0), Verdict::Tx(1));
    w.begin_batch(1_000_000);
    w.housekeeping(1_000_000, &mut dataplane::flow::NothingSeen);
    log.clear();
    w.take_steer_changes6(&mut log);
    assert_eq!(
        log.iter().map(|c| c.action).collect::<Vec<_>>(),
        vec![SteerAction::Remove]
    );
}

#[test]
fn the_ipv6_table_is_allocated_with_the_first_ipv6_service() {
    let p = dataplane::service::Published::new(snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1]));
    let mut w = worker_of(0, 1, p.clone());
    assert_eq!(w.flows6().capacity(), 0, "no IPv6 service, no IPv6 table");
    let mut syn = client_syn(40060, None);
    assert_eq!(w.process(&mut syn, 0), Verdict::Drop(DropReason::NoFlow));
    p.publish(snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1]));
    w.begin_batch(2_000);
    assert!(w.flows6().capacity() >= 1024);
    let mut syn = client_syn(40060, None);
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
}

#[test]
fn flow_queries_list_ipv6_clients_and_count_both_families() {
    use dataplane::flow::NothingSeen;
    use dataplane::path::query::FlowQuery;
    use std::net::{IpAddr, SocketAddr};

    let mut w = worker(dual_stack(ForwardMode::Nat, SchedulerKind::Rr, &[1, 1]));
    let other6 = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 3);
    let mut open = |mut frame: Vec<u8>| assert_eq!(w.process(&mut frame, 0), Verdict::Tx(1));
    for sport in 41000..41003 {
        open(client_syn(sport, None));
    }
    open(tcp6(
        (CLIENT_MAC, PORT0_MAC),
        None,
        other6,
        VIP6,
        41000,
        VPORT,
        "S",
        b"",
    ));
    for sport in 41000..41002 {
        open(client_tcp(sport, "S"));
    }
    assert_eq!((w.flows().len(), w.flows6().len()), (2, 4));

    let (reply, rx) = std::sync::mpsc::sync_channel(1);
    let ids = vec![1, 2, BACKEND6_IDS + 1, BACKEND6_IDS + 2];
    w.queries()
        .send(FlowQuery {
            backends: ids.clone(),
            client: Some(CLIENT6.into()),
            top: 10,
            active_within_ms: None,
            reply,
        })
        .expect("queued");
    w.housekeeping(1_000, &mut NothingSeen);
    let s = rx.try_recv().expect("answered at housekeeping");
    assert_eq!(s.total, 6, "both families counted");
    assert_eq!(s.capacity, w.flows().capacity() + w.flows6().capacity());
    // Round robin within each service; SYN_RECV counts as inactive.
    let conns: Vec<(u32, u32, u32)> = s
        .backends
        .iter()
        .map(|b| (b.id, b.active, b.inactive))
        .collect();
    assert_eq!(
        conns,
        vec![
            (1, 0, 1),
            (2, 0, 1),
            (BACKEND6_IDS + 1, 0, 2),
            (BACKEND6_IDS + 2, 0, 2)
        ]
    );
    let top: Vec<(IpAddr, u32)> = vec![(CLIENT6.into(), 3), (CLIENT.into(), 2), (other6.into(), 1)];
    assert_eq!(s.top_clients, top, "busiest first, the families mixed");
    let mut listed: Vec<(SocketAddr, SocketAddr, u16, &str)> = s
        .matches
        .iter()
        .map(|m| (m.client, m.destination, m.service, m.state))
        .collect();
    listed.sort_unstable();
    let vip = SocketAddr::from((VIP6, VPORT));
    assert_eq!(
        listed,
        (41000..41003)
            .map(|p| (SocketAddr::from((CLIENT6, p)), vip, 1, "SYN_RECV"))
            .collect::<Vec<_>>()
    );
    assert!(s
        .matches
        .iter()
        .all(|m| m.backend_id > BACKEND6_IDS && !m.offloaded));
}

/// The XDP program's view of IPv6 keys only: every one forwarded at `.0`.
struct ProgramSaw6(u64);

impl FastSeen for ProgramSaw6 {
    fn last_seen_ms(&mut self, _: u8, _: &FlowKey) -> Option<u64> {
        None
    }
}

impl FastSeen<Ip6> for ProgramSaw6 {
    fn last_seen_ms(&mut self, _: u8, _: &FlowKey<Ip6>) -> Option<u64> {
        Some(self.0)
    }
}

/// An IPv6 connection is offloaded to the XDP program like an IPv4 one, and
/// its idle timeout runs from when the program last forwarded its packets:
/// housekeeping keeps it while the program reports them and removes it,
/// withdrawing its keys, once it has been idle for the whole timeout.
#[test]
fn an_offloaded_ipv6_connection_ages_from_the_programs_last_seen_time() {
    let mut snap = snapshot6(ForwardMode::Nat, SchedulerKind::Rr, &[1]);
    snap.services[0].proto = 17;
    snap.fast_path = true;
    snap.index();
    let cfg = WorkerConfig {
        flow_capacity: 64,
        persistence_capacity: 16,
        timeouts: Timeouts::default(),
        steer_replies: true,
        sync_origin: None,
    };
    let mut w = Worker::new(0, 1, cfg, published(snap));
    w.begin_batch(1_000);
    let mut d = udp6((CLIENT_MAC, PORT0_MAC), CLIENT6, VIP6, 5000, VPORT, b"x");
    assert_eq!(w.process(&mut d, 0), Verdict::Tx(1));
    let mut log = Vec::new();
    w.take_steer_changes6(&mut log);
    let forwarded = |log: &[SteerChange<Ip6>]| {
        log.iter()
            .filter(|c| matches!(c.action, SteerAction::Forward { .. }))
            .count()
    };
    assert_eq!(forwarded(&log), 2, "both keys offloaded: {log:?}");

    let idle = Timeouts::default().udp_ms;
    let late = 1_000 + idle + 1;
    w.housekeeping(late, &mut ProgramSaw6(late - 10));
    assert_eq!(w.flows6().len(), 1, "kept: the program forwarded lately");
    w.housekeeping(late + idle, &mut ProgramSaw6(late - 10));
    assert_eq!(w.flows6().len(), 0, "removed after a whole idle timeout");
    log.clear();
    w.take_steer_changes6(&mut log);
    let removed = log
        .iter()
        .filter(|c| c.action == SteerAction::Remove)
        .count();
    assert_eq!(removed, 2, "both keys withdrawn: {log:?}");
}
