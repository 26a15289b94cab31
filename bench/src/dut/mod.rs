//! The devices under test: the ceiling program, the raw AF_XDP engine,
//! nftables and vipd; how each is started, and what vipd says about itself.

mod observe;
mod start;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use anyhow::{bail, Result};
use engine::Engine;
use viplab::netns;

use crate::bpf::Ceiling;
use crate::cpu;

pub(crate) use observe::ring_losses;
pub(crate) use start::{flow_capacity, services, spawn_vipd, table_slots};

/// The device under test of one scenario; dropping it removes it.
pub(crate) enum Dut {
    // The programs and sockets stay attached while these are held.
    Ceiling { _attached: Ceiling },
    Engine { engine: Engine },
    Nftables { ns: String },
    Vipd { child: Child, log: PathBuf },
}

impl Dut {
    /// utime+stime of the DUT's own threads, if it has any.
    pub(crate) fn thread_time(&self, napi: &[u32]) -> Option<Duration> {
        let napi: Duration = napi
            .iter()
            .filter_map(|&p| cpu::task_time(p, None).ok())
            .sum();
        match self {
            Dut::Ceiling { .. } | Dut::Nftables { .. } => Some(napi),
            Dut::Engine { .. } => {
                let me = std::process::id();
                let workers: Duration = cpu::own_threads("vipd-worker")
                    .into_iter()
                    .filter_map(|t| cpu::task_time(me, Some(t)).ok())
                    .sum();
                Some(workers + napi)
            }
            Dut::Vipd { child, .. } => cpu::task_time(child.id(), None).ok().map(|t| t + napi),
        }
    }

    /// Fails with vipd's log when the daemon has exited.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Dut::Vipd { child, log } = self {
            if let Some(status) = child.try_wait()? {
                bail!("vipd exited ({status}): {}", log_tail(log));
            }
        }
        Ok(())
    }
}

impl Drop for Dut {
    fn drop(&mut self) {
        match self {
            Dut::Nftables { ns } => {
                let _ = netns::exec_ok(ns, &["nft", "delete", "table", "ip", "vipbench"]);
                let _ = netns::exec_ok(ns, &["sysctl", "-qw", "net.ipv4.ip_forward=0"]);
            }
            Dut::Vipd { child, .. } => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Dut::Ceiling { .. } | Dut::Engine { .. } => {}
        }
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join(" / ");
    format!("last lines of {}: {tail}", path.display())
}
