//! The backup's side of the lag: an AF_PACKET socket on its sync interface,
//! in its namespace, that takes every sync datagram from the master with
//! the kernel's receive stamp (SO_TIMESTAMPNS, CLOCK_REALTIME) and keeps
//! the records of its Batch messages.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, Context, Result};
use connsync::{ConnRecord, MessageType, MessageView};
use viplab::netns;

use super::lag::Seen;

/// What the sniffer took in besides the records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sniffed {
    pub seen: Vec<Seen>,
    /// Datagrams from the master to the sync port, and of those the ones
    /// that were no well-formed sync message.
    pub datagrams: u64,
    pub malformed: u64,
    /// Records that did not decode.
    pub bad_records: u64,
    /// Datagrams without a kernel stamp (stamped on reading instead).
    pub unstamped: u64,
    /// Packets the kernel dropped because the socket's buffer was full
    /// (PACKET_STATISTICS): their records count as lost in sync.
    pub dropped: u64,
}

/// The records of one IPv4 packet if it is a sync Batch from `from` to
/// UDP port `port`; `None` for any other packet. `Some(Err)` for a sync
/// datagram that is no message.
pub(crate) fn batch_records(
    packet: &[u8],
    from: Ipv4Addr,
    port: u16,
) -> Option<Result<Vec<Result<ConnRecord, connsync::SyncError>>, connsync::SyncError>> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    if packet.first()? >> 4 != 4 || *packet.get(9)? != 17 || packet.get(12..16)? != from.octets() {
        return None;
    }
    let udp = packet.get(ihl..)?;
    if u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]) != port {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*udp.get(4)?, *udp.get(5)?]));
    let payload = udp.get(8..len.max(8)).unwrap_or(&udp[udp.len().min(8)..]);
    Some(MessageView::new_checked(payload).map(|m| {
        if m.msg_type() != MessageType::Batch {
            return Vec::new();
        }
        m.records().map(ConnRecord::decode).collect()
    }))
}

/// The running sniffer; [`Sniffer::stop`] returns what it saw.
pub(crate) struct Sniffer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<Sniffed>>>,
}

struct RxSocket(libc::c_int);

impl Drop for RxSocket {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn setsockopt<T>(fd: libc::c_int, level: i32, name: i32, value: &T) -> std::io::Result<()> {
    // SAFETY: setsockopt reads `size_of::<T>()` bytes of `value`.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

impl RxSocket {
    /// IPv4 packets arriving on `ifindex`, kernel-stamped.
    fn open(ifindex: u32) -> Result<RxSocket> {
        let proto = (libc::ETH_P_IP as u16).to_be();
        // SAFETY: plain socket(2); the descriptor is owned by the result.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(proto)) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("opening an AF_PACKET socket");
        }
        let s = RxSocket(fd);
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &1i32).context("SO_TIMESTAMPNS")?;
        // Root may go past rmem_max; a plain SO_RCVBUF is the fallback.
        let size = 16i32 << 20;
        if setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size).is_err() {
            let _ = setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size);
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv).context("SO_RCVTIMEO")?;
        bind_packet(fd, ifindex, proto)?;
        Ok(s)
    }

    /// Packets dropped for want of buffer since the last call.
    fn drops(&self) -> u64 {
        let mut st = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `st`.
        let rc = unsafe {
            libc::getsockopt(
                self.0,
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            u64::from(st.tp_drops)
        } else {
            0
        }
    }

    /// One packet into `buf` and its kernel stamp (ns); `Ok(None)` on the
    /// receive timeout.
    fn recv(&self, buf: &mut [u8]) -> std::io::Result<Option<(usize, Option<u64>)>> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16];
        // SAFETY: msghdr is plain data; all zero is a valid value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control);
        // SAFETY: `msg` points at `iov`, `buf` and `control`, all alive.
        let n = unsafe { libc::recvmsg(self.0, &mut msg, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.kind() {
                std::io::ErrorKind::WouldBlock
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let mut stamp = None;
        // SAFETY: the CMSG macros walk the control buffer the kernel just
        // filled, within msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPNS {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                    stamp = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        Ok(Some((n as usize, stamp)))
    }
}

fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own and nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Sniffer {
    /// Starts sniffing interface `ifindex` in `ns` for Batch messages from
    /// `from` to UDP `port`; returns once the socket is open.
    pub(crate) fn start(ns: &str, ifindex: u32, from: Ipv4Addr, port: u16) -> Result<Sniffer> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let (ready_tx, ready) = std::sync::mpsc::channel::<Result<()>>();
        let ns = ns.to_string();
        let handle = std::thread::Builder::new()
            .name("vipbench-sniff".into())
            .spawn(move || -> Result<Sniffed> {
                let open = || -> Result<RxSocket> {
                    netns::enter(&ns)?;
                    RxSocket::open(ifindex)
                };
                let sock = match open() {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow!("{e:#}")));
                        return Err(e);
                    }
                };
                let mut out = Sniffed::default();
                // Counted from here on.
                sock.drops();
                let mut buf = vec![0u8; 65_536];
                while !stopped.load(Ordering::Relaxed) {
                    let Some((n, stamp)) = sock.recv(&mut buf).context("sniffing sync")? else {
                        continue;
                    };
                    let at_ns = stamp.unwrap_or_else(realtime_ns);
                    let Some(records) = batch_records(&buf[..n], from, port) else {
                        continue;
                    };
                    out.datagrams += 1;
                    out.unstamped += u64::from(stamp.is_none());
                    match records {
                        Err(_) => out.malformed += 1,
                        Ok(records) => {
                            for r in records {
                                match r {
                                    Ok(record) => out.seen.push(Seen { at_ns, record }),
                                    Err(_) => out.bad_records += 1,
                                }
                            }
                        }
                    }
                }
                out.dropped = sock.drops();
                Ok(out)
            })
            .context("starting the sync sniffer")?;
        ready
            .recv()
            .map_err(|_| anyhow!("the sync sniffer died while starting"))??;
        Ok(Sniffer {
            stop,
            handle: Some(handle),
        })
    }

    pub(crate) fn stop(mut self) -> Result<Sniffed> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .ok_or_else(|| anyhow!("sniffer already stopped"))?
            .join()
            .map_err(|_| anyhow!("the sync sniffer panicked"))?
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Binds AF_PACKET socket `fd` to interface `ifindex` for protocol `proto`
/// (network order; 0 receives nothing).
pub(super) fn bind_packet(fd: libc::c_int, ifindex: u32, proto: u16) -> Result<()> {
    // SAFETY: sockaddr_ll is plain data; all zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: bind reads `sll`, which lives across the call.
    let rc = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("binding the AF_PACKET socket");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4/UDP packet from `src` to `dport` carrying `payload`.
    fn packet(src: [u8; 4], proto: u8, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[9] = proto;
        p[12..16].copy_from_slice(&src);
        p[22..24].copy_from_slice(&dport.to_be_bytes());
        p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    /// A Batch message with `records` (the tag is not checked here: zeros).
    fn batch(records: &[ConnRecord]) -> Vec<u8> {
        let mut m = vec![0u8; connsync::HEADER_LEN];
        m[0..2].copy_from_slice(&connsync::MAGIC);
        m[2] = connsync::VERSION;
        m[3] = MessageType::Batch.code();
        m[32..34].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for r in records {
            let mut b = [0u8; ConnRecord::LEN];
            r.encode_into(&mut b).unwrap();
            m.extend_from_slice(&b);
        }
        m.extend_from_slice(&[0u8; connsync::TAG_LEN]);
        m
    }

    #[test]
    fn batch_records_of_the_master_only() {
        let master = Ipv4Addr::new(10, 88, 2, 1);
        let r = ConnRecord {
            proto: 6,
            client_ip: 7,
            client_port: 8,
            ..ConnRecord::default()
        };
        let msg = batch(&[r, r]);
        let got = batch_records(&packet(master.octets(), 17, 8848, &msg), master, 8848)
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap(), &r);
        // From the backup itself, another port, TCP: not sync.
        assert!(batch_records(&packet([10, 88, 2, 2], 17, 8848, &msg), master, 8848).is_none());
        assert!(batch_records(&packet(master.octets(), 17, 53, &msg), master, 8848).is_none());
        assert!(batch_records(&packet(master.octets(), 6, 8848, &msg), master, 8848).is_none());
        // A sync datagram that is no message.
        assert!(
            batch_records(&packet(master.octets(), 17, 8848, b"junk"), master, 8848)
                .unwrap()
                .is_err()
        );
        // A heartbeat carries no records.
        let mut hb = batch(&[]);
        hb[3] = MessageType::Heartbeat.code();
        assert!(
            batch_records(&packet(master.octets(), 17, 8848, &hb), master, 8848)
                .unwrap()
                .unwrap()
                .is_empty()
        );
    }
}
