//! Keeping the control plane off the dataplane's cores.

use log::{info, warn};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use crate::config::Dataplane;

/// Restricts the calling thread, and so every thread it starts later (the
/// runtime, health checks, VRRP, BGP), to the allowed cores the workers are
/// not pinned to. A health check or a log burst on a worker's core would
/// stall that worker for milliseconds, long enough to overflow its rings.
/// Without `cores`, or with no core left over, nothing changes.
pub fn keep_off_worker_cores(dp: &Dataplane) {
    let Some(workers) = &dp.cores else { return };
    let mut mask = match sched_getaffinity(Pid::from_raw(0)) {
        Ok(m) => m,
        Err(e) => {
            warn!("cannot read this process's CPU mask ({e}); the control plane may share the workers' cores");
            return;
        }
    };
    let allowed = |m: &CpuSet| {
        (0..CpuSet::count())
            .filter(|&c| m.is_set(c).unwrap_or(false))
            .collect::<Vec<_>>()
    };
    for &core in workers {
        if core < CpuSet::count() {
            let _ = mask.unset(core);
        }
    }
    let control = allowed(&mask);
    if control.is_empty() {
        info!(
            "the workers are pinned to every allowed core ({workers:?}); the control plane shares them"
        );
        return;
    }
    match sched_setaffinity(Pid::from_raw(0), &mask) {
        Ok(()) => info!("control plane on cores {control:?}, dataplane workers on {workers:?}"),
        Err(e) => warn!(
            "cannot keep the control plane off the workers' cores {workers:?} ({e}); it may stall them"
        ),
    }
}
