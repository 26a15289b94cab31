//! Sans-IO BGP-4: message codec and per-peer session state machine.
//!
//! Nothing here touches sockets or clocks: the caller feeds received bytes, TCP
//! events and the current time into [`Session::handle`] and carries out the
//! [`Output`]s it returns, in order.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::time::Instant;
//! use bgp::{Input, Ipv6NextHop, Output, PeerConfig, Prefix, Route, Session};
//!
//! let mut cfg = PeerConfig::new("10.20.1.1", 65001, 65000, Ipv4Addr::new(10, 20, 1, 2));
//! // IPv6 routes go out via our global address, plus the link-local one on a shared link.
//! cfg.ipv6_next_hop = Some(Ipv6NextHop {
//!     global: "2001:db8:1::2".parse().unwrap(),
//!     link_local: Some("fe80::2".parse().unwrap()),
//! });
//! assert!(cfg.validate().is_empty());
//! let mut session = Session::new(cfg);
//! let mut out = Vec::new();
//! let next_hop = IpAddr::V4(Ipv4Addr::new(10, 20, 1, 2));
//! for prefix in ["10.0.0.0/25", "2001:db8::/48"] {
//!     let prefix: Prefix = prefix.parse().unwrap();
//!     // For the IPv6 prefix the IPv4 next hop stands for the configured IPv6 one.
//!     session.handle(Input::Announce(Route::new(prefix, next_hop)), Instant::now(), &mut out);
//! }
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
