//! HTTP clients run inside the lab: single requests and bursts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::{scripts, Lab};

/// Result of [`Lab::http_burst`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct BurstReport {
    pub ok: usize,
    pub failed: usize,
    /// Successful responses by body, surrounding whitespace stripped
    /// (`"be1"`, `"sorry"`).
    pub by_body: BTreeMap<String, usize>,
    /// Failed requests by kind (`"timeout"`, `"ECONNREFUSED"`, …).
    #[serde(default)]
    pub errors: BTreeMap<String, usize>,
}

impl Lab {
    /// One `GET /` from `from_role` (curl); returns the body.
    pub fn http_get(
        &self,
        from_role: &str,
        addr: impl Into<SocketAddr>,
        timeout: Duration,
    ) -> Result<String> {
        self.http_get_path(from_role, addr, "/", timeout)
    }

    /// One `GET path` from `from_role` (curl); returns the body. Backends
    /// answer `/peer` with `NAME IP:PORT`, the source they saw.
    pub fn http_get_path(
        &self,
        from_role: &str,
        addr: impl Into<SocketAddr>,
        path: &str,
        timeout: Duration,
    ) -> Result<String> {
        let addr = addr.into();
        let url = format!("http://{addr}{path}");
        self.curl(from_role, timeout, &[&url])
            .with_context(|| format!("GET {url} from {}", self.ns(from_role)))
    }

    /// `curl ARGS` in `role`, silent but for errors, bypassing any proxy,
    /// given up after `timeout`; returns what curl printed.
    pub fn curl(&self, role: &str, timeout: Duration, args: &[&str]) -> Result<String> {
        let max_time = format!("{:.3}", timeout.as_secs_f64());
        let mut argv = vec!["curl", "-sS", "--noproxy", "*", "--max-time", &max_time];
        argv.extend_from_slice(args);
        self.exec_ok(role, &argv)
    }

    /// `n` GET requests to `addr` from `from_role`, each on a new connection,
    /// `concurrency` at a time, each bounded by 2 s.
    pub fn http_burst(
        &self,
        from_role: &str,
        addr: impl Into<SocketAddr>,
        n: usize,
        concurrency: usize,
    ) -> Result<BurstReport> {
        let addr = addr.into();
        let args = [
            addr.ip().to_string(),
            addr.port().to_string(),
            n.to_string(),
            concurrency.max(1).to_string(),
        ];
        let mut argv = vec![scripts::PYTHON, "-c", scripts::BURST_PY];
        argv.extend(args.iter().map(String::as_str));
        let out = self
            .exec_ok(from_role, &argv)
            .with_context(|| format!("HTTP burst to {addr} from {}", self.ns(from_role)))?;
        let report: BurstReport = serde_json::from_str(out.trim())
            .with_context(|| format!("HTTP burst to {addr}: unreadable report {out:?}"))?;
        if report.ok + report.failed != n {
            bail!(
                "HTTP burst to {addr}: asked for {n} requests but the report accounts for {}",
                report.ok + report.failed
            );
        }
        Ok(report)
    }
}
