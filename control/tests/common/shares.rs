//! How traffic split between backends.

use std::net::SocketAddr;
use std::time::Duration;

use viplab::Lab;

use super::Vipd;

/// Asserts that `counts` split in proportion to `weights`, each share within
/// `tolerance` (relative) of its expected value.
pub fn assert_proportional(counts: &[usize], weights: &[u32], tolerance: f64) {
    let total: usize = counts.iter().sum();
    let wsum: u32 = weights.iter().sum();
    for (i, (&c, &w)) in counts.iter().zip(weights).enumerate() {
        let expected = total as f64 * f64::from(w) / f64::from(wsum);
        let err = (c as f64 - expected).abs() / expected.max(1.0);
        assert!(
            err <= tolerance,
            "backend be{} got {c} of {total} requests, expected {expected:.0} (weight {w} of {wsum}): off by {:.1}%",
            i + 1,
            err * 100.0
        );
    }
}

/// `n` new connections from the client to `addr`, 8 at a time: every one
/// answered, and split over backends `be1..` in proportion to `weights`
/// within `tolerance`.
pub fn assert_weighted_burst(
    lab: &Lab,
    vipd: &Vipd,
    addr: impl Into<SocketAddr>,
    n: usize,
    weights: &[u32],
    tolerance: f64,
) {
    let report = lab.http_burst("client", addr, n, 8).expect("burst");
    assert_eq!(
        report.failed,
        0,
        "failed requests: {:?}\nstats: {:?}\n{}",
        report.errors,
        vipd.stats(),
        vipd.log()
    );
    let counts: Vec<usize> = (1..=weights.len())
        .map(|i| report.by_body.get(&format!("be{i}")).copied().unwrap_or(0))
        .collect();
    assert_proportional(&counts, weights, tolerance);
}

/// The source address and port a backend saw for a request to `addr`
/// (its `/peer` answer), as `ip:port`.
pub fn source_seen_by_backend(lab: &Lab, addr: impl Into<SocketAddr>) -> String {
    lab.http_get_path("client", addr, "/peer", Duration::from_secs(3))
        .expect("GET /peer")
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}
