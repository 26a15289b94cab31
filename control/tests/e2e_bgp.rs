//! End to end: vipd's BGP speaker against real routers. Two sites announce
//! the same VIP's prefix to a BIRD router with different lengths (site A
//! 10.0.0.0/25, site B 10.0.0.0/24); the router's kernel sends client
//! traffic to the longest prefix. Each failure of site A moves the traffic to
//! site B, and the client-side gap is measured. A second test peers with
//! GoBGP and feeds vipd broken messages from a scripted peer.

mod common;

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use anyhow::{bail, Result};
use common::*;
use ctlproto::{reply, Command};
use lab::{ProbeSample, Site, TwoSiteLab};

const PORT: u16 = 8080;
const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const ROUTER_AS: u32 = 4_200_000_000;
const SITE_A_AS: u32 = 4_200_000_001;
const MD5_KEY: &str = "vipd-lab-key";
/// BIRD's and vipd's hold time in this lab, seconds.
const HOLD_S: u64 = 3;
/// Site A's metrics listener, inside its namespace.
const METRICS: &str = "127.0.0.1:9100";

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

/// Site A: eBGP with a 4-octet AS, TCP MD5 (and GTSM when `gtsm`), every
/// attribute set.
fn site_a_bgp(gtsm: bool) -> String {
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
  ttl_security = {gtsm}
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

/// Site B: iBGP in the router's own (4-octet) AS, with a local preference;
/// passive, so the router's connection goes through vipd's listener.
fn site_b_bgp() -> String {
    format!(
        r#"[bgp]
local_as = {ROUTER_AS}
router_id = "{}"
  [[bgp.peer]]
  address = "{}"
  remote_as = {ROUTER_AS}
  passive = true
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

/// The node's BGP speaker as `vipctl bgp` shows it; empty when the node
/// does not answer or has no `[bgp]`.
fn bgp_status(v: &Vipd) -> reply::BgpSpeaker {
    v.call::<reply::Bgp>(Command::Bgp {})
        .ok()
        .and_then(|b| b.speaker)
        .unwrap_or_default()
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
        .rfind(|s| s.at_ms < first_b.at_ms && site(s) == Some(Site::A))
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
        if let Err(e) = r {
            let recent: Vec<ProbeSample> = self
                .prober
                .samples()
                .into_iter()
                .filter(|s| s.at_ms >= since)
                .collect();
            bail!(
                "{}: probes since then by site: {:?}; router routes: {}",
                e,
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

/// GoBGP as the router for site A (listening only on site A's uplink).
fn gobgp_config() -> String {
    format!(
        r#"[global.config]
  as = {ROUTER_AS}
  router-id = "{ra}"
  local-address-list = ["{ra}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{na}"
    peer-as = {SITE_A_AS}
    auth-password = "{MD5_KEY}"
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = {HOLD_S}
    keepalive-interval = 1
"#,
        ra = Site::A.router_ip(),
        na = Site::A.uplink_ip(),
    )
}

/// Port of the scripted peer, so it does not clash with GoBGP's 179.
const SCRIPTED_PORT: u16 = 1179;
const SCRIPTED_AS: u16 = 65000;

/// Site B talks to the test's scripted peer.
fn site_b_scripted() -> String {
    format!(
        r#"[bgp]
local_as = 65002
router_id = "{}"
  [[bgp.peer]]
  address = "{}"
  port = {SCRIPTED_PORT}
  remote_as = {SCRIPTED_AS}
  hold_time_s = {HOLD_S}
  keepalive_s = 1
  connect_retry_s = 1
  max_prefixes = 2
  [[bgp.announce]]
  prefix = "10.0.0.0/24"
"#,
        Site::B.uplink_ip(),
        Site::B.router_ip()
    )
}

mod wire {
    //! Hand-made BGP messages, including broken ones.
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use anyhow::{bail, Result};

    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;

    pub fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&u16::try_from(19 + body.len()).unwrap_or(0).to_be_bytes());
        m.push(kind);
        m.extend_from_slice(body);
        m
    }

    /// OPEN with capabilities multiprotocol IPv4 unicast and 4-octet AS.
    pub fn open(version: u8, asn: u16, hold: u16, id: [u8; 4]) -> Vec<u8> {
        let caps = [
            1,
            4,
            0,
            1,
            0,
            1,
            65,
            4,
            0,
            0,
            asn.to_be_bytes()[0],
            asn.to_be_bytes()[1],
        ];
        let mut b = vec![version];
        b.extend_from_slice(&asn.to_be_bytes());
        b.extend_from_slice(&hold.to_be_bytes());
        b.extend_from_slice(&id);
        b.push(u8::try_from(caps.len() + 2).unwrap_or(0));
        b.push(2);
        b.push(u8::try_from(caps.len()).unwrap_or(0));
        b.extend_from_slice(&caps);
        msg(OPEN, &b)
    }

    /// UPDATE announcing `nlri` (prefix length, octets) with the given ORIGIN
    /// value, AS_PATH [asn] (4-octet) and next hop.
    pub fn update(origin: u8, asn: u32, next_hop: [u8; 4], nlri: &[(u8, [u8; 3])]) -> Vec<u8> {
        let mut attrs = vec![0x40, 1, 1, origin];
        attrs.extend_from_slice(&[0x40, 2, 6, 2, 1]);
        attrs.extend_from_slice(&asn.to_be_bytes());
        attrs.extend_from_slice(&[0x40, 3, 4]);
        attrs.extend_from_slice(&next_hop);
        let mut b = vec![0, 0];
        b.extend_from_slice(&u16::try_from(attrs.len()).unwrap_or(0).to_be_bytes());
        b.extend_from_slice(&attrs);
        for (len, octets) in nlri {
            b.push(*len);
            b.extend_from_slice(octets);
        }
        msg(UPDATE, &b)
    }

    pub fn read(s: &mut TcpStream) -> Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 19];
        s.read_exact(&mut head)?;
        let len = usize::from(u16::from_be_bytes([head[16], head[17]]));
        if !(19..=4096).contains(&len) {
            bail!("vipd sent a message of length {len}");
        }
        let mut body = vec![0; len - 19];
        s.read_exact(&mut body)?;
        Ok((head[18], body))
    }

    /// Reads until a NOTIFICATION; returns (code, subcode).
    pub fn notification(s: &mut TcpStream) -> Result<(u8, u8)> {
        loop {
            let (kind, body) = read(s)?;
            if kind == NOTIFICATION {
                return Ok((*body.first().unwrap_or(&0), *body.get(1).unwrap_or(&0)));
            }
        }
    }

    /// Reads until a message of `kind`.
    pub fn until(s: &mut TcpStream, kind: u8) -> Result<()> {
        loop {
            let (k, body) = read(s)?;
            if k == kind {
                return Ok(());
            }
            if k == NOTIFICATION {
                bail!("vipd sent NOTIFICATION {body:?} while we waited for type {kind}");
            }
        }
    }

    pub fn send(s: &mut TcpStream, m: &[u8]) -> Result<()> {
        s.write_all(m)?;
        Ok(())
    }
}

/// Accepts vipd's next connection and reads its OPEN.
fn next_session(l: &std::net::TcpListener) -> Result<std::net::TcpStream> {
    l.set_nonblocking(true)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut s = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() > deadline {
                    bail!("vipd did not connect to the scripted peer within 15 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    };
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(HOLD_S + 3)))?;
    wire::until(&mut s, wire::OPEN)?;
    Ok(s)
}

const PEER_ID: [u8; 4] = [172, 16, 2, 1];

/// Drives vipd (site B) through broken and silent sessions.
fn scripted_peer(lab: &TwoSiteLab, b: &Vipd) -> Result<()> {
    lab.enter("rt")?;
    let l = std::net::TcpListener::bind((Site::B.router_ip(), SCRIPTED_PORT))?;
    let hold = u16::try_from(HOLD_S)?;

    let mut s = next_session(&l)?;
    wire::send(&mut s, &wire::open(3, SCRIPTED_AS, hold, PEER_ID))?;
    assert_eq!(
        wire::notification(&mut s)?,
        (2, 1),
        "OPEN version 3: Unsupported Version Number"
    );

    let mut s = next_session(&l)?;
    wire::send(&mut s, &wire::open(4, 65099, hold, PEER_ID))?;
    assert_eq!(
        wire::notification(&mut s)?,
        (2, 2),
        "OPEN from the wrong AS: Bad Peer AS"
    );

    let mut s = next_session(&l)?;
    let mut bad = wire::open(4, SCRIPTED_AS, hold, PEER_ID);
    bad[3] = 0;
    wire::send(&mut s, &bad)?;
    assert_eq!(
        wire::notification(&mut s)?,
        (1, 1),
        "broken marker: Connection Not Synchronized"
    );

    let mut s = next_session(&l)?;
    wire::send(&mut s, &wire::open(4, SCRIPTED_AS, hold, PEER_ID))?;
    wire::send(&mut s, &wire::msg(wire::KEEPALIVE, &[]))?;
    wire::until(&mut s, wire::KEEPALIVE)?;
    let peer = || bgp_status(b).peers.first().cloned().unwrap_or_default();
    lab.wait_until(
        "vipd Established with the scripted peer",
        Duration::from_secs(5),
        || peer().state == "Established",
    )?;
    // ORIGIN 7 is malformed: RFC 7606 treat-as-withdraw, the session stays.
    let nh = [172, 16, 2, 1];
    let asn = u32::from(SCRIPTED_AS);
    wire::send(&mut s, &wire::update(7, asn, nh, &[(24, [198, 51, 100])]))?;
    wire::send(
        &mut s,
        &wire::update(0, asn, nh, &[(24, [198, 51, 101]), (24, [198, 51, 102])]),
    )?;
    lab.wait_until(
        "vipd counts the two valid prefixes only",
        Duration::from_secs(5),
        || peer().received == 2,
    )?;
    assert_eq!(
        peer().state,
        "Established",
        "treat-as-withdraw must not reset the session"
    );
    // Withdrawn routes length overrunning the message: Malformed Attribute List.
    wire::send(&mut s, &wire::msg(wire::UPDATE, &[0, 200, 0, 0]))?;
    assert_eq!(
        wire::notification(&mut s)?,
        (3, 1),
        "overrunning withdrawn length"
    );

    // One prefix over max_prefixes (2): Cease / Maximum Number of Prefixes Reached.
    let mut s = next_session(&l)?;
    wire::send(&mut s, &wire::open(4, SCRIPTED_AS, hold, PEER_ID))?;
    wire::send(&mut s, &wire::msg(wire::KEEPALIVE, &[]))?;
    wire::until(&mut s, wire::KEEPALIVE)?;
    let three = [
        (24, [198, 51, 100]),
        (24, [198, 51, 101]),
        (24, [198, 51, 102]),
    ];
    wire::send(&mut s, &wire::update(0, asn, nh, &three))?;
    assert_eq!(wire::notification(&mut s)?, (6, 1), "over max_prefixes");

    // A peer that goes silent after OPEN: vipd's hold timer expires, then it reconnects.
    let mut s = next_session(&l)?;
    wire::send(&mut s, &wire::open(4, SCRIPTED_AS, hold, PEER_ID))?;
    wire::send(&mut s, &wire::msg(wire::KEEPALIVE, &[]))?;
    let t0 = std::time::Instant::now();
    assert_eq!(
        wire::notification(&mut s)?,
        (4, 0),
        "silent peer: Hold Timer Expired"
    );
    let held = t0.elapsed();
    assert!(
        held >= Duration::from_secs(HOLD_S - 1) && held <= Duration::from_secs(HOLD_S + 1),
        "hold timer expired after {held:?}, expected about {HOLD_S} s"
    );
    drop(next_session(&l)?);
    Ok(())
}

#[test]
fn gobgp_peer_and_a_hostile_scripted_peer() {
    let lab = TwoSiteLab::up(&lab::unique_name("bgppeers"), PORT).expect("two-site lab");
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
