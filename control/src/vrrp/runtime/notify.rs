//! The `notify` command, run on every state change without waiting for it.
//!
//! `notify` is split on whitespace into a program and its arguments (no
//! shell quoting), then called with four more: instance name, old state,
//! new state, priority, e.g. `/etc/vipd/notify.sh site-a backup master 150`.

use std::process::Stdio;
use std::time::Duration;

use log::warn;
use tokio::process::{Child, Command};

use ::vrrp::State;

/// A notify command still running after this long is killed.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// The argument vector for one transition; `None` if `notify` is blank.
pub(crate) fn argv(
    notify: &str,
    instance: &str,
    from: State,
    to: State,
    priority: u8,
) -> Option<Vec<String>> {
    let mut argv: Vec<String> = notify.split_whitespace().map(str::to_string).collect();
    if argv.is_empty() {
        return None;
    }
    argv.extend([
        instance.to_string(),
        from.as_str().to_string(),
        to.as_str().to_string(),
        priority.to_string(),
    ]);
    Some(argv)
}

/// `program args` with nothing on stdin, its output discarded, killed if
/// its handle is dropped: notify and track scripts run unattended.
pub(super) fn silent(program: &str, args: &[String]) -> std::io::Result<Child> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
}

/// Starts the command and returns at once; a task reaps it and logs a
/// failure.
pub(crate) fn spawn(argv: Vec<String>) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let child = silent(program, args);
    let shown = argv.join(" ");
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            warn!("VRRP notify command `{shown}` could not start: {e}; check the `notify` path");
            return;
        }
    };
    tokio::spawn(async move {
        match tokio::time::timeout(NOTIFY_TIMEOUT, child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => warn!("VRRP notify command `{shown}` failed: {status}"),
            Ok(Err(e)) => warn!("VRRP notify command `{shown}`: waiting for it failed: {e}"),
            Err(_) => {
                warn!(
                    "VRRP notify command `{shown}` still running after {} s; killed it",
                    NOTIFY_TIMEOUT.as_secs()
                );
                let _ = child.kill().await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_follow_the_command() {
        assert_eq!(
            argv(
                "/bin/notify.sh --tag x",
                "site-a",
                State::Backup,
                State::Master,
                150
            ),
            Some(
                [
                    "/bin/notify.sh",
                    "--tag",
                    "x",
                    "site-a",
                    "backup",
                    "master",
                    "150"
                ]
                .map(String::from)
                .to_vec()
            )
        );
        assert_eq!(argv("   ", "a", State::Backup, State::Master, 1), None);
    }
}
