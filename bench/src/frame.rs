//! Frame templates for the generator: one Ethernet/IPv4/UDP or TCP frame
//! whose source address and port are zero (the generator program fills them
//! in per packet and adjusts the checksums from the template's).

use std::net::Ipv4Addr;

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

const ETH_HLEN: usize = 14;
const IP_HLEN: usize = 20;
const TCP_HLEN: usize = 20;
const UDP_HLEN: usize = 8;

/// One's-complement sum of big-endian 16-bit words (odd tail padded).
fn sum16(bytes: &[u8], mut acc: u32) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        acc += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        acc += u32::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Internet checksum of `bytes` plus `acc`.
pub fn checksum(bytes: &[u8], acc: u32) -> u16 {
    !fold(sum16(bytes, acc))
}

impl FrameSpec {
    /// Builds the template; the source address and port are zero.
    pub fn build(&self) -> Result<Template, String> {
        let min = match self.proto {
            Proto::Udp => MIN_FRAME.max(UDP_PAYLOAD_OFFSET + STAMP_LEN),
            Proto::TcpSyn => MIN_FRAME,
        };
        if !(min..=MAX_FRAME).contains(&self.size) {
            return Err(format!(
                "frame size {} is out of range: use {min} to {MAX_FRAME} bytes",
                self.size
            ));
        }
        let mut f = vec![0u8; self.size];
        f[0..6].copy_from_slice(&self.dst_mac);
        f[6..12].copy_from_slice(&self.src_mac);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        // A SYN carries no payload; the rest of a short frame is Ethernet padding.
        let ip_len = match self.proto {
            Proto::Udp => self.size - ETH_HLEN,
            Proto::TcpSyn => IP_HLEN + TCP_HLEN,
        };
        let proto = match self.proto {
            Proto::Udp => 17u8,
            Proto::TcpSyn => 6u8,
        };
        {
            let ip = &mut f[ETH_HLEN..ETH_HLEN + IP_HLEN];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            ip[6] = 0x40; // don't fragment
            ip[8] = TTL;
            ip[9] = proto;
            ip[16..20].copy_from_slice(&self.dst_ip.octets());
            let c = checksum(ip, 0);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let l4 = ETH_HLEN + IP_HLEN;
        f[l4 + 2..l4 + 4].copy_from_slice(&self.dst_port.to_be_bytes());
        match self.proto {
            Proto::Udp => {
                let udp_len = (ip_len - IP_HLEN) as u16;
                f[l4 + 4..l4 + 6].copy_from_slice(&udp_len.to_be_bytes());
                let pseudo = sum16(&self.dst_ip.octets(), 0) + 17 + u32::from(udp_len);
                let c = match checksum(&f[l4..l4 + usize::from(udp_len)], pseudo) {
                    // Zero means "no checksum" in UDP over IPv4.
                    0 => 0xffff,
                    c => c,
                };
                f[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
                Ok(Template {
                    bytes: f,
                    tcp_flags_word: 0,
                    l4_csum: u16::from_ne_bytes(c.to_be_bytes()),
                    dst_ip: self.dst_ip,
                    dst_port: self.dst_port,
                    ttl: TTL,
                })
            }
            Proto::TcpSyn => {
                f[l4 + 4..l4 + 8].copy_from_slice(&1u32.to_be_bytes()); // sequence
                let flags_word: u16 = (5 << 12) | 0x02;
                f[l4 + 12..l4 + 14].copy_from_slice(&flags_word.to_be_bytes());
                f[l4 + 14..l4 + 16].copy_from_slice(&65535u16.to_be_bytes()); // window
                let pseudo = sum16(&self.dst_ip.octets(), 0) + 6 + TCP_HLEN as u32;
                let c = checksum(&f[l4..l4 + TCP_HLEN], pseudo);
                f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
                Ok(Template {
                    tcp_flags_word: u16::from_ne_bytes(flags_word.to_be_bytes()),
                    l4_csum: u16::from_ne_bytes(c.to_be_bytes()),
                    bytes: f,
                    dst_ip: self.dst_ip,
                    dst_port: self.dst_port,
                    ttl: TTL,
                })
            }
        }
    }
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

    #[test]
    fn sizes_out_of_range_are_refused() {
        assert!(spec(Proto::Udp, 59).build().is_err());
        assert!(spec(Proto::TcpSyn, 1515).build().is_err());
        assert!(spec(Proto::Udp, 1514).build().is_ok());
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example words: sum 0xddf2, checksum !0xddf2.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&bytes, 0), !0xddf2);
    }
}
