//! IPv6 fixed headers (RFC 8200). Extension headers are not walked here:
//! `next_header` reports the first one and `payload` starts at it.

use std::net::Ipv6Addr;

use crate::{get16, Field, WireError};

/// A view over an IPv6 packet; like IPv4, trailing padding is allowed.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

mod field {
    use crate::Field;

    /// Version (high nibble), then traffic class and flow label.
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
}

const HEADER_LEN: usize = field::DST.end;

#[inline]
fn addr(b: &[u8], f: Field) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[f]);
    Ipv6Addr::from(o)
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub const HEADER_LEN: usize = HEADER_LEN;

    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        let Some(&v) = b.get(field::VER_TC_FLOW) else {
            return Err(WireError::Truncated);
        };
        if v >> 4 != 6 {
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
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        addr(self.buffer.as_ref(), field::SRC)
    }

    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        addr(self.buffer.as_ref(), field::DST)
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
