//! Sans-IO BGP-4: message codec and per-peer session state machine.
//!
//! Nothing here touches sockets or clocks: the caller feeds received bytes, TCP
//! events and the current time into [`Session::handle`] and carries out the
//! [`Output`]s it returns, in order.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::time::Instant;
//! use bgp::{Input, Output, PeerConfig, Prefix, Route, Session};
//!
//! let cfg = PeerConfig::new("10.20.1.1", 65001, 65000, Ipv4Addr::new(10, 20, 1, 2));
//! assert!(cfg.validate().is_empty());
//! let mut session = Session::new(cfg);
//! let mut out = Vec::new();
//! let prefix: Prefix = "10.0.0.0/25".parse().unwrap();
//! let next_hop = IpAddr::V4(Ipv4Addr::new(10, 20, 1, 2));
//! session.handle(Input::Announce(Route::new(prefix, next_hop)), Instant::now(), &mut out);
//! session.handle(Input::Start, Instant::now(), &mut out);
//! for o in out.drain(..) {
//!     match o {
//!         Output::Connect => { /* start a TCP connect; later feed TcpConnected or TcpFailed */ }
//!         Output::Send(bytes) => { /* write all of `bytes` to the socket */ }
//!         Output::CloseTcp => { /* drop the socket */ }
//!         Output::SetTimer(kind, at) => { /* (re)arm or cancel; on expiry feed Input::Timer(kind) */ }
//!         _ => { /* state changes, logs, received routes */ }
//!     }
//! }
//! ```

pub mod message;
mod prefix;
pub mod session;

pub use message::{decode, encode, DecodeError, EncodeError, Message, SessionCtx};
pub use prefix::{Family, NlriError, Prefix, PrefixError};
pub use session::{
    Input, Ipv6NextHop, LogLevel, Negotiated, Output, PeerConfig, Route, Session, SessionStats,
    State, TimerKind,
};
