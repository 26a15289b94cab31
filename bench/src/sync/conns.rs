//! New TCP connections at a paced rate, from user space: an AF_PACKET
//! socket on the generator's interface sends each connection's SYN, and
//! its ACK in the next send call, so every connection's establishing ACK
//! has a send stamp (CLOCK_REALTIME, read when the call that carried it
//! returned: veth has then put the frame on the master's receive ring).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use viplab::netns;
use wire::{
    ethertype, ip_proto, write_ethernet_header, write_ipv4_header, write_tcp_header,
    EthernetHeader, Ipv4Header, Ipv4Packet, MacAddr, TcpFlags, TcpHeader, TcpSegment,
};

use super::lag::Sent;

/// Connections per send call at most (two frames each).
const PER_CALL: usize = 32;
/// Sources per client address.
const PORTS_PER_IP: u32 = 50_000;
const PORT_BASE: u32 = 10_000;
/// Ethernet + IPv4 + TCP, padded to the minimum frame.
const FRAME_LEN: usize = 60;

/// Where the connections go and come from.
#[derive(Clone, Debug)]
pub(crate) struct ConnSpec {
    pub ns: String,
    pub ifindex: u32,
    pub core: usize,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub client_base: Ipv4Addr,
    pub vip: Ipv4Addr,
    pub vip_port: u16,
    /// Offered connections per second, and for how long.
    pub rate: u64,
    pub duration: Duration,
}

/// What one paced run sent.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConnRun {
    pub sent: Vec<Sent>,
    pub seconds: f64,
    /// Length of each send call that carried ACKs, ns, sorted: how much
    /// earlier than their stamp those ACKs may have left.
    pub calls_ns: Vec<i64>,
}

/// The client of connection `i`.
pub(crate) fn client(base: Ipv4Addr, i: u32) -> (Ipv4Addr, u16) {
    let ip = Ipv4Addr::from_bits(base.to_bits() + i / PORTS_PER_IP);
    (ip, (PORT_BASE + i % PORTS_PER_IP) as u16)
}

/// A client's SYN (`ack` false) or its ACK of the handshake.
pub(crate) fn frame(spec: &ConnSpec, src: Ipv4Addr, port: u16, ack: bool) -> Result<Vec<u8>> {
    let mut f = vec![0u8; FRAME_LEN];
    let eth = EthernetHeader {
        dst: MacAddr(spec.dst_mac),
        src: MacAddr(spec.src_mac),
        ethertype: ethertype::IPV4,
    };
    let ip = Ipv4Header {
        src,
        dst: spec.vip,
        protocol: ip_proto::TCP,
        tos: 0,
        ttl: 64,
        total_len: 40,
    };
    let l3 = write_ethernet_header(&mut f, &eth)?;
    if !write_ipv4_header(&mut f[l3..], &ip) {
        bail!("frame too short for its IPv4 header");
    }
    let mut packet = Ipv4Packet::new_checked(&mut f[l3..])?;
    packet.set_dont_frag(true);
    let segment = packet.payload_mut();
    let tcp = TcpHeader {
        src_port: port,
        dst_port: spec.vip_port,
        seq: if ack { 1001 } else { 1000 },
        ack: if ack { 5001 } else { 0 },
        flags: if ack { TcpFlags::ACK } else { TcpFlags::SYN },
        window: 65535,
    };
    write_tcp_header(segment, &tcp)?;
    TcpSegment::new_checked(segment)?.fill_checksum_v4(src, spec.vip);
    Ok(f)
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

/// An AF_PACKET socket that only sends, bound to `ifindex`.
struct TxSocket(libc::c_int);

impl TxSocket {
    fn open(ifindex: u32) -> Result<TxSocket> {
        // SAFETY: plain socket(2); the descriptor is owned by the result.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("opening an AF_PACKET socket");
        }
        let s = TxSocket(fd);
        // Protocol 0: this socket receives nothing.
        super::sniff::bind_packet(fd, ifindex, 0)?;
        Ok(s)
    }

    /// Sends every frame, in order. A call that stops at a refused frame
    /// returns how many went before it; the rest go in the next call.
    fn send_all(&self, frames: &[&[u8]]) -> Result<()> {
        let mut iov: Vec<libc::iovec> = frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iov
            .iter_mut()
            .map(|v| {
                // SAFETY: mmsghdr is plain data; all zero is a valid value.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = v;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        let mut done = 0;
        while done < msgs.len() {
            // SAFETY: the headers point into `iov` and `frames`, both alive
            // and unmoved for the call.
            let n = unsafe {
                libc::sendmmsg(
                    self.0,
                    msgs[done..].as_mut_ptr(),
                    (msgs.len() - done) as u32,
                    0,
                )
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                // ENOBUFS: veth refused the frame (the master's ring is
                // full); it goes again, as a client's would.
                if e.kind() == std::io::ErrorKind::Interrupted
                    || e.raw_os_error() == Some(libc::ENOBUFS)
                {
                    continue;
                }
                return Err(e).context("sending on the AF_PACKET socket");
            }
            done += n as usize;
        }
        Ok(())
    }
}

impl Drop for TxSocket {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// Opens `rate * duration` connections paced over `duration`, from a
/// thread in the generator's namespace pinned to its core.
pub(crate) fn run(spec: &ConnSpec) -> Result<ConnRun> {
    let spec = spec.clone();
    let total = (spec.rate as f64 * spec.duration.as_secs_f64()) as u32;
    if total == 0 {
        bail!("no connections to open at {} per second", spec.rate);
    }
    // Built before the clock starts: the loop only sends.
    let mut syns = Vec::with_capacity(total as usize);
    let mut acks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let (ip, port) = client(spec.client_base, i);
        syns.push(frame(&spec, ip, port, false)?);
        acks.push(frame(&spec, ip, port, true)?);
    }
    let ns = spec.ns.clone();
    netns::in_ns(&ns, move || {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: spec.core }) {
            bail!("cannot pin the connection generator to core {}", spec.core);
        }
        let sock = TxSocket::open(spec.ifindex)?;
        let mut run = ConnRun {
            sent: Vec::with_capacity(total as usize),
            ..ConnRun::default()
        };
        let per_ns = spec.rate as f64 / 1e9;
        let start = Instant::now();
        // Connections [acked, synced) have had their SYN, not their ACK.
        let (mut synced, mut acked) = (0usize, 0usize);
        let mut batch: Vec<&[u8]> = Vec::with_capacity(2 * PER_CALL);
        while acked < total as usize {
            let due = ((start.elapsed().as_nanos() as f64 * per_ns) as usize).min(total as usize);
            let new = due.saturating_sub(synced).min(PER_CALL);
            if new == 0 && acked == synced {
                std::hint::spin_loop();
                continue;
            }
            batch.clear();
            let ack_to = synced;
            batch.extend(acks[acked..ack_to].iter().map(Vec::as_slice));
            batch.extend(syns[synced..synced + new].iter().map(Vec::as_slice));
            let before = Instant::now();
            sock.send_all(&batch)?;
            let stamp = realtime_ns();
            if ack_to > acked {
                run.calls_ns.push(before.elapsed().as_nanos() as i64);
            }
            for i in acked..ack_to {
                let (ip, port) = client(spec.client_base, i as u32);
                run.sent.push(Sent {
                    key: (ip.to_bits(), port),
                    ack_ns: stamp,
                });
            }
            acked = ack_to;
            synced += new;
        }
        run.seconds = start.elapsed().as_secs_f64();
        run.calls_ns.sort_unstable();
        Ok(run)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn spec() -> ConnSpec {
        ConnSpec {
            ns: String::new(),
            ifindex: 0,
            core: 0,
            src_mac: [2, 0, 0, 0, 0, 2],
            dst_mac: [2, 0, 0, 0, 0, 1],
            client_base: Ipv4Addr::new(10, 91, 100, 0),
            vip: Ipv4Addr::new(10, 88, 0, 100),
            vip_port: 80,
            rate: 10,
            duration: Duration::from_secs(1),
        }
    }

    #[test]
    fn clients_are_distinct_and_spill_over_to_the_next_address() {
        let base = Ipv4Addr::new(10, 91, 100, 0);
        assert_eq!(client(base, 0), (base, 10_000));
        assert_eq!(client(base, 49_999), (base, 59_999));
        assert_eq!(
            client(base, 50_000),
            (Ipv4Addr::new(10, 91, 100, 1), 10_000)
        );
    }

    #[test]
    fn syn_and_ack_frames_have_valid_checksums() {
        let src = Ipv4Addr::new(10, 91, 100, 3);
        for ack in [false, true] {
            let f = frame(&spec(), src, 12_345, ack).unwrap();
            assert_eq!(f.len(), 60);
            let p = SlicedPacket::from_ethernet(&f).unwrap();
            let Some(NetSlice::Ipv4(ip)) = p.net.clone() else {
                panic!("not IPv4")
            };
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum());
            assert_eq!(h.source, src.octets());
            let Some(TransportSlice::Tcp(tcp)) = p.transport else {
                panic!("not TCP")
            };
            assert_eq!((tcp.syn(), tcp.ack()), (!ack, ack));
            assert_eq!(tcp.source_port(), 12_345);
            let want = tcp
                .to_header()
                .calc_checksum_ipv4(&h, tcp.payload())
                .unwrap();
            assert_eq!(tcp.checksum(), want);
        }
    }
}
