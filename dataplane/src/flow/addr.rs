//! The address types the flow table, the schedulers and the packet path are
//! generic over: IPv4 as a host-order `u32` (`Ipv4Addr::to_bits`), IPv6 as
//! its 16 bytes in network order. IPv4 keeps its 4-byte keys and its hashes;
//! IPv6 connections live in a table of their own.

use std::fmt::Debug;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv6 address as stored in flow keys and rewrites.
pub type Ip6 = [u8; 16];

/// What a table, a scheduler or the path needs of an address.
pub trait Addr: Copy + Eq + Hash + Default + Debug + Send + Sync + 'static {
    /// 64 bits to hash: the address itself for IPv4, so IPv4 hashes (and
    /// with them Maglev and source hashing across nodes) are unchanged.
    fn word(self) -> u64;
    /// The pair of addresses of a flow key, folded into 64 bits to hash.
    fn pair_word(src: Self, dst: Self) -> u64;
    /// The address whole, for tables keyed by any family.
    fn wide(self) -> u128;
    /// The address if it is of this family.
    fn from_ip(ip: IpAddr) -> Option<Self>;
    /// The address as the rest of the node names it.
    fn ip(self) -> IpAddr;
}

impl Addr for u32 {
    #[inline]
    fn word(self) -> u64 {
        u64::from(self)
    }
    #[inline]
    fn pair_word(src: u32, dst: u32) -> u64 {
        (u64::from(src) << 32) | u64::from(dst)
    }
    #[inline]
    fn wide(self) -> u128 {
        u128::from(self)
    }
    fn from_ip(ip: IpAddr) -> Option<u32> {
        match ip {
            IpAddr::V4(a) => Some(a.to_bits()),
            IpAddr::V6(_) => None,
        }
    }
    fn ip(self) -> IpAddr {
        Ipv4Addr::from_bits(self).into()
    }
}

impl Addr for Ip6 {
    #[inline]
    fn word(self) -> u64 {
        let w = self.wide();
        crate::sched::mix((w >> 64) as u64) ^ w as u64
    }
    #[inline]
    fn pair_word(src: Ip6, dst: Ip6) -> u64 {
        src.word().rotate_left(32) ^ dst.word()
    }
    #[inline]
    fn wide(self) -> u128 {
        u128::from_be_bytes(self)
    }
    fn from_ip(ip: IpAddr) -> Option<Ip6> {
        match ip {
            IpAddr::V6(a) => Some(a.octets()),
            IpAddr::V4(_) => None,
        }
    }
    fn ip(self) -> IpAddr {
        Ipv6Addr::from(self).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_taken_only_from_their_family() {
        let v4 = Ipv4Addr::new(10, 0, 0, 1);
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(u32::from_ip(v4.into()), Some(v4.to_bits()));
        assert_eq!(Ip6::from_ip(v6.into()), Some(v6.octets()));
        assert_eq!(u32::from_ip(v6.into()), None);
        assert_eq!(Ip6::from_ip(v4.into()), None);
        assert_eq!(v4.to_bits().ip(), IpAddr::V4(v4));
        assert_eq!(v6.octets().ip(), IpAddr::V6(v6));
        assert_eq!(
            v4.to_bits().word(),
            u64::from(v4.to_bits()),
            "IPv4 hashes as before"
        );
    }

    #[test]
    fn ipv6_words_differ_in_either_half() {
        let a: Ip6 = "2001:db8::1".parse::<Ipv6Addr>().unwrap().octets();
        let b: Ip6 = "2001:db8::2".parse::<Ipv6Addr>().unwrap().octets();
        let c: Ip6 = "2001:db9::1".parse::<Ipv6Addr>().unwrap().octets();
        assert_ne!(a.word(), b.word());
        assert_ne!(a.word(), c.word());
        assert_ne!(Ip6::pair_word(a, b), Ip6::pair_word(b, a));
    }
}
