//! End to end: vipd's BGP speaker against real routers. Two sites announce
//! the same VIP's prefix to a BIRD router with different lengths (site A
//! 10.0.0.0/25, site B 10.0.0.0/24); the router's kernel sends client
//! traffic to the longest prefix. Each failure of site A moves the traffic to
//! site B, and the client-side gap is measured. A second test peers with
//! GoBGP and feeds vipd broken messages from a scripted peer.

mod common;

use ctlproto::reply;
use std::cell::RefCell;
use std::time::Duration;

use anyhow::Result;
use common::two_sites::*;
use common::*;
use viplab::{Site, TwoSiteLab};

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn two_sites_fail_over_by_longest_prefix_through_bird() {
    let lab = TwoSiteLab::up(&viplab::unique_name("bgpsites"), PORT).expect("two-site lab");
    let _bird = lab.start_bird(&bird_config()).expect("BIRD starts");
    let conf_a = site_config(&lab, Site::A, &site_a_bgp(true)).replace(
        "[control]\n",
        &format!("[control]\nmetrics = \"{METRICS}\"\n"),
    );
    let conf_b = site_config(&lab, Site::B, &site_b_bgp());
    let a = RefCell::new(Vipd::start(&lab, "sitea", &conf_a).expect("vipd on site A"));
    let b = Vipd::start(&lab, "siteb", &conf_b).expect("vipd on site B");

    // Both sessions up: eBGP (MD5 + GTSM) to A, iBGP to B, 4-octet ASes.
    lab.wait_until(
        "BIRD Established with both sites",
        Duration::from_secs(20),
        || established(&lab, "sitea") && established(&lab, "siteb"),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}\nsite A log:\n{}\nsite B log:\n{}",
            lab.birdc(&["show", "protocols", "all"]).unwrap_or_default(),
            a.borrow().log(),
            b.log()
        )
    });
    lab.wait_until(
        "both prefixes in the router's kernel table",
        Duration::from_secs(10),
        || {
            lab.kernel_next_hop("10.0.0.0/25") == Some(Site::A.uplink_ip())
                && lab.kernel_next_hop("10.0.0.0/24") == Some(Site::B.uplink_ip())
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            lab.birdc(&["show", "route", "all"]).unwrap_or_default()
        )
    });

    // Attributes as configured, as BIRD decoded them.
    let ra = lab
        .birdc(&["show", "route", "all", "10.0.0.0/25"])
        .expect("birdc");
    let path = format!("BGP.as_path: {SITE_A_AS} {SITE_A_AS} {SITE_A_AS}");
    for want in [
        path.as_str(),
        "BGP.med: 50",
        "BGP.community: (65001,100)",
        "BGP.next_hop: 172.16.1.2",
    ] {
        assert!(ra.contains(want), "site A's route lacks `{want}`:\n{ra}");
    }
    assert!(
        ra.contains(&format!("BGP.large_community: ({SITE_A_AS}, 1, 2)")),
        "site A's route lacks its large community:\n{ra}"
    );
    let rb = lab
        .birdc(&["show", "route", "all", "10.0.0.0/24"])
        .expect("birdc");
    for want in [
        "BGP.local_pref: 200",
        "BGP.community: (65002,100)",
        "BGP.next_hop: 172.16.2.2",
    ] {
        assert!(rb.contains(want), "site B's route lacks `{want}`:\n{rb}");
    }
    assert!(
        rb.lines().any(|l| l.trim() == "BGP.as_path:"),
        "an iBGP route must carry an empty AS path:\n{rb}"
    );

    // The control socket shows the session, what was received and announced.
    let st = bgp_status(&a.borrow());
    let peer = st
        .peers
        .first()
        .unwrap_or_else(|| panic!("no peer: {st:?}"));
    assert_eq!(peer.state, "Established", "{st:?}");
    assert_eq!(
        peer.received, 1,
        "BIRD exports one static route to site A: {st:?}"
    );
    assert_eq!(peer.advertised, ["10.0.0.0/25"], "{st:?}");
    assert_eq!(st.announced, ["10.0.0.0/25"], "{st:?}");
    assert_eq!(st.local_as, SITE_A_AS, "{st:?}");

    // The metrics agree with the control socket.
    let m = scrape_metrics(&lab, "sitea", METRICS);
    let series = |name: &str, labels: &str| {
        let key = format!("{name}{{{labels}}}");
        *m.get(&key)
            .unwrap_or_else(|| panic!("no series {key} in /metrics: {m:?}"))
    };
    let peer_l = format!("peer=\"{}\"", peer.address);
    assert_eq!(series("vipd_bgp_session_established", &peer_l), 1.0);
    assert_eq!(
        series(
            "vipd_bgp_session_state",
            &format!("{peer_l},state=\"Established\"")
        ),
        1.0
    );
    assert_eq!(
        series("vipd_bgp_prefixes_received", &peer_l),
        peer.received as f64
    );
    assert_eq!(series("vipd_bgp_prefixes_announced", &peer_l), 1.0);
    assert_eq!(
        series("vipd_bgp_prefix_withdrawn", "prefix=\"10.0.0.0/25\""),
        0.0
    );

    let prober = vip_prober(&lab, VIP.into());
    let drill = Drill {
        lab: &lab,
        prober: &prober,
    };

    // Maintenance: the operator withdraws the /25 and traffic moves to B.
    let sock = a.borrow().socket.clone();
    let err = vipctl_json::<reply::BgpOverride>(&sock, &["bgp", "withdraw", "10.9.0.0/24"])
        .expect_err("unknown prefix");
    assert!(err.contains("configured: 10.0.0.0/25"), "{err}");
    let maintenance = drill
        .run(
            "the operator withdrawing site A's /25",
            || {
                let r: reply::BgpOverride = vipctl_json(&sock, &["bgp", "withdraw", "10.0.0.0/25"])
                    .map_err(anyhow::Error::msg)?;
                anyhow::ensure!(r.changed, "withdraw changed nothing: {r:?}");
                lab.wait_until(
                    "the /25 gone from the router",
                    Duration::from_secs(2),
                    || lab.kernel_next_hop("10.0.0.0/25").is_none(),
                )
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{e}\nBIRD: {}\nsite A: {}",
                        lab.birdc(&["show", "route", "all"]).unwrap_or_default(),
                        a.borrow().log()
                    )
                })?;
                let st = bgp_status(&a.borrow());
                anyhow::ensure!(st.withdrawn == ["10.0.0.0/25"], "{st:?}");
                anyhow::ensure!(st.announced.is_empty(), "{st:?}");
                let m = scrape_metrics(&lab, "sitea", METRICS);
                anyhow::ensure!(
                    m.get("vipd_bgp_prefix_withdrawn{prefix=\"10.0.0.0/25\"}") == Some(&1.0),
                    "withdrawn prefix not in /metrics: {m:?}"
                );
                Ok(())
            },
            || {
                let r: reply::BgpOverride = vipctl_json(&sock, &["bgp", "announce", "10.0.0.0/25"])
                    .map_err(anyhow::Error::msg)?;
                anyhow::ensure!(r.changed, "announce changed nothing: {r:?}");
                lab.wait_until("the /25 back in the kernel", Duration::from_secs(5), || {
                    lab.kernel_next_hop("10.0.0.0/25") == Some(Site::A.uplink_ip())
                })
            },
        )
        .expect("maintenance withdrawal drill");
    assert!(bgp_status(&a.borrow()).withdrawn.is_empty());

    let health = drill
        .run_backends_down("all of site A's backends failing their checks")
        .expect("health drill");

    let clean = drill
        .run(
            "site A's vipd stopped with SIGTERM",
            || a.borrow_mut().terminate(&lab),
            || {
                *a.borrow_mut() = Vipd::start(&lab, "sitea", &conf_a)?;
                Ok(())
            },
        )
        .expect("clean stop drill");
    assert!(
        lab.birdc(&["show", "protocols", "all", "sitea"])
            .is_ok_and(|o| o.contains("is shutting down")),
        "BIRD should have logged vipd's shutdown communication"
    );

    let uplink = drill
        .run(
            "site A's uplink going down",
            || lab.uplink_down(Site::A),
            || lab.uplink_up(Site::A),
        )
        .expect("uplink drill");

    // The kernel closes a killed process's sockets, so the router hears of
    // it at once; the hold timer is only the bound.
    let kill = drill
        .run(
            "site A's vipd killed with SIGKILL",
            || {
                let pid = a.borrow().process.as_ref().map_or(0, |p| p.pid());
                let pid = i32::try_from(pid)?;
                // SAFETY: signalling a child we spawned and have not reaped.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                Ok(())
            },
            || {
                lab.wait_until("killed vipd reaped", Duration::from_secs(5), || {
                    !a.borrow_mut().is_running()
                })?;
                *a.borrow_mut() = Vipd::start(&lab, "sitea", &conf_a)?;
                Ok(())
            },
        )
        .expect("hard kill drill");

    // A frozen node keeps its TCP connection open: only the router's hold
    // timer notices it.
    let signal = |sig: i32| -> Result<()> {
        let pid = i32::try_from(a.borrow().process.as_ref().map_or(0, |p| p.pid()))?;
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(pid, sig) };
        Ok(())
    };
    let frozen = drill
        .run(
            "site A's vipd frozen with SIGSTOP",
            || signal(libc::SIGSTOP),
            || signal(libc::SIGCONT),
        )
        .expect("frozen node drill");

    println!(
        "convergence (client gap): operator withdrawal {maintenance} ms, health {health} ms, SIGTERM {clean} ms, uplink down {uplink} ms, SIGKILL {kill} ms, SIGSTOP {frozen} ms (hold time {HOLD_S} s)"
    );
    assert!(
        maintenance <= 1000,
        "operator withdrawal took {maintenance} ms to move traffic, over 1 s"
    );
    assert!(health <= 1000, "health failover took {health} ms, over 1 s");
    assert!(
        clean <= 1000,
        "clean-stop failover took {clean} ms, over 1 s"
    );
    assert!(
        uplink <= 1000,
        "uplink-down failover took {uplink} ms, over 1 s"
    );
    let bound = HOLD_S * 1000 + 1000;
    assert!(
        kill <= bound,
        "hard-kill failover took {kill} ms, over the hold time + 1 s ({bound} ms)"
    );
    drop(b);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn gobgp_peer_and_a_hostile_scripted_peer() {
    let lab = TwoSiteLab::up(&viplab::unique_name("bgppeers"), PORT).expect("two-site lab");
    let conf = lab.dir().join("gobgpd.toml");
    std::fs::write(&conf, gobgp_config()).expect("writing the GoBGP config");
    let mut gobgp = lab
        .spawn(
            "rt",
            &[
                "gobgpd",
                "-f",
                conf.to_str().unwrap_or_default(),
                "-t",
                "toml",
                "-p",
                "--api-hosts",
                "127.0.0.1:50051",
                "--pprof-disable",
            ],
        )
        .expect("gobgpd starts");
    let a = Vipd::start(
        &lab,
        "sitea",
        &site_config(&lab, Site::A, &site_a_bgp(false)),
    )
    .expect("vipd on site A");
    let b = Vipd::start(
        &lab,
        "siteb",
        &site_config(&lab, Site::B, &site_b_scripted()),
    )
    .expect("vipd on site B");
    let gobgp_cli = |args: &[&str]| {
        let mut argv = vec!["gobgp", "-u", "127.0.0.1", "-p", "50051"];
        argv.extend_from_slice(args);
        lab.exec_ok("rt", &argv).unwrap_or_default()
    };
    let rib = || gobgp_cli(&["global", "rib", "-a", "ipv4"]);
    lab.wait_until("GoBGP holds site A's /25", Duration::from_secs(20), || {
        rib().contains("10.0.0.0/25")
    })
    .unwrap_or_else(|e| {
        panic!(
            "{e}\nneighbors:\n{}\ngobgpd running: {}, log:\n{}\nvipd log:\n{}",
            gobgp_cli(&["neighbor"]),
            gobgp.is_running(),
            gobgp.log(),
            a.log()
        )
    });
    let line = rib()
        .lines()
        .find(|l| l.contains("10.0.0.0/25"))
        .unwrap_or_default()
        .to_string();
    let path = format!("{SITE_A_AS} {SITE_A_AS} {SITE_A_AS}");
    assert!(
        line.contains("172.16.1.2") && line.contains(&path),
        "GoBGP's route lacks next hop 172.16.1.2 or AS path {path}: {line}"
    );
    assert!(
        gobgp_cli(&["neighbor"]).contains("Establ"),
        "GoBGP shows the session Established"
    );

    let result = std::thread::scope(|sc| sc.spawn(|| scripted_peer(&lab, &b)).join());
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("scripted peer: {e:#}\nvipd log:\n{}", b.log()),
        Err(p) => std::panic::resume_unwind(p),
    }
    let mut b = b;
    assert!(
        b.is_running(),
        "vipd must survive hostile input:\n{}",
        b.log()
    );
    let st = bgp_status(&b);
    assert!(
        st.peers.first().map(|p| p.established_count) >= Some(2),
        "two sessions reached Established: {st:?}"
    );
}
