//! Configuration of one virtual router instance.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use super::error::VrrpError;
use super::family::{is_link_local, AddressFamily};
use super::packet::{Version, MAX_ADDRESSES, PRIORITY_OWNER, V2_AUTH_LEN};

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

    /// The virtual MAC by the family of the VIPs: 00-00-5E-00-01-{VRID} for
    /// IPv4 (also when there are none, which validation refuses),
    /// 00-00-5E-00-02-{VRID} for IPv6.
    pub fn virtual_mac(&self) -> [u8; 6] {
        let af = self
            .vips
            .first()
            .map_or(AddressFamily::Ipv4, AddressFamily::of);
        af.virtual_mac(self.vrid)
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
        let af = self.family(primary_ip).map_err(fail)?;
        if self.version == Version::V2 && af == AddressFamily::Ipv6 {
            return Err(fail(VrrpError::V2Ipv6.to_string()));
        }
        if self.vips.len() > MAX_ADDRESSES {
            return Err(fail(
                VrrpError::TooManyAddresses(self.vips.len()).to_string(),
            ));
        }
        for (i, vip) in self.vips.iter().enumerate() {
            if self.vips.iter().take(i).any(|v| v == vip) {
                return Err(fail(format!("vip {vip} is listed twice")));
            }
            if let IpAddr::V6(v6) = vip {
                unusable_v6_vip(v6).map_err(|why| fail(format!("vip {vip} is {why}")))?;
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
        if af == AddressFamily::Ipv6 {
            self.validate_v6(primary_ip).map_err(fail)?;
        }
        Ok(af)
    }

    /// The family of the instance: that of its VIPs, which must all share
    /// it with the interface address.
    fn family(&self, primary_ip: IpAddr) -> Result<AddressFamily, String> {
        let Some(first) = self.vips.first() else {
            return Err("no vips configured; a virtual router needs at least one address".into());
        };
        let af = AddressFamily::of(first);
        if let Some(other) = self.vips.iter().find(|v| AddressFamily::of(v) != af) {
            return Err(format!(
                "vip {other} is {} but vip {first} is {af}; an instance is of one address family, so put each family in its own instance",
                AddressFamily::of(other)
            ));
        }
        if AddressFamily::of(&primary_ip) != af {
            return Err(format!(
                "the vips are {af} but the interface address {primary_ip} is not; give the instance an {af} address to advertise from"
            ));
        }
        Ok(af)
    }

    /// RFC 5798 §5.1.2.1: IPv6 adverts come from the interface's link-local
    /// address, and receivers drop any other source.
    fn validate_v6(&self, primary_ip: IpAddr) -> Result<(), String> {
        let link_local = |a: &IpAddr| matches!(a, IpAddr::V6(v6) if is_link_local(v6));
        if !link_local(&primary_ip) {
            return Err(format!(
                "IPv6 adverts must come from the interface's link-local address (fe80::/10), not {primary_ip}"
            ));
        }
        if let Some(peer) = self.unicast_peers.iter().find(|p| !link_local(p)) {
            return Err(format!(
                "unicast peer {peer} is not link-local (fe80::/10); IPv6 adverts are accepted only from link-local sources, so list the peers' link-local addresses"
            ));
        }
        // Peers recognise an owner only by a source among the VIPs (see the
        // crate documentation), and over IPv6 that source is link-local.
        if self.priority == PRIORITY_OWNER && !self.vips.contains(&primary_ip) {
            return Err(format!(
                "priority 255 (address owner) over IPv6 needs this node's link-local address {primary_ip} among the vips, or peers drop its adverts as a false owner claim"
            ));
        }
        Ok(())
    }
}

/// Why `vip` cannot be a virtual address, if it cannot.
fn unusable_v6_vip(vip: &Ipv6Addr) -> Result<(), &'static str> {
    if vip.is_multicast() {
        Err("multicast; vips must be unicast addresses")
    } else if vip.is_unspecified() {
        Err("the unspecified address; vips must be unicast addresses")
    } else if vip.is_loopback() {
        Err("the loopback address, which never leaves the node")
    } else {
        Ok(())
    }
}
