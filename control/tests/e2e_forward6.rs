//! End to end over IPv6: a vipd node forwards real HTTP traffic from a
//! client to real backends through an IPv6 VIP, in each forwarding mode,
//! with one and two queues per interface, with the kernel's default offloads on every interface the lab does not
//! own. The node answers ping and Neighbor Solicitation for the VIP, and a
//! backend that dies leaves the schedule.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
use viplab::{Gateway, Lab, LabSpec};

const WEIGHTS: [u32; 3] = [3, 2, 1];
const FULLNAT_SOURCE: &str = "2001:db8:77:1::200";

fn forwarding6(mode: &str, queues: u16) {
    let vip4 = viplab::vip(1);
    let vip = viplab::vip6(1);
    let lab = Lab::up(LabSpec {
        name: viplab::unique_name(&format!("f6{}{queues}", &mode[..2])),
        backends: 3,
        queues,
        backend_gateway: if mode == "nat" {
            Gateway::Lb(1)
        } else {
            Gateway::Router
        },
        dr_vips: if mode == "dr" { vec![vip4] } else { vec![] },
        ipv6: true,
        ..LabSpec::default()
    })
    .expect("lab up");
    let service = ServiceConf {
        vip: vip.into(),
        port: SERVICE_PORT,
        scheduler: "wrr",
        forward: mode,
        weights: WEIGHTS.to_vec(),
        check: http_check(200, 1, 2),
        extra: if mode == "fullnat" {
            format!("snat = [\"{FULLNAT_SOURCE}\"]")
        } else {
            String::new()
        },
    };
    let vipd = Vipd::start(
        &lab,
        "lb1",
        &node_config(&lab, "lb1", queues, "", &[service]),
    )
    .expect("vipd starts");
    lab.wait_until(
        "all 3 IPv6 backends healthy",
        Duration::from_secs(20),
        || vipd.healthy_backends() == 3,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
    let addr = SocketAddr::new(vip.into(), SERVICE_PORT);

    // Weighted split over many new connections.
    assert_weighted_burst(&lab, &vipd, addr, 1200, &WEIGHTS, 0.10);

    // The backend sees the client (nat, dr) or the full-NAT source.
    let seen = source_seen_by_backend(&lab, addr);
    let expected: IpAddr = if mode == "fullnat" {
        FULLNAT_SOURCE.parse().expect("address")
    } else {
        lab.client_ip6().into()
    };
    assert!(
        seen.starts_with(&format!("{expected}:")),
        "backend saw source {seen:?}, expected {expected}"
    );

    // ping -6 answers, and the client's neighbour entry for the VIP is the node's MAC.
    lab.exec_ok(
        "client",
        &["ping", "-6", "-c", "2", "-W", "2", &vip.to_string()],
    )
    .unwrap_or_else(|e| panic!("ping -6 {vip}: {e}\n{}", vipd.log()));
    let lb_mac = mac_of(&lab, "lb1", "eth0").expect("lb mac");
    assert_eq!(
        client_neighbour(&lab, vip).as_deref(),
        Some(lb_mac.as_str()),
        "client's neighbour entry for the VIP"
    );

    // A killed backend leaves the schedule; the others take every request.
    lab.stop_backend(3).expect("stop be3");
    lab.wait_until("be3 marked down", Duration::from_secs(10), || {
        vipd.healthy_backends() == 2
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
    let report = lab.http_burst("client", addr, 300, 8).expect("burst");
    assert_eq!(report.failed, 0, "after be3 died: {:?}", report.errors);
    assert_eq!(report.by_body.get("be3"), None, "{:?}", report.by_body);
    let counts: Vec<usize> = (1..=2)
        .map(|i| report.by_body.get(&format!("be{i}")).copied().unwrap_or(0))
        .collect();
    assert_proportional(&counts, &WEIGHTS[..2], 0.15);

    let mut vipd = vipd;
    vipd.terminate(&lab).expect("clean stop");
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn nat_over_ipv6() {
    forwarding6("nat", 1);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn nat_over_ipv6_two_queues() {
    forwarding6("nat", 2);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn fullnat_over_ipv6() {
    forwarding6("fullnat", 1);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn fullnat_over_ipv6_two_queues() {
    forwarding6("fullnat", 2);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn dr_over_ipv6() {
    forwarding6("dr", 1);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn dr_over_ipv6_two_queues() {
    forwarding6("dr", 2);
}
