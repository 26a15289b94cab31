//! The script check: runs a command, healthy on exit status 0; its first
//! stderr line tells the operator why not.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::time::Instant;

use super::error::{CheckError, Timeout};

/// How long stderr of a finished script is still read: a background process
/// it left behind may hold the pipe open forever.
const STDERR_GRACE: Duration = Duration::from_millis(50);
/// Longest first stderr line kept in a detail.
const STDERR_LINE: usize = 200;

pub(super) async fn script(
    command: &[String],
    deadline: Instant,
    timeout: Duration,
) -> Result<String, CheckError> {
    let Some((program, args)) = command.split_first() else {
        return Err(CheckError::EmptyScript);
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Aborting the checker drops this future; the script must die with it.
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| CheckError::ScriptSpawn {
            program: program.clone(),
            source,
        })?;
    let mut stderr = child.stderr.take();
    let mut first_line = Vec::new();
    let mut line_done = false;
    let mut scratch = [0u8; 4096];

    // Stderr is drained while waiting: a script that fills the pipe would
    // otherwise block, and closing the pipe early could kill it with SIGPIPE.
    let waited = tokio::time::timeout_at(deadline, async {
        loop {
            tokio::select! {
                status = child.wait() => break status,
                n = read_opt(&mut stderr, &mut scratch) => {
                    keep_first_line(&mut first_line, &mut line_done, &mut stderr, &scratch, n);
                }
            }
        }
    })
    .await;

    let status = match waited {
        Ok(Ok(status)) => status,
        Ok(Err(source)) => {
            return Err(CheckError::ScriptWait {
                program: program.clone(),
                source,
            })
        }
        Err(_) => {
            // SIGKILL, then reap, so no zombie or stray script outlives its check.
            let _ = child.kill().await;
            return Err(CheckError::ScriptTimeout(Timeout {
                timeout,
                doing: "running script",
            }));
        }
    };
    let grace = deadline.min(Instant::now() + STDERR_GRACE);
    while stderr.is_some() && !line_done {
        match tokio::time::timeout_at(grace, read_opt(&mut stderr, &mut scratch)).await {
            Ok(n) => keep_first_line(&mut first_line, &mut line_done, &mut stderr, &scratch, n),
            Err(_) => break,
        }
    }
    describe_exit(status, &first_line)
}

/// Reads from the pipe if it is still open; pends forever once it is closed,
/// so the `select!` above simply waits for the exit status.
async fn read_opt(
    pipe: &mut Option<tokio::process::ChildStderr>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(p) => p.read(buf).await,
        None => std::future::pending().await,
    }
}

fn keep_first_line(
    line: &mut Vec<u8>,
    done: &mut bool,
    pipe: &mut Option<tokio::process::ChildStderr>,
    scratch: &[u8],
    n: std::io::Result<usize>,
) {
    let data = match n {
        Ok(n) if n > 0 => scratch.get(..n).unwrap_or_default(),
        _ => {
            *pipe = None;
            return;
        }
    };
    if *done {
        return;
    }
    let (part, ended) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (data.get(..i).unwrap_or_default(), true),
        None => (data, false),
    };
    let room = STDERR_LINE.saturating_sub(line.len());
    line.extend_from_slice(part.get(..part.len().min(room)).unwrap_or_default());
    *done = ended || line.len() >= STDERR_LINE;
}

fn describe_exit(status: ExitStatus, stderr_line: &[u8]) -> Result<String, CheckError> {
    if status.success() {
        return Ok("exit status 0".to_string());
    }
    // Terminal escapes or other control bytes must not reach logs verbatim.
    let text: String = String::from_utf8_lossy(stderr_line)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Err(CheckError::ScriptExit {
        status,
        stderr: text.trim().to_string(),
    })
}
