//! A very short real run (needs root, and `cargo build -p vipd` first): the
//! ceiling, the raw AF_XDP forward, vipd NAT with and without the fast path
//! and vipd's new-connection row for one second each through the bench
//! topology. Checks that the sink verified what it counted (every
//! frame right, vipd's addressed to a backend) and that the three report
//! files exist and parse. No timing assertions: only correctness.

use std::time::Duration;

use vipbench::{Forward, NewConnDut, Outcome, Plan, Scenario};

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn quick_ceiling_and_afxdp_count_packets_and_write_reports() {
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
    for row in &report.rows {
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
