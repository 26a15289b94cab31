//! Rate arithmetic: pacing the generator and turning counts into rates.

use std::time::Duration;

/// Paces the generator: at most `pps` frames per second (unlimited when
/// `None`), sent in chunks of whole batches.
#[derive(Clone, Debug)]
pub struct Pacer {
    pps: Option<u64>,
    batch: u32,
    sent: u64,
}

impl Pacer {
    pub fn new(pps: Option<u64>, batch: u32) -> Pacer {
        Pacer {
            pps: pps.filter(|&p| p > 0),
            batch: batch.max(1),
            sent: 0,
        }
    }

    pub fn batch(&self) -> u32 {
        self.batch
    }

    /// Frames to send now, `elapsed` into the run: `None` when unlimited,
    /// `Some(0)` when ahead of schedule. Counts them as sent.
    pub fn next_chunk(&mut self, elapsed: Duration) -> Option<u32> {
        let pps = self.pps?;
        let due = frames_due(pps, elapsed);
        let behind = due.saturating_sub(self.sent);
        // At most 5 ms worth of frames (and at least 16 batches) at once, so
        // a stall does not turn into a long burst far above the rate.
        let cap = (pps / 200).max(u64::from(self.batch) * 16);
        let n = behind.min(cap).min(u64::from(u32::MAX)) as u32;
        self.sent += u64::from(n);
        Some(n)
    }

    /// How long to sleep when ahead of schedule: about one batch's time.
    pub fn idle_sleep(&self) -> Duration {
        match self.pps {
            Some(pps) => Duration::from_nanos(
                (u64::from(self.batch) * 1_000_000_000 / pps).clamp(10_000, 1_000_000),
            ),
            None => Duration::ZERO,
        }
    }
}

/// Frames that should have been sent `elapsed` into a run at `pps`.
pub fn frames_due(pps: u64, elapsed: Duration) -> u64 {
    (u128::from(pps) * elapsed.as_nanos() / 1_000_000_000) as u64
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
    fn frames_due_is_exact_on_whole_and_fractional_seconds() {
        assert_eq!(frames_due(1_000_000, Duration::from_secs(2)), 2_000_000);
        assert_eq!(frames_due(1_000, Duration::from_millis(1500)), 1_500);
        assert_eq!(frames_due(3, Duration::from_millis(999)), 2);
        assert_eq!(
            frames_due(u64::MAX / 2, Duration::from_secs(1)),
            u64::MAX / 2
        );
    }

    #[test]
    fn pacer_sends_what_is_due_and_caps_bursts() {
        let mut p = Pacer::new(Some(100_000), 64);
        assert_eq!(p.next_chunk(Duration::ZERO), Some(0));
        // 1 ms at 100 kpps: 100 frames due.
        assert_eq!(p.next_chunk(Duration::from_millis(1)), Some(100));
        assert_eq!(p.next_chunk(Duration::from_millis(1)), Some(0));
        // After a long stall at most 16 batches (more than 5 ms) go at once.
        assert_eq!(p.next_chunk(Duration::from_secs(1)), Some(16 * 64));
        let mut total = 100 + 16 * 64;
        while let Some(n) = p.next_chunk(Duration::from_secs(1)).filter(|&n| n > 0) {
            total += n;
        }
        assert_eq!(total, 100_000);
    }

    #[test]
    fn pacer_bursts_are_capped_at_five_milliseconds_of_frames() {
        let mut p = Pacer::new(Some(10_000_000), 64);
        assert_eq!(p.next_chunk(Duration::from_secs(1)), Some(50_000));
    }

    #[test]
    fn unlimited_pacer_never_waits() {
        let mut p = Pacer::new(None, 64);
        assert_eq!(p.next_chunk(Duration::from_secs(5)), None);
        assert_eq!(p.idle_sleep(), Duration::ZERO);
        assert_eq!(Pacer::new(Some(0), 64).next_chunk(Duration::ZERO), None);
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
