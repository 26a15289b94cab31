//! Connection sync through the pure packet path: a connection opened on one
//! node's worker, sent as a record and applied on another's, forwards the
//! same frames there; removals, conflicts and hostile records behave as
//! documented. Each behaviour is written once and run for both address
//! families.

mod support;

use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

use connsync::{AnyRecord, ConnRecord, ConnRecord6, Record, RecordOp, WireAddr};
use dataplane::flow::{Addr, ConnState, FlowTable, Ip6, NothingSeen, Timeouts};
use dataplane::path::sync::{record_worker, Rejected, REFRESH_PERIOD_MS};
use dataplane::path::{Worker, WorkerConfig};
use dataplane::sched::SchedulerKind;
use dataplane::service::{ForwardMode, Snapshot};
use dataplane::verdict::Verdict;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use support::v6::*;
use support::*;

const CPORT: u16 = 40_000;
const TCP: u8 = 6;
const UDP: u8 = 17;

/// What differs between the address families here; the tests are written
/// once over it.
trait Family: Addr + WireAddr + Debug {
    const CLIENT: IpAddr;
    const VIP: IpAddr;
    const SNAT: IpAddr;
    /// An address no service here knows.
    const STRANGER: IpAddr;
    /// One service on VIP:80 with three backends.
    fn snapshot(mode: ForwardMode) -> Snapshot;
    fn table(w: &Worker) -> &FlowTable<Self>;
    /// The record, which must be of this family.
    fn of(r: AnyRecord) -> Record<Self>;

    fn addr(ip: IpAddr) -> Self {
        Self::from_ip(ip).expect("an address of the family")
    }
}

impl Family for u32 {
    const CLIENT: IpAddr = IpAddr::V4(CLIENT);
    const VIP: IpAddr = IpAddr::V4(VIP);
    const SNAT: IpAddr = IpAddr::V4(SNAT);
    const STRANGER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::BROADCAST);
    fn snapshot(mode: ForwardMode) -> Snapshot {
        snapshot(mode, SchedulerKind::Rr, &[1, 1, 1])
    }
    fn table(w: &Worker) -> &FlowTable {
        w.flows()
    }
    fn of(r: AnyRecord) -> ConnRecord {
        match r {
            AnyRecord::V4(r) => r,
            other => panic!("not IPv4: {other:?}"),
        }
    }
}

impl Family for Ip6 {
    const CLIENT: IpAddr = IpAddr::V6(CLIENT6);
    const VIP: IpAddr = IpAddr::V6(VIP6);
    const SNAT: IpAddr = IpAddr::V6(SNAT6);
    const STRANGER: IpAddr =
        IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1));
    fn snapshot(mode: ForwardMode) -> Snapshot {
        snapshot6(mode, SchedulerKind::Rr, &[1, 1, 1])
    }
    fn table(w: &Worker) -> &FlowTable<Ip6> {
        w.flows6()
    }
    fn of(r: AnyRecord) -> ConnRecord6 {
        match r {
            AnyRecord::V6(r) => r,
            other => panic!("not IPv6: {other:?}"),
        }
    }
}

/// Runs a generic test once per family, as `name::ipv4` and `name::ipv6`.
macro_rules! both_families {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn ipv4() {
                super::$name::<u32>();
            }
            #[test]
            fn ipv6() {
                super::$name::<dataplane::flow::Ip6>();
            }
        }
    )*};
}

both_families!(
    a_synced_connection_forwards_the_same_frames_on_the_peer,
    embryonic_connections_are_not_synced_and_closing_ones_are,
    removal_reaches_the_peer_and_removes_only_learned_connections,
    split_brain_keeps_the_lower_origins_connection_on_both_nodes,
    hostile_records_are_counted_and_change_nothing,
    a_dump_sends_every_connection_past_its_handshake,
    served_connections_are_refreshed_with_their_remaining_time,
    a_datagram_flow_is_synced_with_its_second_packet,
    records_go_to_the_worker_both_directions_reach,
    two_nodes_carrying_one_connection_both_keep_serving_it,
);

fn config(origin: u16) -> WorkerConfig {
    WorkerConfig {
        flow_capacity: 4096,
        persistence_capacity: 64,
        timeouts: Timeouts::default(),
        steer_replies: true,
        sync_origin: Some(origin),
    }
}

/// A node's only worker, on `snap`, its clock at 1 s.
fn node_on(origin: u16, snap: Snapshot) -> Worker {
    let mut w = Worker::new(0, 1, config(origin), published(snap));
    w.begin_batch(1_000);
    w
}

/// A node with the family's service in `mode` over `proto`.
fn node<A: Family>(origin: u16, mode: ForwardMode, proto: u8) -> Worker {
    let mut snap = A::snapshot(mode);
    snap.services[0].proto = proto;
    snap.index();
    node_on(origin, snap)
}

fn taken(w: &Worker) -> Vec<AnyRecord> {
    let link = w.sync_link().expect("sync is on");
    std::iter::from_fn(|| link.take()).collect()
}

fn records<A: Family>(w: &Worker) -> Vec<Record<A>> {
    taken(w).into_iter().map(A::of).collect()
}

fn deliver<A: Family>(w: &Worker, r: Record<A>) {
    w.sync_link()
        .expect("sync is on")
        .deliver(r.into())
        .expect("room in the queue");
}

fn counter(
    w: &Worker,
    get: impl Fn(&dataplane::path::sync::SyncCounters) -> &std::sync::atomic::AtomicU64,
) -> u64 {
    get(w.sync_link().expect("sync is on").counters()).load(Ordering::Relaxed)
}

fn housekeeping(w: &mut Worker, now: u64) {
    w.begin_batch(now);
    w.housekeeping(now, &mut NothingSeen);
}

/// Sends `frame` through `w`; the frame as it leaves, or the verdict.
fn forward(w: &mut Worker, mut frame: Vec<u8>, ingress: u8) -> Result<Vec<u8>, Verdict> {
    match w.process(&mut frame, ingress) {
        Verdict::Tx(_) => Ok(frame),
        v => Err(v),
    }
}

type End = (IpAddr, u16);

/// A TCP segment (`proto` 6, with `flags`) or a UDP datagram (17) of
/// either family.
fn segment(proto: u8, macs: ([u8; 6], [u8; 6]), src: End, dst: End, flags: &str) -> Vec<u8> {
    match (proto, src.0, dst.0) {
        (TCP, IpAddr::V4(s), IpAddr::V4(d)) => tcp(macs.0, macs.1, s, d, src.1, dst.1, flags, b""),
        (TCP, IpAddr::V6(s), IpAddr::V6(d)) => tcp6(macs, None, s, d, src.1, dst.1, flags, b""),
        (UDP, IpAddr::V4(s), IpAddr::V4(d)) => udp(macs, s, d, src.1, dst.1, b"ping"),
        (UDP, IpAddr::V6(s), IpAddr::V6(d)) => udp6(macs, s, d, src.1, dst.1, b"ping"),
        other => panic!("no such segment: {other:?}"),
    }
}

/// A client → VIP segment from port `sport`.
fn client<A: Family>(proto: u8, sport: u16, flags: &str) -> Vec<u8> {
    segment(
        proto,
        (CLIENT_MAC, PORT0_MAC),
        (A::CLIENT, sport),
        (A::VIP, VPORT),
        flags,
    )
}

/// (source, destination) address and port of a TCP or UDP frame.
fn ends(frame: &[u8]) -> (End, End) {
    let p = SlicedPacket::from_ethernet(frame).expect("decodes");
    let (src, dst): (IpAddr, IpAddr) = match p.net {
        Some(NetSlice::Ipv4(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        other => panic!("not IP: {other:?}"),
    };
    let (sport, dport) = match p.transport {
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        other => panic!("not TCP or UDP: {other:?}"),
    };
    ((src, sport), (dst, dport))
}

/// The backend's answer to a forwarded client frame, as it reaches the node.
fn answer(to_backend: &[u8], proto: u8, flags: &str) -> Vec<u8> {
    let (src, dst) = ends(to_backend);
    let macs = (to_backend[0..6].try_into().unwrap(), PORT1_MAC);
    segment(proto, macs, dst, src, flags)
}

/// Opens a connection on `w` until it is synced (TCP through the handshake,
/// the backend's SYN-ACK too where replies pass the node; UDP with its
/// second datagram) and returns the first forwarded frame.
fn open<A: Family>(w: &mut Worker, mode: ForwardMode, proto: u8, sport: u16) -> Vec<u8> {
    if proto == UDP {
        let first = forward(w, client::<A>(UDP, sport, ""), 0).expect("datagram forwarded");
        forward(w, client::<A>(UDP, sport, ""), 0).expect("datagram forwarded");
        return first;
    }
    let syn = forward(w, client::<A>(TCP, sport, "S"), 0).expect("SYN forwarded");
    if mode != ForwardMode::Dr {
        forward(w, answer(&syn, TCP, "SA"), 1).expect("SYN-ACK forwarded");
    }
    forward(w, client::<A>(TCP, sport, "A"), 0).expect("ACK forwarded");
    syn
}

const MODES: [ForwardMode; 3] = [ForwardMode::Nat, ForwardMode::FullNat, ForwardMode::Dr];

fn a_synced_connection_forwards_the_same_frames_on_the_peer<A: Family>() {
    for (mode, proto) in MODES.into_iter().flat_map(|m| [(m, TCP), (m, UDP)]) {
        let case = format!("{mode:?} proto {proto}");
        let mut a = node::<A>(1, mode, proto);
        let mut b = node::<A>(2, mode, proto);
        let first = open::<A>(&mut a, mode, proto, CPORT);
        let sent = records::<A>(&a);
        assert_eq!(sent.len(), 1, "{case}: one record, once synced");
        let r = sent[0];
        assert_eq!(r.op, RecordOp::Upsert);
        assert_eq!(r.proto, proto);
        let state = if proto == TCP {
            ConnState::Established
        } else {
            ConnState::Udp
        };
        assert_eq!(r.state, state.code(), "{case}");
        assert_eq!((r.client_ip, r.client_port), (A::addr(A::CLIENT), CPORT));
        assert_eq!((r.vip, r.vip_port), (A::addr(A::VIP), VPORT));
        assert_eq!(r.origin, 1);
        assert_eq!(r.client_mac, CLIENT_MAC);
        let ((fsrc, fsport), (fdst, fdport)) = ends(&first);
        if mode == ForwardMode::FullNat {
            assert_eq!((r.snat_ip, r.snat_port), (A::addr(fsrc), fsport));
            assert_eq!(fsrc, A::SNAT);
        } else {
            assert_eq!((r.snat_ip, r.snat_port), (A::default(), 0), "{case}");
        }
        if mode != ForwardMode::Dr {
            assert_eq!((r.backend_ip, r.backend_port), (A::addr(fdst), fdport));
        }

        deliver(&b, r);
        housekeeping(&mut b, 1_010);
        assert_eq!(A::table(&b).len(), 1, "{case}: learned");
        assert!(A::table(&b).iter().all(|c| c.learned && c.origin == 1));
        assert!(taken(&b).is_empty(), "{case}: learning is not news");

        let data = client::<A>(proto, CPORT, "PA");
        let via_a = forward(&mut a, data.clone(), 0).expect("A forwards");
        let via_b = forward(&mut b, data, 0).expect("B forwards the learned connection");
        assert_eq!(via_a, via_b, "{case}: same frame from either node");
        let activated = records::<A>(&b);
        assert_eq!(activated.len(), 1, "{case}: B tells it now serves it");
        assert_eq!(activated[0].origin, 1, "{case}: the origin stays");
        if mode != ForwardMode::Dr {
            let reply = answer(&via_a, proto, "PA");
            assert_eq!(
                forward(&mut a, reply.clone(), 1),
                forward(&mut b, reply, 1),
                "{case}: replies too"
            );
        }
        assert_eq!(counter(&b, |c| &c.activated), 1);
        assert_eq!(counter(&b, |c| &c.applied), 1);
    }
}

fn embryonic_connections_are_not_synced_and_closing_ones_are<A: Family>() {
    let mut a = node::<A>(1, ForwardMode::Nat, TCP);
    forward(&mut a, client::<A>(TCP, CPORT, "S"), 0).unwrap();
    housekeeping(&mut a, 1_005);
    assert!(taken(&a).is_empty(), "a SYN flood costs the peers nothing");
    let mut a = node::<A>(1, ForwardMode::Nat, TCP);
    open::<A>(&mut a, ForwardMode::Nat, TCP, CPORT);
    taken(&a);
    forward(&mut a, client::<A>(TCP, CPORT, "FA"), 0).unwrap();
    let fin = records::<A>(&a);
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0].state, ConnState::FinWait.code());
    forward(&mut a, client::<A>(TCP, CPORT, "A"), 0).unwrap();
    assert!(taken(&a).is_empty(), "no change, no record");
}

fn removal_reaches_the_peer_and_removes_only_learned_connections<A: Family>() {
    let mut a = node::<A>(1, ForwardMode::Nat, TCP);
    let mut b = node::<A>(2, ForwardMode::Nat, TCP);
    open::<A>(&mut a, ForwardMode::Nat, TCP, CPORT);
    deliver(&b, records::<A>(&a)[0]);
    housekeeping(&mut b, 1_001);
    assert_eq!(A::table(&b).len(), 1);
    forward(&mut a, client::<A>(TCP, CPORT, "R"), 0).unwrap();
    let close = records::<A>(&a);
    assert_eq!(close[0].state, ConnState::Close.code());
    let later = 1_000 + Timeouts::default().close_ms + 1;
    for t in [later, later + 3_000] {
        housekeeping(&mut a, t);
    }
    let gone: Vec<_> = records::<A>(&a)
        .into_iter()
        .filter(|r| r.op == RecordOp::Delete)
        .collect();
    assert_eq!(gone.len(), 1, "expiry of a synced connection is sent");
    deliver(&b, gone[0]);
    housekeeping(&mut b, 1_002);
    assert_eq!(A::table(&b).len(), 0);
    assert_eq!(counter(&b, |c| &c.deleted), 1);

    // A connection B itself serves is B's to end.
    let mut b = node::<A>(2, ForwardMode::Nat, TCP);
    open::<A>(&mut b, ForwardMode::Nat, TCP, CPORT);
    deliver(&b, gone[0]);
    housekeeping(&mut b, 1_003);
    assert_eq!(A::table(&b).len(), 1);
}

fn split_brain_keeps_the_lower_origins_connection_on_both_nodes<A: Family>() {
    let mut a = node::<A>(1, ForwardMode::Nat, TCP);
    let mut b = node::<A>(2, ForwardMode::Nat, TCP);
    open::<A>(&mut a, ForwardMode::Nat, TCP, CPORT);
    // Both opened it (the client's SYN reached both): different backends.
    forward(&mut b, client::<A>(TCP, CPORT + 1, "S"), 0).unwrap();
    open::<A>(&mut b, ForwardMode::Nat, TCP, CPORT);
    let (ra, rb) = (records::<A>(&a)[0], records::<A>(&b).pop().unwrap());
    assert_ne!(ra.backend_ip, rb.backend_ip, "round robin differs here");
    deliver(&a, rb);
    deliver(&b, ra);
    housekeeping(&mut a, 1_001);
    housekeeping(&mut b, 1_001);
    assert_eq!(counter(&a, |c| &c.conflicts), 1, "A keeps its own");
    let data = client::<A>(TCP, CPORT, "PA");
    assert_eq!(
        forward(&mut a, data.clone(), 0),
        forward(&mut b, data, 0),
        "both nodes send the connection to the same backend"
    );
}

fn hostile_records_are_counted_and_change_nothing<A: Family>() {
    let mut a = node::<A>(1, ForwardMode::FullNat, TCP);
    open::<A>(&mut a, ForwardMode::FullNat, TCP, CPORT);
    let good = records::<A>(&a)[0];
    let mut b = node::<A>(2, ForwardMode::FullNat, TCP);
    let stranger = A::addr(A::STRANGER);
    let bad = [
        (Record { state: 9, ..good }, Rejected::BadState),
        (
            Record {
                state: u8::MAX,
                ..good
            },
            Rejected::BadState,
        ),
        (
            Record {
                vip_port: 81,
                ..good
            },
            Rejected::NoService,
        ),
        (Record { proto: UDP, ..good }, Rejected::NoService),
        (
            Record {
                vip: stranger,
                ..good
            },
            Rejected::NoService,
        ),
        (
            Record {
                backend_port: 1,
                ..good
            },
            Rejected::NoBackend,
        ),
        (
            Record {
                backend_ip: stranger,
                ..good
            },
            Rejected::NoBackend,
        ),
        (
            Record {
                snat_ip: A::default(),
                ..good
            },
            Rejected::SnatUnknown,
        ),
        (
            Record {
                snat_ip: stranger,
                ..good
            },
            Rejected::SnatUnknown,
        ),
    ];
    for (r, why) in bad {
        assert_eq!(b.sync_apply(&r.into(), 1_001), Err(why), "{r:?}");
    }
    assert_eq!(A::table(&b).len(), 0);
    // Counted by reason when they come through the queue.
    for (r, _) in bad {
        deliver(&b, r);
    }
    housekeeping(&mut b, 1_001);
    assert_eq!(counter(&b, |c| &c.bad_state), 2);
    assert_eq!(counter(&b, |c| &c.no_service), 3);
    assert_eq!(counter(&b, |c| &c.no_backend), 2);
    assert_eq!(counter(&b, |c| &c.snat_unknown), 2);
    assert_eq!(A::table(&b).len(), 0);
    // Extremes that are valid: the longest timeout and the last port.
    let far = Record {
        timeout_ms: u32::MAX,
        client_port: u16::MAX,
        ..good
    };
    assert_eq!(b.sync_apply(&far.into(), u64::MAX - 1), Ok(true));
    assert_eq!(A::table(&b).len(), 1);
}

fn a_dump_sends_every_connection_past_its_handshake<A: Family>() {
    let mut a = node::<A>(1, ForwardMode::Nat, TCP);
    for i in 0..100 {
        open::<A>(&mut a, ForwardMode::Nat, TCP, CPORT + i);
    }
    forward(&mut a, client::<A>(TCP, CPORT + 500, "S"), 0).unwrap();
    taken(&a);
    let got = dump(&mut a);
    assert_eq!(got.len(), 100);
    let mut ports: Vec<u16> = got.into_iter().map(|r| A::of(r).client_port).collect();
    ports.sort();
    assert_eq!(ports, (CPORT..CPORT + 100).collect::<Vec<_>>());
}

/// Asks `w` for its whole table and runs its housekeeping until it is sent.
fn dump(w: &mut Worker) -> Vec<AnyRecord> {
    let (tx, rx) = std::sync::mpsc::channel();
    w.sync_link().unwrap().dump(tx).unwrap();
    let mut got = Vec::new();
    for t in 0..10 {
        housekeeping(w, 1_001 + t);
        while let Ok(chunk) = rx.try_recv() {
            got.extend(chunk.records);
            if chunk.done {
                return got;
            }
        }
    }
    panic!("the dump did not finish in 10 housekeeping calls");
}

fn served_connections_are_refreshed_with_their_remaining_time<A: Family>() {
    let mut a = node::<A>(1, ForwardMode::Nat, TCP);
    open::<A>(&mut a, ForwardMode::Nat, TCP, CPORT);
    taken(&a);
    let mut refreshed = Vec::new();
    let mut t = 1_000;
    while t <= 1_000 + 2 * REFRESH_PERIOD_MS {
        housekeeping(&mut a, t);
        refreshed.extend(records::<A>(&a));
        t += REFRESH_PERIOD_MS / 8;
    }
    assert_eq!(refreshed.len(), 1, "once per period, none while fresh");
    let left = u64::from(refreshed[0].timeout_ms);
    let full = Timeouts::default().established_ms;
    assert!(
        left <= full - REFRESH_PERIOD_MS && left >= full - 2 * REFRESH_PERIOD_MS,
        "{left}"
    );
}

fn a_datagram_flow_is_synced_with_its_second_packet<A: Family>() {
    let mut a = node::<A>(1, ForwardMode::Nat, UDP);
    let datagram = || client::<A>(UDP, CPORT, "");
    assert!(matches!(a.process(&mut datagram(), 0), Verdict::Tx(_)));
    assert!(
        taken(&a).is_empty(),
        "a single datagram costs the peers nothing"
    );
    assert!(matches!(a.process(&mut datagram(), 0), Verdict::Tx(_)));
    let r = records::<A>(&a);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].proto, r[0].state), (UDP, ConnState::Udp.code()));
    assert!(matches!(a.process(&mut datagram(), 0), Verdict::Tx(_)));
    assert!(taken(&a).is_empty(), "sent once");
}

fn records_go_to_the_worker_both_directions_reach<A: Family>() {
    let r: Record<A> = Record {
        client_ip: A::addr(A::CLIENT),
        client_port: CPORT,
        ..Record::default()
    };
    assert_eq!(record_worker(&r.into(), 1), 0);
    assert_eq!(record_worker(&r.into(), 0), 0);
    let full = Record {
        snat_ip: A::addr(A::SNAT),
        snat_port: 1024 + 7,
        ..r
    };
    assert_eq!(record_worker(&full.into(), 4), 3);
}

/// IPv4 only: IPv6 connections are not offloaded.
#[test]
fn a_learned_connection_enters_the_fast_path_with_its_first_packet_here() {
    use dataplane::flow::{SteerAction, SteerChange};
    let mut a = node::<u32>(1, ForwardMode::FullNat, TCP);
    open::<u32>(&mut a, ForwardMode::FullNat, TCP, CPORT);
    let r = taken(&a)[0];
    let cfg = WorkerConfig {
        flow_capacity: 64,
        persistence_capacity: 16,
        timeouts: Timeouts::default(),
        steer_replies: true,
        sync_origin: Some(2),
    };
    let mut snap = snapshot(ForwardMode::FullNat, SchedulerKind::Rr, &[1, 1, 1]);
    snap.fast_path = true;
    let mut b = Worker::new(0, 1, cfg, published(snap));
    b.begin_batch(1_000);
    assert_eq!(b.sync_apply(&r, 1_000), Ok(true));
    let mut changes: Vec<SteerChange> = Vec::new();
    b.take_steer_changes(&mut changes);
    assert!(
        changes
            .iter()
            .all(|c| !matches!(c.action, SteerAction::Forward { .. })),
        "held for a takeover, not forwarded by XDP: {changes:?}"
    );
    forward(&mut b, client_tcp(CPORT, "PA"), 0).expect("forwarded");
    changes.clear();
    b.take_steer_changes(&mut changes);
    let fast = changes
        .iter()
        .filter(|c| matches!(c.action, SteerAction::Forward { .. }))
        .count();
    assert_eq!(fast, 2, "both directions offloaded: {changes:?}");
}

fn two_nodes_carrying_one_connection_both_keep_serving_it<A: Family>() {
    // ECMP: after a rehash the client's packets reach D while the
    // backend's answers still reach A (its full-NAT source).
    let mut a = node::<A>(1, ForwardMode::FullNat, TCP);
    let mut d = node::<A>(4, ForwardMode::FullNat, TCP);
    let syn = open::<A>(&mut a, ForwardMode::FullNat, TCP, CPORT);
    deliver(&d, records::<A>(&a)[0]);
    housekeeping(&mut d, 1_001);
    let to_backend = forward(&mut d, client::<A>(TCP, CPORT, "PA"), 0).expect("D forwards");
    let activated = records::<A>(&d);
    assert_eq!(activated.len(), 1);
    deliver(&a, activated[0]);
    housekeeping(&mut a, 1_002);
    assert!(
        A::table(&a).iter().all(|c| !c.learned),
        "A still serves the connection the same way"
    );
    // (A's first housekeeping refreshes what it serves: not a hand-off.)
    taken(&a);
    forward(&mut a, answer(&syn, TCP, "PA"), 1).expect("A forwards the answer");
    for _ in 0..3 {
        forward(&mut d, client::<A>(TCP, CPORT, "PA"), 0).expect("D forwards");
        forward(&mut a, answer(&to_backend, TCP, "PA"), 1).expect("A forwards");
    }
    assert!(
        taken(&a).is_empty() && taken(&d).is_empty(),
        "no record per packet: neither node hands the connection back and forth"
    );
}

/// The family's service in `mode` beside the other family's, on one node
/// (the IPv6 service's backends numbered apart).
fn dual_stack(mode: ForwardMode) -> Snapshot {
    let mut snap = <u32 as Family>::snapshot(mode);
    let mut six = <Ip6 as Family>::snapshot(mode);
    for w in &mut six.services[0].weights {
        w.id += 10;
    }
    snap.services.append(&mut six.services);
    snap.locals6 = six.locals6;
    for (p, p6) in snap.ports.iter_mut().zip(six.ports) {
        p.ipv6 = p6.ipv6;
    }
    snap.index();
    snap
}

#[test]
fn both_families_sync_through_one_worker_alike() {
    for mode in MODES {
        let mut a = node_on(1, dual_stack(mode));
        let mut b = node_on(2, dual_stack(mode));
        for i in 0..3 {
            open::<u32>(&mut a, mode, TCP, CPORT + i);
            open::<Ip6>(&mut a, mode, TCP, CPORT + i);
        }
        let live = taken(&a);
        assert_eq!(live.len(), 6, "{mode:?}");
        // Live records and a dump carry the same connections.
        let mut dumped = dump(&mut a);
        let key = |r: &AnyRecord| (r.family() == connsync::AddrFamily::V6, format!("{r:?}"));
        dumped.sort_by_key(key);
        let mut sorted = live.clone();
        sorted.sort_by_key(key);
        let timeless = |rs: Vec<AnyRecord>| -> Vec<AnyRecord> {
            rs.into_iter()
                .map(|r| match r {
                    AnyRecord::V4(r) => Record { timeout_ms: 0, ..r }.into(),
                    AnyRecord::V6(r) => Record { timeout_ms: 0, ..r }.into(),
                })
                .collect()
        };
        assert_eq!(timeless(dumped), timeless(sorted), "{mode:?}");
        for r in live {
            b.sync_link().unwrap().deliver(r).unwrap();
        }
        housekeeping(&mut b, 1_020);
        assert_eq!((b.flows().len(), b.flows6().len()), (3, 3), "{mode:?}");
        for i in 0..3 {
            let v4 = client::<u32>(TCP, CPORT + i, "PA");
            let v6 = client::<Ip6>(TCP, CPORT + i, "PA");
            assert_eq!(forward(&mut a, v4.clone(), 0), forward(&mut b, v4, 0));
            assert_eq!(forward(&mut a, v6.clone(), 0), forward(&mut b, v6, 0));
        }
        assert_eq!(counter(&b, |c| &c.activated), 6, "{mode:?}");
    }
}
