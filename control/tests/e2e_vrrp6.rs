//! End to end: vipd's VRRPv3 over IPv6 (RFC 5798) against keepalived and
//! against itself, in a two-node namespace lab with IPv6 turned on for the
//! client segment. Takeover is measured on the wire: a sniffer on the
//! client times the old master's last advert and the new master's first
//! one. At 100 ms adverts that is the master-down interval, held to the
//! 400 ms the IPv4 tests allow. An IPv6 service on the instance's VIP
//! serves through whichever node is master. Run with `--nocapture` to see
//! the figures.

mod common;

use std::time::Duration;

use common::vrrp::{lab2, lab2_alone, lab2_dual_stack, signal, VrrpLab, VRID};
use common::vrrp6::*;
use common::{
    client_neighbour, http_check, node_config, scrape_metrics, socket_path, vipctl_run,
    ServiceConf, Vipd, SERVICE_PORT,
};

/// Takeover bound at 100 ms adverts, as in e2e_vrrp.rs.
const LIMIT_MS: u64 = 400;
/// Metrics listener of a vipd node (each in its own namespace).
const METRICS: &str = "127.0.0.1:9100";

fn keys(priority: u8) -> String {
    format!("version = 3\nadvert_interval_ms = 100\npriority = {priority}\n")
}

fn lab6(tag: &str, alone: bool) -> VrrpLab {
    let lab = if alone { lab2_alone(tag) } else { lab2(tag) };
    ipv6_on(&lab);
    lab
}

fn ll(lab: &VrrpLab, role: &str) -> std::net::Ipv6Addr {
    link_local(lab, role).unwrap_or_else(|| panic!("{role} has no link-local address"))
}

/// A takeover by vipd shows on the client as an unsolicited Neighbor
/// Advertisement for the VIP at the IPv6 virtual MAC.
fn assert_na(lab: &VrrpLab, nas: &viplab::LabProcess) {
    lab.wait_until(
        "an unsolicited NA for the VIP from the virtual MAC",
        Duration::from_secs(3),
        || saw_vip_na(nas),
    )
    .unwrap_or_else(|e| panic!("{e}:\n{}", nas.log()));
}

/// vipd (250, lb1) over keepalived (200, lb2): one master; keepalived takes
/// over when vipd's link goes down and when vipd is killed.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn vipd_master_over_keepalived_v6() {
    let lab = lab6("ka6", true);
    let (ll1, ll2) = (ll(&lab, "lb1"), ll(&lab, "lb2"));
    let ka = Keepalived6::start(&lab, 2, 200);
    let nas = sniff_nas(&lab);
    let mut vipd = start_vipd6(&lab, 1, &keys(250));
    wait_state6(&lab, &vipd, "master", Duration::from_secs(5));
    lab.wait_until("keepalived stays backup", Duration::from_secs(3), || {
        !ka.holds_vip(&lab)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));
    assert_na(&lab, &nas);
    let inst = instance6(&vipd);
    assert_eq!(
        (
            inst.family.as_str(),
            inst.vips.as_slice(),
            inst.address.as_str()
        ),
        ("IPv6", &[VIP6.to_string()][..], ll1.to_string().as_str()),
        "{inst:?}"
    );

    let adverts = sniff_adverts(&lab);
    std::thread::sleep(Duration::from_millis(300));
    lab.link_down("lb1", "eth0").expect("link down");
    let link = assert_takeover(
        &lab,
        &adverts,
        "keepalived after vipd's link down",
        (ll1, ll2),
        LIMIT_MS,
    );
    lab.wait_until("keepalived holds the VIP", Duration::from_secs(3), || {
        ka.holds_vip(&lab)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));
    wait_state6(&lab, &vipd, "fault", Duration::from_secs(3));

    lab.link_up("lb1", "eth0").expect("link up");
    wait_state6(&lab, &vipd, "master", Duration::from_secs(5));
    lab.wait_until("keepalived backs off", Duration::from_secs(3), || {
        !ka.holds_vip(&lab)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));

    let adverts = sniff_adverts(&lab);
    std::thread::sleep(Duration::from_millis(300));
    signal(&vipd, libc::SIGKILL);
    let kill = assert_takeover(
        &lab,
        &adverts,
        "keepalived after vipd's SIGKILL",
        (ll1, ll2),
        LIMIT_MS,
    );
    vipd.process.take();
    println!("keepalived takes over from vipd: link down {link} ms, SIGKILL {kill} ms");
}

/// keepalived (250, lb1) over vipd (200, lb2): vipd stays backup and takes
/// over, announcing the VIP, when keepalived's link goes down and when it
/// is killed.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn vipd_backup_to_keepalived_v6() {
    let lab = lab6("kab6", true);
    let (ll1, ll2) = (ll(&lab, "lb1"), ll(&lab, "lb2"));
    let mut ka = Keepalived6::start(&lab, 1, 250);
    lab.wait_until("keepalived is master", Duration::from_secs(5), || {
        ka.holds_vip(&lab)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", ka.log()));
    let vipd = start_vipd6(&lab, 2, &keys(200));
    wait_state6(&lab, &vipd, "backup", Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(instance6(&vipd).state, "backup", "{}", vipd.log());
    assert_eq!(instance6(&vipd).counters.became_master, 0);

    let adverts = sniff_adverts(&lab);
    let nas = sniff_nas(&lab);
    std::thread::sleep(Duration::from_millis(300));
    lab.link_down("lb1", "eth0").expect("link down");
    let link = assert_takeover(
        &lab,
        &adverts,
        "vipd after keepalived's link down",
        (ll1, ll2),
        LIMIT_MS,
    );
    wait_state6(&lab, &vipd, "master", Duration::from_secs(1));
    assert_na(&lab, &nas);

    lab.link_up("lb1", "eth0").expect("link up");
    wait_state6(&lab, &vipd, "backup", Duration::from_secs(5));

    let adverts = sniff_adverts(&lab);
    std::thread::sleep(Duration::from_millis(300));
    ka.kill_hard(&lab);
    let kill = assert_takeover(
        &lab,
        &adverts,
        "vipd after keepalived's SIGKILL",
        (ll1, ll2),
        LIMIT_MS,
    );
    wait_state6(&lab, &vipd, "master", Duration::from_secs(1));
    println!("vipd takes over from keepalived: link down {link} ms, SIGKILL {kill} ms");
}

/// Two vipd nodes (250 and 200): lb2 takes over on lb1's link down and on
/// its SIGKILL, and the client sees the NA for the VIP each time.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn two_vipd_nodes_failover_v6() {
    let lab = lab6("vv6", true);
    let (ll1, ll2) = (ll(&lab, "lb1"), ll(&lab, "lb2"));
    let mut lb1 = start_vipd6(&lab, 1, &keys(250));
    let lb2 = start_vipd6(&lab, 2, &keys(200));
    wait_state6(&lab, &lb1, "master", Duration::from_secs(5));
    wait_state6(&lab, &lb2, "backup", Duration::from_secs(5));

    for role in ["lb1", "lb2"] {
        let fdb = lab
            .exec_ok(role, &["bridge", "fdb", "show", "dev", "eth0"])
            .expect("bridge fdb");
        assert!(
            fdb.contains(VMAC6),
            "{role}: IPv6 virtual MAC not in eth0's filter:\n{fdb}"
        );
    }
    let adverts = sniff_adverts(&lab);
    let nas = sniff_nas(&lab);
    std::thread::sleep(Duration::from_millis(300));
    let sent = common::vrrp6::adverts(&adverts);
    assert!(
        !sent.is_empty()
            && sent
                .iter()
                .all(|a| a.src == ll1.to_string() && a.mac == VMAC6),
        "adverts not all from lb1's link-local address and the virtual MAC:\n{}",
        adverts.log()
    );
    lab.link_down("lb1", "eth0").expect("link down");
    let link = assert_takeover(
        &lab,
        &adverts,
        "vipd lb2 after lb1's link down",
        (ll1, ll2),
        LIMIT_MS,
    );
    wait_state6(&lab, &lb2, "master", Duration::from_secs(1));
    assert_na(&lab, &nas);
    lab.link_up("lb1", "eth0").expect("link up");
    wait_state6(&lab, &lb1, "master", Duration::from_secs(5));
    wait_state6(&lab, &lb2, "backup", Duration::from_secs(5));

    let adverts = sniff_adverts(&lab);
    let nas = sniff_nas(&lab);
    std::thread::sleep(Duration::from_millis(300));
    signal(&lb1, libc::SIGKILL);
    let kill = assert_takeover(
        &lab,
        &adverts,
        "vipd lb2 after lb1's SIGKILL",
        (ll1, ll2),
        LIMIT_MS,
    );
    lb1.process.take();
    wait_state6(&lab, &lb2, "master", Duration::from_secs(1));
    assert_na(&lab, &nas);
    println!("vipd takes over from vipd: link down {link} ms, SIGKILL {kill} ms");
}

/// Adverts with hop limit 254, from a global address, with a bad checksum
/// and VRRPv2 over IPv6, all at priority 254, are counted by reason on both
/// nodes and change no state.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn hostile_ipv6_adverts_are_counted() {
    let lab = lab6("host6", false);
    let conf = vipd6_config(&lab, 1, &keys(150)).replace(
        "[control]\n",
        &format!("[control]\nmetrics = \"{METRICS}\"\n"),
    );
    let lb1 = Vipd::start(&lab, "lb1", &conf).expect("vipd starts");
    let lb2 = start_vipd6(&lab, 2, &keys(100));
    wait_state6(&lab, &lb1, "master", Duration::from_secs(5));
    wait_state6(&lab, &lb2, "backup", Duration::from_secs(5));
    let before: Vec<_> = [&lb1, &lb2].iter().map(|v| instance6(v)).collect();
    for kind in ["hop254", "global", "checksum", "v2"] {
        hostile6(&lab, kind, 5);
    }
    let counted = |v: &Vipd, b: &ctlproto::reply::VrrpInstance| {
        let c = instance6(v).counters;
        [
            c.ttl_errors - b.counters.ttl_errors,
            c.source_errors - b.counters.source_errors,
            c.checksum_errors - b.counters.checksum_errors,
            c.v2_over_ipv6 - b.counters.v2_over_ipv6,
        ]
    };
    for (v, b) in [&lb1, &lb2].into_iter().zip(&before) {
        lab.wait_until(
            "the hostile adverts are counted",
            Duration::from_secs(3),
            || counted(v, b) == [5, 5, 5, 5],
        )
        .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", instance6(v), v.log()));
        let now = instance6(v);
        assert_eq!(now.state, b.state, "{now:?}");
        assert_eq!(
            now.counters.became_master, b.counters.became_master,
            "{now:?}"
        );
    }
    let m = scrape_metrics(&lab, "lb1", METRICS);
    for (reason, want) in [
        ("ttl", 5.0),
        ("source", 5.0),
        ("checksum", 5.0),
        ("v2_over_ipv6", 5.0),
        ("family", 0.0),
        ("destination", 0.0),
        ("length", 0.0),
    ] {
        let series =
            format!("vipd_vrrp_adverts_rejected_total{{instance=\"vi6\",reason=\"{reason}\"}}");
        assert_eq!(m.get(&series), Some(&want), "{series}: {m:?}");
    }
    let (ok, out, err) = vipctl_run(&socket_path(&lab, "lb1"), &["vrrp"]);
    assert!(ok, "vipctl vrrp: {err}");
    for want in [
        "ipv6",
        VIP6,
        "ttl 5",
        "source 5",
        "checksum 5",
        "v2-over-ipv6 5",
    ] {
        assert!(out.contains(want), "vipctl vrrp lacks {want:?}:\n{out}");
    }
}

/// Two vipd nodes advertising to each other's link-local address instead
/// of ff02::12: the backup hears the master and takes over when its link
/// goes down.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn unicast_link_local_peers_v6() {
    let lab = lab6("uni6", false);
    let (ll1, ll2) = (ll(&lab, "lb1"), ll(&lab, "lb2"));
    let peer = |ll: std::net::Ipv6Addr| format!("unicast_peers = [\"{ll}\"]\n");
    let lb1 = start_vipd6(&lab, 1, &(keys(250) + &peer(ll2)));
    let lb2 = start_vipd6(&lab, 2, &(keys(200) + &peer(ll1)));
    wait_state6(&lab, &lb1, "master", Duration::from_secs(5));
    wait_state6(&lab, &lb2, "backup", Duration::from_secs(5));
    lab.wait_until(
        "the backup hears the master",
        Duration::from_secs(3),
        || instance6(&lb2).counters.adverts_received > 10,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", instance6(&lb2), lb2.log()));
    let c = instance6(&lb2).counters;
    assert_eq!(
        (c.unknown_peer, c.destination_errors, c.became_master),
        (0, 0, 0),
        "{c:?}"
    );
    lab.link_down("lb1", "eth0").expect("link down");
    wait_state6(&lab, &lb2, "master", Duration::from_secs(2));
}

/// An IPv6 instance on an interface without a link-local address (IPv6
/// off, as the lab leaves it): vipd refuses to start and names the
/// interface.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn no_link_local_address_is_named() {
    let lab = lab2("nolla6");
    let path = lab.dir().join("lb1.toml");
    std::fs::write(&path, vipd6_config(&lab, 1, &keys(150))).expect("config");
    let out = lab
        .exec(
            "lb1",
            &[
                env!("CARGO_BIN_EXE_vipd"),
                "--config",
                path.to_str().expect("lab paths are UTF-8"),
            ],
        )
        .expect("vipd runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "vipd started: {err}");
    assert!(
        err.contains("VRRP instance vi6")
            && err.contains("interface eth0 has no IPv6 link-local address"),
        "{err}"
    );
}

/// An IPv6 full-NAT service on the instance's VIP serves through the
/// master: the client resolves the VIP to the IPv6 virtual MAC, the backup
/// counts the solicitations it leaves unanswered, and after the master is
/// killed new connections go through the new one.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn ipv6_service_serves_through_the_master_and_after_takeover() {
    let lab = lab2_dual_stack("svc6");
    let vip = viplab::vip6(5);
    let config = |k: usize, priority: u8| {
        let service = ServiceConf {
            vip: vip.into(),
            port: SERVICE_PORT,
            scheduler: "rr",
            forward: "fullnat",
            weights: vec![1, 1],
            check: http_check(200, 1, 2),
            extra: "snat = [\"2001:db8:77:1::200\"]".into(),
        };
        format!(
            "{}[[vrrp]]\nname = \"vi6\"\ninterface = \"eth0\"\nvrid = {VRID}\nvips = [\"{vip}\"]\n{}\n",
            node_config(&lab, &format!("lb{k}"), 1, "", &[service]),
            keys(priority)
        )
    };
    let mut lb1 = Vipd::start(&lab, "lb1", &config(1, 250)).expect("vipd lb1");
    let lb2 = Vipd::start(&lab, "lb2", &config(2, 200)).expect("vipd lb2");
    wait_state6(&lab, &lb1, "master", Duration::from_secs(5));
    wait_state6(&lab, &lb2, "backup", Duration::from_secs(5));
    for node in [&lb1, &lb2] {
        lab.wait_until("both backends healthy", Duration::from_secs(20), || {
            node.healthy_backends() == 2
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", node.log()));
    }
    let addr = std::net::SocketAddr::new(vip.into(), SERVICE_PORT);
    let burst = |when: &str, node: &Vipd| {
        let report = lab.http_burst("client", addr, 200, 4).expect("burst");
        assert_eq!(
            report.failed,
            0,
            "{when}: {:?}\n{:?}\n{}",
            report.errors,
            node.stats(),
            node.log()
        );
        assert_eq!(report.by_body.len(), 2, "{when}: {:?}", report.by_body);
    };
    burst("through lb1", &lb1);
    assert_eq!(
        client_neighbour(&lab, vip).as_deref(),
        Some(VMAC6),
        "the client's neighbour entry for the VIP"
    );
    lab.wait_until(
        "the backup counts the solicitations it leaves to the master",
        Duration::from_secs(5),
        || lb2.drops("nd_not_owned") > 0,
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", lb2.stats()));

    signal(&lb1, libc::SIGKILL);
    lb1.process.take();
    wait_state6(&lab, &lb2, "master", Duration::from_secs(2));
    // New connections through lb2 reuse none of lb1's full-NAT ports,
    // which the backends still hold in TIME_WAIT.
    burst("through lb2 after lb1's SIGKILL", &lb2);
    assert_eq!(client_neighbour(&lab, vip).as_deref(), Some(VMAC6));
}
