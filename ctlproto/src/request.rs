//! Requests: the commands a client may send, and the decoder that checks a
//! request line before the node acts on it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::VERSION;

/// Longest request line accepted; longer lines are refused, not buffered.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Longest service, instance or address string a request may carry; real
/// names are far shorter, and errors echo them back.
pub(crate) const MAX_NAME: usize = 256;
/// How long `vrrp_handover` waits for each switch-over unless told.
pub(crate) const HANDOVER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait `vrrp_handover` accepts for each switch-over.
pub(crate) const HANDOVER_TIMEOUT_MAX: Duration = Duration::from_secs(300);
/// Longest wait `node_drain` accepts: an hour; a drain that takes longer
/// is watched with `node` instead.
pub(crate) const DRAIN_TIMEOUT_MAX: Duration = Duration::from_secs(3600);
/// Most clients `flows` lists.
pub const MAX_TOP: usize = 1000;
/// Largest backend weight.
pub const MAX_WEIGHT: u32 = 65_535;

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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
        /// How many of the busiest clients to list (default 10).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        top: Option<usize>,
    },
    /// A run-time backend edit; lasts until the next reload or restart.
    Backend {
        op: BackendOp,
        service: String,
        address: String,
        /// For `add` (default 1) and `weight`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        weight: Option<u32>,
    },
    /// Re-reads the config file; applied whole or not at all.
    Reload {},
    /// BGP peers and announced prefixes.
    Bgp {},
    /// Per VRRP instance: state, priority, counters, recent transitions.
    Vrrp {},
    /// Connection sync: state, peers, lag, messages, rejections.
    Sync {},
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_s: Option<f64>,
    },
    /// Release the hold a handover left on the instance.
    VrrpRelease {
        instance: String,
    },
    /// The node's drain state and progress.
    Node {},
    /// Turn traffic away from this node (withdraw or de-prefer its BGP
    /// announcements, as `[bgp] drain` says) while serving what still
    /// arrives. Lasts until `node_undrain`, across reloads.
    NodeDrain {
        /// How long the asker means to wait for the node to empty; shown in
        /// `node` as the time left.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_s: Option<f64>,
    },
    /// End a drain: the announcements are restored.
    NodeUndrain {},
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

impl BackendOp {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendOp::Add => "add",
            BackendOp::Remove => "remove",
            BackendOp::Weight => "weight",
            BackendOp::Drain => "drain",
            BackendOp::Enable => "enable",
            BackendOp::Disable => "disable",
        }
    }
}

/// What is wrong with a request line, as the reply's `error` says it.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("request is not UTF-8: invalid byte at offset {offset}; send JSON text")]
    NotUtf8 { offset: usize },
    #[error("request is not JSON: {0}")]
    NotJson(String),
    #[error("bad request: {0}")]
    Bad(String),
    #[error("request must be a JSON object")]
    NotObject,
    #[error("unsupported protocol version {0}; this vipd speaks version {VERSION}")]
    Version(serde_json::Value),
    #[error("request has no protocol version: add \"v\": 1")]
    NoVersion,
    #[error("field {key:?} must be {wanted}, not {what} ({shown})")]
    FieldType {
        key: String,
        wanted: &'static str,
        what: &'static str,
        shown: String,
    },
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} {head:?}… is {len} bytes long, more than the {MAX_NAME} allowed")]
    TooLong {
        field: &'static str,
        head: String,
        len: usize,
    },
    #[error("flows: client {0:?} is not an IP address such as 10.0.0.7 or 2001:db8::7")]
    FlowsClient(String),
    #[error("flows: top {0} is out of range 1–{MAX_TOP}; ask for fewer clients")]
    FlowsTop(usize),
    #[error("backend {address:?} of service {service:?} is not an address with a port, such as 10.0.0.1:8080 or [2001:db8::1]:8080")]
    BackendAddress { service: String, address: String },
    #[error(
        "backend {address} of service {service}: weight {weight} is out of range 0–{MAX_WEIGHT}"
    )]
    WeightRange {
        service: String,
        address: String,
        weight: u32,
    },
    #[error("backend weight for {address} of service {service} needs a weight (0–{MAX_WEIGHT})")]
    NoWeight { service: String, address: String },
    #[error("backend {} takes no weight (backend {address} of service {service}); use op \"weight\" to change it", op.as_str())]
    TakesNoWeight {
        op: BackendOp,
        service: String,
        address: String,
    },
    #[error("handover of VRRP instance {instance:?}: {source}")]
    Handover {
        instance: String,
        source: TimeoutError,
    },
    #[error("node drain: timeout {0} s is out of range: give seconds above 0 and at most {max}", max = DRAIN_TIMEOUT_MAX.as_secs())]
    DrainTimeout(f64),
}

/// A handover wait out of range.
#[derive(Debug, thiserror::Error)]
#[error("timeout {0} s is out of range: give seconds above 0 and at most {max}", max = HANDOVER_TIMEOUT_MAX.as_secs())]
pub struct TimeoutError(f64);

/// Parses and validates one request line (`{"v": 1, "cmd": ..., args}`),
/// naming what is wrong with it. A command returned here has every field in
/// range, so executing it cannot fail on its values, only on the node's state
/// (a prefix is checked against the configured ones there).
pub fn parse(line: &[u8]) -> Result<Command, RequestError> {
    let line = std::str::from_utf8(line).map_err(|e| RequestError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let line = line.trim_end_matches(['\n', '\r']);
    // serde_json keeps the last of two equal keys; a request saying two
    // things is refused instead of half-obeyed.
    serde_json::from_str::<NoDuplicateKeys>(line).map_err(|e| {
        if e.is_data() {
            RequestError::Bad(e.to_string())
        } else {
            RequestError::NotJson(e.to_string())
        }
    })?;
    let mut value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| RequestError::NotJson(e.to_string()))?;
    let obj = value.as_object_mut().ok_or(RequestError::NotObject)?;
    match obj.remove("v") {
        Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
        Some(v) => return Err(RequestError::Version(v)),
        None => return Err(RequestError::NoVersion),
    }
    check_types(obj)?;
    let cmd: Command =
        serde_json::from_value(value).map_err(|e| RequestError::Bad(e.to_string()))?;
    validate(&cmd)?;
    Ok(cmd)
}

/// Names a field of the wrong JSON type; serde's own message would not say
/// which field it was.
fn check_types(obj: &serde_json::Map<String, serde_json::Value>) -> Result<(), RequestError> {
    use serde_json::Value;
    for (key, value) in obj {
        let (fits, wanted) = match key.as_str() {
            "cmd" | "op" | "service" | "address" | "prefix" | "client" | "instance" => {
                (value.is_string(), "a string")
            }
            "weight" | "top" => (value.is_u64(), "a whole number of at least 0"),
            "timeout_s" => (value.is_number(), "a number of seconds"),
            "back" => (value.is_boolean(), "true or false"),
            _ => continue,
        };
        if !fits {
            let mut shown = value.to_string();
            if shown.len() > 40 {
                shown = format!("{}…", shown.chars().take(40).collect::<String>());
            }
            let what = match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            };
            return Err(RequestError::FieldType {
                key: key.clone(),
                wanted,
                what,
                shown,
            });
        }
    }
    Ok(())
}

/// Checks every field of a decoded command against its range.
fn validate(cmd: &Command) -> Result<(), RequestError> {
    match cmd {
        Command::Status {}
        | Command::Stats {}
        | Command::Backends {}
        | Command::Services {}
        | Command::Reload {}
        | Command::Bgp {}
        | Command::Vrrp {}
        | Command::Sync {}
        | Command::Node {}
        | Command::NodeUndrain {} => Ok(()),
        Command::NodeDrain { timeout_s } => drain_timeout(*timeout_s).map(drop),
        Command::Flows { client, top } => {
            if let Some(c) = client {
                flows_client(c)?;
            }
            match top {
                Some(t) if !(1..=MAX_TOP).contains(t) => Err(RequestError::FlowsTop(*t)),
                _ => Ok(()),
            }
        }
        Command::Backend {
            op,
            service,
            address,
            weight,
        } => {
            name("service", service)?;
            backend_address(service, address)?;
            let named = || (service.clone(), address.clone());
            match (op, weight) {
                (BackendOp::Add | BackendOp::Weight, Some(w)) if *w > MAX_WEIGHT => {
                    let (service, address) = named();
                    Err(RequestError::WeightRange {
                        service,
                        address,
                        weight: *w,
                    })
                }
                (BackendOp::Add, _) | (BackendOp::Weight, Some(_)) => Ok(()),
                (BackendOp::Weight, None) => {
                    let (service, address) = named();
                    Err(RequestError::NoWeight { service, address })
                }
                (_, Some(_)) => {
                    let (service, address) = named();
                    Err(RequestError::TakesNoWeight {
                        op: *op,
                        service,
                        address,
                    })
                }
                (_, None) => Ok(()),
            }
        }
        Command::BgpWithdraw { prefix } | Command::BgpAnnounce { prefix } => name("prefix", prefix),
        Command::VrrpHandover {
            instance,
            timeout_s,
            ..
        } => {
            name("instance", instance)?;
            handover_timeout(instance, *timeout_s).map(drop)
        }
        Command::VrrpRelease { instance } => name("instance", instance),
    }
}

/// The client whose flows a `flows` request lists, of either family. An
/// IPv4-mapped IPv6 address means its IPv4 address: no IPv6 flow has such
/// a source.
pub fn flows_client(client: &str) -> Result<IpAddr, RequestError> {
    name("client", client)?;
    client
        .parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| RequestError::FlowsClient(client.to_string()))
}

/// The backend a `backend` request edits: an address of either family
/// with a port, IPv6 in brackets.
pub fn backend_address(service: &str, address: &str) -> Result<SocketAddr, RequestError> {
    name("address", address)?;
    address.parse().map_err(|_| RequestError::BackendAddress {
        service: service.to_string(),
        address: address.to_string(),
    })
}

/// The wait a handover asks for, or an error naming the instance.
pub fn handover_timeout(instance: &str, timeout_s: Option<f64>) -> Result<Duration, RequestError> {
    timeout_s.map_or(Ok(HANDOVER_TIMEOUT), |s| {
        handover_secs(s).map_err(|source| RequestError::Handover {
            instance: instance.to_string(),
            source,
        })
    })
}

/// Seconds to wait for a switch-over, checked before any conversion:
/// `Duration` panics on huge, negative or NaN seconds.
pub fn handover_secs(s: f64) -> Result<Duration, TimeoutError> {
    if !(s > 0.0 && s <= HANDOVER_TIMEOUT_MAX.as_secs_f64()) {
        return Err(TimeoutError(s));
    }
    Duration::try_from_secs_f64(s).map_err(|_| TimeoutError(s))
}

/// The wait a drain asks for, checked before any conversion (`Duration`
/// panics on huge, negative or NaN seconds).
pub fn drain_timeout(timeout_s: Option<f64>) -> Result<Option<Duration>, RequestError> {
    let Some(s) = timeout_s else {
        return Ok(None);
    };
    if !(s > 0.0 && s <= DRAIN_TIMEOUT_MAX.as_secs_f64()) {
        return Err(RequestError::DrainTimeout(s));
    }
    Duration::try_from_secs_f64(s)
        .map(Some)
        .map_err(|_| RequestError::DrainTimeout(s))
}

/// Refuses empty or overlong names before they are looked up or echoed.
fn name(field: &'static str, value: &str) -> Result<(), RequestError> {
    if value.is_empty() {
        return Err(RequestError::Empty { field });
    }
    if value.len() > MAX_NAME {
        return Err(RequestError::TooLong {
            field,
            head: value.chars().take(32).collect(),
            len: value.len(),
        });
    }
    Ok(())
}

/// Any JSON value, refused if an object in it repeats a key.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<NoDuplicateKeys>()?;
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "key {key:?} appears twice"
                )));
            }
        }
        Ok(self)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_or_name_the_problem() {
        assert!(matches!(
            parse(br#"{"v":1,"cmd":"stats"}"#).unwrap(),
            Command::Stats {}
        ));
        assert!(parse(b"nonsense")
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
        assert!(parse(b"[1]").unwrap_err().to_string().contains("object"));
        assert!(parse(br#"{"cmd":"stats"}"#)
            .unwrap_err()
            .to_string()
            .contains("no protocol version"));
        assert!(parse(br#"{"v":7,"cmd":"stats"}"#)
            .unwrap_err()
            .to_string()
            .contains("version 7"));
        assert!(parse(br#"{"v":1,"cmd":"explode"}"#)
            .unwrap_err()
            .to_string()
            .contains("explode"));
        assert!(parse(br#"{"v":1,"cmd":"stats","extra":1}"#).is_err());
        assert!(matches!(
            parse(
                br#"{"v":1,"cmd":"backend","op":"drain","service":"web","address":"10.0.0.1:80"}"#
            ),
            Ok(Command::Backend {
                op: BackendOp::Drain,
                weight: None,
                ..
            })
        ));
        assert!(
            parse(br#"{"v":1,"cmd":"backend","op":"explode","service":"web","address":"x"}"#)
                .unwrap_err()
                .to_string()
                .contains("explode")
        );
        assert!(
            parse(br#"{"v":1,"cmd":"backend","op":"add","service":"web"}"#)
                .unwrap_err()
                .to_string()
                .contains("address")
        );
        assert!(matches!(
            parse(br#"{"v":1,"cmd":"vrrp"}"#).unwrap(),
            Command::Vrrp {}
        ));
        assert!(matches!(
            parse(br#"{"v":1,"cmd":"sync"}"#).unwrap(),
            Command::Sync {}
        ));
        assert!(parse(br#"{"v":1,"cmd":"sync","peer":1}"#).is_err());
        assert!(matches!(
            parse(br#"{"v":1,"cmd":"vrrp_handover","instance":"a","back":true}"#).unwrap(),
            Command::VrrpHandover {
                back: true,
                timeout_s: None,
                ..
            }
        ));
        assert!(parse(br#"{"v":1,"cmd":"vrrp_handover"}"#)
            .unwrap_err()
            .to_string()
            .contains("instance"));
        assert!(matches!(
            parse(br#"{"v":1,"cmd":"node_drain","timeout_s":30}"#).unwrap(),
            Command::NodeDrain {
                timeout_s: Some(30.0)
            }
        ));
        assert!(matches!(
            parse(br#"{"v":1,"cmd":"node_drain"}"#).unwrap(),
            Command::NodeDrain { timeout_s: None }
        ));
        for bad in ["-1", "0", "1e308", "3601", "\"30\""] {
            let line = format!(r#"{{"v":1,"cmd":"node_drain","timeout_s":{bad}}}"#);
            let e = parse(line.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("timeout"), "{bad}: {e}");
        }
        assert!(drain_timeout(Some(f64::NAN)).is_err());
        assert!(drain_timeout(Some(f64::INFINITY)).is_err());
        assert!(parse(br#"{"v":1,"cmd":"node_undrain","timeout_s":1}"#).is_err());
        assert!(parse(br#"{"v":1,"cmd":"bgp_withdraw"}"#)
            .unwrap_err()
            .to_string()
            .contains("prefix"));
    }

    #[test]
    fn clients_and_backends_of_either_family_are_accepted() {
        assert_eq!(
            flows_client("2001:db8::7").unwrap(),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            flows_client("::ffff:10.0.0.7").unwrap().to_string(),
            "10.0.0.7",
            "a mapped address means its IPv4 client"
        );
        for bad in [
            "[2001:db8::7]",
            "[2001:db8::7]:80",
            "2001:db8::7%eth0",
            "2001:db8::/64",
            "10.0.0.256",
        ] {
            let line = format!(r#"{{"v":1,"cmd":"flows","client":"{bad}"}}"#);
            let e = parse(line.as_bytes()).unwrap_err().to_string();
            assert!(
                e.contains(&format!("client {bad:?} is not an IP address")),
                "{e}"
            );
        }
        assert!(matches!(
            parse(br#"{"v":1,"cmd":"backend","op":"drain","service":"web6","address":"[2001:db8:1::11]:8080"}"#),
            Ok(Command::Backend { .. })
        ));
        let e = parse(
            br#"{"v":1,"cmd":"backend","op":"drain","service":"web6","address":"2001:db8:1::11:8080"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("\"2001:db8:1::11:8080\"") && e.contains("[2001:db8::1]:8080"),
            "{e}"
        );
    }
}
