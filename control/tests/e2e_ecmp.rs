//! End to end: an active-active ECMP site. Three vipd nodes announce the same
//! prefix to a BIRD router that spreads 100 long-lived TCP connections over
//! them by 5-tuple hash; the service forwards by direct routing with Maglev,
//! so a node that receives a connection it has never seen picks it up and
//! sends it to the same backend. One node is killed, restarted, a fourth
//! joins, one is drained and undrained, and one loses its uplink: after each
//! event every connection must still echo, and the drained node must end up
//! carrying nothing.

mod common;

use std::time::{Duration, Instant};

use ctlproto::reply;
use viplab::ecmp::{EchoReport, EcmpLab};

use common::*;

const CONNECTIONS: usize = 100;
/// Each connection sends a line this often.
const INTERVAL: Duration = Duration::from_millis(100);
/// A connection without an echo for this long is lost. A killed node's
/// routes stay until the router's 3 s hold time runs out, and TCP then
/// needs its next retransmission.
const LOST_AFTER: Duration = Duration::from_secs(20);
/// How long the connections get to echo again after an event.
const RECOVERY: Duration = Duration::from_secs(30);

/// One event's outcome, as the test reports it.
struct Kept {
    event: &'static str,
    kept: usize,
    longest_stall_ms: u64,
    took: Duration,
}

fn next_hops_are(lab: &EcmpLab, nodes: &[usize]) -> bool {
    let mut want: Vec<_> = nodes.iter().map(|k| lab.node_ip(*k)).collect();
    want.sort_unstable();
    lab.next_hops() == want
}

fn wait_next_hops(lab: &EcmpLab, nodes: &[usize], within: Duration) {
    lab.wait_until(
        &format!("the router's multipath route via lb{nodes:?}"),
        within,
        || next_hops_are(lab, nodes),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nnext hops now: {:?}\n{}",
            lab.next_hops(),
            lab.birdc(&["show", "protocols"]).unwrap_or_default()
        )
    });
}

/// Live flows and the connections picked up on node `k`.
fn flows(lab: &EcmpLab, k: usize) -> reply::Flows {
    vipctl_json(&lab.control_socket(k), &["flows"]).unwrap_or_default()
}

/// Waits until node `k`, new in the multipath route, has picked up some of
/// the connections the router moved to it.
fn wait_picked_up(lab: &EcmpLab, k: usize) {
    lab.wait_until(
        &format!("lb{k} picks up connections"),
        Duration::from_secs(10),
        || flows(lab, k).picked_up_total > 0,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", flows(lab, k)));
}

/// Waits until every connection still alive echoes again, and says how
/// many are alive.
fn after_event(
    lab: &EcmpLab,
    clients: &viplab::EchoClients,
    event: &'static str,
    began: Instant,
) -> Kept {
    let recovered = lab.wait_until("every connection echoes again", RECOVERY, || {
        let r = clients.report();
        r.fresh == r.alive
    });
    let r: EchoReport = clients.report();
    if let Err(e) = recovered {
        panic!(
            "{event}: {e}: {} alive, {} fresh, lost {:?}",
            r.alive, r.fresh, r.lost
        );
    }
    Kept {
        event,
        kept: r.alive,
        longest_stall_ms: r.longest_stall_ms,
        took: began.elapsed(),
    }
}

/// Prints each event's outcome under `title` and asserts every connection
/// was kept and the client still runs.
fn report(title: &str, results: &[Kept], clients: &mut viplab::EchoClients) {
    eprintln!("{title}:");
    eprintln!(
        "{:<14} {:>6} {:>18} {:>10}",
        "event", "kept", "longest stall ms", "took s"
    );
    for r in results {
        eprintln!(
            "{:<14} {:>3}/{CONNECTIONS} {:>18} {:>10.1}",
            r.event,
            r.kept,
            r.longest_stall_ms,
            r.took.as_secs_f64()
        );
    }
    let report = clients.report();
    assert!(
        clients.is_running(),
        "the echo client died:\n{}",
        clients.log()
    );
    assert!(
        report.lost.is_empty() && results.iter().all(|r| r.kept == CONNECTIONS),
        "connections lost: {:?}",
        report.lost
    );
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn ecmp_nodes_keep_every_connection_across_kill_restart_join_and_drain() {
    let lab = EcmpLab::up(&viplab::unique_name("ecmp"), 4, 3).expect("ECMP lab");
    let _bird = lab.start_bird().expect("BIRD starts");
    let start = |k: usize| {
        Vipd::start(&lab, &format!("lb{k}"), &lab.vipd_config(k, ""))
            .unwrap_or_else(|e| panic!("vipd on lb{k}: {e}"))
    };
    let mut nodes: Vec<Option<Vipd>> = (1..=3).map(|k| Some(start(k))).collect();
    nodes.push(None);
    wait_next_hops(&lab, &[1, 2, 3], Duration::from_secs(30));

    let mut clients = lab
        .start_echo_clients(CONNECTIONS, INTERVAL, LOST_AFTER)
        .expect("echo clients start");
    clients
        .wait_ready(&lab, Duration::from_secs(30))
        .expect("every connection echoes");
    // Spread over the three nodes by the router's hash.
    let spread: Vec<usize> = (1..=3).map(|k| flows(&lab, k).total).collect();
    assert!(
        spread.iter().all(|n| *n > 0) && spread.iter().sum::<usize>() >= CONNECTIONS,
        "connections per node {spread:?}: the router did not spread them"
    );
    let mut results = Vec::new();

    // SIGKILL lb2: its routes go with the BGP hold time, its connections
    // rehash onto lb1 and lb3, which pick them up.
    let began = Instant::now();
    let picked_before: u64 = [1, 3].iter().map(|k| flows(&lab, *k).picked_up_total).sum();
    drop(nodes[1].take());
    wait_next_hops(&lab, &[1, 3], Duration::from_secs(15));
    results.push(after_event(&lab, &clients, "SIGKILL lb2", began));
    let picked_after: u64 = [1, 3].iter().map(|k| flows(&lab, *k).picked_up_total).sum();
    assert!(
        picked_after > picked_before,
        "lb2's connections reached lb1 and lb3 without being picked up ({picked_before} → {picked_after})"
    );

    // lb2 comes back: some connections rehash onto it, state-less there.
    let began = Instant::now();
    nodes[1] = Some(start(2));
    wait_next_hops(&lab, &[1, 2, 3], Duration::from_secs(30));
    wait_picked_up(&lab, 2);
    results.push(after_event(&lab, &clients, "restart lb2", began));
    let listed = flows(&lab, 2);
    assert!(
        listed.picked_up > 0 && listed.total > 0,
        "the restarted node lists no picked-up connection: {listed:?}"
    );

    // A fourth node joins.
    let began = Instant::now();
    nodes[3] = Some(start(4));
    wait_next_hops(&lab, &[1, 2, 3, 4], Duration::from_secs(30));
    wait_picked_up(&lab, 4);
    results.push(after_event(&lab, &clients, "lb4 joins", began));

    // Drain lb1: its routes are withdrawn, its connections move to the
    // others, and vipctl waits until it is empty.
    let began = Instant::now();
    let (ok, out, err) = vipctl_run(
        &lab.control_socket(1),
        &["node", "drain", "--timeout", "40"],
    );
    assert!(ok, "vipctl node drain failed: {err}\n{out}");
    assert!(
        out.contains("connections") && out.contains("pps") && out.contains("is empty"),
        "no progress or no end in:\n{out}"
    );
    wait_next_hops(&lab, &[2, 3, 4], Duration::from_secs(5));
    results.push(after_event(&lab, &clients, "drain lb1", began));
    let node: reply::Node = vipctl_json(&lab.control_socket(1), &["node"]).expect("node status");
    let d = node.drain.expect("lb1 shows its drain");
    assert!(
        node.draining && d.empty && d.connections == 0 && d.pps == 0.0,
        "lb1 still carries traffic after the drain: {d:?}"
    );
    let status: reply::Status = vipctl_json(&lab.control_socket(1), &["status"]).expect("status");
    assert!(
        status.drain.is_some(),
        "vipctl status does not show the drain"
    );
    // Still drained after a reload; undrain brings the route back.
    let (ok, _, err) = vipctl_run(&lab.control_socket(1), &["reload"]);
    assert!(ok, "reload: {err}");
    assert!(
        vipctl_json::<reply::Node>(&lab.control_socket(1), &["node"]).is_ok_and(|n| n.draining),
        "the reload ended the drain"
    );
    let began = Instant::now();
    let (ok, _, err) = vipctl_run(&lab.control_socket(1), &["node", "undrain"]);
    assert!(ok, "undrain: {err}");
    wait_next_hops(&lab, &[1, 2, 3, 4], Duration::from_secs(10));
    results.push(after_event(&lab, &clients, "undrain lb1", began));

    // lb3's host dies without closing anything: its uplink goes dark and
    // the router keeps its route until the 3 s hold time runs out.
    let began = Instant::now();
    lab.link_down("lb3", "eth0").expect("lb3's uplink down");
    wait_next_hops(&lab, &[1, 2, 4], Duration::from_secs(15));
    results.push(after_event(&lab, &clients, "lb3 link down", began));

    report(
        &format!("ECMP, DR + Maglev, {CONNECTIONS} long-lived connections (a line every {INTERVAL:?}), first spread over lb1..lb3 {spread:?}"),
        &results,
        &mut clients,
    );
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn a_drain_by_med_or_prepend_keeps_the_route_but_moves_every_connection() {
    let lab = EcmpLab::up(&viplab::unique_name("ecmpdep"), 3, 2).expect("ECMP lab");
    let _bird = lab.start_bird().expect("BIRD starts");
    let modes = [
        "drain = \"med\"\ndrain_med = 900",
        "drain = \"prepend\"",
        "",
    ];
    let nodes: Vec<Vipd> = modes
        .iter()
        .enumerate()
        .map(|(i, extra)| {
            let k = i + 1;
            Vipd::start(&lab, &format!("lb{k}"), &lab.vipd_config(k, extra))
                .unwrap_or_else(|e| panic!("vipd on lb{k}: {e}"))
        })
        .collect();
    wait_next_hops(&lab, &[1, 2, 3], Duration::from_secs(30));
    let clients = lab
        .start_echo_clients(CONNECTIONS, INTERVAL, LOST_AFTER)
        .expect("echo clients start");
    clients
        .wait_ready(&lab, Duration::from_secs(30))
        .expect("every connection echoes");

    let route_of = |k: usize| {
        lab.birdc(&["show", "route", "all", "protocol", &format!("lb{k}")])
            .unwrap_or_default()
    };
    for (k, others, attribute) in [
        (1, [2, 3], "BGP.med: 900".to_string()),
        (
            2,
            [1, 3],
            "BGP.as_path: 65001 65001 65001 65001".to_string(),
        ),
    ] {
        let began = Instant::now();
        let (ok, out, err) = vipctl_run(
            &lab.control_socket(k),
            &["node", "drain", "--timeout", "40"],
        );
        assert!(ok, "lb{k}: vipctl node drain failed: {err}\n{out}");
        wait_next_hops(&lab, &others, Duration::from_secs(5));
        let route = route_of(k);
        assert!(
            route.contains(&attribute),
            "lb{k}'s route is withdrawn or lacks `{attribute}`:\n{route}"
        );
        let kept = after_event(&lab, &clients, "drain", began);
        let node: reply::Node =
            vipctl_json(&lab.control_socket(k), &["node"]).expect("node status");
        let d = node.drain.expect("the drain is shown");
        assert!(
            d.empty && d.connections == 0,
            "lb{k} still carries traffic: {d:?}"
        );
        eprintln!(
            "drain of lb{k} by {}: route kept with `{attribute}`, {}/{CONNECTIONS} connections kept, empty after {:.1} s",
            node.mode,
            kept.kept,
            kept.took.as_secs_f64()
        );
        assert_eq!(kept.kept, CONNECTIONS, "lost: {:?}", clients.report().lost);
        let (ok, _, err) = vipctl_run(&lab.control_socket(k), &["node", "undrain"]);
        assert!(ok, "undrain: {err}");
        wait_next_hops(&lab, &[1, 2, 3], Duration::from_secs(10));
    }
    drop(nodes);
}

/// Connections of peers that node `k` carried on (sync's `activated`).
fn taken_over(lab: &EcmpLab, k: usize) -> u64 {
    vipctl_json::<reply::Sync>(&lab.control_socket(k), &["sync"])
        .ok()
        .and_then(|s| s.node)
        .map_or(0, |n| n.counters.activated)
}

/// Full NAT with round robin in an ECMP site: no node could pick up
/// another's connection by itself (it would choose another backend and
/// source), so what keeps them is connection sync, and each node's source
/// address moving by VRRP to a survivor when the node dies.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn ecmp_full_nat_nodes_keep_every_connection_by_sync_across_kill_restart_and_join() {
    let lab = EcmpLab::up(&viplab::unique_name("ecmpfn"), 4, 2).expect("ECMP lab");
    let _bird = lab.start_bird().expect("BIRD starts");
    let key = lab.dir().join("sync.key");
    std::fs::write(&key, format!("{:032x}\n", rand_u128())).expect("sync key");
    let start = |k: usize| {
        Vipd::start(&lab, &format!("lb{k}"), &lab.fullnat_sync_config(k, &key))
            .unwrap_or_else(|e| panic!("vipd on lb{k}: {e}"))
    };
    let mut nodes: Vec<Option<Vipd>> = (1..=3).map(|k| Some(start(k))).collect();
    nodes.push(None);
    wait_next_hops(&lab, &[1, 2, 3], Duration::from_secs(30));
    let mut clients = lab
        .start_echo_clients(CONNECTIONS, INTERVAL, LOST_AFTER)
        .expect("echo clients start");
    clients
        .wait_ready(&lab, Duration::from_secs(30))
        .expect("every connection echoes");
    let mut results = Vec::new();

    // SIGKILL lb2: the router rehashes its connections onto lb1 and lb3,
    // which have them by sync; one of them takes over lb2's source.
    let began = Instant::now();
    let before: u64 = [1, 3].iter().map(|k| taken_over(&lab, *k)).sum();
    drop(nodes[1].take());
    wait_next_hops(&lab, &[1, 3], Duration::from_secs(15));
    // Echoes from just before the kill count as fresh: wait for the moved
    // connections' packets themselves.
    lab.wait_until(
        "lb1 and lb3 carry lb2's connections by sync",
        Duration::from_secs(10),
        || [1, 3].iter().map(|k| taken_over(&lab, *k)).sum::<u64>() > before,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?} {:?}", flows(&lab, 1), flows(&lab, 3)));
    results.push(after_event(&lab, &clients, "SIGKILL lb2", began));

    let began = Instant::now();
    nodes[1] = Some(start(2));
    wait_next_hops(&lab, &[1, 2, 3], Duration::from_secs(30));
    results.push(after_event(&lab, &clients, "restart lb2", began));

    let began = Instant::now();
    let before = taken_over(&lab, 4);
    nodes[3] = Some(start(4));
    wait_next_hops(&lab, &[1, 2, 3, 4], Duration::from_secs(30));
    lab.wait_until(
        "lb4 carries connections the router moved to it",
        Duration::from_secs(10),
        || taken_over(&lab, 4) > before,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", flows(&lab, 4)));
    results.push(after_event(&lab, &clients, "lb4 joins", began));

    let began = Instant::now();
    lab.link_down("lb3", "eth0").expect("lb3's uplink down");
    wait_next_hops(&lab, &[1, 2, 4], Duration::from_secs(15));
    results.push(after_event(&lab, &clients, "lb3 link down", began));

    report(
        &format!("ECMP, full NAT + rr + connection sync, {CONNECTIONS} long-lived connections over lb1..lb3"),
        &results,
        &mut clients,
    );
}

/// A key no other test shares.
fn rand_u128() -> u128 {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .expect("reading /dev/urandom");
    u128::from_le_bytes(b)
}
