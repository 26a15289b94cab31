//! End to end: vipd's BGP speaker against real routers. Two sites announce
//! the same VIP's prefix to a BIRD router with different lengths (site A
//! 10.0.0.0/25, site B 10.0.0.0/24); the router's kernel sends client
//! traffic to the longest prefix. Each failure of site A moves the traffic to
//! site B, and the client-side gap is measured.

mod common;

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use anyhow::{bail, Result};
use common::*;
use lab::{ProbeSample, Site, TwoSiteLab};
use serde_json::{json, Value};

const PORT: u16 = 8080;
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const ROUTER_AS: u32 = 4_200_000_000;
const SITE_A_AS: u32 = 4_200_000_001;
const MD5_KEY: &str = "vipd-lab-key";
/// BIRD's and vipd's hold time in this lab, seconds.
const HOLD_S: u64 = 3;

fn site_config(lab: &TwoSiteLab, site: Site, bgp: &str) -> String {
    let role = site.role();
    let mut out = format!(
        "[node]\nname = \"{role}\"\nsite = \"{role}\"\n\n[dataplane]\ninterfaces = [\"eth0\", \"eth1\"]\nqueues = 1\n\n\
         [control]\nsocket = \"{}\"\n\n[[service]]\nname = \"web\"\nvip = \"{VIP}\"\nport = {PORT}\nprotocol = \"tcp\"\n\
         scheduler = \"rr\"\nforward = \"nat\"\n",
        socket_path(lab, role).display()
    );
    for n in [1, 2] {
        out += &format!(
            "  [[service.backend]]\n  address = \"{}:{PORT}\"\n  check = {}\n",
            site.backend_ip(n),
            http_check(100, 2, 2)
        );
    }
    out + "\n" + bgp
}

/// Site A: eBGP with a 4-octet AS, TCP MD5 and GTSM, every attribute set.
fn site_a_bgp() -> String {
    format!(
        r#"[bgp]
local_as = {SITE_A_AS}
router_id = "{}"
  [[bgp.peer]]
  address = "{}"
  remote_as = {ROUTER_AS}
  hold_time_s = {HOLD_S}
  keepalive_s = 1
  connect_retry_s = 1
  ttl_security = true
  md5_password = "{MD5_KEY}"
  [[bgp.announce]]
  prefix = "10.0.0.0/25"
  communities = ["65001:100"]
  large_communities = ["{SITE_A_AS}:1:2"]
  med = 50
  prepend = 2
"#,
        Site::A.uplink_ip(),
        Site::A.router_ip()
    )
}

/// Site B: iBGP in the router's own (4-octet) AS, with a local preference.
fn site_b_bgp() -> String {
    format!(
        r#"[bgp]
local_as = {ROUTER_AS}
router_id = "{}"
  [[bgp.peer]]
  address = "{}"
  remote_as = {ROUTER_AS}
  hold_time_s = {HOLD_S}
  keepalive_s = 1
  connect_retry_s = 1
  [[bgp.announce]]
  prefix = "10.0.0.0/24"
  local_pref = 200
  communities = ["65002:100"]
"#,
        Site::B.uplink_ip(),
        Site::B.router_ip()
    )
}

/// The router: installs what it learns into its kernel table, exports one
/// static route to site A so vipd has something to count. BIRD's default
/// error wait (60 s before restarting a failed session) would stretch every
/// repair step; the drills only need it short.
fn bird_config() -> String {
    format!(
        r#"router id 172.16.0.1;
log stderr all;
protocol device {{ scan time 1; }}
protocol static {{ ipv4; route 203.0.113.0/24 blackhole; }}
protocol kernel {{ ipv4 {{ export where source = RTS_BGP; }}; merge paths on; }}
protocol bgp sitea {{
  local {ra} as {ROUTER_AS};
  neighbor {na} as {SITE_A_AS};
  hold time {HOLD_S}; keepalive time 1; connect retry time 1;
  graceful restart off;
  error wait time 1, 2;
  ttl security on;
  password "{MD5_KEY}";
  ipv4 {{ import all; export where source = RTS_STATIC; }};
}}
protocol bgp siteb {{
  local {rb} as {ROUTER_AS};
  neighbor {nb} as {ROUTER_AS};
  direct;
  hold time {HOLD_S}; keepalive time 1; connect retry time 1;
  graceful restart off;
  error wait time 1, 2;
  ipv4 {{ import all; export none; gateway direct; }};
}}
"#,
        ra = Site::A.router_ip(),
        na = Site::A.uplink_ip(),
        rb = Site::B.router_ip(),
        nb = Site::B.uplink_ip(),
    )
}

fn established(lab: &TwoSiteLab, protocol: &str) -> bool {
    lab.birdc(&["show", "protocols", protocol]).is_ok_and(|o| {
        o.lines()
            .any(|l| l.starts_with(protocol) && l.contains("Established"))
    })
}

fn bgp_status(v: &Vipd) -> Value {
    v.request(json!({"cmd": "bgp"})).unwrap_or(Value::Null)
}

fn now_ms() -> u64 {
    dataplane::engine::monotonic_ms()
}

/// Whether the last `n` finished probes started after `since` all reached `site`.
fn settled_on(samples: &[ProbeSample], since: u64, site: Site, n: usize) -> bool {
    let recent: Vec<&ProbeSample> = samples.iter().filter(|s| s.at_ms >= since).collect();
    recent.len() >= n
        && recent[recent.len() - n..]
            .iter()
            .all(|s| s.body.as_deref().and_then(Site::of_body) == Some(site))
}

/// Client-side gap of a failover that began at `t0`: from the last probe
/// answered by site A to the first answered by site B.
fn gap_ms(samples: &[ProbeSample], t0: u64) -> Result<u64> {
    let site = |s: &ProbeSample| s.body.as_deref().and_then(Site::of_body);
    let Some(first_b) = samples
        .iter()
        .find(|s| s.at_ms >= t0 && site(s) == Some(Site::B))
    else {
        bail!("no probe reached site B after the failure");
    };
    let Some(last_a) = samples
        .iter()
        .filter(|s| s.at_ms < first_b.at_ms && site(s) == Some(Site::A))
        .next_back()
    else {
        bail!("no probe reached site A before the failover");
    };
    Ok(first_b.at_ms - last_a.at_ms)
}

struct Drill<'a> {
    lab: &'a TwoSiteLab,
    prober: &'a lab::Prober,
}

impl Drill<'_> {
    fn wait_site(&self, since: u64, site: Site, what: &str, within: Duration) -> Result<()> {
        let r = self.lab.wait_until(what, within, || {
            settled_on(&self.prober.samples(), since, site, 8)
        });
        if r.is_err() {
            let recent: Vec<ProbeSample> = self
                .prober
                .samples()
                .into_iter()
                .filter(|s| s.at_ms >= since)
                .collect();
            bail!(
                "{}: probes since then by site: {:?}; router routes: {}",
                r.unwrap_err(),
                lab::sites::by_site(&recent),
                self.lab.exec_ok("rt", &["ip", "route"]).unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Breaks site A, measures the move to B, repairs A and waits for the
    /// traffic to return. Returns the gap in ms.
    fn run(
        &self,
        name: &str,
        fail: impl FnOnce() -> Result<()>,
        repair: impl FnOnce() -> Result<()>,
    ) -> Result<u64> {
        self.wait_site(
            now_ms(),
            Site::A,
            "traffic on site A before the drill",
            Duration::from_secs(20),
        )?;
        let t0 = now_ms();
        fail()?;
        self.wait_site(
            t0,
            Site::B,
            &format!("traffic on site B after {name}"),
            Duration::from_secs(15),
        )?;
        let gap = gap_ms(&self.prober.samples(), t0)?;
        let t1 = now_ms();
        repair()?;
        self.wait_site(
            t1,
            Site::A,
            &format!("traffic back on site A after repairing {name}"),
            Duration::from_secs(30),
        )?;
        println!("failover on {name}: client gap {gap} ms (last answer from site A to first from site B)");
        Ok(gap)
    }
}

#[test]
fn two_sites_fail_over_by_longest_prefix_through_bird() {
    let lab = TwoSiteLab::up(&lab::unique_name("bgpsites"), PORT).expect("two-site lab");
    let _bird = lab.start_bird(&bird_config()).expect("BIRD starts");
    let conf_a = site_config(&lab, Site::A, &site_a_bgp());
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
    let peer = &st["peers"][0];
    assert_eq!(peer["state"], "Established", "{st}");
    assert_eq!(
        peer["received"], 1,
        "BIRD exports one static route to site A: {st}"
    );
    assert_eq!(peer["advertised"], json!(["10.0.0.0/25"]), "{st}");
    assert_eq!(st["announced"], json!(["10.0.0.0/25"]), "{st}");
    assert_eq!(st["local_as"], SITE_A_AS, "{st}");

    let prober = lab
        .start_prober(
            SocketAddrV4::new(VIP, PORT),
            Duration::from_millis(15),
            Duration::from_millis(250),
        )
        .expect("prober");
    let drill = Drill {
        lab: &lab,
        prober: &prober,
    };

    let health = drill
        .run(
            "all of site A's backends failing their checks",
            || {
                for i in Site::A.backends() {
                    lab.stop_backend(i)?;
                }
                Ok(())
            },
            || {
                for i in Site::A.backends() {
                    lab.start_backend(i)?;
                }
                Ok(())
            },
        )
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
        "convergence (client gap): health {health} ms, SIGTERM {clean} ms, uplink down {uplink} ms, SIGKILL {kill} ms, SIGSTOP {frozen} ms (hold time {HOLD_S} s)"
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
