//! Processes the lab starts inside its namespaces.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A process running inside a lab namespace, in its own session and process
/// group. Dropping it kills the whole group (SIGKILL) and reaps it, so helpers
/// the program forked die with it.
pub struct LabProcess {
    child: Child,
    what: String,
    log: Option<PathBuf>,
    /// Set once the child has been reaped: its pid may then belong to someone
    /// else, so it must never be signalled again.
    reaped: bool,
    detached: bool,
}

impl LabProcess {
    pub(crate) fn new(child: Child, what: String, log: Option<PathBuf>) -> LabProcess {
        LabProcess {
            child,
            what,
            log,
            reaped: false,
            detached: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What was started, e.g. `be1: /usr/bin/python3 …` (for messages).
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Whether the process is still alive (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        if self.reaped {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(_)) => {
                self.reaped = true;
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// File receiving the process's stdout and stderr, if any.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Contents of the log file so far (empty if there is none), for failure
    /// messages.
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    pub(crate) fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Leave the process running after this value (and this program) is gone.
    /// Used by `viplab up`; `viplab down` kills whatever runs in the lab's
    /// namespaces.
    pub fn detach(mut self) {
        self.detached = true;
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        if self.detached || self.reaped {
            return;
        }
        // The child was started through setsid, so its pid is its process
        // group id; the negative pid addresses the whole group.
        kill_pids(&[format!("-{}", self.child.id())]);
        // Kill the leader directly as well in case the group signal could not
        // be delivered (e.g. `kill` missing); then reap so no zombie remains.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }
}

/// SIGKILL the given pids (negative: process groups). Failures are ignored on
/// purpose: a target that already exited is the common case in teardown.
pub(crate) fn kill_pids(pids: &[String]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-KILL")
        .arg("--")
        .args(pids)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
