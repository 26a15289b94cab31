//! The loss-free rate search and the core time per packet, both made of
//! short probe runs counted at the sink.

use std::time::Duration;

use anyhow::Result;

use crate::cpu;
use crate::generator::{GenJob, Traffic};
use crate::rate::per_second;
use crate::report::LOSS_FREE_LOSS;
use crate::run::Bench;

/// What one probe run sent and what reached the sink.
struct Probe {
    sent: u64,
    delivered: u64,
    elapsed: Duration,
}

impl Probe {
    /// At most [`LOSS_FREE_LOSS`] of the frames sent were lost.
    fn lossless(&self) -> bool {
        self.delivered as f64 >= self.sent as f64 * (1.0 - LOSS_FREE_LOSS)
    }
}

/// Probes at one rate before the search calls it lossy.
const PROBES_PER_RATE: usize = 3;
/// Slices of the core-time phase (each `search_probe` long).
const COST_SLICES: usize = 5;
/// Share of the asked load a core-time slice must reach to count.
const COST_REACHED: f64 = 0.7;

impl Bench<'_> {
    /// RFC 2544 style: the highest rate the DUT forwards losing at most
    /// [`LOSS_FREE_LOSS`], searched from `start` (grow or shrink until a
    /// probe passes and one fails, then halve the gap). A rate fails only
    /// when [`PROBES_PER_RATE`] probes at it fail: on a VM a stall of a few
    /// hundred microseconds fills veth's 256-frame ring at these rates, so
    /// one probe in a few loses frames whatever the DUT. The rate reported
    /// is what the generator achieved, not what it was asked for.
    pub(crate) fn loss_free_rate(&self, traffic: &Traffic, start: f64) -> Result<Option<f64>> {
        let probe = |pps: f64| -> Result<Option<f64>> {
            let run = self.probe(traffic, pps as u64)?;
            Ok((run.sent > 0 && run.lossless()).then(|| per_second(run.sent, run.elapsed)))
        };
        let (mut pass, mut fail) = (None::<f64>, None::<f64>);
        let mut rate = start.max(10_000.0);
        for _ in 0..self.plan.search_steps {
            let mut outcome = None;
            for _ in 0..PROBES_PER_RATE {
                outcome = probe(rate)?;
                if outcome.is_some() {
                    break;
                }
            }
            match outcome {
                Some(achieved) => pass = Some(pass.map_or(achieved, |p: f64| p.max(achieved))),
                None => fail = Some(fail.map_or(rate, |f: f64| f.min(rate))),
            }
            rate = match (pass, fail) {
                (Some(p), Some(f)) if p < f => (p + f) / 2.0,
                (Some(p), Some(_)) => p,
                (Some(p), None) => p * 1.5,
                (None, Some(f)) => f * 0.6,
                (None, None) => rate,
            };
        }
        Ok(pass)
    }

    /// One probe-length run at `pps`, counted at the sink (frames still in
    /// the DUT's rings are given 20 ms to arrive).
    fn probe(&self, traffic: &Traffic, pps: u64) -> Result<Probe> {
        let before = self.sink.counts()?;
        let (sent, elapsed) = self.gen.run(GenJob {
            traffic: traffic.clone(),
            pps: Some(pps),
            duration: self.plan.search_probe,
        })?;
        std::thread::sleep(Duration::from_millis(20));
        let got = self.sink.counts()?.since(&before);
        Ok(Probe {
            sent: sent.sent,
            delivered: got.verified.min(sent.sent),
            elapsed,
        })
    }

    /// DUT core busy time per delivered packet at the plan's `cost_pps`:
    /// the median over [`COST_SLICES`] slices, of those that reached the
    /// load and lost nothing (a slice the host disturbed says nothing about
    /// the DUT). Returns the figure and a note listing the slices.
    pub(crate) fn core_time(&self, traffic: &Traffic) -> Result<(Option<f64>, String)> {
        let pps = self.plan.cost_pps;
        let core = self.plan.dut_core;
        let mut kept = Vec::new();
        for _ in 0..COST_SLICES {
            let busy0 = cpu::core_busy(core)?;
            let run = self.probe(traffic, pps)?;
            let busy = cpu::core_busy(core)?.saturating_sub(busy0).as_secs_f64();
            let reached = per_second(run.sent, run.elapsed) >= pps as f64 * COST_REACHED;
            if reached && run.lossless() && run.delivered > 0 {
                kept.push(busy * 1e6 / run.delivered as f64);
            }
        }
        kept.sort_by(f64::total_cmp);
        let listed: Vec<String> = kept.iter().map(|c| format!("{c:.2}")).collect();
        let note = format!(
            "DUT core time per packet at {} kpps: {} of {COST_SLICES} slices reached the load without loss ({} us)",
            pps / 1000,
            kept.len(),
            listed.join(", ")
        );
        Ok((kept.get(kept.len() / 2).copied(), note))
    }
}
