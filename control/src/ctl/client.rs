//! Client side of the control protocol, used by `vipctl` and tests.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use super::proto::{Reply, VERSION};

/// How long a reply may take unless the command says otherwise.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends one command (`{"cmd": ...}` fields) and returns the reply's result.
pub fn request(socket: &Path, cmd: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    request_within(socket, cmd, REPLY_TIMEOUT)
}

/// As [`request`], for commands that take `within` to answer.
pub fn request_within(
    socket: &Path,
    cmd: serde_json::Value,
    within: Duration,
) -> anyhow::Result<serde_json::Value> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach vipd at {} (is it running? is --socket right?)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(within))?;
    let mut req = cmd;
    if let Some(obj) = req.as_object_mut() {
        obj.insert("v".into(), VERSION.into());
    }
    let mut line = serde_json::to_string(&req)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .context("reading the reply from vipd")?;
    let reply: Reply = serde_json::from_str(&reply)
        .with_context(|| format!("vipd sent an unreadable reply: {reply:?}"))?;
    match (reply.ok, reply.result, reply.error) {
        (true, Some(result), _) => Ok(result),
        (_, _, Some(e)) => bail!("vipd refused the request: {e}"),
        _ => bail!("vipd sent an empty reply"),
    }
}
