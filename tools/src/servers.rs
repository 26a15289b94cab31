//! The HTTP servers of the backends and the sorry server.

use std::io::BufRead;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::{scripts, Lab, LabProcess};

/// How long a freshly started HTTP server may take to bind its ports.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

impl Lab {
    /// Start the HTTP server of `role`, answering `body_name`, and wait until
    /// it listens.
    pub(crate) fn start_http_server(&self, role: &str, body_name: &str) -> Result<LabProcess> {
        let ports: Vec<String> = self.spec.ports().iter().map(u16::to_string).collect();
        let mut argv = vec![
            scripts::PYTHON,
            "-c",
            scripts::BACKEND_PY,
            &self.spec.name,
            body_name,
            if self.spec.ipv6 { "ipv4+ipv6" } else { "ipv4" },
        ];
        argv.extend(ports.iter().map(String::as_str));
        let mut proc = self.spawn_with(role, &argv, true)?;
        let Some(stdout) = proc.child_mut().stdout.take() else {
            bail!("{role}: HTTP server started without a stdout pipe");
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let got = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(got.map(|_| line));
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(line)) if line.trim() == "ready" => Ok(proc),
            Ok(_) | Err(_) => {
                // Let the log settle if the server is dying.
                let _ = proc.is_running();
                bail!(
                    "HTTP server in {} did not come up on port(s) {} within {:?}; its output:\n{}",
                    self.ns(role),
                    ports.join(","),
                    READY_TIMEOUT,
                    proc.log()
                )
            }
        }
    }

    /// Stop backend `be<i>` (1-based): afterwards its ports refuse
    /// connections.
    pub fn stop_backend(&self, i: usize) -> Result<()> {
        let mut backends = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = i.checked_sub(1).and_then(|j| backends.get_mut(j)) else {
            bail!("lab {} has no backend be{i}", self.spec.name);
        };
        // Dropping kills and reaps: once this returns the sockets are closed.
        slot.take();
        Ok(())
    }

    /// (Re)start backend `be<i>` (1-based) and wait until it listens. A
    /// backend that is already running is left alone.
    pub fn start_backend(&self, i: usize) -> Result<()> {
        let role = format!("be{i}");
        let mut backends = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = i.checked_sub(1).and_then(|j| backends.get_mut(j)) else {
            bail!("lab {} has no backend {role}", self.spec.name);
        };
        if let Some(p) = slot.as_mut() {
            if p.is_running() {
                return Ok(());
            }
        }
        *slot = Some(self.start_http_server(&role, &role)?);
        Ok(())
    }
}
