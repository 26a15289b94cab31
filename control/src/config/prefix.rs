//! IPv4 and IPv6 prefixes as written in `[[bgp.announce]]` and vipctl requests.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 prefix such as `10.0.0.0/25` or `2001:db8::/48`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    /// 0..=32 for IPv4, 0..=128 for IPv6.
    pub len: u8,
}

impl Prefix {
    /// The address with its host bits cleared.
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(a) => {
                let m = u32::MAX
                    .checked_shl(32u32.saturating_sub(u32::from(self.len)))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
            }
            IpAddr::V6(a) => {
                let m = u128::MAX
                    .checked_shl(128u32.saturating_sub(u32::from(self.len)))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
            }
        }
    }

    /// The prefix with its host bits cleared.
    pub(crate) fn network(&self) -> Prefix {
        Prefix {
            addr: self.masked(self.addr),
            len: self.len,
        }
    }

    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    /// Whether `ip` lies inside; an address of the other family never does.
    pub fn contains(&self, ip: impl Into<IpAddr>) -> bool {
        let ip = ip.into();
        ip.is_ipv6() == self.is_ipv6() && self.masked(ip) == self.masked(self.addr)
    }

    pub(crate) fn has_host_bits(&self) -> bool {
        self.masked(self.addr) != self.addr
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Why text is not a prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("expected ADDRESS/LENGTH such as 10.0.0.0/24 or 2001:db8::/48")]
    NoLength,
    #[error("`{0}` is not an IPv4 or IPv6 address")]
    Address(String),
    #[error("prefix length `{0}` is not a number in 0..={1}")]
    Length(String, u8),
}

impl FromStr for Prefix {
    type Err = PrefixError;

    /// Accepts host bits (validation reports them with a suggestion).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s.split_once('/').ok_or(PrefixError::NoLength)?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| PrefixError::Address(addr.to_string()))?;
        let max = if addr.is_ipv6() { 128 } else { 32 };
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| PrefixError::Length(len.to_string(), max))?;
        Ok(Prefix { addr, len })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_parse_display_and_membership() {
        let p: Prefix = "10.0.0.0/25".parse().expect("valid prefix");
        assert_eq!(p.to_string(), "10.0.0.0/25");
        assert!(p.contains(Ipv4Addr::new(10, 0, 0, 127)));
        assert!(!p.contains(Ipv4Addr::new(10, 0, 0, 128)));
        assert!(!p.has_host_bits());

        let h: Prefix = "10.0.0.1/25".parse().expect("host bits parse");
        assert!(h.has_host_bits());
        assert_eq!(h.network(), p);

        let all: Prefix = "0.0.0.0/0".parse().expect("default route");
        assert!(all.contains(Ipv4Addr::new(203, 0, 113, 9)));
        assert!(!all.contains("2001:db8::1".parse::<Ipv6Addr>().expect("v6")));
        let host: Prefix = "10.0.0.7/32".parse().expect("host route");
        assert!(host.contains(Ipv4Addr::new(10, 0, 0, 7)));
        assert!(!host.contains(Ipv4Addr::new(10, 0, 0, 6)));

        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "10.0.0.0/x", "/24"] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn ipv6_prefixes_parse_and_contain_only_their_family() {
        let p: Prefix = "2001:db8::/48".parse().expect("valid prefix");
        assert!(p.is_ipv6() && !p.has_host_bits());
        assert_eq!(p.to_string(), "2001:db8::/48");
        let inside: Ipv6Addr = "2001:db8:0:ffff::1".parse().expect("v6");
        let outside: Ipv6Addr = "2001:db8:1::1".parse().expect("v6");
        assert!(p.contains(inside) && !p.contains(outside));
        assert!(!p.contains(Ipv4Addr::new(32, 1, 13, 184)));

        let h: Prefix = "2001:db8::1/48".parse().expect("host bits parse");
        assert!(h.has_host_bits());
        assert_eq!(h.network(), p);
        let all: Prefix = "::/0".parse().expect("default route");
        assert!(all.contains(outside));
        let host: Prefix = "2001:db8::1/128".parse().expect("host route");
        assert!(!host.has_host_bits());

        assert_eq!(
            "2001:db8::/129".parse::<Prefix>(),
            Err(PrefixError::Length("129".into(), 128))
        );
        assert!("2001:db8::".parse::<Prefix>().is_err());
    }
}
