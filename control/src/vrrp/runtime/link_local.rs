//! The interface's IPv6 link-local address, the source of an IPv6
//! instance's adverts (RFC 5798 §5.1.2.1).

use std::io;
use std::net::Ipv6Addr;

use nix::ifaddrs::getifaddrs;

/// The first link-local (fe80::/10) address of `interface`; an error
/// naming the interface when it has none.
pub(crate) fn link_local(interface: &str) -> io::Result<Ipv6Addr> {
    getifaddrs()
        .map_err(io::Error::from)?
        .filter(|ifa| ifa.interface_name == interface)
        .filter_map(|ifa| ifa.address?.as_sockaddr_in6().map(|a| a.ip()))
        .find(::vrrp::is_link_local)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "interface {interface} has no IPv6 link-local address (fe80::/10) to send adverts from; \
                     check that IPv6 is on there (sysctl net.ipv6.conf.{interface}.disable_ipv6=0) \
                     and that it generates a link-local address (`ip link set {interface} addrgenmode eui64`)"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interface_without_one_is_named() {
        // Loopback never has a link-local address.
        let e = link_local("lo").expect_err("lo has no link-local address");
        assert!(
            e.to_string()
                .starts_with("interface lo has no IPv6 link-local address"),
            "{e}"
        );
    }
}
