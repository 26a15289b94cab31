//! Ethernet II frames with up to two 802.1Q/802.1ad tags.

use crate::{ethertype, get16, get_mac, put16, put_mac, Field, MacAddr, WireError};

/// A view over an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
    // Computed once in `new_checked` so the hot path does not re-walk tags.
    header_len: u8,
}

mod field {
    use crate::Field;

    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    /// An 802.1Q/802.1ad tag after the addresses: its TCI (priority, DEI,
    /// VLAN ID) is the tag's first two bytes; the next EtherType follows.
    pub const TAG_TCI: Field = 14..16;
    pub const TAG_LEN: usize = 4;
}

const VLAN_ID_MASK: u16 = 0x0fff;

/// The EtherType (or tag protocol) field ending at `header_len`.
#[inline]
fn type_field(header_len: usize) -> Field {
    header_len - 2..header_len
}

#[inline]
fn is_tag(t: u16) -> bool {
    t == ethertype::VLAN || t == ethertype::QINQ
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Untagged header length.
    pub const HEADER_LEN: usize = field::ETHERTYPE.end;

    /// Validates the header and up to two VLAN tags; a third tag is
    /// `Unsupported`, a tag cut short is `Truncated`.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < Self::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let mut hl = Self::HEADER_LEN;
        for _ in 0..2 {
            if !is_tag(get16(b, type_field(hl))) {
                break;
            }
            hl += field::TAG_LEN;
            if b.len() < hl {
                return Err(WireError::Truncated);
            }
        }
        if is_tag(get16(b, type_field(hl))) {
            return Err(WireError::Unsupported);
        }
        Ok(EthernetFrame {
            buffer,
            header_len: hl as u8,
        })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn dst(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::DST)
    }

    #[inline]
    pub fn src(&self) -> MacAddr {
        get_mac(self.buffer.as_ref(), field::SRC)
    }

    /// The EtherType after any VLAN tags.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        get16(self.buffer.as_ref(), type_field(self.header_len()))
    }

    /// VLAN ID of the outermost tag, if the frame is tagged.
    #[inline]
    pub fn vlan_id(&self) -> Option<u16> {
        if self.header_len() > Self::HEADER_LEN {
            Some(get16(self.buffer.as_ref(), field::TAG_TCI) & VLAN_ID_MASK)
        } else {
            None
        }
    }

    /// 14, 18 or 22 bytes depending on the number of tags.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.header_len)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    #[inline]
    pub fn set_dst(&mut self, mac: MacAddr) {
        put_mac(self.buffer.as_mut(), field::DST, mac)
    }

    #[inline]
    pub fn set_src(&mut self, mac: MacAddr) {
        put_mac(self.buffer.as_mut(), field::SRC, mac)
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

/// The fields of an untagged Ethernet header, as [`write_header`] writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetHeader {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ethertype: u16,
}

/// Writes an untagged Ethernet header at the start of `buf` and returns its
/// length (the payload's offset); `Truncated` if `buf` is shorter.
pub fn write_header(buf: &mut [u8], h: &EthernetHeader) -> Result<usize, WireError> {
    let b = buf
        .get_mut(..field::ETHERTYPE.end)
        .ok_or(WireError::Truncated)?;
    put_mac(b, field::DST, h.dst);
    put_mac(b, field::SRC, h.src);
    put16(b, field::ETHERTYPE, h.ethertype);
    Ok(field::ETHERTYPE.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::XorShift;
    use etherparse::PacketBuilder;

    fn mac(rng: &mut XorShift) -> [u8; 6] {
        let b = rng.bytes(6);
        [b[0], b[1], b[2], b[3], b[4], b[5]]
    }

    #[test]
    fn reads_untagged_single_and_double_tagged_frames() {
        let mut rng = XorShift(0x5eed);
        for i in 0..60u16 {
            let (s, d) = (mac(&mut rng), mac(&mut rng));
            let outer = rng.next_u16() & 0x0fff;
            let inner = rng.next_u16() & 0x0fff;
            let payload = rng.bytes(usize::from(i));
            let base = PacketBuilder::ethernet2(s, d);
            let mut out = Vec::new();
            let (expect_hl, expect_vid) = match i % 3 {
                0 => {
                    base.ipv4([1, 2, 3, 4], [5, 6, 7, 8], 64)
                        .udp(1, 2)
                        .write(&mut out, &payload)
                        .unwrap();
                    (14, None)
                }
                1 => {
                    base.single_vlan(outer.try_into().unwrap())
                        .ipv4([1, 2, 3, 4], [5, 6, 7, 8], 64)
                        .udp(1, 2)
                        .write(&mut out, &payload)
                        .unwrap();
                    (18, Some(outer))
                }
                _ => {
                    base.double_vlan(outer.try_into().unwrap(), inner.try_into().unwrap())
                        .ipv4([1, 2, 3, 4], [5, 6, 7, 8], 64)
                        .udp(1, 2)
                        .write(&mut out, &payload)
                        .unwrap();
                    (22, Some(outer))
                }
            };
            let f = EthernetFrame::new_checked(&out[..]).unwrap();
            assert_eq!(f.src(), MacAddr(s));
            assert_eq!(f.dst(), MacAddr(d));
            assert_eq!(f.header_len(), expect_hl);
            assert_eq!(f.vlan_id(), expect_vid);
            assert_eq!(f.ethertype(), ethertype::IPV4);
            assert_eq!(f.payload().len(), 20 + 8 + payload.len());
            assert_eq!(&f.payload()[28..], &payload[..]);
        }
    }

    #[test]
    fn rejects_every_truncation_including_mid_tag() {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .double_vlan(5.try_into().unwrap(), 6.try_into().unwrap())
            .ipv4([1, 2, 3, 4], [5, 6, 7, 8], 64)
            .udp(1, 2)
            .write(&mut out, &[])
            .unwrap();
        for len in 0..22 {
            assert_eq!(
                EthernetFrame::new_checked(&out[..len]).err(),
                Some(WireError::Truncated),
                "len {len}"
            );
        }
        assert!(EthernetFrame::new_checked(&out[..22]).is_ok());
    }

    #[test]
    fn rejects_triple_tag() {
        let mut b = [0u8; 64];
        for at in [12, 16, 20] {
            b[at..at + 2].copy_from_slice(&ethertype::VLAN.to_be_bytes());
        }
        assert_eq!(
            EthernetFrame::new_checked(&b[..]).err(),
            Some(WireError::Unsupported)
        );
    }

    #[test]
    fn setters_write_macs_and_payload() {
        let mut b = [0u8; 60];
        b[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
        let mut f = EthernetFrame::new_checked(&mut b[..]).unwrap();
        let (s, d) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        f.set_src(s);
        f.set_dst(d);
        f.payload_mut()[0] = 0xab;
        assert_eq!((f.src(), f.dst()), (s, d));
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(b[14], 0xab);
        assert_eq!(&b[6..12], &s.0);
    }
}
