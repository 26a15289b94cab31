//! JSON-in, JSON-out requests for callers that have not moved to the typed
//! client in [`ctlproto::client`] yet (vipbench).

use std::path::Path;
use std::time::Duration;

pub use ctlproto::REPLY_TIMEOUT;

/// Sends one command (`{"cmd": ...}` fields) and returns the reply's result,
/// waiting at most `within`.
pub fn request_within(
    socket: &Path,
    cmd: serde_json::Value,
    within: Duration,
) -> anyhow::Result<serde_json::Value> {
    let cmd: ctlproto::Command = serde_json::from_value(cmd)?;
    Ok(ctlproto::request_raw(socket, &cmd, within)?)
}
