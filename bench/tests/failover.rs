//! Scenario 7 through the public API (needs root and a vipd binary next to
//! the test executable's directory, i.e. `cargo build -p vipd` first): a
//! small UDP stream across each failover event. Checks what the client saw,
//! not how fast: every event sent packets, lost fewer than it sent, moved to
//! the other node or site, and was answered afterwards.

use std::time::Duration;

use vipbench::{Outcome, Plan, Scenario};

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn failover_events_move_the_traffic_and_recover() {
    let dir = std::env::temp_dir().join(format!("vipbench-failover-{}", std::process::id()));
    let plan = Plan {
        scenarios: vec![Scenario::Failover],
        failover_pps: 2_000,
        failover_after: Duration::from_millis(300),
        ..Plan::quick(dir.clone())
    };
    let mut said = Vec::new();
    let report = vipbench::run(&plan, &mut |p| said.push(p.what.to_string())).expect("bench run");
    let row = &report.rows[0];
    assert_eq!(row.id, "failover");
    let m = match &row.outcome {
        Outcome::Measured(m) => m,
        Outcome::Unavailable { reason } => panic!("failover unavailable: {reason}"),
    };
    let names: Vec<&str> = m.failover.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["vrrp_sigkill", "vrrp_sigterm", "bgp_site_sigkill"]);
    for e in &m.failover {
        assert!(e.sent > 0, "{}: nothing sent", e.event);
        assert!(e.lost < e.sent, "{}: lost all {} packets", e.event, e.sent);
        assert!(
            e.answered_after > 0,
            "{}: nothing answered after the failure: {e:?}",
            e.event
        );
        assert_ne!(e.before, e.after, "{}: the server did not change", e.event);
        assert!(e.rate_pps > 0.0, "{e:?}");
        assert_eq!(
            e.lost > 0,
            e.outage_ms > 0.0,
            "an outage is measured exactly when packets were lost: {e:?}"
        );
        println!(
            "{}: sent {}, lost {}, outage {:.1} ms, {} -> {}",
            e.label, e.sent, e.lost, e.outage_ms, e.before, e.after
        );
    }
    for e in &m.failover[..2] {
        assert_eq!(
            (e.before.as_str(), e.after.as_str()),
            ("lb1", "lb2"),
            "{e:?}"
        );
    }
    let bgp = &m.failover[2];
    assert_eq!(
        (bgp.before.as_str(), bgp.after.as_str()),
        ("site A", "site B"),
        "{bgp:?}"
    );
    assert_eq!(
        m.sent,
        m.failover.iter().map(|e| e.sent).sum::<u64>(),
        "the row adds up its events"
    );
    for event in ["SIGKILL of the master", "SIGTERM of the master", "site A"] {
        assert!(
            said.iter().any(|w| w.contains(event)),
            "no progress line about {event}: {said:?}"
        );
    }

    let files = report.write(&dir).expect("writing the report");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.json).unwrap()).expect("JSON parses");
    let events = json["rows"][0]["outcome"]["failover"]
        .as_array()
        .expect("failover events in the JSON");
    assert_eq!(events.len(), 3);
    assert_eq!(events[2]["lost"].as_u64(), Some(bgp.lost));
    let md = std::fs::read_to_string(&files.markdown).unwrap();
    for e in &m.failover {
        let line = md
            .lines()
            .find(|l| l.starts_with(&format!("| {} |", e.label)))
            .unwrap_or_else(|| panic!("markdown lacks {}: {md}", e.label));
        assert!(
            line.contains(&format!("| {} | {} |", e.sent, e.lost)),
            "{line}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
