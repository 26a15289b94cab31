//! Interface facts (index, MAC, addresses, queue count), privileges and the
//! locked-memory limit.
//!
//! Everything is read through sockets and ioctls rather than /sys, because
//! sysfs shows the network namespace it was mounted in, not the one the
//! engine runs in.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::ifaddrs::getifaddrs;
use nix::net::if_::if_nametoindex;
use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
use nix::time::{clock_gettime, ClockId};

use super::{EngineError, PortInfo};

/// An Ethernet address.
pub type MacAddrBytes = [u8; 6];

const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

const ETHTOOL_GCHANNELS: u32 = 0x3c;
const ETHTOOL_GGRO: u32 = 0x2b;
const ETHTOOL_SGRO: u32 = 0x2c;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;

/// `struct ethtool_value`: a command and one value.
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// Refuses early, with one clear line, when the process cannot load XDP
/// programs or open AF_XDP sockets.
pub(super) fn check_privileges() -> Result<(), EngineError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some(eff) = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    else {
        // Without the status file the syscalls themselves will report.
        return Ok(());
    };
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    // AF_XDP sockets are raw sockets.
    if !has(CAP_NET_RAW) {
        missing.push("CAP_NET_RAW");
    }
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EngineError::NotPermitted {
            missing: missing.join(", "),
        })
    }
}

fn has_ipc_lock() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|eff| eff & (1u64 << CAP_IPC_LOCK) != 0)
}

/// UMEM pages are pinned and charged to RLIMIT_MEMLOCK unless the process
/// has CAP_IPC_LOCK: lift the limit, and refuse clearly when it stays too low.
pub(super) fn raise_memlock(needed: u64) -> Result<(), EngineError> {
    let Err(errno) = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY) else {
        return Ok(());
    };
    let limit = getrlimit(Resource::RLIMIT_MEMLOCK).map_or(0, |(cur, _)| cur);
    if has_ipc_lock() || limit >= needed {
        return Ok(());
    }
    Err(EngineError::Memlock {
        needed,
        limit,
        error: errno.into(),
    })
}

fn ctl_socket() -> io::Result<OwnedFd> {
    Ok(socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

fn ioctl(sock: &OwnedFd, request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the requests used here read the name and write at most one
    // ifreq (or, for SIOCETHTOOL, the buffer ifru_data points to, which the
    // caller keeps alive across the call and sizes by the counts it states
    // in it).
    if unsafe { libc::ioctl(sock.as_raw_fd(), request as _, req as *mut libc::ifreq) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn iface_err(interface: &str, error: io::Error) -> EngineError {
    if error.raw_os_error() == Some(libc::ENODEV) {
        EngineError::InterfaceMissing {
            interface: interface.to_string(),
        }
    } else {
        EngineError::Interface {
            interface: interface.to_string(),
            error,
        }
    }
}

/// Index, MAC and IP addresses of `name` in the current network namespace.
pub(super) fn port_info(name: &str) -> Result<PortInfo, EngineError> {
    let ifindex = if_nametoindex(name).map_err(|e| iface_err(name, e.into()))?;
    let Addresses { mac, ipv4, ipv6 } = addresses(name).map_err(|e| iface_err(name, e.into()))?;
    Ok(PortInfo {
        name: name.to_string(),
        ifindex,
        mac,
        ipv4,
        ipv6,
        mtu: mtu(name)?,
        xdp_mode: super::XdpMode::Auto,
        xdp_xmit: true,
    })
}

/// What the kernel counted as lost on an interface: receive drops (no
/// buffer, or frames the XDP program or a full AF_XDP ring refused) and
/// transmit drops (frames a veth peer or NIC refused).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The kernel's counters of `name` in the calling thread's network
/// namespace (/proc/net/dev follows the reader's namespace, unlike /sys).
pub fn link_counters(name: &str) -> io::Result<LinkCounters> {
    let text = std::fs::read_to_string("/proc/net/dev")?;
    parse_net_dev(&text, name).ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
}

/// One interface's line of /proc/net/dev: after `name:`, eight receive
/// columns (bytes packets errs drop fifo frame compressed multicast) and
/// eight transmit columns (bytes packets errs drop fifo colls carrier
/// compressed).
fn parse_net_dev(text: &str, name: &str) -> Option<LinkCounters> {
    let line = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(name)?.strip_prefix(':'))?;
    let cols: Vec<u64> = line
        .split_whitespace()
        .map(|c| c.parse().ok())
        .collect::<Option<_>>()?;
    Some(LinkCounters {
        rx_errors: *cols.get(2)?,
        rx_dropped: *cols.get(3)?,
        tx_errors: *cols.get(10)?,
        tx_dropped: *cols.get(11)?,
    })
}

/// The MTU of `name` in the current network namespace.
pub(super) fn mtu(name: &str) -> Result<u32, EngineError> {
    let sock = ctl_socket().map_err(|e| iface_err(name, e))?;
    let mut req = ifreq_for(name).map_err(|e| iface_err(name, e))?;
    ioctl(&sock, libc::SIOCGIFMTU, &mut req).map_err(|e| iface_err(name, e))?;
    // SAFETY: SIOCGIFMTU succeeded, so the union holds the MTU.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(u32::try_from(mtu).unwrap_or(0))
}

/// The hardware address (zero when the link has none) and the IP
/// addresses of an interface.
struct Addresses {
    mac: MacAddrBytes,
    ipv4: Vec<Ipv4Addr>,
    /// Link-local ones last: the first is the source of the ICMPv6 errors
    /// the node sends by the port, which may have to cross a router.
    ipv6: Vec<Ipv6Addr>,
}

fn addresses(name: &str) -> Result<Addresses, Errno> {
    let mut a = Addresses {
        mac: [0u8; 6],
        ipv4: Vec::new(),
        ipv6: Vec::new(),
    };
    for ifa in getifaddrs()?.filter(|ifa| ifa.interface_name == name) {
        let Some(addr) = ifa.address else { continue };
        if let Some(sin) = addr.as_sockaddr_in() {
            a.ipv4.push(sin.ip());
        } else if let Some(sin6) = addr.as_sockaddr_in6() {
            a.ipv6.push(sin6.ip());
        } else if let Some(hw) = addr.as_link_addr().and_then(|l| l.addr()) {
            a.mac = hw;
        }
    }
    a.ipv6.sort_by_key(Ipv6Addr::is_unicast_link_local);
    Ok(a)
}

/// The IPv4 addresses of `name`.
pub(super) fn ipv4(name: &str) -> Result<Vec<Ipv4Addr>, EngineError> {
    addresses(name)
        .map(|a| a.ipv4)
        .map_err(|e| iface_err(name, e.into()))
}

/// Turns GRO off on `name` if it is on; true when it was on. Generic (skb)
/// XDP runs after GRO, which merges a flow's segments into packets no
/// AF_XDP frame holds; native XDP runs before it.
pub(super) fn disable_gro(name: &str) -> Result<bool, EngineError> {
    let sock = ctl_socket().map_err(|e| iface_err(name, e))?;
    let mut value = EthtoolValue {
        cmd: ETHTOOL_GGRO,
        data: 0,
    };
    let mut req = ifreq_for(name).map_err(|e| iface_err(name, e))?;
    req.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
    ioctl(&sock, libc::SIOCETHTOOL, &mut req).map_err(|e| iface_err(name, e))?;
    if value.data == 0 {
        return Ok(false);
    }
    value = EthtoolValue {
        cmd: ETHTOOL_SGRO,
        data: 0,
    };
    let mut req = ifreq_for(name).map_err(|e| iface_err(name, e))?;
    req.ifr_ifru.ifru_data = (&mut value as *mut EthtoolValue).cast();
    ioctl(&sock, libc::SIOCETHTOOL, &mut req).map_err(|e| iface_err(name, e))?;
    Ok(true)
}

/// The driver's statistics (`ethtool -S`) as (name, value) pairs.
fn driver_stats(name: &str) -> Result<Vec<(String, u64)>, EngineError> {
    let sock = ctl_socket().map_err(|e| iface_err(name, e))?;
    // struct ethtool_sset_info with room for one count.
    let mut info = [0u32; 5];
    info[0] = ETHTOOL_GSSET_INFO;
    // sset_mask, a u64 bit mask of string sets, at offset 8.
    info[2] = 1 << ETH_SS_STATS;
    let mut req = ifreq_for(name).map_err(|e| iface_err(name, e))?;
    req.ifr_ifru.ifru_data = info.as_mut_ptr().cast();
    ioctl(&sock, libc::SIOCETHTOOL, &mut req).map_err(|e| iface_err(name, e))?;
    if info[2] & (1 << ETH_SS_STATS) == 0 {
        return Ok(Vec::new());
    }
    let n = info[4] as usize;
    // struct ethtool_gstrings: cmd, string_set, len, then the names.
    let mut strings = vec![0u8; 12 + n * ETH_GSTRING_LEN];
    strings[..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
    strings[4..8].copy_from_slice(&ETH_SS_STATS.to_ne_bytes());
    strings[8..12].copy_from_slice(&(n as u32).to_ne_bytes());
    let mut req = ifreq_for(name).map_err(|e| iface_err(name, e))?;
    req.ifr_ifru.ifru_data = strings.as_mut_ptr().cast();
    ioctl(&sock, libc::SIOCETHTOOL, &mut req).map_err(|e| iface_err(name, e))?;
    // struct ethtool_stats: cmd, n_stats, then the values.
    let mut stats = vec![0u64; 1 + n];
    stats[0] = u64::from(ETHTOOL_GSTATS) | (n as u64) << 32;
    let mut req = ifreq_for(name).map_err(|e| iface_err(name, e))?;
    req.ifr_ifru.ifru_data = stats.as_mut_ptr().cast();
    ioctl(&sock, libc::SIOCETHTOOL, &mut req).map_err(|e| iface_err(name, e))?;
    Ok(strings[12..]
        .chunks_exact(ETH_GSTRING_LEN)
        .zip(&stats[1..])
        .map(|(s, &v)| {
            let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
            (String::from_utf8_lossy(&s[..end]).into_owned(), v)
        })
        .collect())
}

/// Frames the driver has sent for XDP (redirected into it or XDP_TX), where
/// it counts them (veth: `tx_queue_N_xdp_xmit`).
pub(super) fn xdp_xmit_count(name: &str) -> Result<Option<u64>, EngineError> {
    let stats = driver_stats(name)?;
    let mut xmit = stats
        .iter()
        .filter(|(s, _)| s.ends_with("xdp_xmit"))
        .peekable();
    Ok(xmit.peek().is_some().then(|| xmit.map(|(_, v)| v).sum()))
}

/// Receive queues usable by AF_XDP: combined plus rx-only channels; `None`
/// when the driver does not report channels (the socket bind then decides).
pub(super) fn rx_queues(name: &str) -> Result<Option<u32>, EngineError> {
    let sock = ctl_socket().map_err(|e| iface_err(name, e))?;
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    let mut req = ifreq_for(name).map_err(|e| iface_err(name, e))?;
    req.ifr_ifru.ifru_data = (&mut ch as *mut EthtoolChannels).cast();
    match ioctl(&sock, libc::SIOCETHTOOL, &mut req) {
        Ok(()) => Ok(Some(ch.combined_count + ch.rx_count)),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(None),
        Err(e) => Err(iface_err(name, e)),
    }
}

pub(super) fn monotonic_ms() -> u64 {
    // CLOCK_MONOTONIC always exists on Linux.
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |ts| {
        ts.tv_sec() as u64 * 1000 + ts.tv_nsec() as u64 / 1_000_000
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_lines_are_read_by_interface_name() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n\
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n\
  eth1: 9000 90 1 2 0 0 0 0 8000 80 3 4 0 0 0 0\n\
  eth10: 1 1 9 9 0 0 0 0 1 1 9 9 0 0 0 0\n";
        assert_eq!(
            parse_net_dev(text, "eth1"),
            Some(LinkCounters {
                rx_errors: 1,
                rx_dropped: 2,
                tx_errors: 3,
                tx_dropped: 4
            })
        );
        assert_eq!(parse_net_dev(text, "eth"), None);
        assert_eq!(parse_net_dev("eth1: 1 2 x", "eth1"), None);
    }
}
