//! End to end: what a node says of its dataplane interfaces. The XDP mode
//! `auto` chose, the MTU, an MTU changed while running (noticed, logged,
//! used, and an error state when it is above what vipd can receive), and
//! the kernel's drop counters in `vipctl stats` and `/metrics`.

mod common;

use std::time::Duration;

use common::*;
use ctlproto::{reply, Command};
use engine::MAX_MTU;

fn interface<'a>(v: &'a reply::Status, name: &str) -> Option<&'a reply::InterfaceStatus> {
    v.interfaces.iter().find(|i| i.name == name)
}

/// The kernel's counters of interface `name` in `stats`.
fn link<'a>(v: &'a reply::Stats, name: &str) -> Option<&'a reply::LinkStats> {
    v.interfaces.iter().find(|l| match l {
        reply::LinkStats::Counters { name: n, .. }
        | reply::LinkStats::Unavailable { name: n, .. } => n == name,
    })
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn interfaces_show_their_mode_and_an_mtu_change_is_noticed() {
    let lab = nat_lab("if", 1, false);
    let services = [single_service(viplab::vip(1), "nat")];
    let metrics = "metrics = \"127.0.0.1:9100\"";
    let config = node_config(&lab, "lb1", 1, "", &services)
        .replace("[control]\n", &format!("[control]\n{metrics}\n"));
    let mut vipd = Vipd::start(&lab, "lb1", &config).expect("vipd starts");
    let status = || {
        vipd.call::<reply::Status>(Command::Status {})
            .expect("status")
    };

    let s = status();
    for name in ["eth0", "eth1"] {
        let i = interface(&s, name).unwrap_or_else(|| panic!("{name} missing: {s:?}"));
        assert_eq!(i.xdp_mode, "native", "auto picks native on veth: {s:?}");
        assert_eq!(i.mtu, 1500, "{s:?}");
        assert!(i.error.is_none(), "{s:?}");
    }
    let (ok, human, err) = vipctl_run(&vipd.socket, &["status"]);
    assert!(ok, "{err}");
    assert!(
        human.contains("interface eth1  xdp native  mtu 1500"),
        "{human}"
    );

    lab.exec_ok("lb1", &["ip", "link", "set", "dev", "eth1", "mtu", "1400"])
        .expect("lower the MTU");
    lab.wait_until("status shows MTU 1400", Duration::from_secs(5), || {
        interface(&status(), "eth1").is_some_and(|i| i.mtu == 1400)
    })
    .expect("MTU change noticed");
    assert!(
        vipd.log().contains("eth1: MTU changed from 1500 to 1400"),
        "{}",
        vipd.log()
    );

    let above = (MAX_MTU + 30).to_string();
    lab.exec_ok("lb1", &["ip", "link", "set", "dev", "eth1", "mtu", &above])
        .expect("raise the MTU");
    lab.wait_until("status shows the error", Duration::from_secs(5), || {
        interface(&status(), "eth1")
            .and_then(|i| i.error.clone())
            .is_some_and(|e| e.contains(&above) && e.contains(&format!("mtu {MAX_MTU}")))
    })
    .expect("MTU above the limit reported");
    let (_, human, _) = vipctl_run(&vipd.socket, &["status"]);
    assert!(human.contains("ERROR: MTU"), "{human}");

    let stats: reply::Stats = vipd.call(Command::Stats {}).expect("stats");
    // Read as counters, an interface has all four, and the program its
    // refused-keys count.
    for name in ["eth0", "eth1"] {
        assert!(
            matches!(link(&stats, name), Some(reply::LinkStats::Counters { .. })),
            "counters of {name} in {stats:?}"
        );
    }
    assert!(
        matches!(stats.xdp, reply::XdpStats::Counters { .. }),
        "{stats:?}"
    );
    let m = scrape_metrics(&lab, "lb1", "127.0.0.1:9100");
    for name in ["eth0", "eth1"] {
        let key = format!(
            "vipd_interface_dropped_total{{interface=\"{name}\",direction=\"tx\",kind=\"dropped\"}}"
        );
        assert!(m.contains_key(&key), "{key} missing from the metrics");
    }
    assert!(m.contains_key("vipd_xdp_reply_keys_refused_total"));
    vipd.terminate(&lab).expect("clean stop");
}
