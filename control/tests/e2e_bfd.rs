//! End to end: BFD between vipd and a real router. Site A announces
//! 10.0.0.0/25, site B 10.0.0.0/24; site A's vipd is frozen with SIGSTOP
//! (its process, dataplane included, stops; its TCP connection stays open).
//! Without BFD only the router's BGP hold timer notices; with BFD at
//! 50 ms × 3 the router withdraws the /25 within a fraction of a second.
//! Both outages are measured from the client in the same test, once with
//! BIRD and once with FRR (zebra, bgpd and bfdd) as the router.

mod common;

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use common::two_sites::*;
use common::*;
use ctlproto::reply;
use viplab::{LabProcess, Site, TwoSiteLab};

const BFD_INTERVAL_MS: u64 = 50;
const BFD_MULT: u8 = 3;
/// The client's outage bound with BFD at 50 ms × 3: detection (150 ms),
/// the router's withdrawal and the prober's own resolution.
const BFD_BOUND_MS: u64 = 700;

fn site_a_conf(lab: &TwoSiteLab, bfd: bool) -> String {
    let mut bgp = site_a_bgp(false);
    if bfd {
        bgp = bgp.replacen(
            &format!("remote_as = {ROUTER_AS}\n"),
            &format!(
                "remote_as = {ROUTER_AS}\n  bfd = {{ interval_ms = {BFD_INTERVAL_MS}, multiplier = {BFD_MULT} }}\n"
            ),
            1,
        );
    }
    site_config(lab, Site::A, &bgp).replace(
        "[control]\n",
        &format!("[control]\nmetrics = \"{METRICS}\"\n"),
    )
}

/// The router under test, as the drills need to see it.
enum Router {
    Bird(LabProcess),
    Frr {
        dir: PathBuf,
        daemons: Vec<LabProcess>,
    },
}

impl Router {
    fn bird(lab: &TwoSiteLab) -> Result<Router> {
        let conf = bird_config()
            .replace("ttl security on;\n", "")
            .replace(
                "  password \"",
                "  bfd on;\n  password \"",
            )
            + &format!(
                "protocol bfd {{ interface \"*\" {{ min rx interval {BFD_INTERVAL_MS} ms; min tx interval {BFD_INTERVAL_MS} ms; multiplier {BFD_MULT}; }}; }}\n"
            );
        Ok(Router::Bird(lab.start_bird(&conf)?))
    }

    /// zebra installs the routes and relays bgpd's BFD requests to bfdd;
    /// every socket, pid and config file lives in the lab directory.
    fn frr(lab: &TwoSiteLab) -> Result<Router> {
        let dir = lab.dir().join("frr");
        std::fs::create_dir_all(&dir).context("FRR directory")?;
        // The daemons drop to the frr user, whose vty group root is not in.
        lab.exec_ok("rt", &["chown", "frr:frr", &dir.to_string_lossy()])?;
        let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let confs = [
            ("zebra", "hostname rt\n".to_string()),
            (
                "bfdd",
                format!(
                    "hostname rt\nbfd\n profile fast\n  detect-multiplier {BFD_MULT}\n  receive-interval {BFD_INTERVAL_MS}\n  transmit-interval {BFD_INTERVAL_MS}\n exit\nexit\n"
                ),
            ),
            ("bgpd", frr_bgpd_config()),
        ];
        let mut daemons = Vec::new();
        for (name, conf) in confs {
            std::fs::write(path(&format!("{name}.conf")), conf).context("FRR config")?;
            let mut argv = vec![
                format!("/usr/lib/frr/{name}"),
                "-f".into(),
                path(&format!("{name}.conf")),
                "-i".into(),
                path(&format!("{name}.pid")),
                "-z".into(),
                path("zserv.api"),
                "--vty_socket".into(),
                dir.to_string_lossy().into_owned(),
                "-u".into(),
                "frr".into(),
                "-g".into(),
                "frr".into(),
                "-P".into(),
                "0".into(),
                "--log".into(),
                "stdout".into(),
            ];
            if name == "bfdd" {
                argv.extend(["--bfdctl".into(), path("bfdd.sock")]);
            }
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            daemons.push(lab.spawn("rt", &argv)?);
            let sock = path(&format!("{name}.vty"));
            lab.wait_until(
                &format!("FRR {name} listens on its vty socket"),
                Duration::from_secs(10),
                || std::path::Path::new(&sock).exists(),
            )
            .map_err(|e| {
                let logs: Vec<String> = daemons.iter().map(|d| d.log()).collect();
                anyhow::anyhow!("{e}\n{}", logs.join("\n---\n"))
            })?;
        }
        Ok(Router::Frr { dir, daemons })
    }

    fn vtysh(&self, lab: &TwoSiteLab, cmd: &str) -> String {
        let Router::Frr { dir, .. } = self else {
            return String::new();
        };
        let d = dir.to_string_lossy();
        lab.exec_ok("rt", &["vtysh", "--vty_socket", &d, "-c", cmd])
            .unwrap_or_else(|e| e.to_string())
    }

    fn name(&self) -> &'static str {
        match self {
            Router::Bird(_) => "BIRD",
            Router::Frr { .. } => "FRR",
        }
    }

    fn established(&self, lab: &TwoSiteLab) -> bool {
        match self {
            Router::Bird(_) => established(lab, "sitea") && established(lab, "siteb"),
            Router::Frr { .. } => [Site::A, Site::B].iter().all(|s| {
                self.vtysh(lab, &format!("show bgp neighbors {}", s.uplink_ip()))
                    .contains("BGP state = Established")
            }),
        }
    }

    fn bfd_up(&self, lab: &TwoSiteLab) -> bool {
        let peer = Site::A.uplink_ip().to_string();
        match self {
            Router::Bird(_) => lab.birdc(&["show", "bfd", "sessions"]).is_ok_and(|o| {
                o.lines()
                    .any(|l| l.starts_with(&peer) && l.split_whitespace().any(|w| w == "Up"))
            }),
            Router::Frr { .. } => self
                .vtysh(lab, &format!("show bfd peer {peer}"))
                .contains("Status: up"),
        }
    }

    /// Signals every router process (SIGSTOP freezes the router whole).
    fn signal(&self, sig: i32) -> Result<()> {
        let procs: Vec<&LabProcess> = match self {
            Router::Bird(b) => vec![b],
            Router::Frr { daemons, .. } => daemons.iter().collect(),
        };
        for p in procs {
            let pid = i32::try_from(p.pid())?;
            // SAFETY: signalling a child we spawned and have not reaped.
            unsafe { libc::kill(pid, sig) };
        }
        Ok(())
    }

    /// Whether the router saw site A's BFD session end by AdminDown (a
    /// clean stop); `None` for BIRD 2.0, which shows neither the peer's
    /// state nor its diagnostic (and takes any Up to Down, AdminDown
    /// included, to its BGP session).
    fn saw_admin_down(&self, lab: &TwoSiteLab) -> Option<bool> {
        match self {
            Router::Bird(_) => None,
            Router::Frr { .. } => Some(
                self.vtysh(lab, &format!("show bfd peer {}", Site::A.uplink_ip()))
                    .to_lowercase()
                    .contains("remote diagnostics: administratively down"),
            ),
        }
    }

    fn show(&self, lab: &TwoSiteLab) -> String {
        match self {
            Router::Bird(b) => format!(
                "{}\n{}\nBIRD log:\n{}",
                lab.birdc(&["show", "protocols", "all"]).unwrap_or_default(),
                lab.birdc(&["show", "bfd", "sessions"]).unwrap_or_default(),
                b.log()
            ),
            Router::Frr { daemons, .. } => format!(
                "{}\n{}\n{}\nFRR logs:\n{}",
                self.vtysh(lab, "show bgp summary"),
                self.vtysh(lab, "show bfd peers"),
                self.vtysh(lab, "show ip route"),
                daemons
                    .iter()
                    .map(|d| d.log())
                    .collect::<Vec<_>>()
                    .join("\n---\n")
            ),
        }
    }
}

fn frr_bgpd_config() -> String {
    let (a, b) = (Site::A.uplink_ip(), Site::B.uplink_ip());
    format!(
        "hostname rt\n\
         router bgp {ROUTER_AS}\n\
         \x20bgp router-id 172.16.0.1\n\
         \x20no bgp ebgp-requires-policy\n\
         \x20no bgp network import-check\n\
         \x20timers bgp 1 {HOLD_S}\n\
         \x20neighbor {a} remote-as {SITE_A_AS}\n\
         \x20neighbor {a} password {MD5_KEY}\n\
         \x20neighbor {a} timers connect 1\n\
         \x20neighbor {a} bfd\n\
         \x20neighbor {a} bfd profile fast\n\
         \x20neighbor {b} remote-as {ROUTER_AS}\n\
         \x20neighbor {b} timers connect 1\n\
         \x20address-family ipv4 unicast\n\
         \x20 neighbor {a} activate\n\
         \x20 neighbor {b} activate\n\
         \x20exit-address-family\n\
         exit\n"
    )
}

/// SIGSTOP / SIGCONT to site A's vipd.
fn signal(a: &RefCell<Vipd>, sig: i32) -> Result<()> {
    let pid = i32::try_from(a.borrow().process.as_ref().map_or(0, |p| p.pid()))?;
    anyhow::ensure!(pid > 0, "site A's vipd is not running");
    // SAFETY: signalling a child we spawned and have not reaped.
    unsafe { libc::kill(pid, sig) };
    Ok(())
}

fn bfd_of(a: &Vipd) -> Option<reply::BfdSession> {
    bgp_status(a).peers.first().and_then(|p| p.bfd.clone())
}

/// Freezes site A's vipd without and then with BFD and compares the
/// client-side outages.
fn frozen_site_drills(router: &str) {
    let lab =
        TwoSiteLab::up(&viplab::unique_name(&format!("bfd{router}")), PORT).expect("two-site lab");
    let router = match router {
        "bird" => Router::bird(&lab),
        _ => Router::frr(&lab),
    }
    .expect("router starts");
    let a = RefCell::new(Vipd::start(&lab, "sitea", &site_a_conf(&lab, false)).expect("site A"));
    let b = Vipd::start(&lab, "siteb", &site_config(&lab, Site::B, &site_b_bgp())).expect("site B");
    let both_up = |what: &str, bfd: bool| {
        lab.wait_until(what, Duration::from_secs(30), || {
            router.established(&lab)
                && lab.kernel_next_hop("10.0.0.0/25") == Some(Site::A.uplink_ip())
                && lab.kernel_next_hop("10.0.0.0/24") == Some(Site::B.uplink_ip())
                && (!bfd
                    || (router.bfd_up(&lab)
                        && bfd_of(&a.borrow()).is_some_and(|f| f.state == "Up")))
        })
        .unwrap_or_else(|e| {
            panic!(
                "{e}\n{}\nsite A: {:?}\nlog:\n{}",
                router.show(&lab),
                bgp_status(&a.borrow()),
                a.borrow().log()
            )
        })
    };
    both_up("both sites Established, both prefixes installed", false);
    assert!(bfd_of(&a.borrow()).is_none(), "no bfd key, no BFD session");

    let prober = vip_prober(&lab, VIP.into());
    let drill = Drill {
        lab: &lab,
        prober: &prober,
    };
    let plain = drill
        .run(
            &format!("site A's vipd frozen without BFD ({})", router.name()),
            || signal(&a, libc::SIGSTOP),
            || signal(&a, libc::SIGCONT),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", router.show(&lab)));

    a.borrow_mut().terminate(&lab).expect("site A stops");
    *a.borrow_mut() =
        Vipd::start(&lab, "sitea", &site_a_conf(&lab, true)).expect("site A with BFD");
    both_up("BFD Up on both ends, BGP Established again", true);
    let f = bfd_of(&a.borrow()).expect("BFD session shown");
    assert_eq!(
        (f.interval_ms, f.multiplier, f.detection_ms),
        (
            BFD_INTERVAL_MS,
            BFD_MULT,
            BFD_INTERVAL_MS * u64::from(BFD_MULT)
        ),
        "{f:?}"
    );
    assert_eq!(f.failures, 0, "{f:?}");
    let m = scrape_metrics(&lab, "sitea", METRICS);
    let peer_l = format!("peer=\"{}\"", Site::A.router_ip());
    assert_eq!(
        m.get(&format!("vipd_bfd_session_up{{{peer_l}}}")),
        Some(&1.0),
        "{m:?}"
    );
    assert!(
        m.get(&format!("vipd_bfd_packets_received_total{{{peer_l}}}"))
            .is_some_and(|&n| n > 0.0),
        "{m:?}"
    );

    // Hostile packets from the router's address: sent with TTL 64 (not
    // single hop), with an authentication section, and of BFD version 2.
    // Each is dropped and counted by reason; the session stays Up.
    let script = format!(
        "import socket, struct\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         s.bind(('{rt}', 0))\n\
         def pkt(vers, flags, length, tail=b''):\n\
         \x20   return struct.pack('!BBBBIIIII', vers << 5, 0x40 | flags, 3, length, 0x1234, 0, 10**6, 10**6, 0) + tail\n\
         for ttl, p in [(64, pkt(1, 0, 24)), (255, pkt(1, 0x04, 28, bytes([1, 4, 0, 0]))), (255, pkt(2, 0, 24))]:\n\
         \x20   s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)\n\
         \x20   s.sendto(p, ('{a}', 3784))\n",
        rt = Site::A.router_ip(),
        a = Site::A.uplink_ip()
    );
    lab.exec_ok("rt", &["python3", "-c", &script])
        .expect("hostile BFD packets sent");
    lab.wait_until(
        "the hostile packets counted",
        Duration::from_secs(5),
        || {
            bfd_of(&a.borrow())
                .is_some_and(|f| (f.dropped_ttl, f.dropped_auth, f.dropped_malformed) == (1, 1, 1))
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {:?}", bfd_of(&a.borrow())));
    let m = scrape_metrics(&lab, "sitea", METRICS);
    assert_eq!(
        m.get(&format!(
            "vipd_bfd_packets_dropped_total{{{peer_l},reason=\"ttl\"}}"
        )),
        Some(&1.0),
        "{m:?}"
    );
    let log = a.borrow().log();
    assert!(log.contains("not from a directly connected peer"), "{log}");
    assert_eq!(bfd_of(&a.borrow()).map(|f| f.state), Some("Up".into()));

    let with_bfd = drill
        .run(
            &format!("site A's vipd frozen with BFD ({})", router.name()),
            || signal(&a, libc::SIGSTOP),
            || signal(&a, libc::SIGCONT),
        )
        .unwrap_or_else(|e| {
            panic!(
                "{e}\n{}\nsite A log:\n{}",
                router.show(&lab),
                a.borrow().log()
            )
        });
    // Thawed, vipd sees its BFD session failed (the router's Down, or its
    // own detection timer), closes BGP, and both come back.
    both_up("BFD and BGP back after SIGCONT", true);
    let f = bfd_of(&a.borrow()).expect("BFD session shown");
    assert!(f.failures >= 1 && f.up_count >= 2, "{f:?}");
    assert_eq!(
        (f.dropped_ttl, f.dropped_malformed, f.dropped_auth),
        (1, 1, 1),
        "only the hostile packets were dropped: {f:?}"
    );

    // The other way round: the router freezes, vipd's BFD notices and
    // closes the BGP session without waiting for the hold time.
    let t0 = now_ms();
    router.signal(libc::SIGSTOP).expect("router frozen");
    let closed = lab.wait_until(
        "vipd closes BGP to the frozen router",
        Duration::from_secs(HOLD_S),
        || {
            bgp_status(&a.borrow())
                .peers
                .first()
                .is_some_and(|p| p.state != "Established")
        },
    );
    let closed_ms = now_ms() - t0;
    router.signal(libc::SIGCONT).expect("router thawed");
    closed.unwrap_or_else(|e| panic!("{e}\nsite A log:\n{}", a.borrow().log()));
    assert!(
        a.borrow().log().contains("BFD session went down"),
        "{}",
        a.borrow().log()
    );
    both_up("router thawed: BFD Up, BGP Established again", true);

    // A clean stop sends AdminDown before the Cease; FRR shows it as the
    // peer's diagnostic.
    a.borrow_mut().terminate(&lab).expect("site A stops");
    if router.saw_admin_down(&lab).is_some() {
        lab.wait_until("the router saw AdminDown", Duration::from_secs(5), || {
            router.saw_admin_down(&lab) == Some(true)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", router.show(&lab)));
    }

    println!(
        "{}: client outage with site A's vipd frozen: {plain} ms without BFD (hold time {HOLD_S} s), {with_bfd} ms with BFD {BFD_INTERVAL_MS} ms x {BFD_MULT}; router frozen: vipd closed BGP after {closed_ms} ms",
        router.name()
    );
    assert!(
        with_bfd <= BFD_BOUND_MS,
        "with BFD the outage was {with_bfd} ms, over {BFD_BOUND_MS} ms"
    );
    assert!(
        closed_ms < HOLD_S * 1000 / 2,
        "vipd took {closed_ms} ms to close BGP to the frozen router"
    );
    assert!(
        with_bfd < plain,
        "BFD ({with_bfd} ms) was not faster than the hold timer ({plain} ms)"
    );
    drop(b);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn bird_withdraws_a_frozen_site_within_bfd_detection() {
    frozen_site_drills("bird");
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn frr_withdraws_a_frozen_site_within_bfd_detection() {
    frozen_site_drills("frr");
}
