//! VRRP advert wire format: a zero-copy view for received packets and an
//! encoder for our own.
//!
//! ```text
//! v3 (RFC 5798 §5.1)                        v2 (RFC 3768 §5.1)
//! |Ver|Type| VRID | Priority | Count |      |Ver|Type| VRID | Priority | Count |
//! |Rsvd| Max Adver Int (cs) | Checksum |    | Auth Type | Adver Int (s) | Checksum |
//! | IPv4 or IPv6 addresses ...        |     | IPv4 addresses ...              |
//!                                           | Authentication data (8 bytes)   |
//! ```
//!
//! The v3 checksum covers an IPv4/IPv6 pseudo-header; the v2 checksum covers
//! the VRRP message only.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::slice::ChunksExact;
use std::time::Duration;

use super::error::VrrpError;
use super::family::AddressFamily;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: u8 = 112;
/// Adverts are sent, and must be received, with this TTL / hop limit.
pub const VRRP_TTL: u8 = 255;
/// Fixed header length, both versions.
pub const HEADER_LEN: usize = 8;
/// Length of the v2 authentication data that trails the addresses.
pub const V2_AUTH_LEN: usize = 8;
/// The count field is one byte.
pub const MAX_ADDRESSES: usize = 255;
/// Priority of the router that owns the virtual addresses.
pub const PRIORITY_OWNER: u8 = 255;
/// Priority sent by a master that stops: backups take over at once.
pub const PRIORITY_STOP: u8 = 0;
/// v2 authentication type "none".
pub const AUTH_NONE: u8 = 0;
/// v2 authentication type "simple text password" (RFC 2338).
pub const AUTH_SIMPLE_TEXT: u8 = 1;
/// Multicast destination of IPv4 adverts.
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// Multicast destination of IPv6 adverts.
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

const TYPE_ADVERTISEMENT: u8 = 1;
const V3_MAX_CENTISECONDS: u64 = 0x0fff;

/// VRRP protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in seconds, optional simple password.
    V2,
    /// RFC 5798: IPv4 and IPv6, interval in centiseconds, no authentication.
    V3,
}

impl Version {
    /// The value of the version field.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// Version from the version field, if supported.
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }

    /// The advert interval field for `interval`, refusing what the field
    /// cannot carry exactly (v2: whole seconds 1..=255, v3: whole
    /// centiseconds 1..=4095).
    pub fn interval_field(self, interval: Duration) -> Result<u16, VrrpError> {
        let bad = |why| VrrpError::BadInterval {
            version: self,
            interval,
            why,
        };
        match self {
            Version::V2 => {
                if interval.subsec_nanos() != 0 {
                    return Err(bad("VRRPv2 counts whole seconds"));
                }
                match interval.as_secs() {
                    s @ 1..=255 => Ok(s as u16),
                    _ => Err(bad("VRRPv2 allows 1 to 255 seconds")),
                }
            }
            Version::V3 => {
                let nanos = interval.as_nanos();
                let centis = nanos / 10_000_000;
                if centis * 10_000_000 != nanos {
                    return Err(bad("VRRPv3 counts whole centiseconds (10 ms steps)"));
                }
                match u64::try_from(centis) {
                    Ok(cs @ 1..=V3_MAX_CENTISECONDS) => Ok(cs as u16),
                    _ => Err(bad("VRRPv3 allows 10 ms to 40.95 s")),
                }
            }
        }
    }

    fn interval_from_field(self, field: u16) -> Duration {
        match self {
            Version::V2 => Duration::from_secs(u64::from(field)),
            Version::V3 => Duration::from_millis(u64::from(field) * 10),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.number())
    }
}

/// Zero-copy view of a received VRRP message (the IP payload).
///
/// `new_checked` guarantees the header, every address and (v2) the
/// authentication data are inside the buffer, so the accessors cannot fail.
#[derive(Clone, Copy, Debug)]
pub struct VrrpPacket<T> {
    buf: T,
    version: Version,
    af: AddressFamily,
}

impl<T: AsRef<[u8]>> VrrpPacket<T> {
    /// Checks length against the address count, the version (2 or 3) and the
    /// type (ADVERTISEMENT). `af` is the family of the IP packet it came in:
    /// over IPv6 only v3 is valid, and the length must be exactly the header
    /// and `count` 16-byte addresses.
    pub fn new_checked(buf: T, af: AddressFamily) -> Result<Self, VrrpError> {
        let bytes = buf.as_ref();
        let (ver_type, count) = match *bytes {
            [ver_type, _, _, count, _, _, _, _, ..] => (ver_type, count),
            _ => {
                return Err(VrrpError::Truncated {
                    have: bytes.len(),
                    need: HEADER_LEN,
                })
            }
        };
        let version = Version::from_number(ver_type >> 4)
            .ok_or(VrrpError::UnsupportedVersion(ver_type >> 4))?;
        if ver_type & 0x0f != TYPE_ADVERTISEMENT {
            return Err(VrrpError::UnknownType(ver_type & 0x0f));
        }
        if version == Version::V2 && af == AddressFamily::Ipv6 {
            return Err(VrrpError::V2Ipv6);
        }
        let need = message_len(version, af, usize::from(count));
        if bytes.len() < need {
            return Err(VrrpError::Truncated {
                have: bytes.len(),
                need,
            });
        }
        // Over IPv6 (new in vipd, so no peer relies on leniency) the count
        // must account for every byte: trailing bytes mean the sender and we
        // disagree on the address size, e.g. IPv4 addresses sent over IPv6.
        if af == AddressFamily::Ipv6 && bytes.len() != need {
            return Err(VrrpError::LengthMismatch {
                count,
                have: bytes.len(),
                need,
            });
        }
        Ok(VrrpPacket { buf, version, af })
    }

    fn byte(&self, i: usize) -> u8 {
        self.buf.as_ref().get(i).copied().unwrap_or(0)
    }

    fn word(&self, i: usize) -> u16 {
        u16::from_be_bytes([self.byte(i), self.byte(i + 1)])
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The type field; always 1 (ADVERTISEMENT) once checked.
    pub fn packet_type(&self) -> u8 {
        self.byte(0) & 0x0f
    }

    pub fn vrid(&self) -> u8 {
        self.byte(1)
    }

    pub fn priority(&self) -> u8 {
        self.byte(2)
    }

    pub fn count_ip(&self) -> u8 {
        self.byte(3)
    }

    /// Family of the carried addresses.
    pub fn address_family(&self) -> AddressFamily {
        self.af
    }

    /// v2 authentication type; `None` for v3, which has none.
    pub fn auth_type(&self) -> Option<u8> {
        (self.version == Version::V2).then(|| self.byte(4))
    }

    /// v2 authentication data (the password for type 1); `None` for v3.
    pub fn auth_data(&self) -> Option<[u8; V2_AUTH_LEN]> {
        if self.version != Version::V2 {
            return None;
        }
        let start = HEADER_LEN + usize::from(self.count_ip()) * self.af.address_len();
        let slice = self.buf.as_ref().get(start..start + V2_AUTH_LEN)?;
        <[u8; V2_AUTH_LEN]>::try_from(slice).ok()
    }

    /// Advertisement interval: v2 seconds, v3 centiseconds (12 bits).
    pub fn advert_interval(&self) -> Duration {
        let field = match self.version {
            Version::V2 => u16::from(self.byte(5)),
            Version::V3 => self.word(4) & 0x0fff,
        };
        self.version.interval_from_field(field)
    }

    pub fn checksum(&self) -> u16 {
        self.word(6)
    }

    /// The virtual addresses carried by the advert.
    pub fn addresses(&self) -> Addresses<'_> {
        let len = usize::from(self.count_ip()) * self.af.address_len();
        let data = self
            .buf
            .as_ref()
            .get(HEADER_LEN..HEADER_LEN + len)
            .unwrap_or(&[]);
        Addresses {
            chunks: data.chunks_exact(self.af.address_len()),
        }
    }

    /// Whether the checksum is right. v3 includes the pseudo-header built
    /// from the IP source and destination; v2 ignores them. The whole buffer
    /// is the VRRP message.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let msg = self.buf.as_ref();
        let initial = match self.version {
            Version::V2 => 0,
            Version::V3 => match pseudo_header_sum(src, dst, msg.len()) {
                Some(sum) => sum,
                None => return false,
            },
        };
        fold(sum_words(msg, initial)) == 0xffff
    }

    pub fn into_inner(self) -> T {
        self.buf
    }
}

/// Iterator over the addresses of an advert.
#[derive(Clone, Debug)]
pub struct Addresses<'a> {
    chunks: ChunksExact<'a, u8>,
}

impl Iterator for Addresses<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        let chunk = self.chunks.next()?;
        if let Ok(v4) = <[u8; 4]>::try_from(chunk) {
            Some(IpAddr::from(v4))
        } else {
            <[u8; 16]>::try_from(chunk).ok().map(IpAddr::from)
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for Addresses<'_> {}

/// An advert to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    pub interval: Duration,
    pub addresses: Vec<IpAddr>,
    /// v2 simple text password; must be `None` for v3.
    pub auth: Option<[u8; V2_AUTH_LEN]>,
}

impl Advert {
    /// Bytes `encode` writes for this advert in `af`.
    pub fn encoded_len(&self, af: AddressFamily) -> usize {
        message_len(self.version, af, self.addresses.len())
    }
}

/// Writes `adv` into `buf` as the payload of an IP packet from `src` to
/// `dst` (both needed for the v3 pseudo-header checksum) and returns its
/// length.
pub fn encode(buf: &mut [u8], adv: &Advert, src: IpAddr, dst: IpAddr) -> Result<usize, VrrpError> {
    let af = AddressFamily::of(&src);
    if adv.version == Version::V2 && af == AddressFamily::Ipv6 {
        return Err(VrrpError::V2Ipv6);
    }
    if adv.version == Version::V3 && adv.auth.is_some() {
        return Err(VrrpError::AuthNeedsV2);
    }
    if let Some(addr) = std::iter::once(&dst)
        .chain(&adv.addresses)
        .find(|a| AddressFamily::of(a) != af)
    {
        return Err(VrrpError::MixedFamilies {
            addr: *addr,
            expected: af,
        });
    }
    let count = u8::try_from(adv.addresses.len())
        .map_err(|_| VrrpError::TooManyAddresses(adv.addresses.len()))?;
    let interval = adv.version.interval_field(adv.interval)?;
    let need = adv.encoded_len(af);
    let have = buf.len();
    let out = buf
        .get_mut(..need)
        .ok_or(VrrpError::BufferTooSmall { have, need })?;

    let (header, rest) = out.split_at_mut(HEADER_LEN);
    let [byte4, byte5] = match adv.version {
        Version::V2 => {
            let auth_type = if adv.auth.is_some() {
                AUTH_SIMPLE_TEXT
            } else {
                AUTH_NONE
            };
            [auth_type, interval as u8]
        }
        Version::V3 => interval.to_be_bytes(),
    };
    header.copy_from_slice(&[
        adv.version.number() << 4 | TYPE_ADVERTISEMENT,
        adv.vrid,
        adv.priority,
        count,
        byte4,
        byte5,
        0,
        0,
    ]);
    for (chunk, addr) in rest.chunks_exact_mut(af.address_len()).zip(&adv.addresses) {
        match addr {
            IpAddr::V4(a) => chunk.copy_from_slice(&a.octets()),
            IpAddr::V6(a) => chunk.copy_from_slice(&a.octets()),
        }
    }
    if adv.version == Version::V2 {
        let auth = adv.auth.unwrap_or([0; V2_AUTH_LEN]);
        if let Some(tail) = rest.get_mut(adv.addresses.len() * af.address_len()..) {
            tail.copy_from_slice(&auth);
        }
    }

    let initial = match adv.version {
        Version::V2 => 0,
        Version::V3 => pseudo_header_sum(src, dst, need).unwrap_or(0),
    };
    let sum = checksum(out, initial);
    if let Some(field) = out.get_mut(6..8) {
        field.copy_from_slice(&sum.to_be_bytes());
    }
    Ok(need)
}

/// Internet checksum (RFC 1071) of `data`, starting from the partial sum
/// `initial` (a pseudo-header, or 0).
pub fn checksum(data: &[u8], initial: u32) -> u16 {
    !fold(sum_words(data, initial))
}

fn message_len(version: Version, af: AddressFamily, count: usize) -> usize {
    let auth = match version {
        Version::V2 => V2_AUTH_LEN,
        Version::V3 => 0,
    };
    HEADER_LEN + count * af.address_len() + auth
}

/// Partial sum of the v3 pseudo-header (RFC 5798 §5.2.8, RFC 8200 §8.1).
fn pseudo_header_sum(src: IpAddr, dst: IpAddr, len: usize) -> Option<u32> {
    let len = u32::try_from(len).ok()?;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let len16 = u16::try_from(len).ok()?;
            let mut sum = sum_words(&s.octets(), 0);
            sum = sum_words(&d.octets(), sum);
            let [hi, lo] = len16.to_be_bytes();
            Some(sum_words(&[0, IPPROTO_VRRP, hi, lo], sum))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut sum = sum_words(&s.octets(), 0);
            sum = sum_words(&d.octets(), sum);
            sum = sum_words(&len.to_be_bytes(), sum);
            Some(sum_words(&[0, 0, 0, IPPROTO_VRRP], sum))
        }
        _ => None,
    }
}

/// Adds big-endian 16-bit words to `acc`, folding as it goes so the sum of
/// any buffer fits; an odd trailing byte is padded with zero.
fn sum_words(data: &[u8], acc: u32) -> u32 {
    let mut acc = u64::from(acc);
    let mut chunks = data.chunks_exact(2);
    for pair in &mut chunks {
        if let [hi, lo] = *pair {
            acc += u64::from(u16::from_be_bytes([hi, lo]));
        }
    }
    if let [last] = *chunks.remainder() {
        acc += u64::from(u16::from_be_bytes([last, 0]));
    }
    while acc >> 32 != 0 {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}
