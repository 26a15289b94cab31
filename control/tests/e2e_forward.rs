//! End to end: a vipd node in a namespace lab forwards real HTTP traffic from
//! a client to real backends over AF_XDP, in each forwarding mode, with one
//! and with two queues per interface.

mod common;

use std::net::SocketAddrV4;
use std::time::Duration;

use common::*;
use serde_json::Value;
use viplab::{Gateway, Lab, LabSpec, Side};

const WEIGHTS: [u32; 3] = [3, 2, 1];
const ECHO_PORT: u16 = 9000;

/// Holds one connection, asks it 5 times, opens 30 short connections, asks
/// the long one 5 more times; prints the names as JSON.
const LONG_LIVED: &str = r#"
import json, socket, sys, time
addr = (sys.argv[1], int(sys.argv[2]))
def ask(f):
    f.write(b"x\n"); f.flush(); return f.readline().decode().strip()
long = socket.create_connection(addr, timeout=3); lf = long.makefile("rwb")
names = [ask(lf) for _ in range(5)]
short = []
for _ in range(30):
    s = socket.create_connection(addr, timeout=3); f = s.makefile("rwb"); short.append(ask(f)); s.close()
    time.sleep(0.01)
names += [ask(lf) for _ in range(5)]
print(json.dumps({"long": names, "short": short}))
"#;

fn forwarding(mode: &str, queues: u16) {
    let name = viplab::unique_name(&format!("f{}{queues}", &mode[..2]));
    let vip = viplab::vip(1);
    let lab = Lab::up(LabSpec {
        name,
        backends: 3,
        queues,
        backend_gateway: if mode == "nat" {
            Gateway::Lb(1)
        } else {
            Gateway::Router
        },
        dr_vips: if mode == "dr" { vec![vip] } else { vec![] },
        ..LabSpec::default()
    })
    .expect("lab up");
    start_name_servers(&lab, 3, ECHO_PORT);
    let snat = if mode == "fullnat" {
        "snat = [\"10.77.1.200\"]".to_string()
    } else {
        String::new()
    };
    let services = [
        ServiceConf {
            vip: vip.into(),
            port: SERVICE_PORT,
            scheduler: "wrr",
            forward: mode,
            weights: WEIGHTS.to_vec(),
            check: http_check(200, 1, 2),
            extra: snat.clone(),
        },
        ServiceConf {
            vip: vip.into(),
            port: ECHO_PORT,
            scheduler: "rr",
            forward: mode,
            weights: vec![1, 1, 1],
            check: r#"{ kind = "tcp", interval_ms = 200, timeout_ms = 500, rise = 1, fall = 2 }"#
                .into(),
            extra: snat,
        },
    ];
    let vipd = Vipd::start(
        &lab,
        "lb1",
        &node_config(&lab, "lb1", queues, "", &services),
    )
    .expect("vipd starts");
    lab.wait_until("all 6 backends healthy", Duration::from_secs(20), || {
        vipd.healthy_backends() == 6
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
    let addr = SocketAddrV4::new(vip, SERVICE_PORT);

    // Weighted split over many new connections.
    assert_weighted_burst(&lab, &vipd, addr, 1200, &WEIGHTS, 0.10);

    // The backend sees the client (nat, dr) or our source address (fullnat).
    let seen = source_seen_by_backend(&lab, addr);
    let expected_src = if mode == "fullnat" {
        "10.77.1.200".to_string()
    } else {
        lab.client_ip().to_string()
    };
    assert!(
        seen.starts_with(&format!("{expected_src}:")),
        "backend saw source {seen:?}, expected {expected_src}"
    );

    // ping answers, and the client's ARP entry for the VIP points at the node.
    lab.exec_ok("client", &["ping", "-c", "2", "-W", "2", &vip.to_string()])
        .expect("ping VIP");
    let lb_mac = mac_of(&lab, "lb1", "eth0").expect("lb mac");
    assert_eq!(
        client_neighbour(&lab, vip).as_deref(),
        Some(lb_mac.as_str()),
        "client's ARP entry for the VIP"
    );

    // A long-lived connection keeps its backend while new ones spread.
    let out = lab
        .exec_ok(
            "client",
            &[
                "/usr/bin/python3",
                "-c",
                LONG_LIVED,
                &vip.to_string(),
                &ECHO_PORT.to_string(),
            ],
        )
        .expect("long-lived");
    let v: Value = serde_json::from_str(out.trim()).expect("json");
    let long: Vec<&str> = v["long"]
        .as_array()
        .expect("long")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(long.len(), 10);
    assert!(
        long.iter().all(|n| *n == long[0] && n.starts_with("be")),
        "long-lived connection moved: {long:?}"
    );
    let mut short: Vec<&str> = v["short"]
        .as_array()
        .expect("short")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    short.sort();
    short.dedup();
    assert_eq!(
        short.len(),
        3,
        "new connections should reach all three backends: {short:?}"
    );

    // The node's own addresses still reach its kernel: ping and a TCP service.
    let own = lab.lb_ip(1, Side::Client);
    lab.exec_ok("client", &["ping", "-c", "1", "-W", "2", &own.to_string()])
        .expect("ping node");
    let _kernel_http = lab
        .spawn(
            "lb1",
            &[
                "/usr/bin/python3",
                "-m",
                "http.server",
                "--bind",
                &own.to_string(),
                "7000",
            ],
        )
        .expect("kernel http server");
    lab.wait_until(
        "the node's own TCP service answers",
        Duration::from_secs(10),
        || {
            lab.http_get(
                "client",
                SocketAddrV4::new(own, 7000),
                Duration::from_secs(1),
            )
            .is_ok()
        },
    )
    .expect("kernel TCP service reachable");

    let mut vipd = vipd;
    vipd.terminate(&lab).expect("clean stop");
    assert!(
        !has_xdp(&lab, "lb1", "eth0") && !has_xdp(&lab, "lb1", "eth1"),
        "XDP program left attached after stop"
    );
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn nat_one_queue() {
    forwarding("nat", 1);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn nat_two_queues() {
    forwarding("nat", 2);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn fullnat_one_queue() {
    forwarding("fullnat", 1);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn fullnat_two_queues() {
    forwarding("fullnat", 2);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn dr_one_queue() {
    forwarding("dr", 1);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn dr_two_queues() {
    forwarding("dr", 2);
}
