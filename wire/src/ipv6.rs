//! IPv6 fixed headers (RFC 8200). `next_header` reports the first extension
//! header and `payload` starts at it; [`Ipv6Packet::upper_layer`] walks the
//! chain (see [`crate::walk_ext_headers`]).

use std::net::Ipv6Addr;

use crate::ipv6_ext::{walk_ext_headers, Ipv6ChainError, Ipv6Upper};
use crate::{get16, get_ipv6, put16, put_ipv6, WireError};

/// A view over an IPv6 packet; like IPv4, trailing padding is allowed.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    use crate::Field;

    /// Version (high nibble), then traffic class and flow label.
    pub const VER_TC_FLOW: usize = 0;
    /// Version and traffic class: the class is bits 4..12 of this word.
    pub const VER_TC: Field = 0..2;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
}

const HEADER_LEN: usize = field::DST.end;
const VERSION: u8 = 6;

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub const HEADER_LEN: usize = HEADER_LEN;

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        let Some(&v) = b.get(field::VER_TC_FLOW) else {
            return Err(WireError::Truncated);
        };
        if v >> 4 != VERSION {
            return Err(WireError::BadVersion);
        }
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if usize::from(get16(b, field::PAYLOAD_LEN)) > b.len() - HEADER_LEN {
            return Err(WireError::BadTotalLen);
        }
        Ok(Ipv6Packet { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn payload_len(&self) -> usize {
        usize::from(get16(self.buffer.as_ref(), field::PAYLOAD_LEN))
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (get16(self.buffer.as_ref(), field::VER_TC) >> 4) as u8
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        get_ipv6(self.buffer.as_ref(), field::SRC)
    }

    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        get_ipv6(self.buffer.as_ref(), field::DST)
    }

    /// The `payload_len` bytes after the fixed header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len()]
    }

    /// Walks the extension headers to the upper-layer header; its offset
    /// counts from the start of [`Self::payload`].
    #[inline]
    pub fn upper_layer(&self) -> Result<Ipv6Upper, Ipv6ChainError> {
        walk_ext_headers(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// IPv6 has no header checksum; TCP, UDP and ICMPv6 checksums cover the
    /// addresses, so rewriting one is the caller's to patch there.
    #[inline]
    pub fn set_src(&mut self, addr: Ipv6Addr) {
        put_ipv6(self.buffer.as_mut(), field::SRC, addr)
    }

    /// See [`Self::set_src`] about upper-layer checksums.
    #[inline]
    pub fn set_dst(&mut self, addr: Ipv6Addr) {
        put_ipv6(self.buffer.as_mut(), field::DST, addr)
    }

    #[inline]
    pub fn set_hop_limit(&mut self, hops: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hops
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + self.payload_len();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// Fields of an IPv6 fixed header, as [`write_header`] writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Header {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// The first extension header or the upper-layer protocol.
    pub next_header: u8,
    pub hop_limit: u8,
    pub traffic_class: u8,
    /// Bytes after the fixed header, extension headers included.
    pub payload_len: u16,
}

/// Writes a 40-byte IPv6 header (flow label 0) at the start of `buf` and
/// returns its length (the payload's offset); `Truncated` if `buf` is
/// shorter.
pub fn write_header(buf: &mut [u8], h: &Ipv6Header) -> Result<usize, WireError> {
    let b = buf.get_mut(..HEADER_LEN).ok_or(WireError::Truncated)?;
    b[..field::PAYLOAD_LEN.start].fill(0);
    // Version, then the traffic class straddling the next nibble boundary.
    b[field::VER_TC_FLOW] = VERSION << 4 | h.traffic_class >> 4;
    b[field::VER_TC_FLOW + 1] = h.traffic_class << 4;
    put16(b, field::PAYLOAD_LEN, h.payload_len);
    b[field::NEXT_HEADER] = h.next_header;
    b[field::HOP_LIMIT] = h.hop_limit;
    put_ipv6(b, field::SRC, h.src);
    put_ipv6(b, field::DST, h.dst);
    Ok(HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ip_proto, XorShift};
    use etherparse::{IpNumber, Ipv6Header};

    fn random_packet(rng: &mut XorShift) -> (Ipv6Header, Vec<u8>) {
        let payload = {
            let n = usize::from(rng.next_u16() % 80);
            rng.bytes(n)
        };
        let mut src = [0u8; 16];
        let mut dst = [0u8; 16];
        src.copy_from_slice(&rng.bytes(16));
        dst.copy_from_slice(&rng.bytes(16));
        let h = Ipv6Header {
            payload_length: payload.len() as u16,
            next_header: IpNumber(ip_proto::TCP),
            hop_limit: (rng.next_u64() >> 40) as u8,
            source: src,
            destination: dst,
            ..Default::default()
        };
        let mut out = Vec::new();
        h.write(&mut out).unwrap();
        out.extend_from_slice(&payload);
        (h, out)
    }

    #[test]
    fn reads_etherparse_packets() {
        let mut rng = XorShift(0x6666);
        for _ in 0..200 {
            let (h, mut out) = random_packet(&mut rng);
            let plen = out.len() - HEADER_LEN;
            out.extend_from_slice(&[0xee; 5]);
            let p = Ipv6Packet::new_checked(&out[..]).unwrap();
            assert_eq!(p.src().octets(), h.source);
            assert_eq!(p.dst().octets(), h.destination);
            assert_eq!(p.next_header(), h.next_header.0);
            assert_eq!(p.hop_limit(), h.hop_limit);
            assert_eq!(p.payload_len(), usize::from(h.payload_length));
            assert_eq!(p.payload(), &out[HEADER_LEN..HEADER_LEN + plen]);
        }
    }

    #[test]
    fn rejects_every_malformation() {
        let mut rng = XorShift(0x6bad);
        for _ in 0..30 {
            let (_, out) = random_packet(&mut rng);
            for len in 0..out.len() {
                let expect = if len < HEADER_LEN {
                    WireError::Truncated
                } else {
                    WireError::BadTotalLen
                };
                assert_eq!(Ipv6Packet::new_checked(&out[..len]).err(), Some(expect));
            }
            let mut bad = out.clone();
            bad[0] = 0x45;
            assert_eq!(
                Ipv6Packet::new_checked(&bad[..]).err(),
                Some(WireError::BadVersion)
            );
        }
    }

    #[test]
    fn written_header_reads_back_in_etherparse_and_the_view() {
        let mut rng = XorShift(0x6677);
        for _ in 0..200 {
            let mut o = [[0u8; 16]; 2];
            o[0].copy_from_slice(&rng.bytes(16));
            o[1].copy_from_slice(&rng.bytes(16));
            let h = super::Ipv6Header {
                src: Ipv6Addr::from(o[0]),
                dst: Ipv6Addr::from(o[1]),
                next_header: (rng.next_u16() >> 8) as u8,
                hop_limit: rng.next_u16() as u8,
                traffic_class: (rng.next_u16() >> 3) as u8,
                payload_len: rng.next_u16() % 64,
            };
            let mut buf = vec![0xa5; 40 + usize::from(h.payload_len)];
            assert_eq!(write_header(&mut buf, &h), Ok(HEADER_LEN));
            let (e, _) = Ipv6Header::from_slice(&buf).unwrap();
            assert_eq!((e.source, e.destination), (o[0], o[1]));
            assert_eq!((e.next_header.0, e.hop_limit), (h.next_header, h.hop_limit));
            assert_eq!(e.traffic_class, h.traffic_class);
            assert_eq!(e.flow_label.value(), 0);
            assert_eq!(e.payload_length, h.payload_len);
            let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(
                (p.src(), p.dst(), p.traffic_class()),
                (h.src, h.dst, h.traffic_class)
            );
            for short in 0..HEADER_LEN {
                assert_eq!(
                    write_header(&mut buf[..short], &h),
                    Err(WireError::Truncated)
                );
            }
        }
    }

    #[test]
    fn setters_and_upper_layer() {
        let mut rng = XorShift(0x6678);
        let (_, mut out) = random_packet(&mut rng);
        let mut p = Ipv6Packet::new_checked(&mut out[..]).unwrap();
        let (s, d): (Ipv6Addr, Ipv6Addr) =
            ("2001:db8::1".parse().unwrap(), "ff02::1".parse().unwrap());
        p.set_src(s);
        p.set_dst(d);
        p.set_hop_limit(1);
        p.payload_mut().fill(7);
        assert_eq!((p.src(), p.dst(), p.hop_limit()), (s, d, 1));
        assert!(p.payload().iter().all(|&b| b == 7));
        let up = p.upper_layer().unwrap();
        assert_eq!((up.protocol, up.offset), (ip_proto::TCP, 0));
    }
}
