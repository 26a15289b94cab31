//! BGP-4 message codec with streaming framing (RFC 4271 §4).

mod as_path;
mod attributes;
mod mp;
mod notification;
mod open;
mod update;

pub use as_path::{AsPath, AsSegment, SegmentKind};
pub use attributes::{
    type_code, Aggregator, AttrIssue, ErrorAction, Origin, PathAttributes, RawAttribute,
};
pub use mp::{MpError, MpReach, MpUnreach};
pub use notification::{code, Notification, MAX_SHUTDOWN_MESSAGE};
pub use open::{Capability, GracefulRestartFamily, Open, AS_TRANS};
pub use update::Update;

use std::fmt;

pub const HEADER_LEN: usize = 19;
pub const MAX_MESSAGE_LEN: usize = 4096;
const MARKER: [u8; 16] = [0xff; 16];

const TYPE_OPEN: u8 = 1;
const TYPE_UPDATE: u8 = 2;
const TYPE_NOTIFICATION: u8 = 3;
const TYPE_KEEPALIVE: u8 = 4;
const TYPE_ROUTE_REFRESH: u8 = 5;

/// What the codec must know about the session: whether AS numbers are 4 octets
/// wide (both sides sent the RFC 6793 capability).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionCtx {
    pub four_octet_as: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    /// Boxed: an UPDATE is far larger than the other messages.
    Update(Box<Update>),
    Notification(Notification),
    Keepalive,
    /// RFC 2918: AFI, reserved/subtype octet, SAFI.
    RouteRefresh {
        afi: u16,
        subtype: u8,
        safi: u8,
    },
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Open(_) => "OPEN",
            Message::Update(_) => "UPDATE",
            Message::Notification(_) => "NOTIFICATION",
            Message::Keepalive => "KEEPALIVE",
            Message::RouteRefresh { .. } => "ROUTE-REFRESH",
        }
    }
}

/// A message that cannot be accepted: RFC 4271 / RFC 7606 say to send
/// `notification` and reset the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub notification: Notification,
    pub reason: String,
}

impl DecodeError {
    pub(crate) fn new(notification: Notification, reason: String) -> DecodeError {
        DecodeError {
            notification,
            reason,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (sending NOTIFICATION {})",
            self.reason, self.notification
        )
    }
}

impl std::error::Error for DecodeError {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{kind} message would be {len} octets, over the BGP limit of 4096; split it")]
    TooLong { kind: &'static str, len: usize },
    #[error("OPEN optional parameters would be {len} octets, over the limit of 255; send fewer capabilities")]
    OpenParametersTooLong { len: usize },
    #[error("capability {code} value is {len} octets, over the limit of 255")]
    CapabilityTooLong { code: u8, len: usize },
}

/// Decodes one message from the front of a TCP byte stream.
///
/// Returns `Ok(None)` while `buf` holds less than a whole message, otherwise the
/// message and the number of octets it used.
pub fn decode(buf: &[u8], ctx: &SessionCtx) -> Result<Option<(Message, usize)>, DecodeError> {
    let Some(header) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let header_err = |sub: u8, data: Vec<u8>, reason: String| {
        DecodeError::new(Notification::new(code::MESSAGE_HEADER, sub, data), reason)
    };
    if header[..16] != MARKER {
        return Err(header_err(
            code::header::CONNECTION_NOT_SYNCHRONIZED,
            vec![],
            "message marker is not all ones: the byte stream is out of sync".into(),
        ));
    }
    let len = u16::from_be_bytes([header[16], header[17]]);
    let msg_type = header[18];
    let ulen = usize::from(len);
    let min = match msg_type {
        TYPE_OPEN => 29,
        TYPE_UPDATE => 23,
        TYPE_NOTIFICATION => 21,
        TYPE_ROUTE_REFRESH => 23,
        _ => HEADER_LEN,
    };
    let bad_len = ulen < min
        || ulen > MAX_MESSAGE_LEN
        || (msg_type == TYPE_KEEPALIVE && ulen != HEADER_LEN)
        || (msg_type == TYPE_ROUTE_REFRESH && ulen != 23);
    if bad_len {
        return Err(header_err(
            code::header::BAD_MESSAGE_LENGTH,
            len.to_be_bytes().to_vec(),
            format!("message type {msg_type} has invalid length {len}"),
        ));
    }
    let Some(body) = buf.get(HEADER_LEN..ulen) else {
        return Ok(None);
    };
    let msg = match msg_type {
        TYPE_OPEN => Message::Open(Open::decode_body(body)?),
        TYPE_UPDATE => Message::Update(Box::new(Update::decode_body(body, ctx)?)),
        TYPE_NOTIFICATION => match Notification::decode_body(body) {
            Some(n) => Message::Notification(n),
            None => {
                return Err(header_err(
                    code::header::BAD_MESSAGE_LENGTH,
                    len.to_be_bytes().to_vec(),
                    "NOTIFICATION too short".into(),
                ))
            }
        },
        TYPE_KEEPALIVE => Message::Keepalive,
        TYPE_ROUTE_REFRESH => match body {
            [a, b, subtype, safi] => Message::RouteRefresh {
                afi: u16::from_be_bytes([*a, *b]),
                subtype: *subtype,
                safi: *safi,
            },
            _ => {
                return Err(header_err(
                    code::header::BAD_MESSAGE_LENGTH,
                    len.to_be_bytes().to_vec(),
                    "ROUTE-REFRESH has the wrong length".into(),
                ))
            }
        },
        other => {
            return Err(header_err(
                code::header::BAD_MESSAGE_TYPE,
                vec![other],
                format!("unknown message type {other}"),
            ))
        }
    };
    Ok(Some((msg, ulen)))
}

/// Appends `msg` with its header to `out`. On error `out` is left as it was.
pub fn encode(msg: &Message, ctx: &SessionCtx, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&[0, 0, 0]);
    let t = match msg {
        Message::Open(o) => {
            if let Err(e) = o.encode_body(out) {
                out.truncate(start);
                return Err(e);
            }
            TYPE_OPEN
        }
        Message::Update(u) => {
            u.encode_body(ctx, out);
            TYPE_UPDATE
        }
        Message::Notification(n) => {
            n.encode_body(out);
            TYPE_NOTIFICATION
        }
        Message::Keepalive => TYPE_KEEPALIVE,
        Message::RouteRefresh { afi, subtype, safi } => {
            out.extend_from_slice(&afi.to_be_bytes());
            out.extend_from_slice(&[*subtype, *safi]);
            TYPE_ROUTE_REFRESH
        }
    };
    let len = out.len() - start;
    if len > MAX_MESSAGE_LEN {
        out.truncate(start);
        return Err(EncodeError::TooLong {
            kind: msg.kind(),
            len,
        });
    }
    out[start + 16..start + 18].copy_from_slice(&(len as u16).to_be_bytes());
    out[start + 18] = t;
    Ok(())
}
