//! `[service.backend.check]`: a backend's health check, one set of keys per
//! `kind`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::health::{BodyDigest, HttpGet, QType, Tls};

use crate::config::reader::{Ctx, Tbl};

/// A backend's health check; `check` defaults to a TCP connect check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub kind: CheckKind,
    /// `interval_ms`, default 1000, ≥ 10 ms.
    pub interval: Duration,
    /// `timeout_ms`, default 1000, ≥ 1 ms.
    pub timeout: Duration,
    /// Consecutive successes to become healthy, ≥ 1 (default 2).
    pub rise: u32,
    /// Consecutive failures to become unhealthy, ≥ 1 (default 3).
    pub fall: u32,
}

impl Default for Check {
    fn default() -> Self {
        Check {
            kind: CheckKind::Tcp { port: None },
            interval: Duration::from_millis(1000),
            timeout: Duration::from_millis(1000),
            rise: 2,
            fall: 3,
        }
    }
}

/// What a health check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// `kind = "none"`: the backend is always healthy.
    None,
    /// TCP connect to the backend (or to `port` on the backend's address).
    Tcp { port: Option<u16> },
    /// `kind = "http"` or `"https"`: a GET to `port` on the backend's
    /// address (default its own port); `get.tls` is set exactly for https.
    /// `path` defaults to "/", `expect_status` to 200; the digest is MD5
    /// (32 hex characters) or SHA-256 (64). With `verify = true` the TLS
    /// part carries `ca_file`.
    Http { port: Option<u16>, get: HttpGet },
    /// One datagram out (`payload` or `payload_hex`); healthy when a reply
    /// comes back, holding `expect` (or `expect_hex`) if given.
    Udp {
        port: Option<u16>,
        payload: Vec<u8>,
        expect: Option<Vec<u8>>,
    },
    /// A DNS query for `name` (`qtype` A, the default, or AAAA); healthy on
    /// NOERROR with at least one such record.
    Dns {
        port: Option<u16>,
        name: String,
        qtype: QType,
    },
    /// ICMP echo to the backend's address.
    Ping,
    /// Run a command; exit status 0 means healthy.
    Script {
        /// Program and arguments, non-empty.
        command: Vec<String>,
    },
}

const CHECK_COMMON: &[&str] = &["kind", "interval_ms", "timeout_ms", "rise", "fall"];
const CHECK_KIND_KEYS: &[(&str, &[&str])] = &[
    ("none", &[]),
    ("tcp", &["port"]),
    ("http", &["path", "expect_status", "digest", "host", "port"]),
    (
        "https",
        &[
            "path",
            "expect_status",
            "digest",
            "host",
            "port",
            "sni",
            "verify",
            "ca_file",
        ],
    ),
    (
        "udp",
        &["port", "payload", "payload_hex", "expect", "expect_hex"],
    ),
    ("dns", &["port", "name", "qtype"]),
    ("ping", &[]),
    ("script", &["command"]),
];

pub(super) fn read(cx: &mut Ctx, t: &Tbl) -> Option<Check> {
    let kind = t.str(cx, "kind").unwrap_or_else(|| "tcp".to_string());
    let Some((_, own)) = CHECK_KIND_KEYS.iter().find(|(k, _)| *k == kind) else {
        let words: Vec<&str> = CHECK_KIND_KEYS.iter().map(|(k, _)| *k).collect();
        cx.err_at(
            &t.field("kind"),
            format!("`{kind}` is not one of: {}", words.join(", ")),
        );
        return None;
    };
    let mut known: Vec<&str> = CHECK_COMMON.to_vec();
    known.extend_from_slice(own);
    // Keys of another kind get a message naming the kinds they belong to.
    let mut all = known.clone();
    for (_, keys) in CHECK_KIND_KEYS {
        for key in keys.iter() {
            if all.contains(key) {
                continue;
            }
            all.push(key);
            if t.has(key) {
                t.mark(cx, key);
                let owners: Vec<String> = CHECK_KIND_KEYS
                    .iter()
                    .filter(|(_, k)| k.contains(key))
                    .map(|(o, _)| format!("kind = \"{o}\""))
                    .collect();
                cx.err_at(
                    &t.field(key),
                    format!(
                        "`{key}` does not apply to kind = \"{kind}\" (it is for {})",
                        owners.join(" or ")
                    ),
                );
            }
        }
    }
    t.check_keys(cx, &all);

    let kind = match kind.as_str() {
        "none" => CheckKind::None,
        "tcp" => CheckKind::Tcp {
            port: t.num::<u16>(cx, "port", 1, 65_535),
        },
        "http" => http_check(cx, t, false)?,
        "https" => http_check(cx, t, true)?,
        "udp" => udp_check(cx, t)?,
        "dns" => dns_check(cx, t)?,
        "ping" => CheckKind::Ping,
        _ => CheckKind::Script {
            command: t.must("command", t.command(cx, "command"), cx)?,
        },
    };
    let (interval, timeout) = schedule(cx, t);
    Some(Check {
        kind,
        interval,
        timeout,
        rise: t.num(cx, "rise", 1, 1000).unwrap_or(2),
        fall: t.num(cx, "fall", 1, 1000).unwrap_or(3),
    })
}

/// `http` and, with its TLS part, `https`.
/// `interval_ms` and `timeout_ms` of anything run periodically (health
/// checks, VRRP track scripts): 1 s each unless set.
pub(super) fn schedule(cx: &mut Ctx, t: &Tbl) -> (Duration, Duration) {
    let interval = t
        .ms(cx, "interval_ms", 10, 3_600_000)
        .unwrap_or(Duration::from_millis(1000));
    let timeout = t
        .ms(cx, "timeout_ms", 1, 3_600_000)
        .unwrap_or(Duration::from_millis(1000));
    (interval, timeout)
}

fn http_check(cx: &mut Ctx, t: &Tbl, tls: bool) -> Option<CheckKind> {
    let path = t.str(cx, "path").unwrap_or_else(|| "/".to_string());
    if !path.starts_with('/') {
        cx.err_at(
            &t.field("path"),
            format!("`{path}` must start with '/', as in \"/{path}\""),
        );
    }
    let expect_status = t.num(cx, "expect_status", 100, 599).unwrap_or(200);
    let digest = t.parse(cx, "digest", "a body digest");
    let host = t.str(cx, "host");
    let port = t.num::<u16>(cx, "port", 1, 65_535);
    Some(CheckKind::Http {
        port,
        get: HttpGet {
            path,
            host,
            expect_status,
            digest,
            tls: tls.then(|| tls_part(cx, t)),
        },
    })
}

fn tls_part(cx: &mut Ctx, t: &Tbl) -> Tls {
    let sni = t.str(cx, "sni");
    if let Some(name) = &sni {
        if let Err(e) = crate::health::tls::server_name(Some(name), Ipv4Addr::UNSPECIFIED.into()) {
            cx.err_at(&t.field("sni"), e.to_string());
        }
    }
    let verify = t.bool(cx, "verify").unwrap_or(false);
    let ca_file = t.str(cx, "ca_file").map(PathBuf::from);
    match (&ca_file, verify) {
        (None, true) => cx.err_at(
            &t.field("verify"),
            "verify = true needs `ca_file`: a PEM file with the certificates that sign the backend's",
        ),
        (Some(_), false) => cx.err_at(
            &t.field("ca_file"),
            "`ca_file` is only read with verify = true; set verify = true or remove it",
        ),
        (Some(path), true) => {
            if let Err(e) = crate::health::tls::load_roots(path) {
                cx.err_at(&t.field("ca_file"), e.to_string());
            }
        }
        (None, false) => {}
    }
    Tls {
        sni,
        ca_file: ca_file.filter(|_| verify),
    }
}

/// Bytes given as text in `key` or as hex in `key_hex`, not both.
fn bytes_or_hex(cx: &mut Ctx, t: &Tbl, key: &str) -> Option<Vec<u8>> {
    let hex_key = format!("{key}_hex");
    let text = t.str(cx, key);
    let hex = t.str(cx, &hex_key);
    match (text, hex) {
        (Some(_), Some(_)) => {
            cx.err_at(
                &t.field(&hex_key),
                format!("give `{key}` or `{hex_key}`, not both"),
            );
            None
        }
        (Some(s), None) => Some(s.into_bytes()),
        (None, Some(h)) => match parse_hex(&h) {
            Some(b) => Some(b),
            None => {
                cx.err_at(
                    &t.field(&hex_key),
                    format!("`{h}` is not hex: give pairs of 0-9 and a-f, such as \"0d0a\""),
                );
                None
            }
        },
        (None, None) => None,
    }
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn udp_check(cx: &mut Ctx, t: &Tbl) -> Option<CheckKind> {
    let payload = bytes_or_hex(cx, t, "payload");
    if payload.is_none() && !t.has("payload") && !t.has("payload_hex") {
        cx.err(
            t.line,
            t.field("payload"),
            "a udp check needs `payload` (text) or `payload_hex`: the datagram sent to the backend",
        );
    }
    let expect = bytes_or_hex(cx, t, "expect");
    Some(CheckKind::Udp {
        port: t.num::<u16>(cx, "port", 1, 65_535),
        payload: payload?,
        expect,
    })
}

fn dns_check(cx: &mut Ctx, t: &Tbl) -> Option<CheckKind> {
    let name = t.must("name", t.str(cx, "name"), cx)?;
    if let Err(e) = crate::health::dns::check_name(&name) {
        cx.err_at(&t.field("name"), format!("`{name}`: {e}"));
    }
    Some(CheckKind::Dns {
        port: t.num::<u16>(cx, "port", 1, 65_535),
        name,
        qtype: t.parse(cx, "qtype", "a query type").unwrap_or(QType::A),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_bytes() {
        assert_eq!(parse_hex("00ff0A"), Some(vec![0, 0xff, 0x0a]));
        assert_eq!(parse_hex(""), Some(vec![]));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex("é1"), None);
    }
}
