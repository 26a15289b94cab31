//! A vipd node running inside a lab namespace, driven through its control
//! socket and through vipctl.

use ctlproto::reply;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use viplab::{Lab, LabProcess};

/// A vipd process in an LB node's namespace.
pub struct Vipd {
    pub process: Option<LabProcess>,
    pub socket: PathBuf,
    pub config: PathBuf,
}

impl Vipd {
    /// Writes `config` into the lab directory and starts vipd with it in `role`.
    pub fn start(lab: &Lab, role: &str, config: &str) -> Result<Vipd> {
        let path = lab.dir().join(format!("{role}.toml"));
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
        let socket = socket_path(lab, role);
        let process = lab.spawn(
            role,
            &[
                env!("CARGO_BIN_EXE_vipd"),
                "--config",
                path.to_str().unwrap_or_default(),
            ],
        )?;
        let mut vipd = Vipd {
            process: Some(process),
            socket,
            config: path,
        };
        let ready = lab.wait_until(
            "vipd control socket answers",
            Duration::from_secs(30),
            || {
                vipd.is_running()
                    && vipd
                        .call::<reply::Status>(ctlproto::Command::Status {})
                        .is_ok()
            },
        );
        if let Err(e) = ready {
            bail!("{e}\nvipd log:\n{}", vipd.log());
        }
        Ok(vipd)
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.is_running())
    }

    pub fn log(&self) -> String {
        self.process.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    /// One control request, its reply read as `R`.
    pub fn call<R: serde::de::DeserializeOwned>(&self, cmd: ctlproto::Command) -> Result<R> {
        Ok(ctlproto::call(&self.socket, &cmd, ctlproto::REPLY_TIMEOUT)?)
    }

    /// The node's counters; all zero when it does not answer.
    pub fn stats(&self) -> reply::Stats {
        self.call(ctlproto::Command::Stats {}).unwrap_or_default()
    }

    pub fn drops(&self, reason: &str) -> u64 {
        self.stats().drops.get(reason).copied().unwrap_or(0)
    }

    /// Number of backends the node currently considers healthy.
    pub fn healthy_backends(&self) -> usize {
        self.call::<reply::Backends>(ctlproto::Command::Backends {})
            .map(|v| v.backends.iter().filter(|b| b.healthy).count())
            .unwrap_or(0)
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(&mut self, lab: &Lab) -> Result<()> {
        let Some(p) = self.process.as_mut() else {
            return Ok(());
        };
        let pid = i32::try_from(p.pid()).context("pid out of range")?;
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        lab.wait_until("vipd exits after SIGTERM", Duration::from_secs(15), || {
            !self.is_running()
        })
    }
}

pub fn socket_path(lab: &Lab, role: &str) -> PathBuf {
    lab.dir().join(format!("{role}.sock"))
}

/// `vipctl ARGS` against the control socket `socket`: whether it succeeded,
/// its standard output and its standard error.
pub fn vipctl_run(socket: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .expect("vipctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `vipctl --json ARGS`: the reply read as `R`, or the error text.
pub fn vipctl_json<R: serde::de::DeserializeOwned>(
    socket: &std::path::Path,
    args: &[&str],
) -> std::result::Result<R, String> {
    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(args);
    let (ok, out, err) = vipctl_run(socket, &json_args);
    if !ok {
        return Err(err);
    }
    serde_json::from_str(&out).map_err(|e| e.to_string())
}

/// Resident memory of process `pid` in KiB (0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
