//! End to end: health checks steer traffic. A killed backend stops getting
//! new connections within fall × interval + 1 s, the sorry server answers
//! when every backend is down, and a backend comes back after rise checks.

mod common;

use std::net::SocketAddrV4;
use std::time::Duration;

use common::*;

const INTERVAL_MS: u64 = 200;
const RISE: u32 = 2;
const FALL: u32 = 2;

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn failed_backends_get_no_traffic_and_sorry_server_answers() {
    let vip = viplab::vip(2);
    let lab = nat_lab("hc", 3, true);
    let services = [ServiceConf {
        vip: vip.into(),
        port: SERVICE_PORT,
        scheduler: "rr",
        forward: "nat",
        weights: vec![1, 1, 1],
        check: http_check(INTERVAL_MS, RISE, FALL),
        extra: format!("sorry_server = \"{}\"", lab.sorry_addr()),
    }];
    let vipd =
        Vipd::start(&lab, "lb1", &node_config(&lab, "lb1", 1, "", &services)).expect("vipd starts");
    lab.wait_until("3 backends healthy", Duration::from_secs(20), || {
        vipd.healthy_backends() == 3
    })
    .expect("healthy");
    let addr = SocketAddrV4::new(vip, SERVICE_PORT);
    let before = lab.http_burst("client", addr, 150, 4).expect("burst");
    assert_eq!(before.failed, 0, "{:?}", before.errors);
    assert!(
        before.by_body.get("be1").copied().unwrap_or(0) > 0,
        "be1 should serve before it fails: {:?}",
        before.by_body
    );

    // Kill be1: within fall × interval + 1 s it is out, and no request fails after that.
    lab.stop_backend(1).expect("stop be1");
    let limit = Duration::from_millis(u64::from(FALL) * INTERVAL_MS + 1000);
    lab.wait_until("be1 marked down", limit, || vipd.healthy_backends() == 2)
        .expect("be1 down in time");
    let after = lab.http_burst("client", addr, 300, 4).expect("burst");
    assert_eq!(
        after.failed, 0,
        "requests failed after be1 was marked down: {:?}",
        after.errors
    );
    assert_eq!(
        after.by_body.get("be1"),
        None,
        "be1 still got new connections: {:?}",
        after.by_body
    );
    assert!(
        after.by_body.contains_key("be2") && after.by_body.contains_key("be3"),
        "{:?}",
        after.by_body
    );

    // Every backend down: the sorry server answers.
    lab.stop_backend(2).expect("stop be2");
    lab.stop_backend(3).expect("stop be3");
    lab.wait_until("all backends down", limit * 2, || {
        vipd.healthy_backends() == 0
    })
    .expect("all down");
    let sorry = lab.http_burst("client", addr, 50, 4).expect("burst");
    assert_eq!(sorry.failed, 0, "{:?}", sorry.errors);
    assert_eq!(sorry.by_body.get("sorry"), Some(&50), "{:?}", sorry.by_body);

    // be1 returns after rise checks and takes traffic again; the sorry server stops answering.
    lab.start_backend(1).expect("start be1");
    let rise = Duration::from_millis(u64::from(RISE) * INTERVAL_MS + 1000);
    lab.wait_until("be1 back up", rise, || vipd.healthy_backends() == 1)
        .expect("be1 up in time");
    let back = lab.http_burst("client", addr, 50, 4).expect("burst");
    assert_eq!(back.failed, 0, "{:?}", back.errors);
    assert_eq!(back.by_body.get("be1"), Some(&50), "{:?}", back.by_body);
}
