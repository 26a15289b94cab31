//! Errors of the VRRP codec and instance configuration.

use std::net::IpAddr;
use std::time::Duration;

use super::family::AddressFamily;
use super::packet::Version;

/// Why a VRRP packet could not be decoded or encoded, or why an instance
/// configuration was refused. The text is meant for the operator's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VrrpError {
    #[error("VRRP packet truncated: {have} bytes received, {need} needed for its header, addresses and authentication data")]
    Truncated { have: usize, need: usize },
    #[error("VRRP over IPv6 of {have} bytes, but its count of {count} addresses makes {need}: the sender does not put 16-byte IPv6 addresses in it")]
    LengthMismatch { count: u8, have: usize, need: usize },
    #[error("VRRP version {0} is not supported (vipd speaks versions 2 and 3); check the sender's `version` setting")]
    UnsupportedVersion(u8),
    #[error("VRRP packet type {0} is unknown (only 1, ADVERTISEMENT, exists); the sender is not speaking VRRP")]
    UnknownType(u8),
    #[error("VRRPv2 carries IPv4 addresses only; use version 3 for IPv6 virtual routers")]
    V2Ipv6,
    #[error("buffer of {have} bytes is too small for a {need}-byte VRRP advert")]
    BufferTooSmall { have: usize, need: usize },
    #[error("a VRRP advert carries at most 255 addresses but {0} were given; split the VIPs over several virtual routers")]
    TooManyAddresses(usize),
    #[error("address {addr} is not {expected}: the VIPs of one virtual router and its advert source and destination must all be of one address family")]
    MixedFamilies {
        addr: IpAddr,
        expected: AddressFamily,
    },
    #[error("advert interval {interval:?} cannot be expressed in VRRP {version}: {why}")]
    BadInterval {
        version: Version,
        interval: Duration,
        why: &'static str,
    },
    #[error(
        "VRRPv3 has no authentication; remove `auth` from the virtual router or use version 2"
    )]
    AuthNeedsV2,
    #[error("VRRP instance {instance}: {problem}")]
    Config { instance: String, problem: String },
}
