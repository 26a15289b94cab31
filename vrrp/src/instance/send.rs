//! What the shell needs to put an instance's adverts and announcements on
//! the wire, for either family.

use std::net::IpAddr;

use super::Instance;
use crate::error::VrrpError;
use crate::family::Announcement;
use crate::packet::{encode, IPPROTO_VRRP, VRRP_TTL};

/// The IP header of one advert to send: over IPv4 the interface address to
/// 224.0.0.18, over IPv6 the interface's link-local address to ff02::12,
/// or to a unicast peer; TTL / hop limit 255, protocol / next header 112.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// IP protocol (IPv4) or next header (IPv6).
    pub protocol: u8,
}

impl Instance {
    /// One header per destination of [`crate::Output::SendAdvert`]: the
    /// multicast group of the instance's family, or each unicast peer.
    pub fn advert_headers(&self) -> Vec<AdvertHeader> {
        let group = [self.af.multicast_group()];
        let dsts = if self.cfg.unicast_peers.is_empty() {
            &group[..]
        } else {
            &self.cfg.unicast_peers[..]
        };
        dsts.iter()
            .map(|&dst| AdvertHeader {
                src: self.primary_ip,
                dst,
                ttl: VRRP_TTL,
                protocol: IPPROTO_VRRP,
            })
            .collect()
    }

    /// Writes the VRRP message of the advert with `priority` for `header`
    /// (the v3 checksum covers its addresses) and returns its length.
    pub fn encode_advert(
        &self,
        priority: u8,
        header: &AdvertHeader,
        buf: &mut [u8],
    ) -> Result<usize, VrrpError> {
        encode(buf, &self.advert(priority), header.src, header.dst)
    }

    /// What to send for [`crate::Output::SendGratuitousArp`]: gratuitous ARP
    /// for IPv4, unsolicited Neighbor Advertisements for IPv6, each VIP at
    /// the virtual MAC of the family.
    pub fn announcement(&self) -> Announcement {
        Announcement::new(self.af, self.cfg.vrid, &self.cfg.vips)
    }

    /// The virtual MAC: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID}
    /// for IPv6.
    pub fn virtual_mac(&self) -> [u8; 6] {
        self.af.virtual_mac(self.cfg.vrid)
    }
}
