//! Server output shown safely in a check's detail or a log line.

use std::fmt::Write as _;

/// Up to 64 bytes, quoted, with control and non-ASCII bytes escaped.
pub(crate) fn quote(bytes: &[u8]) -> String {
    const SHOWN: usize = 64;
    let mut out = String::from("\"");
    for b in bytes.iter().take(SHOWN) {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(*b)),
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if bytes.len() > SHOWN {
        out.push_str("...");
    }
    out
}
