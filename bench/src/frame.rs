//! Frame templates for the generator: one Ethernet/IPv4/UDP or TCP frame,
//! or one Ethernet/IPv6/UDP frame, whose source address and port are zero
//! (the generator program fills them in per packet and adjusts the
//! checksums from the template's).

use std::net::{Ipv4Addr, Ipv6Addr};

use wire::{
    ethertype, ip_proto, write_ethernet_header, write_ipv4_header, write_ipv6_header,
    write_tcp_header, write_udp_header, EthernetFrame, EthernetHeader, Ipv4Header, Ipv4Packet,
    Ipv6Header, MacAddr, TcpFlags, TcpHeader, TcpSegment, UdpDatagram, UdpHeader, WireError,
};

/// Smallest Ethernet frame without the FCS.
pub const MIN_FRAME: usize = 60;
/// Largest frame: a 1500-byte IP packet (native XDP on veth refuses larger MTUs).
pub const MAX_FRAME: usize = 1514;
/// Where the generator writes its timestamp in UDP frames (after the headers).
pub const UDP_PAYLOAD_OFFSET: usize = ETH_HLEN + IP_HLEN + UDP_HLEN;
/// Bytes the timestamp needs: magic and nanoseconds.
pub const STAMP_LEN: usize = 12;

/// The transport of the generated traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Udp,
    /// TCP SYN (new connections); the generator turns some into ACKs of
    /// established flows when a mix is configured.
    TcpSyn,
}

/// What the template looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    /// Ethernet frame length without FCS, MIN_FRAME..=MAX_FRAME.
    pub size: usize,
    pub proto: Proto,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub dst_ip: Ipv4Addr,
    pub dst_port: u16,
}

/// A built template and what the generator needs to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub bytes: Vec<u8>,
    /// TCP data-offset/flags word as it sits in the frame (0 for UDP).
    pub tcp_flags_word: u16,
    /// TCP or UDP checksum as it sits in the frame, over a zero source
    /// address and port (and, for UDP, a zero timestamp).
    pub l4_csum: u16,
    pub dst_ip: Ipv4Addr,
    pub dst_port: u16,
    pub ttl: u8,
}

/// TTL of generated frames.
const TTL: u8 = 64;

const ETH_HLEN: usize = EthernetFrame::<&[u8]>::HEADER_LEN;
const IP_HLEN: usize = 20;
const TCP_HLEN: usize = 20;
const UDP_HLEN: usize = UdpDatagram::<&[u8]>::HEADER_LEN;

impl FrameSpec {
    /// Builds the template; the source address and port are zero.
    pub fn build(&self) -> Result<Template, FrameError> {
        let min = match self.proto {
            Proto::Udp => MIN_FRAME.max(UDP_PAYLOAD_OFFSET + STAMP_LEN),
            Proto::TcpSyn => MIN_FRAME,
        };
        if !(min..=MAX_FRAME).contains(&self.size) {
            return Err(FrameError::Size {
                size: self.size,
                min,
            });
        }
        let mut f = vec![0u8; self.size];
        // A SYN carries no payload; the rest of a short frame is Ethernet padding.
        let (ip_len, protocol) = match self.proto {
            Proto::Udp => (self.size - ETH_HLEN, ip_proto::UDP),
            Proto::TcpSyn => (IP_HLEN + TCP_HLEN, ip_proto::TCP),
        };
        let eth = EthernetHeader {
            dst: MacAddr(self.dst_mac),
            src: MacAddr(self.src_mac),
            ethertype: ethertype::IPV4,
        };
        let ip = Ipv4Header {
            src: Ipv4Addr::UNSPECIFIED,
            dst: self.dst_ip,
            protocol,
            tos: 0,
            ttl: TTL,
            // At most MAX_FRAME, so it fits.
            total_len: ip_len as u16,
        };
        let l4 = write_ethernet_header(&mut f, &eth)?;
        if !write_ipv4_header(&mut f[l4..], &ip) {
            return Err(WireError::Truncated.into());
        }
        let mut packet = Ipv4Packet::new_checked(&mut f[l4..])?;
        packet.set_dont_frag(true);
        let segment = packet.payload_mut();
        let (tcp_flags_word, csum) = match self.proto {
            Proto::Udp => {
                let udp = UdpHeader {
                    src_port: 0,
                    dst_port: self.dst_port,
                    len: (ip_len - IP_HLEN) as u16,
                };
                write_udp_header(segment, &udp)?;
                let mut d = UdpDatagram::new_checked(segment)?;
                d.fill_checksum_v4(Ipv4Addr::UNSPECIFIED, self.dst_ip);
                (0, d.checksum())
            }
            Proto::TcpSyn => {
                let tcp = TcpHeader {
                    src_port: 0,
                    dst_port: self.dst_port,
                    seq: 1,
                    ack: 0,
                    flags: TcpFlags::SYN,
                    window: 65535,
                };
                write_tcp_header(segment, &tcp)?;
                let mut t = TcpSegment::new_checked(segment)?;
                t.fill_checksum_v4(Ipv4Addr::UNSPECIFIED, self.dst_ip);
                // Data offset and flags: the header's 13th and 14th bytes.
                let flags_word = (((TCP_HLEN / 4) as u16) << 12) | u16::from(t.flags().bits());
                (u16::from_ne_bytes(flags_word.to_be_bytes()), t.checksum())
            }
        };
        Ok(Template {
            bytes: f,
            tcp_flags_word,
            l4_csum: u16::from_ne_bytes(csum.to_be_bytes()),
            dst_ip: self.dst_ip,
            dst_port: self.dst_port,
            ttl: TTL,
        })
    }
}

/// An IPv6 UDP template: like [`FrameSpec`] with `Proto::Udp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Udp6Spec {
    /// Ethernet frame length without FCS, [`MIN_FRAME6`]..=MAX_FRAME.
    pub size: usize,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub dst_ip: Ipv6Addr,
    pub dst_port: u16,
}

/// Smallest IPv6 UDP frame: 62 bytes of headers and 2 payload bytes, the
/// IPv4 rows' 64 bytes.
pub const MIN_FRAME6: usize = 64;
/// Where the generator writes its timestamp in IPv6 UDP frames.
pub const UDP6_PAYLOAD_OFFSET: usize = ETH_HLEN + IP6_HLEN + UDP_HLEN;

/// A built IPv6 template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template6 {
    pub bytes: Vec<u8>,
    /// UDP checksum as it sits in the frame, over a zero source address and
    /// port and a zero payload.
    pub l4_csum: u16,
    pub dst_ip: Ipv6Addr,
    pub dst_port: u16,
    pub hop_limit: u8,
    /// Whether the payload holds a timestamp ([`STAMP_LEN`] bytes): not in
    /// frames shorter than 74 bytes, whose latency goes unmeasured.
    pub stamps: bool,
}

const IP6_HLEN: usize = 40;

impl Udp6Spec {
    /// Builds the template; the source address and port are zero.
    pub fn build(&self) -> Result<Template6, FrameError> {
        if !(MIN_FRAME6..=MAX_FRAME).contains(&self.size) {
            return Err(FrameError::Size {
                size: self.size,
                min: MIN_FRAME6,
            });
        }
        let mut f = vec![0u8; self.size];
        // Unlike IPv4 there is no Ethernet padding here: every byte after
        // the IPv6 header is UDP, so the sink's checksum covers the frame.
        let udp_len = self.size - ETH_HLEN - IP6_HLEN;
        let eth = EthernetHeader {
            dst: MacAddr(self.dst_mac),
            src: MacAddr(self.src_mac),
            ethertype: ethertype::IPV6,
        };
        let ip = Ipv6Header {
            src: Ipv6Addr::UNSPECIFIED,
            dst: self.dst_ip,
            next_header: ip_proto::UDP,
            hop_limit: TTL,
            traffic_class: 0,
            // At most MAX_FRAME, so it fits.
            payload_len: udp_len as u16,
        };
        let l3 = write_ethernet_header(&mut f, &eth)?;
        let l4 = l3 + write_ipv6_header(&mut f[l3..], &ip)?;
        let udp = UdpHeader {
            src_port: 0,
            dst_port: self.dst_port,
            len: udp_len as u16,
        };
        write_udp_header(&mut f[l4..], &udp)?;
        let mut d = UdpDatagram::new_checked(&mut f[l4..])?;
        d.fill_checksum_v6(Ipv6Addr::UNSPECIFIED, self.dst_ip);
        let csum = d.checksum();
        Ok(Template6 {
            bytes: f,
            l4_csum: u16::from_ne_bytes(csum.to_be_bytes()),
            dst_ip: self.dst_ip,
            dst_port: self.dst_port,
            hop_limit: TTL,
            stamps: self.size >= UDP6_PAYLOAD_OFFSET + STAMP_LEN,
        })
    }
}

/// Why a frame template cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {size} is out of range: use {min} to {MAX_FRAME} bytes")]
    Size { size: usize, min: usize },
    /// The sizes `build` accepts always hold the headers.
    #[error("frame too short for its headers: {0}")]
    TooShort(#[from] WireError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn spec(proto: Proto, size: usize) -> FrameSpec {
        FrameSpec {
            size,
            proto,
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
            dst_ip: Ipv4Addr::new(10, 88, 0, 100),
            dst_port: 80,
        }
    }

    #[test]
    fn udp_template_parses_with_valid_ip_checksum() {
        for size in [MIN_FRAME, 128, 1514] {
            let t = spec(Proto::Udp, size).build().unwrap();
            assert_eq!(t.bytes.len(), size);
            let p = SlicedPacket::from_ethernet(&t.bytes).unwrap();
            let Some(NetSlice::Ipv4(ip)) = p.net else {
                panic!("not IPv4")
            };
            let h = ip.header().to_header();
            assert_eq!(h.header_checksum, h.calc_header_checksum());
            assert_eq!(h.destination, [10, 88, 0, 100]);
            assert_eq!(usize::from(h.total_len), size - 14);
            let Some(TransportSlice::Udp(udp)) = p.transport else {
                panic!("not UDP")
            };
            assert_eq!(udp.destination_port(), 80);
            assert_eq!(usize::from(udp.length()), size - 34);
        }
    }

    #[test]
    fn syn_template_has_valid_tcp_checksum_and_padding() {
        let t = spec(Proto::TcpSyn, 64).build().unwrap();
        let p = SlicedPacket::from_ethernet(&t.bytes).unwrap();
        let Some(NetSlice::Ipv4(ip)) = p.net.clone() else {
            panic!("not IPv4")
        };
        let Some(TransportSlice::Tcp(tcp)) = p.transport else {
            panic!("not TCP")
        };
        assert!(tcp.syn() && !tcp.ack());
        let h = ip.header().to_header();
        let want = tcp
            .to_header()
            .calc_checksum_ipv4(&h, tcp.payload())
            .unwrap();
        assert_eq!(tcp.checksum(), want);
        assert_eq!(t.l4_csum.to_ne_bytes(), want.to_be_bytes());
        assert_eq!(t.tcp_flags_word.to_ne_bytes(), [0x50, 0x02]);
        assert_eq!(h.total_len, 40);
    }

    fn spec6(size: usize) -> Udp6Spec {
        Udp6Spec {
            size,
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
            dst_ip: "2001:db8::50".parse().unwrap(),
            dst_port: 80,
        }
    }

    #[test]
    fn udp6_templates_carry_a_valid_pseudo_header_checksum() {
        for (size, stamps) in [
            (64, false),
            (73, false),
            (74, true),
            (84, true),
            (1514, true),
        ] {
            let t = spec6(size).build().unwrap();
            assert_eq!((t.bytes.len(), t.stamps), (size, stamps), "{size} bytes");
            let p = SlicedPacket::from_ethernet(&t.bytes).unwrap();
            let Some(NetSlice::Ipv6(ip)) = p.net else {
                panic!("not IPv6")
            };
            let h = ip.header().to_header();
            assert_eq!(h.destination, t.dst_ip.octets());
            assert_eq!(h.source, [0; 16]);
            assert_eq!(
                (h.hop_limit, usize::from(h.payload_length)),
                (64, size - 54)
            );
            let Some(TransportSlice::Udp(udp)) = p.transport else {
                panic!("not UDP")
            };
            assert_eq!(udp.destination_port(), 80);
            assert_eq!(udp.payload().len(), size - 62);
            let want = udp
                .to_header()
                .calc_checksum_ipv6(&h, udp.payload())
                .unwrap();
            assert_eq!(udp.checksum(), want);
            assert_eq!(t.l4_csum.to_ne_bytes(), want.to_be_bytes());
        }
    }

    #[test]
    fn udp6_sizes_out_of_range_are_refused() {
        assert!(spec6(63).build().is_err());
        assert!(spec6(1515).build().is_err());
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        assert!(spec(Proto::Udp, 59).build().is_err());
        assert!(spec(Proto::TcpSyn, 1515).build().is_err());
        assert!(spec(Proto::Udp, 1514).build().is_ok());
    }
}
