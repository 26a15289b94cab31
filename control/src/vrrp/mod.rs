//! Sans-IO VRRP core: the RFC 5798 (VRRPv3) and RFC 3768 (VRRPv2) packet codec
//! and the per-virtual-router state machine.
//!
//! Nothing here opens sockets, reads clocks or spawns threads. The shell feeds
//! [`Event`]s with the current [`std::time::Instant`], carries out the returned
//! [`Action`]s, and wakes the instance again at [`Instance::next_timeout`].
//!
//! Where vipd goes beyond or against the letter of the RFCs, and why:
//!
//! - A Fault state (as keepalived has): a failed tracked interface or script
//!   stops adverts and releases the VIPs; a master leaving for Fault sends a
//!   priority-0 advert so a backup takes over at skew time.
//! - A master that hears a lower-priority master (a split brain resolving)
//!   sends an advert and gratuitous ARP at once instead of only discarding
//!   it, so switches and hosts re-learn the virtual MAC's port.
//! - An address owner (priority 255) still processes adverts, so two nodes
//!   both configured as owner settle on one master by address instead of
//!   both staying master.
//! - `preempt_delay`: for that long after entering Backup, a lower-priority
//!   master's adverts are accepted as if preemption were off.
//! - A priority change (tracking weights) takes effect for the next advert
//!   sent and the next timer armed; a running timer is not re-armed.
//! - Our own adverts looped back by multicast are ignored: answering them as
//!   "another master" would loop.

mod config;
mod error;
mod instance;
mod packet;
pub mod runtime;
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
