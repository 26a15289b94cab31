//! End to end: vipd's VRRP against keepalived and against itself, in a
//! namespace lab with two LB nodes on one client segment. The client tells
//! who serves the VIP by the HTTP body: a backend name (`be1`, `be2`) when
//! vipd forwards, `keepalived-lbK` when a keepalived node holds the VIP on
//! its own kernel interface and answers from a local server.
//!
//! Failover is measured from the client: a prober sends a UDP probe to an
//! echo service behind the VIP every 10 ms and reports every outage, from
//! the last answered probe before unanswered ones to the first answered one
//! after them, with how long the host froze the whole machine inside it
//! (which the limits do not count). Run with `--nocapture` to see the
//! figures.

mod common;

use ctlproto::{reply, Command};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::vrrp::*;
use common::*;
use viplab::Side;

/// vipd (priority 150, lb1) against keepalived (100, lb2): vipd is master,
/// loses the VIP to keepalived while its link is down, preempts back after.
/// vipd's adverts leave from the virtual MAC, which sits in eth0's unicast
/// filter while vipd runs.
fn vipd_master_over_keepalived(version: u8, interval_ms: u64) {
    let lab = lab2(&format!("kav{version}"));
    let notify_log = lab.dir().join("notify.log");
    let notify = lab.dir().join("notify.sh");
    std::fs::write(
        &notify,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", notify_log.display()),
    )
    .expect("notify script");
    lab.exec_ok("lb1", &["chmod", "+x", &notify.display().to_string()])
        .expect("chmod");
    let ka = Keepalived::start(&lab, 2, version, interval_ms, 100, "");
    assert!(
        !vmac_in_fdb(&lab, "lb1"),
        "virtual MAC in lb1's fdb before vipd"
    );
    let sniff = sniff_vrrp(&lab, "client");
    let mut vipd = start_vipd(
        &lab,
        1,
        &format!(
            "{}notify = \"{}\"\n",
            vrrp_keys(version, interval_ms, 150),
            notify.display()
        ),
    );
    let mdi = Duration::from_millis(interval_ms * 4 + 2000);
    wait_state(&lab, &vipd, "master", mdi * 2);
    wait_server(&lab, "vipd's backends serve the VIP", mdi, is_backend);
    lab.wait_until("keepalived backs off", mdi, || !ka.holds_vip(&lab))
        .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));
    assert!(counter(&vipd, |c| c.adverts_sent) > 0);
    let lb1 = lab.lb_ip(1, Side::Client);
    lab.wait_until("an advert from the virtual MAC", mdi, || {
        saw_vmac_advert(
            &sniff,
            lb1,
            "224.0.0.18".parse().unwrap(),
            "01:00:5e:00:00:12",
        )
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", sniff.log()));
    assert!(vmac_in_fdb(&lab, "lb1"), "virtual MAC not in lb1's fdb");

    lab.link_down("lb1", "eth0").expect("link down");
    wait_server(&lab, "keepalived serves the VIP", mdi, |s| {
        s == "keepalived-lb2"
    });
    wait_state(&lab, &vipd, "fault", mdi);

    lab.link_up("lb1", "eth0").expect("link up");
    wait_state(&lab, &vipd, "master", mdi * 2);
    wait_server(&lab, "vipd serves the VIP again", mdi, is_backend);
    lab.wait_until("keepalived backs off again", mdi, || !ka.holds_vip(&lab))
        .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));

    let notes = std::fs::read_to_string(&notify_log).unwrap_or_default();
    for line in [
        "vi backup master 150",
        "vi master fault 150",
        "vi fault backup 150",
    ] {
        assert!(notes.contains(line), "notify log lacks {line:?}:\n{notes}");
    }
    let inst = instance(&vipd);

    assert!(
        inst.transitions.len() >= 5,
        "expected init→backup→master→fault→backup→master: {inst:?}"
    );
    assert_eq!(inst.counters.became_master, 2, "{inst:?}");

    vipd.terminate(&lab).expect("vipd stops");
    assert!(
        !vmac_in_fdb(&lab, "lb1"),
        "virtual MAC left in lb1's fdb after vipd stopped:\n{}",
        vipd.log()
    );
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn vipd_master_over_keepalived_v3() {
    vipd_master_over_keepalived(3, 100);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn vipd_master_over_keepalived_v2() {
    vipd_master_over_keepalived(2, 1000);
}

/// keepalived (150) is master; vipd (100) stays backup and takes over only
/// when keepalived's link goes down.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn vipd_backup_to_keepalived() {
    let lab = lab2("kaback");
    let ka = Keepalived::start(&lab, 2, 3, 100, 150, "");
    let vipd = start_vipd(&lab, 1, &vrrp_keys(3, 100, 100));
    lab.wait_until("keepalived is master", Duration::from_secs(5), || {
        ka.holds_vip(&lab)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));
    wait_server(&lab, "keepalived serves", Duration::from_secs(10), |s| {
        s == "keepalived-lb2"
    });
    wait_state(&lab, &vipd, "backup", Duration::from_secs(2));
    // Ten advert intervals: vipd hears keepalived and stays backup.
    let heard = counter(&vipd, |c| c.adverts_received);
    lab.wait_until(
        "ten more adverts from keepalived",
        Duration::from_secs(3),
        || counter(&vipd, |c| c.adverts_received) >= heard + 10,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", instance(&vipd)));
    assert_eq!(
        counter(&vipd, |c| c.became_master),
        0,
        "{:?}",
        instance(&vipd)
    );
    assert_eq!(state(&vipd), "backup");

    lab.link_down("lb2", "eth0").expect("link down");
    wait_state(&lab, &vipd, "master", Duration::from_secs(2));
    wait_server(&lab, "vipd serves", Duration::from_secs(10), is_backend);
}

/// Two vipd nodes at 100 ms v3 adverts: failover measured from the client
/// for a link failure, a SIGKILL and a SIGTERM of the master.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn two_vipd_nodes_failover() {
    let lab = lab2_alone("vv");
    udp_echo(&lab, &["be1", "be2"]);
    let mut lb1 = start_vipd(&lab, 1, &vrrp_keys(3, 100, 250));
    let lb2 = start_vipd(&lab, 2, &vrrp_keys(3, 100, 200));
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    wait_server(&lab, "the VIP answers", Duration::from_secs(10), is_backend);

    let link = measure(&lab, || lab.link_down("lb1", "eth0").expect("link down"));
    assert_eq!(state(&lb2), "master");
    lab.link_up("lb1", "eth0").expect("link up");
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));

    let kill = measure(&lab, || signal(&lb1, libc::SIGKILL));
    assert_eq!(state(&lb2), "master");
    lb1.process.take();
    lb1 = start_vipd(&lab, 1, &vrrp_keys(3, 100, 250));
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));

    let zero_before = counter(&lb2, |c| c.priority_zero_received);
    let term = measure(&lab, || signal(&lb1, libc::SIGTERM));
    assert_eq!(state(&lb2), "master");
    assert!(
        counter(&lb2, |c| c.priority_zero_received) > zero_before,
        "no priority-0 advert on SIGTERM: {:?}",
        instance(&lb2)
    );
    println!("vipd, v3 100 ms adverts, priorities 250/200:");
    assert_gap("vipd link down", &link, 400);
    assert_gap("vipd SIGKILL", &kill, 400);
    assert_gap("vipd SIGTERM", &term, 150);
}

/// The same measurement between two keepalived nodes, for comparison only.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn two_keepalived_nodes_failover_reference() {
    let lab = lab2_alone("kk");
    udp_echo(&lab, &["lb1", "lb2"]);
    let lb1 = Keepalived::start(&lab, 1, 3, 100, 250, "");
    let lb2 = Keepalived::start(&lab, 2, 3, 100, 200, "");
    wait_server(
        &lab,
        "keepalived lb1 serves",
        Duration::from_secs(10),
        |s| s == "keepalived-lb1",
    );
    let link = measure(&lab, || lab.link_down("lb1", "eth0").expect("link down"));
    assert!(lb2.holds_vip(&lab), "{}", lb2.log());
    lab.link_up("lb1", "eth0").expect("link up");
    wait_server(
        &lab,
        "keepalived lb1 serves again",
        Duration::from_secs(10),
        |s| s == "keepalived-lb1",
    );
    let term = measure(&lab, || lb1.signal(libc::SIGTERM));
    println!(
        "keepalived, v3 100 ms adverts, priorities 250/200: link down {} ms, SIGTERM {} ms (not asserted)",
        link.max_gap_ms(), term.max_gap_ms()
    );
    assert!(
        link.ok > 0 && term.ok > 0,
        "prober saw nothing: {link:?} {term:?}"
    );
}

/// A track script with weight −60 watches a process; when it dies vipd's
/// priority drops from 150 to 90 and keepalived (100) takes over; when it
/// is back vipd preempts.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn track_script_moves_mastership() {
    let lab = lab2("track");
    let pidfile = lab.dir().join("tracked.pid");
    let tracked = lab
        .spawn("lb1", &["sleep", "600"])
        .expect("tracked process");
    std::fs::write(&pidfile, tracked.pid().to_string()).expect("pid file");
    let check = format!("kill -0 $(cat {})", pidfile.display());
    let ka = Keepalived::start(&lab, 2, 3, 100, 100, "");
    let vipd = start_vipd(
        &lab,
        1,
        &format!(
            "{}[[vrrp.track_script]]\nname = \"lbproc\"\ncommand = [\"/bin/sh\", \"-c\", \"{check}\"]\ninterval_ms = 100\nweight = -60\n",
            vrrp_keys(3, 100, 150)
        ),
    );
    wait_state(&lab, &vipd, "master", Duration::from_secs(3));
    wait_server(&lab, "vipd serves", Duration::from_secs(10), is_backend);

    drop(tracked);
    lab.wait_until("priority drops to 90", Duration::from_secs(3), || {
        instance(&vipd).priority == 90
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", instance(&vipd)));
    wait_state(&lab, &vipd, "backup", Duration::from_secs(3));
    wait_server(&lab, "keepalived serves", Duration::from_secs(10), |s| {
        s == "keepalived-lb2"
    });

    let again = lab
        .spawn("lb1", &["sleep", "600"])
        .expect("tracked process");
    std::fs::write(&pidfile, again.pid().to_string()).expect("pid file");
    wait_state(&lab, &vipd, "master", Duration::from_secs(3));
    wait_server(
        &lab,
        "vipd serves again",
        Duration::from_secs(10),
        is_backend,
    );
    lab.wait_until("keepalived backs off", Duration::from_secs(3), || {
        !ka.holds_vip(&lab)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));
}

/// With preempt off, a higher-priority vipd joining a live keepalived
/// master stays backup; with a preempt delay it takes over only after it.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn nopreempt_and_preempt_delay() {
    let lab = lab2("preempt");
    let ka = Keepalived::start(&lab, 2, 3, 100, 100, "");
    lab.wait_until("keepalived is master", Duration::from_secs(5), || {
        ka.holds_vip(&lab)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));

    let mut vipd = start_vipd(
        &lab,
        1,
        &format!("{}preempt = false\n", vrrp_keys(3, 100, 150)),
    );
    wait_state(&lab, &vipd, "backup", Duration::from_secs(2));
    let heard = counter(&vipd, |c| c.adverts_received);
    lab.wait_until(
        "ten adverts from the lower-priority master",
        Duration::from_secs(3),
        || counter(&vipd, |c| c.adverts_received) >= heard + 10,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", instance(&vipd)));
    assert_eq!(state(&vipd), "backup", "{:?}", instance(&vipd));
    assert!(ka.holds_vip(&lab));
    vipd.terminate(&lab).expect("vipd stops");

    let vipd = start_vipd(
        &lab,
        1,
        &format!("{}preempt_delay_ms = 1500\n", vrrp_keys(3, 100, 150)),
    );
    wait_state(&lab, &vipd, "master", Duration::from_secs(5));
    let inst = instance(&vipd);

    let at = |to: &str| {
        inst.transitions
            .iter()
            .find(|x| x.to == to)
            .map(|x| x.unix_ms)
            .unwrap_or_else(|| panic!("no transition to {to}: {inst:?}"))
    };
    let waited = at("master") - at("backup");
    println!("preempt_delay 1500 ms: master after {waited} ms in backup");
    assert!(
        (1500..2500).contains(&waited),
        "took over {waited} ms after entering backup, expected 1500 ms + up to a master-down interval: {inst:?}"
    );
    wait_server(&lab, "vipd serves", Duration::from_secs(10), is_backend);
}

/// Adverts from lb1 are dropped on the switch, so lb2 also becomes master;
/// when the drop is lifted exactly one master remains and it announces the
/// VIP again with gratuitous ARP.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn split_brain_heals() {
    let lab = lab2("split");
    let lb1 = start_vipd(&lab, 1, &vrrp_keys(3, 100, 150));
    let lb2 = start_vipd(&lab, 2, &vrrp_keys(3, 100, 100));
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    let nft = |rules: &str| {
        lab.exec_ok("sw", &["nft", rules])
            .unwrap_or_else(|e| panic!("nft {rules}: {e}"))
    };
    nft("add table bridge vrrpsplit");
    nft("add chain bridge vrrpsplit filt { type filter hook forward priority 0; }");
    nft("add rule bridge vrrpsplit filt iifname \"lb1c\" ip protocol 112 drop");
    wait_state(&lab, &lb2, "master", Duration::from_secs(3));
    assert_eq!(state(&lb1), "master", "split brain: both masters");

    let sniff = lab
        .spawn(
            "client",
            &["tcpdump", "-l", "-n", "-e", "-tt", "-i", "eth0", "arp"],
        )
        .expect("tcpdump");
    lab.wait_until("tcpdump listens", Duration::from_secs(5), || {
        sniff.log().contains("listening on")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", sniff.log()));
    let lifted_ms = unix_ms_now();
    nft("delete table bridge vrrpsplit");
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    assert_eq!(state(&lb1), "master");
    let garp_after_lift = || {
        sniff.log().lines().any(|l| {
            let ts = l
                .split_whitespace()
                .next()
                .and_then(|t| t.parse::<f64>().ok())
                .map(|t| (t * 1000.0) as u64)
                .unwrap_or(0);
            ts >= lifted_ms
                && l.contains(VMAC)
                && l.contains(&format!("who-has {} tell {}", vip(), vip()))
        })
    };
    lab.wait_until(
        "a gratuitous ARP after the split",
        Duration::from_secs(3),
        garp_after_lift,
    )
    .unwrap_or_else(|e| panic!("{e}:\n{}", sniff.log()));
    // Still exactly one master a few intervals later.
    let sent = counter(&lb1, |c| c.adverts_sent);
    lab.wait_until("five more adverts", Duration::from_secs(3), || {
        counter(&lb1, |c| c.adverts_sent) >= sent + 5
    })
    .expect("adverts flow");
    assert_eq!(
        (state(&lb1), state(&lb2)),
        ("master".into(), "backup".into())
    );
    wait_server(&lab, "the VIP answers", Duration::from_secs(10), is_backend);
}

/// Forged adverts from the client are counted under their reason and change
/// nothing, even a flood of 10000.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn hostile_adverts_are_counted() {
    let lab = lab2("hostvr");
    let lb1 = start_vipd(&lab, 1, &vrrp_keys(3, 100, 150));
    let lb2 = start_vipd(&lab, 2, &vrrp_keys(3, 100, 100));
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    let before = instance(&lb1);
    let backup_before = instance(&lb2);
    let client_mac = mac_of(&lab, "client", "eth0").expect("mac");
    python(
        &lab,
        "client",
        HOSTILE,
        &[&vip().to_string(), &client_mac, "flood"],
    )
    .expect("scapy sends hostile adverts");

    lab.wait_until("the flood is counted", Duration::from_secs(5), || {
        let now = instance(&lb1);
        // A loaded machine may drop part of the flood in the socket buffer
        // before vipd reads it; what arrives must be counted.
        now.counters.checksum_errors >= before.counters.checksum_errors + 5000
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", instance(&lb1)));
    let after = vrrp_instance(&lb1).expect("lb1 answers");
    let counted: [(&str, Read, u64); 4] = [
        ("ttl_errors", |c| c.ttl_errors, 5),
        ("other_vrid", |c| c.other_vrid, 5),
        ("truncated", |c| c.truncated, 5),
        ("false_owner", |c| c.false_owner, 5),
    ];
    for (k, read, n) in counted {
        assert_eq!(
            read(&after.counters) - read(&before.counters),
            n,
            "{k}: {after:?}"
        );
    }
    let flood = after.counters.checksum_errors - before.counters.checksum_errors;
    println!("flood: {flood} of 10005 bad-checksum adverts counted");
    assert!(flood <= 10005, "{after:?}");
    for (node, was, now) in [
        (&lb1, &before, &after),
        (&lb2, &backup_before, &instance(&lb2)),
    ] {
        assert_eq!(now.state, was.state, "{now:?}");
        assert_eq!(
            now.counters.became_master,
            was.counters.became_master,
            "{now:?}\n{}",
            node.log()
        );
    }
    wait_server(
        &lab,
        "the VIP still answers",
        Duration::from_secs(10),
        is_backend,
    );
}

/// Adverts to unicast peers instead of the multicast group: the backup
/// hears the master and takes over when it stops. Once the kernel has
/// resolved the peer, adverts go to its MAC from the virtual MAC.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn unicast_peers_instead_of_multicast() {
    let lab = lab2("unicast");
    let sniff = sniff_vrrp(&lab, "lb2");
    let lb2_mac = lab
        .exec_ok("lb2", &["cat", "/sys/class/net/eth0/address"])
        .expect("lb2's MAC")
        .trim()
        .to_string();
    let peer = |k: usize| format!("unicast_peers = [\"10.77.0.{}\"]\n", 10 + k);
    let mut lb1 = start_vipd(&lab, 1, &format!("{}{}", vrrp_keys(3, 100, 150), peer(2)));
    let lb2 = start_vipd(&lab, 2, &format!("{}{}", vrrp_keys(3, 100, 100), peer(1)));
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    let heard = counter(&lb2, |c| c.adverts_received);
    lab.wait_until(
        "the backup hears unicast adverts",
        Duration::from_secs(3),
        || counter(&lb2, |c| c.adverts_received) >= heard + 10,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", instance(&lb2)));
    assert_eq!(
        counter(&lb2, |c| c.became_master),
        0,
        "{:?}",
        instance(&lb2)
    );
    let (ip1, ip2) = (lab.lb_ip(1, Side::Client), lab.lb_ip(2, Side::Client));
    lab.wait_until(
        "a unicast advert from the virtual MAC",
        Duration::from_secs(3),
        || saw_vmac_advert(&sniff, ip1, ip2, &lb2_mac),
    )
    .unwrap_or_else(|e| panic!("{e}:\n{}", sniff.log()));
    lb1.terminate(&lab).expect("lb1 stops");
    wait_state(&lab, &lb2, "master", Duration::from_secs(2));
    assert!(
        counter(&lb2, |c| c.priority_zero_received) > 0,
        "{:?}",
        instance(&lb2)
    );
    wait_server(&lab, "lb2 serves", Duration::from_secs(10), is_backend);
}

/// The box is up but its dataplane is stuck: the VRRP instance notices the
/// workers' heartbeat stop, gives up mastership, and takes it back when the
/// workers run again.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn stalled_dataplane_gives_up_mastership() {
    let lab = lab2("stall");
    let lb1 = start_vipd(&lab, 1, &vrrp_keys(3, 100, 150));
    let lb2 = start_vipd(&lab, 2, &vrrp_keys(3, 100, 100));
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    let release = lab.dir().join("release");
    let pid = lb1
        .process
        .as_ref()
        .map(|p| p.pid().to_string())
        .unwrap_or_default();
    let mut freezer = lab
        .spawn(
            "lb1",
            &[
                "/usr/bin/python3",
                "-c",
                FREEZE_WORKERS,
                &pid,
                &release.display().to_string(),
            ],
        )
        .expect("freezer");
    lab.wait_until("workers frozen", Duration::from_secs(5), || {
        freezer.log().contains("frozen")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", freezer.log()));
    // The liveness limit is 3 s.
    wait_state(&lab, &lb1, "fault", Duration::from_secs(6));
    wait_state(&lab, &lb2, "master", Duration::from_secs(2));
    wait_server(&lab, "lb2 serves", Duration::from_secs(10), is_backend);

    std::fs::write(&release, "").expect("release file");
    lab.wait_until("workers released", Duration::from_secs(5), || {
        !freezer.is_running()
    })
    .expect("freezer exits");
    assert!(freezer.log().contains("released"), "{}", freezer.log());
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    wait_server(
        &lab,
        "lb1 serves again",
        Duration::from_secs(10),
        is_backend,
    );
}

/// Dual master: two nodes, two instances, each node master of one VIP and
/// backup of the other, so neither box idles; one node fails and the other
/// serves both VIPs; it returns and takes its own VIP back.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn two_nodes_each_master_of_one_vip() {
    let lab = lab2("dual");
    let vips = [viplab::vip(1), viplab::vip(2)];
    let config = |k: usize| {
        let services: Vec<ServiceConf> = vips.iter().map(|&vip| fullnat_service(vip, k)).collect();
        let mut out = node_config(&lab, &format!("lb{k}"), 1, "", &services);
        for (i, (name, vip)) in ["a", "b"].iter().zip(vips).enumerate() {
            // lb1 leads instance a, lb2 leads instance b.
            let priority = if i + 1 == k { 150 } else { 100 };
            out += &format!(
                "[[vrrp]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {}\nvips = [\"{vip}\"]\n{}\n",
                61 + i,
                vrrp_keys(3, 100, priority)
            );
        }
        out
    };
    let states = |v: &Vipd| -> Vec<String> {
        let r: reply::Vrrp = v.call(Command::Vrrp {}).unwrap_or_default();
        ["a", "b"]
            .iter()
            .map(|n| {
                r.instances
                    .iter()
                    .find(|i| i.name == *n)
                    .map(|i| i.state.clone())
                    .unwrap_or_default()
            })
            .collect()
    };
    let lb1 = Vipd::start(&lab, "lb1", &config(1)).expect("lb1 starts");
    let lb2 = Vipd::start(&lab, "lb2", &config(2)).expect("lb2 starts");
    let both = |a: &str, b: &str| vec![a.to_string(), b.to_string()];
    lab.wait_until("lb1 leads a, lb2 leads b", Duration::from_secs(10), || {
        states(&lb1) == both("master", "backup") && states(&lb2) == both("backup", "master")
    })
    .unwrap_or_else(|e| panic!("{e}: {:?} {:?}", states(&lb1), states(&lb2)));
    let serves = |vip: Ipv4Addr| {
        lab.http_get(
            "client",
            SocketAddrV4::new(vip, SERVICE_PORT),
            Duration::from_secs(1),
        )
        .is_ok_and(|b| is_backend(b.trim()))
    };
    for (vip, vrid) in vips.iter().zip([61u8, 62]) {
        lab.wait_until(&format!("{vip} answers"), Duration::from_secs(10), || {
            serves(*vip)
        })
        .expect("both VIPs answer");
        let vmac = format!("00:00:5e:00:01:{vrid:02x}");
        assert_eq!(
            client_neighbour(&lab, *vip).as_deref(),
            Some(vmac.as_str()),
            "{vip}"
        );
    }

    lab.link_down("lb1", "eth0").expect("link down");
    lab.wait_until("lb2 leads both", Duration::from_secs(5), || {
        states(&lb2) == both("master", "master")
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", states(&lb2)));
    for vip in vips {
        lab.wait_until(
            &format!("{vip} answers through lb2"),
            Duration::from_secs(5),
            || serves(vip),
        )
        .expect("lb2 serves both");
    }
    lab.link_up("lb1", "eth0").expect("link up");
    lab.wait_until("lb1 takes a back", Duration::from_secs(10), || {
        states(&lb1) == both("master", "backup") && states(&lb2) == both("backup", "master")
    })
    .unwrap_or_else(|e| panic!("{e}: {:?} {:?}", states(&lb1), states(&lb2)));
    for vip in vips {
        lab.wait_until(
            &format!("{vip} answers again"),
            Duration::from_secs(5),
            || serves(vip),
        )
        .expect("both VIPs answer after preemption");
    }
}

/// Metrics listener of each vipd node (each in its own namespace).
const METRICS: &str = "127.0.0.1:9100";

fn metric(m: &std::collections::HashMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no series {series} in /metrics: {m:?}"))
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn operator_handover_keeps_the_vip_and_comes_back() {
    let lab = lab2_alone("ho");
    udp_echo(&lab, &["be1", "be2"]);
    let start = |k: usize, prio: u8| {
        let role = format!("lb{k}");
        let conf = vipd_config(&lab, k, &vrrp_keys(3, 100, prio)).replace(
            "[control]\n",
            &format!("[control]\nmetrics = \"{METRICS}\"\n"),
        );
        let vipd = Vipd::start(&lab, &role, &conf).expect("vipd starts");
        lab.wait_until("backends healthy", Duration::from_secs(20), || {
            vipd.healthy_backends() == 4
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
        vipd
    };
    let lb1 = start(1, 250);
    let lb2 = start(2, 200);
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    wait_server(&lab, "the VIP answers", Duration::from_secs(10), is_backend);

    let err = vipctl_json::<reply::Handover>(&lb2.socket, &["vrrp", "handover", "vi"])
        .expect_err("backup refuses");
    assert!(err.contains("not master"), "{err}");
    let err = vipctl_json::<reply::Handover>(&lb1.socket, &["vrrp", "handover", "nope"])
        .expect_err("unknown instance");
    assert!(err.contains("configured: vi"), "{err}");

    let mut handover = reply::Handover::default();
    let gap = measure(&lab, || {
        handover = vipctl_json(&lb1.socket, &["vrrp", "handover", "vi", "--timeout", "5"])
            .expect("handover");
        // Right away: over the prober's seconds a host freeze longer than
        // the master-down interval would rightly let the held lb1 take over.
        assert_eq!(state(&lb2), "master");
        assert_eq!(state(&lb1), "backup");
    });
    println!("handover: {handover:?}");
    assert!(handover.peer_took_over, "{handover:?}");
    assert_eq!(
        handover.new_master.as_deref(),
        Some(instance(&lb2).address.as_str()),
        "{handover:?}"
    );
    let ms = handover.switch_over_ms.expect("switch-over time");
    assert!(ms > 0.0 && ms < 1000.0, "switch-over {ms} ms");
    assert!(handover.held);
    assert_gap("operator handover", &gap, 150);

    // Held: lb1 does not preempt although its priority is higher.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(state(&lb1), "backup", "{:?}", instance(&lb1));
    let before = vrrp_instance(&lb1).expect("lb1 answers");
    let m = scrape_metrics(&lab, "lb1", METRICS);
    let after = instance(&lb1);
    let l = |name: &str| format!("{name}{{instance=\"vi\"}}");
    assert_eq!(
        metric(&m, "vipd_vrrp_state{instance=\"vi\",state=\"backup\"}"),
        1.0
    );
    assert_eq!(
        metric(&m, "vipd_vrrp_state{instance=\"vi\",state=\"master\"}"),
        0.0
    );
    assert_eq!(metric(&m, &l("vipd_vrrp_held")), 1.0);
    assert_eq!(metric(&m, &l("vipd_vrrp_priority")), 250.0);
    let transitions = after.transitions.len() as f64;
    assert_eq!(metric(&m, &l("vipd_vrrp_transitions_total")), transitions);
    assert_eq!(
        metric(&m, &l("vipd_vrrp_adverts_sent_total")),
        after.counters.adverts_sent as f64,
        "a held backup sends nothing"
    );
    let received = metric(&m, &l("vipd_vrrp_adverts_received_total"));
    let lo = before.counters.adverts_received as f64;
    let hi = after.counters.adverts_received as f64;
    assert!(
        lo <= received && received <= hi,
        "{lo} <= {received} <= {hi}"
    );
    assert!(received > 0.0);
    let m2 = scrape_metrics(&lab, "lb2", METRICS);
    assert_eq!(
        metric(&m2, "vipd_vrrp_state{instance=\"vi\",state=\"master\"}"),
        1.0
    );
    assert_eq!(metric(&m2, &l("vipd_vrrp_held")), 0.0);

    let released: reply::Release =
        vipctl_json(&lb1.socket, &["vrrp", "release", "vi"]).expect("release");
    assert!(released.was_held, "{released:?}");
    wait_state(&lab, &lb1, "master", Duration::from_secs(3));
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));

    let mut handover = reply::Handover::default();
    let gap = measure(&lab, || {
        handover = vipctl_json(
            &lb1.socket,
            &["vrrp", "handover", "vi", "--back", "--timeout", "5"],
        )
        .expect("handover --back");
    });
    println!("handover --back: {handover:?}");
    // lb1's gratuitous ARPs reached lb2 and got no answer: an answer from
    // the virtual MAC would pull the VIP's traffic back to lb2. They are
    // ignored, not dropped.
    let stats: reply::Stats = lb2.call(Command::Stats {}).expect("stats");
    assert!(
        stats
            .ignored
            .get("arp_announcement")
            .is_some_and(|n| *n > 0),
        "{stats:?}"
    );
    assert!(!stats.drops.contains_key("arp_announcement"), "{stats:?}");
    assert!(handover.peer_took_over, "{handover:?}");
    let back = handover.back.as_ref();
    assert!(back.is_some_and(|b| b.master_again), "{handover:?}");
    assert!(back.and_then(|b| b.after_ms).is_some_and(|t| t > 0.0));
    assert!(!handover.held);
    assert_eq!(state(&lb1), "master");
    wait_state(&lab, &lb2, "backup", Duration::from_secs(3));
    assert!(!instance(&lb1).held);
    assert_gap("operator handover and back", &gap, 150);
}
