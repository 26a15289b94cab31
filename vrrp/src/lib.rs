//! Sans-IO VRRP core: the RFC 5798 (VRRPv3) and RFC 3768 (VRRPv2) packet codec
//! and the per-virtual-router state machine.
//!
//! Nothing here opens sockets, reads clocks or spawns threads. The shell feeds
//! [`Input`]s with the current [`std::time::Instant`] into [`Instance::handle`]
//! and carries out the [`Output`]s, in order: adverts to send, VIPs to take
//! or release, timers to arm (their expiry comes back as [`Input::Timer`]).
//! Received datagrams are checked here (protocol, TTL, false owner claims,
//! version, checksum, authentication, …); each is reported back as accepted
//! or rejected with its reason, and counted in [`InstanceStats`].
//!
//! An instance is of one address family, that of its VIPs. Over IPv6 it
//! speaks VRRPv3 only (RFC 5798): adverts go from the interface's
//! link-local address to ff02::12 with hop limit 255
//! ([`Instance::advert_headers`]), received ones must come the same way,
//! the virtual MAC is 00-00-5E-00-02-{VRID} ([`Instance::virtual_mac`]),
//! and a new master announces the VIPs with unsolicited Neighbor
//! Advertisements instead of gratuitous ARP ([`Instance::announcement`]).
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::time::Instant;
//! use vrrp::{Datagram, Input, Instance, InstanceConfig, Output, IPPROTO_VRRP};
//!
//! let vip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
//! let me = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
//! let mut inst = Instance::new(InstanceConfig::new("site-a", 51, 100, vec![vip]), me).unwrap();
//! let mut out = Vec::new();
//! inst.handle(Input::Start, Instant::now(), &mut out);
//! # let received: &[u8] = &[];
//! let dgram = Datagram {
//!     src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 3)),
//!     dst: IpAddr::V4(vrrp::MULTICAST_V4),
//!     ttl: 255,
//!     protocol: IPPROTO_VRRP,
//!     payload: received,
//! };
//! inst.handle(Input::Received(dgram), Instant::now(), &mut out);
//! for o in out.drain(..) {
//!     match o {
//!         Output::SetTimer(kind, at) => { /* (re)arm or cancel; on expiry feed Input::Timer(kind) */ }
//!         Output::SendAdvert { priority } => {
//!             for header in inst.advert_headers() {
//!                 let mut buf = [0u8; 2048];
//!                 let len = inst.encode_advert(priority, &header, &mut buf).unwrap();
//!                 /* send buf[..len] from header.src to header.dst, TTL / hop limit 255 */
//!             }
//!         }
//!         Output::SendGratuitousArp => { /* send inst.announcement(): ARP or NA per VIP */ }
//!         Output::Rejected { src, reason } => { /* already counted and logged */ }
//!         _ => { /* take or release the VIPs, transitions */ }
//!     }
//! }
//! ```
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
//! - An advert claiming priority 255 (address owner) from a source that is
//!   none of the VIPs is dropped: honouring it would let any host on the
//!   segment take the VIPs at once. Over IPv6, where adverts come from
//!   link-local addresses, an owner must therefore list its link-local
//!   address among the VIPs (RFC 5798 wants the first address to be the
//!   link-local one); the configuration refuses priority 255 otherwise.
//! - Over IPv6 an advert longer than its address count says is dropped and
//!   counted: it means the sender packed other than 16-byte addresses.

mod config;
mod error;
mod events;
mod family;
mod instance;
mod packet;
mod stats;

pub use config::InstanceConfig;
pub use error::VrrpError;
pub use events::{Datagram, Input, Output, Rejection, State, TimerKind};
pub use family::{is_link_local, AddressFamily, Announcement};
pub use instance::{effective_priority, AdvertHeader, Instance};
pub use packet::{
    checksum, encode, Addresses, Advert, Version, VrrpPacket, AUTH_NONE, AUTH_SIMPLE_TEXT,
    HEADER_LEN, IPPROTO_VRRP, MAX_ADDRESSES, MULTICAST_V4, MULTICAST_V6, PRIORITY_OWNER,
    PRIORITY_STOP, V2_AUTH_LEN, VRRP_TTL,
};
pub use stats::InstanceStats;

#[cfg(test)]
mod tests;
