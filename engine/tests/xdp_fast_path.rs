//! The XDP fast path run by the kernel (BPF_PROG_TEST_RUN), frame for frame
//! against the workers' path: the program is loaded unattached, its flow map
//! filled with the very changes a worker logs, and every frame goes through
//! both. For nat, full NAT and direct routing, TCP and UDP, both directions,
//! with and without a VLAN tag and a partial checksum, the program's output
//! equals the worker's byte for byte; what it must leave to the worker
//! (SYN/FIN/RST, unknown flows, oversize packets, a VIP no longer owned)
//! it leaves untouched. Needs root.

mod engine_common;
#[path = "../../dataplane/tests/support/mod.rs"]
mod support;

use std::net::Ipv4Addr;

use dataplane::flow::{SteerAction, SteerChange, Timeouts};
use dataplane::path::{Worker, WorkerConfig};
use dataplane::sched::SchedulerKind;
use dataplane::service::{ForwardMode, Snapshot};
use dataplane::verdict::{PortId, Verdict};
use engine::{EgressPort, XdpSimulator, XdpStats, XDP_PASS, XDP_REDIRECT, XDP_TX};
use engine_common::{Lab, Netns};
use support::*;

const UDP: u8 = 17;
const TCP: u8 = 6;

fn ifindex(ns: &Netns, dev: &str) -> u32 {
    ns.exec(&["cat", &format!("/sys/class/net/{dev}/ifindex")])
        .trim()
        .parse()
        .expect("ifindex from sysfs")
}

/// Runs `f` on a simulator loaded in a fresh lab's L namespace with `keys`
/// room for flow keys and `vips` steered. Its port table is l0 and l1 in
/// snapshot port order, usable by XDP and at MTU 1500, as `ports` leaves
/// it.
fn simulate(
    tag: &str,
    keys: u32,
    vips: &'static [Ipv4Addr],
    ports: impl FnOnce(&mut [EgressPort]),
    f: impl FnOnce(&mut XdpSimulator) + Send + 'static,
) {
    let lab = Lab::new(tag, 1);
    let mut table: Vec<EgressPort> = ["l0", "l1"]
        .iter()
        .map(|dev| EgressPort {
            ifindex: ifindex(&lab.l, dev),
            mtu: 1500,
            xmit: true,
        })
        .collect();
    ports(&mut table);
    lab.l.run(move || {
        let mut sim = XdpSimulator::new(&table, keys).expect("load the XDP program");
        sim.steering().set_vips(vips).expect("vips");
        f(&mut sim);
    });
}

fn worker(snap: Snapshot) -> Worker {
    let cfg = WorkerConfig {
        flow_capacity: 1024,
        persistence_capacity: 16,
        timeouts: Timeouts::default(),
        steer_replies: true,
        sync_origin: None,
    };
    let mut w = Worker::new(0, 1, cfg, published(snap));
    w.begin_batch(1_000);
    w
}

fn fast_snapshot(forward: ForwardMode, proto: u8) -> Snapshot {
    let mut snap = snapshot(forward, SchedulerKind::Rr, &[1]);
    snap.services[0].proto = proto;
    snap.fast_path = true;
    snap.index();
    snap
}

fn segment(
    proto: u8,
    (src_mac, dst_mac): ([u8; 6], [u8; 6]),
    (src, sport): (Ipv4Addr, u16),
    (dst, dport): (Ipv4Addr, u16),
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    if proto == TCP {
        return tcp(src_mac, dst_mac, src, dst, sport, dport, flags, payload);
    }
    let b = etherparse::PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("udp frame");
    out
}

/// A client → VIP UDP datagram from port `sport`.
fn client_dgram(sport: u16, payload: &[u8]) -> Vec<u8> {
    segment(
        UDP,
        (CLIENT_MAC, PORT0_MAC),
        (CLIENT, sport),
        (VIP, VPORT),
        "",
        payload,
    )
}

/// The frame with an 802.1Q tag (VLAN 100) after its MACs.
fn tagged(frame: &[u8]) -> Vec<u8> {
    let mut out = frame[..12].to_vec();
    out.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    out.extend_from_slice(&frame[12..]);
    out
}

/// Addresses and ports of a frame's IPv4 packet (no VLAN tag).
fn endpoints(frame: &[u8]) -> ((Ipv4Addr, u16), (Ipv4Addr, u16)) {
    let ip = &frame[14..];
    let a = |o: usize| Ipv4Addr::new(ip[o], ip[o + 1], ip[o + 2], ip[o + 3]);
    let p = |o: usize| u16::from_be_bytes([ip[20 + o], ip[21 + o]]);
    ((a(12), p(0)), (a(16), p(2)))
}

struct Case {
    forward: ForwardMode,
    proto: u8,
    vlan: bool,
    partial: bool,
}

impl Case {
    fn prepare(&self, mut frame: Vec<u8>) -> Vec<u8> {
        if self.partial {
            make_partial(&mut frame);
        }
        if self.vlan {
            frame = tagged(&frame);
        }
        frame
    }
}

/// Runs `frame` through the worker and the program; both must forward it
/// to the same port with the same bytes.
fn same_output(w: &mut Worker, sim: &mut XdpSimulator, frame: &[u8], ingress: PortId, what: &str) {
    let mut by_worker = frame.to_vec();
    let Verdict::Tx(egress) = w.process(&mut by_worker, ingress) else {
        panic!("{what}: the worker did not forward it");
    };
    let before = sim.steering().xdp_stats().expect("stats").fast_forwarded;
    let out = sim.run(frame, ingress).expect("test run");
    let want = if egress == ingress {
        XDP_TX
    } else {
        XDP_REDIRECT
    };
    assert_eq!(out.action, want, "{what}: XDP action");
    assert_eq!(
        out.frame, by_worker,
        "{what}: XDP output differs from the worker's"
    );
    let after = sim.steering().xdp_stats().expect("stats").fast_forwarded;
    assert_eq!(after, before + 1, "{what}: not counted as fast-forwarded");
}

/// The program must leave `frame` alone: to the worker's socket, which the
/// simulator has none of, so the kernel's fallback (XDP_PASS) with the
/// frame unchanged.
fn untouched(sim: &mut XdpSimulator, frame: &[u8], ingress: PortId, what: &str) -> XdpStats {
    let before = sim.steering().xdp_stats().expect("stats");
    let out = sim.run(frame, ingress).expect("test run");
    assert_eq!(out.action, XDP_PASS, "{what}: XDP action");
    assert_eq!(
        out.frame, frame,
        "{what}: the program changed a frame it must not forward"
    );
    let after = sim.steering().xdp_stats().expect("stats");
    assert_eq!(after.fast_forwarded, before.fast_forwarded, "{what}");
    after
}

fn apply(w: &mut Worker, sim: &mut XdpSimulator) -> Vec<SteerChange> {
    let mut changes = Vec::new();
    w.take_steer_changes(&mut changes);
    assert_eq!(sim.apply(&changes), 0, "the flow map refused {changes:?}");
    changes
}

fn forwarded_keys(changes: &[SteerChange]) -> usize {
    changes
        .iter()
        .filter(|c| matches!(c.action, SteerAction::Forward { .. }))
        .count()
}

/// Opens a connection through the worker, checks it is offloaded, then
/// compares data in both directions, and checks FIN, an unknown flow and
/// an oversize packet stay with the worker.
fn run_case(sim: &mut XdpSimulator, c: &Case, sport: u16) {
    let what = format!(
        "{:?} {} vlan={} partial={}",
        c.forward,
        if c.proto == TCP { "tcp" } else { "udp" },
        c.vlan,
        c.partial
    );
    let mut w = worker(fast_snapshot(c.forward, c.proto));
    let client = (CLIENT_MAC, PORT0_MAC);
    let to_vip = |flags: &str, payload: &[u8]| {
        segment(
            c.proto,
            client,
            (CLIENT, sport),
            (VIP, VPORT),
            flags,
            payload,
        )
    };
    let mut first = to_vip("S", b"hello");
    assert!(
        matches!(w.process(&mut first, 0), Verdict::Tx(1)),
        "{what}: open"
    );
    // The backend's side of the connection as the worker set it up.
    let ((fwd_src, fwd_sport), (backend, bport)) = endpoints(&first);
    let from_backend = |flags: &str, payload: &[u8]| {
        segment(
            c.proto,
            (backend_mac(0), PORT1_MAC),
            (backend, bport),
            (fwd_src, fwd_sport),
            flags,
            payload,
        )
    };
    let two_way = c.forward != ForwardMode::Dr;
    if c.proto == TCP {
        if two_way {
            assert!(matches!(
                w.process(&mut from_backend("SA", b""), 1),
                Verdict::Tx(0)
            ));
        }
        assert!(matches!(
            w.process(&mut to_vip("A", b""), 0),
            Verdict::Tx(1)
        ));
    }
    let changes = apply(&mut w, sim);
    assert_eq!(
        forwarded_keys(&changes),
        if two_way { 2 } else { 1 },
        "{what}: offloaded keys in {changes:?}"
    );

    let payload = vec![0x5a; 333];
    let counted = |sim: &XdpSimulator| sim.steering().backend_traffic(&[1]).expect("traffic")[0];
    let before = counted(sim);
    let frame = c.prepare(to_vip("AP", &payload));
    same_output(&mut w, sim, &frame, 0, &format!("{what} forward"));
    if two_way {
        let reply = c.prepare(from_backend("AP", &payload));
        same_output(&mut w, sim, &reply, 1, &format!("{what} reply"));
    }
    // Both directions count for the connection's backend (id 1).
    let n = if two_way { 2 } else { 1 };
    let after = counted(sim);
    assert_eq!(
        after.0,
        before.0 + n,
        "{what}: packets counted for the backend"
    );
    assert_eq!(
        after.1 - before.1,
        n * frame.len() as u64,
        "{what}: bytes counted"
    );

    let stranger = segment(
        c.proto,
        client,
        (CLIENT, sport + 1),
        (VIP, VPORT),
        "A",
        b"x",
    );
    untouched(
        sim,
        &c.prepare(stranger),
        0,
        &format!("{what} unknown flow"),
    );
    let big = vec![0x33; 1420];
    let before = sim.steering().xdp_stats().expect("stats").fast_to_worker;
    let after = untouched(
        sim,
        &c.prepare(to_vip("AP", &big)),
        0,
        &format!("{what} over MTU"),
    );
    assert_eq!(after.fast_to_worker, before + 1, "{what}: over MTU");

    if c.proto == TCP {
        for flags in ["AF", "AR", "S"] {
            let before = sim.steering().xdp_stats().expect("stats");
            let after = untouched(
                sim,
                &c.prepare(to_vip(flags, b"")),
                0,
                &format!("{what} {flags}"),
            );
            // A SYN to a VIP goes to SYN admission before any flow lookup.
            let handed_back = u64::from(flags != "S");
            assert_eq!(
                after.fast_to_worker,
                before.fast_to_worker + handed_back,
                "{what} {flags}"
            );
            // Toward the worker's socket (the simulator has none: a pass).
            assert_eq!(
                after.redirected + after.pass_ipv4,
                before.redirected + before.pass_ipv4 + 1,
                "{what} {flags}"
            );
        }
        // The worker sees the FIN and takes the connection back.
        assert!(matches!(
            w.process(&mut to_vip("AF", b""), 0),
            Verdict::Tx(1)
        ));
        let changes = apply(&mut w, sim);
        assert_eq!(forwarded_keys(&changes), 0, "{what}: {changes:?}");
        untouched(
            sim,
            &c.prepare(to_vip("AP", &payload)),
            0,
            &format!("{what} after FIN"),
        );
    }
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn fast_path_output_equals_the_workers_byte_for_byte() {
    simulate(
        "xfp",
        4096,
        &[VIP, SNAT],
        |p| p[1].mtu = 1400,
        |sim| {
            let mut sport = 20_000;
            for forward in [ForwardMode::Nat, ForwardMode::FullNat, ForwardMode::Dr] {
                for proto in [TCP, UDP] {
                    for vlan in [false, true] {
                        for partial in [false, true] {
                            let c = Case {
                                forward,
                                proto,
                                vlan,
                                partial,
                            };
                            run_case(sim, &c, sport);
                            sport += 10;
                        }
                    }
                }
            }
        },
    );
}

/// One arm: backends on the clients' port, so the program sends the frame
/// back out where it came in (XDP_TX).
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn one_armed_direct_routing_transmits_on_the_ingress_port() {
    simulate(
        "xfo",
        64,
        &[VIP],
        |_| {},
        |sim| {
            let mut snap = fast_snapshot(ForwardMode::Dr, UDP);
            for b in &mut snap.services[0].backends {
                if let Some(hop) = b.hop.as_mut() {
                    hop.port = 0;
                }
            }
            let mut w = worker(snap);
            let dgram = |p: &[u8]| client_dgram(5353, p);
            assert_eq!(w.process(&mut dgram(b"a"), 0), Verdict::Tx(0));
            apply(&mut w, sim);
            same_output(&mut w, sim, &dgram(b"bb"), 0, "one-armed dr");
        },
    );
}

/// A VIP lost to VRRP, a backend down with its flows dropped, the fast path
/// turned off: each takes the connections back from the program at the
/// next snapshot, and the program then forwards none of their packets.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn a_snapshot_that_disqualifies_a_connection_withdraws_it() {
    simulate(
        "xfw",
        256,
        &[VIP],
        |_| {},
        |sim| {
            type Change = fn(&mut Snapshot);
            let changes: [(&str, Change); 3] = [
                ("VIP released", |s| {
                    if let Some(l) = s.locals.get_mut(&VIP.to_bits()) {
                        l.owned = false;
                    }
                }),
                ("backend dead", |s| {
                    s.dead_backends.insert(1);
                }),
                ("fast path off", |s| s.fast_path = false),
            ];
            for (i, (what, change)) in changes.iter().enumerate() {
                let published = published(fast_snapshot(ForwardMode::Nat, UDP));
                let cfg = WorkerConfig {
                    flow_capacity: 64,
                    persistence_capacity: 16,
                    timeouts: Timeouts::default(),
                    steer_replies: true,
                    sync_origin: None,
                };
                let mut w = Worker::new(0, 1, cfg, published.clone());
                w.begin_batch(1_000);
                let sport = 30_000 + i as u16;
                let dgram = || client_dgram(sport, b"q");
                assert_eq!(w.process(&mut dgram(), 0), Verdict::Tx(1));
                apply(&mut w, sim);
                same_output(&mut w, sim, &dgram(), 0, what);

                let mut snap = fast_snapshot(ForwardMode::Nat, UDP);
                change(&mut snap);
                published.publish(snap);
                w.begin_batch(2_000);
                let log = apply(&mut w, sim);
                assert!(
                    log.iter().any(|c| c.action == SteerAction::Remove),
                    "{what}: nothing withdrawn: {log:?}"
                );
                untouched(sim, &dgram(), 0, what);
            }
        },
    );
}

/// A port XDP cannot send by (a veth peer without GRO) takes only the
/// direction leaving by it back to the worker: here replies, which leave
/// towards the clients, while client packets stay in the fast path.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn a_port_xdp_cannot_send_by_keeps_only_its_direction_in_the_worker() {
    simulate(
        "xfd",
        64,
        &[VIP],
        |p| p[0].xmit = false,
        |sim| {
            let mut snap = fast_snapshot(ForwardMode::Nat, UDP);
            snap.ports[0].xdp_xmit = false;
            let mut w = worker(snap);
            let dgram = |p: &[u8]| client_dgram(6000, p);
            let mut first = dgram(b"a");
            assert_eq!(w.process(&mut first, 0), Verdict::Tx(1));
            let changes = apply(&mut w, sim);
            assert_eq!(forwarded_keys(&changes), 1, "{changes:?}");
            same_output(&mut w, sim, &dgram(b"bb"), 0, "client to backend");
            let ((src, sport), (backend, bport)) = endpoints(&first);
            let reply = segment(
                UDP,
                (backend_mac(0), PORT1_MAC),
                (backend, bport),
                (src, sport),
                "",
                b"r",
            );
            untouched(sim, &reply, 1, "backend to client");
            let mut by_worker = reply.clone();
            assert_eq!(w.process(&mut by_worker, 1), Verdict::Tx(0));
        },
    );
}

/// Changes reach the table in order: a removal of a key the table never
/// took does not stop the removals after it, a full table refuses exactly
/// what does not fit, counted, and keeps the rest, and a removed key's slot
/// is taken again. Room for four keys is eight slots, one window: every
/// key may take any slot, so the order of the changes decides.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn table_changes_apply_in_order_and_count_what_the_table_refuses() {
    simulate(
        "xfb",
        4,
        &[VIP],
        |_| {},
        |sim| {
            let dgram = |sport: u16| client_dgram(sport, b"x");
            let key = |sport: u16| dataplane::flow::FlowKey {
                src_ip: CLIENT.to_bits(),
                dst_ip: VIP.to_bits(),
                src_port: sport,
                dst_port: VPORT,
                proto: UDP,
            };
            let rewrite = dataplane::flow::Rewrite {
                src_ip: CLIENT.to_bits(),
                dst_ip: backend_ip(0).to_bits(),
                src_port: 0,
                dst_port: 8080,
                src_mac: PORT1_MAC,
                dst_mac: backend_mac(0),
                egress: 1,
            };
            let change = |sport: u16, action| SteerChange {
                port: 0,
                key: key(sport),
                action,
            };
            let forward = |sport: u16| {
                change(
                    sport,
                    SteerAction::Forward {
                        rewrite: dataplane::flow::Rewrite {
                            src_port: sport,
                            ..rewrite
                        },
                        backend: 1,
                    },
                )
            };
            let forwarded = |sim: &mut XdpSimulator, sport: u16| {
                sim.run(&dgram(sport), 0).expect("test run").action == XDP_REDIRECT
            };

            assert_eq!(sim.apply(&[forward(1), forward(2), forward(3)]), 0);
            assert!((1..=3).all(|p| forwarded(sim, p)));
            let removals = [
                change(1, SteerAction::Remove),
                change(9, SteerAction::Remove),
                change(3, SteerAction::Remove),
            ];
            assert_eq!(
                sim.apply(&removals),
                0,
                "removing an absent key is no refusal"
            );
            assert_eq!(
                (1..=3).map(|p| forwarded(sim, p)).collect::<Vec<_>>(),
                vec![false, true, false]
            );

            // Eight slots; one is taken, two are deleted.
            let refused = sim.apply(&(10..20).map(forward).collect::<Vec<_>>());
            assert_eq!(
                refused, 3,
                "ten keys offered to a table with room for seven more"
            );
            let kept: Vec<bool> = (10..20).map(|p| forwarded(sim, p)).collect();
            assert_eq!(kept, [[true; 7].as_slice(), &[false; 3]].concat());
            assert!(forwarded(sim, 2));

            assert_eq!(
                sim.apply(&[change(10, SteerAction::Remove), forward(17)]),
                0
            );
            assert!(!forwarded(sim, 10));
            assert!(forwarded(sim, 17), "the removed key's slot is taken again");
        },
    );
}

/// The program finds every key the workers' code placed: the two hash
/// functions agree (a key looked for from another slot than its own would
/// meet a never-used slot and miss), windows wrap at the table's end, and
/// a key is refused only when its window is full.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn the_program_finds_every_key_the_workers_placed() {
    const KEYS: u16 = 3000;
    simulate(
        "xfh",
        u32::from(KEYS),
        &[VIP],
        |_| {},
        |sim| {
            let rewrite = dataplane::flow::Rewrite {
                src_ip: CLIENT.to_bits(),
                dst_ip: backend_ip(0).to_bits(),
                src_port: 0,
                dst_port: 8080,
                src_mac: PORT1_MAC,
                dst_mac: backend_mac(0),
                egress: 1,
            };
            let forward = |sport: u16| SteerChange {
                port: 0,
                key: dataplane::flow::FlowKey {
                    src_ip: CLIENT.to_bits(),
                    dst_ip: VIP.to_bits(),
                    src_port: sport,
                    dst_port: VPORT,
                    proto: UDP,
                },
                action: SteerAction::Forward {
                    rewrite: dataplane::flow::Rewrite {
                        src_port: sport,
                        ..rewrite
                    },
                    backend: 1,
                },
            };
            let mut refused = 0;
            for sport in 1..=KEYS {
                let placed = sim.apply(&[forward(sport)]) == 0;
                refused += usize::from(!placed);
                let out = sim.run(&client_dgram(sport, b"h"), 0).expect("test run");
                assert_eq!(
                    out.action == XDP_REDIRECT,
                    placed,
                    "key {sport}: placed {placed}, program action {}",
                    out.action
                );
            }
            // 3000 keys in 8192 slots: a full window of eight is rare.
            assert!(refused < 30, "{refused} of {KEYS} keys refused");
        },
    );
}
