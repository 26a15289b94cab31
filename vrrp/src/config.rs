//! Configuration of one virtual router instance.

use std::net::IpAddr;
use std::time::Duration;

use super::error::VrrpError;
use super::packet::{AddressFamily, Version, MAX_ADDRESSES, V2_AUTH_LEN};

/// One virtual router as the operator configured it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Operator's name for the instance, used in every log line.
    pub name: String,
    /// Virtual router id, 1..=255; also the last byte of the virtual MAC.
    pub vrid: u8,
    pub version: Version,
    /// Base priority, 1..=255; 255 means this node owns the addresses.
    pub priority: u8,
    /// v2: whole seconds 1..=255; v3: 10 ms steps up to 40.95 s.
    pub advert_interval: Duration,
    /// Whether a higher-priority backup takes over from a live lower-priority
    /// master (keepalived's `nopreempt` is `preempt = false`).
    pub preempt: bool,
    /// With `preempt`, how long after entering Backup a lower-priority master
    /// is still tolerated before we preempt it.
    pub preempt_delay: Duration,
    /// Virtual addresses; all of one family, IPv4 for v2.
    pub vips: Vec<IpAddr>,
    /// v2 simple text password, zero-padded to 8 bytes.
    pub auth: Option<[u8; V2_AUTH_LEN]>,
    /// Whether the master accepts packets addressed to VIPs it does not own
    /// (RFC 5798 Accept_Mode); carried for the dataplane, not used here.
    pub accept_mode: bool,
    /// Send adverts to these peers instead of multicast, and accept adverts
    /// only from them.
    pub unicast_peers: Vec<IpAddr>,
}

impl InstanceConfig {
    /// A v3 instance with a one-second interval, preemption on, no delay,
    /// no authentication and multicast adverts.
    pub fn new(name: impl Into<String>, vrid: u8, priority: u8, vips: Vec<IpAddr>) -> Self {
        InstanceConfig {
            name: name.into(),
            vrid,
            version: Version::V3,
            priority,
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            vips,
            auth: None,
            accept_mode: false,
            unicast_peers: Vec::new(),
        }
    }

    /// Checks the configuration against the node's primary address on the
    /// interface and returns the instance's address family.
    pub fn validate(&self, primary_ip: IpAddr) -> Result<AddressFamily, VrrpError> {
        let fail = |problem: String| VrrpError::Config {
            instance: self.name.clone(),
            problem,
        };
        if self.vrid == 0 {
            return Err(fail("vrid 0 is reserved; use 1 to 255".into()));
        }
        if self.priority == 0 {
            return Err(fail(
                "priority 0 is reserved for a stopping master; use 1 to 254, or 255 on the address owner"
                    .into(),
            ));
        }
        self.version
            .interval_field(self.advert_interval)
            .map_err(|e| fail(e.to_string()))?;
        if self.auth.is_some() && self.version == Version::V3 {
            return Err(fail(VrrpError::AuthNeedsV2.to_string()));
        }
        let af = AddressFamily::of(&primary_ip);
        if self.version == Version::V2 && af == AddressFamily::Ipv6 {
            return Err(fail(VrrpError::V2Ipv6.to_string()));
        }
        if self.vips.is_empty() {
            return Err(fail(
                "no vips configured; a virtual router needs at least one address".into(),
            ));
        }
        if self.vips.len() > MAX_ADDRESSES {
            return Err(fail(
                VrrpError::TooManyAddresses(self.vips.len()).to_string(),
            ));
        }
        for (i, vip) in self.vips.iter().enumerate() {
            if AddressFamily::of(vip) != af {
                return Err(fail(format!(
                    "vip {vip} is not {af} like the interface address {primary_ip}; put each family in its own instance"
                )));
            }
            if self.vips.iter().take(i).any(|v| v == vip) {
                return Err(fail(format!("vip {vip} is listed twice")));
            }
        }
        if let Some(peer) = self
            .unicast_peers
            .iter()
            .find(|p| AddressFamily::of(p) != af)
        {
            return Err(fail(format!(
                "unicast peer {peer} is not {af} like the interface address {primary_ip}"
            )));
        }
        if self.unicast_peers.contains(&primary_ip) {
            return Err(fail(format!(
                "unicast peer {primary_ip} is this node's own address; list only the other nodes"
            )));
        }
        Ok(af)
    }
}
