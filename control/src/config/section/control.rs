//! `[control]`: the operator socket and the metrics endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::reader::{Ctx, Tbl};

/// `[control]`: the operator socket and metrics endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// Defaults to `/run/vipd/vipd.sock`; shorter than 108 bytes (sun_path).
    pub socket: PathBuf,
    pub socket_group: Option<String>,
    /// Given as an octal string such as `"0660"`; ≤ 0o777.
    pub socket_mode: u32,
    pub metrics: Option<SocketAddr>,
}

pub(super) fn default_control() -> Control {
    Control {
        socket: PathBuf::from("/run/vipd/vipd.sock"),
        socket_group: None,
        socket_mode: 0o660,
        metrics: None,
    }
}

pub(super) fn read(cx: &mut Ctx, t: &Tbl) -> Option<Control> {
    t.check_keys(cx, &["socket", "socket_group", "socket_mode", "metrics"]);
    let d = default_control();
    let socket = t.str(cx, "socket").map(PathBuf::from).unwrap_or(d.socket);
    let len = socket.as_os_str().len();
    if len == 0 || len >= 108 {
        cx.err_at(
            &t.field("socket"),
            format!("a unix socket path must be 1 to 107 bytes long, this one is {len}"),
        );
    }
    let socket_mode = match t.str(cx, "socket_mode") {
        Some(s) => match u32::from_str_radix(s.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o777 => m,
            _ => {
                cx.err_at(
                    &t.field("socket_mode"),
                    format!("`{s}` is not an octal permission such as \"0660\""),
                );
                d.socket_mode
            }
        },
        None => d.socket_mode,
    };
    Some(Control {
        socket,
        socket_group: t.str(cx, "socket_group"),
        socket_mode,
        metrics: t.parse::<SocketAddr>(cx, "metrics", "an address and port such as 127.0.0.1:9100"),
    })
}
