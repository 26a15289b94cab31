//! Whole sessions wired through a tiny in-test network: the daemon's part
//! (routing datagrams, keeping a connection table, streaming it on
//! DumpWanted) is simulated so start, hold, dump and live sync run end to
//! end.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use super::util::{addr, at, multicast, rec, rec6, unicast};
use crate::{AddrFamily, AnyRecord, Config, Dest, Input, Output, RecordOp, Released, Session};

/// A connection's identity; the family keeps an IPv4 record and its IPv6
/// twin apart.
type Key = (bool, u128, u16, u128, u16, u8);

fn key(r: &AnyRecord) -> Key {
    match r {
        AnyRecord::V4(r) => (
            false,
            r.client_ip.into(),
            r.client_port,
            r.vip.into(),
            r.vip_port,
            r.proto,
        ),
        AnyRecord::V6(r) => (
            true,
            u128::from_be_bytes(r.client_ip),
            r.client_port,
            u128::from_be_bytes(r.vip),
            r.vip_port,
            r.proto,
        ),
    }
}

struct Node {
    addr: IpAddr,
    session: Session,
    alive: bool,
    table: BTreeMap<Key, AnyRecord>,
    /// Every output but sends, with the time it came.
    log: Vec<(u64, Output)>,
}

struct Net {
    nodes: Vec<Node>,
    multicast: bool,
    now: u64,
}

impl Net {
    fn new(configs: Vec<(u8, Config)>) -> Net {
        let multicast = configs.iter().all(|(_, c)| c.peers.is_none());
        let nodes = configs
            .into_iter()
            .map(|(n, cfg)| Node {
                addr: addr(n),
                session: Session::new(cfg, at(0)).expect("valid config"),
                alive: false,
                table: BTreeMap::new(),
                log: Vec::new(),
            })
            .collect();
        Net {
            nodes,
            multicast,
            now: 0,
        }
    }

    fn input(&mut self, i: usize, input: Input<'_>) {
        let mut out = Vec::new();
        self.nodes[i].session.handle(input, at(self.now), &mut out);
        if let Input::Local(r) = input {
            apply(&mut self.nodes[i].table, r);
        }
        self.route(out.into_iter().map(|o| (i, o)).collect());
    }

    /// Both inputs first, then their outputs: two nodes acting at once.
    fn together(&mut self, a: (usize, Input<'_>), b: (usize, Input<'_>)) {
        let mut queue = VecDeque::new();
        for (i, input) in [a, b] {
            let mut out = Vec::new();
            self.nodes[i].session.handle(input, at(self.now), &mut out);
            queue.extend(out.into_iter().map(|o| (i, o)));
        }
        self.route(queue);
    }

    fn route(&mut self, mut queue: VecDeque<(usize, Output)>) {
        while let Some((src, o)) = queue.pop_front() {
            let now = at(self.now);
            match o {
                Output::Send { to, bytes } => {
                    let from = self.nodes[src].addr;
                    for j in 0..self.nodes.len() {
                        let hit = match to {
                            Dest::All => j != src || self.multicast,
                            Dest::Peer(a) => self.nodes[j].addr == a,
                        };
                        if hit && self.nodes[j].alive {
                            let mut out = Vec::new();
                            self.nodes[j].session.handle(
                                Input::Datagram {
                                    from,
                                    bytes: &bytes,
                                },
                                now,
                                &mut out,
                            );
                            queue.extend(out.into_iter().map(|o| (j, o)));
                        }
                    }
                }
                Output::Apply { record, .. } => {
                    apply(&mut self.nodes[src].table, record);
                    self.nodes[src].log.push((self.now, o));
                }
                Output::DumpWanted { peer } => {
                    let node = &mut self.nodes[src];
                    let records: Vec<_> = node.table.values().copied().collect();
                    let mut out = Vec::new();
                    for chunk in records.chunks(node.session.batch_capacity(AddrFamily::V4) * 4) {
                        node.session.handle(
                            Input::DumpRecords {
                                to: peer,
                                records: chunk,
                            },
                            now,
                            &mut out,
                        );
                    }
                    node.session
                        .handle(Input::DumpDone { to: peer }, now, &mut out);
                    node.log.push((self.now, o));
                    queue.extend(out.into_iter().map(|o| (src, o)));
                }
                other => self.nodes[src].log.push((self.now, other)),
            }
        }
    }

    /// Ticks every node every 2 ms up to `until`.
    fn run_until(&mut self, until: u64) {
        while self.now < until {
            self.now += 2;
            for i in 0..self.nodes.len() {
                if self.nodes[i].alive {
                    self.input(i, Input::Tick);
                }
            }
        }
    }

    fn released(&self, i: usize) -> Vec<Released> {
        self.nodes[i]
            .log
            .iter()
            .filter_map(|(_, o)| match o {
                Output::HoldReleased { reason } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    fn count(&self, i: usize, f: impl Fn(&Output) -> bool) -> usize {
        self.nodes[i].log.iter().filter(|(_, o)| f(o)).count()
    }
}

fn apply(table: &mut BTreeMap<Key, AnyRecord>, r: AnyRecord) {
    match r.op() {
        RecordOp::Upsert => table.insert(key(&r), r),
        RecordOp::Delete => table.remove(&key(&r)),
    };
}

#[test]
fn a_late_node_gets_the_table_then_live_changes() {
    // Node 2 runs alone first: its hold ends at the deadline.
    let mut net = Net::new(vec![(1, unicast(1, &[2])), (2, unicast(2, &[1]))]);
    net.nodes[1].alive = true;
    net.input(1, Input::Start);
    net.run_until(10_000);
    assert_eq!(net.released(1), vec![Released::Deadline]);
    for n in 0..1000 {
        net.input(1, Input::Local(rec(n).into()));
    }
    net.run_until(20_000);
    // Node 1 starts: node 2 streams its table, node 1 releases on it.
    net.nodes[0].alive = true;
    net.input(0, Input::Start);
    assert_eq!(net.released(0), vec![Released::Dumped]);
    assert_eq!(net.nodes[0].table.len(), 1000);
    assert_eq!(net.nodes[0].table, net.nodes[1].table);
    let p = net.nodes[0].session.peers().next().expect("node 2");
    assert_eq!(
        p.dump,
        crate::DumpState::Done {
            received: 1000,
            announced: 1000
        }
    );
    // A live change reaches node 1 within the flush time and a tick.
    let t0 = net.now;
    net.input(1, Input::Local(rec(5000).into()));
    let mut deleted = rec(7);
    deleted.op = RecordOp::Delete;
    net.input(1, Input::Local(deleted.into()));
    net.run_until(t0 + 10);
    let live: Vec<_> = net.nodes[0]
        .log
        .iter()
        .filter_map(|(t, o)| match o {
            Output::Apply {
                origin: 2,
                record,
                from_dump: false,
            } => Some((*t, *record)),
            _ => None,
        })
        .collect();
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|(t, _)| *t <= t0 + 5 + 2), "{live:?}");
    assert_eq!(net.nodes[0].table, net.nodes[1].table);
    assert_eq!(net.nodes[0].table.len(), 1000);
    // Nobody refused anything on the way.
    for n in &net.nodes {
        assert_eq!(n.session.stats().rejected.total(), 0);
    }
}

#[test]
fn two_nodes_starting_together_serve_each_other_once() {
    let mut net = Net::new(vec![(1, unicast(1, &[2])), (2, unicast(2, &[1]))]);
    net.nodes[0].alive = true;
    net.nodes[1].alive = true;
    net.together((0, Input::Start), (1, Input::Start));
    for i in 0..2 {
        assert_eq!(net.released(i), vec![Released::Dumped]);
        assert_eq!(net.count(i, |o| matches!(o, Output::DumpWanted { .. })), 1);
    }
    // Each asked once to all and at most once directly.
    for n in &net.nodes {
        assert!(
            n.session.stats().sent_messages <= 3,
            "{:?}",
            n.session.stats()
        );
    }
    net.run_until(5_000);
    for i in 0..2 {
        assert_eq!(net.count(i, |o| matches!(o, Output::PeerDown { .. })), 0);
    }
}

#[test]
fn multicast_three_nodes() {
    let mut net = Net::new(vec![
        (1, multicast(1)),
        (2, multicast(2)),
        (3, multicast(3)),
    ]);
    net.nodes[1].alive = true;
    net.nodes[2].alive = true;
    net.together((1, Input::Start), (2, Input::Start));
    net.input(1, Input::Local(rec(1).into()));
    net.input(2, Input::Local(rec(2).into()));
    net.run_until(1_000);
    assert_eq!(net.released(1), vec![Released::Dumped]);
    assert_eq!(net.released(2), vec![Released::Dumped]);
    // Node 1 starts last and gets both tables.
    net.nodes[0].alive = true;
    net.input(0, Input::Start);
    assert_eq!(net.released(0), vec![Released::Dumped]);
    assert_eq!(net.nodes[0].table.len(), 2);
    // Each node heard its own multicast and did not count it as an error.
    net.run_until(3_000);
    for n in &net.nodes {
        let st = n.session.stats();
        assert!(st.own > 0, "{st:?}");
        assert_eq!(st.rejected.total(), 0, "{st:?}");
        assert_eq!(n.session.peers().filter(|p| p.up).count(), 2);
    }
}

#[test]
fn both_families_flow_between_the_same_peers() {
    let mut net = Net::new(vec![(1, unicast(1, &[2])), (2, unicast(2, &[1]))]);
    net.nodes[1].alive = true;
    net.input(1, Input::Start);
    net.run_until(10_000);
    for n in 0..300 {
        net.input(1, Input::Local(rec(n).into()));
        net.input(1, Input::Local(rec6(n).into()));
    }
    net.run_until(20_000);
    // Node 1 starts: the dump carries both families.
    net.nodes[0].alive = true;
    net.input(0, Input::Start);
    assert_eq!(net.released(0), vec![Released::Dumped]);
    assert_eq!(net.nodes[0].table.len(), 600);
    assert_eq!(net.nodes[0].table, net.nodes[1].table);
    // Live changes of both families, interleaved, in one flush.
    let t0 = net.now;
    let mut gone = rec6(7);
    gone.op = RecordOp::Delete;
    net.input(1, Input::Local(rec6(5000).into()));
    net.input(1, Input::Local(rec(5000).into()));
    net.input(1, Input::Local(gone.into()));
    net.run_until(t0 + 10);
    assert_eq!(net.nodes[0].table, net.nodes[1].table);
    assert_eq!(net.nodes[0].table.len(), 601);
    let st = net.nodes[0].session.stats();
    assert_eq!((st.received_records, st.received_records6), (603, 302));
    let st1 = net.nodes[1].session.stats();
    // Its 300 live ones, the same 300 in the dump, and 2.
    assert_eq!(st1.sent_records6, 602);
    for n in &net.nodes {
        assert_eq!(n.session.stats().rejected.total(), 0);
    }
}
