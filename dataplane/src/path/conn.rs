//! Opening a connection: pick a backend, build both rewrites, insert the flow.

use super::family::{Family, Picking};
use super::{Ip, Worker, SNAT_PORT_BASE};
use crate::flow::{Addr, Conn, FlowKey, FlowTable, InsertError, Rewrite};
use crate::sched::{flow_hash, Persistence, SchedState, SchedulerKind};
use crate::service::{Backend, ForwardMode, Hop, Service};
use crate::verdict::{DropReason, PortId, Verdict};
use wire::{ip_proto, EthernetFrame, TcpFlags};

/// Backend id recorded for connections answered by the sorry server.
pub const SORRY_BACKEND_ID: u32 = u32::MAX;

/// Full-NAT ports tried before giving up on one packet.
const SNAT_TRIES: u32 = 64;

pub(super) fn open<A: Family>(
    w: &mut Worker,
    frame: &mut [u8],
    ip: &Ip<A>,
    key: FlowKey<A>,
    flags: u8,
    ingress: PortId,
) -> Result<Verdict, DropReason> {
    let snap = w.snap.clone();
    if A::is_martian_source(&snap, key.src_ip) {
        return Err(DropReason::MartianSource);
    }
    let (sid, svc) = A::service(&snap, &key).ok_or(DropReason::NoService)?;
    let flags_seen = TcpFlags(flags);
    let opening = key.proto != ip_proto::TCP || flags_seen.is_new_connection();
    if !opening && !stateless_pickup(svc, flags_seen) {
        return Err(DropReason::NoFlow);
    }
    let (id, workers, now_ms) = (w.id, w.workers, w.now_ms);
    let Picking {
        flows,
        mut picker,
        snat_cursor,
    } = A::picking(w);
    let (backend_id, backend) = pick(&mut picker, flows, sid, svc, &key)?;
    // A service's backends are of its VIP's family.
    let bip = A::from_ip(backend.ip).ok_or(DropReason::NoBackend)?;
    // No full-NAT port is taken for a packet dropped for its next hop.
    let snat = match svc.forward {
        ForwardMode::FullNat if backend.hop.is_some() => snat_source(
            snat_cursor,
            (id, workers),
            flows,
            now_ms,
            svc,
            &key,
            (bip, backend.port),
        )?,
        _ => (key.src_ip, key.src_port),
    };
    let hop = w.hop_of(backend)?;
    let (client_mac, vip_mac) = {
        let eth =
            EthernetFrame::new_checked(&frame[..]).map_err(|_| DropReason::TruncatedEthernet)?;
        let vip_mac = A::local(&snap, key.dst_ip)
            .map(|l| l.mac)
            .unwrap_or(eth.dst());
        (eth.src(), vip_mac)
    };
    let egress_mac = snap
        .ports
        .get(usize::from(hop.port))
        .map(|p| p.mac)
        .ok_or(DropReason::NeighbourUnresolved)?;
    let client = ClientSide {
        mac: client_mac.0,
        vip_mac: vip_mac.0,
        port: ingress,
    };
    let (forward, reply, reply_key) = rewrites(
        svc.forward,
        &key,
        (bip, backend.port),
        hop,
        egress_mac.0,
        snat,
        client,
    );
    let mut conn = Conn::new(
        forward, reply, sid, backend_id, key.src_ip, key.proto, now_ms,
    );
    conn.picked_up = !opening;
    let id = match A::flows_mut(w).insert(key, reply_key, conn, now_ms) {
        Ok(id) => id,
        // Consistent hashing needs no state: a table too full to list a
        // picked-up connection still forwards it.
        Err(_) if !opening => return A::send(w, frame, ip, ingress, &forward, backend_id),
        Err(InsertError::Full | InsertError::TooManyBackends) => {
            return Err(DropReason::FlowTableFull)
        }
        // Only a full-NAT reply key can collide: the port was just taken.
        Err(InsertError::Exists) => return Err(DropReason::SnatPortsExhausted),
    };
    if opening {
        A::flows_mut(w).touch(id, crate::flow::Direction::Forward, flags, now_ms);
    } else {
        // Left embryonic until its next segment: a lone spoofed ACK holds
        // only an entry the table evicts first and expires soon.
        w.picked_up += 1;
    }
    A::opened(w, id, svc.forward, hop.port);
    if let Some(timeout) = svc.persistence_ms {
        if backend_id != SORRY_BACKEND_ID {
            w.persistence
                .put(sid, key.src_ip, backend_id, timeout, now_ms);
        }
    }
    A::send(w, frame, ip, ingress, &forward, backend_id)
}

/// The client's end of a connection as this node sees it.
pub(super) struct ClientSide {
    /// Where replies to the client go on its segment.
    pub(super) mac: [u8; 6],
    /// The source MAC of the VIP's replies.
    pub(super) vip_mac: [u8; 6],
    /// The port the client's packets arrive on.
    pub(super) port: PortId,
}

/// Both rewrites of connection `key` to `backend` (address and port)
/// through `hop` (the egress port's MAC is `egress_mac`), and the key its
/// replies carry when they reach this node. `source` is the full-NAT source
/// the node chose; the other modes keep the client's.
pub(super) fn rewrites<A: Addr>(
    mode: ForwardMode,
    key: &FlowKey<A>,
    backend: (A, u16),
    hop: Hop,
    egress_mac: [u8; 6],
    source: (A, u16),
    client: ClientSide,
) -> (Rewrite<A>, Rewrite<A>, FlowKey<A>) {
    let (src_ip, src_port) = match mode {
        ForwardMode::FullNat => source,
        ForwardMode::Nat | ForwardMode::Dr => (key.src_ip, key.src_port),
    };
    // DR keeps the VIP and port: the backend holds the VIP on loopback.
    let (dst_ip, dst_port) = match mode {
        ForwardMode::Dr => (key.dst_ip, key.dst_port),
        ForwardMode::Nat | ForwardMode::FullNat => backend,
    };
    let forward = Rewrite {
        src_ip,
        dst_ip,
        src_port,
        dst_port,
        src_mac: egress_mac,
        dst_mac: hop.mac.0,
        egress: hop.port,
    };
    let reply = Rewrite {
        src_ip: key.dst_ip,
        dst_ip: key.src_ip,
        src_port: key.dst_port,
        dst_port: key.src_port,
        src_mac: client.vip_mac,
        dst_mac: client.mac,
        egress: client.port,
    };
    // Under DR replies bypass the node, so the connection is indexed once.
    let reply_key = match mode {
        ForwardMode::Dr => *key,
        ForwardMode::Nat | ForwardMode::FullNat => FlowKey {
            src_ip: dst_ip,
            dst_ip: src_ip,
            src_port: dst_port,
            dst_port: src_port,
            proto: key.proto,
        },
    };
    (forward, reply, reply_key)
}

/// Whether a mid-connection TCP segment without a flow (the connection began
/// on another node, or before a restart, or the router rehashed) is picked
/// up. Only under direct routing with a consistent-hash scheduler: every node
/// picks the same backend for it and no reply passes here. The flow it opens
/// is marked picked up and stays embryonic until a second segment arrives,
/// so an ACK flood cannot fill the table with entries that look established.
pub(super) fn stateless_pickup(svc: &Service, flags: TcpFlags) -> bool {
    svc.forward == ForwardMode::Dr
        && matches!(svc.scheduler, SchedulerKind::Maglev | SchedulerKind::Sh)
        && !flags.contains(TcpFlags::RST)
}

/// The scheduler state and persistence cache a pick reads and updates:
/// shared by both address families (services are numbered across them).
pub(super) struct Picker<'w> {
    pub(super) sched: &'w mut [SchedState],
    pub(super) persistence: &'w mut Persistence,
    pub(super) now_ms: u64,
}

/// The backend for a new connection `key` to service `sid`: the client's
/// persistent one if still eligible, else the scheduler's pick (counting
/// connections in `flows`), else the sorry server.
pub(super) fn pick<'s, A: Addr>(
    p: &mut Picker<'_>,
    flows: &FlowTable<A>,
    sid: u16,
    svc: &'s Service,
    key: &FlowKey<A>,
) -> Result<(u32, &'s Backend), DropReason> {
    if svc.persistence_ms.is_some() {
        if let Some(id) = p.persistence.get(sid, key.src_ip, p.now_ms) {
            let idx = svc
                .weights
                .iter()
                .position(|b| b.id == id && b.available && b.weight > 0);
            if let Some(i) = idx {
                return Ok((id, &svc.backends[i]));
            }
        }
    }
    let now_ms = p.now_ms;
    let picked = p.sched.get_mut(usize::from(sid)).and_then(|s| {
        s.pick(
            &svc.weights,
            svc.maglev.as_deref(),
            key,
            &|id| flows.backend_conns(id),
            now_ms,
        )
    });
    match (picked, &svc.sorry) {
        (Some(i), _) => match (svc.weights.get(i), svc.backends.get(i)) {
            (Some(b), Some(backend)) => Ok((b.id, backend)),
            _ => Err(DropReason::NoBackend),
        },
        (None, Some(sorry)) => Ok((SORRY_BACKEND_ID, sorry)),
        (None, None) => Err(DropReason::NoBackend),
    }
}

/// Chooses the full-NAT source address and a free source port whose owner
/// (see `snat_port_owner`) is worker `id` of `workers`, so replies come back
/// to its table; `cursor` is the worker's position in its port range.
pub(super) fn snat_source<A: Addr>(
    cursor: &mut u32,
    (id, workers): (u16, u16),
    flows: &mut FlowTable<A>,
    now_ms: u64,
    svc: &Service,
    key: &FlowKey<A>,
    (bip, bport): (A, u16),
) -> Result<(A, u16), DropReason> {
    let n = svc.snat.len();
    if n == 0 {
        return Err(DropReason::SnatPortsExhausted);
    }
    let snat = A::from_ip(svc.snat[(flow_hash(key) % n as u64) as usize])
        .ok_or(DropReason::SnatPortsExhausted)?;
    let workers = u32::from(workers);
    let slots = (u32::from(u16::MAX) + 1 - u32::from(SNAT_PORT_BASE)) / workers;
    for _ in 0..SNAT_TRIES {
        let slot = *cursor % slots;
        *cursor = cursor.wrapping_add(1);
        let port = (u32::from(SNAT_PORT_BASE) + slot * workers + u32::from(id)) as u16;
        let reply_key = FlowKey {
            src_ip: bip,
            dst_ip: snat,
            src_port: bport,
            dst_port: port,
            proto: key.proto,
        };
        if flows.lookup(&reply_key, now_ms).is_none() {
            return Ok((snat, port));
        }
    }
    Err(DropReason::SnatPortsExhausted)
}
