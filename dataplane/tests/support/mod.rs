//! Frames and snapshots for tests and benchmarks of the packet path, built
//! with etherparse so they are independent of our own wire code.

#![allow(dead_code)]

pub mod v6;

use std::net::Ipv4Addr;
use std::sync::Arc;

use dataplane::flow::Timeouts;
use dataplane::path::{Worker, WorkerConfig};
use dataplane::sched::{BackendWeight, MaglevTable, SchedulerKind};
use dataplane::service::{
    Backend, DownAction, ForwardMode, Hop, LocalAddr, LocalKind, Port, Published, Service, Snapshot,
};
use etherparse::PacketBuilder;
use wire::MacAddr;

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const PORT0_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xa0, 0x00];
pub const PORT1_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xa1, 0x00];
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 101);
pub const SNAT: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 200);
pub const VPORT: u16 = 80;
/// The node's own addresses on ports 0 and 1.
pub const PORT0_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub const PORT1_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 1, 1);

pub fn backend_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 1, 101 + i as u8)
}

pub fn backend_mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 0xb0, i as u8]
}

/// One TCP service on VIP:80 with `n` backends on port 8080 (80 for DR),
/// all reachable through port 1.
pub fn snapshot(forward: ForwardMode, scheduler: SchedulerKind, weights: &[u32]) -> Snapshot {
    let bport = if forward == ForwardMode::Dr {
        VPORT
    } else {
        8080
    };
    let bw: Vec<BackendWeight> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| BackendWeight {
            id: i as u32 + 1,
            weight: w,
            available: true,
        })
        .collect();
    let backends = (0..weights.len())
        .map(|i| Backend {
            ip: backend_ip(i).into(),
            port: bport,
            hop: Some(Hop {
                port: 1,
                mac: MacAddr(backend_mac(i)),
            }),
        })
        .collect();
    let maglev = (scheduler == SchedulerKind::Maglev)
        .then(|| Arc::new(MaglevTable::build(&bw, 65537).expect("maglev")));
    let mut snap = Snapshot {
        ports: vec![
            Port {
                ipv4: vec![PORT0_IP],
                ..Port::new("eth0", MacAddr(PORT0_MAC))
            },
            Port {
                ipv4: vec![PORT1_IP],
                ..Port::new("eth1", MacAddr(PORT1_MAC))
            },
        ],
        services: vec![Service {
            name: "web".into(),
            vip: VIP.into(),
            port: VPORT,
            proto: 6,
            scheduler,
            locality_expire_ms: dataplane::sched::DEFAULT_EXPIRATION_MS,
            forward,
            weights: bw,
            backends,
            maglev,
            snat: if forward == ForwardMode::FullNat {
                vec![SNAT.into()]
            } else {
                vec![]
            },
            sorry: None,
            persistence_ms: None,
            on_down: DownAction::Keep,
        }],
        ..Snapshot::default()
    };
    snap.locals.insert(
        VIP.to_bits(),
        LocalAddr {
            owned: true,
            mac: MacAddr(PORT0_MAC),
            shared_mac: false,
            port: 0,
            kind: LocalKind::Vip,
        },
    );
    snap.locals.insert(
        SNAT.to_bits(),
        LocalAddr {
            owned: true,
            mac: MacAddr(PORT1_MAC),
            shared_mac: false,
            port: 1,
            kind: LocalKind::Snat,
        },
    );
    snap.index();
    snap
}

pub fn published(snap: Snapshot) -> Arc<Published> {
    Published::new(snap)
}

/// A TCP segment as a frame.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, 1000, 65535);
    tcp_frame(b, flags, payload)
}

/// An Ethernet IPv4 UDP datagram.
pub fn udp(
    macs: ([u8; 6], [u8; 6]),
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build udp frame");
    out
}

/// A client → VIP segment.
pub fn client_tcp(sport: u16, flags: &str) -> Vec<u8> {
    tcp(CLIENT_MAC, PORT0_MAC, CLIENT, VIP, sport, VPORT, flags, b"")
}

pub fn client_tcp_from(client: Ipv4Addr, sport: u16, flags: &str) -> Vec<u8> {
    tcp(CLIENT_MAC, PORT0_MAC, client, VIP, sport, VPORT, flags, b"")
}

/// Puts a frame's L4 checksum into the form a sender with checksum offload
/// hands over: the ones' complement sum of the pseudo-header, folded, not
/// complemented. Computed here byte by byte, apart from vipd's own code.
pub fn make_partial(frame: &mut [u8]) {
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([frame[14 + 2], frame[14 + 3]]));
    let proto = frame[14 + 9];
    let l4_len = (total - ihl) as u32;
    let mut sum: u32 = 0;
    for at in (14 + 12..14 + 20).step_by(2) {
        sum += u32::from(u16::from_be_bytes([frame[at], frame[at + 1]]));
    }
    sum += u32::from(proto) + l4_len;
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let at = 14 + ihl + if proto == 6 { 16 } else { 6 };
    frame[at..at + 2].copy_from_slice(&(sum as u16).to_be_bytes());
}

/// A lone worker on `snap`, its clock at 1 s.
pub fn worker(snap: Snapshot) -> Worker {
    worker_of(0, 1, published(snap))
}

/// Worker `id` of `n` on the published snapshot `p`, its clock at 1 s.
pub fn worker_of(id: u16, n: u16, p: Arc<Published>) -> Worker {
    let cfg = WorkerConfig {
        flow_capacity: 4096,
        persistence_capacity: 256,
        timeouts: Timeouts::default(),
        steer_replies: false,
        sync_origin: None,
    };
    let mut w = Worker::new(id, n, cfg, p);
    w.begin_batch(1_000);
    w
}

/// Sets `flags` (S, A, F, R, P) on a TCP frame builder and writes the frame.
pub fn tcp_frame(
    mut b: etherparse::PacketBuilderStep<etherparse::TcpHeader>,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'A' => b.ack(2000),
            'F' => b.fin(),
            'R' => b.rst(),
            'P' => b.psh(),
            _ => b,
        };
    }
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build tcp frame");
    out
}
