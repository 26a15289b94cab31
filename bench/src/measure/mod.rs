//! Measuring a DUT: throughput runs, the loss-free rate search, core time
//! per packet, latency, the connection rows, and the host's cost of a
//! flow-table lookup.

mod connections;
mod latency;
mod lookup;
mod scaling;
mod search;

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::bpf::GenConfig;
use crate::cpu;
use crate::dut::{ring_losses, Dut};
use crate::generator::{GenJob, Traffic};
use crate::plan::Frames;
use crate::rate::per_second;
use crate::report::{Measured, LOSS_FREE_LOSS};
use crate::run::Bench;

impl Bench<'_> {
    /// Sends a trickle until the sink verifies a frame (the DUT is up and
    /// has resolved its next hops), or fails after `deadline`.
    pub(crate) fn await_delivery(
        &self,
        dut: &mut Dut,
        traffic: &Traffic,
        deadline: Duration,
    ) -> Result<()> {
        let start = Instant::now();
        // Verified frames only: anything else reaching the sink (a probe
        // frame vipd sends out of each port at start, say) proves nothing.
        let before = self.sink.counts()?.verified;
        loop {
            dut.check_alive()?;
            self.gen.run(GenJob {
                traffic: traffic.clone(),
                pps: Some(20_000),
                duration: Duration::from_millis(100),
            })?;
            if self.sink.counts()?.verified > before {
                return Ok(());
            }
            if start.elapsed() > deadline {
                bail!("the DUT delivered nothing to the sink within {deadline:?}");
            }
        }
    }

    /// Full-rate throughput of `flows` UDP flows of `frames`, the loss-free
    /// rate if `search`, then latency at the plan's load.
    pub(crate) fn udp(
        &mut self,
        mut dut: Dut,
        frames: Frames,
        flows: u32,
        warmup: Duration,
        search: bool,
    ) -> Result<Measured> {
        let traffic = self.udp_traffic(frames, flows)?;
        let mut m = self.throughput(&mut dut, &traffic, warmup, self.plan.rate_pps)?;
        match &dut {
            Dut::Vipd { .. } => m.notes.extend(self.vipd_drops()),
            Dut::Engine { engine } => {
                let lost = ring_losses(engine.counters().sockets());
                if !lost.is_empty() {
                    m.notes.push(format!("engine lost: {}", lost.join(", ")));
                }
            }
            Dut::Ceiling { .. } | Dut::Nftables { .. } => {}
        }
        if search {
            m.loss_free_pps = self.loss_free_rate(&traffic, m.delivered_pps)?;
            if m.loss_free_pps.is_none() {
                m.notes.push(format!(
                    "no probe rate was loss-free (at most {:.1} % lost)",
                    LOSS_FREE_LOSS * 100.0
                ));
            }
            dut.check_alive()?;
        }
        if self.plan.cost_pps > 0 {
            let (cost, note) = self.core_time(&traffic)?;
            m.core_us_per_packet = cost;
            m.notes.push(note);
        }
        if self.plan.latency_pps > 0 && !traffic.stamps() {
            m.notes.push(format!(
                "no latency: {}-byte {} frames have no room for the timestamp",
                frames.size,
                frames.family.name()
            ));
        } else if self.plan.latency_pps > 0 {
            let stamped = Traffic {
                cfg: GenConfig {
                    stamp: true,
                    ..traffic.cfg.clone()
                },
                ..traffic
            };
            match self.latency(&stamped) {
                Ok(l) => m.latency = Some(l),
                Err(e) => m.notes.push(format!("latency: {e:#}")),
            }
        }
        dut.check_alive()?;
        Ok(m)
    }

    /// A measured run at `pps` (None: as fast as the generator goes).
    pub(crate) fn throughput(
        &self,
        dut: &mut Dut,
        traffic: &Traffic,
        warmup: Duration,
        pps: Option<u64>,
    ) -> Result<Measured> {
        let napi = self.pin_dut()?;
        self.await_delivery(dut, traffic, Duration::from_secs(20))?;
        let mut notes = Vec::new();
        if napi.is_empty() {
            notes.push(format!(
                "{} has no threaded NAPI thread to pin: its receive path ran on the generator's core",
                self.topo.dut_in.name
            ));
        }
        if !warmup.is_zero() {
            self.gen.run(GenJob {
                traffic: traffic.clone(),
                pps,
                duration: warmup,
            })?;
        }
        let core = self.plan.dut_core;
        let vipd = matches!(dut, Dut::Vipd { .. });
        let xdp0 = vipd.then(|| self.vipd_xdp_split()).flatten();
        let (sink0, busy0, threads0, refused0) = (
            self.sink.counts()?,
            cpu::core_busy(core)?,
            dut.thread_time(&napi),
            self.topo.refused_before_dut(),
        );
        let (sent, elapsed) = self.gen.run(GenJob {
            traffic: traffic.clone(),
            pps,
            duration: self.plan.duration,
        })?;
        // Frames still in the DUT's rings count as delivered in this run.
        std::thread::sleep(Duration::from_millis(20));
        let (sink1, busy1, threads1, refused1) = (
            self.sink.counts()?,
            cpu::core_busy(core)?,
            dut.thread_time(&napi),
            self.topo.refused_before_dut(),
        );
        let xdp1 = vipd.then(|| self.vipd_xdp_split()).flatten();
        if sent.bad_template > 0 {
            bail!(
                "the generator rejected its frame template {} times",
                sent.bad_template
            );
        }
        let got = sink1.since(&sink0);
        if let (Some(a), Some(b)) = (xdp0, xdp1) {
            notes.push(b.note_since(&a));
        }
        let busy = busy1.saturating_sub(busy0).as_secs_f64();
        let delivered = got.verified.min(sent.sent);
        if got.malformed > 0 {
            notes.push(format!(
                "{} of the frames delivered had a wrong checksum or address and were not counted",
                got.malformed
            ));
        }
        let refused = match (refused0, refused1) {
            (Ok(a), Ok(b)) => Some(b.saturating_sub(a)),
            (Err(e), _) | (_, Err(e)) => {
                notes.push(format!("veth counters unreadable: {e:#}"));
                None
            }
        };
        if let Some(n) = refused.filter(|&n| n > 0) {
            notes.push(format!(
                "veth refused {:.1} % of the frames sent before the DUT saw them (its ring was full)",
                100.0 * n as f64 / sent.sent.max(1) as f64
            ));
        }
        Ok(Measured {
            seconds: elapsed.as_secs_f64(),
            sent: sent.sent,
            delivered,
            verified: got.verified,
            malformed: got.malformed,
            offered_pps: per_second(sent.sent, elapsed),
            delivered_pps: per_second(delivered, elapsed),
            dut_core_busy_s: busy,
            pps_per_cpu_s: (busy > 0.0).then(|| delivered as f64 / busy),
            dut_threads_s: threads0
                .zip(threads1)
                .map(|(a, b)| b.saturating_sub(a).as_secs_f64()),
            established_share: (sent.sent_est > 0)
                .then(|| got.tcp_est.min(sent.sent_est) as f64 / sent.sent_est as f64),
            refused_before_dut: refused,
            notes,
            ..Measured::default()
        })
    }
}
