//! Two sites behind one BGP router, for the multi-datacenter failover tests
//! (longest-prefix routing between sites).
//!
//! ```text
//!  client ── rt (router, runs BIRD) ──ua── sitea eth0 ─ vipd ─ eth1 ── be1, be2  (bridge bra)
//! 10.77.0.2   10.77.0.254           172.16.1.1/.2            192.168.10.1  .11, .12
//!                                 ──ub── siteb eth0 ─ vipd ─ eth1 ── be3, be4  (bridge brb)
//!                                   172.16.2.1/.2            192.168.20.1  .11, .12
//! ```
//!
//! Both site nodes serve the same VIPs; the router's kernel table, filled by
//! BIRD from the sites' announcements, decides which site gets the traffic.
//! The bridges of the backend segments live in `rt` but carry no address
//! there. Backends route through their site node (NAT replies return through
//! vipd). Roles: `rt`, `client`, `sitea`, `siteb`, `be1`..`be4`.
//!
//! Built with [`TwoSiteLab::up_ipv6`], every address and route above also
//! has its IPv6 twin ([`ipv6_twin`]: 172.16.1.2 is 2001:db8:16:1::2,
//! 192.168.10.11 is 2001:db8:168:10::11, each on a /64), `rt` forwards
//! IPv6 and the backends serve over both families. The twins stay outside
//! 2001:db8::/47, where the tests put IPv6 VIPs.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::netns::{self, End};
use crate::plan::{client_ip, router_ip};
use crate::{ipv6_twin, scripts, Lab, LabProcess, LabSpec, Side};

/// The VIP both sites serve (site A announces its /25, site B its /24).
pub const SITE_VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
/// The router's AS in [`TwoSiteLab::bird_config`].
const ROUTER_AS: u32 = 65000;
/// BGP hold time of both sides: a silent peer is dropped within 3 s.
const HOLD_S: u32 = 3;

/// A service a site node serves on [`SITE_VIP`]: NAT to its own site's two
/// backends on the same port.
#[derive(Clone, Copy, Debug)]
pub struct SiteService<'a> {
    pub name: &'a str,
    pub port: u16,
    /// "tcp" or "udp".
    pub protocol: &'a str,
    /// The backends' health check, an inline TOML table
    /// (`{ kind = "none" }`).
    pub check: &'a str,
}

/// One of the two sites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    A,
    B,
}

impl Site {
    pub fn role(self) -> &'static str {
        match self {
            Site::A => "sitea",
            Site::B => "siteb",
        }
    }

    fn octet(self) -> u8 {
        match self {
            Site::A => 1,
            Site::B => 2,
        }
    }

    /// Backend numbers (`be<i>`) of this site.
    pub fn backends(self) -> [usize; 2] {
        match self {
            Site::A => [1, 2],
            Site::B => [3, 4],
        }
    }

    /// The router's address on this site's uplink (the BGP peer of the site).
    pub fn router_ip(self) -> Ipv4Addr {
        Ipv4Addr::new(172, 16, self.octet(), 1)
    }

    /// The site node's uplink (`eth0`) address: its BGP source and next hop.
    pub fn uplink_ip(self) -> Ipv4Addr {
        Ipv4Addr::new(172, 16, self.octet(), 2)
    }

    /// The site node's backend-side (`eth1`) address, the backends' gateway.
    pub fn inside_ip(self) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, self.octet() * 10, 1)
    }

    /// Address of this site's `n`-th backend (1 or 2).
    pub fn backend_ip(self, n: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, self.octet() * 10, 10 + n)
    }

    /// IPv6 twin of [`Site::router_ip`] (a lab built with IPv6).
    pub fn router_ip6(self) -> Ipv6Addr {
        ipv6_twin(self.router_ip())
    }

    /// IPv6 twin of [`Site::uplink_ip`]: the node's IPv6 BGP source and next hop.
    pub fn uplink_ip6(self) -> Ipv6Addr {
        ipv6_twin(self.uplink_ip())
    }

    /// IPv6 twin of [`Site::inside_ip`], the backends' IPv6 gateway.
    pub fn inside_ip6(self) -> Ipv6Addr {
        ipv6_twin(self.inside_ip())
    }

    /// IPv6 twin of [`Site::backend_ip`].
    pub fn backend_ip6(self, n: u8) -> Ipv6Addr {
        ipv6_twin(self.backend_ip(n))
    }

    /// The router's port of this site's uplink, of its backend side, and
    /// the backend segment's bridge (all in `rt`).
    fn rt_ports(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Site::A => ("ua", "pa", "bra"),
            Site::B => ("ub", "pb", "brb"),
        }
    }

    /// The site node's BGP AS.
    pub fn local_as(self) -> u32 {
        match self {
            Site::A => 65001,
            Site::B => 65002,
        }
    }

    /// The VIP prefix the site announces: the primary's is longer, so it
    /// wins while both are announced.
    pub fn prefix(self) -> &'static str {
        match self {
            Site::A => "10.0.0.0/25",
            Site::B => "10.0.0.0/24",
        }
    }

    /// The site whose backend answered `body` (`"be1"` … `"be4"`), if any.
    pub fn of_body(body: &str) -> Option<Site> {
        match body.trim() {
            "be1" | "be2" => Some(Site::A),
            "be3" | "be4" => Some(Site::B),
            _ => None,
        }
    }
}

/// The two-site lab. It derefs to [`Lab`] for `exec`, `spawn`, `wait_until`,
/// `stop_backend`/`start_backend` and friends.
pub struct TwoSiteLab {
    lab: Lab,
}

impl std::ops::Deref for TwoSiteLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

/// One probe of [`Prober`]: when it started (CLOCK_MONOTONIC, ms) and the
/// body it got, or `None` when it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeSample {
    pub at_ms: u64,
    pub body: Option<String>,
}

/// A client-side HTTP prober started by [`TwoSiteLab::start_prober`].
pub struct Prober {
    process: LabProcess,
}

impl Prober {
    /// Every probe finished so far, by start time.
    pub fn samples(&self) -> Vec<ProbeSample> {
        let mut v: Vec<ProbeSample> = self
            .process
            .log()
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let at_ms = f.next()?.parse().ok()?;
                let body = match (f.next()?, f.next()) {
                    ("ok", Some(b)) => Some(b.to_string()),
                    _ => None,
                };
                Some(ProbeSample { at_ms, body })
            })
            .collect();
        v.sort_by_key(|s| s.at_ms);
        v
    }
}

impl TwoSiteLab {
    /// Builds the lab and starts the four backends' HTTP servers on `port`.
    pub fn up(name: &str, port: u16) -> Result<TwoSiteLab> {
        TwoSiteLab::with(name, port, false)
    }

    /// Like [`TwoSiteLab::up`], with IPv6 beside IPv4 everywhere.
    pub fn up_ipv6(name: &str, port: u16) -> Result<TwoSiteLab> {
        TwoSiteLab::with(name, port, true)
    }

    fn with(name: &str, port: u16, ipv6: bool) -> Result<TwoSiteLab> {
        let spec = LabSpec {
            name: name.to_string(),
            backends: 4,
            backend_port: port,
            ipv6,
            ..LabSpec::default()
        };
        let mut lab = TwoSiteLab {
            lab: Lab::empty(spec)?,
        };
        // On error `lab` is dropped here, which removes the partial build.
        lab.build()
            .with_context(|| format!("bringing up two-site lab {name}"))?;
        Ok(lab)
    }

    fn build(&mut self) -> Result<()> {
        let roles = ["rt", "client", "sitea", "siteb", "be1", "be2", "be3", "be4"];
        for role in roles {
            self.lab.add_namespace(role)?;
        }
        let rt = self.lab.ns("rt");
        netns::sysctl(
            &rt,
            &[
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
            ],
        )?;
        netns::bridge_netfilter_off(&rt)?;
        // Every link first: IPv6 is turned on per interface, before any
        // address is assigned.
        self.pair("cl", "client", "eth0")?;
        for site in [Site::A, Site::B] {
            let role = site.role();
            let (up, inside, bridge) = site.rt_ports();
            self.pair(up, role, "eth0")?;
            netns::bridge(&rt, bridge)?;
            self.pair(inside, role, "eth1")?;
            netns::attach(&rt, inside, bridge)?;
            // GRO lets vipd's XDP redirect into these veths.
            for port in [up, inside] {
                netns::gro_on(&rt, port)?;
            }
            // The kernel must not forward what the XDP program passes up.
            netns::sysctl(&self.lab.ns(role), &["net.ipv4.ip_forward=0"])?;
            for i in site.backends() {
                let port = format!("b{i}");
                self.pair(&port, &format!("be{i}"), "eth0")?;
                netns::attach(&rt, &port, bridge)?;
            }
        }
        if self.lab.spec.ipv6 {
            for role in roles {
                self.lab.enable_ipv6(role)?;
            }
            netns::sysctl(&rt, &["net.ipv6.conf.all.forwarding=1"])?;
            for site in [Site::A, Site::B] {
                // As for IPv4, the kernel must not forward what the XDP
                // program passes up; and [`TwoSiteLab::uplink_up`] restores
                // routes only, so the addresses must survive the link
                // going down.
                netns::sysctl(
                    &self.lab.ns(site.role()),
                    &[
                        "net.ipv6.conf.all.forwarding=0",
                        "net.ipv6.conf.all.keep_addr_on_down=1",
                    ],
                )?;
            }
        }
        self.addr("rt", "cl", router_ip(Side::Client))?;
        self.addr("client", "eth0", client_ip())?;
        self.route("client", router_ip(Side::Client))?;
        for site in [Site::A, Site::B] {
            let role = site.role();
            let (up, _, _) = site.rt_ports();
            self.addr("rt", up, site.router_ip())?;
            self.addr(role, "eth0", site.uplink_ip())?;
            self.addr(role, "eth1", site.inside_ip())?;
            self.route(role, site.router_ip())?;
            for (n, i) in site.backends().into_iter().enumerate() {
                let ip = site.backend_ip(u8::try_from(n + 1).unwrap_or(1));
                self.addr(&format!("be{i}"), "eth0", ip)?;
                self.route(&format!("be{i}"), site.inside_ip())?;
            }
        }
        for i in 1..=4 {
            self.lab.start_backend(i)?;
        }
        Ok(())
    }

    /// veth `rt_port` in `rt` paired with `ifname` in `role`, both up.
    fn pair(&self, rt_port: &str, role: &str, ifname: &str) -> Result<()> {
        let rt = self.lab.ns("rt");
        let ns = self.lab.ns(role);
        netns::veth(
            End {
                ns: &rt,
                ifname: rt_port,
            },
            End { ns: &ns, ifname },
            1,
        )?;
        netns::link_up(&rt, rt_port)?;
        netns::link_up_mtu1500(&ns, ifname)
    }

    /// `ip`/24 on `ifname` in `role`, and its IPv6 twin when the lab has IPv6.
    fn addr(&self, role: &str, ifname: &str, ip: Ipv4Addr) -> Result<()> {
        let ns = self.lab.ns(role);
        netns::addr(&ns, ifname, &format!("{ip}/24"))?;
        if self.lab.spec.ipv6 {
            netns::addr6(&ns, ifname, ipv6_twin(ip))?;
        }
        Ok(())
    }

    /// `role`'s default route via `gw`, and via its IPv6 twin when the lab
    /// has IPv6.
    fn route(&self, role: &str, gw: Ipv4Addr) -> Result<()> {
        let ns = self.lab.ns(role);
        netns::route(&ns, "default", &gw.to_string())?;
        if self.lab.spec.ipv6 {
            netns::route(&ns, "default", &ipv6_twin(gw).to_string())?;
        }
        Ok(())
    }

    /// The lab itself (also reachable through deref).
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// Keep the lab after this value is gone (see [`Lab::persist`]).
    pub fn persist(self) {
        self.lab.persist();
    }

    /// Take the site node's uplink (`eth0`) down: its BGP session and its
    /// traffic are cut at once.
    pub fn uplink_down(&self, site: Site) -> Result<()> {
        self.lab.link_down(site.role(), "eth0")
    }

    /// Bring the uplink back, restoring the default routes the kernel dropped.
    pub fn uplink_up(&self, site: Site) -> Result<()> {
        self.lab.link_up(site.role(), "eth0")?;
        self.route(site.role(), site.router_ip())
    }

    /// Starts BIRD in `rt` with configuration `conf` (foreground, its own
    /// control socket in the lab directory) and waits until it answers.
    pub fn start_bird(&self, conf: &str) -> Result<LabProcess> {
        crate::bird::start(&self.lab, "rt", conf)
    }

    /// Runs `birdc -s SOCK ARGS...` and returns its output.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        crate::bird::birdc(&self.lab, "rt", args)
    }

    /// The router's kernel routes for `prefix` ("10.0.0.0/25"): the next hops.
    pub fn kernel_next_hop(&self, prefix: &str) -> Option<Ipv4Addr> {
        let out = self
            .lab
            .exec_ok("rt", &["ip", "-4", "route", "show", "exact", prefix])
            .ok()?;
        let mut words = out.split_whitespace();
        words.find(|w| *w == "via")?;
        words.next()?.parse().ok()
    }

    /// BIRD configuration for `rt`: one session per site (hold 3 s,
    /// keepalive 1 s), every route imported into the kernel table.
    pub fn bird_config() -> String {
        let neighbour = |name: &str, site: Site| {
            format!(
                "protocol bgp {name} {{\n  local {} as {ROUTER_AS};\n  neighbor {} as {};\n  \
                 hold time {HOLD_S}; keepalive time 1; connect retry time 1;\n  graceful restart off;\n  \
                 error wait time 1, 2;\n  ipv4 {{ import all; export none; }};\n}}\n",
                site.router_ip(),
                site.uplink_ip(),
                site.local_as()
            )
        };
        format!(
            "router id 172.16.0.1;\nprotocol device {{ scan time 1; }}\n\
             protocol kernel {{ ipv4 {{ export all; }}; merge paths on; }}\n{}{}",
            neighbour("sitea", Site::A),
            neighbour("siteb", Site::B)
        )
    }

    /// The control socket of `site`'s vipd (in the lab directory).
    pub fn control_socket(&self, site: Site) -> PathBuf {
        self.lab.dir().join(format!("{}.sock", site.role()))
    }

    /// vipd configuration of `site`'s node: `services` on [`SITE_VIP`] in NAT
    /// mode to the site's backends, and a BGP session to `rt` announcing
    /// [`Site::prefix`].
    pub fn vipd_config(&self, site: Site, services: &[SiteService]) -> String {
        let role = site.role();
        let mut out = format!(
            "[node]\nname = \"{role}\"\nsite = \"{role}\"\n\n\
             [dataplane]\ninterfaces = [\"eth0\", \"eth1\"]\n\n\
             [control]\nsocket = \"{}\"\n",
            self.control_socket(site).display()
        );
        for s in services {
            out += &format!(
                "\n[[service]]\nname = \"{}\"\nvip = \"{SITE_VIP}\"\nport = {}\nprotocol = \"{}\"\n\
                 scheduler = \"rr\"\nforward = \"nat\"\n",
                s.name, s.port, s.protocol
            );
            for n in [1, 2] {
                out += &format!(
                    "  [[service.backend]]\n  address = \"{}:{}\"\n  check = {}\n",
                    site.backend_ip(n),
                    s.port,
                    s.check
                );
            }
        }
        out + &format!(
            "\n[bgp]\nlocal_as = {}\nrouter_id = \"{}\"\n  [[bgp.peer]]\n  address = \"{}\"\n  remote_as = {ROUTER_AS}\n  \
             hold_time_s = {HOLD_S}\n  keepalive_s = 1\n  connect_retry_s = 1\n  [[bgp.announce]]\n  prefix = \"{}\"\n",
            site.local_as(),
            site.uplink_ip(),
            site.router_ip(),
            site.prefix()
        )
    }

    /// Writes [`TwoSiteLab::vipd_config`] into the lab directory and starts
    /// the `vipd` binary at `vipd` with it on `site`'s node.
    pub fn start_vipd(
        &self,
        vipd: &Path,
        site: Site,
        services: &[SiteService],
    ) -> Result<LabProcess> {
        let role = site.role();
        let path = self.lab.dir().join(format!("{role}.toml"));
        std::fs::write(&path, self.vipd_config(site, services))
            .with_context(|| format!("writing {}", path.display()))?;
        self.lab.spawn(
            role,
            &[&vipd.to_string_lossy(), "--config", &path.to_string_lossy()],
        )
    }

    /// Starts a prober in `client`: every `interval` a new thread opens a
    /// connection to `addr` (either family), sends `GET /` and records the
    /// body, each bounded by `timeout`.
    pub fn start_prober(
        &self,
        addr: SocketAddr,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Prober> {
        let args = [
            addr.ip().to_string(),
            addr.port().to_string(),
            interval.as_millis().to_string(),
            timeout.as_millis().to_string(),
        ];
        let mut argv = vec![scripts::PYTHON, "-c", PROBER_PY];
        argv.extend(args.iter().map(String::as_str));
        Ok(Prober {
            process: self.lab.spawn("client", &argv)?,
        })
    }
}

/// Per-site counts of successful samples, for messages.
pub fn by_site(samples: &[ProbeSample]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in samples {
        let k = match s.body.as_deref().map(Site::of_body) {
            Some(Some(site)) => format!("{site:?}"),
            Some(None) => "other".to_string(),
            None => "failed".to_string(),
        };
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// argv HOST PORT INTERVAL_MS TIMEOUT_MS. Prints `START_MS ok BODY` or
/// `START_MS err KIND` per probe, START_MS on CLOCK_MONOTONIC.
const PROBER_PY: &str = r#"
import socket, sys, threading, time

host, port = sys.argv[1], int(sys.argv[2])
interval, timeout = int(sys.argv[3]) / 1000.0, int(sys.argv[4]) / 1000.0
request = ('GET / HTTP/1.0\r\nHost: %s\r\n\r\n' % ('[%s]' % host if ':' in host else host)).encode()
lock = threading.Lock()

def probe(start):
    deadline = start + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(request)
            data = b''
            while True:
                s.settimeout(max(0.001, deadline - time.monotonic()))
                b = s.recv(4096)
                if not b:
                    break
                data += b
        head, _, body = data.partition(b'\r\n\r\n')
        ok = head.split(b' ')[1:2] == [b'200']
        line = '%d ok %s' % (start * 1000, body.decode().strip()) if ok else '%d err status' % (start * 1000)
    except Exception as e:
        line = '%d err %s' % (start * 1000, type(e).__name__)
    with lock:
        sys.stdout.write(line + '\n')
        sys.stdout.flush()

next_at = time.monotonic()
while True:
    now = time.monotonic()
    threading.Thread(target=probe, args=(now,), daemon=True).start()
    next_at += interval
    time.sleep(max(0.0, next_at - time.monotonic()))
"#;
