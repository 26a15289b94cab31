//! Very short real runs (need root, and `cargo build -p vipd` first): the
//! ceiling, the raw AF_XDP forward, vipd NAT with and without the fast path
//! and vipd's new-connection row for one second each through the bench
//! topology, and vipd's IPv4/IPv6 NAT pairs. Checks that the sink verified
//! what it counted (every frame right, vipd's addressed to a backend) and
//! that the three report files exist and parse. No timing assertions: only
//! correctness.

use std::time::Duration;

use vipbench::{Family, Forward, NewConnDut, Outcome, Plan, Row, Scenario};

/// One bench run at a time: two at once would share the two cores their
/// pinning assumes, and the AF_XDP sockets of two vipd nodes were seen to
/// fail to come up under that load.
static ONE_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_run() -> std::sync::MutexGuard<'static, ()> {
    ONE_RUN.lock().unwrap_or_else(|p| p.into_inner())
}

/// The row was measured, and every frame it counts the sink verified.
fn assert_verified(row: &Row) {
    match &row.outcome {
        Outcome::Measured(m) => {
            assert!(m.sent > 0, "{}: generator sent nothing", row.id);
            assert!(m.delivered > 0, "{}: sink verified nothing", row.id);
            assert_eq!(
                m.malformed, 0,
                "{}: frames with a wrong checksum or address",
                row.id
            );
            assert_eq!(
                m.delivered,
                m.verified.min(m.sent),
                "{}: delivered is what the sink verified",
                row.id
            );
            assert!(m.delivered_pps > 0.0 && m.offered_pps >= m.delivered_pps);
        }
        Outcome::Unavailable { reason } => panic!("{} unavailable: {reason}", row.id),
    }
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn quick_ceiling_and_afxdp_count_packets_and_write_reports() {
    let _turn = one_run();
    let dir = std::env::temp_dir().join(format!("vipbench-test-{}", std::process::id()));
    let plan = Plan {
        scenarios: vec![
            Scenario::Ceiling,
            Scenario::AfXdp,
            Scenario::Vipd(Forward::Nat),
            Scenario::VipdWorkers,
            Scenario::NewConns(NewConnDut::Vipd),
        ],
        duration: Duration::from_secs(1),
        warmup: Duration::ZERO,
        latency_pps: 20_000,
        latency_duration: Duration::from_millis(300),
        new_conn_flows: 1_000_000,
        ..Plan::quick(dir.clone())
    };
    let mut steps = Vec::new();
    let report = vipbench::run(&plan, &mut |p| steps.push((p.step, p.steps))).expect("bench run");
    assert_eq!(steps, (1..=5).map(|i| (i, 5)).collect::<Vec<_>>());
    assert_eq!(report.rows.len(), 5);
    report.rows.iter().for_each(assert_verified);
    let measured = |i: usize| match &report.rows[i].outcome {
        Outcome::Measured(m) => m.clone(),
        Outcome::Unavailable { reason } => panic!("{reason}"),
    };
    let (ceiling, nat) = (measured(0), measured(2));
    let want = nat.delivered_pps / ceiling.delivered_pps;
    assert!(
        nat.ratio_to_ceiling
            .is_some_and(|r| (r - want).abs() < 1e-9),
        "{:?} for {want}",
        nat.ratio_to_ceiling
    );
    assert_eq!(nat.ratio_to_kernel, None, "no kernel scenario in this run");

    let files = report.write(&dir).expect("writing the report");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.json).unwrap()).expect("JSON parses");
    let rows = json["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["id"], "ceiling");
    assert!(rows[2]["outcome"]["verified"].as_u64().unwrap() > 0);
    assert_eq!(rows[2]["outcome"]["malformed"].as_u64(), Some(0));

    let md = std::fs::read_to_string(&files.markdown).unwrap();
    for row in &report.rows {
        assert!(
            md.lines()
                .any(|l| l.starts_with("| ") && l.contains(&row.label)),
            "markdown lacks {}",
            row.label
        );
    }
    let svg = std::fs::read_to_string(&files.svg).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert_eq!(
        doc.descendants()
            .filter(|n| n.attribute("class") == Some("bar"))
            .count(),
        report.rows.len(),
        "one bar per row"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn nat_pairs_deliver_verified_ipv4_and_ipv6_frames_to_the_backends() {
    let _turn = one_run();
    let dir = std::env::temp_dir().join(format!("vipbench-nat6-test-{}", std::process::id()));
    let plan = Plan {
        scenarios: vec![Scenario::NatFamilies],
        duration: Duration::from_secs(1),
        warmup: Duration::ZERO,
        search_steps: 2,
        latency_pps: 20_000,
        latency_duration: Duration::from_millis(300),
        ..Plan::quick(dir.clone())
    };
    let report = vipbench::run(&plan, &mut |_| {}).expect("bench run");
    let got: Vec<(&str, Family, usize)> = report
        .rows
        .iter()
        .map(|r| (r.id.as_str(), r.family, r.frame_size))
        .collect();
    assert_eq!(
        got,
        [
            ("vipd_nat_ipv4_64", Family::Ipv4, 64),
            ("vipd_nat_ipv6_64", Family::Ipv6, 64),
            ("vipd_nat_ipv4_84", Family::Ipv4, 84),
            ("vipd_nat_ipv6_84", Family::Ipv6, 84),
        ]
    );
    report.rows.iter().for_each(assert_verified);
    // 64-byte IPv6 frames have no room for the timestamp; 84-byte ones do.
    let latency = |i: usize| report.rows[i].measured().unwrap().latency.is_some();
    assert_eq!((latency(1), latency(3)), (false, true));
    for size in [64, 84] {
        let name = format!("IPv6 nat / IPv4 nat, {size}-byte frames");
        let t = report
            .targets
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no figure {name}"));
        assert!(t.value.is_some_and(|v| v > 0.0), "{name}: {t:?}");
    }
    let vipd6 = std::fs::read_to_string(dir.join("vipd-nat6.toml")).unwrap();
    assert!(vipd6.contains("vip = \"2001:db8::50\""), "{vipd6}");
    assert!(
        vipd6.contains("address = \"[2001:db8:1::11]:80\""),
        "{vipd6}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
