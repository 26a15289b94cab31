//! Socket options for BGP transport security: GTSM (RFC 5082) and TCP MD5
//! signatures (RFC 2385). Both are Linux socket options on the TCP socket,
//! set per address family of the session.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

/// Length of the kernel's `struct __kernel_sockaddr_storage`.
const SOCKADDR_STORAGE_LEN: usize = 128;
/// TCP_MD5SIG_MAXKEYLEN in the kernel headers.
const MD5_MAX_KEY: usize = 80;

/// The kernel's `struct tcp_md5sig`, with the address kept as raw bytes so the
/// value can be built without unsafe code.
#[repr(C, align(8))]
struct TcpMd5Sig {
    addr: [u8; SOCKADDR_STORAGE_LEN],
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; MD5_MAX_KEY],
}

pub(super) fn setsockopt<S: AsRawFd, T>(
    sock: &S,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<T>())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "socket option too large"))?;
    // SAFETY: `value` is a live, initialised `T` for the duration of the call and
    // `len` is exactly its size; the kernel only reads from the pointer.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (value as *const T).cast::<libc::c_void>(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// GTSM: send with TTL (IPv6: hop limit) 255 and drop anything that arrives
/// with one below 254, i.e. from further than one hop away.
pub(crate) fn ttl_security<S: AsRawFd>(sock: &S, ipv6: bool) -> io::Result<()> {
    let (level, hops, min_hops) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_UNICAST_HOPS,
            libc::IPV6_MINHOPCOUNT,
        )
    } else {
        (libc::IPPROTO_IP, libc::IP_TTL, libc::IP_MINTTL)
    };
    let ttl: libc::c_int = 255;
    setsockopt(sock, level, hops, &ttl)?;
    let min: libc::c_int = 254;
    setsockopt(sock, level, min_hops, &min)
}

/// An IPv6 socket that takes IPv6 connections only, so an IPv4 listener can
/// share its port.
pub(crate) fn ipv6_only<S: AsRawFd>(sock: &S) -> io::Result<()> {
    let on: libc::c_int = 1;
    setsockopt(sock, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &on)
}

/// Signs every segment to and from `peer` with `key` (1..=80 bytes). The
/// socket must be of `peer`'s family.
pub(crate) fn md5_key<S: AsRawFd>(sock: &S, peer: IpAddr, key: &[u8]) -> io::Result<()> {
    if key.is_empty() || key.len() > MD5_MAX_KEY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "TCP MD5 key is {} bytes; it must be 1 to {MD5_MAX_KEY}",
                key.len()
            ),
        ));
    }
    let mut sig = TcpMd5Sig {
        addr: [0; SOCKADDR_STORAGE_LEN],
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; MD5_MAX_KEY],
    };
    // sockaddr_in / sockaddr_in6: family in host order, then the port
    // (unused), [flow info,] and the address in network order.
    match peer {
        IpAddr::V4(a) => {
            sig.addr[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            sig.addr[4..8].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            sig.addr[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            sig.addr[8..24].copy_from_slice(&a.octets());
        }
    }
    sig.key[..key.len()].copy_from_slice(key);
    setsockopt(sock, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_struct_matches_the_kernel_layout() {
        // 128 address + 1 + 1 + 2 + 4 + 80 key, as in <linux/tcp.h>.
        assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
    }

    #[test]
    fn options_apply_to_a_tcp_socket_and_bad_keys_are_refused() {
        let local = IpAddr::from(std::net::Ipv4Addr::LOCALHOST);
        let sock = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        ttl_security(&sock, false).expect("GTSM options");
        md5_key(&sock, local, b"secret").expect("MD5 key");
        assert!(md5_key(&sock, local, b"").is_err());
        assert!(md5_key(&sock, local, &[b'k'; 81]).is_err());
    }

    #[test]
    fn ipv6_options_apply_to_an_ipv6_socket() {
        let sock = std::net::TcpListener::bind("[::1]:0").expect("bind IPv6 loopback");
        let local = IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
        ttl_security(&sock, true).expect("GTSM options over IPv6");
        md5_key(&sock, local, b"secret").expect("MD5 key for an IPv6 peer");
    }
}
