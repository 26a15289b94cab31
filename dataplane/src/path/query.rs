//! Questions the control plane asks a worker about its flow table.
//!
//! The control side pushes a [`FlowQuery`] into a bounded mailbox; the worker
//! picks it up in housekeeping and scans its table a slice at a time, so a
//! query never blocks the packet path nor makes one housekeeping call long.
//! The answer goes back on a channel that cannot block the worker.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::flow::{ConnId, FastSeen, FlowKey, FlowTable};

/// Table slots looked at per housekeeping call.
pub const SCAN_BUDGET: usize = 65_536;
/// Distinct clients counted per scan; beyond this the top list is marked
/// partial rather than letting a scan grow without bound.
pub const MAX_CLIENTS: usize = 65_536;
/// Flows listed for a client lookup.
pub const MAX_MATCHES: usize = 256;
/// Queries waiting per worker; more are refused, not queued.
pub const MAILBOX_DEPTH: usize = 8;

/// One question about a worker's flows.
#[derive(Debug)]
pub struct FlowQuery {
    /// Backend ids whose (active, inactive) counts are wanted.
    pub backends: Vec<u32>,
    /// List the flows of this client.
    pub client: Option<Ipv4Addr>,
    /// How many of the busiest clients to report.
    pub top: usize,
    /// Count the flows that carried a packet within this many ms (a node
    /// being drained asks which connections still use it).
    pub active_within_ms: Option<u64>,
    pub reply: SyncSender<FlowSummary>,
}

/// What a worker lends its mailbox for one housekeeping call.
pub(super) struct WorkerView<'a> {
    pub(super) id: u16,
    pub(super) now_ms: u64,
    pub(super) flows: &'a FlowTable,
    pub(super) traffic: &'a super::Traffic,
    pub(super) picked_up: u64,
}

/// One flow, as listed for a client lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    pub client: SocketAddrV4,
    pub destination: SocketAddrV4,
    pub proto: u8,
    pub backend_id: u32,
    pub service: u16,
    pub state: &'static str,
    /// Forwarded by the XDP program.
    pub offloaded: bool,
    /// When the XDP program last forwarded one of its packets (engine
    /// clock, ms).
    pub fast_last_seen_ms: Option<u64>,
    /// Began on another node; picked up here mid-stream.
    pub picked_up: bool,
    /// Learned from a peer by connection sync, not yet forwarded here.
    pub learned: bool,
}

/// One backend's connections and the traffic a worker forwarded to and
/// from it (the XDP fast path counts its own share).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    pub id: u32,
    pub active: u32,
    pub inactive: u32,
    pub packets: u64,
    pub bytes: u64,
}

/// A worker's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowSummary {
    pub worker: u16,
    /// Live connections in the table.
    pub total: usize,
    /// Of them, forwarded by the XDP program.
    pub offloaded: usize,
    pub capacity: usize,
    /// Each asked-for backend.
    pub backends: Vec<BackendStats>,
    /// Busiest clients first: `(client, connections)`.
    pub top_clients: Vec<(Ipv4Addr, u32)>,
    /// More than [`MAX_CLIENTS`] distinct clients: the top list is partial.
    pub clients_truncated: bool,
    pub matches: Vec<FlowInfo>,
    /// More than [`MAX_MATCHES`] flows matched the client.
    pub matches_truncated: bool,
    /// Live flows picked up mid-stream (counted when the table is scanned:
    /// a client, a top list or `active_within_ms` was asked for).
    pub picked_up: usize,
    /// Connections picked up mid-stream since the worker started.
    pub picked_up_total: u64,
    /// Flows with a packet within `active_within_ms`, when asked.
    pub active: Option<usize>,
}

/// The control side of a worker's mailbox.
#[derive(Clone, Debug)]
pub struct QuerySender(Arc<ArrayQueue<FlowQuery>>);

impl QuerySender {
    /// Queues a query; gives it back if the worker already has too many.
    pub fn send(&self, query: FlowQuery) -> Result<(), FlowQuery> {
        self.0.push(query)
    }
}

/// A query being answered, a slice of the table per housekeeping call.
pub(super) struct Scan {
    query: FlowQuery,
    cursor: usize,
    clients: HashMap<u32, u32>,
    summary: FlowSummary,
}

/// The worker side of the mailbox.
pub(super) struct Mailbox {
    queue: Arc<ArrayQueue<FlowQuery>>,
    scan: Option<Scan>,
}

impl Mailbox {
    pub(super) fn new() -> (Mailbox, QuerySender) {
        let queue = Arc::new(ArrayQueue::new(MAILBOX_DEPTH));
        (
            Mailbox {
                queue: queue.clone(),
                scan: None,
            },
            QuerySender(queue),
        )
    }

    /// Advances the current query by at most [`SCAN_BUDGET`] slots, answering
    /// it when the whole table has been seen.
    pub(super) fn poll(&mut self, w: &WorkerView, seen: &mut dyn FastSeen) {
        let (flows, traffic) = (w.flows, w.traffic);
        if self.scan.is_none() {
            let Some(query) = self.queue.pop() else {
                return;
            };
            let backends = query
                .backends
                .iter()
                .map(|&id| {
                    let (active, inactive) = flows.backend_conns(id);
                    let (packets, bytes) = traffic.get(id);
                    BackendStats {
                        id,
                        active,
                        inactive,
                        packets,
                        bytes,
                    }
                })
                .collect();
            let active = query.active_within_ms.map(|_| 0);
            self.scan = Some(Scan {
                query,
                cursor: 0,
                clients: HashMap::new(),
                summary: FlowSummary {
                    worker: w.id,
                    total: flows.len(),
                    picked_up_total: w.picked_up,
                    active,
                    offloaded: flows.offloaded(),
                    capacity: flows.capacity(),
                    backends,
                    ..FlowSummary::default()
                },
            });
        }
        let Some(scan) = self.scan.as_mut() else {
            return;
        };
        // Counts alone come from the table's running totals: no scan.
        let counts_only = scan.query.top == 0
            && scan.query.client.is_none()
            && scan.query.active_within_ms.is_none();
        let end = if counts_only {
            usize::MAX
        } else {
            scan.cursor.saturating_add(SCAN_BUDGET)
        };
        let range_end = if end == usize::MAX { scan.cursor } else { end };
        let client = scan.query.client.map(Ipv4Addr::to_bits);
        let active_since = scan
            .query
            .active_within_ms
            .map(|ms| w.now_ms.saturating_sub(ms));
        for (id, key, conn) in flows.entries_in(scan.cursor..range_end) {
            scan.summary.picked_up += usize::from(conn.picked_up);
            if let (Some(since), Some(n)) = (active_since, scan.summary.active.as_mut()) {
                *n += usize::from(flows.last_active_ms(id, seen) >= since);
            }
            let n = scan.clients.len();
            match scan.clients.get_mut(&conn.client_ip) {
                Some(c) => *c += 1,
                None if n < MAX_CLIENTS => {
                    scan.clients.insert(conn.client_ip, 1);
                }
                None => scan.summary.clients_truncated = true,
            }
            if client == Some(conn.client_ip) {
                if scan.summary.matches.len() < MAX_MATCHES {
                    scan.summary.matches.push(flow_info(flows, id, key, seen));
                } else {
                    scan.summary.matches_truncated = true;
                }
            }
        }
        scan.cursor = end;
        if end < flows.capacity() {
            return;
        }
        if let Some(mut scan) = self.scan.take() {
            let mut top: Vec<(Ipv4Addr, u32)> = scan
                .clients
                .into_iter()
                .map(|(ip, n)| (Ipv4Addr::from_bits(ip), n))
                .collect();
            top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(scan.query.top);
            scan.summary.top_clients = top;
            // The asker may have given up waiting; nothing to do then.
            let _ = scan.query.reply.try_send(scan.summary);
        }
    }
}

fn flow_info(flows: &FlowTable, id: ConnId, key: &FlowKey, seen: &mut dyn FastSeen) -> FlowInfo {
    let conn = flows.conn(id);
    FlowInfo {
        client: SocketAddrV4::new(Ipv4Addr::from_bits(key.src_ip), key.src_port),
        destination: SocketAddrV4::new(Ipv4Addr::from_bits(key.dst_ip), key.dst_port),
        proto: key.proto,
        backend_id: conn.backend_id,
        service: conn.service,
        state: conn.state.name(),
        offloaded: flows.is_offloaded(id),
        fast_last_seen_ms: flows.last_seen_ms(id, seen),
        picked_up: conn.picked_up,
        learned: conn.learned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{Conn, Timeouts};

    fn table(capacity: usize, clients: &[(u32, u16, u32)]) -> FlowTable {
        let t = Timeouts {
            embryonic_ms: 1000,
            established_ms: 1000,
            closing_ms: 1000,
            time_wait_ms: 1000,
            close_ms: 1000,
            udp_ms: 1000,
        };
        let mut flows = FlowTable::new(capacity, t);
        for &(client, port, backend) in clients {
            let key = FlowKey {
                src_ip: client,
                dst_ip: 0x0a00_0001,
                src_port: port,
                dst_port: 80,
                proto: 17,
            };
            let reply = FlowKey {
                src_ip: backend,
                dst_ip: client,
                src_port: 80,
                dst_port: port,
                proto: 17,
            };
            let conn = Conn::new(
                Default::default(),
                Default::default(),
                0,
                backend,
                client,
                17,
                0,
            );
            flows.insert(key, reply, conn, 0).expect("insert");
        }
        flows
    }

    #[test]
    fn a_query_is_answered_over_several_bounded_calls() {
        // Client 1 has three flows, client 2 one; backends 7 and 8.
        let flows = table(
            SCAN_BUDGET * 2 + 10,
            &[(1, 1000, 7), (1, 1001, 7), (1, 1002, 8), (2, 1000, 8)],
        );
        let (mut mb, tx) = Mailbox::new();
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        tx.send(FlowQuery {
            backends: vec![7, 8, 9],
            client: Some(Ipv4Addr::from_bits(1)),
            top: 1,
            active_within_ms: None,
            reply,
        })
        .expect("queued");
        let traffic = super::super::Traffic::default();
        let view = WorkerView {
            id: 3,
            now_ms: 0,
            flows: &flows,
            traffic: &traffic,
            picked_up: 0,
        };
        mb.poll(&view, &mut crate::flow::NothingSeen);
        mb.poll(&view, &mut crate::flow::NothingSeen);
        assert!(
            rx.try_recv().is_err(),
            "answered before the whole table was seen"
        );
        mb.poll(&view, &mut crate::flow::NothingSeen);
        let s = rx.try_recv().expect("answered after the third call");
        assert_eq!(s.worker, 3);
        assert_eq!(s.total, 4);
        let conns: Vec<(u32, u32, u32)> = s
            .backends
            .iter()
            .map(|b| (b.id, b.active, b.inactive))
            .collect();
        assert_eq!(conns, vec![(7, 2, 0), (8, 2, 0), (9, 0, 0)]);
        assert_eq!(s.top_clients, vec![(Ipv4Addr::from_bits(1), 3)]);
        let mut ports: Vec<u16> = s.matches.iter().map(|m| m.client.port()).collect();
        ports.sort_unstable();
        assert_eq!(ports, vec![1000, 1001, 1002]);
    }

    #[test]
    fn a_full_mailbox_refuses_rather_than_queues() {
        let (_mb, tx) = Mailbox::new();
        let mut refused = 0;
        for _ in 0..MAILBOX_DEPTH + 3 {
            let (reply, _rx) = std::sync::mpsc::sync_channel(1);
            let q = FlowQuery {
                backends: Vec::new(),
                client: None,
                top: 0,
                active_within_ms: None,
                reply,
            };
            if tx.send(q).is_err() {
                refused += 1;
            }
        }
        assert_eq!(refused, 3);
    }
}
