//! The control protocol: newline-delimited JSON, one request per line, one
//! reply per request. Every message carries the protocol version.

use serde::{Deserialize, Serialize};

/// Version of the request/reply format this build speaks.
pub const VERSION: u32 = 1;

/// Longest request line accepted; longer lines are refused, not buffered.
pub const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    // Empty struct variants, not unit ones, so unknown fields are refused.
    Status {},
    Stats {},
    Backends {},
    Services {},
    Flows {
        /// List this client's flows.
        #[serde(default)]
        client: Option<String>,
        /// How many of the busiest clients to list (default 10).
        #[serde(default)]
        top: Option<usize>,
    },
    /// A run-time backend edit; lasts until the next reload or restart.
    Backend {
        op: BackendOp,
        service: String,
        address: String,
        /// For `add` (default 1) and `weight`.
        #[serde(default)]
        weight: Option<u32>,
    },
    /// Re-reads the config file; applied whole or not at all.
    Reload {},
    /// BGP peers and announced prefixes.
    Bgp {},
    /// Per VRRP instance: state, priority, counters, recent transitions.
    Vrrp {},
    /// Stop advertising a configured `[[bgp.announce]]` prefix whatever its
    /// condition (maintenance), until `bgp_announce`.
    BgpWithdraw {
        prefix: String,
    },
    /// Clear a `bgp_withdraw` override: the announce policy decides again.
    BgpAnnounce {
        prefix: String,
    },
    /// Step a VRRP master down, wait for a peer to take over and report the
    /// switch-over; with `back`, release it again and wait for mastership.
    VrrpHandover {
        instance: String,
        #[serde(default)]
        back: bool,
        /// Seconds to wait for each of the two switch-overs (default 10).
        #[serde(default)]
        timeout_s: Option<f64>,
    },
    /// Release the hold a handover left on the instance.
    VrrpRelease {
        instance: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendOp {
    Add,
    Remove,
    Weight,
    Drain,
    Enable,
    Disable,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    pub v: u32,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    pub fn ok(result: serde_json::Value) -> Self {
        Reply {
            v: VERSION,
            ok: true,
            result: Some(result),
            error: None,
        }
    }
    pub fn err(msg: impl Into<String>) -> Self {
        Reply {
            v: VERSION,
            ok: false,
            result: None,
            error: Some(msg.into()),
        }
    }
}

/// Parses one request line (`{"v": 1, "cmd": ..., args}`), naming what is
/// wrong with it.
pub fn parse(line: &str) -> Result<Command, String> {
    let mut value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("request is not JSON: {e}"))?;
    let obj = value
        .as_object_mut()
        .ok_or("request must be a JSON object")?;
    match obj.remove("v").as_ref().and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(format!(
                "unsupported protocol version {v}; this vipd speaks version {VERSION}"
            ))
        }
        None => return Err("request has no protocol version: add \"v\": 1".into()),
    }
    serde_json::from_value(value).map_err(|e| format!("bad request: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_or_name_the_problem() {
        assert!(matches!(
            parse(r#"{"v":1,"cmd":"stats"}"#).unwrap(),
            Command::Stats {}
        ));
        assert!(parse("nonsense").unwrap_err().contains("not JSON"));
        assert!(parse("[1]").unwrap_err().contains("object"));
        assert!(parse(r#"{"cmd":"stats"}"#)
            .unwrap_err()
            .contains("no protocol version"));
        assert!(parse(r#"{"v":7,"cmd":"stats"}"#)
            .unwrap_err()
            .contains("version 7"));
        assert!(parse(r#"{"v":1,"cmd":"explode"}"#)
            .unwrap_err()
            .contains("explode"));
        assert!(parse(r#"{"v":1,"cmd":"stats","extra":1}"#).is_err());
        assert!(matches!(
            parse(
                r#"{"v":1,"cmd":"backend","op":"drain","service":"web","address":"10.0.0.1:80"}"#
            ),
            Ok(Command::Backend {
                op: BackendOp::Drain,
                weight: None,
                ..
            })
        ));
        assert!(
            parse(r#"{"v":1,"cmd":"backend","op":"explode","service":"web","address":"x"}"#)
                .unwrap_err()
                .contains("explode")
        );
        assert!(
            parse(r#"{"v":1,"cmd":"backend","op":"add","service":"web"}"#)
                .unwrap_err()
                .contains("address")
        );
        assert!(matches!(
            parse(r#"{"v":1,"cmd":"vrrp"}"#).unwrap(),
            Command::Vrrp {}
        ));
        assert!(matches!(
            parse(r#"{"v":1,"cmd":"vrrp_handover","instance":"a","back":true}"#).unwrap(),
            Command::VrrpHandover {
                back: true,
                timeout_s: None,
                ..
            }
        ));
        assert!(parse(r#"{"v":1,"cmd":"vrrp_handover"}"#)
            .unwrap_err()
            .contains("instance"));
        assert!(parse(r#"{"v":1,"cmd":"bgp_withdraw"}"#)
            .unwrap_err()
            .contains("prefix"));
    }
}
