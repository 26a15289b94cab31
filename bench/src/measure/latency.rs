//! One-way latency from the sink's sampled timestamps.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::generator::{GenJob, Traffic};
use crate::rate::per_second;
use crate::report::Latency;
use crate::run::Bench;

impl Bench<'_> {
    pub(crate) fn drain_latency(&mut self, hist: Option<&mut hdrhistogram::Histogram<u64>>) -> u64 {
        let mut n = 0;
        let mut hist = hist;
        while let Some(item) = self.latency.next() {
            if let (Some(h), Ok(b)) = (hist.as_deref_mut(), <[u8; 8]>::try_from(&item[..])) {
                let _ = h.record(u64::from_ne_bytes(b).max(1));
                n += 1;
            }
        }
        n
    }

    /// Latency at half the ceiling's rate once that is known (the
    /// plan's `latency_pps` before).
    pub(crate) fn latency(&mut self, traffic: &Traffic) -> Result<Latency> {
        let pps = self
            .ceiling
            .map_or(self.plan.latency_pps, |c| (c / 2.0) as u64);
        let secs = self.plan.latency_duration.as_secs_f64();
        // About 20 000 samples per phase: the ring buffer holds them all.
        let every = ((pps as f64 * secs / 20_000.0) as u32).max(1);
        self.drain_latency(None);
        self.sink.set_sampling(every)?;
        let run = self.gen.run(GenJob {
            traffic: traffic.clone(),
            pps: Some(pps),
            duration: self.plan.latency_duration,
        });
        std::thread::sleep(Duration::from_millis(20));
        self.sink.set_sampling(0)?;
        let (sent, elapsed) = run?;
        let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
            .context("latency histogram")?;
        let samples = self.drain_latency(Some(&mut hist));
        if samples == 0 {
            bail!("no latency samples arrived at {pps} pps");
        }
        let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        Ok(Latency {
            offered_pps: pps,
            achieved_pps: per_second(sent.sent, elapsed),
            samples,
            p50_us: us(0.5),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: hist.max() as f64 / 1000.0,
        })
    }
}
