//! Sans-IO VRRP core: the RFC 5798 (VRRPv3) and RFC 3768 (VRRPv2) packet codec
//! and the per-virtual-router state machine.
//!
//! Nothing here opens sockets, reads clocks or spawns threads. The shell feeds
//! [`Event`]s with the current [`std::time::Instant`], carries out the returned
//! [`Action`]s, and wakes the instance again at [`Instance::next_timeout`].

mod config;
mod error;
mod instance;
mod packet;
mod stats;

pub use config::InstanceConfig;
pub use error::VrrpError;
pub use instance::{effective_priority, Action, Event, Instance, State};
pub use packet::{
    checksum, encode, AddressFamily, Addresses, Advert, Version, VrrpPacket, AUTH_NONE,
    AUTH_SIMPLE_TEXT, HEADER_LEN, IPPROTO_VRRP, MAX_ADDRESSES, MULTICAST_V4, MULTICAST_V6,
    PRIORITY_OWNER, PRIORITY_STOP, V2_AUTH_LEN, VRRP_TTL,
};
pub use stats::InstanceStats;

#[cfg(test)]
mod tests;
