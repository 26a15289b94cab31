//! End-to-end tests of the lab itself. They create network namespaces, so
//! they run as root (as CI does).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;
use viplab::{BurstReport, Gateway, Lab, LabSpec, Side};

const T: Duration = Duration::from_secs(3);

fn spec(test: &str) -> LabSpec {
    LabSpec {
        name: viplab::unique_name(test),
        ..LabSpec::default()
    }
}

fn netns_list() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(out.status.success(), "ip netns list failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn namespaces_of(name: &str) -> Vec<String> {
    let prefix = format!("vl-{name}-");
    netns_list()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Pids of processes with `name` as one of their arguments (the lab's HTTP
/// servers carry the lab name in their command line).
fn processes_of(name: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|arg| arg == name.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn client_reaches_backends_and_drop_removes_everything() {
    let lab = Lab::up(spec("reach")).unwrap();
    let name = lab.name().to_string();
    for i in 1..=2 {
        let body = lab.http_get("client", lab.backend_addr(i), T).unwrap();
        assert_eq!(body, format!("{}\n", lab.backend_name(i)));
    }
    // The backend sees the client's own address when talking via the router.
    let peer = lab
        .http_get_path("client", lab.backend_addr(2), "/peer", T)
        .unwrap();
    assert!(
        peer.starts_with(&format!("be2 {}:", lab.client_ip())),
        "{peer:?}"
    );

    let listed = netns_list();
    let expected = ["sw", "client", "lb1", "be1", "be2"].map(|r| lab.ns(r));
    for ns in &expected {
        assert!(listed.contains(ns), "{ns} missing from {listed:?}");
    }
    assert_eq!(lab.namespaces().len(), expected.len());
    assert_eq!(processes_of(&name).len(), 2, "one server per backend");
    let dir = lab.dir().to_path_buf();
    assert!(dir.is_dir());

    drop(lab);
    assert_eq!(namespaces_of(&name), Vec::<String>::new());
    assert_eq!(processes_of(&name), Vec::<u32>::new());
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn stopped_backend_refuses_and_restarts() {
    let lab = Lab::up(spec("stop")).unwrap();
    lab.stop_backend(1).unwrap();
    let err = lab.http_get("client", lab.backend_addr(1), T).unwrap_err();
    assert!(
        format!("{err:#}").contains("Connection refused")
            || format!("{err:#}").contains("Couldn't connect"),
        "{err:#}"
    );
    assert_eq!(
        lab.http_get("client", lab.backend_addr(2), T).unwrap(),
        "be2\n"
    );
    lab.start_backend(1).unwrap();
    assert_eq!(
        lab.http_get("client", lab.backend_addr(1), T).unwrap(),
        "be1\n"
    );
    assert!(lab.stop_backend(3).is_err());
    assert!(lab.start_backend(0).is_err());
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn burst_accounts_for_every_request() {
    let lab = Lab::up(LabSpec {
        sorry_server: true,
        ..spec("burst")
    })
    .unwrap();
    let report = lab
        .http_burst("client", lab.backend_addr(2), 300, 16)
        .unwrap();
    assert_eq!(
        report,
        BurstReport {
            ok: 300,
            failed: 0,
            by_body: BTreeMap::from([("be2".to_string(), 300)]),
            errors: BTreeMap::new(),
        }
    );

    let sorry = lab.http_burst("client", lab.sorry_addr(), 20, 4).unwrap();
    assert_eq!(sorry.by_body.get("sorry"), Some(&20));

    lab.stop_backend(1).unwrap();
    let refused = lab
        .http_burst("client", lab.backend_addr(1), 50, 8)
        .unwrap();
    assert_eq!((refused.ok, refused.failed), (0, 50));
    assert_eq!(refused.errors.get("ECONNREFUSED"), Some(&50));
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn concurrent_labs_do_not_interfere() {
    let a = std::thread::spawn(|| Lab::up(spec("para")).unwrap());
    let b = std::thread::spawn(|| {
        Lab::up(LabSpec {
            backends: 3,
            ..spec("parb")
        })
        .unwrap()
    });
    let a = a.join().unwrap();
    let b = b.join().unwrap();
    assert_ne!(a.name(), b.name());

    // Same addresses, different namespaces: stopping a's be1 leaves b's alone.
    assert_eq!(a.backend_addr(1), b.backend_addr(1));
    a.stop_backend(1).unwrap();
    assert!(a.http_get("client", a.backend_addr(1), T).is_err());
    assert_eq!(b.http_get("client", b.backend_addr(1), T).unwrap(), "be1\n");
    assert_eq!(b.http_get("client", b.backend_addr(3), T).unwrap(), "be3\n");

    let a_name = a.name().to_string();
    drop(a);
    assert!(namespaces_of(&a_name).is_empty());
    assert_eq!(namespaces_of(b.name()).len(), 6);
    assert_eq!(b.http_get("client", b.backend_addr(2), T).unwrap(), "be2\n");
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn down_all_removes_a_forgotten_lab() {
    let lab = Lab::up(spec("forgot")).unwrap();
    let name = lab.name().to_string();
    lab.persist();
    assert_eq!(namespaces_of(&name).len(), 5);
    assert_eq!(
        processes_of(&name).len(),
        2,
        "servers outlive a persisted lab"
    );

    assert_eq!(viplab::down_all(Some(&name)).unwrap(), 1);
    assert!(namespaces_of(&name).is_empty());
    let gone = || processes_of(&name).is_empty();
    // Detached servers are killed but nobody waits for them here: wait until
    // they have exited (a zombie has an empty command line).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gone() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(), "servers of {name} survived down_all");
    assert_eq!(viplab::down_all(Some(&name)).unwrap(), 0);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn panic_in_a_test_still_tears_down() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let lab = Lab::up(spec("panic")).unwrap();
        tx.send(lab.name().to_string()).unwrap();
        panic!("deliberate panic with lab {} up", lab.name());
    })
    .join();
    assert!(outcome.is_err());
    let name = rx.recv().unwrap();
    assert!(namespaces_of(&name).is_empty());
    assert!(processes_of(&name).is_empty());
    // The logs are kept for the failed test; down removes them.
    assert!(viplab::down(&name).unwrap());
    assert!(!viplab::down(&name).unwrap());
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn failed_build_leaves_nothing_and_says_why() {
    let name = viplab::unique_name("fail");
    let vip = viplab::vip(1);
    // The second address of the same VIP fails once namespaces exist.
    let err = Lab::up(LabSpec {
        name: name.clone(),
        dr_vips: vec![vip, vip],
        ..LabSpec::default()
    })
    .err()
    .expect("a duplicate VIP must fail the build");
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("addr add {vip}/32 dev lo")), "{msg}");
    assert!(msg.contains(&name), "{msg}");
    assert!(namespaces_of(&name).is_empty());
    assert!(processes_of(&name).is_empty());

    let first = Lab::up(LabSpec {
        name: name.clone(),
        ..LabSpec::default()
    })
    .unwrap();
    let dup = Lab::up(LabSpec {
        name: name.clone(),
        ..LabSpec::default()
    })
    .err()
    .expect("a second lab with the same name must be refused");
    assert!(format!("{dup:#}").contains("already exists"), "{dup:#}");
    assert_eq!(
        first.http_get("client", first.backend_addr(1), T).unwrap(),
        "be1\n"
    );
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn node_settings_match_the_spec() {
    let vip = viplab::vip(7);
    let lab = Lab::up(LabSpec {
        lb_nodes: 2,
        backends: 1,
        queues: 2,
        dr_vips: vec![vip],
        backend_gateway: Gateway::Lb(2),
        extra_backend_ports: vec![80],
        ..spec("settings")
    })
    .unwrap();
    let sh = |role: &str, cmd: &str| lab.exec_ok(role, &["sh", "-c", cmd]).unwrap();

    let queues = sh("lb2", "ls /sys/class/net/eth1/queues");
    assert_eq!(
        queues.split_whitespace().collect::<Vec<_>>(),
        ["rx-0", "rx-1", "tx-0", "tx-1"]
    );
    // lb2 is the backends' gateway: it routes; lb1 must not.
    assert_eq!(sh("lb1", "cat /proc/sys/net/ipv4/ip_forward").trim(), "0");
    assert_eq!(sh("lb2", "cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    assert_eq!(sh("sw", "cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
    let client_route = sh("client", "ip route get 10.77.1.101");
    assert!(
        client_route.contains(&format!("via {}", lab.lb_ip(2, Side::Client))),
        "{client_route}"
    );
    assert!(sh("sw", "ethtool -k lb1c").contains("generic-receive-offload: on"));
    // Senders keep the kernel's default offloads.
    for (role, ifname) in [("be1", "eth0"), ("client", "eth0"), ("sw", "lb1c")] {
        let features = sh(role, &format!("ethtool -k {ifname}"));
        for on in ["tx-checksumming: on", "tcp-segmentation-offload: on"] {
            assert!(
                features.contains(on),
                "{role} {ifname}: no {on:?}\n{features}"
            );
        }
    }

    let route = sh("be1", "ip route show default");
    assert!(
        route.contains(&format!("via {}", lab.lb_ip(2, Side::Backend))),
        "{route}"
    );
    assert!(sh("be1", "ip addr show dev lo").contains(&format!("{vip}/32")));
    assert_eq!(
        sh("be1", "cat /proc/sys/net/ipv4/conf/eth0/arp_ignore").trim(),
        "1"
    );
    assert_eq!(
        sh("be1", "cat /proc/sys/net/ipv4/conf/eth0/arp_announce").trim(),
        "2"
    );
    // The extra port is served by the same process, on the DR VIP as well.
    assert_eq!(
        sh("be1", &format!("curl -s --noproxy '*' http://{vip}:80/")),
        "be1\n"
    );
    // Nothing of the lab exists in the root namespace.
    let root_links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let root_links = String::from_utf8_lossy(&root_links.stdout);
    assert!(!root_links.contains("lb1c"), "{root_links}");
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn enter_moves_the_thread_into_the_namespace() {
    let lab = std::sync::Arc::new(Lab::up(spec("enter")).unwrap());
    let inside = lab.clone();
    let body = std::thread::spawn(move || {
        inside.enter("client").unwrap();
        let mut s = TcpStream::connect_timeout(&inside.backend_addr(1).into(), T).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        s.write_all(b"GET /peer HTTP/1.0\r\n\r\n").unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        response
    })
    .join()
    .unwrap();
    // The server saw the client's address: the connection came from inside.
    assert!(
        body.contains(&format!("\r\n\r\nbe1 {}:", lab.client_ip())),
        "{body:?}"
    );
    assert!(lab.enter("nosuchrole").is_err());
    let err = lab
        .wait_until("the impossible", Duration::from_millis(50), || false)
        .expect_err("wait_until must time out");
    assert!(format!("{err}").contains("the impossible"), "{err}");
    let mut polls = 0;
    lab.wait_until("three polls", T, || {
        polls += 1;
        polls == 3
    })
    .unwrap();
    assert_eq!(polls, 3);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn spawned_process_group_dies_with_its_handle() {
    let lab = Lab::up(LabSpec {
        backends: 1,
        ..spec("spawn")
    })
    .unwrap();
    // A distinctive duration marks the grandchild so it can be found.
    let marker = "7301.5";
    let mut proc = lab
        .spawn(
            "lb1",
            &["sh", "-c", &format!("sleep {marker} & echo started; wait")],
        )
        .unwrap();
    lab.wait_until("spawned shell to print", T, || {
        proc.log().contains("started")
    })
    .unwrap();
    assert!(proc.is_running());
    assert!(proc.what().contains(&lab.ns("lb1")), "{}", proc.what());
    let netns = |pid: u32| {
        std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let lb1 = std::fs::metadata(format!("/run/netns/{}", lab.ns("lb1")))
        .unwrap()
        .ino();
    let sleepers = processes_of(marker);
    assert_eq!(sleepers.len(), 1);
    assert_eq!(netns(proc.pid()), format!("net:[{lb1}]"));
    assert_eq!(netns(sleepers[0]), format!("net:[{lb1}]"));
    drop(proc);
    lab.wait_until("the grandchild to die", T, || {
        processes_of(marker).is_empty()
    })
    .unwrap();
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn link_down_cuts_a_backend_off_until_link_up() {
    let lab = Lab::up(spec("link")).unwrap();
    lab.link_down("be2", "eth0").unwrap();
    assert!(lab
        .http_get("client", lab.backend_addr(2), Duration::from_millis(500))
        .is_err());
    lab.link_up("be2", "eth0").unwrap();
    lab.wait_until("be2 to answer again", T, || {
        lab.http_get("client", lab.backend_addr(2), Duration::from_millis(500))
            .is_ok()
    })
    .unwrap();
    assert!(lab.link_down("be2", "nosuchif").is_err());
}
