//! Checks of received adverts, RFC 5798 §7.1 / RFC 3768 §7.1; over IPv6
//! also the link-local source and the ff02::12 destination of RFC 5798 §5.1.2.

use std::net::IpAddr;

use log::warn;

use super::Instance;
use crate::error::VrrpError;
use crate::events::{Datagram, Rejection};
use crate::family::{is_link_local, AddressFamily};
use crate::packet::{
    Version, VrrpPacket, AUTH_NONE, AUTH_SIMPLE_TEXT, IPPROTO_VRRP, MULTICAST_V6, PRIORITY_OWNER,
    V2_AUTH_LEN, VRRP_TTL,
};

impl Instance {
    /// Returns the advert if it is to be processed; every refusal is counted
    /// under one reason and logged on its 1st, 2nd, 4th, 8th… occurrence.
    pub(super) fn validate<'p>(
        &mut self,
        dgram: &Datagram<'p>,
    ) -> Result<VrrpPacket<&'p [u8]>, Rejection> {
        let Datagram {
            src,
            dst,
            ttl,
            protocol,
            payload: packet,
        } = *dgram;
        let name = &self.cfg.name;
        let vrid = self.cfg.vrid;
        let s = &mut self.stats;
        if protocol != IPPROTO_VRRP {
            if bump(&mut s.protocol_errors) {
                warn!("VRRP instance {name} (vrid {vrid}): dropped a packet from {src} of IP protocol {protocol}, not VRRP ({} so far)", s.protocol_errors);
            }
            return Err(Rejection::NotVrrp);
        }
        if AddressFamily::of(&src) != self.af || AddressFamily::of(&dst) != self.af {
            if bump(&mut s.family_errors) {
                warn!("VRRP instance {name} (vrid {vrid}): dropped a packet from {src} to {dst}; this instance is {} ({} so far)", self.af, s.family_errors);
            }
            return Err(Rejection::Family);
        }
        if ttl != VRRP_TTL {
            if bump(&mut s.ttl_errors) {
                warn!("VRRP instance {name} (vrid {vrid}): dropped advert from {src} with TTL {ttl}; VRRP requires 255, so it crossed a router or the sender is misconfigured ({} so far)", s.ttl_errors);
            }
            return Err(Rejection::Ttl);
        }
        if let (IpAddr::V6(src6), IpAddr::V6(dst6)) = (src, dst) {
            if !is_link_local(&src6) {
                if bump(&mut s.source_errors) {
                    warn!("VRRP instance {name} (vrid {vrid}): dropped advert from {src}; IPv6 adverts must come from a link-local address (fe80::/10) ({} so far)", s.source_errors);
                }
                return Err(Rejection::Source);
            }
            let unicast = !self.cfg.unicast_peers.is_empty() && dst == self.primary_ip;
            if dst6 != MULTICAST_V6 && !unicast {
                if bump(&mut s.destination_errors) {
                    warn!("VRRP instance {name} (vrid {vrid}): dropped advert from {src} to {dst}; IPv6 adverts go to {MULTICAST_V6}, or to us with unicast peers ({} so far)", s.destination_errors);
                }
                return Err(Rejection::Destination);
            }
        }
        // Only the owner of the VIPs may claim 255: honouring anyone else
        // would let any host on the segment take the VIPs at once. Checked
        // before decoding, so a forged claim is counted as one whatever else
        // is wrong with it.
        let claims_owner = packet.get(1) == Some(&vrid) && packet.get(2) == Some(&PRIORITY_OWNER);
        if claims_owner && !self.cfg.vips.contains(&src) {
            if bump(&mut s.false_owner) {
                warn!("VRRP instance {name} (vrid {vrid}): dropped advert from {src} claiming priority 255 (address owner) although it owns none of our VIPs {:?}; fix that node's priority or look for a rogue sender ({} so far)", self.cfg.vips, s.false_owner);
            }
            return Err(Rejection::FalseOwner);
        }
        let pkt = match VrrpPacket::new_checked(packet, self.af) {
            Ok(pkt) => pkt,
            Err(e) => {
                let (counter, reason) = match e {
                    VrrpError::Truncated { .. } => (&mut s.truncated, Rejection::Truncated),
                    VrrpError::UnknownType(_) => (&mut s.type_errors, Rejection::Type),
                    VrrpError::LengthMismatch { .. } => (&mut s.length_errors, Rejection::Length),
                    VrrpError::V2Ipv6 => (&mut s.v2_over_ipv6, Rejection::V2OverIpv6),
                    _ => (&mut s.version_errors, Rejection::Version),
                };
                if bump(counter) {
                    warn!("VRRP instance {name} (vrid {vrid}): dropped packet from {src}: {e} ({} so far)", *counter);
                }
                return Err(reason);
            }
        };
        if pkt.version() != self.cfg.version {
            if bump(&mut s.version_errors) {
                warn!("VRRP instance {name} (vrid {vrid}): dropped VRRP {} advert from {src}; this instance speaks {}, set the same version on every node ({} so far)", pkt.version(), self.cfg.version, s.version_errors);
            }
            return Err(Rejection::Version);
        }
        if !pkt.verify_checksum(src, dst) {
            if bump(&mut s.checksum_errors) {
                warn!("VRRP instance {name} (vrid {vrid}): dropped advert from {src} to {dst} with a bad checksum ({} so far)", s.checksum_errors);
            }
            return Err(Rejection::Checksum);
        }
        if pkt.vrid() != vrid {
            s.other_vrid += 1;
            return Err(Rejection::OtherVrid);
        }
        if src == self.primary_ip {
            s.own_adverts += 1;
            return Err(Rejection::OwnAdvert);
        }
        if !self.cfg.unicast_peers.is_empty() && !self.cfg.unicast_peers.contains(&src) {
            if bump(&mut s.unknown_peer) {
                warn!("VRRP instance {name} (vrid {vrid}): dropped advert from {src}, which is not among the unicast peers; add it or check for a stray node ({} so far)", s.unknown_peer);
            }
            return Err(Rejection::UnknownPeer);
        }
        if self.cfg.version == Version::V2 {
            let (want_type, want_data) = match self.cfg.auth {
                Some(pass) => (AUTH_SIMPLE_TEXT, pass),
                None => (AUTH_NONE, [0; V2_AUTH_LEN]),
            };
            let type_ok = pkt.auth_type() == Some(want_type);
            let data_ok = want_type == AUTH_NONE || pkt.auth_data() == Some(want_data);
            if !(type_ok && data_ok) {
                if bump(&mut s.auth_errors) {
                    let why = if type_ok {
                        "the password differs from ours".to_string()
                    } else {
                        format!(
                            "authentication type {} differs from ours ({want_type})",
                            pkt.auth_type().unwrap_or(AUTH_NONE)
                        )
                    };
                    warn!("VRRP instance {name} (vrid {vrid}): dropped advert from {src}: {why}; set the same `auth` on every node ({} so far)", s.auth_errors);
                }
                return Err(Rejection::Auth);
            }
            if pkt.advert_interval() != self.cfg.advert_interval {
                if bump(&mut s.interval_mismatch) {
                    warn!("VRRP instance {name} (vrid {vrid}): dropped VRRPv2 advert from {src} with interval {:?}, ours is {:?}; VRRPv2 requires the same advert interval on every node ({} so far)", pkt.advert_interval(), self.cfg.advert_interval, s.interval_mismatch);
                }
                return Err(Rejection::Interval);
            }
        } else if pkt.advert_interval().is_zero() {
            if bump(&mut s.interval_mismatch) {
                warn!("VRRP instance {name} (vrid {vrid}): dropped advert from {src} with an advert interval of zero ({} so far)", s.interval_mismatch);
            }
            return Err(Rejection::Interval);
        }
        if !same_addresses(&pkt, &self.cfg.vips) {
            let keep = self.cfg.version == Version::V3 || pkt.priority() == PRIORITY_OWNER;
            if bump(&mut s.address_mismatch) {
                warn!("VRRP instance {name} (vrid {vrid}): advert from {src} lists other addresses than our vips {:?}; {}; configure the same vips on every node ({} so far)", self.cfg.vips, if keep { "processing it anyway" } else { "dropped" }, s.address_mismatch);
            }
            if !keep {
                return Err(Rejection::Addresses);
            }
        }
        Ok(pkt)
    }
}

/// Increments a counter and says whether to log: on the 1st, 2nd, 4th, 8th…
/// occurrence, so a flood cannot flood the log.
fn bump(counter: &mut u64) -> bool {
    *counter += 1;
    counter.is_power_of_two()
}

fn same_addresses(pkt: &VrrpPacket<&[u8]>, vips: &[IpAddr]) -> bool {
    pkt.addresses().len() == vips.len()
        && pkt.addresses().all(|a| vips.contains(&a))
        && vips.iter().all(|v| pkt.addresses().any(|a| a == *v))
}
