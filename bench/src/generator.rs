//! The generator's thread: the live-frames test run, in the generator
//! namespace, pinned to the generator core, taking one job at a time.

use std::net::Ipv6Addr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use viplab::netns;

use crate::bpf::{GenConfig, GenCounts, Generator};
use crate::frame::{Template, Template6};
use crate::rate::interval_ns;

/// What the generator sends: its program's settings and the frame it
/// rewrites.
#[derive(Clone, Debug)]
pub(crate) struct Traffic {
    pub(crate) cfg: GenConfig,
    pub(crate) frame: Frame,
}

/// The template of [`Traffic`], which also picks the generator program.
#[derive(Clone, Debug)]
pub(crate) enum Frame {
    V4(Template),
    /// IPv6 UDP, the flows' sources from `src_base` on (see
    /// [`Generator::configure6`]).
    V6 {
        template: Template6,
        src_base: Ipv6Addr,
    },
}

impl Traffic {
    /// Whether the frames have room for the timestamp the latency phase
    /// samples (IPv4 UDP templates always have).
    pub(crate) fn stamps(&self) -> bool {
        match &self.frame {
            Frame::V4(_) => true,
            Frame::V6 { template, .. } => template.stamps,
        }
    }
}

#[derive(Clone)]
pub(crate) struct GenJob {
    pub(crate) traffic: Traffic,
    pub(crate) pps: Option<u64>,
    pub(crate) duration: Duration,
}

/// The generator's thread: in the generator namespace, pinned to its core.
pub(crate) struct GenThread {
    pub(crate) jobs: Option<mpsc::Sender<GenJob>>,
    pub(crate) done: mpsc::Receiver<Result<(GenCounts, Duration)>>,
    pub(crate) handle: Option<JoinHandle<()>>,
}

impl GenThread {
    pub(crate) fn start(ns: &str, core: usize, ifindex: u32, batch: u32) -> Result<GenThread> {
        let (jobs, job_rx) = mpsc::channel::<GenJob>();
        let (done_tx, done) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel::<Result<()>>();
        let ns = ns.to_string();
        let handle = std::thread::Builder::new()
            .name("vipbench-gen".into())
            .spawn(move || {
                // Both programs, loaded once: each job picks its family's.
                let setup = || -> Result<(Generator, Generator)> {
                    netns::enter(&ns)?;
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        bail!("cannot pin the generator to core {core}");
                    }
                    Ok((Generator::load()?, Generator::load6()?))
                };
                let (mut gen4, mut gen6) = match setup() {
                    Ok(g) => {
                        let _ = ready_tx.send(Ok(()));
                        g
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for job in job_rx {
                    let result = (|| {
                        let cfg = GenConfig {
                            interval_ns: interval_ns(job.pps),
                            ..job.traffic.cfg
                        };
                        let (gen, frame) = match &job.traffic.frame {
                            Frame::V4(t) => {
                                gen4.configure(&cfg)?;
                                (&gen4, &t.bytes)
                            }
                            Frame::V6 { template, src_base } => {
                                gen6.configure6(&cfg, *src_base, template.dst_ip)?;
                                (&gen6, &template.bytes)
                            }
                        };
                        let before = gen.counts()?;
                        let elapsed = gen.run(ifindex, frame, batch, job.duration)?;
                        let after = gen.counts()?;
                        Ok((
                            GenCounts {
                                sent: after.sent.saturating_sub(before.sent),
                                sent_est: after.sent_est.saturating_sub(before.sent_est),
                                bad_template: after
                                    .bad_template
                                    .saturating_sub(before.bad_template),
                            },
                            elapsed,
                        ))
                    })();
                    if done_tx.send(result).is_err() {
                        return;
                    }
                }
            })
            .context("starting the generator thread")?;
        ready
            .recv()
            .map_err(|_| anyhow!("the generator thread died while starting"))??;
        Ok(GenThread {
            jobs: Some(jobs),
            done,
            handle: Some(handle),
        })
    }

    pub(crate) fn run(&self, job: GenJob) -> Result<(GenCounts, Duration)> {
        self.jobs
            .as_ref()
            .ok_or_else(|| anyhow!("generator stopped"))?
            .send(job)
            .map_err(|_| anyhow!("the generator thread is gone"))?;
        self.done
            .recv()
            .map_err(|_| anyhow!("the generator thread is gone"))?
    }
}

impl Drop for GenThread {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
