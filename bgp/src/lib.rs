//! Sans-IO BGP-4: message codec and per-peer session state machine.
//!
//! Nothing here touches sockets or clocks: the caller feeds received bytes, TCP
//! events and the current time into [`Session::handle`] and carries out the
//! [`Output`]s it returns.

pub mod message;
mod prefix;
pub mod session;

pub use message::{decode, encode, DecodeError, EncodeError, Message, SessionCtx};
pub use prefix::{Family, Prefix, PrefixError};
pub use session::{Input, Output, PeerConfig, Route, Session, SessionStats, State, TimerKind};
