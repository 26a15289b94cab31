//! Zero-copy typed views over frames.
//!
//! Each view wraps a byte buffer (`T: AsRef<[u8]>`). `new_checked` validates
//! every length the accessors later depend on, so accessors read fixed
//! offsets and never panic; setters exist when `T: AsMut<[u8]>`. Each header
//! module names its field offsets once, in a private `field` table. The
//! `write_*_header` functions and [`ArpMessage`] build new headers; the
//! other `write_*` functions build whole IPv6 packets vipd answers with
//! (Neighbor Advertisements, echo replies, ICMPv6 errors). Nothing here
//! allocates.

pub mod checksum;

mod arp;
mod ethernet;
mod icmp;
mod icmpv6;
mod ipv4;
mod ipv6;
mod ipv6_ext;
mod ndp;
mod offload;
mod tcp;
mod udp;

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

pub use arp::{ArpMessage, ArpPacket};
pub use ethernet::{write_header as write_ethernet_header, EthernetFrame, EthernetHeader};
pub use icmp::IcmpPacket;
pub use icmpv6::{
    icmpv6_type, write_echo_reply, write_icmpv6_error, Icmpv6Error, Icmpv6Packet,
    MIN_MTU as IPV6_MIN_MTU,
};
pub use ipv4::{write_header as write_ipv4_header, Ipv4Header, Ipv4Packet};
pub use ipv6::{write_header as write_ipv6_header, Ipv6Header, Ipv6Packet};
pub use ipv6_ext::{
    walk_ext_headers, Ipv6ChainError, Ipv6Fragment, Ipv6Option, Ipv6OptionAction, Ipv6Options,
    Ipv6OptionsIter, Ipv6Upper, MAX_CHAIN_LEN, MAX_EXT_HEADERS,
};
pub use ndp::{
    multicast_mac, solicited_node_multicast, write_neighbor_advert, NdpError, NdpOption,
    NdpOptions, NeighborAdvertMessage, NeighborAdvertisement, NeighborSolicitation,
};
pub use offload::finish_partial_checksum;
pub use tcp::{write_header as write_tcp_header, TcpFlags, TcpHeader, TcpSegment};
pub use udp::{write_header as write_udp_header, UdpDatagram, UdpHeader};

/// Why a buffer was refused by a view's `new_checked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the header (or a length field) claims.
    #[error("packet truncated")]
    Truncated,
    /// The IP version nibble does not match the view.
    #[error("wrong IP version")]
    BadVersion,
    /// The header length field is below the minimum or beyond the buffer.
    #[error("invalid header length")]
    BadHeaderLen,
    /// The total/payload length field is inconsistent with the header or buffer.
    #[error("invalid total length")]
    BadTotalLen,
    /// A well-formed packet of a kind vipd does not handle.
    #[error("unsupported packet type")]
    Unsupported,
    /// A Neighbor Discovery option of length zero, which RFC 4861 §4.6
    /// says makes the whole packet invalid.
    #[error("invalid option length")]
    BadOptionLen,
}

/// EtherType values vipd recognises.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q customer tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag.
    pub const QINQ: u16 = 0x88a8;
}

/// IP protocol numbers (IPv6 next-header values) vipd recognises.
pub mod ip_proto {
    /// IPv6 hop-by-hop options header.
    pub const HOP_BY_HOP: u8 = 0;
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    pub const ICMPV6: u8 = 58;
    pub const NO_NEXT_HEADER: u8 = 59;
    /// IPv6 destination options header.
    pub const DEST_OPTS: u8 = 60;
    pub const VRRP: u8 = 112;
}

/// An Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    #[inline]
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// True for group addresses (I/G bit set), which includes broadcast.
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    #[inline]
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not a MAC address in `aa:bb:cc:dd:ee:ff` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseMacError(String);

impl fmt::Display for ParseMacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid MAC address {:?}: expected six hex octets separated by ':' or '-', like 02:00:5e:00:01:01",
            self.0
        )
    }
}

impl std::error::Error for ParseMacError {}

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseMacError(s.to_string());
        let sep = if s.contains('-') { '-' } else { ':' };
        let mut out = [0u8; 6];
        let mut parts = s.split(sep);
        for slot in &mut out {
            let part = parts.next().ok_or_else(err)?;
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(err());
            }
            *slot = u8::from_str_radix(part, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

/// The bytes of one multi-byte header field; each header names its fields
/// once, in its own `field` module. Single-byte fields are plain offsets.
type Field = core::ops::Range<usize>;

// Readers and writers of fields `new_checked` has already validated; the
// field's width is the range's.

#[inline]
fn get16(b: &[u8], f: Field) -> u16 {
    let s = &b[f];
    u16::from_be_bytes([s[0], s[1]])
}

#[inline]
fn get32(b: &[u8], f: Field) -> u32 {
    let s = &b[f];
    u32::from_be_bytes([s[0], s[1], s[2], s[3]])
}

#[inline]
fn put16(b: &mut [u8], f: Field, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

#[inline]
fn put32(b: &mut [u8], f: Field, v: u32) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

#[inline]
fn get_ipv6(b: &[u8], f: Field) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[f]);
    Ipv6Addr::from(o)
}

#[inline]
fn put_ipv6(b: &mut [u8], f: Field, a: Ipv6Addr) {
    b[f].copy_from_slice(&a.octets());
}

#[inline]
fn get_mac(b: &[u8], f: Field) -> MacAddr {
    let s = &b[f];
    MacAddr([s[0], s[1], s[2], s[3], s[4], s[5]])
}

#[inline]
fn put_mac(b: &mut [u8], f: Field, m: MacAddr) {
    b[f].copy_from_slice(&m.0);
}

/// Deterministic pseudo-random numbers for property-style tests.
#[cfg(test)]
pub(crate) struct XorShift(pub u64);

#[cfg(test)]
impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 16) as u32
    }

    pub fn next_u16(&mut self) -> u16 {
        (self.next_u64() >> 24) as u16
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 32) as u8).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_display_and_parse_round_trip() {
        let mut rng = XorShift(0xdead_beef);
        for _ in 0..200 {
            let b = rng.bytes(6);
            let m = MacAddr([b[0], b[1], b[2], b[3], b[4], b[5]]);
            let text = m.to_string();
            assert_eq!(text.len(), 17);
            assert_eq!(text.parse::<MacAddr>(), Ok(m));
            assert_eq!(text.replace(':', "-").parse::<MacAddr>(), Ok(m));
            assert_eq!(format!("{m:?}"), text);
        }
    }

    #[test]
    fn mac_parse_rejects_malformed() {
        for bad in [
            "",
            "00:11:22:33:44",
            "00:11:22:33:44:55:66",
            "00:11:22:33:44:5g",
            "00:11:22:33:44:555",
            "00:11:22:33::55",
            "0011.2233.4455",
            "+1:00:00:00:00:00",
            "00-11:22:33:44:55",
        ] {
            let err = bad.parse::<MacAddr>().unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn mac_classification() {
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(MacAddr::ZERO.is_zero());
        assert!(!MacAddr::ZERO.is_multicast());
        let vrrp: MacAddr = "01:00:5e:00:00:12".parse().unwrap();
        assert!(vrrp.is_multicast() && !vrrp.is_broadcast());
        let unicast: MacAddr = "02:00:5e:00:01:01".parse().unwrap();
        assert!(!unicast.is_multicast() && !unicast.is_zero());
    }
}
