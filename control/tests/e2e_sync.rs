//! End to end: connection sync between two vipd nodes keeps every open
//! connection through VRRP failovers, in nat, fullnat and dr modes.
//!
//! Two nodes (VRRP v3, 100 ms adverts; lb1 priority 250 and preempting,
//! lb2 200) sync their connections to each other over `eth1`. An echo
//! client keeps 200 TCP connections through the VIP to line echo servers on
//! the backends, one line every 100 ms on each. The master is killed,
//! loses its link, is stopped cleanly, and comes back each time; after
//! every such event every connection must have had an echo again, none was
//! reset, none got a wrong echo. Run with `--nocapture` to see the longest
//! wait for an echo across each event.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use ctlproto::{reply, Command};
use viplab::{Lab, Side};

use common::conn_sync::*;
use common::vrrp::{signal, state, wait_state};
use common::*;

/// Scheduler of the services: round robin keeps no state a node could
/// recompute, so a connection survives a failover only if it was synced.
const SCHEDULER: &str = "rr";

/// How long a failover or a return may take to show in VRRP state: a
/// returning node waits up to the dump deadline before it takes over.
const SETTLE: Duration = Duration::from_secs(20);

/// How long every connection may take to echo again once the nodes
/// settled (TCP retransmission backs off during the outage).
const RECOVER: Duration = Duration::from_secs(30);

/// Starts window `name` on every client, just before an event.
fn begin(lab: &Lab, clients: &mut [EchoClient], name: &str) {
    for c in clients.iter_mut() {
        c.mark(lab, name);
    }
}

/// After the event begun as `name`: waits until `settled` (the VRRP states
/// it leads to), then until every connection has had an echo since; asserts
/// no connection was reset, got a wrong echo or died, and prints the
/// longest wait for an echo across the event.
fn end(
    lab: &Lab,
    clients: &mut [EchoClient],
    label: &str,
    what: &str,
    name: &str,
    settled: impl FnMut() -> bool,
) {
    lab.wait_until(&format!("{label}: {what} settles"), SETTLE, settled)
        .unwrap_or_else(|e| panic!("{e} (logs in {})", lab.dir().display()));
    let after = format!("{name}-after");
    begin(lab, clients, &after);
    for c in clients.iter_mut() {
        let r = c.wait_all_echoed(lab, &after, RECOVER);
        let w = r.window(name);
        // An echo the event delayed may arrive in either window.
        let longest = w.max_wait_ms.max(r.window(&after).max_wait_ms);
        println!(
            "{label}, {what}: {} connections to {}: longest echo wait {longest} ms ({} echoes, {} resets, {} wrong; {} alive)",
            r.n, c.vip, w.ok, w.resets, w.wrong, r.alive
        );
        assert!(
            r.opened == r.n
                && r.alive == r.n
                && r.resets == 0
                && r.wrong == 0
                && r.window(&after).ok_conns == r.n,
            "{label}, {what}: connections to {} did not all survive: {} of {} alive, {} resets, {} wrong echoes, {} echoed after the event, {} stalled (longest pending wait {} ms), ends {}; this event: {w:?} (logs in {})",
            c.vip,
            r.alive,
            r.n,
            r.resets,
            r.wrong,
            r.window(&after).ok_conns,
            r.stalled,
            r.pending_max_ms,
            r.errors,
            lab.dir().display()
        );
    }
}

/// Stops the clients and checks their totals.
fn finish(lab: &Lab, clients: Vec<EchoClient>, label: &str) {
    for c in clients {
        let vip = c.vip;
        let r = c.finish(lab);
        println!(
            "{label}: {} connections to {vip}: {} echoes, longest wait {} ms overall",
            r.n, r.ok, r.max_wait_ms
        );
        assert!(
            r.alive == r.n && r.resets == 0 && r.wrong == 0,
            "{label}: connections to {vip} at the end: {r:?}"
        );
    }
}

/// 200 connections through lb1 survive, in `mode` with `queues` queues per
/// interface: a SIGKILL of lb1 and its return, a link failure of its client
/// side and its repair, a clean stop and a restart.
fn connections_survive_failovers(mode: Mode, queues: u16) {
    let label = format!("{} with {queues} queue(s)", mode.forward());
    let vip = viplab::vip(1);
    let lab = sync_lab(&format!("sync{}", mode.forward()), mode, queues, &[vip]);
    start_echo_servers(&lab, 2);
    let key = write_key(&lab);
    let mut vips = vec![vip.into()];
    if mode == Mode::Nat {
        // The backends' gateway moves with the VIP.
        vips.push(FLOATING_GW.into());
    }
    let instances = [Instance {
        name: "vi",
        vrid: 51,
        vips,
        priority: vec![250, 200],
    }];
    let services = [echo_service(vip, mode, SCHEDULER, SHARED_SNAT)];
    let config = |k: usize| node_conf(&lab, k, queues, &services, &instances, &key);
    let mut lb1 = start_node(&lab, 1, &config(1), 2);
    let lb2 = start_node(&lab, 2, &config(2), 2);
    wait_state(&lab, &lb1, "master", Duration::from_secs(10));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(10));
    let mut clients = vec![EchoClient::start(&lab, vip, CONNS)];

    begin(&lab, &mut clients, "kill");
    signal(&lb1, libc::SIGKILL);
    end(&lab, &mut clients, &label, "SIGKILL of lb1", "kill", || {
        state(&lb2) == "master"
    });
    lb1.process.take();
    begin(&lab, &mut clients, "return");
    lb1 = start_node(&lab, 1, &config(1), 2);
    end(
        &lab,
        &mut clients,
        &label,
        "lb1 restarted after SIGKILL",
        "return",
        || state(&lb1) == "master" && state(&lb2) == "backup",
    );
    took_over_only_once_synced(&lb1, CONNS);

    begin(&lab, &mut clients, "linkdown");
    lab.link_down("lb1", "eth0").expect("link down");
    end(
        &lab,
        &mut clients,
        &label,
        "lb1's eth0 down",
        "linkdown",
        || state(&lb2) == "master",
    );
    begin(&lab, &mut clients, "linkup");
    lab.link_up("lb1", "eth0").expect("link up");
    end(
        &lab,
        &mut clients,
        &label,
        "lb1's eth0 up again",
        "linkup",
        || state(&lb1) == "master" && state(&lb2) == "backup",
    );

    begin(&lab, &mut clients, "term");
    lb1.terminate(&lab).expect("lb1 stops on SIGTERM");
    end(&lab, &mut clients, &label, "SIGTERM of lb1", "term", || {
        state(&lb2) == "master"
    });
    lb1.process.take();
    begin(&lab, &mut clients, "restart");
    lb1 = start_node(&lab, 1, &config(1), 2);
    end(
        &lab,
        &mut clients,
        &label,
        "lb1 restarted after SIGTERM",
        "restart",
        || state(&lb1) == "master" && state(&lb2) == "backup",
    );
    took_over_only_once_synced(&lb1, CONNS);
    finish(&lab, clients, &label);
}

/// A returning node with the higher priority took mastership only after
/// its peer's connections were in: its sync turned ready on the dump
/// (`conns` records at least) before VRRP made it master.
fn took_over_only_once_synced(vipd: &Vipd, conns: usize) {
    let sync: reply::Sync = vipd.call(Command::Sync {}).expect("vipctl sync answers");
    let s = sync.node.expect("sync is configured");
    assert_eq!(
        s.ready_reason.as_deref(),
        Some("the peers' connections were applied"),
        "{s:?}"
    );
    let peer = s.peers.first().expect("one peer");
    assert!(
        peer.dump_records >= conns as u64 && peer.dump.starts_with("done"),
        "the dump brought {} records ({}), expected {conns}: {s:?}",
        peer.dump_records,
        peer.dump
    );
    let ready = s.ready_unix_ms.expect("ready time");
    let vrrp: reply::Vrrp = vipd.call(Command::Vrrp {}).expect("vipctl vrrp answers");
    let became = vrrp.instances[0]
        .transitions
        .iter()
        .find(|t| t.to == "master")
        .unwrap_or_else(|| panic!("no transition to master: {vrrp:?}"));
    assert!(
        became.unix_ms >= ready,
        "master at {} ms, before its sync was ready at {ready} ms: {became:?}",
        became.unix_ms
    );
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn nat_connections_survive_failovers() {
    connections_survive_failovers(Mode::Nat, 1);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn nat_connections_survive_failovers_two_queues() {
    connections_survive_failovers(Mode::Nat, 2);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn fullnat_connections_survive_failovers() {
    connections_survive_failovers(Mode::FullNat, 1);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn fullnat_connections_survive_failovers_two_queues() {
    connections_survive_failovers(Mode::FullNat, 2);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn dr_connections_survive_failovers() {
    connections_survive_failovers(Mode::Dr, 1);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn dr_connections_survive_failovers_two_queues() {
    connections_survive_failovers(Mode::Dr, 2);
}

/// VRRP state of instances `a` and `b` on a node (empty when it does not
/// answer).
/// Without `peers`, sync runs over the multicast group on the sync
/// interface: the takeover and the returning node's dump work the same.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn multicast_sync_keeps_connections_across_a_kill_and_a_return() {
    let label = "multicast sync";
    let vip = viplab::vip(1);
    let lab = sync_lab("syncmcast", Mode::FullNat, 1, &[vip]);
    start_echo_servers(&lab, 2);
    let key = write_key(&lab);
    let instances = [Instance {
        name: "vi",
        vrid: 51,
        vips: vec![vip.into()],
        priority: vec![250, 200],
    }];
    let services = [echo_service(vip, Mode::FullNat, SCHEDULER, SHARED_SNAT)];
    let config = |k: usize| {
        let unicast = node_conf(&lab, k, 1, &services, &instances, &key);
        let peers = unicast
            .lines()
            .find(|l| l.starts_with("peers = "))
            .expect("a peers line")
            .to_string();
        unicast.replace(&format!("{peers}\n"), "")
    };
    let mut lb1 = start_node(&lab, 1, &config(1), 2);
    let lb2 = start_node(&lab, 2, &config(2), 2);
    wait_state(&lab, &lb1, "master", Duration::from_secs(10));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(10));
    let sync: reply::Sync = lb2.call(Command::Sync {}).expect("vipctl sync answers");
    let destination = sync.node.expect("sync configured").destination;
    assert!(
        destination.starts_with("multicast 224.0.0.81"),
        "{destination}"
    );
    let mut clients = vec![EchoClient::start(&lab, vip, CONNS)];
    begin(&lab, &mut clients, "kill");
    signal(&lb1, libc::SIGKILL);
    end(&lab, &mut clients, label, "SIGKILL of lb1", "kill", || {
        state(&lb2) == "master"
    });
    lb1.process.take();
    begin(&lab, &mut clients, "return");
    lb1 = start_node(&lab, 1, &config(1), 2);
    end(&lab, &mut clients, label, "lb1 restarted", "return", || {
        state(&lb1) == "master" && state(&lb2) == "backup"
    });
    took_over_only_once_synced(&lb1, CONNS);
    finish(&lab, clients, label);
}

fn states(v: &Vipd) -> [String; 2] {
    let r: reply::Vrrp = v.call(Command::Vrrp {}).unwrap_or_default();
    ["a", "b"].map(|n| {
        r.instances
            .iter()
            .find(|i| i.name == n)
            .map(|i| i.state.clone())
            .unwrap_or_default()
    })
}

fn are(v: &Vipd, a: &str, b: &str) -> bool {
    states(v) == [a.to_string(), b.to_string()]
}

/// Each node leads its own instance: lb1 `a`, lb2 `b`.
fn home(lb1: &Vipd, lb2: &Vipd) -> bool {
    are(lb1, "master", "backup") && are(lb2, "backup", "master")
}

/// Dual master: lb1 leads the instance of one VIP, lb2 that of the other,
/// with connections to both (full NAT, a shared source address per VIP).
/// Either node dies and comes back; every connection of both VIPs
/// survives.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn dual_master_connections_survive_either_node() {
    let label = "dual master";
    let vips = [viplab::vip(1), viplab::vip(2)];
    let lab = sync_lab("syncdual", Mode::FullNat, 1, &vips);
    start_echo_servers(&lab, 2);
    let key = write_key(&lab);
    let instances = [
        Instance {
            name: "a",
            vrid: 61,
            vips: vec![vips[0].into()],
            priority: vec![250, 200],
        },
        Instance {
            name: "b",
            vrid: 62,
            vips: vec![vips[1].into()],
            priority: vec![200, 250],
        },
    ];
    let services = [
        echo_service(vips[0], Mode::FullNat, SCHEDULER, SHARED_SNAT),
        echo_service(
            vips[1],
            Mode::FullNat,
            SCHEDULER,
            Ipv4Addr::new(10, 77, 1, 201),
        ),
    ];
    let config = |k: usize| node_conf(&lab, k, 1, &services, &instances, &key);
    let mut lb1 = start_node(&lab, 1, &config(1), 4);
    let mut lb2 = start_node(&lab, 2, &config(2), 4);
    lab.wait_until("lb1 leads a, lb2 leads b", Duration::from_secs(10), || {
        home(&lb1, &lb2)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?} {:?}", states(&lb1), states(&lb2)));
    let mut clients: Vec<EchoClient> = vips
        .iter()
        .map(|&vip| EchoClient::start(&lab, vip, CONNS / 2))
        .collect();

    begin(&lab, &mut clients, "kill1");
    signal(&lb1, libc::SIGKILL);
    end(&lab, &mut clients, label, "SIGKILL of lb1", "kill1", || {
        are(&lb2, "master", "master")
    });
    lb1.process.take();
    begin(&lab, &mut clients, "return1");
    lb1 = start_node(&lab, 1, &config(1), 4);
    end(
        &lab,
        &mut clients,
        label,
        "lb1 restarted",
        "return1",
        || home(&lb1, &lb2),
    );

    begin(&lab, &mut clients, "kill2");
    signal(&lb2, libc::SIGKILL);
    end(&lab, &mut clients, label, "SIGKILL of lb2", "kill2", || {
        are(&lb1, "master", "master")
    });
    lb2.process.take();
    begin(&lab, &mut clients, "return2");
    lb2 = start_node(&lab, 2, &config(2), 4);
    end(
        &lab,
        &mut clients,
        label,
        "lb2 restarted",
        "return2",
        || home(&lb1, &lb2),
    );
    finish(&lab, clients, label);
}

/// Hostile datagrams to lb2's sync port — garbage, an empty one, truncated
/// headers, plausible headers with a MAC made with the wrong key, from a
/// stranger and claiming lb1's address, and a replay of a real message of
/// lb1's — change nothing: lb2 stays up and backup, the connections keep
/// echoing and still survive a failover to lb2; lb2 counts every one as
/// rejected.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn hostile_sync_traffic_is_refused() {
    let label = "hostile sync traffic";
    let vip = viplab::vip(1);
    let lab = sync_lab("synchostile", Mode::FullNat, 1, &[vip]);
    start_echo_servers(&lab, 2);
    let key = write_key(&lab);
    let instances = [Instance {
        name: "vi",
        vrid: 51,
        vips: vec![vip.into()],
        priority: vec![250, 200],
    }];
    let services = [echo_service(vip, Mode::FullNat, SCHEDULER, SHARED_SNAT)];
    let config = |k: usize| node_conf(&lab, k, 1, &services, &instances, &key);
    let lb1 = start_node(&lab, 1, &config(1), 2);
    let mut lb2 = start_node(&lab, 2, &config(2), 2);
    wait_state(&lab, &lb1, "master", Duration::from_secs(10));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(10));
    let before = sync_rejected(&lb2);

    // Watch lb1's messages to lb2 from the switch port facing lb2 (no XDP
    // there) while the connections open: the first one is replayed later.
    let mut capture = lab
        .spawn(
            "sw",
            &[
                "/usr/bin/python3",
                "-c",
                CAPTURE_UDP,
                "lb2b",
                &lab.lb_ip(1, Side::Backend).to_string(),
                &SYNC_PORT.to_string(),
                "30",
            ],
        )
        .expect("capture");
    let mut clients = vec![EchoClient::start(&lab, vip, CONNS)];
    let lb2_addr = lab.lb_ip(2, Side::Backend).to_string();
    let lb1_addr = lab.lb_ip(1, Side::Backend).to_string();
    let port = SYNC_PORT.to_string();

    begin(&lab, &mut clients, "hostile");
    let mut sent = 0u64;
    for args in [
        vec![lb2_addr.as_str(), port.as_str()],
        vec![lb2_addr.as_str(), port.as_str(), lb1_addr.as_str()],
    ] {
        let out = python(&lab, "be1", HOSTILE_SYNC, &args).expect("hostile datagrams sent");
        sent += out
            .trim()
            .strip_prefix("sent ")
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("hostile sender said {out:?}"));
    }
    // Garbage also arrives routed, from the client segment.
    let out = python(&lab, "client", HOSTILE_SYNC, &[&lb2_addr, &port]).expect("routed garbage");
    sent += out
        .trim()
        .strip_prefix("sent ")
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("hostile sender said {out:?}"));
    end(
        &lab,
        &mut clients,
        label,
        "garbage and forged MACs",
        "hostile",
        || lb2.is_running() && state(&lb2) == "backup" && state(&lb1) == "master",
    );

    lab.wait_until(
        "a sync message from lb1 to lb2 captured",
        Duration::from_secs(35),
        || !capture.is_running(),
    )
    .expect("the capture ends");
    let captured = capture.log().trim().to_string();
    assert!(
        !captured.is_empty() && captured.bytes().all(|b| b.is_ascii_hexdigit()),
        "lb1 sent lb2 no sync message while 200 connections opened: {captured:?}"
    );
    const REPLAYS: u64 = 3;
    begin(&lab, &mut clients, "replay");
    for _ in 0..REPLAYS {
        python(
            &lab,
            "be1",
            SEND_SPOOFED,
            &[&lb2_addr, &port, &lb1_addr, &captured],
        )
        .expect("replay sent");
    }
    end(
        &lab,
        &mut clients,
        label,
        "replayed message",
        "replay",
        || lb2.is_running() && state(&lb2) == "backup" && state(&lb1) == "master",
    );

    // lb2's copy of the connections is intact: they survive a failover to it.
    begin(&lab, &mut clients, "kill");
    signal(&lb1, libc::SIGKILL);
    end(
        &lab,
        &mut clients,
        label,
        "SIGKILL of lb1 after the hostile traffic",
        "kill",
        || state(&lb2) == "master",
    );
    finish(&lab, clients, label);

    let (before, replayed_before) =
        before.unwrap_or_else(|e| panic!("lb2's sync counters before: {e}"));
    let (after, replayed_after) =
        sync_rejected(&lb2).unwrap_or_else(|e| panic!("lb2's sync counters after: {e}"));
    println!(
        "{label}: lb2 rejected {} messages ({} replays) of {} hostile ones and {REPLAYS} replays",
        after - before,
        replayed_after - replayed_before,
        sent
    );
    assert!(
        after - before >= sent + REPLAYS,
        "lb2 rejected {} messages, {sent} hostile ones and {REPLAYS} replays were sent",
        after - before
    );
    assert!(
        replayed_after - replayed_before >= REPLAYS,
        "lb2 counted {} replays of {REPLAYS}",
        replayed_after - replayed_before
    );
    assert!(lb2.is_running(), "lb2 died: {}", lb2.log());
}

/// 200 IPv6 connections through lb1 in `mode` survive a SIGKILL of lb1
/// and its return: lb2 holds them as IPv6 records before the kill and
/// forwards them the moment it is master; lb1 comes back with lb2's dump
/// and preempts only once it is in. The IPv6 VIP (and in nat mode the
/// backends' IPv6 gateway, the floating gateway's twin) moves in an
/// instance of its own; the nodes sync over IPv4.
fn ipv6_connections_survive_a_kill_and_a_return(mode: Mode) {
    let label = format!("IPv6 {}", mode.forward());
    let vip = viplab::vip6(1);
    let tag = format!("sync6{}", mode.forward());
    let lab = sync_lab_dual_stack(&tag, mode, 1, &[viplab::vip(1)]);
    start_echo_servers(&lab, 2);
    let key = write_key(&lab);
    let mut vips = vec![vip.into()];
    if mode == Mode::Nat {
        vips.push(viplab::ipv6_twin(FLOATING_GW).into());
    }
    let instances = [Instance {
        name: "vi6",
        vrid: 51,
        vips,
        priority: vec![250, 200],
    }];
    let snat = viplab::ipv6_twin(SHARED_SNAT);
    let services = [echo_service(vip, mode, SCHEDULER, snat)];
    let config = |k: usize| node_conf(&lab, k, 1, &services, &instances, &key);
    let mut lb1 = start_node(&lab, 1, &config(1), 2);
    let lb2 = start_node(&lab, 2, &config(2), 2);
    wait_state(&lab, &lb1, "master", Duration::from_secs(10));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(10));
    let mut clients = vec![EchoClient::start(&lab, vip, CONNS)];
    let sync = |v: &Vipd| {
        v.call::<reply::Sync>(Command::Sync {})
            .ok()
            .and_then(|s| s.node)
            .map(|n| n.counters)
            .unwrap_or_default()
    };
    lab.wait_until(
        "lb2 holds every IPv6 connection",
        Duration::from_secs(10),
        || sync(&lb2).records_received_v6 >= CONNS as u64,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", sync(&lb2), lb2.log()));

    begin(&lab, &mut clients, "kill");
    signal(&lb1, libc::SIGKILL);
    end(&lab, &mut clients, &label, "SIGKILL of lb1", "kill", || {
        state(&lb2) == "master"
    });
    // The status is published every second or so.
    lab.wait_until(
        "lb2 serves every learned connection",
        Duration::from_secs(5),
        || sync(&lb2).activated >= CONNS as u64,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", sync(&lb2)));
    // Back with a dump of lb2's IPv6 connections before it preempts.
    lb1.process.take();
    begin(&lab, &mut clients, "return");
    lb1 = start_node(&lab, 1, &config(1), 2);
    end(
        &lab,
        &mut clients,
        &label,
        "lb1 restarted",
        "return",
        || state(&lb1) == "master" && state(&lb2) == "backup",
    );
    took_over_only_once_synced(&lb1, CONNS);
    finish(&lab, clients, &label);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn ipv6_nat_connections_survive_a_kill_and_a_return() {
    ipv6_connections_survive_a_kill_and_a_return(Mode::Nat);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn ipv6_fullnat_connections_survive_a_kill_and_a_return() {
    ipv6_connections_survive_a_kill_and_a_return(Mode::FullNat);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn ipv6_dr_connections_survive_a_kill_and_a_return() {
    ipv6_connections_survive_a_kill_and_a_return(Mode::Dr);
}
