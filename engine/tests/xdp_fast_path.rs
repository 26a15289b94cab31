//! The XDP fast path run by the kernel (BPF_PROG_TEST_RUN), frame for frame
//! against the workers' path: the program is loaded unattached, its flow
//! tables filled with the very changes a worker logs, and every frame goes
//! through both. For IPv4 and IPv6, nat, full NAT and direct routing, TCP
//! and UDP, both directions, with and without a VLAN tag and a partial
//! checksum, the program's output equals the worker's byte for byte; what
//! it must leave to the worker (SYN/FIN/RST, unknown flows, IP options and
//! IPv6 extension headers, oversize packets, a VIP no longer owned) it
//! leaves untouched. Each test runs once per family, as `ipv4::NAME` and
//! `ipv6::NAME`. Needs root.

mod engine_common;
#[path = "../../dataplane/tests/support/mod.rs"]
mod support;

use std::fmt::Debug;
use std::net::{Ipv4Addr, Ipv6Addr};

use dataplane::flow::{FlowKey, Ip6, Rewrite, SteerAction, SteerChange, Timeouts};
use dataplane::path::{Worker, WorkerConfig};
use dataplane::sched::SchedulerKind;
use dataplane::service::{ForwardMode, Snapshot};
use dataplane::verdict::{PortId, Verdict};
use engine::{EgressPort, XdpSimulator, XdpStats, XDP_PASS, XDP_REDIRECT, XDP_TX};
use engine_common::{Lab, Netns};
use support::v6::*;
use support::*;

const UDP: u8 = 17;
const TCP: u8 = 6;

/// What the tests need of an address family: its addresses and frames,
/// its worker and program tables, and how the program counts it.
trait Family: 'static {
    /// Addresses as flow keys hold them.
    type Addr: Copy + Debug + PartialEq;
    type Ip: Copy + Debug + PartialEq + Send;
    const CLIENT: Self::Ip;
    const VIP: Self::Ip;
    /// Tells this family's labs from the other's.
    const TAG: &'static str;
    fn addr(ip: Self::Ip) -> Self::Addr;
    fn backend_ip(i: usize) -> Self::Ip;
    /// The one-service snapshot of `support` in this family.
    fn snapshot(forward: ForwardMode) -> Snapshot;
    /// Takes the VIP from this node, as VRRP would.
    fn release_vip(snap: &mut Snapshot);
    /// A TCP segment or UDP datagram (flags ignored) as an untagged frame.
    fn segment(
        proto: u8,
        macs: ([u8; 6], [u8; 6]),
        src: (Self::Ip, u16),
        dst: (Self::Ip, u16),
        flags: &str,
        payload: &[u8],
    ) -> Vec<u8>;
    /// The untagged frame's L4 checksum in CHECKSUM_PARTIAL form.
    fn make_partial(frame: &mut [u8]);
    /// The untagged frame with IP options (IPv4) or an extension header
    /// (IPv6) before its transport header.
    fn with_ip_extension(frame: &[u8]) -> Vec<u8>;
    /// Source and destination of an untagged frame's packet.
    fn endpoints(frame: &[u8]) -> ((Self::Ip, u16), (Self::Ip, u16));
    fn take_changes(w: &mut Worker) -> Vec<SteerChange<Self::Addr>>;
    fn apply(sim: &mut XdpSimulator, changes: &[SteerChange<Self::Addr>]) -> usize;
    fn last_seen_ms(sim: &mut XdpSimulator, key: &FlowKey<Self::Addr>) -> Option<u64>;
    /// Frames of this family the program left to the kernel.
    fn passed(stats: &XdpStats) -> u64;
}

struct V4;
struct V6;

impl Family for V4 {
    type Addr = u32;
    type Ip = Ipv4Addr;
    const CLIENT: Ipv4Addr = CLIENT;
    const VIP: Ipv4Addr = VIP;
    const TAG: &'static str = "4";
    fn addr(ip: Ipv4Addr) -> u32 {
        ip.to_bits()
    }
    fn backend_ip(i: usize) -> Ipv4Addr {
        backend_ip(i)
    }
    fn snapshot(forward: ForwardMode) -> Snapshot {
        snapshot(forward, SchedulerKind::Rr, &[1])
    }
    fn release_vip(snap: &mut Snapshot) {
        if let Some(l) = snap.locals.get_mut(&VIP.to_bits()) {
            l.owned = false;
        }
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
    fn make_partial(frame: &mut [u8]) {
        make_partial(frame);
    }
    fn with_ip_extension(frame: &[u8]) -> Vec<u8> {
        // Three NOPs and the end of the options list: a 24-byte header.
        let mut out = frame[..34].to_vec();
        out.extend_from_slice(&[1, 1, 1, 0]);
        out.extend_from_slice(&frame[34..]);
        let ip = &mut out[14..38];
        ip[0] = 0x46;
        let total = u16::from_be_bytes([ip[2], ip[3]]) + 4;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[10..12].fill(0);
        let sum = ip
            .chunks(2)
            .fold(0u32, |s, w| s + u32::from(u16::from_be_bytes([w[0], w[1]])));
        let sum = (sum & 0xffff) + (sum >> 16);
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        out
    }
    fn endpoints(frame: &[u8]) -> ((Ipv4Addr, u16), (Ipv4Addr, u16)) {
        let ip = &frame[14..];
        let a = |o: usize| Ipv4Addr::new(ip[o], ip[o + 1], ip[o + 2], ip[o + 3]);
        let p = |o: usize| u16::from_be_bytes([ip[20 + o], ip[21 + o]]);
        ((a(12), p(0)), (a(16), p(2)))
    }
    fn take_changes(w: &mut Worker) -> Vec<SteerChange> {
        let mut changes = Vec::new();
        w.take_steer_changes(&mut changes);
        changes
    }
    fn apply(sim: &mut XdpSimulator, changes: &[SteerChange]) -> usize {
        sim.apply(changes)
    }
    fn last_seen_ms(sim: &mut XdpSimulator, key: &FlowKey) -> Option<u64> {
        sim.last_seen_ms(key)
    }
    fn passed(stats: &XdpStats) -> u64 {
        stats.pass_ipv4
    }
}

impl Family for V6 {
    type Addr = Ip6;
    type Ip = Ipv6Addr;
    const CLIENT: Ipv6Addr = CLIENT6;
    const VIP: Ipv6Addr = VIP6;
    const TAG: &'static str = "6";
    fn addr(ip: Ipv6Addr) -> Ip6 {
        ip.octets()
    }
    fn backend_ip(i: usize) -> Ipv6Addr {
        backend_ip6(i)
    }
    fn snapshot(forward: ForwardMode) -> Snapshot {
        snapshot6(forward, SchedulerKind::Rr, &[1])
    }
    fn release_vip(snap: &mut Snapshot) {
        if let Some(l) = snap.locals6.get_mut(&VIP6.octets()) {
            l.owned = false;
        }
    }
    fn segment(
        proto: u8,
        macs: ([u8; 6], [u8; 6]),
        (src, sport): (Ipv6Addr, u16),
        (dst, dport): (Ipv6Addr, u16),
        flags: &str,
        payload: &[u8],
    ) -> Vec<u8> {
        if proto == TCP {
            return tcp6(macs, None, src, dst, sport, dport, flags, payload);
        }
        udp6(macs, src, dst, sport, dport, payload)
    }
    fn make_partial(frame: &mut [u8]) {
        make_partial6(frame);
    }
    fn with_ip_extension(frame: &[u8]) -> Vec<u8> {
        // A Destination Options header holding one PadN option.
        let mut out = frame[..54].to_vec();
        out.extend_from_slice(&[frame[20], 0, 1, 4, 0, 0, 0, 0]);
        out.extend_from_slice(&frame[54..]);
        out[20] = 60;
        let len = u16::from_be_bytes([out[18], out[19]]) + 8;
        out[18..20].copy_from_slice(&len.to_be_bytes());
        out
    }
    fn endpoints(frame: &[u8]) -> ((Ipv6Addr, u16), (Ipv6Addr, u16)) {
        let ip = &frame[14..];
        let a = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&ip[o..o + 16]).expect("16 bytes"));
        let p = |o: usize| u16::from_be_bytes([ip[40 + o], ip[41 + o]]);
        ((a(8), p(0)), (a(24), p(2)))
    }
    fn take_changes(w: &mut Worker) -> Vec<SteerChange<Ip6>> {
        let mut changes = Vec::new();
        w.take_steer_changes6(&mut changes);
        changes
    }
    fn apply(sim: &mut XdpSimulator, changes: &[SteerChange<Ip6>]) -> usize {
        sim.apply6(changes)
    }
    fn last_seen_ms(sim: &mut XdpSimulator, key: &FlowKey<Ip6>) -> Option<u64> {
        sim.last_seen6_ms(key)
    }
    fn passed(stats: &XdpStats) -> u64 {
        stats.pass_ipv6
    }
}

/// Declares each lab test below once per family.
macro_rules! for_both_families {
    ($($name:ident),* $(,)?) => {
        mod ipv4 {
            $(#[test]
            #[cfg_attr(
                not(feature = "lab"),
                ignore = "lab: needs root and network namespaces; scripts/test runs it"
            )]
            fn $name() {
                super::$name::<super::V4>();
            })*
        }
        mod ipv6 {
            $(#[test]
            #[cfg_attr(
                not(feature = "lab"),
                ignore = "lab: needs root and network namespaces; scripts/test runs it"
            )]
            fn $name() {
                super::$name::<super::V6>();
            })*
        }
    };
}

for_both_families!(
    fast_path_output_equals_the_workers_byte_for_byte,
    one_armed_direct_routing_transmits_on_the_ingress_port,
    a_snapshot_that_disqualifies_a_connection_withdraws_it,
    a_port_xdp_cannot_send_by_keeps_only_its_direction_in_the_worker,
    table_changes_apply_in_order_and_count_what_the_table_refuses,
    the_program_finds_every_key_the_workers_placed,
);

fn ifindex(ns: &Netns, dev: &str) -> u32 {
    ns.exec(&["cat", &format!("/sys/class/net/{dev}/ifindex")])
        .trim()
        .parse()
        .expect("ifindex from sysfs")
}

/// Runs `f` on a simulator loaded in a fresh lab's L namespace with `keys`
/// room for flow keys of each family, and the VIPs and full-NAT source
/// addresses of both steered. Its port table is l0 and l1 in snapshot port
/// order, usable by XDP and at MTU 1500, as `ports` leaves it.
fn simulate(
    tag: &str,
    keys: u32,
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
        sim.steering().set_vips(&[VIP, SNAT]).expect("vips");
        sim.steering().set_vips6(&[VIP6, SNAT6]).expect("vips6");
        f(&mut sim);
    });
}

/// A lab tag unique per family, so both families' tests can run at once.
fn tag<F: Family>(base: &str) -> String {
    format!("{base}{}", F::TAG)
}

fn worker_on(published: std::sync::Arc<dataplane::service::Published>, flows: usize) -> Worker {
    let cfg = WorkerConfig {
        flow_capacity: flows,
        persistence_capacity: 16,
        timeouts: Timeouts::default(),
        steer_replies: true,
        sync_origin: None,
    };
    let mut w = Worker::new(0, 1, cfg, published);
    w.begin_batch(1_000);
    w
}

fn worker(snap: Snapshot) -> Worker {
    worker_on(published(snap), 1024)
}

fn fast_snapshot<F: Family>(forward: ForwardMode, proto: u8) -> Snapshot {
    let mut snap = F::snapshot(forward);
    snap.services[0].proto = proto;
    snap.fast_path = true;
    snap.index();
    snap
}

/// A client → VIP datagram from port `sport`.
fn client_dgram<F: Family>(sport: u16, payload: &[u8]) -> Vec<u8> {
    F::segment(
        UDP,
        (CLIENT_MAC, PORT0_MAC),
        (F::CLIENT, sport),
        (F::VIP, VPORT),
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

struct Case {
    forward: ForwardMode,
    proto: u8,
    vlan: bool,
    partial: bool,
}

impl Case {
    fn prepare<F: Family>(&self, mut frame: Vec<u8>) -> Vec<u8> {
        if self.partial {
            F::make_partial(&mut frame);
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

fn apply<F: Family>(w: &mut Worker, sim: &mut XdpSimulator) -> Vec<SteerChange<F::Addr>> {
    let changes = F::take_changes(w);
    assert_eq!(
        F::apply(sim, &changes),
        0,
        "the flow table refused {changes:?}"
    );
    changes
}

fn forwarded_keys<A>(changes: &[SteerChange<A>]) -> usize {
    changes
        .iter()
        .filter(|c| matches!(c.action, SteerAction::Forward { .. }))
        .count()
}

/// Opens a connection through the worker, checks it is offloaded, then
/// compares data in both directions, and checks that FIN, RST, SYN, an
/// unknown flow, IP options or extension headers and an oversize packet
/// stay with the worker.
fn run_case<F: Family>(sim: &mut XdpSimulator, c: &Case, sport: u16) {
    let what = format!(
        "{:?} {} vlan={} partial={}",
        c.forward,
        if c.proto == TCP { "tcp" } else { "udp" },
        c.vlan,
        c.partial
    );
    let mut w = worker(fast_snapshot::<F>(c.forward, c.proto));
    let client = (CLIENT_MAC, PORT0_MAC);
    let to_vip = |flags: &str, payload: &[u8]| {
        F::segment(
            c.proto,
            client,
            (F::CLIENT, sport),
            (F::VIP, VPORT),
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
    let ((fwd_src, fwd_sport), (backend, bport)) = F::endpoints(&first);
    let from_backend = |flags: &str, payload: &[u8]| {
        F::segment(
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
    let changes = apply::<F>(&mut w, sim);
    assert_eq!(
        forwarded_keys(&changes),
        if two_way { 2 } else { 1 },
        "{what}: offloaded keys in {changes:?}"
    );

    let payload = vec![0x5a; 333];
    let counted = |sim: &XdpSimulator| sim.steering().backend_traffic(&[1]).expect("traffic")[0];
    let before = counted(sim);
    let frame = c.prepare::<F>(to_vip("AP", &payload));
    same_output(&mut w, sim, &frame, 0, &format!("{what} forward"));
    if two_way {
        let reply = c.prepare::<F>(from_backend("AP", &payload));
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
    // The worker's idle timeout reads when the program last forwarded.
    let key = changes
        .iter()
        .find(|ch| matches!(ch.action, SteerAction::Forward { .. }))
        .map(|ch| ch.key)
        .expect("an offloaded key");
    assert!(
        F::last_seen_ms(sim, &key).is_some(),
        "{what}: no last-seen time noted"
    );

    let stranger = F::segment(
        c.proto,
        client,
        (F::CLIENT, sport + 1),
        (F::VIP, VPORT),
        "A",
        b"x",
    );
    untouched(
        sim,
        &c.prepare::<F>(stranger),
        0,
        &format!("{what} unknown flow"),
    );
    let extended = F::with_ip_extension(&to_vip("AP", &payload));
    untouched(
        sim,
        &extended,
        0,
        &format!("{what} IP options or extension header"),
    );
    let big = vec![0x33; 1420];
    let before = sim.steering().xdp_stats().expect("stats").fast_to_worker;
    let after = untouched(
        sim,
        &c.prepare::<F>(to_vip("AP", &big)),
        0,
        &format!("{what} over MTU"),
    );
    assert_eq!(after.fast_to_worker, before + 1, "{what}: over MTU");

    if c.proto == TCP {
        for flags in ["AF", "AR", "S"] {
            let before = sim.steering().xdp_stats().expect("stats");
            let after = untouched(
                sim,
                &c.prepare::<F>(to_vip(flags, b"")),
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
                after.redirected + F::passed(&after),
                before.redirected + F::passed(&before) + 1,
                "{what} {flags}"
            );
        }
        // The worker sees the FIN and takes the connection back.
        assert!(matches!(
            w.process(&mut to_vip("AF", b""), 0),
            Verdict::Tx(1)
        ));
        let changes = apply::<F>(&mut w, sim);
        assert_eq!(forwarded_keys(&changes), 0, "{what}: {changes:?}");
        untouched(
            sim,
            &c.prepare::<F>(to_vip("AP", &payload)),
            0,
            &format!("{what} after FIN"),
        );
    }
}

fn fast_path_output_equals_the_workers_byte_for_byte<F: Family>() {
    simulate(
        &tag::<F>("xfp"),
        4096,
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
                            run_case::<F>(sim, &c, sport);
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
fn one_armed_direct_routing_transmits_on_the_ingress_port<F: Family>() {
    simulate(
        &tag::<F>("xfo"),
        64,
        |_| {},
        |sim| {
            let mut snap = fast_snapshot::<F>(ForwardMode::Dr, UDP);
            for b in &mut snap.services[0].backends {
                if let Some(hop) = b.hop.as_mut() {
                    hop.port = 0;
                }
            }
            let mut w = worker(snap);
            let dgram = |p: &[u8]| client_dgram::<F>(5353, p);
            assert_eq!(w.process(&mut dgram(b"a"), 0), Verdict::Tx(0));
            apply::<F>(&mut w, sim);
            same_output(&mut w, sim, &dgram(b"bb"), 0, "one-armed dr");
        },
    );
}

/// A VIP lost to VRRP, a backend down with its flows dropped, the fast path
/// turned off: each takes the connections back from the program at the
/// next snapshot, and the program then forwards none of their packets.
fn a_snapshot_that_disqualifies_a_connection_withdraws_it<F: Family>() {
    simulate(
        &tag::<F>("xfw"),
        256,
        |_| {},
        |sim| {
            type Change = fn(&mut Snapshot);
            let changes: [(&str, Change); 3] = [
                ("VIP released", F::release_vip),
                ("backend dead", |s| {
                    s.dead_backends.insert(1);
                }),
                ("fast path off", |s| s.fast_path = false),
            ];
            for (i, (what, change)) in changes.iter().enumerate() {
                let published = published(fast_snapshot::<F>(ForwardMode::Nat, UDP));
                let mut w = worker_on(published.clone(), 64);
                let sport = 30_000 + i as u16;
                let dgram = || client_dgram::<F>(sport, b"q");
                assert_eq!(w.process(&mut dgram(), 0), Verdict::Tx(1));
                apply::<F>(&mut w, sim);
                same_output(&mut w, sim, &dgram(), 0, what);

                let mut snap = fast_snapshot::<F>(ForwardMode::Nat, UDP);
                change(&mut snap);
                published.publish(snap);
                w.begin_batch(2_000);
                let log = apply::<F>(&mut w, sim);
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
fn a_port_xdp_cannot_send_by_keeps_only_its_direction_in_the_worker<F: Family>() {
    simulate(
        &tag::<F>("xfd"),
        64,
        |p| p[0].xmit = false,
        |sim| {
            let mut snap = fast_snapshot::<F>(ForwardMode::Nat, UDP);
            snap.ports[0].xdp_xmit = false;
            let mut w = worker(snap);
            let dgram = |p: &[u8]| client_dgram::<F>(6000, p);
            let mut first = dgram(b"a");
            assert_eq!(w.process(&mut first, 0), Verdict::Tx(1));
            let changes = apply::<F>(&mut w, sim);
            assert_eq!(forwarded_keys(&changes), 1, "{changes:?}");
            same_output(&mut w, sim, &dgram(b"bb"), 0, "client to backend");
            let ((src, sport), (backend, bport)) = F::endpoints(&first);
            let reply = F::segment(
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

/// The change forwarding client port `sport`'s datagrams to backend 0.
fn forward_change<F: Family>(sport: u16) -> SteerChange<F::Addr> {
    SteerChange {
        port: 0,
        key: key_of::<F>(sport),
        action: SteerAction::Forward {
            rewrite: Rewrite {
                src_ip: F::addr(F::CLIENT),
                dst_ip: F::addr(F::backend_ip(0)),
                src_port: sport,
                dst_port: 8080,
                src_mac: PORT1_MAC,
                dst_mac: backend_mac(0),
                egress: 1,
            },
            backend: 1,
        },
    }
}

/// The key of client port `sport`'s datagrams to the VIP.
fn key_of<F: Family>(sport: u16) -> FlowKey<F::Addr> {
    FlowKey {
        src_ip: F::addr(F::CLIENT),
        dst_ip: F::addr(F::VIP),
        src_port: sport,
        dst_port: VPORT,
        proto: UDP,
    }
}

/// Changes reach the table in order: a removal of a key the table never
/// took does not stop the removals after it, a full table refuses exactly
/// what does not fit, counted, and keeps the rest, and a removed key's slot
/// is taken again. Room for four keys is eight slots, one window: every
/// key may take any slot, so the order of the changes decides.
fn table_changes_apply_in_order_and_count_what_the_table_refuses<F: Family>() {
    simulate(
        &tag::<F>("xfb"),
        4,
        |_| {},
        |sim| {
            let remove = |sport: u16| SteerChange {
                port: 0,
                key: key_of::<F>(sport),
                action: SteerAction::Remove,
            };
            let forward = forward_change::<F>;
            let forwarded = |sim: &mut XdpSimulator, sport: u16| {
                let dgram = client_dgram::<F>(sport, b"x");
                sim.run(&dgram, 0).expect("test run").action == XDP_REDIRECT
            };

            assert_eq!(F::apply(sim, &[forward(1), forward(2), forward(3)]), 0);
            assert!((1..=3).all(|p| forwarded(sim, p)));
            let removals = [remove(1), remove(9), remove(3)];
            assert_eq!(
                F::apply(sim, &removals),
                0,
                "removing an absent key is no refusal"
            );
            assert_eq!(
                (1..=3).map(|p| forwarded(sim, p)).collect::<Vec<_>>(),
                vec![false, true, false]
            );

            // Eight slots; one is taken, two are deleted.
            let refused = F::apply(sim, &(10..20).map(forward).collect::<Vec<_>>());
            assert_eq!(
                refused, 3,
                "ten keys offered to a table with room for seven more"
            );
            let kept: Vec<bool> = (10..20).map(|p| forwarded(sim, p)).collect();
            assert_eq!(kept, [[true; 7].as_slice(), &[false; 3]].concat());
            assert!(forwarded(sim, 2));

            assert_eq!(F::apply(sim, &[remove(10), forward(17)]), 0);
            assert!(!forwarded(sim, 10));
            assert!(forwarded(sim, 17), "the removed key's slot is taken again");
        },
    );
}

/// The program finds every key the workers' code placed: the two hash
/// functions agree (a key looked for from another slot than its own would
/// meet a never-used slot and miss), windows wrap at the table's end, and
/// a key is refused only when its window is full.
fn the_program_finds_every_key_the_workers_placed<F: Family>() {
    const KEYS: u16 = 3000;
    simulate(
        &tag::<F>("xfh"),
        u32::from(KEYS),
        |_| {},
        |sim| {
            let mut refused = 0;
            for sport in 1..=KEYS {
                let placed = F::apply(sim, &[forward_change::<F>(sport)]) == 0;
                refused += usize::from(!placed);
                let out = sim
                    .run(&client_dgram::<F>(sport, b"h"), 0)
                    .expect("test run");
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
