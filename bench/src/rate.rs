//! Rate arithmetic: sizing and pacing the generator, turning counts into rates.

use std::time::Duration;

/// Frames for the next test-run call: as many as the last call's rate
/// (`last` frames in `took`) runs in `target`, within 4 Ki..16 Mi.
pub fn next_chunk(last: u32, took: Duration, target: Duration) -> u32 {
    let rate = per_second(u64::from(last), took);
    (rate * target.as_secs_f64()).clamp(4096.0, 16_777_216.0) as u32
}

/// The generator's pacing interval for `pps` (0 when unpaced).
pub fn interval_ns(pps: Option<u64>) -> u64 {
    match pps {
        Some(p) if p > 0 => (1_000_000_000 / p).max(1),
        _ => 0,
    }
}

/// Packets per second, 0 for an empty interval.
pub fn per_second(count: u64, over: Duration) -> f64 {
    let s = over.as_secs_f64();
    if s > 0.0 {
        count as f64 / s
    } else {
        0.0
    }
}

/// `a / b`, `None` when `b` is not a positive number.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && b.is_finite() && a.is_finite()).then(|| a / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_last_rate_within_bounds() {
        // 1 M frames in 0.5 s: 2 Mpps, 250 ms worth is 500 k.
        assert_eq!(
            next_chunk(
                1_000_000,
                Duration::from_millis(500),
                Duration::from_millis(250)
            ),
            500_000
        );
        assert_eq!(
            next_chunk(10, Duration::from_secs(1), Duration::from_millis(250)),
            4096
        );
        assert_eq!(
            next_chunk(u32::MAX, Duration::from_millis(1), Duration::from_secs(1)),
            16_777_216
        );
        assert_eq!(
            next_chunk(100, Duration::ZERO, Duration::from_secs(1)),
            4096
        );
    }

    #[test]
    fn pacing_interval() {
        assert_eq!(interval_ns(Some(1_000_000)), 1_000);
        assert_eq!(interval_ns(Some(3)), 333_333_333);
        assert_eq!(interval_ns(Some(u64::MAX)), 1);
        assert_eq!(interval_ns(Some(0)), 0);
        assert_eq!(interval_ns(None), 0);
    }

    #[test]
    fn rates_and_ratios() {
        assert_eq!(
            per_second(3_000_000, Duration::from_millis(1500)),
            2_000_000.0
        );
        assert_eq!(per_second(5, Duration::ZERO), 0.0);
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }
}
