//! Golden frames through the pure packet path: frames in, frames out, every
//! field and checksum confirmed by an independent decoder (etherparse).

mod support;

use std::net::Ipv4Addr;

use dataplane::flow::{ConnState, NothingSeen, Timeouts};
use dataplane::path::query::FlowQuery;
use dataplane::path::{Worker, WorkerConfig};
use dataplane::sched::SchedulerKind;
use dataplane::service::ForwardMode;
use dataplane::verdict::{DropReason, Verdict};
use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use support::*;

/// What an independent decoder sees in a TCP frame, with checksums verified.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    sport: u16,
    dport: u16,
}

fn decode_tcp(frame: &[u8]) -> Seen {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse decodes the output");
    let Some(LinkSlice::Ethernet2(eth)) = p.link else {
        panic!("no ethernet")
    };
    let Some(NetSlice::Ipv4(ip)) = p.net else {
        panic!("no ipv4")
    };
    let Some(TransportSlice::Tcp(tcp)) = p.transport else {
        panic!("no tcp")
    };
    let iph = ip.header().to_header();
    assert_eq!(
        iph.header_checksum,
        iph.calc_header_checksum(),
        "IPv4 header checksum"
    );
    let th = tcp.to_header();
    assert_eq!(
        th.checksum,
        th.calc_checksum_ipv4(&iph, tcp.payload())
            .expect("checksum"),
        "TCP checksum"
    );
    Seen {
        src_mac: eth.source(),
        dst_mac: eth.destination(),
        src: Ipv4Addr::from(iph.source),
        dst: Ipv4Addr::from(iph.destination),
        ttl: iph.time_to_live,
        sport: th.source_port,
        dport: th.destination_port,
    }
}

/// Source and destination of a decoded frame whose IPv4 header checksum
/// verifies.
fn checked_addrs(p: &SlicedPacket) -> (Ipv4Addr, Ipv4Addr) {
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("no ipv4")
    };
    let iph = ip.header().to_header();
    assert_eq!(
        iph.header_checksum,
        iph.calc_header_checksum(),
        "IPv4 header checksum"
    );
    (Ipv4Addr::from(iph.source), Ipv4Addr::from(iph.destination))
}

fn backend_of(seen: &Seen) -> usize {
    (0..3)
        .find(|&i| backend_mac(i) == seen.dst_mac)
        .expect("sent to a backend MAC")
}

#[test]
fn nat_rewrites_destination_and_reverses_replies() {
    let mut w = worker(snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1, 1, 1]));
    let mut syn = client_tcp(40000, "S");
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    let out = decode_tcp(&syn);
    let k = backend_of(&out);
    assert_eq!(
        out,
        Seen {
            src_mac: PORT1_MAC,
            dst_mac: backend_mac(k),
            src: CLIENT,
            dst: backend_ip(k),
            ttl: 63,
            sport: 40000,
            dport: 8080
        }
    );
    let mut synack = tcp(
        backend_mac(k),
        PORT1_MAC,
        backend_ip(k),
        CLIENT,
        8080,
        40000,
        "SA",
        b"",
    );
    assert_eq!(w.process(&mut synack, 1), Verdict::Tx(0));
    assert_eq!(
        decode_tcp(&synack),
        Seen {
            src_mac: PORT0_MAC,
            dst_mac: CLIENT_MAC,
            src: VIP,
            dst: CLIENT,
            ttl: 63,
            sport: VPORT,
            dport: 40000
        }
    );
    let mut data = tcp(
        CLIENT_MAC,
        PORT0_MAC,
        CLIENT,
        VIP,
        40000,
        VPORT,
        "AP",
        b"GET / HTTP/1.0\r\n\r\n",
    );
    assert_eq!(w.process(&mut data, 0), Verdict::Tx(1));
    assert_eq!(
        decode_tcp(&data).dst,
        backend_ip(k),
        "the connection keeps its backend"
    );
}

#[test]
fn fullnat_rewrites_both_ends() {
    let mut w = worker(snapshot(ForwardMode::FullNat, SchedulerKind::Wrr, &[2, 1]));
    let mut syn = client_tcp(40001, "S");
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    let out = decode_tcp(&syn);
    let k = backend_of(&out);
    assert_eq!(
        (out.src, out.dst, out.dport, out.ttl),
        (SNAT, backend_ip(k), 8080, 63)
    );
    assert!(
        out.sport >= 1024,
        "full-NAT source port {} below 1024",
        out.sport
    );
    let mut synack = tcp(
        backend_mac(k),
        PORT1_MAC,
        backend_ip(k),
        SNAT,
        8080,
        out.sport,
        "SA",
        b"",
    );
    assert_eq!(w.process(&mut synack, 1), Verdict::Tx(0));
    assert_eq!(
        decode_tcp(&synack),
        Seen {
            src_mac: PORT0_MAC,
            dst_mac: CLIENT_MAC,
            src: VIP,
            dst: CLIENT,
            ttl: 63,
            sport: VPORT,
            dport: 40001
        }
    );
}

#[test]
fn dr_rewrites_only_macs() {
    let mut w = worker(snapshot(ForwardMode::Dr, SchedulerKind::Maglev, &[1, 1, 1]));
    let mut syn = client_tcp(40002, "S");
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    let out = decode_tcp(&syn);
    let k = backend_of(&out);
    assert_eq!(
        out,
        Seen {
            src_mac: PORT1_MAC,
            dst_mac: backend_mac(k),
            src: CLIENT,
            dst: VIP,
            ttl: 63,
            sport: 40002,
            dport: VPORT
        }
    );
}

#[test]
fn arp_for_owned_vip_is_answered_and_others_are_not() {
    let snap = snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1]);
    let mut w = worker(snap.clone());
    let request = |target: Ipv4Addr| {
        let mut f = vec![0u8; 42];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&CLIENT_MAC);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f[22..28].copy_from_slice(&CLIENT_MAC);
        f[28..32].copy_from_slice(&CLIENT.octets());
        f[38..42].copy_from_slice(&target.octets());
        f
    };
    let mut f = request(VIP);
    assert_eq!(w.process(&mut f, 0), Verdict::Tx(0));
    let arp = etherparse::ArpPacketSlice::from_slice(&f[14..]).expect("arp decodes");
    assert_eq!(arp.operation(), etherparse::ArpOperation::REPLY);
    assert_eq!(arp.sender_hw_addr(), &PORT0_MAC[..]);
    assert_eq!(arp.sender_protocol_addr(), &VIP.octets()[..]);
    assert_eq!(arp.target_hw_addr(), &CLIENT_MAC[..]);
    assert_eq!(arp.target_protocol_addr(), &CLIENT.octets()[..]);
    assert_eq!(&f[..6], &CLIENT_MAC);

    let mut other = request(Ipv4Addr::new(10, 77, 0, 99));
    assert_eq!(
        w.process(&mut other, 0),
        Verdict::Drop(DropReason::ArpNotOwned)
    );

    // A VRRP peer announcing the VIP from the same virtual MAC (gratuitous
    // ARP) gets no answer, and it is no drop.
    let mut announcement = request(VIP);
    announcement[28..32].copy_from_slice(&VIP.octets());
    announcement[22..28].copy_from_slice(&PORT0_MAC);
    assert_eq!(
        w.process(&mut announcement, 0),
        Verdict::Drop(DropReason::ArpAnnouncement)
    );
    assert!(!DropReason::ArpAnnouncement.is_drop());
    assert_eq!(snap.arp_claims.seen(), 0);

    let mut unowned = snap.clone();
    unowned.locals.values_mut().for_each(|l| l.owned = false);
    let mut w = worker(unowned);
    let mut f = request(VIP);
    assert_eq!(w.process(&mut f, 0), Verdict::Drop(DropReason::ArpNotOwned));
    // Another host's announcement of a VIP this node does not own: ignored.
    let mut announcement = request(VIP);
    announcement[28..32].copy_from_slice(&VIP.octets());
    assert_eq!(
        w.process(&mut announcement, 0),
        Verdict::Drop(DropReason::ArpAnnouncement)
    );
    assert_eq!(snap.arp_claims.seen(), 0);
    let mut syn = client_tcp(40003, "S");
    assert_eq!(
        w.process(&mut syn, 0),
        Verdict::Drop(DropReason::VipNotOwned)
    );
}

/// While the node owns a VIP, another MAC's reply or announcement for it is
/// answered at once with a gratuitous ARP from the VIP's MAC, and recorded.
#[test]
fn a_claim_on_an_owned_vip_is_answered_with_a_gratuitous_arp() {
    let snap = snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1]);
    let mut w = worker(snap.clone());
    const SPOOFER: [u8; 6] = [0x02, 0x66, 0x66, 0x66, 0x66, 0x66];
    // A gratuitous reply (the classic spoof) and an announcement request.
    for (op, target_mac) in [(2u8, SPOOFER), (1, [0u8; 6])] {
        let mut f = vec![0u8; 42];
        f[..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&SPOOFER);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, op]);
        f[22..28].copy_from_slice(&SPOOFER);
        f[28..32].copy_from_slice(&VIP.octets());
        f[32..38].copy_from_slice(&target_mac);
        f[38..42].copy_from_slice(&VIP.octets());
        assert_eq!(w.process(&mut f, 0), Verdict::Tx(0), "op {op}");
        assert_eq!(&f[..6], &[0xff; 6], "broadcast");
        assert_eq!(&f[6..12], &PORT0_MAC);
        let arp = etherparse::ArpPacketSlice::from_slice(&f[14..]).expect("arp decodes");
        assert_eq!(arp.operation(), etherparse::ArpOperation::REQUEST);
        assert_eq!(arp.sender_hw_addr(), &PORT0_MAC[..]);
        assert_eq!(arp.sender_protocol_addr(), &VIP.octets()[..]);
        assert_eq!(arp.target_hw_addr(), &[0u8; 6][..]);
        assert_eq!(arp.target_protocol_addr(), &VIP.octets()[..]);
    }
    assert_eq!(snap.arp_claims.seen(), 2);
    let claims = snap.arp_claims.drain();
    assert_eq!(claims.len(), 1, "one claimant, one address: {claims:?}");
    assert_eq!(
        (claims[0].addr, claims[0].mac.0, claims[0].port),
        (VIP, SPOOFER, 0)
    );
}

#[test]
fn echo_to_vip_is_answered() {
    let mut w = worker(snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1]));
    let b = etherparse::PacketBuilder::ethernet2(CLIENT_MAC, PORT0_MAC)
        .ipv4(CLIENT.octets(), VIP.octets(), 64)
        .icmpv4_echo_request(7, 9);
    let mut f = Vec::new();
    b.write(&mut f, b"ping payload").expect("build");
    assert_eq!(w.process(&mut f, 0), Verdict::Tx(0));
    let p = SlicedPacket::from_ethernet(&f).expect("decode");
    assert_eq!(checked_addrs(&p), (VIP, CLIENT));
    let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
        panic!("icmp")
    };
    let h = icmp.header();
    assert_eq!(
        h.icmp_type,
        etherparse::Icmpv4Type::EchoReply(etherparse::IcmpEchoHeader { id: 7, seq: 9 })
    );
    assert_eq!(
        h.checksum,
        h.icmp_type.calc_checksum(icmp.payload()),
        "ICMP checksum"
    );
}

#[test]
fn icmp_error_from_backend_follows_the_connection() {
    let mut w = worker(snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1]));
    let mut syn = client_tcp(40004, "S");
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    // The backend reports the translated segment it received as unreachable.
    let quoted = &syn[14..14 + 28];
    let b = etherparse::PacketBuilder::ethernet2(backend_mac(0), PORT1_MAC)
        .ipv4(backend_ip(0).octets(), CLIENT.octets(), 64)
        .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::Port,
        ));
    let mut f = Vec::new();
    b.write(&mut f, quoted).expect("build");
    assert_eq!(w.process(&mut f, 1), Verdict::Tx(0));
    let p = SlicedPacket::from_ethernet(&f).expect("decode");
    assert_eq!(checked_addrs(&p), (VIP, CLIENT));
    let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
        panic!("icmp")
    };
    let h = icmp.header();
    assert_eq!(
        h.checksum,
        h.icmp_type.calc_checksum(icmp.payload()),
        "ICMP checksum"
    );
    // The quote now shows the segment as the client sent it.
    let inner = etherparse::Ipv4HeaderSlice::from_slice(icmp.payload()).expect("quoted header");
    assert_eq!(
        (inner.source_addr(), inner.destination_addr()),
        (CLIENT, VIP)
    );
    assert_eq!(
        inner.header_checksum(),
        inner.to_header().calc_header_checksum(),
        "quoted header checksum"
    );
    let ports = &icmp.payload()[20..24];
    assert_eq!(
        (
            u16::from_be_bytes([ports[0], ports[1]]),
            u16::from_be_bytes([ports[2], ports[3]])
        ),
        (40004, VPORT)
    );
}

#[test]
fn both_directions_of_a_connection_have_one_owner() {
    for mode in [ForwardMode::Nat, ForwardMode::FullNat] {
        let p = support::published(snapshot(mode, SchedulerKind::Rr, &[1]));
        let mut workers = [worker_of(0, 2, p.clone()), worker_of(1, 2, p)];
        for sport in 41000..41064u16 {
            let mut handled = None;
            let mut out = Vec::new();
            for (i, w) in workers.iter_mut().enumerate() {
                let mut syn = client_tcp(sport, "S");
                match w.process(&mut syn, 0) {
                    Verdict::Tx(1) => {
                        handled = Some(i);
                        out = syn;
                    }
                    Verdict::Handoff(o) => {
                        assert_eq!(usize::from(o), 1 - i, "handoff names the other worker")
                    }
                    v => panic!("unexpected {v:?}"),
                }
            }
            let owner = handled.expect("one worker owns the connection");
            let seen = decode_tcp(&out);
            let mut reply = tcp(
                backend_mac(0),
                PORT1_MAC,
                seen.dst,
                seen.src,
                seen.dport,
                seen.sport,
                "SA",
                b"",
            );
            let other = 1 - owner;
            assert_eq!(
                workers[other].process(&mut reply.clone(), 1),
                Verdict::Handoff(owner as u16),
                "{mode:?} reply owner"
            );
            assert_eq!(workers[owner].process(&mut reply, 1), Verdict::Tx(0));
        }
    }
}

#[test]
fn malformed_frames_are_dropped_with_a_reason() {
    let mut w = worker(snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1]));
    let good = client_tcp(40005, "S");
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (good[..10].to_vec(), DropReason::TruncatedEthernet),
        (good[..20].to_vec(), DropReason::TruncatedIpv4),
        (
            {
                let mut f = good.clone();
                f[14] = 0x43;
                f
            },
            DropReason::BadIpv4Header,
        ),
        (
            {
                let mut f = good.clone();
                f[17] = 0xff;
                f
            },
            DropReason::BadIpv4Length,
        ),
        (
            {
                let mut f = good.clone();
                f[24] ^= 0xff;
                f
            },
            DropReason::BadIpv4Checksum,
        ),
        (
            {
                let mut f = good.clone();
                f[12] = 0x88;
                f[13] = 0xb5;
                f
            },
            DropReason::UnknownEthertype,
        ),
        (client_tcp(40006, "SF"), DropReason::BadTcpFlags),
        (client_tcp(40007, "A"), DropReason::NoFlow),
    ];
    for (mut f, reason) in cases {
        assert_eq!(w.process(&mut f, 0), Verdict::Drop(reason));
    }
}

/// The engine prefetches a whole batch before processing it: that must
/// change nothing, for good frames, malformed ones and flows that come and go.
#[test]
fn prefetching_a_batch_changes_no_verdict_and_no_byte() {
    let snap = || snapshot(ForwardMode::FullNat, SchedulerKind::Wrr, &[3, 2, 1]);
    let (mut plain, mut warmed) = (worker(snap()), worker(snap()));
    let good = client_tcp(41000, "S");
    let mut batch: Vec<Vec<u8>> = Vec::new();
    for i in 0..24u16 {
        let client = Ipv4Addr::new(10, 77, 0, 3 + (i % 3) as u8);
        batch.push(client_tcp_from(
            client,
            41000 + i % 8,
            if i < 8 { "S" } else { "A" },
        ));
    }
    batch.push(good[..10].to_vec());
    batch.push(good[..36].to_vec());
    batch.push({
        let mut f = good.clone();
        f[23] = 17;
        f
    });
    batch.push(client_tcp(41001, "R"));
    batch.push(client_tcp(41001, "S"));
    for now in [1_000, 2_000, 1_000_000] {
        plain.begin_batch(now);
        warmed.begin_batch(now);
        for f in &batch {
            warmed.prefetch(f);
        }
        for f in &batch {
            let (mut a, mut b) = (f.clone(), f.clone());
            assert_eq!(plain.process(&mut a, 0), warmed.process(&mut b, 0));
            assert_eq!(a, b);
        }
        assert_eq!(plain.flows().len(), warmed.flows().len());
    }
    assert!(!plain.flows().is_empty());
}

/// Republishes `snap` after `edit` and lets the worker pick it up.
fn republish(
    w: &mut Worker,
    p: &std::sync::Arc<dataplane::service::Published>,
    snap: &mut dataplane::service::Snapshot,
    edit: impl FnOnce(&mut dataplane::service::Snapshot),
) {
    edit(snap);
    p.publish(snap.clone());
    w.begin_batch(2_000);
}

#[test]
fn drained_backend_keeps_open_flows_but_gets_no_new_ones() {
    let mut snap = snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1, 1]);
    let p = support::published(snap.clone());
    let mut w = worker_of(0, 1, p.clone());
    let mut syn = client_tcp(42000, "S");
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    let k = backend_of(&decode_tcp(&syn));
    republish(&mut w, &p, &mut snap, |s| {
        s.services[0].weights[k].weight = 0
    });
    let mut data = client_tcp(42000, "A");
    assert_eq!(w.process(&mut data, 0), Verdict::Tx(1));
    assert_eq!(
        backend_of(&decode_tcp(&data)),
        k,
        "the open flow stays on the drained backend"
    );
    for sport in 42001..42021 {
        let mut syn = client_tcp(sport, "S");
        assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
        assert_ne!(
            backend_of(&decode_tcp(&syn)),
            k,
            "a new flow went to the drained backend"
        );
    }
}

#[test]
fn failed_backend_flows_follow_the_down_action() {
    let mut snap = snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1, 1]);
    let p = support::published(snap.clone());
    let mut w = worker_of(0, 1, p.clone());
    let mut syn = client_tcp(43000, "S");
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    let k = backend_of(&decode_tcp(&syn));
    let id = snap.services[0].weights[k].id;
    republish(&mut w, &p, &mut snap, |s| {
        s.services[0].weights[k].available = false
    });
    let mut data = client_tcp(43000, "A");
    assert_eq!(
        w.process(&mut data, 0),
        Verdict::Tx(1),
        "keep: the flow goes on"
    );
    republish(&mut w, &p, &mut snap, |s| {
        s.services[0].on_down = dataplane::service::DownAction::Drop;
        s.dead_backends.insert(id);
    });
    let mut data = client_tcp(43000, "A");
    assert_eq!(
        w.process(&mut data, 0),
        Verdict::Drop(DropReason::BackendDown)
    );
}

#[test]
fn persistence_keeps_a_client_on_one_backend() {
    let mut snap = snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1, 1, 1]);
    snap.services[0].persistence_ms = Some(60_000);
    let mut w = worker(snap);
    let mut seen = std::collections::HashSet::new();
    for sport in 44000..44012 {
        let mut syn = client_tcp(sport, "S");
        assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
        seen.insert(backend_of(&decode_tcp(&syn)));
    }
    assert_eq!(
        seen.len(),
        1,
        "round robin with persistence spread one client: {seen:?}"
    );
    let mut other = client_tcp_from(Ipv4Addr::new(10, 77, 0, 3), 44000, "S");
    assert_eq!(w.process(&mut other, 0), Verdict::Tx(1));
    let mut seen_other = std::collections::HashSet::new();
    for sport in 44001..44007 {
        let mut syn = client_tcp_from(Ipv4Addr::new(10, 77, 0, 4), sport, "S");
        assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
        seen_other.insert(backend_of(&decode_tcp(&syn)));
    }
    assert_eq!(seen_other.len(), 1);
}

#[test]
fn mid_connection_segments_are_picked_up_under_dr_with_consistent_hashing() {
    let mut w = worker(snapshot(ForwardMode::Dr, SchedulerKind::Maglev, &[1, 1, 1]));
    let mut first = client_tcp(45000, "A");
    assert_eq!(w.process(&mut first, 0), Verdict::Tx(1));
    let k = backend_of(&decode_tcp(&first));
    assert_eq!(w.flows().len(), 1, "a picked-up segment opens a flow");
    let conn = *w.flows().iter().next().expect("the picked-up flow");
    assert!(conn.picked_up, "marked as picked up");
    assert!(
        conn.state.is_embryonic(),
        "one lone segment proves nothing: {:?}",
        conn.state
    );
    for _ in 0..5 {
        let mut again = client_tcp(45000, "AP");
        assert_eq!(w.process(&mut again, 0), Verdict::Tx(1));
        assert_eq!(
            backend_of(&decode_tcp(&again)),
            k,
            "the flow keeps the backend"
        );
    }
    let conn = *w.flows().iter().next().expect("the picked-up flow");
    assert_eq!(conn.state, ConnState::Established, "a second segment");
    assert_eq!(w.flows().len(), 1);

    // The counters and the flow listing say so.
    let (reply, rx) = std::sync::mpsc::sync_channel(1);
    w.queries()
        .send(FlowQuery {
            backends: Vec::new(),
            client: Some(CLIENT.into()),
            top: 10,
            active_within_ms: Some(1_000),
            reply,
        })
        .expect("queued");
    w.housekeeping(500, &mut NothingSeen);
    let s = rx.try_recv().expect("answered at housekeeping");
    assert_eq!((s.picked_up, s.picked_up_total), (1, 1));
    assert_eq!(s.active, Some(1));
    assert!(s.matches.iter().all(|m| m.picked_up), "{:?}", s.matches);

    // A reset of a connection this node does not know is not picked up.
    let mut rst = client_tcp(45002, "R");
    assert_eq!(w.process(&mut rst, 0), Verdict::Drop(DropReason::NoFlow));

    for (mode, sched) in [
        (ForwardMode::Nat, SchedulerKind::Maglev),
        (ForwardMode::Dr, SchedulerKind::Rr),
    ] {
        let mut w = worker(snapshot(mode, sched, &[1, 1]));
        let mut ack = client_tcp(45001, "A");
        assert_eq!(
            w.process(&mut ack, 0),
            Verdict::Drop(DropReason::NoFlow),
            "{mode:?}/{sched:?}"
        );
    }
}

#[test]
fn a_syn_on_the_ports_of_a_finished_connection_is_scheduled_afresh() {
    let mut snap = snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1, 1]);
    let p = support::published(snap.clone());
    let mut w = worker_of(0, 1, p.clone());
    let mut syn = client_tcp(46000, "S");
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    let first = backend_of(&decode_tcp(&syn));
    let mut retransmit = client_tcp(46000, "S");
    assert_eq!(w.process(&mut retransmit, 0), Verdict::Tx(1));
    assert_eq!(
        backend_of(&decode_tcp(&retransmit)),
        first,
        "a retransmitted SYN keeps its backend"
    );
    let mut rst = client_tcp(46000, "R");
    assert_eq!(w.process(&mut rst, 0), Verdict::Tx(1));
    let mut again = client_tcp(46000, "S");
    assert_eq!(w.process(&mut again, 0), Verdict::Tx(1));
    assert_ne!(
        backend_of(&decode_tcp(&again)),
        first,
        "round robin moves on for the new connection"
    );
    assert_eq!(w.flows().len(), 1);

    // The backend of an open connection goes down: a SYN on its ports goes elsewhere.
    let now_on = backend_of(&decode_tcp(&again));
    republish(&mut w, &p, &mut snap, |s| {
        s.services[0].weights[now_on].available = false
    });
    let mut syn = client_tcp(46000, "S");
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    assert_ne!(backend_of(&decode_tcp(&syn)), now_on);
}

#[test]
fn a_released_virtual_mac_is_never_a_frame_source() {
    const VMAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 51];
    let mut snap = snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1]);
    let vip_local = |s: &mut dataplane::service::Snapshot| {
        *s.locals.get_mut(&VIP.to_bits()).expect("VIP is local")
    };
    snap.locals.get_mut(&VIP.to_bits()).expect("VIP").mac = wire::MacAddr(VMAC);
    let p = support::published(snap.clone());
    let mut w = worker_of(0, 1, p.clone());
    let mut syn = client_tcp(44000, "S");
    assert_eq!(w.process(&mut syn, 0), Verdict::Tx(1));
    let reply = |flags| {
        tcp(
            backend_mac(0),
            PORT1_MAC,
            backend_ip(0),
            CLIENT,
            8080,
            44000,
            flags,
            b"",
        )
    };
    let mut synack = reply("SA");
    assert_eq!(w.process(&mut synack, 1), Verdict::Tx(0));
    assert_eq!(
        decode_tcp(&synack).src_mac,
        VMAC,
        "the master sends from the virtual MAC"
    );

    // Demoted: replies of the open connection still reach the client, from
    // the port's own MAC, and the client's segments to the VIP are refused.
    republish(&mut w, &p, &mut snap, |s| {
        let mut local = vip_local(s);
        local.owned = false;
        s.locals.insert(VIP.to_bits(), local);
        s.released_macs = vec![wire::MacAddr(VMAC)];
    });
    let mut ack = reply("A");
    assert_eq!(w.process(&mut ack, 1), Verdict::Tx(0));
    let seen = decode_tcp(&ack);
    assert_eq!((seen.src_mac, seen.src), (PORT0_MAC, VIP));
    let mut data = client_tcp(44000, "A");
    assert_eq!(
        w.process(&mut data, 0),
        Verdict::Drop(DropReason::VipNotOwned)
    );

    // Master again: the virtual MAC is the source once more.
    republish(&mut w, &p, &mut snap, |s| {
        let mut local = vip_local(s);
        local.owned = true;
        s.locals.insert(VIP.to_bits(), local);
        s.released_macs.clear();
    });
    let mut ack = reply("A");
    assert_eq!(w.process(&mut ack, 1), Verdict::Tx(0));
    assert_eq!(decode_tcp(&ack).src_mac, VMAC);
}

#[test]
fn martian_sources_open_no_connection_and_get_no_echo() {
    let mut w = worker(snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1]));
    for src in [
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::new(240, 0, 0, 9),
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::new(0, 0, 0, 1),
        VIP,
        SNAT,
        PORT0_IP,
        PORT1_IP,
    ] {
        let mut syn = client_tcp_from(src, 40_100, "S");
        assert_eq!(
            w.process(&mut syn, 0),
            Verdict::Drop(DropReason::MartianSource),
            "SYN from {src}"
        );
    }
    assert_eq!(w.flows().len(), 0, "a martian opened a connection");
    let mut syn = client_tcp(40_100, "S");
    assert_eq!(
        w.process(&mut syn, 0),
        Verdict::Tx(1),
        "a real client still gets in"
    );
    let echo = |src: Ipv4Addr| {
        let b = etherparse::PacketBuilder::ethernet2(CLIENT_MAC, PORT0_MAC)
            .ipv4(src.octets(), VIP.octets(), 64)
            .icmpv4_echo_request(7, 1);
        let mut out = Vec::new();
        b.write(&mut out, b"ping").expect("echo");
        out
    };
    assert_eq!(
        w.process(&mut echo(Ipv4Addr::new(127, 0, 0, 9)), 0),
        Verdict::Drop(DropReason::MartianSource)
    );
    assert_eq!(w.process(&mut echo(CLIENT), 0), Verdict::Tx(0));
}

#[test]
fn nat_connections_steer_their_reply_key_for_exactly_their_life() {
    use dataplane::flow::{FlowKey, NothingSeen, SteerAction, SteerChange};
    let cfg = |steer_replies| WorkerConfig {
        flow_capacity: 64,
        persistence_capacity: 16,
        timeouts: Timeouts {
            udp_ms: 5_000,
            ..Timeouts::default()
        },
        steer_replies,
        sync_origin: None,
    };
    let mut log = Vec::new();
    for forward in [ForwardMode::FullNat, ForwardMode::Dr] {
        let snap = snapshot(forward, SchedulerKind::Rr, &[1]);
        let mut w = Worker::new(0, 1, cfg(true), support::published(snap));
        w.begin_batch(1_000);
        assert_eq!(w.process(&mut client_tcp(40_200, "S"), 0), Verdict::Tx(1));
        w.take_steer_changes(&mut log);
        assert!(log.is_empty(), "{forward:?} steered {log:?}");
    }

    let mut snap = snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1]);
    snap.services[0].proto = 17;
    snap.index();
    let mut w = Worker::new(0, 1, cfg(true), support::published(snap));
    w.begin_batch(1_000);
    let datagram = || {
        let b = etherparse::PacketBuilder::ethernet2(CLIENT_MAC, PORT0_MAC)
            .ipv4(CLIENT.octets(), VIP.octets(), 64)
            .udp(40_201, VPORT);
        let mut out = Vec::new();
        b.write(&mut out, b"q").expect("udp");
        out
    };
    assert_eq!(w.process(&mut datagram(), 0), Verdict::Tx(1));
    let reply_key = FlowKey {
        src_ip: backend_ip(0).to_bits(),
        dst_ip: CLIENT.to_bits(),
        src_port: 8080,
        dst_port: 40_201,
        proto: 17,
    };
    let added = SteerChange {
        port: 1,
        key: reply_key,
        action: SteerAction::ToWorker,
    };
    w.take_steer_changes(&mut log);
    assert_eq!(log, vec![added]);
    log.clear();
    assert_eq!(w.process(&mut datagram(), 0), Verdict::Tx(1));
    w.take_steer_changes(&mut log);
    assert!(
        log.is_empty(),
        "an established flow changed nothing: {log:?}"
    );

    // Idle past its timeout, the flow is swept and its key withdrawn.
    w.housekeeping(1_000 + 6_000, &mut NothingSeen);
    w.take_steer_changes(&mut log);
    assert_eq!(
        log,
        vec![SteerChange {
            action: SteerAction::Remove,
            ..added
        }]
    );

    let snap = snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1]);
    let mut quiet = Worker::new(0, 1, cfg(false), support::published(snap));
    quiet.begin_batch(1_000);
    assert_eq!(
        quiet.process(&mut client_tcp(40_202, "S"), 0),
        Verdict::Tx(1)
    );
    log.clear();
    quiet.take_steer_changes(&mut log);
    assert!(log.is_empty(), "a worker without steering logs nothing");
}

/// Sets or clears DF on a frame built by etherparse and rewrites its IPv4
/// header.
fn with_df(mut frame: Vec<u8>, df: bool) -> Vec<u8> {
    let (mut h, _) = etherparse::Ipv4Header::from_slice(&frame[14..]).expect("ipv4");
    h.dont_fragment = df;
    let mut out = Vec::new();
    h.write(&mut out).expect("header");
    frame[14..14 + out.len()].copy_from_slice(&out);
    frame
}

#[test]
fn packets_over_the_egress_mtu_get_fragmentation_needed_when_df_is_set() {
    let mut snap = snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1]);
    snap.ports[0].mtu = 1420;
    snap.ports[1].mtu = 1400;
    let mut w = worker(snap);
    let payload = vec![0x5a; 1400];
    assert_eq!(w.process(&mut client_tcp(40_300, "S"), 0), Verdict::Tx(1));
    let big = |df: bool| {
        let f = tcp(
            CLIENT_MAC, PORT0_MAC, CLIENT, VIP, 40_300, VPORT, "A", &payload,
        );
        with_df(f, df)
    };

    let sent = big(true);
    let mut frame = sent.clone();
    let Verdict::Answer { port, len, dropped } = w.process(&mut frame, 0) else {
        panic!("no answer to a DF packet over the MTU");
    };
    assert_eq!((port, dropped), (0, DropReason::TooBigDf));
    frame.truncate(usize::from(len));
    let p = SlicedPacket::from_ethernet(&frame).expect("etherparse decodes the answer");
    let Some(LinkSlice::Ethernet2(eth)) = &p.link else {
        panic!("no ethernet")
    };
    assert_eq!((eth.source(), eth.destination()), (PORT0_MAC, CLIENT_MAC));
    assert_eq!(
        checked_addrs(&p),
        (VIP, CLIENT),
        "from the VIP the client addressed"
    );
    let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
        panic!("no icmp")
    };
    assert_eq!(
        icmp.icmp_type(),
        etherparse::Icmpv4Type::DestinationUnreachable(
            etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded { next_hop_mtu: 1400 }
        )
    );
    let body = icmp.slice();
    let sum = body
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum::<u32>();
    assert_eq!((sum % 0xffff), 0, "ICMP checksum");
    let quoted = &icmp.payload();
    assert!(quoted.len() >= 28 && frame.len() <= 14 + 576);
    assert_eq!(
        &quoted[..],
        &sent[14..14 + quoted.len()],
        "quotes the packet as the client sent it"
    );

    let mut no_df = big(false);
    assert_eq!(w.process(&mut no_df, 0), Verdict::Drop(DropReason::TooBig));

    // A backend's answer too big for the client side: the error comes from
    // the node's own address on the backend side.
    let mut answer = with_df(
        tcp(
            backend_mac(0),
            PORT1_MAC,
            backend_ip(0),
            CLIENT,
            8080,
            40_300,
            "A",
            &payload,
        ),
        true,
    );
    let Verdict::Answer { port, len, .. } = w.process(&mut answer, 1) else {
        panic!("no answer to the backend");
    };
    assert_eq!(port, 1);
    let p = SlicedPacket::from_ethernet(&answer[..usize::from(len)]).expect("decodes");
    assert_eq!(checked_addrs(&p), (PORT1_IP, backend_ip(0)));

    // A flood gets a burst of answers, then counted drops.
    let answered = (0..200)
        .filter(|_| matches!(w.process(&mut big(true), 0), Verdict::Answer { .. }))
        .count();
    assert!(answered < 60, "{answered} answers in one millisecond");
    assert_eq!(
        w.process(&mut big(true), 0),
        Verdict::Drop(DropReason::TooBigUnanswered)
    );
    let mut small = client_tcp(40_300, "A");
    assert_eq!(
        w.process(&mut small, 0),
        Verdict::Tx(1),
        "packets that fit pass"
    );
}

#[test]
fn the_worker_counts_each_backends_packets_and_bytes() {
    use dataplane::flow::NothingSeen;
    let mut w = worker(snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1, 1]));
    let mut sent = [(0u64, 0u64); 2];
    for sport in 40_000..40_011 {
        let mut f = client_tcp(sport, "S");
        let len = f.len() as u64;
        assert_eq!(w.process(&mut f, 0), Verdict::Tx(1));
        let k = backend_of(&decode_tcp(&f));
        sent[k].0 += 1;
        sent[k].1 += len;
    }
    let (reply, rx) = std::sync::mpsc::sync_channel(1);
    w.queries()
        .send(FlowQuery {
            backends: vec![1, 2, 3],
            client: None,
            top: 0,
            active_within_ms: None,
            reply,
        })
        .expect("queued");
    w.housekeeping(1_000, &mut NothingSeen);
    let s = rx.try_recv().expect("answered at housekeeping");
    let got: Vec<(u32, u64, u64)> = s
        .backends
        .iter()
        .map(|b| (b.id, b.packets, b.bytes))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, sent[0].0, sent[0].1),
            (2, sent[1].0, sent[1].1),
            (3, 0, 0)
        ]
    );
    assert_eq!(sent[0].0 + sent[1].0, 11);
}

#[test]
fn a_table_full_of_established_flows_still_forwards_picked_up_segments() {
    let cfg = WorkerConfig {
        flow_capacity: 64,
        persistence_capacity: 16,
        timeouts: Timeouts::default(),
        steer_replies: false,
        sync_origin: None,
    };
    let snap = snapshot(ForwardMode::Dr, SchedulerKind::Maglev, &[1, 1]);
    let mut w = Worker::new(0, 1, cfg, support::published(snap));
    w.begin_batch(1_000);
    let mut full = false;
    for sport in 46000..47000 {
        let mut syn = client_tcp(sport, "S");
        if w.process(&mut syn, 0) == Verdict::Drop(DropReason::FlowTableFull) {
            full = true;
            break;
        }
        let mut ack = client_tcp(sport, "A");
        assert_eq!(w.process(&mut ack, 0), Verdict::Tx(1));
    }
    assert!(full, "the table never filled");
    let before = w.flows().len();
    let mut mid = client_tcp(47500, "AP");
    assert_eq!(
        w.process(&mut mid, 0),
        Verdict::Tx(1),
        "forwarded without state"
    );
    assert_eq!(w.flows().len(), before);
}
