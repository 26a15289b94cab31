//! IPv6 fixed headers (RFC 8200). Extension headers are not walked here:
//! `next_header` reports the first one and `payload` starts at it.

use std::net::Ipv6Addr;

use super::{get16, WireError};

/// A view over an IPv6 packet; like IPv4, trailing padding is allowed.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

const HEADER_LEN: usize = 40;

#[inline]
fn addr(b: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[at..at + 16]);
    Ipv6Addr::from(o)
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub const HEADER_LEN: usize = HEADER_LEN;

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        let Some(&v) = b.first() else {
            return Err(WireError::Truncated);
        };
        if v >> 4 != 6 {
            return Err(WireError::BadVersion);
        }
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if usize::from(get16(b, 4)) > b.len() - HEADER_LEN {
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
        usize::from(get16(self.buffer.as_ref(), 4))
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[6]
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[7]
    }

    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        addr(self.buffer.as_ref(), 8)
    }

    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        addr(self.buffer.as_ref(), 24)
    }

    /// The `payload_len` bytes after the fixed header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len()]
    }
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
}
