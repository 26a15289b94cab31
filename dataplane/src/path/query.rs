//! Questions the control plane asks a worker about its flow tables.
//!
//! The control side pushes a [`FlowQuery`] into a bounded mailbox; the worker
//! picks it up in housekeeping and scans its tables a slice at a time (the
//! IPv4 table, then the IPv6 one), so a query never blocks the packet path
//! nor makes one housekeeping call long. The answer goes back on a channel
//! that cannot block the worker.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::flow::{Addr, ConnId, FastSeen, FastSeenAll, FlowKey, FlowTable, Ip6};

/// Table slots looked at per housekeeping call, both tables together.
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
    pub client: Option<IpAddr>,
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
    pub(super) flows6: &'a FlowTable<Ip6>,
    pub(super) traffic: &'a super::Traffic,
    pub(super) picked_up: u64,
}

/// One flow, as listed for a client lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    pub client: SocketAddr,
    pub destination: SocketAddr,
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

/// A worker's answer, both address families together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowSummary {
    pub worker: u16,
    /// Live connections in the tables.
    pub total: usize,
    /// Of them, forwarded by the XDP program.
    pub offloaded: usize,
    pub capacity: usize,
    /// Each asked-for backend.
    pub backends: Vec<BackendStats>,
    /// Busiest clients first: `(client, connections)`.
    pub top_clients: Vec<(IpAddr, u32)>,
    /// More than [`MAX_CLIENTS`] distinct clients: the top list is partial.
    pub clients_truncated: bool,
    pub matches: Vec<FlowInfo>,
    /// More than [`MAX_MATCHES`] flows matched the client.
    pub matches_truncated: bool,
    /// Live flows picked up mid-stream (counted when the tables are
    /// scanned: a client, a top list or `active_within_ms` was asked for).
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

/// A query being answered, a slice of the tables per housekeeping call.
pub(super) struct Scan {
    query: FlowQuery,
    /// The next slot to look at, numbering the IPv4 table's slots first
    /// and the IPv6 table's after them.
    cursor: usize,
    clients: HashMap<IpAddr, u32>,
    summary: FlowSummary,
}

impl Scan {
    /// Starts on `query` with the counts the tables keep running totals of.
    fn new(query: FlowQuery, w: &WorkerView) -> Scan {
        let (flows, flows6) = (w.flows, w.flows6);
        let backends = query
            .backends
            .iter()
            .map(|&id| {
                let (active, inactive) = flows.backend_conns(id);
                let (active6, inactive6) = flows6.backend_conns(id);
                let (packets, bytes) = w.traffic.get(id);
                BackendStats {
                    id,
                    active: active + active6,
                    inactive: inactive + inactive6,
                    packets,
                    bytes,
                }
            })
            .collect();
        let active = query.active_within_ms.map(|_| 0);
        Scan {
            query,
            cursor: 0,
            clients: HashMap::new(),
            summary: FlowSummary {
                worker: w.id,
                total: flows.len() + flows6.len(),
                picked_up_total: w.picked_up,
                active,
                offloaded: flows.offloaded() + flows6.offloaded(),
                capacity: flows.capacity() + flows6.capacity(),
                backends,
                ..FlowSummary::default()
            },
        }
    }

    /// Counts and lists the live flows among `slots` of one table.
    fn visit<A: Addr>(
        &mut self,
        flows: &FlowTable<A>,
        slots: Range<usize>,
        active_since: Option<u64>,
        seen: &mut dyn FastSeen<A>,
    ) {
        // A client of the other family has no flows in this table.
        let client = self.query.client.and_then(A::from_ip);
        let summary = &mut self.summary;
        for (id, key, conn) in flows.entries_in(slots) {
            summary.picked_up += usize::from(conn.picked_up);
            if let (Some(since), Some(n)) = (active_since, summary.active.as_mut()) {
                *n += usize::from(flows.last_active_ms(id, seen) >= since);
            }
            let n = self.clients.len();
            match self.clients.get_mut(&conn.client_ip.ip()) {
                Some(c) => *c += 1,
                None if n < MAX_CLIENTS => {
                    self.clients.insert(conn.client_ip.ip(), 1);
                }
                None => summary.clients_truncated = true,
            }
            if client == Some(conn.client_ip) {
                if summary.matches.len() < MAX_MATCHES {
                    summary.matches.push(flow_info(flows, id, key, seen));
                } else {
                    summary.matches_truncated = true;
                }
            }
        }
    }

    /// The answer, once every slot has been seen.
    fn finish(mut self) {
        let mut top: Vec<(IpAddr, u32)> = self.clients.into_iter().collect();
        top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(self.query.top);
        self.summary.top_clients = top;
        // The asker may have given up waiting; nothing to do then.
        let _ = self.query.reply.try_send(self.summary);
    }
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
    /// it when both tables have been seen. `seen` and `seen6` tell when the
    /// XDP program last forwarded an offloaded connection of either table.
    pub(super) fn poll(&mut self, w: &WorkerView, seen: &mut dyn FastSeenAll) {
        if self.scan.is_none() {
            let Some(query) = self.queue.pop() else {
                return;
            };
            self.scan = Some(Scan::new(query, w));
        }
        let Some(scan) = self.scan.as_mut() else {
            return;
        };
        let slots4 = w.flows.capacity();
        let slots = slots4.saturating_add(w.flows6.capacity());
        // Counts alone come from the tables' running totals: no scan.
        let counts_only = scan.query.top == 0
            && scan.query.client.is_none()
            && scan.query.active_within_ms.is_none();
        if counts_only {
            scan.cursor = slots;
        } else {
            let active_since = scan
                .query
                .active_within_ms
                .map(|ms| w.now_ms.saturating_sub(ms));
            let (start, end) = (scan.cursor, scan.cursor.saturating_add(SCAN_BUDGET));
            scan.visit(w.flows, start..end, active_since, seen.v4());
            let in6 = start.saturating_sub(slots4)..end.saturating_sub(slots4);
            scan.visit(w.flows6, in6, active_since, seen.v6());
            scan.cursor = end;
        }
        if scan.cursor < slots {
            return;
        }
        if let Some(scan) = self.scan.take() {
            scan.finish();
        }
    }
}

fn flow_info<A: Addr>(
    flows: &FlowTable<A>,
    id: ConnId,
    key: &FlowKey<A>,
    seen: &mut dyn FastSeen<A>,
) -> FlowInfo {
    let conn = flows.conn(id);
    FlowInfo {
        client: SocketAddr::new(key.src_ip.ip(), key.src_port),
        destination: SocketAddr::new(key.dst_ip.ip(), key.dst_port),
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
    use crate::flow::{Conn, NothingSeen, Timeouts};
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// A table with one UDP flow per `(client, port, backend)`.
    fn table<A: Addr>(capacity: usize, clients: &[(A, u16, u32)]) -> FlowTable<A> {
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
                dst_ip: A::default(),
                src_port: port,
                dst_port: 80,
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
            flows.insert(key, key.reversed(), conn, 0).expect("insert");
        }
        flows
    }

    fn v4(n: u32) -> u32 {
        Ipv4Addr::new(10, 0, 1, 0).to_bits() + n
    }

    fn v6(n: u16) -> Ip6 {
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, n).octets()
    }

    /// Asks `query` of the two tables, one housekeeping call at a time,
    /// and says how many calls the answer took.
    fn ask(
        flows: &FlowTable,
        flows6: &FlowTable<Ip6>,
        backends: Vec<u32>,
        client: Option<IpAddr>,
        top: usize,
    ) -> (FlowSummary, usize) {
        let (mut mb, tx) = Mailbox::new();
        let (reply, rx) = std::sync::mpsc::sync_channel(1);
        tx.send(FlowQuery {
            backends,
            client,
            top,
            active_within_ms: None,
            reply,
        })
        .expect("queued");
        let traffic = super::super::Traffic::default();
        let view = WorkerView {
            id: 3,
            now_ms: 0,
            flows,
            flows6,
            traffic: &traffic,
            picked_up: 0,
        };
        for calls in 1..100 {
            mb.poll(&view, &mut NothingSeen);
            if let Ok(s) = rx.try_recv() {
                return (s, calls);
            }
        }
        panic!("no answer after 100 housekeeping calls");
    }

    #[test]
    fn a_query_is_answered_over_several_bounded_calls() {
        // Client 1 has three flows, client 2 one; backends 7 and 8.
        let flows = table(
            SCAN_BUDGET * 2 + 10,
            &[
                (v4(1), 1000, 7),
                (v4(1), 1001, 7),
                (v4(1), 1002, 8),
                (v4(2), 1000, 8),
            ],
        );
        let none = table::<Ip6>(0, &[]);
        let client = Ipv4Addr::from_bits(v4(1));
        let (s, calls) = ask(&flows, &none, vec![7, 8, 9], Some(client.into()), 1);
        assert_eq!(calls, 3, "one budget of slots per call");
        assert_eq!(s.worker, 3);
        assert_eq!(s.total, 4);
        let conns: Vec<(u32, u32, u32)> = s
            .backends
            .iter()
            .map(|b| (b.id, b.active, b.inactive))
            .collect();
        assert_eq!(conns, vec![(7, 2, 0), (8, 2, 0), (9, 0, 0)]);
        assert_eq!(s.top_clients, vec![(client.into(), 3)]);
        let mut ports: Vec<u16> = s.matches.iter().map(|m| m.client.port()).collect();
        ports.sort_unstable();
        assert_eq!(ports, vec![1000, 1001, 1002]);
    }

    #[test]
    fn both_tables_are_scanned_within_one_budget_per_call() {
        // The IPv4 table ends half-way through the first call's budget;
        // the IPv6 one takes the rest of it and most of a second call.
        let flows = table(SCAN_BUDGET / 2, &[(v4(1), 1000, 7), (v4(2), 1000, 8)]);
        let flows6 = table(
            SCAN_BUDGET,
            &[
                (v6(1), 1000, 7),
                (v6(1), 1001, 9),
                (v6(1), 1002, 9),
                (v6(3), 1000, 9),
            ],
        );
        let client = IpAddr::from(Ipv6Addr::from(v6(1)));
        let (s, calls) = ask(&flows, &flows6, vec![7, 8, 9], Some(client), 3);
        assert_eq!(calls, 2);
        assert_eq!(s.total, 6, "both families counted");
        assert_eq!(s.capacity, SCAN_BUDGET / 2 + SCAN_BUDGET);
        let conns: Vec<(u32, u32)> = s.backends.iter().map(|b| (b.id, b.active)).collect();
        assert_eq!(
            conns,
            vec![(7, 2), (8, 1), (9, 3)],
            "summed over both tables"
        );
        let top: Vec<(String, u32)> = s
            .top_clients
            .iter()
            .map(|(ip, n)| (ip.to_string(), *n))
            .collect();
        assert_eq!(
            top,
            vec![
                ("2001:db8::1:1".to_string(), 3),
                ("10.0.1.1".to_string(), 1),
                ("10.0.1.2".to_string(), 1)
            ],
            "busiest first, the families mixed"
        );
        let mut listed: Vec<String> = s.matches.iter().map(|m| m.client.to_string()).collect();
        listed.sort_unstable();
        assert_eq!(
            listed,
            [
                "[2001:db8::1:1]:1000",
                "[2001:db8::1:1]:1001",
                "[2001:db8::1:1]:1002"
            ]
        );
        assert!(s.matches.iter().all(|m| m.destination.is_ipv6()));
    }

    #[test]
    fn a_client_of_one_family_matches_nothing_in_the_other() {
        // The same low bits in both families: only the asked family matches.
        let flows = table(64, &[(1, 1000, 7)]);
        let mut as_v6 = [0; 16];
        as_v6[15] = 1;
        let flows6 = table(64, &[(as_v6, 2000, 8)]);
        let (s, _) = ask(
            &flows,
            &flows6,
            Vec::new(),
            Some(Ipv4Addr::from_bits(1).into()),
            0,
        );
        let ports: Vec<u16> = s.matches.iter().map(|m| m.client.port()).collect();
        assert_eq!(ports, vec![1000]);
        let (s, _) = ask(
            &flows,
            &flows6,
            Vec::new(),
            Some(Ipv6Addr::from(as_v6).into()),
            0,
        );
        let ports: Vec<u16> = s.matches.iter().map(|m| m.client.port()).collect();
        assert_eq!(ports, vec![2000]);
    }

    #[test]
    fn counts_alone_are_answered_at_once_for_both_families() {
        let flows = table(SCAN_BUDGET * 4, &[(v4(1), 1000, 7)]);
        let flows6 = table(SCAN_BUDGET * 4, &[(v6(1), 1000, 7), (v6(2), 1000, 7)]);
        let (s, calls) = ask(&flows, &flows6, vec![7], None, 0);
        assert_eq!(calls, 1);
        assert_eq!((s.total, s.backends[0].active), (3, 3));
        assert!(s.top_clients.is_empty());
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
