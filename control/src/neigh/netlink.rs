//! The kernel's neighbour table over rtnetlink: a NETLINK_ROUTE socket in
//! the neighbour multicast group, the dump request that lists the table,
//! and the reading of RTM_NEWNEIGH / RTM_DELNEIGH messages. IPv4 and IPv6
//! entries are read alike; bridge forwarding entries, which travel in the
//! same group, are skipped.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    self, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use wire::MacAddr;

const NLMSG_HDR_LEN: usize = 16;
const NDMSG_LEN: usize = 12;
const RTA_HDR_LEN: usize = 4;
/// Room for a burst of changes (an interface going down drops all its
/// entries at once); an overflow costs a fresh dump.
const RECV_BUFFER: usize = 1 << 20;
/// States in which an entry has a usable MAC (`NUD_VALID` in the kernel):
/// the entries /proc/net/arp flags complete.
const NUD_VALID: u16 = libc::NUD_PERMANENT
    | libc::NUD_NOARP
    | libc::NUD_REACHABLE
    | libc::NUD_PROBE
    | libc::NUD_STALE
    | libc::NUD_DELAY;

/// One change read from the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Update {
    /// `addr` on interface `ifindex` resolves to `mac`.
    Set {
        addr: IpAddr,
        ifindex: u32,
        mac: MacAddr,
    },
    /// `addr` on interface `ifindex` has no usable MAC any more.
    Remove { addr: IpAddr, ifindex: u32 },
    /// The dump asked for is complete.
    DumpDone,
}

/// A non-blocking NETLINK_ROUTE socket that receives neighbour changes.
pub(super) struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Socket {
    pub(super) fn open() -> io::Result<Socket> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        // Best effort: the default buffer still works, with more re-dumps.
        let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &RECV_BUFFER);
        let groups = u32::try_from(libc::RTMGRP_NEIGH).unwrap_or_default();
        socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
        Ok(Socket { fd, seq: 0 })
    }

    /// Asks the kernel for every neighbour entry of every family; the
    /// answer ends with [`Update::DumpDone`].
    pub(super) fn request_dump(&mut self) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let kernel = NetlinkAddr::new(0, 0);
        socket::sendto(
            self.fd.as_raw_fd(),
            &dump_request(self.seq),
            &kernel,
            MsgFlags::empty(),
        )?;
        Ok(())
    }

    /// Reads one datagram; `WouldBlock` when none is waiting, ENOBUFS when
    /// the kernel dropped changes because the buffer was full.
    pub(super) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(socket::recv(self.fd.as_raw_fd(), buf, MsgFlags::empty())?)
    }
}

/// RTM_GETNEIGH with NLM_F_DUMP for all address families.
fn dump_request(seq: u32) -> [u8; NLMSG_HDR_LEN + NDMSG_LEN] {
    let mut m = [0u8; NLMSG_HDR_LEN + NDMSG_LEN];
    let flags = u16::try_from(libc::NLM_F_REQUEST | libc::NLM_F_DUMP).unwrap_or_default();
    let len = (NLMSG_HDR_LEN + NDMSG_LEN) as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&libc::RTM_GETNEIGH.to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // Port id 0 and an all-zero ndmsg: AF_UNSPEC, every interface.
    m
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads the netlink messages in one datagram. A message that is cut short
/// ends the datagram; an error the kernel reports is returned.
pub(super) fn parse(mut buf: &[u8], out: &mut Vec<Update>) -> io::Result<()> {
    while let Some(len) = u32_at(buf, 0).map(|l| l as usize) {
        let Some(msg) = buf.get(..len).filter(|_| len >= NLMSG_HDR_LEN) else {
            break;
        };
        let body = &msg[NLMSG_HDR_LEN..];
        match u16_at(msg, 4).map(i32::from) {
            Some(libc::NLMSG_DONE) => out.push(Update::DumpDone),
            Some(libc::NLMSG_ERROR) => {
                let code = u32_at(body, 0).map_or(0, |c| c as i32);
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
            }
            Some(t) if t == i32::from(libc::RTM_NEWNEIGH) => out.extend(neighbour(body, true)),
            Some(t) if t == i32::from(libc::RTM_DELNEIGH) => out.extend(neighbour(body, false)),
            _ => {}
        }
        buf = buf.get(align(len)..).unwrap_or_default();
    }
    Ok(())
}

/// One ndmsg and its attributes.
fn neighbour(body: &[u8], new: bool) -> Option<Update> {
    let family = i32::from(*body.first()?);
    if family != libc::AF_INET && family != libc::AF_INET6 {
        return None;
    }
    let ifindex = u32_at(body, 4)?;
    let state = u16_at(body, 8)?;
    let mut addr = None;
    let mut mac = None;
    let mut attrs = body.get(NDMSG_LEN..)?;
    while let (Some(len), Some(kind)) = (u16_at(attrs, 0), u16_at(attrs, 2)) {
        let len = usize::from(len);
        let Some(value) = attrs.get(RTA_HDR_LEN..len) else {
            break;
        };
        match kind {
            libc::NDA_DST => {
                addr = match value.len() {
                    4 => <[u8; 4]>::try_from(value)
                        .ok()
                        .map(Ipv4Addr::from)
                        .map(IpAddr::V4),
                    16 => <[u8; 16]>::try_from(value)
                        .ok()
                        .map(Ipv6Addr::from)
                        .map(IpAddr::V6),
                    _ => None,
                }
            }
            libc::NDA_LLADDR => mac = <[u8; 6]>::try_from(value).ok().map(MacAddr),
            _ => {}
        }
        attrs = attrs.get(align(len)..).unwrap_or_default();
    }
    let addr = addr?;
    match mac {
        Some(mac) if new && state & NUD_VALID != 0 && !mac.is_zero() => {
            Some(Update::Set { addr, ifindex, mac })
        }
        _ => Some(Update::Remove { addr, ifindex }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A neighbour message as the kernel sends it.
    fn message(kind: u16, family: u8, ifindex: u32, state: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDR_LEN + NDMSG_LEN];
        m[4..6].copy_from_slice(&kind.to_ne_bytes());
        m[NLMSG_HDR_LEN] = family;
        m[NLMSG_HDR_LEN + 4..NLMSG_HDR_LEN + 8].copy_from_slice(&ifindex.to_ne_bytes());
        m[NLMSG_HDR_LEN + 8..NLMSG_HDR_LEN + 10].copy_from_slice(&state.to_ne_bytes());
        for (t, v) in attrs {
            let len = (RTA_HDR_LEN + v.len()) as u16;
            m.extend_from_slice(&len.to_ne_bytes());
            m.extend_from_slice(&t.to_ne_bytes());
            m.extend_from_slice(v);
            m.resize(align(m.len()), 0);
        }
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    const MAC: [u8; 6] = [2, 0xaa, 0, 0, 0, 1];

    #[test]
    fn complete_entries_set_and_others_remove() {
        let v4 = [10, 77, 1, 101];
        let v6 = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).octets();
        let af4 = libc::AF_INET as u8;
        let mut buf = message(
            libc::RTM_NEWNEIGH,
            af4,
            3,
            libc::NUD_REACHABLE,
            &[(libc::NDA_DST, &v4), (libc::NDA_LLADDR, &MAC)],
        );
        buf.extend(message(
            libc::RTM_NEWNEIGH,
            libc::AF_INET6 as u8,
            3,
            libc::NUD_STALE,
            &[(libc::NDA_DST, &v6), (libc::NDA_LLADDR, &MAC)],
        ));
        buf.extend(message(
            libc::RTM_NEWNEIGH,
            af4,
            3,
            libc::NUD_INCOMPLETE,
            &[(libc::NDA_DST, &v4)],
        ));
        buf.extend(message(
            libc::RTM_DELNEIGH,
            af4,
            4,
            libc::NUD_REACHABLE,
            &[(libc::NDA_DST, &v4), (libc::NDA_LLADDR, &MAC)],
        ));
        // A bridge forwarding entry travels in the same group.
        buf.extend(message(
            libc::RTM_NEWNEIGH,
            libc::AF_BRIDGE as u8,
            5,
            libc::NUD_REACHABLE,
            &[(libc::NDA_LLADDR, &MAC)],
        ));
        let mut out = Vec::new();
        parse(&buf, &mut out).expect("parses");
        let addr = IpAddr::V4(Ipv4Addr::from(v4));
        assert_eq!(
            out,
            vec![
                Update::Set {
                    addr,
                    ifindex: 3,
                    mac: MacAddr(MAC)
                },
                Update::Set {
                    addr: IpAddr::V6(Ipv6Addr::from(v6)),
                    ifindex: 3,
                    mac: MacAddr(MAC)
                },
                Update::Remove { addr, ifindex: 3 },
                Update::Remove { addr, ifindex: 4 },
            ]
        );
    }

    #[test]
    fn dump_end_errors_and_truncation() {
        let mut done = message(0, 0, 0, 0, &[]);
        done[4..6].copy_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
        let mut out = Vec::new();
        parse(&done, &mut out).expect("parses");
        assert_eq!(out, vec![Update::DumpDone]);

        let mut err = message(0, 0, 0, 0, &[]);
        err[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        err[NLMSG_HDR_LEN..NLMSG_HDR_LEN + 4].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        let e = parse(&err, &mut Vec::new()).expect_err("kernel error");
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));

        let whole = message(
            libc::RTM_NEWNEIGH,
            libc::AF_INET as u8,
            3,
            libc::NUD_REACHABLE,
            &[(libc::NDA_DST, &[10, 0, 0, 1]), (libc::NDA_LLADDR, &MAC)],
        );
        let mut out = Vec::new();
        parse(&whole[..whole.len() - 2], &mut out).expect("a cut message is skipped");
        assert!(out.is_empty());
    }
}
