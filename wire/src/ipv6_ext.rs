//! IPv6 extension-header chains (RFC 8200 §4) and the options inside
//! hop-by-hop and destination options headers (§4.2).
//!
//! Every length field is checked against the buffer before it is used, and
//! the walk is bounded in headers and bytes: a chain is attacker-controlled
//! and the walk runs once per packet.

use crate::{get16, get32, ip_proto, WireError};

/// Most extension headers walked before a chain is refused.
pub const MAX_EXT_HEADERS: usize = 8;
/// Most bytes of extension headers walked before a chain is refused; real
/// chains are a few dozen bytes.
pub const MAX_CHAIN_LEN: usize = 512;

mod field {
    use crate::Field;

    pub const NEXT_HEADER: usize = 0;
    /// Header length in 8-byte units, not counting the first 8 bytes; the
    /// Fragment header has a reserved byte here instead.
    pub const EXT_LEN: usize = 1;
    /// Start of the options of a hop-by-hop or destination options header.
    pub const OPTIONS: usize = 2;
    /// Fragment offset in 8-byte units (high 13 bits) and the M flag (bit 0).
    pub const FRAG_OFF_M: Field = 2..4;
    pub const FRAG_IDENT: Field = 4..8;
}

/// Length unit of the `EXT_LEN` field.
const UNIT: usize = 8;
const FRAGMENT_LEN: usize = field::FRAG_IDENT.end;
const FRAG_MORE: u16 = 0x0001;
const FRAG_OFFSET_MASK: u16 = 0xfff8;

/// Extension headers vipd recognises but does not walk: Authentication
/// (51), Mobility (135), HIP (139), Shim6 (140) and the two experimental
/// values (253, 254). Anything else is an upper-layer protocol.
const UNWALKED: [u8; 6] = [51, 135, 139, 140, 253, 254];

/// Where the upper-layer header starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Upper {
    /// The last next-header value: TCP, UDP, ICMPv6, or any other protocol.
    pub protocol: u8,
    /// Offset from the start of the IPv6 payload (after the fixed header).
    pub offset: usize,
}

/// The fields of a Fragment header (RFC 8200 §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Fragment {
    /// Offset of the Fragment header from the start of the IPv6 payload.
    pub header_offset: usize,
    /// The protocol of the fragmentable part.
    pub next_header: u8,
    /// Offset of this fragment's data in the original packet, in bytes.
    pub frag_offset: u16,
    pub more_frags: bool,
    pub ident: u32,
}

/// Why [`walk_ext_headers`] did not reach an upper-layer header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ipv6ChainError {
    /// A header, or its length field, runs past the payload.
    #[error("IPv6 extension header truncated")]
    Truncated,
    /// More than [`MAX_EXT_HEADERS`] headers or [`MAX_CHAIN_LEN`] bytes.
    #[error("IPv6 extension header chain too long")]
    TooLong,
    /// RFC 8200 §4.1 allows hop-by-hop options only right after the fixed
    /// header.
    #[error("IPv6 hop-by-hop options header not first")]
    HopByHopNotFirst,
    /// An option in a hop-by-hop or destination options header runs past
    /// its header.
    #[error("IPv6 option truncated")]
    BadOption,
    /// An option vipd does not know whose type says to discard the packet
    /// (RFC 8200 §4.2); carries the option type.
    #[error("unrecognised IPv6 option {0:#04x}")]
    UnrecognizedOption(u8),
    /// The packet is a fragment; vipd counts and drops them.
    #[error("IPv6 fragment")]
    Fragment(Ipv6Fragment),
    /// An extension header vipd does not walk (see `UNWALKED`).
    #[error("unsupported IPv6 extension header {0}")]
    UnknownNextHeader(u8),
}

/// Walks the extension headers of an IPv6 payload whose fixed header said
/// `first`, up to the upper-layer header: any next-header value that is not
/// an extension header, No Next Header (59) included.
pub fn walk_ext_headers(first: u8, payload: &[u8]) -> Result<Ipv6Upper, Ipv6ChainError> {
    let (mut next, mut at, mut count) = (first, 0usize, 0usize);
    loop {
        let walked = matches!(
            next,
            ip_proto::HOP_BY_HOP | ip_proto::ROUTING | ip_proto::DEST_OPTS | ip_proto::FRAGMENT
        );
        if !walked {
            if UNWALKED.contains(&next) {
                return Err(Ipv6ChainError::UnknownNextHeader(next));
            }
            return Ok(Ipv6Upper {
                protocol: next,
                offset: at,
            });
        }
        if count == MAX_EXT_HEADERS {
            return Err(Ipv6ChainError::TooLong);
        }
        if next == ip_proto::HOP_BY_HOP && count != 0 {
            return Err(Ipv6ChainError::HopByHopNotFirst);
        }
        // `at` never passes the payload's end: it only grows by headers that
        // fit.
        let rest = &payload[at..];
        if next == ip_proto::FRAGMENT {
            let h = rest.get(..FRAGMENT_LEN).ok_or(Ipv6ChainError::Truncated)?;
            let off_m = get16(h, field::FRAG_OFF_M);
            return Err(Ipv6ChainError::Fragment(Ipv6Fragment {
                header_offset: at,
                next_header: h[field::NEXT_HEADER],
                frag_offset: off_m & FRAG_OFFSET_MASK,
                more_frags: off_m & FRAG_MORE != 0,
                ident: get32(h, field::FRAG_IDENT),
            }));
        }
        let len = match rest.get(field::EXT_LEN) {
            Some(&units) => (usize::from(units) + 1) * UNIT,
            None => return Err(Ipv6ChainError::Truncated),
        };
        let h = rest.get(..len).ok_or(Ipv6ChainError::Truncated)?;
        if at + len > MAX_CHAIN_LEN {
            return Err(Ipv6ChainError::TooLong);
        }
        if next != ip_proto::ROUTING {
            check_options(&h[field::OPTIONS..])?;
        }
        next = h[field::NEXT_HEADER];
        at += len;
        count += 1;
    }
}

/// Refuses malformed options and the unknown ones RFC 8200 §4.2 says to
/// discard the packet for.
fn check_options(opts: &[u8]) -> Result<(), Ipv6ChainError> {
    let opts = Ipv6Options::new_checked(opts).map_err(|_| Ipv6ChainError::BadOption)?;
    for o in opts.iter() {
        let known = matches!(o.kind, Ipv6Option::PAD1 | Ipv6Option::PADN);
        if !known && o.action() != Ipv6OptionAction::Skip {
            return Err(Ipv6ChainError::UnrecognizedOption(o.kind));
        }
    }
    Ok(())
}

/// A validated view over the options of a hop-by-hop or destination options
/// header: the header's bytes after its next-header and length bytes.
#[derive(Debug, Clone)]
pub struct Ipv6Options<T: AsRef<[u8]>> {
    buffer: T,
}

/// Option layout: type, data length, data; Pad1 is the type byte alone.
mod opt_field {
    pub const TYPE: usize = 0;
    pub const LEN: usize = 1;
    pub const DATA: usize = 2;
}

impl<T: AsRef<[u8]>> Ipv6Options<T> {
    /// `Truncated` when an option's length or data runs past the buffer.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        let mut at = 0;
        while let Some(&kind) = b.get(at + opt_field::TYPE) {
            if kind == Ipv6Option::PAD1 {
                at += 1;
                continue;
            }
            let len = *b.get(at + opt_field::LEN).ok_or(WireError::Truncated)?;
            at += opt_field::DATA + usize::from(len);
            if at > b.len() {
                return Err(WireError::Truncated);
            }
        }
        Ok(Ipv6Options { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Every option in order, padding included.
    #[inline]
    pub fn iter(&self) -> Ipv6OptionsIter<'_> {
        Ipv6OptionsIter {
            rest: self.buffer.as_ref(),
        }
    }
}

/// One option of an [`Ipv6Options`] view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Option<'a> {
    pub kind: u8,
    /// The option data (empty for Pad1).
    pub data: &'a [u8],
}

/// What RFC 8200 §4.2 says a node that does not know an option does: the
/// two high bits of its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv6OptionAction {
    Skip,
    Discard,
    /// Discard and send a Parameter Problem.
    DiscardSendIcmp,
    /// Discard and send a Parameter Problem unless the destination was
    /// multicast.
    DiscardSendIcmpUnicast,
}

impl Ipv6Option<'_> {
    pub const PAD1: u8 = 0;
    pub const PADN: u8 = 1;

    #[inline]
    pub fn action(&self) -> Ipv6OptionAction {
        match self.kind >> 6 {
            0 => Ipv6OptionAction::Skip,
            1 => Ipv6OptionAction::Discard,
            2 => Ipv6OptionAction::DiscardSendIcmp,
            _ => Ipv6OptionAction::DiscardSendIcmpUnicast,
        }
    }
}

/// The options of an [`Ipv6Options`] view.
#[derive(Clone, Debug)]
pub struct Ipv6OptionsIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Ipv6OptionsIter<'a> {
    type Item = Ipv6Option<'a>;

    fn next(&mut self) -> Option<Ipv6Option<'a>> {
        let &kind = self.rest.get(opt_field::TYPE)?;
        let (len, data) = if kind == Ipv6Option::PAD1 {
            (1, &self.rest[..0])
        } else {
            // Validated by `new_checked`.
            let n = usize::from(self.rest[opt_field::LEN]);
            let end = opt_field::DATA + n;
            (end, &self.rest[opt_field::DATA..end])
        };
        self.rest = &self.rest[len..];
        Some(Ipv6Option { kind, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An options header (hop-by-hop or destination) holding `opts`, padded
    /// with PadN to a multiple of 8 bytes.
    fn opts_header(next: u8, opts: &[u8]) -> Vec<u8> {
        let mut h = vec![next, 0];
        h.extend_from_slice(opts);
        let pad = (UNIT - h.len() % UNIT) % UNIT;
        match pad {
            0 => {}
            1 => h.push(Ipv6Option::PAD1),
            n => {
                h.extend_from_slice(&[Ipv6Option::PADN, (n - 2) as u8]);
                h.resize(h.len() + n - 2, 0);
            }
        }
        h[field::EXT_LEN] = (h.len() / UNIT - 1) as u8;
        h
    }

    fn routing_header(next: u8) -> Vec<u8> {
        // Type 4 (segment routing) with no segments left: 24 bytes.
        let mut h = vec![next, 2, 4, 0];
        h.resize(24, 0);
        h
    }

    fn fragment_header(next: u8, offset: u16, more: bool, ident: u32) -> Vec<u8> {
        let mut h = vec![next, 0];
        h.extend_from_slice(&(offset | u16::from(more)).to_be_bytes());
        h.extend_from_slice(&ident.to_be_bytes());
        h
    }

    /// A chain HBH -> routing -> destination options -> UDP header.
    fn chain() -> (Vec<u8>, usize) {
        let mut p = opts_header(ip_proto::ROUTING, &[5, 2, 0, 0]);
        p.extend(routing_header(ip_proto::DEST_OPTS));
        p.extend(opts_header(ip_proto::UDP, &[0x1e, 3, 1, 2, 3]));
        let upper = p.len();
        p.extend_from_slice(&[0x12, 0x34, 0x00, 0x35, 0, 8, 0, 0]);
        (p, upper)
    }

    #[test]
    fn walks_to_the_upper_layer() {
        let (p, upper) = chain();
        assert_eq!(
            walk_ext_headers(ip_proto::HOP_BY_HOP, &p),
            Ok(Ipv6Upper {
                protocol: ip_proto::UDP,
                offset: upper
            })
        );
        assert_eq!(
            walk_ext_headers(ip_proto::TCP, &[]),
            Ok(Ipv6Upper {
                protocol: ip_proto::TCP,
                offset: 0
            })
        );
        // Encrypted or absent upper layers are the caller's to judge.
        for proto in [50, ip_proto::NO_NEXT_HEADER, ip_proto::ICMPV6] {
            let h = opts_header(proto, &[]);
            let up = walk_ext_headers(ip_proto::DEST_OPTS, &h).unwrap();
            assert_eq!((up.protocol, up.offset), (proto, 8));
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let (p, upper) = chain();
        for len in 0..upper {
            assert_eq!(
                walk_ext_headers(ip_proto::HOP_BY_HOP, &p[..len]),
                Err(Ipv6ChainError::Truncated),
                "len {len}"
            );
        }
        for len in upper..=p.len() {
            assert!(walk_ext_headers(ip_proto::HOP_BY_HOP, &p[..len]).is_ok());
        }
    }

    #[test]
    fn floods_of_headers_are_refused() {
        let mut p = Vec::new();
        for _ in 0..100 {
            p.extend(opts_header(ip_proto::DEST_OPTS, &[]));
        }
        assert_eq!(
            walk_ext_headers(ip_proto::DEST_OPTS, &p),
            Err(Ipv6ChainError::TooLong)
        );
        // Exactly the limit is fine.
        let mut p = Vec::new();
        for i in 0..MAX_EXT_HEADERS {
            let next = if i + 1 == MAX_EXT_HEADERS {
                ip_proto::TCP
            } else {
                ip_proto::DEST_OPTS
            };
            p.extend(opts_header(next, &[]));
        }
        let up = walk_ext_headers(ip_proto::DEST_OPTS, &p).unwrap();
        assert_eq!(up.offset, MAX_EXT_HEADERS * 8);
        // Few headers but too many bytes: two 2048-byte option headers.
        let mut big = opts_header(ip_proto::DEST_OPTS, &[Ipv6Option::PADN, 253]);
        big.resize(2048, 0);
        big[field::EXT_LEN] = 255;
        let mut p = big.clone();
        p.extend(&big);
        assert_eq!(
            walk_ext_headers(ip_proto::DEST_OPTS, &p),
            Err(Ipv6ChainError::TooLong)
        );
    }

    #[test]
    fn length_running_past_the_buffer_is_refused() {
        let mut h = opts_header(ip_proto::TCP, &[]);
        h[field::EXT_LEN] = 200;
        assert_eq!(
            walk_ext_headers(ip_proto::DEST_OPTS, &h),
            Err(Ipv6ChainError::Truncated)
        );
    }

    #[test]
    fn hop_by_hop_only_first() {
        let mut p = opts_header(ip_proto::HOP_BY_HOP, &[]);
        p.extend(opts_header(ip_proto::TCP, &[]));
        assert_eq!(
            walk_ext_headers(ip_proto::DEST_OPTS, &p),
            Err(Ipv6ChainError::HopByHopNotFirst)
        );
        assert!(walk_ext_headers(ip_proto::HOP_BY_HOP, &p).is_err());
    }

    #[test]
    fn fragments_are_reported_with_their_fields() {
        let mut p = opts_header(ip_proto::FRAGMENT, &[]);
        p.extend(fragment_header(ip_proto::UDP, 1448, true, 0xdead_beef));
        let want = Ipv6Fragment {
            header_offset: 8,
            next_header: ip_proto::UDP,
            frag_offset: 1448,
            more_frags: true,
            ident: 0xdead_beef,
        };
        assert_eq!(
            walk_ext_headers(ip_proto::HOP_BY_HOP, &p),
            Err(Ipv6ChainError::Fragment(want))
        );
        for len in 8..p.len() {
            assert_eq!(
                walk_ext_headers(ip_proto::HOP_BY_HOP, &p[..len]),
                Err(Ipv6ChainError::Truncated)
            );
        }
        let atomic = fragment_header(ip_proto::TCP, 0, false, 7);
        let Err(Ipv6ChainError::Fragment(f)) = walk_ext_headers(ip_proto::FRAGMENT, &atomic) else {
            panic!("an atomic fragment is a fragment");
        };
        assert_eq!((f.frag_offset, f.more_frags, f.ident), (0, false, 7));
    }

    #[test]
    fn unwalked_extension_headers_are_named() {
        for p in UNWALKED {
            let h = opts_header(p, &[]);
            assert_eq!(
                walk_ext_headers(ip_proto::DEST_OPTS, &h),
                Err(Ipv6ChainError::UnknownNextHeader(p))
            );
        }
    }

    #[test]
    fn options_follow_their_action_bits() {
        for (kind, ok) in [
            (0x05, true),
            (0x1e, true),
            (0x42, false),
            (0x8b, false),
            (0xc2, false),
        ] {
            let h = opts_header(ip_proto::TCP, &[kind, 0]);
            let r = walk_ext_headers(ip_proto::DEST_OPTS, &h);
            if ok {
                assert!(r.is_ok(), "{kind:#x}");
            } else {
                assert_eq!(r, Err(Ipv6ChainError::UnrecognizedOption(kind)));
            }
        }
        let h = opts_header(ip_proto::TCP, &[0x42, 0]);
        let o = Ipv6Options::new_checked(&h[2..]).unwrap();
        let actions: Vec<_> = o.iter().map(|o| o.action()).collect();
        assert_eq!(actions[0], Ipv6OptionAction::Discard);
        for (kind, a) in [
            (0x3f, Ipv6OptionAction::Skip),
            (0x80, Ipv6OptionAction::DiscardSendIcmp),
            (0xc0, Ipv6OptionAction::DiscardSendIcmpUnicast),
        ] {
            assert_eq!(Ipv6Option { kind, data: &[] }.action(), a);
        }
    }

    #[test]
    fn options_view_reads_and_refuses_truncation() {
        let opts = [0u8, 1, 2, 0, 0, 5, 2, 0xab, 0xcd, 0];
        let o = Ipv6Options::new_checked(&opts[..]).unwrap();
        let got: Vec<_> = o.iter().map(|o| (o.kind, o.data.to_vec())).collect();
        assert_eq!(
            got,
            vec![
                (0, vec![]),
                (1, vec![0, 0]),
                (5, vec![0xab, 0xcd]),
                (0, vec![])
            ]
        );
        // Cuts inside PadN's and the router alert's length or data.
        for len in [2, 3, 4, 6, 7, 8] {
            assert_eq!(
                Ipv6Options::new_checked(&opts[..len]).err(),
                Some(WireError::Truncated),
                "len {len}"
            );
        }
        for len in [0, 1, 5, 9, 10] {
            assert!(Ipv6Options::new_checked(&opts[..len]).is_ok(), "len {len}");
        }
        let mut h = opts_header(ip_proto::TCP, &[]);
        h[field::OPTIONS + 1] = 9;
        assert_eq!(
            walk_ext_headers(ip_proto::DEST_OPTS, &h),
            Err(Ipv6ChainError::BadOption)
        );
    }
}
