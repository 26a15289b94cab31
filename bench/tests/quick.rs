//! A very short real run (needs root): the ceiling and the raw AF_XDP
//! forward for one second each through the bench topology. Checks that the
//! sink counted packets and that the three report files exist and parse.
//! No timing assertions: only correctness.

use std::time::Duration;

use vipbench::{Outcome, Plan, Scenario};

#[test]
fn quick_ceiling_and_afxdp_count_packets_and_write_reports() {
    let dir = std::env::temp_dir().join(format!("vipbench-test-{}", std::process::id()));
    let plan = Plan {
        scenarios: vec![Scenario::Ceiling, Scenario::AfXdp],
        duration: Duration::from_secs(1),
        warmup: Duration::ZERO,
        latency_pps: 20_000,
        latency_duration: Duration::from_millis(300),
        ..Plan::quick(dir.clone())
    };
    let mut steps = Vec::new();
    let report = vipbench::run(&plan, &mut |p| steps.push((p.step, p.steps))).expect("bench run");
    assert_eq!(steps, vec![(1, 2), (2, 2)]);
    assert_eq!(report.rows.len(), 2);
    for row in &report.rows {
        match &row.outcome {
            Outcome::Measured(m) => {
                assert!(m.sent > 0, "{}: generator sent nothing", row.id);
                assert!(m.delivered > 0, "{}: sink counted nothing", row.id);
                assert!(
                    m.delivered <= m.sent,
                    "{}: more delivered than sent",
                    row.id
                );
                assert!(m.delivered_pps > 0.0 && m.offered_pps >= m.delivered_pps);
            }
            Outcome::Unavailable { reason } => panic!("{} unavailable: {reason}", row.id),
        }
    }
    let ceiling = report.rows[0].outcome.clone();
    let Outcome::Measured(c) = ceiling else {
        unreachable!()
    };
    assert_eq!(c.ratio_to_ceiling, Some(1.0));
    assert_eq!(c.ratio_to_kernel, None, "no kernel scenario in this run");

    let files = report.write(&dir).expect("writing the report");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.json).unwrap()).expect("JSON parses");
    let rows = json["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], "ceiling");
    assert!(rows[1]["outcome"]["delivered"].as_u64().unwrap() > 0);

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
        2
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
