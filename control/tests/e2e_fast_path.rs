//! The XDP fast path with a real client and a real backend through a vipd
//! NAT node: a long-lived connection's packets after the handshake are
//! forwarded by the XDP program, not the worker, and the worker stays the
//! authority: it keeps an idle-looking connection alive from the program's
//! last-seen time, expires it when it really is idle, takes it back on FIN,
//! on its backend going down (with `on_backend_down = "drop"`) and when a
//! reload turns the fast path off. An IPv6 connection rides the fast path
//! the same way.
//!
//! On veth, frames sent from XDP reach the peer only when the peer has an
//! XDP program or GRO on (the lab's switch ports facing the node have GRO
//! on); the test also turns it off there and checks that vipd notices and
//! keeps the connections in the workers.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::Duration;

use common::*;
use ctlproto::{reply, Command};
use viplab::{Gateway, Lab, LabProcess, LabSpec};

const ECHO_PORT: u16 = 7000;
/// Established connections idle this long expire.
const ESTABLISHED_MS: u64 = 3_000;

/// argv: PORT ADDRESS. Echoes every line back on each connection.
const ECHO_SERVER: &str = r#"
import socket, sys, threading
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[2] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[2], int(sys.argv[1])))
s.listen(64)
def serve(c):
    with c, c.makefile('rb') as f:
        for line in f:
            c.sendall(line)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

fn config(lab: &Lab, vip: IpAddr, fast_path: bool) -> String {
    let service = ServiceConf {
        vip,
        port: ECHO_PORT,
        scheduler: "rr",
        forward: "nat",
        weights: vec![1],
        // The lab's HTTP server on port 8080 stands for the backend's
        // health: stopping it fails the backend, the echo server stays.
        check: r#"{ kind = "tcp", port = 8080, interval_ms = 200, timeout_ms = 300, rise = 1, fall = 1 }"#
            .into(),
        extra: "on_backend_down = \"drop\"".into(),
    };
    node_config(
        lab,
        "lb1",
        1,
        &format!(
            "fast_path = {fast_path}\n[dataplane.timeouts]\ntcp_established_ms = {ESTABLISHED_MS}"
        ),
        &[service],
    )
}

/// A client connection through the VIP, exchanging numbered lines.
struct Echo {
    reader: BufReader<TcpStream>,
    sent: u64,
}

impl Echo {
    fn connect(vip: IpAddr) -> Echo {
        let addr = SocketAddr::new(vip, ECHO_PORT);
        let stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(3)).expect("connect to the VIP");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("read timeout");
        Echo {
            reader: BufReader::new(stream),
            sent: 0,
        }
    }

    /// Sends one line; true when it comes back intact.
    fn round_trip(&mut self) -> bool {
        self.sent += 1;
        let line = format!("line {} {}\n", self.sent, "x".repeat(200));
        if self.reader.get_mut().write_all(line.as_bytes()).is_err() {
            return false;
        }
        let mut back = String::new();
        matches!(self.reader.read_line(&mut back), Ok(n) if n > 0) && back == line
    }

    /// `n` round trips `gap` apart; all must succeed.
    fn exchange(&mut self, n: usize, gap: Duration, what: &str) {
        for i in 0..n {
            assert!(self.round_trip(), "{what}: round trip {i} of {n} failed");
            std::thread::sleep(gap);
        }
    }

    fn local_port(&self) -> u16 {
        self.reader
            .get_ref()
            .local_addr()
            .expect("local address")
            .port()
    }
}

/// This client's flow on local port `port`, as `vipctl flows` lists it.
fn flow(vipd: &Vipd, client: Ipv4Addr, port: u16) -> Option<reply::FlowMatch> {
    let v: reply::Flows = vipd
        .call(Command::Flows {
            client: Some(client.to_string()),
            top: None,
        })
        .ok()?;
    let want = SocketAddrV4::new(client, port).to_string();
    v.matches.into_iter().find(|m| m.client == want)
}

/// Packets the XDP program counted under `decision`.
fn xdp_decision(vipd: &Vipd, decision: &str) -> u64 {
    match vipd.stats().xdp {
        reply::XdpStats::Counters { by_decision, .. } => {
            by_decision.get(decision).copied().unwrap_or(0)
        }
        reply::XdpStats::Unavailable { .. } => 0,
    }
}

/// Packets `vipctl backends` counts for the one backend.
fn backend_packets(vipd: &Vipd) -> u64 {
    vipd.call::<reply::Backends>(Command::Backends {})
        .ok()
        .and_then(|v| v.backends.first().map(|b| b.packets))
        .unwrap_or(0)
}

fn worker_rx(vipd: &Vipd) -> u64 {
    vipd.stats().cores.iter().map(|c| c.rx_packets).sum()
}

/// The echo server on the backend, listening on `address`.
fn echo_server(lab: &Lab, address: &str) -> LabProcess {
    lab.spawn(
        "be1",
        &[
            "python3",
            "-c",
            ECHO_SERVER,
            &ECHO_PORT.to_string(),
            address,
        ],
    )
    .expect("echo server")
}

/// Talks `talk` round trips over `echo`, after its handshake and first
/// exchanges, and checks the XDP program carried them, not the worker,
/// and that the backend's counters include what the program forwarded.
fn talk_through_the_fast_path(vipd: &Vipd, echo: &mut Echo, talk: usize, gap: Duration) {
    let (fast0, rx0, counted0) = (
        xdp_decision(vipd, "fast_forwarded"),
        worker_rx(vipd),
        backend_packets(vipd),
    );
    echo.exchange(talk, gap, "in the fast path");
    let fast = xdp_decision(vipd, "fast_forwarded") - fast0;
    let rx = worker_rx(vipd) - rx0;
    // The backend's packet count includes the fast path's.
    let counted = backend_packets(vipd) - counted0;
    assert!(
        counted >= fast,
        "vipctl backends counted {counted} packets, the fast path forwarded {fast}"
    );
    // Each round trip is a segment each way plus ACKs.
    assert!(
        fast >= 2 * talk as u64,
        "{fast} packets fast-forwarded for {talk} round trips (worker saw {rx})"
    );
    assert!(
        rx * 10 <= fast,
        "the worker saw {rx} packets against {fast} in the fast path"
    );
}

fn egress_usable(vipd: &Vipd) -> Vec<bool> {
    vipd.call::<reply::Status>(Command::Status {})
        .map(|v| v.interfaces.iter().map(|i| i.fast_path_egress).collect())
        .unwrap_or_default()
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn established_connections_ride_the_fast_path_and_come_back_when_they_must() {
    let lab = Lab::up(LabSpec {
        name: viplab::unique_name("fastp"),
        backends: 1,
        backend_gateway: Gateway::Lb(1),
        ..LabSpec::default()
    })
    .expect("lab up");
    let _echo = echo_server(&lab, "0.0.0.0");
    let vip = IpAddr::from(viplab::vip(1));
    let client = lab.client_ip();
    let vipd = Vipd::start(&lab, "lb1", &config(&lab, vip, true)).expect("vipd starts");
    lab.wait_until("backend healthy", Duration::from_secs(20), || {
        vipd.healthy_backends() == 1
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
    let wait = |what: &str, cond: &mut dyn FnMut() -> bool| {
        lab.wait_until(what, Duration::from_secs(15), cond)
            .unwrap_or_else(|e| panic!("{e}\nstats: {:?}\n{}", vipd.stats(), vipd.log()));
    };

    // The lab's switch ports facing the node have GRO on. With the kernel's
    // default (off) XDP frames would be dropped there: vipd notices within
    // its probe period and keeps connections in the workers, which still
    // carry them; with GRO back on the fast path resumes.
    assert_eq!(egress_usable(&vipd), vec![true, true], "{}", vipd.log());
    let set_gro = |on: &str| {
        for peer in ["lb1c", "lb1b"] {
            lab.exec_ok("sw", &["ethtool", "-K", peer, "gro", on])
                .expect("GRO at the node's peer");
        }
    };
    set_gro("off");
    wait("vipd finds both ports unusable", &mut || {
        egress_usable(&vipd) == vec![false, false]
    });
    std::thread::scope(|s| {
        s.spawn(|| {
            lab.enter("client").expect("enter the client namespace");
            let fast0 = xdp_decision(&vipd, "fast_forwarded");
            let mut echo = Echo::connect(vip);
            echo.exchange(10, Duration::from_millis(20), "with GRO off at the peers");
            let f = flow(&vipd, client, echo.local_port()).expect("the connection is listed");
            assert!(!f.fast_path, "{f:?}");
            assert_eq!(xdp_decision(&vipd, "fast_forwarded"), fast0);
        });
    });
    set_gro("on");
    wait("vipd finds both ports usable", &mut || {
        egress_usable(&vipd) == vec![true, true]
    });

    std::thread::scope(|s| {
        s.spawn(|| {
            lab.enter("client").expect("enter the client namespace");

            // A connection that talks for longer than the idle timeout: the
            // XDP program carries it, the worker keeps it from last-seen.
            let mut echo = Echo::connect(vip);
            echo.exchange(3, Duration::from_millis(50), "opening");
            let talk = (ESTABLISHED_MS as usize * 2) / 100;
            talk_through_the_fast_path(&vipd, &mut echo, talk, Duration::from_millis(100));
            let f = flow(&vipd, client, echo.local_port()).expect("the connection is listed");
            assert!(f.fast_path, "{f:?}");
            assert!(f.fast_path_idle_ms.is_some_and(|ms| ms < 2_000), "{f:?}");

            // Silent past the timeout, it is gone from the worker and from
            // the program: a late segment reaches the worker, which has no
            // flow for it.
            let no_flow = vipd.drops("no_flow");
            wait("the idle connection expires", &mut || {
                flow(&vipd, client, echo.local_port()).is_none()
            });
            assert!(!echo.round_trip(), "an expired connection still echoed");
            wait("the late segment is dropped as no_flow", &mut || {
                vipd.drops("no_flow") > no_flow
            });

            // FIN takes a connection back from the program.
            let mut echo = Echo::connect(vip);
            echo.exchange(5, Duration::from_millis(20), "second connection");
            let port = echo.local_port();
            assert!(flow(&vipd, client, port).expect("listed").fast_path);
            drop(echo);
            wait("FIN withdraws the connection", &mut || {
                flow(&vipd, client, port).is_none_or(|f| !f.fast_path)
            });

            // The backend fails its check with on_backend_down = "drop":
            // the program stops forwarding, the worker drops and counts.
            let mut echo = Echo::connect(vip);
            echo.exchange(5, Duration::from_millis(20), "third connection");
            let port = echo.local_port();
            let backend_down = vipd.drops("backend_down");
            lab.stop_backend(1).expect("stop the health endpoint");
            wait("the backend is down", &mut || vipd.healthy_backends() == 0);
            wait("its connection is taken back", &mut || {
                flow(&vipd, client, port).is_some_and(|f| !f.fast_path)
            });
            assert!(
                !echo.round_trip(),
                "a dropped backend's connection still echoed"
            );
            assert!(
                vipd.drops("backend_down") > backend_down,
                "{:?}",
                vipd.stats()
            );
            lab.start_backend(1).expect("restart the health endpoint");
            wait("the backend is back", &mut || vipd.healthy_backends() == 1);

            // Drained, a backend takes no new connections, but the ones it
            // has keep going, in the fast path.
            let mut echo = Echo::connect(vip);
            echo.exchange(5, Duration::from_millis(20), "before the drain");
            let port = echo.local_port();
            let backend = SocketAddrV4::new(lab.backend_ip(1), ECHO_PORT).to_string();
            vipd.call::<reply::BackendChange>(Command::Backend {
                op: ctlproto::BackendOp::Drain,
                service: "svc0".into(),
                address: backend.clone(),
                weight: None,
            })
            .expect("drain");
            echo.exchange(5, Duration::from_millis(20), "after the drain");
            assert!(flow(&vipd, client, port).expect("listed").fast_path);
            vipd.call::<reply::BackendChange>(Command::Backend {
                op: ctlproto::BackendOp::Weight,
                service: "svc0".into(),
                address: backend,
                weight: Some(1),
            })
            .expect("weight back to 1");
            drop(echo);

            // A reload with the fast path off takes every connection back;
            // the connection carries on through the worker.
            let mut echo = Echo::connect(vip);
            echo.exchange(5, Duration::from_millis(20), "fourth connection");
            let port = echo.local_port();
            assert!(flow(&vipd, client, port).expect("listed").fast_path);
            std::fs::write(&vipd.config, config(&lab, vip, false)).expect("rewrite the config");
            vipd.call::<reply::Reload>(Command::Reload {})
                .expect("reload");
            wait("reload withdraws the connection", &mut || {
                flow(&vipd, client, port).is_some_and(|f| !f.fast_path)
            });
            let (fast0, rx0) = (xdp_decision(&vipd, "fast_forwarded"), worker_rx(&vipd));
            echo.exchange(10, Duration::from_millis(20), "after the reload");
            assert_eq!(xdp_decision(&vipd, "fast_forwarded"), fast0);
            assert!(worker_rx(&vipd) >= rx0 + 20, "the worker carries it now");
        });
    });
}

/// An IPv6 connection through an IPv6 VIP: after its handshake, its
/// packets are forwarded by the XDP program and counted for its backend,
/// not handled by the worker.
#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn an_ipv6_connection_rides_the_fast_path_after_its_handshake() {
    let lab = Lab::up(LabSpec {
        name: viplab::unique_name("fastsix"),
        backends: 1,
        backend_gateway: Gateway::Lb(1),
        ipv6: true,
        ..LabSpec::default()
    })
    .expect("lab up");
    let _echo = echo_server(&lab, "::");
    let vip = IpAddr::from(viplab::vip6(1));
    let vipd = Vipd::start(&lab, "lb1", &config(&lab, vip, true)).expect("vipd starts");
    lab.wait_until("backend healthy", Duration::from_secs(20), || {
        vipd.healthy_backends() == 1
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
    std::thread::scope(|s| {
        s.spawn(|| {
            lab.enter("client").expect("enter the client namespace");
            let mut echo = Echo::connect(vip);
            echo.exchange(3, Duration::from_millis(50), "opening");
            talk_through_the_fast_path(&vipd, &mut echo, 30, Duration::from_millis(50));
        });
    });
    let mut vipd = vipd;
    vipd.terminate(&lab).expect("clean stop");
}
