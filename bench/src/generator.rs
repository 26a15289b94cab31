//! The generator's thread: the live-frames test run, in the generator
//! namespace, pinned to the generator core, taking one job at a time.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use viplab::netns;

use crate::bpf::{GenConfig, GenCounts, Generator};
use crate::frame::Template;
use crate::rate::interval_ns;

#[derive(Clone)]
pub(crate) struct GenJob {
    pub(crate) cfg: GenConfig,
    pub(crate) template: Template,
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
                let setup = || -> Result<Generator> {
                    netns::enter(&ns)?;
                    if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                        bail!("cannot pin the generator to core {core}");
                    }
                    Generator::load()
                };
                let mut gen = match setup() {
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
                        gen.configure(&GenConfig {
                            interval_ns: interval_ns(job.pps),
                            ..job.cfg
                        })?;
                        let before = gen.counts()?;
                        let elapsed = gen.run(ifindex, &job.template, batch, job.duration)?;
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
