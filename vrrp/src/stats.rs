//! Per-instance counters, exported as metrics by the shell.

/// What an instance received, refused and did. Every refused advert is
/// counted under exactly one reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceStats {
    /// The IP protocol was not VRRP.
    pub protocol_errors: u64,
    /// Source or destination not of the instance's address family.
    pub family_errors: u64,
    /// IP TTL / hop limit was not 255: the advert crossed a router.
    pub ttl_errors: u64,
    /// IPv6 source not link-local.
    pub source_errors: u64,
    /// IPv6 destination neither ff02::12 nor, with unicast peers, ours.
    pub destination_errors: u64,
    /// Priority 255 (address owner) claimed by a source that is none of our
    /// VIPs.
    pub false_owner: u64,
    /// Version field unsupported or not the instance's version.
    pub version_errors: u64,
    /// Type field was not ADVERTISEMENT.
    pub type_errors: u64,
    /// Shorter than its header, addresses and authentication data.
    pub truncated: u64,
    /// IPv6: longer than its header and addresses.
    pub length_errors: u64,
    /// VRRPv2 over IPv6.
    pub v2_over_ipv6: u64,
    pub checksum_errors: u64,
    /// Valid advert for another virtual router on the same link.
    pub other_vrid: u64,
    /// Our own advert came back (multicast loopback).
    pub own_adverts: u64,
    /// Sender not among the configured unicast peers.
    pub unknown_peer: u64,
    /// v2 authentication type or password differs from ours.
    pub auth_errors: u64,
    /// v2: interval differs from ours (dropped); v3: interval of zero (dropped).
    pub interval_mismatch: u64,
    /// Address list differs from our VIPs (v3 and v2 owner adverts are still processed).
    pub address_mismatch: u64,
    /// Adverts that passed validation.
    pub adverts_received: u64,
    pub priority_zero_received: u64,
    pub adverts_sent: u64,
    pub priority_zero_sent: u64,
    pub became_master: u64,
    pub released_master: u64,
}

impl InstanceStats {
    /// Adverts dropped before reaching the state machine, over all reasons.
    /// Address mismatches are not in it: a v3 advert with another address
    /// list is still processed.
    pub fn dropped(&self) -> u64 {
        self.protocol_errors
            + self.family_errors
            + self.ttl_errors
            + self.source_errors
            + self.destination_errors
            + self.false_owner
            + self.version_errors
            + self.type_errors
            + self.truncated
            + self.length_errors
            + self.v2_over_ipv6
            + self.checksum_errors
            + self.other_vrid
            + self.own_adverts
            + self.unknown_peer
            + self.auth_errors
            + self.interval_mismatch
    }
}
