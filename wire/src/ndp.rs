//! Neighbor Discovery (RFC 4861): Neighbor Solicitation and Advertisement
//! views, their options, the checks §7.1 asks of received messages, and the
//! advertisements vipd sends for its addresses.

use std::net::Ipv6Addr;

use crate::icmpv6::{icmpv6_type, Icmpv6Packet};
use crate::ipv6::{write_header, Ipv6Header};
use crate::{get_ipv6, get_mac, ip_proto, put_ipv6, put_mac, Ipv6Packet, MacAddr, WireError};

mod field {
    use crate::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    /// Neighbor Advertisement flags (R, S, O); reserved in a solicitation.
    pub const FLAGS: usize = 4;
    pub const TARGET: Field = 8..24;
    pub const OPTIONS: usize = 24;
}

mod opt_field {
    use crate::Field;

    pub const TYPE: usize = 0;
    /// Length of the whole option in 8-byte units.
    pub const LEN: usize = 1;
    pub const DATA: usize = 2;
    /// The link-layer address of a source/target link-layer address option
    /// on Ethernet.
    pub const LINK_ADDR: Field = 2..8;
}

const MIN_LEN: usize = field::OPTIONS;
const OPT_UNIT: usize = 8;
const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;
/// RFC 4861 §7.1: only a neighbor on the link can send a hop limit of 255.
const HOP_LIMIT: u8 = 255;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// ff02::1:ff00:0/104 (RFC 4291 §2.7.1).
const SOLICITED_NODE_PREFIX: [u8; 13] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff];

/// The solicited-node multicast address of `addr`: ff02::1:ff00:0/104 and
/// the low 24 bits of `addr`.
pub fn solicited_node_multicast(addr: Ipv6Addr) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[..13].copy_from_slice(&SOLICITED_NODE_PREFIX);
    o[13..].copy_from_slice(&addr.octets()[13..]);
    Ipv6Addr::from(o)
}

/// The Ethernet group address of an IPv6 multicast address (RFC 2464 §7):
/// 33:33 and the low 32 bits of `addr`.
pub fn multicast_mac(addr: Ipv6Addr) -> MacAddr {
    let o = addr.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// Checks the option area of an ND message: every option fits and none has
/// length zero.
fn check_options(b: &[u8]) -> Result<(), WireError> {
    let mut at = 0;
    while at < b.len() {
        let len = *b.get(at + opt_field::LEN).ok_or(WireError::Truncated)?;
        if len == 0 {
            return Err(WireError::BadOptionLen);
        }
        at += usize::from(len) * OPT_UNIT;
        if at > b.len() {
            return Err(WireError::Truncated);
        }
    }
    Ok(())
}

/// Validates an NS or NA message of type `t`: `Truncated` below 24 bytes,
/// `Unsupported` for another type, option errors as [`check_options`].
fn check(b: &[u8], t: u8) -> Result<(), WireError> {
    if b.len() < MIN_LEN {
        return Err(WireError::Truncated);
    }
    if b[field::TYPE] != t {
        return Err(WireError::Unsupported);
    }
    check_options(&b[MIN_LEN..])
}

/// Why a received Neighbor Solicitation or Advertisement fails RFC 4861
/// §7.1; structural faults are [`WireError`]s from the views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NdpError {
    #[error("neighbor discovery hop limit is not 255")]
    HopLimit,
    #[error("neighbor discovery code is not 0")]
    Code,
    #[error("bad ICMPv6 checksum")]
    Checksum,
    #[error("neighbor discovery target is multicast")]
    MulticastTarget,
    /// RFC 4291 §2.7: no packet comes from a multicast address.
    #[error("neighbor discovery from a multicast address")]
    MulticastSource,
    /// A duplicate address detection probe (source unspecified) carrying a
    /// source link-layer address option.
    #[error("DAD solicitation with a source link-layer address")]
    DadWithSourceLinkAddr,
    /// A duplicate address detection probe not sent to a solicited-node
    /// multicast address.
    #[error("DAD solicitation not sent to a solicited-node address")]
    DadNotSolicitedNode,
    /// A solicited advertisement sent to a multicast address.
    #[error("solicited advertisement to a multicast address")]
    SolicitedToMulticast,
}

/// The checks §7.1.1 and §7.1.2 share; `msg` is the whole ICMPv6 message.
fn validate_common<U: AsRef<[u8]>>(
    ip: &Ipv6Packet<U>,
    msg: &[u8],
    target: Ipv6Addr,
) -> Result<(), NdpError> {
    if ip.hop_limit() != HOP_LIMIT {
        return Err(NdpError::HopLimit);
    }
    if msg[field::CODE] != 0 {
        return Err(NdpError::Code);
    }
    // The views checked the message is at least the 8-byte ICMPv6 header.
    let icmp = Icmpv6Packet::new_checked(msg).map_err(|_| NdpError::Checksum)?;
    if !icmp.verify_checksum(ip.src(), ip.dst()) {
        return Err(NdpError::Checksum);
    }
    if target.is_multicast() {
        return Err(NdpError::MulticastTarget);
    }
    if ip.src().is_multicast() {
        return Err(NdpError::MulticastSource);
    }
    Ok(())
}

/// One option of an ND message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdpOption<'a> {
    pub kind: u8,
    /// The option's bytes after its type and length.
    pub data: &'a [u8],
}

impl NdpOption<'_> {
    pub const SOURCE_LINK_ADDR: u8 = 1;
    pub const TARGET_LINK_ADDR: u8 = 2;

    /// The Ethernet address of a link-layer address option.
    #[inline]
    pub fn link_addr(&self) -> Option<MacAddr> {
        if !matches!(self.kind, Self::SOURCE_LINK_ADDR | Self::TARGET_LINK_ADDR) {
            return None;
        }
        // `data` starts after the type and length.
        let f = opt_field::LINK_ADDR;
        let b = self
            .data
            .get(f.start - opt_field::DATA..f.end - opt_field::DATA)?;
        Some(get_mac(b, 0..b.len()))
    }
}

/// The options of a validated ND message.
#[derive(Clone, Debug)]
pub struct NdpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for NdpOptions<'a> {
    type Item = NdpOption<'a>;

    fn next(&mut self) -> Option<NdpOption<'a>> {
        // The views validated every length; `get` keeps this total anyway.
        let len = usize::from(*self.rest.get(opt_field::LEN)?) * OPT_UNIT;
        let opt = self.rest.get(..len)?;
        self.rest = &self.rest[len..];
        Some(NdpOption {
            kind: opt[opt_field::TYPE],
            data: &opt[opt_field::DATA..],
        })
    }
}

/// The link-layer address of the first option of `kind`.
fn link_addr(mut opts: NdpOptions<'_>, kind: u8) -> Option<MacAddr> {
    opts.find(|o| o.kind == kind).and_then(|o| o.link_addr())
}

/// A view over a Neighbor Solicitation (the whole ICMPv6 message).
#[derive(Debug, Clone)]
pub struct NeighborSolicitation<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NeighborSolicitation<T> {
    /// `Truncated` below 24 bytes or for an option running past the end,
    /// `BadOptionLen` for an option of length zero, `Unsupported` for
    /// another ICMPv6 type.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check(buffer.as_ref(), icmpv6_type::NEIGHBOR_SOLICIT)?;
        Ok(NeighborSolicitation { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn target(&self) -> Ipv6Addr {
        get_ipv6(self.buffer.as_ref(), field::TARGET)
    }

    #[inline]
    pub fn options(&self) -> NdpOptions<'_> {
        NdpOptions {
            rest: &self.buffer.as_ref()[field::OPTIONS..],
        }
    }

    #[inline]
    pub fn source_link_addr(&self) -> Option<MacAddr> {
        link_addr(self.options(), NdpOption::SOURCE_LINK_ADDR)
    }

    /// The checks RFC 4861 §7.1.1 asks of a received solicitation carried by
    /// `ip`: hop limit 255, code 0, checksum, unicast target (and source,
    /// so [`NeighborAdvertMessage::reply`] can answer it), and for a
    /// duplicate address detection probe (unspecified source) no source
    /// link-layer address and a solicited-node destination.
    pub fn validate<U: AsRef<[u8]>>(&self, ip: &Ipv6Packet<U>) -> Result<(), NdpError> {
        validate_common(ip, self.buffer.as_ref(), self.target())?;
        if ip.src().is_unspecified() {
            let slla = NdpOption::SOURCE_LINK_ADDR;
            if self.options().any(|o| o.kind == slla) {
                return Err(NdpError::DadWithSourceLinkAddr);
            }
            if ip.dst().octets()[..13] != SOLICITED_NODE_PREFIX {
                return Err(NdpError::DadNotSolicitedNode);
            }
        }
        Ok(())
    }
}

/// A view over a Neighbor Advertisement (the whole ICMPv6 message).
#[derive(Debug, Clone)]
pub struct NeighborAdvertisement<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NeighborAdvertisement<T> {
    /// As [`NeighborSolicitation::new_checked`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        check(buffer.as_ref(), icmpv6_type::NEIGHBOR_ADVERT)?;
        Ok(NeighborAdvertisement { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn flag(&self, f: u8) -> bool {
        self.buffer.as_ref()[field::FLAGS] & f != 0
    }

    /// R: the sender is a router.
    #[inline]
    pub fn router(&self) -> bool {
        self.flag(FLAG_ROUTER)
    }

    /// S: the advertisement answers a solicitation.
    #[inline]
    pub fn solicited(&self) -> bool {
        self.flag(FLAG_SOLICITED)
    }

    /// O: the advertisement overrides a cached link-layer address.
    #[inline]
    pub fn override_flag(&self) -> bool {
        self.flag(FLAG_OVERRIDE)
    }

    #[inline]
    pub fn target(&self) -> Ipv6Addr {
        get_ipv6(self.buffer.as_ref(), field::TARGET)
    }

    #[inline]
    pub fn options(&self) -> NdpOptions<'_> {
        NdpOptions {
            rest: &self.buffer.as_ref()[field::OPTIONS..],
        }
    }

    #[inline]
    pub fn target_link_addr(&self) -> Option<MacAddr> {
        link_addr(self.options(), NdpOption::TARGET_LINK_ADDR)
    }

    /// The checks RFC 4861 §7.1.2 asks of a received advertisement carried
    /// by `ip`: hop limit 255, code 0, checksum, unicast target and source,
    /// and S clear when sent to a multicast address.
    pub fn validate<U: AsRef<[u8]>>(&self, ip: &Ipv6Packet<U>) -> Result<(), NdpError> {
        validate_common(ip, self.buffer.as_ref(), self.target())?;
        if ip.dst().is_multicast() && self.solicited() {
            return Err(NdpError::SolicitedToMulticast);
        }
        Ok(())
    }
}

/// A Neighbor Advertisement for one of vipd's addresses, as
/// [`write_neighbor_advert`] writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborAdvertMessage {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub target: Ipv6Addr,
    /// Sent in a target link-layer address option.
    pub target_mac: MacAddr,
    pub router: bool,
    pub solicited: bool,
    pub override_flag: bool,
}

impl NeighborAdvertMessage {
    /// IPv6 header, advertisement and one link-layer address option.
    pub const LEN: usize = Ipv6Packet::<&[u8]>::HEADER_LEN + MIN_LEN + OPT_UNIT;

    /// The answer to a solicitation for `target` from `asker` (RFC 4861
    /// §7.2.4): to the asker, solicited; to all nodes, unsolicited, when the
    /// asker probed for duplicates from the unspecified address.
    pub fn reply(target: Ipv6Addr, mac: MacAddr, asker: Ipv6Addr) -> Self {
        let dad = asker.is_unspecified();
        NeighborAdvertMessage {
            src: target,
            dst: if dad { ALL_NODES } else { asker },
            target,
            target_mac: mac,
            router: false,
            solicited: !dad,
            override_flag: true,
        }
    }

    /// An unsolicited advertisement to all nodes that `target` is now at
    /// `mac` (RFC 4861 §7.2.6), as after a failover.
    pub fn unsolicited(target: Ipv6Addr, mac: MacAddr) -> Self {
        NeighborAdvertMessage {
            src: target,
            dst: ALL_NODES,
            target,
            target_mac: mac,
            router: false,
            solicited: false,
            override_flag: true,
        }
    }
}

/// Writes the IPv6 packet carrying advertisement `m` (hop limit 255,
/// checksum filled) at the start of `buf` and returns its length
/// ([`NeighborAdvertMessage::LEN`]); `Truncated` if `buf` is shorter.
pub fn write_neighbor_advert(
    buf: &mut [u8],
    m: &NeighborAdvertMessage,
) -> Result<usize, WireError> {
    let b = buf
        .get_mut(..NeighborAdvertMessage::LEN)
        .ok_or(WireError::Truncated)?;
    let msg_len = MIN_LEN + OPT_UNIT;
    let at = write_header(
        b,
        &Ipv6Header {
            src: m.src,
            dst: m.dst,
            next_header: ip_proto::ICMPV6,
            hop_limit: HOP_LIMIT,
            traffic_class: 0,
            payload_len: msg_len as u16,
        },
    )?;
    let msg = &mut b[at..];
    msg.fill(0);
    msg[field::TYPE] = icmpv6_type::NEIGHBOR_ADVERT;
    let flags = [
        (m.router, FLAG_ROUTER),
        (m.solicited, FLAG_SOLICITED),
        (m.override_flag, FLAG_OVERRIDE),
    ];
    msg[field::FLAGS] = flags
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |a, (_, f)| a | f);
    put_ipv6(msg, field::TARGET, m.target);
    let opt = &mut msg[field::OPTIONS..];
    opt[opt_field::TYPE] = NdpOption::TARGET_LINK_ADDR;
    opt[opt_field::LEN] = 1;
    put_mac(opt, opt_field::LINK_ADDR, m.target_mac);
    Icmpv6Packet::new_checked(msg)?.fill_checksum(m.src, m.dst);
    Ok(NeighborAdvertMessage::LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Icmpv6Type, PacketBuilder, SlicedPacket};

    const MAC: MacAddr = MacAddr([0x02, 0, 0x5e, 0, 1, 7]);

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// An IPv6 Neighbor Solicitation with the given options, checksum
    /// filled.
    fn ns(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr, opts: &[u8], hops: u8) -> Vec<u8> {
        let mut msg = vec![icmpv6_type::NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(&target.octets());
        msg.extend_from_slice(opts);
        let mut p = vec![0u8; 40];
        let h = Ipv6Header {
            src,
            dst,
            next_header: ip_proto::ICMPV6,
            hop_limit: hops,
            traffic_class: 0,
            payload_len: msg.len() as u16,
        };
        write_header(&mut p, &h).unwrap();
        p.extend_from_slice(&msg);
        Icmpv6Packet::new_checked(&mut p[40..])
            .unwrap()
            .fill_checksum(src, dst);
        p
    }

    fn slla() -> Vec<u8> {
        let mut o = vec![NdpOption::SOURCE_LINK_ADDR, 1];
        o.extend_from_slice(&MAC.0);
        o
    }

    fn validate_ns(p: &[u8]) -> Result<(), NdpError> {
        let ip = Ipv6Packet::new_checked(p).unwrap();
        NeighborSolicitation::new_checked(ip.payload())
            .unwrap()
            .validate(&ip)
    }

    #[test]
    fn multicast_helpers() {
        let t = a("2001:db8::12:3456:789a");
        assert_eq!(solicited_node_multicast(t), a("ff02::1:ff56:789a"));
        assert_eq!(
            multicast_mac(solicited_node_multicast(t)),
            MacAddr([0x33, 0x33, 0xff, 0x56, 0x78, 0x9a])
        );
        assert_eq!(multicast_mac(ALL_NODES), MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    }

    #[test]
    fn reads_a_solicitation_and_its_options() {
        let (src, target) = (a("fe80::1"), a("2001:db8::80"));
        let mut opts = vec![14, 1, 0, 0, 0, 0, 0, 0];
        opts.extend(slla());
        let p = ns(src, solicited_node_multicast(target), target, &opts, 255);
        let ip = Ipv6Packet::new_checked(&p[..]).unwrap();
        let s = NeighborSolicitation::new_checked(ip.payload()).unwrap();
        assert_eq!(s.target(), target);
        assert_eq!(s.source_link_addr(), Some(MAC));
        let kinds: Vec<u8> = s.options().map(|o| o.kind).collect();
        assert_eq!(kinds, [14, NdpOption::SOURCE_LINK_ADDR]);
        assert_eq!(s.options().next().unwrap().link_addr(), None);
        assert_eq!(s.validate(&ip), Ok(()));
        // etherparse reads the same solicitation.
        let sp = SlicedPacket::from_ip(&p).unwrap();
        let Some(etherparse::TransportSlice::Icmpv6(i)) = sp.transport else {
            panic!("not ICMPv6");
        };
        assert!(matches!(i.icmp_type(), Icmpv6Type::NeighborSolicitation));
    }

    #[test]
    fn every_truncation_and_zero_length_option_is_refused() {
        let target = a("2001:db8::80");
        let p = ns(
            a("fe80::1"),
            solicited_node_multicast(target),
            target,
            &slla(),
            255,
        );
        let msg = &p[40..];
        for len in 0..msg.len() {
            let want = (len != MIN_LEN).then_some(WireError::Truncated);
            assert_eq!(
                NeighborSolicitation::new_checked(&msg[..len]).err(),
                want,
                "len {len}"
            );
        }
        let mut zero = msg.to_vec();
        zero[MIN_LEN + opt_field::LEN] = 0;
        assert_eq!(
            NeighborSolicitation::new_checked(&zero[..]).err(),
            Some(WireError::BadOptionLen)
        );
        let mut long = msg.to_vec();
        long[MIN_LEN + opt_field::LEN] = 2;
        assert_eq!(
            NeighborSolicitation::new_checked(&long[..]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            NeighborAdvertisement::new_checked(msg).err(),
            Some(WireError::Unsupported)
        );
    }

    #[test]
    fn section_7_1_1_checks() {
        let target = a("2001:db8::80");
        let snm = solicited_node_multicast(target);
        let ok = ns(a("2001:db8::1"), snm, target, &slla(), 255);
        assert_eq!(validate_ns(&ok), Ok(()));
        let hops = ns(a("2001:db8::1"), snm, target, &slla(), 64);
        assert_eq!(validate_ns(&hops), Err(NdpError::HopLimit));
        let mut code = ok.clone();
        code[41] = 1;
        assert_eq!(validate_ns(&code), Err(NdpError::Code));
        let mut sum = ok.clone();
        sum[42] ^= 1;
        assert_eq!(validate_ns(&sum), Err(NdpError::Checksum));
        let mc = ns(a("2001:db8::1"), snm, a("ff02::1"), &[], 255);
        assert_eq!(validate_ns(&mc), Err(NdpError::MulticastTarget));
        let from_mc = ns(a("ff02::2"), snm, target, &[], 255);
        assert_eq!(validate_ns(&from_mc), Err(NdpError::MulticastSource));
    }

    #[test]
    fn duplicate_address_detection_probes() {
        let target = a("2001:db8::80");
        let snm = solicited_node_multicast(target);
        let un = Ipv6Addr::UNSPECIFIED;
        assert_eq!(validate_ns(&ns(un, snm, target, &[], 255)), Ok(()));
        assert_eq!(
            validate_ns(&ns(un, snm, target, &slla(), 255)),
            Err(NdpError::DadWithSourceLinkAddr)
        );
        assert_eq!(
            validate_ns(&ns(un, target, target, &[], 255)),
            Err(NdpError::DadNotSolicitedNode)
        );
        // The answer to a probe goes to all nodes, unsolicited.
        let r = NeighborAdvertMessage::reply(target, MAC, un);
        assert_eq!((r.dst, r.solicited), (ALL_NODES, false));
        let r = NeighborAdvertMessage::reply(target, MAC, a("fe80::9"));
        assert_eq!((r.dst, r.solicited, r.src), (a("fe80::9"), true, target));
    }

    #[test]
    fn written_advertisements_read_back_and_validate() {
        let target = a("2001:db8::80");
        for m in [
            NeighborAdvertMessage::reply(target, MAC, a("fe80::9")),
            NeighborAdvertMessage::unsolicited(target, MAC),
            NeighborAdvertMessage {
                router: true,
                override_flag: false,
                ..NeighborAdvertMessage::reply(target, MAC, a("2001:db8::9"))
            },
        ] {
            let mut buf = [0xaau8; 100];
            let n = write_neighbor_advert(&mut buf, &m).unwrap();
            assert_eq!(n, 72);
            let ip = Ipv6Packet::new_checked(&buf[..n]).unwrap();
            assert_eq!((ip.src(), ip.dst(), ip.hop_limit()), (m.src, m.dst, 255));
            let na = NeighborAdvertisement::new_checked(ip.payload()).unwrap();
            assert_eq!(na.target(), target);
            assert_eq!(na.target_link_addr(), Some(MAC));
            assert_eq!(
                (na.router(), na.solicited(), na.override_flag()),
                (m.router, m.solicited, m.override_flag)
            );
            assert_eq!(na.validate(&ip), Ok(()));
            // The flags byte, independently of the view.
            let want = u8::from(m.router) << 7
                | u8::from(m.solicited) << 6
                | u8::from(m.override_flag) << 5;
            assert_eq!(buf[44], want);
            let msg = &buf[40..n];
            for len in 0..msg.len() {
                let want = (len != MIN_LEN).then_some(WireError::Truncated);
                assert_eq!(NeighborAdvertisement::new_checked(&msg[..len]).err(), want);
            }
            for short in 0..n {
                assert_eq!(
                    write_neighbor_advert(&mut buf[..short], &m),
                    Err(WireError::Truncated)
                );
            }
        }
    }

    #[test]
    fn solicited_advertisement_to_multicast_is_refused() {
        let target = a("2001:db8::80");
        let m = NeighborAdvertMessage {
            dst: ALL_NODES,
            ..NeighborAdvertMessage::reply(target, MAC, a("fe80::9"))
        };
        let mut buf = [0u8; 72];
        write_neighbor_advert(&mut buf, &m).unwrap();
        let ip = Ipv6Packet::new_checked(&buf[..]).unwrap();
        let na = NeighborAdvertisement::new_checked(ip.payload()).unwrap();
        assert_eq!(na.validate(&ip), Err(NdpError::SolicitedToMulticast));
    }

    #[test]
    fn etherparse_built_advertisement_reads() {
        let (src, dst, target) = (a("fe80::1"), a("fe80::2"), a("2001:db8::5"));
        let mut body = target.octets().to_vec();
        body.extend_from_slice(&[2, 1]);
        body.extend_from_slice(&MAC.0);
        let mut p = Vec::new();
        PacketBuilder::ipv6(src.octets(), dst.octets(), 255)
            .icmpv6(Icmpv6Type::Unknown {
                type_u8: 136,
                code_u8: 0,
                bytes5to8: [0x60, 0, 0, 0],
            })
            .write(&mut p, &body)
            .unwrap();
        let ip = Ipv6Packet::new_checked(&p[..]).unwrap();
        let na = NeighborAdvertisement::new_checked(ip.payload()).unwrap();
        assert!(na.solicited() && na.override_flag() && !na.router());
        assert_eq!((na.target(), na.target_link_addr()), (target, Some(MAC)));
        assert_eq!(na.validate(&ip), Ok(()));
    }
}
