//! How traffic split between backends.

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
