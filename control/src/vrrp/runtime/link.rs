//! Frames sent from the virtual MAC. Adverts (RFC 5798 §7.3), gratuitous
//! ARP and unsolicited Neighbor Advertisements must leave with the virtual
//! MAC (00:00:5e:00:01:VRID, 00:00:5e:00:02:VRID over IPv6) as Ethernet
//! source, which an IP socket cannot do: they go out on an AF_PACKET socket
//! bound to the instance's interface, with every header built here.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use ::vrrp::VRRP_TTL;
use socket2::{Domain, Socket, Type};
use wire::{
    ethertype, ip_proto, write_ethernet_header, write_ipv6_header, EthernetFrame, EthernetHeader,
    Ipv4Packet, Ipv6Header, MacAddr, WireError,
};

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;
/// Ethernet and IP headers in front of the VRRP message, at most.
pub(crate) const HEADERS_LEN: usize = 14 + IPV6_HEADER_LEN;

/// The Ethernet group address of an IPv4 multicast group (RFC 1112: the
/// low 23 bits under 01:00:5e), 01:00:5e:00:00:12 for 224.0.0.18.
pub(crate) fn multicast_mac(group: Ipv4Addr) -> MacAddr {
    let [_, b, c, d] = group.octets();
    MacAddr([0x01, 0x00, 0x5e, b & 0x7f, c, d])
}

/// Writes Ethernet + IPv4 (TTL 255, protocol 112, DF off, precedence
/// "internetwork control" as routers mark their protocols) + `payload` into
/// `buf` and returns the frame's length; `Truncated` if `buf` is too short
/// or the payload does not fit an IPv4 packet.
pub(crate) fn advert_frame(
    buf: &mut [u8],
    macs: (MacAddr, MacAddr),
    addrs: (Ipv4Addr, Ipv4Addr),
    ident: u16,
    payload: &[u8],
) -> Result<usize, WireError> {
    let (src_mac, dst_mac) = macs;
    let eth_len = EthernetFrame::<&[u8]>::HEADER_LEN;
    let ip_len = IPV4_HEADER_LEN + payload.len();
    let total = u16::try_from(ip_len).map_err(|_| WireError::Truncated)?;
    let frame = buf
        .get_mut(..eth_len + ip_len)
        .ok_or(WireError::Truncated)?;
    frame.fill(0);
    frame[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
    let mut eth = EthernetFrame::new_checked(&mut *frame)?;
    eth.set_dst(dst_mac);
    eth.set_src(src_mac);
    let ip = eth.payload_mut();
    ip[0] = 0x45;
    ip[1] = TOS_INTERNETWORK_CONTROL;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&ident.to_be_bytes());
    ip[9] = ip_proto::VRRP;
    ip.get_mut(IPV4_HEADER_LEN..)
        .ok_or(WireError::Truncated)?
        .copy_from_slice(payload);
    let mut pkt = Ipv4Packet::new_checked(ip)?;
    pkt.set_src(addrs.0);
    pkt.set_dst(addrs.1);
    pkt.set_ttl(VRRP_TTL);
    pkt.fill_checksum();
    Ok(eth_len + ip_len)
}

/// Writes Ethernet + IPv6 (hop limit 255, next header 112, traffic class
/// "internetwork control" as for IPv4) + `payload`, whose checksum the
/// core filled, into `buf` and returns the frame's length; `Truncated` if
/// `buf` is too short.
pub(crate) fn advert_frame_v6(
    buf: &mut [u8],
    macs: (MacAddr, MacAddr),
    addrs: (Ipv6Addr, Ipv6Addr),
    payload: &[u8],
) -> Result<usize, WireError> {
    let (src, dst) = macs;
    let at = write_ethernet_header(
        buf,
        &EthernetHeader {
            dst,
            src,
            ethertype: ethertype::IPV6,
        },
    )?;
    let at = at
        + write_ipv6_header(
            buf.get_mut(at..).ok_or(WireError::Truncated)?,
            &Ipv6Header {
                src: addrs.0,
                dst: addrs.1,
                next_header: ip_proto::VRRP,
                hop_limit: VRRP_TTL,
                traffic_class: TOS_INTERNETWORK_CONTROL,
                payload_len: u16::try_from(payload.len()).map_err(|_| WireError::Truncated)?,
            },
        )?;
    buf.get_mut(at..at + payload.len())
        .ok_or(WireError::Truncated)?
        .copy_from_slice(payload);
    Ok(at + payload.len())
}

/// A send-only packet socket bound to one interface.
pub(crate) struct PacketSocket {
    sock: Socket,
}

impl PacketSocket {
    pub(crate) fn open(interface: &str, ifindex: u32) -> io::Result<Self> {
        let ctx = |what: &str, e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("packet socket on {interface} (virtual MAC frames): {what}: {e}"),
            )
        };
        // Protocol 0: this socket only sends, it receives nothing.
        let sock = Socket::new(Domain::PACKET, Type::RAW, None)
            .map_err(|e| ctx("opening a packet socket (needs CAP_NET_RAW)", e))?;
        let index = i32::try_from(ifindex).map_err(|_| {
            ctx(
                "interface index out of range",
                io::Error::from(io::ErrorKind::InvalidInput),
            )
        })?;
        let addr = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: 0,
            sll_ifindex: index,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `addr` is a fully initialised sockaddr_ll that lives across
        // the call, `len` is its exact size, and the descriptor is owned by
        // `sock`; bind reads the address and writes no memory of ours.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                std::ptr::addr_of!(addr).cast::<libc::sockaddr>(),
                len,
            )
        };
        if rc != 0 {
            return Err(ctx("binding to the interface", io::Error::last_os_error()));
        }
        sock.set_nonblocking(true)
            .map_err(|e| ctx("making the socket non-blocking", e))?;
        Ok(PacketSocket { sock })
    }

    /// Sends one complete Ethernet frame.
    pub(crate) fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.sock.send(frame).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Ethernet2Header, NetSlice, SlicedPacket};

    #[test]
    fn advert_frame_carries_the_virtual_mac_and_a_valid_ip_header() {
        let vmac = MacAddr([0, 0, 0x5e, 0, 1, 51]);
        let src = Ipv4Addr::new(10, 77, 0, 11);
        let payload = [0x31, 51, 150, 1, 0, 10, 0xab, 0xcd, 10, 77, 0, 101];
        let mut buf = [0xeeu8; 128];
        let n = advert_frame(
            &mut buf,
            (vmac, multicast_mac(::vrrp::MULTICAST_V4)),
            (src, ::vrrp::MULTICAST_V4),
            0x1234,
            &payload,
        )
        .expect("fits");
        assert_eq!(n, 14 + IPV4_HEADER_LEN + payload.len());

        let p = SlicedPacket::from_ethernet(&buf[..n]).expect("parses");
        let (eth, _) = Ethernet2Header::from_slice(&buf[..n]).expect("ethernet II");
        assert_eq!(eth.source, vmac.0);
        assert_eq!(eth.destination, [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!("no IPv4 in {:?}", &buf[..n]);
        };
        let h = ip.header().to_header();
        assert_eq!(h.time_to_live, 255);
        assert_eq!(h.dscp.value(), 48, "precedence 6");
        assert_eq!(h.protocol.0, 112);
        assert!(!h.dont_fragment && !h.more_fragments);
        assert_eq!(h.fragment_offset.value(), 0);
        assert_eq!(h.identification, 0x1234);
        assert_eq!(h.source, src.octets());
        assert_eq!(h.destination, [224, 0, 0, 18]);
        assert_eq!(usize::from(h.total_len), 20 + payload.len());
        assert_eq!(h.header_checksum, h.calc_header_checksum(), "IP checksum");
        assert_eq!(ip.payload().payload, &payload);
    }

    #[test]
    fn ipv6_advert_frame_carries_the_virtual_mac_and_hop_limit_255() {
        let vmac = MacAddr([0, 0, 0x5e, 0, 2, 51]);
        let src: Ipv6Addr = "fe80::11".parse().unwrap();
        let payload = [0x31, 51, 150, 1, 0, 10, 0xab, 0xcd];
        let mut buf = [0xeeu8; 128];
        let group = wire::multicast_mac(::vrrp::MULTICAST_V6);
        let n = advert_frame_v6(
            &mut buf,
            (vmac, group),
            (src, ::vrrp::MULTICAST_V6),
            &payload,
        )
        .expect("fits");
        assert_eq!(n, HEADERS_LEN + payload.len());
        let p = SlicedPacket::from_ethernet(&buf[..n]).expect("parses");
        let (eth, _) = Ethernet2Header::from_slice(&buf[..n]).expect("ethernet II");
        assert_eq!(eth.source, vmac.0);
        assert_eq!(eth.destination, [0x33, 0x33, 0, 0, 0, 0x12]);
        let Some(NetSlice::Ipv6(ip)) = p.net else {
            panic!("no IPv6 in {:?}", &buf[..n]);
        };
        let h = ip.header().to_header();
        assert_eq!(h.hop_limit, 255);
        assert_eq!(h.next_header.0, 112);
        assert_eq!(h.source, src.octets());
        assert_eq!(h.destination, ::vrrp::MULTICAST_V6.octets());
        assert_eq!(usize::from(h.payload_length), payload.len());
        assert_eq!(ip.payload().payload, &payload);
        let mut short = [0u8; 60];
        assert_eq!(
            advert_frame_v6(&mut short, (vmac, group), (src, src), &payload),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn group_macs_follow_the_rfc_1112_mapping() {
        assert_eq!(
            multicast_mac(Ipv4Addr::new(224, 0, 0, 18)).0,
            [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]
        );
        // Only the low 23 bits of the group survive.
        assert_eq!(
            multicast_mac(Ipv4Addr::new(239, 200, 1, 2)).0,
            [0x01, 0x00, 0x5e, 0x48, 0x01, 0x02]
        );
    }

    #[test]
    fn advert_frame_refuses_a_short_buffer() {
        let mut buf = [0u8; 40];
        let r = advert_frame(
            &mut buf,
            (MacAddr::ZERO, MacAddr::BROADCAST),
            (Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST),
            0,
            &[0; 8],
        );
        assert_eq!(r, Err(WireError::Truncated));
    }
}
