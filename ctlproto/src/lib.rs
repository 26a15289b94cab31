//! The vipd control protocol: newline-delimited JSON over a Unix socket, one
//! request per line, one reply per request. Every message carries the
//! protocol version. This crate holds both ends' view of it: the requests
//! and their decoder, one reply type per command, and a blocking client.

pub mod client;
pub mod reply;
pub mod request;

pub use client::{call, request_raw, ClientError, REPLY_TIMEOUT};
pub use reply::Reply;
pub use request::{parse, BackendOp, Command, RequestError};

/// Version of the request/reply format this build speaks.
pub const VERSION: u32 = 1;
