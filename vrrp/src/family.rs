//! What differs per address family: address size, advert destination,
//! virtual MAC and how the VIPs are announced.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::packet::{MULTICAST_V4, MULTICAST_V6};

/// Address family of a virtual router's addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    Ipv4,
    Ipv6,
}

impl AddressFamily {
    /// Family of `addr`.
    pub fn of(addr: &IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => AddressFamily::Ipv4,
            IpAddr::V6(_) => AddressFamily::Ipv6,
        }
    }

    /// Bytes one address takes in an advert.
    pub fn address_len(self) -> usize {
        match self {
            AddressFamily::Ipv4 => 4,
            AddressFamily::Ipv6 => 16,
        }
    }

    /// Where adverts of this family are multicast.
    pub fn multicast_group(self) -> IpAddr {
        match self {
            AddressFamily::Ipv4 => IpAddr::V4(MULTICAST_V4),
            AddressFamily::Ipv6 => IpAddr::V6(MULTICAST_V6),
        }
    }

    /// The virtual router MAC of RFC 5798 §7.3: 00-00-5E-00-01-{VRID} for
    /// IPv4, 00-00-5E-00-02-{VRID} for IPv6.
    pub fn virtual_mac(self, vrid: u8) -> [u8; 6] {
        let family = match self {
            AddressFamily::Ipv4 => 0x01,
            AddressFamily::Ipv6 => 0x02,
        };
        [0x00, 0x00, 0x5e, 0x00, family, vrid]
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::Ipv4 => "IPv4",
            AddressFamily::Ipv6 => "IPv6",
        })
    }
}

/// Whether `addr` is in fe80::/10, where IPv6 adverts must come from
/// (RFC 5798 §5.1.2.1). `Ipv6Addr::is_unicast_link_local` is newer than the
/// workspace's minimum Rust.
pub fn is_link_local(addr: &Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// How a new master announces the VIPs at the virtual MAC, for
/// [`crate::Output::SendGratuitousArp`]: the shell sends one message per
/// address, as many times and as often as its announcement settings say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// One gratuitous ARP per VIP.
    GratuitousArp { mac: [u8; 6], vips: Vec<Ipv4Addr> },
    /// One unsolicited Neighbor Advertisement per VIP (RFC 5798 §6.4,
    /// RFC 4861 §7.2.6): Router and Override flags set, Solicited clear,
    /// target link-layer address `mac`, to ff02::1 with hop limit 255.
    UnsolicitedNa { mac: [u8; 6], vips: Vec<Ipv6Addr> },
}

impl Announcement {
    /// The announcement of `vips` (all of `af`) for virtual router `vrid`.
    pub fn new(af: AddressFamily, vrid: u8, vips: &[IpAddr]) -> Self {
        let mac = af.virtual_mac(vrid);
        match af {
            AddressFamily::Ipv4 => Announcement::GratuitousArp {
                mac,
                vips: vips
                    .iter()
                    .filter_map(|v| match v {
                        IpAddr::V4(a) => Some(*a),
                        IpAddr::V6(_) => None,
                    })
                    .collect(),
            },
            AddressFamily::Ipv6 => Announcement::UnsolicitedNa {
                mac,
                vips: vips
                    .iter()
                    .filter_map(|v| match v {
                        IpAddr::V6(a) => Some(*a),
                        IpAddr::V4(_) => None,
                    })
                    .collect(),
            },
        }
    }
}
