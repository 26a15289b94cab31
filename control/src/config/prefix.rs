//! IPv4 prefixes as written in `[[bgp.announce]]` and vipctl requests.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 prefix such as `10.0.0.0/25`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: Ipv4Addr,
    /// 0..=32.
    pub len: u8,
}

impl Prefix {
    /// The network mask as a host-order integer.
    pub(crate) fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32u32.saturating_sub(u32::from(self.len)))
            .unwrap_or(0)
    }

    /// The prefix with its host bits cleared.
    pub(crate) fn network(&self) -> Prefix {
        Prefix {
            addr: Ipv4Addr::from(u32::from(self.addr) & self.mask()),
            len: self.len,
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    pub(crate) fn has_host_bits(&self) -> bool {
        u32::from(self.addr) & !self.mask() != 0
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
    #[error("expected ADDRESS/LENGTH such as 10.0.0.0/24")]
    NoLength,
    #[error("`{0}` is not an IPv4 address")]
    Address(String),
    #[error("prefix length `{0}` is not a number in 0..=32")]
    Length(String),
}

impl FromStr for Prefix {
    type Err = PrefixError;

    /// Accepts host bits (validation reports them with a suggestion).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s.split_once('/').ok_or(PrefixError::NoLength)?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| PrefixError::Address(addr.to_string()))?;
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= 32)
            .ok_or_else(|| PrefixError::Length(len.to_string()))?;
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
        assert_eq!(all.mask(), 0);
        assert!(all.contains(Ipv4Addr::new(203, 0, 113, 9)));
        let host: Prefix = "10.0.0.7/32".parse().expect("host route");
        assert_eq!(host.mask(), u32::MAX);

        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "10.0.0.0/x", "/24"] {
            assert!(bad.parse::<Prefix>().is_err(), "{bad} accepted");
        }
    }
}
