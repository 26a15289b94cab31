//! IP prefixes and their NLRI wire form (length octet + significant octets).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Address family of a prefix (AFI 1 / AFI 2, unicast SAFI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
}

impl Family {
    pub const AFI_IPV4: u16 = 1;
    pub const AFI_IPV6: u16 = 2;
    pub const SAFI_UNICAST: u8 = 1;

    pub fn afi_safi(self) -> (u16, u8) {
        match self {
            Family::Ipv4Unicast => (Self::AFI_IPV4, Self::SAFI_UNICAST),
            Family::Ipv6Unicast => (Self::AFI_IPV6, Self::SAFI_UNICAST),
        }
    }

    pub fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (Self::AFI_IPV4, Self::SAFI_UNICAST) => Some(Family::Ipv4Unicast),
            (Self::AFI_IPV6, Self::SAFI_UNICAST) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }

    fn max_len(self) -> u8 {
        match self {
            Family::Ipv4Unicast => 32,
            Family::Ipv6Unicast => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4Unicast => "ipv4-unicast",
            Family::Ipv6Unicast => "ipv6-unicast",
        })
    }
}

/// An IPv4 or IPv6 prefix. Host bits are always zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// Why a prefix could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("prefix length {len} is longer than the {max} bits of the address")]
    TooLong { len: u8, max: u8 },
    #[error("prefix {0:?} is not ADDRESS/LENGTH (e.g. 10.0.0.0/24 or 2001:db8::/48)")]
    Syntax(String),
    #[error("prefix {given} has host bits set; did you mean {network}?")]
    HostBits { given: String, network: Prefix },
}

impl Prefix {
    /// Builds a prefix, clearing host bits so equal networks compare equal.
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, PrefixError> {
        let family = family_of(addr);
        if len > family.max_len() {
            return Err(PrefixError::TooLong {
                len,
                max: family.max_len(),
            });
        }
        Ok(Prefix {
            addr: mask(addr, len),
            len,
        })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn length(&self) -> u8 {
        self.len
    }

    pub fn family(&self) -> Family {
        family_of(self.addr)
    }

    /// True if `addr` lies inside this prefix; addresses of the other family never do.
    pub fn contains(&self, addr: IpAddr) -> bool {
        family_of(addr) == self.family() && mask(addr, self.len) == self.addr
    }

    /// True if every address of `other` lies inside this prefix (a /47 covers
    /// both of its /48s, and every prefix covers itself).
    pub fn covers(&self, other: &Prefix) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    /// Appends the NLRI encoding: length in bits, then ceil(len/8) address octets.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.len);
        let n = usize::from(self.len).div_ceil(8);
        match self.addr {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..n]),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..n]),
        }
    }

    pub(crate) fn encoded_len(&self) -> usize {
        1 + usize::from(self.len).div_ceil(8)
    }

    /// Parses one NLRI prefix from the front of `buf`; returns it and the octets used.
    pub(crate) fn decode(buf: &[u8], family: Family) -> Result<(Prefix, usize), NlriError> {
        let (&len, rest) = buf.split_first().ok_or(NlriError::Truncated)?;
        if len > family.max_len() {
            return Err(NlriError::LengthTooLong(len));
        }
        let n = usize::from(len).div_ceil(8);
        let bytes = rest.get(..n).ok_or(NlriError::Truncated)?;
        let addr = match family {
            Family::Ipv4Unicast => {
                let mut o = [0u8; 4];
                o[..n].copy_from_slice(bytes);
                IpAddr::V4(Ipv4Addr::from(o))
            }
            Family::Ipv6Unicast => {
                let mut o = [0u8; 16];
                o[..n].copy_from_slice(bytes);
                IpAddr::V6(Ipv6Addr::from(o))
            }
        };
        // Trailing bits beyond the length are ignored (RFC 4271 §4.3), so mask them.
        Ok((
            Prefix {
                addr: mask(addr, len),
                len,
            },
            1 + n,
        ))
    }

    /// Parses a whole NLRI field.
    pub(crate) fn decode_all(mut buf: &[u8], family: Family) -> Result<Vec<Prefix>, NlriError> {
        let mut v = Vec::new();
        while !buf.is_empty() {
            let (p, used) = Prefix::decode(buf, family)?;
            v.push(p);
            buf = buf.get(used..).unwrap_or_default();
        }
        Ok(v)
    }
}

/// A malformed NLRI field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NlriError {
    #[error("prefix runs past the end of the field")]
    Truncated,
    #[error("prefix length {0} is too long")]
    LengthTooLong(u8),
}

fn family_of(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::Ipv4Unicast,
        IpAddr::V6(_) => Family::Ipv6Unicast,
    }
}

fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    /// Refuses host bits: in configuration they are usually a typo for another network.
    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let syntax = || PrefixError::Syntax(s.to_string());
        let (a, l) = s.split_once('/').ok_or_else(syntax)?;
        let addr: IpAddr = a.parse().map_err(|_| syntax())?;
        let len: u8 = l.parse().map_err(|_| syntax())?;
        let network = Prefix::new(addr, len)?;
        if network.addr != addr {
            return Err(PrefixError::HostBits {
                given: s.to_string(),
                network,
            });
        }
        Ok(network)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nlri_uses_only_significant_octets() {
        for (s, octets) in [
            ("0.0.0.0/0", 0),
            ("10.0.0.0/8", 1),
            ("10.128.0.0/9", 2),
            ("10.1.2.128/25", 4),
            ("2001:db8::/32", 4),
            ("2001:db8::1/128", 16),
        ] {
            let p: Prefix = s.parse().unwrap();
            let mut out = Vec::new();
            p.encode(&mut out);
            assert_eq!(out.len(), 1 + octets, "{s}");
            assert_eq!(p.encoded_len(), out.len());
            let (back, used) = Prefix::decode(&out, p.family()).unwrap();
            assert_eq!((back, used), (p, out.len()));
        }
    }

    #[test]
    fn host_bits_are_cleared_when_built_and_refused_when_parsed() {
        let p = Prefix::new("10.1.2.3".parse().unwrap(), 24).unwrap();
        assert_eq!(p.to_string(), "10.1.2.0/24");
        let (q, _) = Prefix::decode(&[9, 10, 0xff], Family::Ipv4Unicast).unwrap();
        assert_eq!(q.to_string(), "10.128.0.0/9");
        let (r, _) = Prefix::decode(&[47, 0x20, 1, 0x0d, 0xb8, 0, 1], Family::Ipv6Unicast).unwrap();
        assert_eq!(r.to_string(), "2001:db8::/47");

        for (given, network) in [
            ("10.1.2.3/24", "10.1.2.0/24"),
            ("2001:db8::1/48", "2001:db8::/48"),
        ] {
            let e = given.parse::<Prefix>().unwrap_err();
            assert_eq!(
                e,
                PrefixError::HostBits {
                    given: given.into(),
                    network: network.parse().unwrap()
                }
            );
            assert_eq!(
                e.to_string(),
                format!("prefix {given} has host bits set; did you mean {network}?")
            );
        }
    }

    #[test]
    fn ipv6_prefixes_parse_and_print() {
        let p: Prefix = "2001:db8::/48".parse().unwrap();
        assert_eq!(p.family(), Family::Ipv6Unicast);
        assert_eq!((p.addr(), p.length()), ("2001:db8::".parse().unwrap(), 48));
        assert_eq!(p.to_string(), "2001:db8::/48");
        assert_eq!("::/0".parse::<Prefix>().unwrap().length(), 0);
    }

    #[test]
    fn containment_follows_the_prefix_length() {
        let p = |s: &str| s.parse::<Prefix>().unwrap();
        let slash47 = p("2001:db8::/47");
        assert!(slash47.covers(&p("2001:db8::/48")));
        assert!(slash47.covers(&p("2001:db8:1::/48")));
        assert!(slash47.covers(&slash47));
        assert!(!slash47.covers(&p("2001:db8:2::/48")));
        assert!(!p("2001:db8::/48").covers(&slash47));
        assert!(slash47.contains("2001:db8:1:ffff::1".parse().unwrap()));
        assert!(!slash47.contains("2001:db8:2::1".parse().unwrap()));
        assert!(p("::/0").covers(&slash47));
        // The families never mix, not even the all-covering default routes.
        assert!(!p("::/0").covers(&p("0.0.0.0/0")));
        assert!(!p("0.0.0.0/0").contains("2001:db8::1".parse().unwrap()));
        assert!(p("10.0.0.0/8").covers(&p("10.1.0.0/16")));
        assert!(p("10.0.0.0/8").contains("10.255.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert_eq!(
            "10.0.0.0/33".parse::<Prefix>(),
            Err(PrefixError::TooLong { len: 33, max: 32 })
        );
        assert_eq!(
            "2001:db8::/129".parse::<Prefix>(),
            Err(PrefixError::TooLong { len: 129, max: 128 })
        );
        assert_eq!(
            Prefix::new("2001:db8::".parse().unwrap(), 255),
            Err(PrefixError::TooLong { len: 255, max: 128 })
        );
        assert!("nonsense".parse::<Prefix>().is_err());
        assert!("2001:db8::/".parse::<Prefix>().is_err());
        assert_eq!(
            Prefix::decode(&[129, 0x20, 1], Family::Ipv6Unicast),
            Err(NlriError::LengthTooLong(129))
        );
        assert_eq!(
            Prefix::decode(&[48, 0x20, 1, 0x0d, 0xb8], Family::Ipv6Unicast),
            Err(NlriError::Truncated)
        );
        assert_eq!(
            Prefix::decode(&[33, 1, 2, 3, 4, 5], Family::Ipv4Unicast),
            Err(NlriError::LengthTooLong(33))
        );
        assert_eq!(
            Prefix::decode(&[24, 10, 0], Family::Ipv4Unicast),
            Err(NlriError::Truncated)
        );
    }
}
