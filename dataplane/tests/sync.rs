//! Connection sync through the pure packet path: a connection opened on one
//! node's worker, sent as a record and applied on another's, forwards the
//! same frames there; removals, conflicts and hostile records behave as
//! documented.

mod support;

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

use connsync::{ConnRecord, RecordOp};
use dataplane::flow::{ConnState, NothingSeen, Timeouts};
use dataplane::path::sync::{record_worker, Rejected, REFRESH_PERIOD_MS};
use dataplane::path::{Worker, WorkerConfig};
use dataplane::sched::SchedulerKind;
use dataplane::service::ForwardMode;
use dataplane::verdict::Verdict;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use support::*;

const CPORT: u16 = 40_000;

fn node(origin: u16, forward: ForwardMode) -> Worker {
    let cfg = WorkerConfig {
        flow_capacity: 4096,
        persistence_capacity: 64,
        timeouts: Timeouts::default(),
        steer_replies: true,
        sync_origin: Some(origin),
    };
    let snap = snapshot(forward, SchedulerKind::Rr, &[1, 1, 1]);
    let mut w = Worker::new(0, 1, cfg, published(snap));
    w.begin_batch(1_000);
    w
}

fn records(w: &Worker) -> Vec<ConnRecord> {
    let link = w.sync_link().expect("sync is on");
    std::iter::from_fn(|| link.take()).collect()
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

/// (source, destination) address and port of a TCP frame.
fn ends(frame: &[u8]) -> ((Ipv4Addr, u16), (Ipv4Addr, u16)) {
    let p = SlicedPacket::from_ethernet(frame).expect("decodes");
    let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) = (p.net, p.transport) else {
        panic!("not TCP over IPv4")
    };
    let h = ip.header();
    (
        (h.source_addr(), t.source_port()),
        (h.destination_addr(), t.destination_port()),
    )
}

/// The backend's answer to a forwarded client frame, as it reaches the node.
fn answer(to_backend: &[u8], flags: &str) -> Vec<u8> {
    let ((src, sport), (dst, dport)) = ends(to_backend);
    tcp(
        to_backend[0..6].try_into().unwrap(),
        PORT1_MAC,
        dst,
        src,
        dport,
        sport,
        flags,
        b"",
    )
}

/// Opens a connection on `w` through the handshake (the backend's SYN-ACK
/// too, where replies pass the node) and returns the first forwarded frame.
fn open(w: &mut Worker, mode: ForwardMode, sport: u16) -> Vec<u8> {
    let syn = forward(w, client_tcp(sport, "S"), 0).expect("SYN forwarded");
    if mode != ForwardMode::Dr {
        forward(w, answer(&syn, "SA"), 1).expect("SYN-ACK forwarded");
    }
    forward(w, client_tcp(sport, "A"), 0).expect("ACK forwarded");
    syn
}

const MODES: [ForwardMode; 3] = [ForwardMode::Nat, ForwardMode::FullNat, ForwardMode::Dr];

#[test]
fn a_synced_connection_forwards_the_same_frames_on_the_peer() {
    for mode in MODES {
        let mut a = node(1, mode);
        let mut b = node(2, mode);
        let syn = open(&mut a, mode, CPORT);
        let sent = records(&a);
        assert_eq!(sent.len(), 1, "{mode:?}: one record, on establishment");
        let r = sent[0];
        assert_eq!(r.op, RecordOp::Upsert);
        assert_eq!(r.state, ConnState::Established.code(), "{mode:?}");
        assert_eq!((r.client_ip, r.client_port), (CLIENT.to_bits(), CPORT));
        assert_eq!((r.vip, r.vip_port), (VIP.to_bits(), VPORT));
        assert_eq!(r.origin, 1);
        assert_eq!(r.client_mac, CLIENT_MAC);
        let ((fsrc, fsport), (fdst, fdport)) = ends(&syn);
        if mode == ForwardMode::FullNat {
            assert_eq!((r.snat_ip, r.snat_port), (fsrc.to_bits(), fsport));
        } else {
            assert_eq!((r.snat_ip, r.snat_port), (0, 0), "{mode:?}");
        }
        if mode != ForwardMode::Dr {
            assert_eq!((r.backend_ip, r.backend_port), (fdst.to_bits(), fdport));
        }

        b.sync_link().unwrap().deliver(r).unwrap();
        housekeeping(&mut b, 1_010);
        assert_eq!(b.flows().len(), 1, "{mode:?}: learned");
        assert!(b.flows().iter().all(|c| c.learned && c.origin == 1));
        assert!(records(&b).is_empty(), "{mode:?}: learning is not news");

        let data = client_tcp(CPORT, "PA");
        let via_a = forward(&mut a, data.clone(), 0).expect("A forwards");
        let via_b = forward(&mut b, data, 0).expect("B forwards the learned connection");
        assert_eq!(via_a, via_b, "{mode:?}: same frame from either node");
        let activated = records(&b);
        assert_eq!(activated.len(), 1, "{mode:?}: B tells it now serves it");
        assert_eq!(activated[0].origin, 1, "{mode:?}: the origin stays");
        if mode != ForwardMode::Dr {
            let reply = answer(&via_a, "PA");
            assert_eq!(
                forward(&mut a, reply.clone(), 1),
                forward(&mut b, reply, 1),
                "{mode:?}: replies too"
            );
        }
        let c = b.sync_link().unwrap();
        assert_eq!(c.counters().activated.load(Ordering::Relaxed), 1);
        assert_eq!(c.counters().applied.load(Ordering::Relaxed), 1);
    }
}

#[test]
fn embryonic_connections_are_not_synced_and_closing_ones_are() {
    let mut a = node(1, ForwardMode::Nat);
    forward(&mut a, client_tcp(CPORT, "S"), 0).unwrap();
    housekeeping(&mut a, 1_005);
    assert!(
        records(&a).is_empty(),
        "a SYN flood costs the peers nothing"
    );
    let mut a = node(1, ForwardMode::Nat);
    open(&mut a, ForwardMode::Nat, CPORT);
    records(&a);
    forward(&mut a, client_tcp(CPORT, "FA"), 0).unwrap();
    let fin = records(&a);
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0].state, ConnState::FinWait.code());
    forward(&mut a, client_tcp(CPORT, "A"), 0).unwrap();
    assert!(records(&a).is_empty(), "no change, no record");
}

#[test]
fn removal_reaches_the_peer_and_removes_only_learned_connections() {
    let mut a = node(1, ForwardMode::Nat);
    let mut b = node(2, ForwardMode::Nat);
    open(&mut a, ForwardMode::Nat, CPORT);
    b.sync_link().unwrap().deliver(records(&a)[0]).unwrap();
    housekeeping(&mut b, 1_001);
    assert_eq!(b.flows().len(), 1);
    forward(&mut a, client_tcp(CPORT, "R"), 0).unwrap();
    let close = records(&a);
    assert_eq!(close[0].state, ConnState::Close.code());
    let later = 1_000 + Timeouts::default().close_ms + 1;
    for t in [later, later + 3_000] {
        housekeeping(&mut a, t);
    }
    let gone: Vec<_> = records(&a)
        .into_iter()
        .filter(|r| r.op == RecordOp::Delete)
        .collect();
    assert_eq!(gone.len(), 1, "expiry of a synced connection is sent");
    b.sync_link().unwrap().deliver(gone[0]).unwrap();
    housekeeping(&mut b, 1_002);
    assert_eq!(b.flows().len(), 0);
    assert_eq!(
        b.sync_link()
            .unwrap()
            .counters()
            .deleted
            .load(Ordering::Relaxed),
        1
    );

    // A connection B itself serves is B's to end.
    let mut b = node(2, ForwardMode::Nat);
    open(&mut b, ForwardMode::Nat, CPORT);
    b.sync_link().unwrap().deliver(gone[0]).unwrap();
    housekeeping(&mut b, 1_003);
    assert_eq!(b.flows().len(), 1);
}

#[test]
fn split_brain_keeps_the_lower_origins_connection_on_both_nodes() {
    let mut a = node(1, ForwardMode::Nat);
    let mut b = node(2, ForwardMode::Nat);
    open(&mut a, ForwardMode::Nat, CPORT);
    // Both opened it (the client's SYN reached both): different backends.
    forward(&mut b, client_tcp(CPORT + 1, "S"), 0).unwrap();
    open(&mut b, ForwardMode::Nat, CPORT);
    let (ra, rb) = (records(&a)[0], records(&b).pop().unwrap());
    assert_ne!(ra.backend_ip, rb.backend_ip, "round robin differs here");
    a.sync_link().unwrap().deliver(rb).unwrap();
    b.sync_link().unwrap().deliver(ra).unwrap();
    housekeeping(&mut a, 1_001);
    housekeeping(&mut b, 1_001);
    assert_eq!(
        a.sync_link()
            .unwrap()
            .counters()
            .conflicts
            .load(Ordering::Relaxed),
        1,
        "A keeps its own"
    );
    let data = client_tcp(CPORT, "PA");
    assert_eq!(
        forward(&mut a, data.clone(), 0),
        forward(&mut b, data, 0),
        "both nodes send the connection to the same backend"
    );
}

#[test]
fn hostile_records_are_counted_and_change_nothing() {
    let mut a = node(1, ForwardMode::FullNat);
    open(&mut a, ForwardMode::FullNat, CPORT);
    let good = records(&a)[0];
    let mut b = node(2, ForwardMode::FullNat);
    let bad = [
        (ConnRecord { state: 9, ..good }, Rejected::BadState),
        (
            ConnRecord {
                state: u8::MAX,
                ..good
            },
            Rejected::BadState,
        ),
        (
            ConnRecord {
                vip_port: 81,
                ..good
            },
            Rejected::NoService,
        ),
        (ConnRecord { proto: 17, ..good }, Rejected::NoService),
        (
            ConnRecord {
                backend_port: 1,
                ..good
            },
            Rejected::NoBackend,
        ),
        (
            ConnRecord {
                backend_ip: u32::MAX,
                ..good
            },
            Rejected::NoBackend,
        ),
        (ConnRecord { snat_ip: 0, ..good }, Rejected::SnatUnknown),
        (
            ConnRecord {
                snat_ip: u32::MAX,
                ..good
            },
            Rejected::SnatUnknown,
        ),
    ];
    for (r, why) in bad {
        assert_eq!(b.sync_apply(&r, 1_001), Err(why), "{r:?}");
    }
    assert_eq!(b.flows().len(), 0);
    // Extremes that are valid: the longest timeout and the last port.
    let far = ConnRecord {
        timeout_ms: u32::MAX,
        client_port: u16::MAX,
        ..good
    };
    assert_eq!(b.sync_apply(&far, u64::MAX - 1), Ok(true));
    assert_eq!(b.flows().len(), 1);
}

#[test]
fn a_dump_sends_every_connection_past_its_handshake() {
    let mut a = node(1, ForwardMode::Nat);
    for i in 0..100 {
        open(&mut a, ForwardMode::Nat, CPORT + i);
    }
    forward(&mut a, client_tcp(CPORT + 500, "S"), 0).unwrap();
    records(&a);
    let (tx, rx) = std::sync::mpsc::channel();
    a.sync_link().unwrap().dump(tx).unwrap();
    let mut got = Vec::new();
    for t in 0..10 {
        housekeeping(&mut a, 1_001 + t);
    }
    let mut done = false;
    while let Ok(chunk) = rx.try_recv() {
        got.extend(chunk.records);
        done |= chunk.done;
    }
    assert!(done);
    assert_eq!(got.len(), 100);
    let mut ports: Vec<u16> = got.iter().map(|r| r.client_port).collect();
    ports.sort();
    assert_eq!(ports, (CPORT..CPORT + 100).collect::<Vec<_>>());
}

#[test]
fn served_connections_are_refreshed_with_their_remaining_time() {
    let mut a = node(1, ForwardMode::Nat);
    open(&mut a, ForwardMode::Nat, CPORT);
    records(&a);
    let mut refreshed = Vec::new();
    let mut t = 1_000;
    while t <= 1_000 + 2 * REFRESH_PERIOD_MS {
        housekeeping(&mut a, t);
        refreshed.extend(records(&a));
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

#[test]
fn a_datagram_flow_is_synced_with_its_second_packet() {
    let mut snap = snapshot(ForwardMode::Nat, SchedulerKind::Rr, &[1, 1, 1]);
    snap.services[0].proto = 17;
    snap.index();
    let cfg = WorkerConfig {
        flow_capacity: 64,
        persistence_capacity: 16,
        timeouts: Timeouts::default(),
        steer_replies: true,
        sync_origin: Some(1),
    };
    let mut a = Worker::new(0, 1, cfg, published(snap));
    a.begin_batch(1_000);
    let udp = || {
        let b = etherparse::PacketBuilder::ethernet2(CLIENT_MAC, PORT0_MAC)
            .ipv4(CLIENT.octets(), VIP.octets(), 64)
            .udp(CPORT, VPORT);
        let mut out = Vec::new();
        b.write(&mut out, b"ping").expect("udp frame");
        out
    };
    assert!(matches!(a.process(&mut udp(), 0), Verdict::Tx(_)));
    assert!(
        records(&a).is_empty(),
        "a single datagram costs the peers nothing"
    );
    assert!(matches!(a.process(&mut udp(), 0), Verdict::Tx(_)));
    let r = records(&a);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].proto, r[0].state), (17, ConnState::Udp.code()));
    assert!(matches!(a.process(&mut udp(), 0), Verdict::Tx(_)));
    assert!(records(&a).is_empty(), "sent once");
}

#[test]
fn records_go_to_the_worker_both_directions_reach() {
    let r = ConnRecord {
        client_ip: CLIENT.to_bits(),
        client_port: CPORT,
        ..ConnRecord::default()
    };
    assert_eq!(record_worker(&r, 1), 0);
    assert_eq!(record_worker(&r, 0), 0);
    let full = ConnRecord {
        snat_ip: SNAT.to_bits(),
        snat_port: 1024 + 7,
        ..r
    };
    assert_eq!(record_worker(&full, 4), 3);
}

#[test]
fn a_learned_connection_enters_the_fast_path_with_its_first_packet_here() {
    use dataplane::flow::{SteerAction, SteerChange};
    let mut a = node(1, ForwardMode::FullNat);
    open(&mut a, ForwardMode::FullNat, CPORT);
    let r = records(&a)[0];
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

#[test]
fn two_nodes_carrying_one_connection_both_keep_serving_it() {
    // ECMP: after a rehash the client's packets reach D while the
    // backend's answers still reach A (its full-NAT source).
    let mut a = node(1, ForwardMode::FullNat);
    let mut d = node(4, ForwardMode::FullNat);
    let syn = open(&mut a, ForwardMode::FullNat, CPORT);
    d.sync_link().unwrap().deliver(records(&a)[0]).unwrap();
    housekeeping(&mut d, 1_001);
    let to_backend = forward(&mut d, client_tcp(CPORT, "PA"), 0).expect("D forwards");
    let activated = records(&d);
    assert_eq!(activated.len(), 1);
    a.sync_link().unwrap().deliver(activated[0]).unwrap();
    housekeeping(&mut a, 1_002);
    assert!(
        a.flows().iter().all(|c| !c.learned),
        "A still serves the connection the same way"
    );
    // (A's first housekeeping refreshes what it serves: not a hand-off.)
    records(&a);
    forward(&mut a, answer(&syn, "PA"), 1).expect("A forwards the answer");
    for _ in 0..3 {
        forward(&mut d, client_tcp(CPORT, "PA"), 0).expect("D forwards");
        forward(&mut a, answer(&to_backend, "PA"), 1).expect("A forwards");
    }
    assert!(
        records(&a).is_empty() && records(&d).is_empty(),
        "no record per packet: neither node hands the connection back and forth"
    );
}
