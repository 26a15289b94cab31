//! An ECMP site: several vipd nodes announce the same VIP prefix to one BIRD
//! router, which spreads clients' connections over them by a hash of the
//! 5-tuple (`merge paths on`, `fib_multipath_hash_policy=1`). Direct routing
//! with Maglev lets any node carry any connection: each picks the same
//! backend, and replies go from the backends straight to the router.
//!
//! ```text
//!  client ── sw (router, BIRD, AS 65000) ── brc ── lb1 … lbN eth0 (10.77.0.1K, AS 65001)
//! 10.77.0.2   10.77.0.254                          lb1 … lbN eth1 (10.77.1.1K) ── brb ── be1 … beM
//!                                                                        (VIP on lo, gateway sw)
//! ```
//!
//! The standard lab topology with the VIP [`ECMP_VIP`] outside every lab
//! segment, so the client reaches it only through the router's routes. Every
//! backend runs a line echo server on [`ECHO_PORT`]; [`EchoClients`] holds
//! long-lived connections through the VIP, each sending a line every
//! interval and checking its echo.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::netns;
use crate::plan::{lb_ip, router_ip};
use crate::{scripts, Gateway, Lab, LabProcess, LabSpec, Side};

/// The VIP every node serves and announces (inside [`ECMP_PREFIX`]).
pub const ECMP_VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
/// The prefix every node announces.
pub const ECMP_PREFIX: &str = "10.0.0.0/24";
/// The echo service's port, on the VIP and on the backends (direct routing
/// keeps the port).
pub const ECHO_PORT: u16 = 7000;
const ROUTER_AS: u32 = 65000;
const NODE_AS: u32 = 65001;
/// BGP hold time on both sides: a killed node's routes go within 3 s.
const HOLD_S: u32 = 3;

/// The ECMP lab. It derefs to [`Lab`].
pub struct EcmpLab {
    lab: Lab,
    _echo: Vec<LabProcess>,
}

impl std::ops::Deref for EcmpLab {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

impl EcmpLab {
    /// Builds the lab with room for `nodes` vipd nodes (`lb1`…) and
    /// `backends` echo backends; no vipd and no router run yet.
    pub fn up(name: &str, nodes: usize, backends: usize) -> Result<EcmpLab> {
        let lab = Lab::up(LabSpec {
            name: name.to_string(),
            lb_nodes: nodes,
            backends,
            dr_vips: vec![ECMP_VIP],
            backend_gateway: Gateway::Router,
            ..LabSpec::default()
        })?;
        // Without the L4 hash one client's connections would all take one
        // path.
        netns::sysctl(&lab.ns("sw"), &["net.ipv4.fib_multipath_hash_policy=1"])?;
        // The router forwards the client's packets out of the segment they
        // came in on; a redirect would send the client straight to one node
        // and bypass the multipath route.
        netns::sysctl(
            &lab.ns("sw"),
            &[
                "net.ipv4.conf.all.send_redirects=0",
                "net.ipv4.conf.default.send_redirects=0",
                "net.ipv4.conf.brc.send_redirects=0",
            ],
        )?;
        netns::sysctl(
            &lab.ns("client"),
            &[
                "net.ipv4.conf.all.accept_redirects=0",
                "net.ipv4.conf.eth0.accept_redirects=0",
            ],
        )?;
        let mut echo = Vec::new();
        for i in 1..=backends {
            let role = format!("be{i}");
            let port = ECHO_PORT.to_string();
            let argv = [scripts::PYTHON, "-c", ECHO_SERVER_PY, &port];
            echo.push(lab.spawn(&role, &argv)?);
        }
        let ecmp = EcmpLab { lab, _echo: echo };
        for i in 1..=backends {
            let role = format!("be{i}");
            ecmp.wait_until("the echo server listens", Duration::from_secs(10), || {
                ecmp.exec_ok(&role, &["ss", "-Hltn", &format!("sport = :{ECHO_PORT}")])
                    .is_ok_and(|o| !o.trim().is_empty())
            })
            .with_context(|| format!("echo server on {role}"))?;
        }
        Ok(ecmp)
    }

    /// BIRD configuration for `sw`: one eBGP session per node slot, every
    /// route into the kernel table, equal paths merged.
    pub fn bird_config(&self) -> String {
        let mut conf = format!(
            "router id {};\nprotocol device {{ scan time 1; }}\n\
             protocol kernel {{ ipv4 {{ export all; }}; merge paths on; }}\n",
            router_ip(Side::Client)
        );
        for k in 1..=self.lab.spec().lb_nodes {
            conf += &format!(
                "protocol bgp lb{k} {{\n  local {} as {ROUTER_AS};\n  neighbor {} as {NODE_AS};\n  \
                 hold time {HOLD_S}; keepalive time 1; connect retry time 1;\n  graceful restart off;\n  \
                 error wait time 1, 2;\n  ipv4 {{ import all; export none; }};\n}}\n",
                router_ip(Side::Client),
                lb_ip(k, Side::Client)
            );
        }
        conf
    }

    /// Starts BIRD in `sw` with [`EcmpLab::bird_config`].
    pub fn start_bird(&self) -> Result<LabProcess> {
        crate::bird::start(&self.lab, "sw", &self.bird_config())
    }

    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        crate::bird::birdc(&self.lab, "sw", args)
    }

    /// Whether BIRD's session with node `k` is Established.
    pub fn established(&self, k: usize) -> bool {
        self.birdc(&["show", "protocols", &format!("lb{k}")])
            .is_ok_and(|o| o.contains("Established"))
    }

    /// The router's next hops for [`ECMP_PREFIX`], sorted.
    pub fn next_hops(&self) -> Vec<Ipv4Addr> {
        let out = self
            .lab
            .exec_ok("sw", &["ip", "-4", "route", "show", "exact", ECMP_PREFIX])
            .unwrap_or_default();
        let words: Vec<&str> = out.split_whitespace().collect();
        let mut hops: Vec<Ipv4Addr> = words
            .windows(2)
            .filter(|w| w[0] == "via")
            .filter_map(|w| w[1].parse().ok())
            .collect();
        hops.sort_unstable();
        hops
    }

    /// Node `k`'s address toward the router: its BGP source and next hop.
    pub fn node_ip(&self, k: usize) -> Ipv4Addr {
        self.lab.lb_ip(k, Side::Client)
    }

    /// The control socket of node `k` (in the lab directory).
    pub fn control_socket(&self, k: usize) -> std::path::PathBuf {
        self.lab.dir().join(format!("lb{k}.sock"))
    }

    /// vipd configuration of node `k`: the echo service on [`ECMP_VIP`] by
    /// direct routing with Maglev to every backend, and a BGP session to
    /// the router announcing [`ECMP_PREFIX`]. `bgp_extra` lands in `[bgp]`
    /// (e.g. `drain = "med"`).
    pub fn vipd_config(&self, k: usize, bgp_extra: &str) -> String {
        self.config_with(
            k,
            "scheduler = \"maglev\"\nforward = \"dr\"\n",
            bgp_extra,
            "",
        )
    }

    /// Node `k`'s own full-NAT source address, on the backend segment.
    pub fn snat_ip(&self, k: usize) -> Ipv4Addr {
        let host = u8::try_from(200 + k).unwrap_or(u8::MAX);
        Ipv4Addr::new(10, 77, 1, host)
    }

    /// vipd configuration of node `k` for full NAT with connection sync:
    /// round robin, so only sync lets another node carry a connection on,
    /// from the node's own source address [`EcmpLab::snat_ip`]. Every
    /// node's source address is a VRRP instance on the backend segment,
    /// its own node first, so when a node dies another answers for its
    /// source and, holding its connections, carries them on; so does a
    /// node whose uplink fails (the instances track `eth0`): the backends'
    /// answers must reach a node that can still send them to the clients.
    /// Every node syncs with every other, with the key in `key_file`.
    pub fn fullnat_sync_config(&self, k: usize, key_file: &std::path::Path) -> String {
        let nodes = self.lab.spec().lb_nodes;
        let service = format!(
            "scheduler = \"rr\"\nforward = \"fullnat\"\nsnat = [\"{}\"]\n",
            self.snat_ip(k)
        );
        let mut extra = String::new();
        for j in 1..=nodes {
            // The owner first, then the others in turn.
            let priority = if j == k {
                250
            } else {
                100 + (k + nodes - j) % nodes
            };
            extra += &format!(
                "[[vrrp]]\nname = \"snat{j}\"\ninterface = \"eth1\"\nvrid = {}\nversion = 3\n\
                 advert_interval_ms = 100\npriority = {priority}\nvips = [\"{}\"]\n\
                 [[vrrp.track_interface]]\nname = \"eth0\"\n\n",
                60 + j,
                self.snat_ip(j)
            );
        }
        let peers: Vec<String> = (1..=nodes)
            .filter(|&j| j != k)
            .map(|j| format!("\"{}\"", lb_ip(j, Side::Backend)))
            .collect();
        extra += &format!(
            "[sync]\ninterface = \"eth1\"\npeers = [{}]\nkey_file = \"{}\"\nnode_id = {k}\ndump_deadline_ms = 3000\n",
            peers.join(", "),
            key_file.display()
        );
        self.config_with(k, &service, "", &extra)
    }

    /// A node's config: the echo service with `service` lines to every
    /// backend, `extra` sections, and the BGP session announcing
    /// [`ECMP_PREFIX`] (`bgp_extra` in `[bgp]`).
    fn config_with(&self, k: usize, service: &str, bgp_extra: &str, extra: &str) -> String {
        let mut out = format!(
            "[node]\nname = \"lb{k}\"\nsite = \"ecmp\"\n\n\
             [dataplane]\ninterfaces = [\"eth0\", \"eth1\"]\n\n\
             [control]\nsocket = \"{}\"\n\n\
             [[service]]\nname = \"echo\"\nvip = \"{ECMP_VIP}\"\nport = {ECHO_PORT}\nprotocol = \"tcp\"\n{service}",
            self.control_socket(k).display()
        );
        for i in 1..=self.lab.spec().backends {
            out += &format!(
                "  [[service.backend]]\n  address = \"{}:{ECHO_PORT}\"\n  check = {{ kind = \"none\" }}\n",
                self.lab.backend_ip(i)
            );
        }
        out + &format!(
            "\n[bgp]\nlocal_as = {NODE_AS}\nrouter_id = \"{}\"\n{bgp_extra}\n  [[bgp.peer]]\n  address = \"{}\"\n  \
             remote_as = {ROUTER_AS}\n  hold_time_s = {HOLD_S}\n  keepalive_s = 1\n  connect_retry_s = 1\n  \
             [[bgp.announce]]\n  prefix = \"{ECMP_PREFIX}\"\n\n{extra}",
            self.node_ip(k),
            router_ip(Side::Client)
        )
    }

    /// Opens `connections` long-lived connections from `client` to the
    /// echo service, each sending a line every `interval`; a connection
    /// counts as lost on a reset, a wrong echo, or no echo for `lost_after`.
    pub fn start_echo_clients(
        &self,
        connections: usize,
        interval: Duration,
        lost_after: Duration,
    ) -> Result<EchoClients> {
        let args = [
            ECMP_VIP.to_string(),
            ECHO_PORT.to_string(),
            connections.to_string(),
            interval.as_millis().to_string(),
            lost_after.as_millis().to_string(),
        ];
        let mut argv = vec![scripts::PYTHON, "-c", ECHO_CLIENT_PY];
        argv.extend(args.iter().map(String::as_str));
        Ok(EchoClients {
            process: self.lab.spawn("client", &argv)?,
            connections,
        })
    }
}

/// The echo clients' connections, as their last report said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EchoReport {
    /// Connections opened.
    pub connected: usize,
    /// Still working.
    pub alive: usize,
    /// Of them, echoed within the last second.
    pub fresh: usize,
    /// Lost: `(connection, why)`.
    pub lost: Vec<(usize, String)>,
    /// Longest wait for an echo so far, over every connection.
    pub longest_stall_ms: u64,
    /// Each connection's client port, by connection number.
    pub ports: Vec<u16>,
}

/// Long-lived echo connections started by [`EcmpLab::start_echo_clients`].
pub struct EchoClients {
    process: LabProcess,
    connections: usize,
}

impl EchoClients {
    /// What the clients reported so far.
    pub fn report(&self) -> EchoReport {
        let mut r = EchoReport {
            ports: vec![0; self.connections],
            ..EchoReport::default()
        };
        for line in self.process.log().lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            match f.first() {
                Some(&"port") => {
                    if let Some(p) = r.ports.get_mut(num(1) as usize) {
                        *p = u16::try_from(num(2)).unwrap_or(0);
                    }
                }
                Some(&"status") => {
                    r.connected = num(1) as usize;
                    r.alive = num(2) as usize;
                    r.fresh = num(3) as usize;
                    r.longest_stall_ms = num(4);
                }
                Some(&"lost") => r.lost.push((num(1) as usize, f[2..].join(" "))),
                _ => {}
            }
        }
        r
    }

    /// The clients' output so far, for failure messages.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Whether the client program still runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Waits until every connection is open and echoing.
    pub fn wait_ready(&self, lab: &Lab, within: Duration) -> Result<()> {
        let n = self.connections;
        let ready = lab.wait_until("every echo connection answers", within, || {
            let r = self.report();
            r.connected == n && r.fresh == n
        });
        if let Err(e) = ready {
            bail!("{e}\nclient log:\n{}", self.log());
        }
        Ok(())
    }
}

/// argv PORT. Echoes every line back on each connection.
const ECHO_SERVER_PY: &str = r#"
import socketserver, sys

class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)
            self.wfile.flush()

class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

Server(('0.0.0.0', int(sys.argv[1])), Echo).serve_forever()
"#;

/// argv HOST PORT CONNECTIONS INTERVAL_MS LOST_AFTER_MS. Prints `port I P`
/// per connection, `lost I WHY` once per lost connection, and every 200 ms
/// `status CONNECTED ALIVE FRESH LONGEST_STALL_MS` (fresh: echoed within the
/// last second).
const ECHO_CLIENT_PY: &str = r#"
import selectors, socket, sys, time

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
interval, lost_after = int(sys.argv[4]) / 1000.0, int(sys.argv[5]) / 1000.0
sel = selectors.DefaultSelector()
conns = []
out = sys.stdout

def lose(c, why):
    if c['alive']:
        c['alive'] = False
        out.write('lost %d %s\n' % (c['i'], why))
        try:
            sel.unregister(c['s'])
        except Exception:
            pass
        c['s'].close()

for i in range(n):
    s = socket.create_connection((host, port), timeout=5)
    s.setblocking(False)
    c = {'i': i, 's': s, 'seq': 0, 'sent': None, 'buf': b'', 'alive': True,
         'echoed': time.monotonic(), 'stall': 0.0}
    conns.append(c)
    sel.register(s, selectors.EVENT_READ, c)
    out.write('port %d %d\n' % (i, s.getsockname()[1]))
out.flush()

tick = report = time.monotonic()
while True:
    for key, _ in sel.select(max(0.0, min(tick, report) - time.monotonic())):
        c = key.data
        try:
            data = c['s'].recv(4096)
        except BlockingIOError:
            continue
        except OSError as e:
            lose(c, type(e).__name__)
            continue
        if not data:
            lose(c, 'closed')
            continue
        c['buf'] += data
        while c['alive'] and b'\n' in c['buf']:
            line, _, c['buf'] = c['buf'].partition(b'\n')
            if c['sent'] is None or line != b'c%d %d' % (c['i'], c['seq']):
                lose(c, 'wrong echo %r' % line[:40])
                break
            now = time.monotonic()
            c['stall'] = max(c['stall'], now - c['sent'])
            c['sent'] = None
            c['echoed'] = now
    now = time.monotonic()
    if now >= tick:
        for c in conns:
            if not c['alive']:
                continue
            if c['sent'] is None:
                c['seq'] += 1
                try:
                    c['s'].send(b'c%d %d\n' % (c['i'], c['seq']))
                    c['sent'] = now
                except OSError as e:
                    lose(c, type(e).__name__)
            elif now - c['sent'] > lost_after:
                lose(c, 'no echo for %.1f s' % (now - c['sent']))
            else:
                c['stall'] = max(c['stall'], now - c['sent'])
        tick += interval
    if now >= report:
        alive = [c for c in conns if c['alive']]
        fresh = sum(1 for c in alive if now - c['echoed'] < 1.0)
        stall = max([c['stall'] for c in conns] + [0.0])
        out.write('status %d %d %d %d\n' % (len(conns), len(alive), fresh, stall * 1000))
        out.flush()
        report += 0.2
"#;
