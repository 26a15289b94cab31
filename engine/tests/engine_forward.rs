//! End-to-end tests of the AF_XDP engine over veth pairs in network
//! namespaces (needs root): ns A sends, the engine in ns L forwards steered
//! frames to ns B, and everything not steered stays with L's kernel.

mod engine_common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dataplane::flow::{FlowKey, SteerAction, SteerChange};
use dataplane::verdict::{DropReason, PortId, Verdict};
use engine::{Engine, EngineConfig, ForwardHandler, Handler, XdpMode};
use engine_common::*;
use wire::MacAddr;

const PORT: u16 = 7777;
const WAIT: Duration = Duration::from_secs(10);

fn config(queues: u16) -> EngineConfig {
    EngineConfig {
        interfaces: vec!["l0".into(), "l1".into()],
        queues,
        xdp_mode: XdpMode::Native,
        ..EngineConfig::default()
    }
}

/// Forwarding from l0 to b0 (and back to a0), MACs rewritten.
fn forwarder(lab: &Lab) -> ForwardHandler {
    ForwardHandler::pair(
        [Lab::mac(&lab.l, "l0"), Lab::mac(&lab.l, "l1")],
        [Lab::mac(&lab.a, "a0"), Lab::mac(&lab.b, "b0")],
    )
}

/// Worker 0 hands every frame to worker 1, which forwards it.
enum TestHandler {
    Forward(ForwardHandler),
    HandAll(u16),
}

impl Handler for TestHandler {
    fn begin_batch(&mut self, _now_ms: u64) {}
    fn handle(&mut self, frame: &mut [u8], ingress: PortId) -> Verdict {
        match self {
            TestHandler::Forward(f) => f.handle(frame, ingress),
            TestHandler::HandAll(to) => Verdict::Handoff(*to),
        }
    }
    fn housekeeping(&mut self, _now_ms: u64, _seen: &mut dyn dataplane::flow::FastSeenAll) {}
}

fn start<H: Handler>(
    lab: &Lab,
    cfg: EngineConfig,
    make: impl FnMut(u16, u16) -> H + Send + 'static,
) -> Engine {
    lab.l
        .run(move || Engine::start(&cfg, make))
        .unwrap_or_else(|e| panic!("engine start: {e}"))
}

/// Sends `per_flow` datagrams on each of `flows` sockets (distinct source
/// ports, so multi-queue veths spread them) from A to the VIP and returns
/// the payloads B received before all arrived or the deadline passed.
fn send_and_receive(
    lab: &Lab,
    flows: usize,
    per_flow: usize,
) -> (HashSet<Vec<u8>>, HashSet<Vec<u8>>) {
    transfer((&lab.a, A_ADDR), (&lab.b, VIP), flows, per_flow)
}

/// Sends datagrams from `src` in its namespace to `dst` in its namespace;
/// see [`send_and_receive`].
fn transfer(
    (src_ns, src): (&Netns, Ipv4Addr),
    (dst_ns, dst): (&Netns, Ipv4Addr),
    flows: usize,
    per_flow: usize,
) -> (HashSet<Vec<u8>>, HashSet<Vec<u8>>) {
    let rx = dst_ns.run(move || {
        let s = UdpSocket::bind(SocketAddrV4::new(dst, PORT)).expect("bind receiver");
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        s
    });
    let senders = src_ns.run(move || {
        (0..flows)
            .map(|_| UdpSocket::bind(SocketAddrV4::new(src, 0)).expect("bind sender"))
            .collect::<Vec<_>>()
    });
    let expected = flows * per_flow;
    let received = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    let receiver = std::thread::spawn(move || {
        let mut got = HashSet::new();
        let mut buf = [0u8; 2048];
        wait_for(WAIT, || {
            while let Ok((n, from)) = rx.recv_from(&mut buf) {
                assert_eq!(from.ip(), std::net::IpAddr::V4(src), "source address kept");
                got.insert(buf[..n].to_vec());
                counter.store(got.len(), Ordering::Relaxed);
            }
            got.len() >= expected
        });
        got
    });
    // Sent in rounds that B drains before the next, so a slow receiver on
    // a busy machine never overflows its socket buffer.
    let mut sent = HashSet::new();
    for seq in 0..per_flow {
        for (flow, s) in senders.iter().enumerate() {
            let payload = format!("vipd-engine-test flow {flow} seq {seq}").into_bytes();
            s.send_to(&payload, SocketAddrV4::new(dst, PORT))
                .expect("send");
            sent.insert(payload);
        }
        wait_for(Duration::from_secs(2), || {
            received.load(Ordering::Relaxed) >= sent.len()
        });
    }
    let got = receiver.join().expect("receiver thread");
    (sent, got)
}

/// L's kernel still gets UDP and answers TCP on its own address.
fn kernel_still_answers(lab: &Lab) {
    let udp = lab.l.run(|| {
        let s = UdpSocket::bind(SocketAddrV4::new(L0_ADDR, 7002)).expect("bind in L");
        s.set_read_timeout(Some(WAIT)).unwrap();
        s
    });
    lab.a.run(|| {
        let s = UdpSocket::bind(SocketAddrV4::new(A_ADDR, 0)).unwrap();
        s.send_to(b"to L itself", SocketAddrV4::new(L0_ADDR, 7002))
            .unwrap();
    });
    let mut buf = [0u8; 64];
    let (n, _) = udp
        .recv_from(&mut buf)
        .expect("L's kernel receives UDP to its own address");
    assert_eq!(&buf[..n], b"to L itself");

    let listener = lab
        .l
        .run(|| TcpListener::bind(SocketAddrV4::new(L0_ADDR, 7001)).expect("listen in L"));
    let mut client = lab.a.run(|| {
        TcpStream::connect_timeout(&SocketAddrV4::new(L0_ADDR, 7001).into(), WAIT)
            .expect("TCP connect to L's own address")
    });
    client.write_all(b"hello").unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 5];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
}

/// Counters for failure messages.
fn report(engine: &Engine) -> String {
    let mut out = format!("{:?}", engine.steering().xdp_stats());
    for (w, c) in engine.counters().cores().enumerate() {
        out += &format!(
            "; worker {w}: rx {} tx {} handoff out {} in {} drops {}",
            c.rx_packets.get(),
            c.tx_packets.get(),
            c.handoff_out.get(),
            c.handoff_in.get(),
            c.drops_total()
        );
        for r in DropReason::ALL {
            if c.drop(*r).get() > 0 {
                out += &format!(" {}={}", r.name(), c.drop(*r).get());
            }
        }
    }
    out
}

fn assert_all_arrived(engine: &Engine, sent: &HashSet<Vec<u8>>, got: &HashSet<Vec<u8>>) {
    let missing = sent.difference(got).count();
    let unexpected = got.difference(sent).count();
    assert!(
        missing == 0 && unexpected == 0,
        "received {} of {} datagrams ({missing} missing, {unexpected} unexpected); {}",
        got.len(),
        sent.len(),
        report(engine)
    );
}

fn sum(engine: &Engine, f: impl Fn(&dataplane::counters::CoreCounters) -> u64) -> u64 {
    engine.counters().cores().map(f).sum()
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn forwards_steered_traffic_and_passes_the_rest_one_queue() {
    let lab = Lab::new("ef1", 1);
    let fwd = forwarder(&lab);
    let engine = start(&lab, config(1), move |_, _| fwd.clone());
    assert!(Lab::has_xdp(&lab.l, "l0") && Lab::has_xdp(&lab.l, "l1"));
    let ports = engine.ports();
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[0].name, "l0");
    assert_eq!(ports[0].mac, Lab::mac(&lab.l, "l0"));
    assert_eq!(ports[1].ipv4, vec![L1_ADDR]);

    kernel_still_answers(&lab);

    // Not yet a VIP: the program leaves the traffic to L's kernel.
    let before = engine.steering().xdp_stats().unwrap();
    let probe = lab
        .a
        .run(|| UdpSocket::bind(SocketAddrV4::new(A_ADDR, 0)).unwrap());
    for _ in 0..5 {
        probe
            .send_to(b"not steered", SocketAddrV4::new(VIP, PORT))
            .unwrap();
    }
    assert!(wait_for(WAIT, || {
        engine.steering().xdp_stats().unwrap().pass_ipv4 >= before.pass_ipv4 + 5
    }));
    assert_eq!(sum(&engine, |c| c.rx_packets.get()), 0);

    engine.steering().set_vips(&[VIP]).unwrap();
    let (sent, got) = send_and_receive(&lab, 4, 50);
    assert_all_arrived(&engine, &sent, &got);
    let n = sent.len() as u64;
    assert!(sum(&engine, |c| c.rx_packets.get()) >= n);
    assert!(sum(&engine, |c| c.tx_packets.get()) >= n);
    assert!(sum(&engine, |c| c.tx_bytes.get()) >= n * 42);
    assert!(engine.steering().xdp_stats().unwrap().redirected >= n);
    assert!(engine.counters().core(0).heartbeat_ms.get() > 0);

    // The steering still leaves L's own traffic alone.
    kernel_still_answers(&lab);

    // Replacing the VIP set removes the stale entry.
    engine.steering().set_vips(&[]).unwrap();
    let rx_before = sum(&engine, |c| c.rx_packets.get());
    let pass_before = engine.steering().xdp_stats().unwrap().pass_ipv4;
    for _ in 0..5 {
        probe
            .send_to(b"not steered", SocketAddrV4::new(VIP, PORT))
            .unwrap();
    }
    assert!(wait_for(WAIT, || {
        engine.steering().xdp_stats().unwrap().pass_ipv4 >= pass_before + 5
    }));
    assert_eq!(sum(&engine, |c| c.rx_packets.get()), rx_before);

    engine.stop();
    assert!(!Lab::has_xdp(&lab.l, "l0"), "stop() detaches from l0");
    assert!(!Lab::has_xdp(&lab.l, "l1"), "stop() detaches from l1");
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn forwards_on_two_queues() {
    let lab = Lab::new("ef2", 2);
    let fwd = forwarder(&lab);
    let engine = start(&lab, config(2), move |_, _| fwd.clone());
    engine.steering().set_vips(&[VIP]).unwrap();
    kernel_still_answers(&lab);

    let (sent, got) = send_and_receive(&lab, 16, 20);
    assert_all_arrived(&engine, &sent, &got);
    let rx: Vec<u64> = engine
        .counters()
        .cores()
        .map(|c| c.rx_packets.get())
        .collect();
    assert_eq!(rx.len(), 2);
    assert!(rx.iter().all(|&r| r > 0), "both workers received: {rx:?}");
    assert_eq!(rx.iter().sum::<u64>(), sent.len() as u64);
    engine.stop();
    assert!(!Lab::has_xdp(&lab.l, "l0"));
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn hands_frames_between_workers() {
    let lab = Lab::new("ef3", 2);
    let fwd = forwarder(&lab);
    let engine = start(&lab, config(2), move |w, workers| {
        assert_eq!(workers, 2);
        if w == 0 {
            TestHandler::HandAll(1)
        } else {
            TestHandler::Forward(fwd.clone())
        }
    });
    engine.steering().set_vips(&[VIP]).unwrap();

    let (sent, got) = send_and_receive(&lab, 16, 20);
    assert_all_arrived(&engine, &sent, &got);
    let c0 = engine.counters().core(0);
    let c1 = engine.counters().core(1);
    assert!(c0.rx_packets.get() > 0, "worker 0 received some flows");
    assert_eq!(c0.handoff_out.get(), c0.rx_packets.get());
    assert_eq!(c1.handoff_in.get(), c0.handoff_out.get());
    assert_eq!(c0.tx_packets.get(), 0);
    assert_eq!(c1.tx_packets.get(), sent.len() as u64);
    assert_eq!(
        engine
            .counters()
            .cores()
            .map(|c| c.drops_total())
            .sum::<u64>(),
        0
    );
    engine.stop();
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn forwards_in_skb_mode() {
    let lab = Lab::new("ef4", 1);
    let fwd = forwarder(&lab);
    let cfg = EngineConfig {
        xdp_mode: XdpMode::Skb,
        ..config(1)
    };
    let gro = || lab.l.exec(&["ethtool", "-k", "l0"]);
    lab.l.exec(&["ethtool", "-K", "l0", "gro", "on"]);
    assert!(gro().contains("generic-receive-offload: on"));
    let engine = start(&lab, cfg, move |_, _| fwd.clone());
    assert!(
        gro().contains("generic-receive-offload: off"),
        "generic XDP would see GRO's merged packets"
    );
    assert_eq!(engine.ports()[0].xdp_mode, XdpMode::Skb);
    engine.steering().set_vips(&[VIP]).unwrap();
    kernel_still_answers(&lab);
    let (sent, got) = send_and_receive(&lab, 4, 25);
    assert_all_arrived(&engine, &sent, &got);
    engine.stop();
    assert!(!Lab::has_xdp(&lab.l, "l0"));
}

/// Forwards like [`ForwardHandler`] and reports the reply-key changes the
/// test pushes, as the packet path reports its connections'.
struct Replies {
    forward: ForwardHandler,
    changes: Arc<Mutex<Vec<SteerChange>>>,
}

impl Handler for Replies {
    fn begin_batch(&mut self, _now_ms: u64) {}
    fn handle(&mut self, frame: &mut [u8], ingress: PortId) -> Verdict {
        self.forward.handle(frame, ingress)
    }
    fn housekeeping(&mut self, _now_ms: u64, _seen: &mut dyn dataplane::flow::FastSeenAll) {}
    fn steer_changes(&mut self, out: &mut Vec<SteerChange>) {
        out.append(&mut self.changes.lock().unwrap());
    }
}

/// Sends `count` datagrams from B's `sport` to A's [`PORT`]; returns how
/// many A received. L does not route (ip_forward is off), so only the
/// engine can carry them.
fn b_to_a(lab: &Lab, sport: u16, count: usize) -> usize {
    let rx = lab.a.run(|| {
        let s = UdpSocket::bind(SocketAddrV4::new(A_ADDR, PORT)).expect("bind receiver");
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        s
    });
    let tx = lab
        .b
        .run(move || UdpSocket::bind(SocketAddrV4::new(B_ADDR, sport)).expect("bind sender"));
    let mut got = 0;
    let mut buf = [0u8; 64];
    for i in 0..count {
        tx.send_to(&i.to_be_bytes(), SocketAddrV4::new(A_ADDR, PORT))
            .expect("send");
        let deadline = std::time::Instant::now() + Duration::from_millis(300);
        while std::time::Instant::now() < deadline {
            if rx.recv_from(&mut buf).is_ok() {
                got += 1;
                break;
            }
        }
    }
    got
}

/// From B, an ICMP port unreachable quoting a datagram A sent from
/// [`PORT`] to B's `dport`: its reversed quote is the reply key B → A.
const ICMP_QUOTING: &str = r#"
import sys
from scapy.all import Ether, IP, ICMP, UDP, Raw, sendp
src, dst, a, b, dport = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
quote = IP(src=a, dst=b) / UDP(sport=7777, dport=dport)
sendp(Ether(src=src, dst=dst) / IP(src=b, dst=a) / ICMP(type=3, code=3) / quote, iface="b0", verbose=False)
"#;

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn steers_exactly_the_reply_keys_of_live_connections_and_owned_arp() {
    const SPORT: u16 = 8080;
    let lab = Lab::new("ef5", 1);
    let changes = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let forward = forwarder(&lab);
        let changes = Arc::clone(&changes);
        move |_, _| Replies {
            forward: forward.clone(),
            changes: Arc::clone(&changes),
        }
    };
    let engine = start(&lab, config(1), handler);
    let key = FlowKey {
        src_ip: B_ADDR.to_bits(),
        dst_ip: A_ADDR.to_bits(),
        src_port: SPORT,
        dst_port: PORT,
        proto: 17,
    };
    let rx = || sum(&engine, |c| c.rx_packets.get());

    // Before the key exists, B's datagrams stay with L's kernel, which
    // does not route them.
    assert_eq!(b_to_a(&lab, SPORT, 3), 0, "{}", report(&engine));
    assert_eq!(rx(), 0, "unsteered traffic reached the engine");

    changes.lock().unwrap().push(SteerChange {
        port: 1,
        key,
        action: SteerAction::ToWorker,
    });
    assert!(
        wait_for(WAIT, || changes.lock().unwrap().is_empty()),
        "the engine never took the reply key"
    );
    assert_eq!(b_to_a(&lab, SPORT, 20), 20, "{}", report(&engine));
    let steered = rx();
    assert!(steered >= 20);

    // The same backend address from another port, or to the node itself
    // (health-check replies), is not a connection of the workers.
    assert_eq!(b_to_a(&lab, SPORT + 1, 3), 0);
    let (sent, got) = transfer((&lab.b, B_ADDR), (&lab.l, L1_ADDR), 1, 10);
    assert_eq!(
        got, sent,
        "L's kernel receives B's datagrams to its own address"
    );
    assert_eq!(rx(), steered);

    // An ICMP error quoting A's datagram to B travels with the connection.
    let src = MacAddr(Lab::mac(&lab.b, "b0")).to_string();
    let dst = MacAddr(Lab::mac(&lab.l, "l1")).to_string();
    lab.b.exec(&[
        "/usr/bin/python3",
        "-c",
        ICMP_QUOTING,
        &src,
        &dst,
        &A_ADDR.to_string(),
        &B_ADDR.to_string(),
        &SPORT.to_string(),
    ]);
    assert!(
        wait_for(WAIT, || rx() > steered),
        "an ICMP error quoting a steered connection reached the engine: {}",
        report(&engine)
    );
    let steered = rx();

    // Withdrawn, the key steers nothing any more.
    changes.lock().unwrap().push(SteerChange {
        port: 1,
        key,
        action: SteerAction::Remove,
    });
    assert!(wait_for(WAIT, || changes.lock().unwrap().is_empty()));
    assert_eq!(b_to_a(&lab, SPORT, 3), 0);
    assert_eq!(rx(), steered);

    // ARP for an owned on-link address goes to the engine.
    let arp_vip = Ipv4Addr::new(10, 200, 1, 50);
    engine.steering().set_vips(&[arp_vip]).unwrap();
    let before = engine.steering().xdp_stats().unwrap().redirected;
    let probe = lab
        .a
        .run(|| UdpSocket::bind(SocketAddrV4::new(A_ADDR, 0)).unwrap());
    probe
        .send_to(b"needs ARP first", SocketAddrV4::new(arp_vip, PORT))
        .unwrap();
    assert!(
        wait_for(WAIT, || {
            engine.steering().xdp_stats().unwrap().redirected > before && rx() > steered
        }),
        "ARP request for an owned address reaches the engine: {}",
        report(&engine)
    );
    engine.stop();
}

/// Counts the frames it sees; holds the worker on the first one until the
/// gate opens, as a worker that falls behind would.
struct Stalled {
    gate: Arc<std::sync::atomic::AtomicBool>,
    seen: Arc<AtomicUsize>,
}

impl Handler for Stalled {
    fn begin_batch(&mut self, _now_ms: u64) {}
    fn handle(&mut self, _frame: &mut [u8], _ingress: PortId) -> Verdict {
        let deadline = std::time::Instant::now() + WAIT;
        while !self.gate.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.seen.fetch_add(1, Ordering::Relaxed);
        Verdict::Drop(DropReason::NoService)
    }
    fn housekeeping(&mut self, _now_ms: u64, _seen: &mut dyn dataplane::flow::FastSeenAll) {}
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn frames_lost_before_a_stalled_worker_are_counted() {
    let lab = Lab::new("ef6", 1);
    let gate = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::new(AtomicUsize::new(0));
    let (g, s) = (gate.clone(), seen.clone());
    // Small rings, so a few hundred frames overflow them.
    let cfg = EngineConfig {
        frames_per_worker: 256,
        ..config(1)
    };
    let engine = start(&lab, cfg, move |_, _| Stalled {
        gate: g.clone(),
        seen: s.clone(),
    });
    engine.steering().set_vips(&[VIP]).unwrap();
    let before = engine.steering().xdp_stats().unwrap().redirected;
    let sender = lab
        .a
        .run(|| UdpSocket::bind(SocketAddrV4::new(A_ADDR, 0)).unwrap());
    for i in 0..600u32 {
        sender
            .send_to(&i.to_be_bytes(), SocketAddrV4::new(VIP, PORT))
            .unwrap();
    }
    let steered = || engine.steering().xdp_stats().unwrap().redirected - before;
    assert!(
        wait_for(WAIT, || steered() >= 300),
        "the XDP program steered {} frames: {}",
        steered(),
        report(&engine)
    );
    gate.store(true, Ordering::Relaxed);
    // Every frame the program steered either reached the worker or is in
    // the kernel's counts for its socket.
    let accounted = || seen.load(Ordering::Relaxed) as u64 + engine.counters().sockets().lost();
    assert!(
        wait_for(WAIT, || accounted() == steered()),
        "steered {}, the worker saw {}, the kernel counted {:?}",
        steered(),
        seen.load(Ordering::Relaxed),
        engine.counters().sockets()
    );
    let k = engine.counters().sockets();
    assert!(k.lost() > 0, "the stalled worker lost nothing: {k:?}");
    // The worker refilled nothing while held, so the losses are frames that
    // found no free UMEM frame.
    assert!(k.fill_ring_empty > 0 && k.rx_dropped > 0, "{k:?}");
    assert!((seen.load(Ordering::Relaxed) as u64) < steered(), "{k:?}");
    assert_eq!(k.invalid_descs, 0);
    engine.stop();
}
