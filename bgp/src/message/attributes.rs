//! Path attributes (RFC 4271 §5, 1997, 4760, 6793, 8092) with RFC 7606 error
//! classification per attribute.

use std::net::Ipv4Addr;

use super::as_path::AsPath;
use super::mp::{MpError, MpReach, MpUnreach};
use super::notification::{code, Notification};
use super::open::AS_TRANS;
use super::{DecodeError, SessionCtx};

const FLAG_OPTIONAL: u8 = 0x80;
const FLAG_TRANSITIVE: u8 = 0x40;
const FLAG_EXTENDED: u8 = 0x10;

pub mod type_code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MED: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITIES: u8 = 32;
}
use type_code as tc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// An attribute kept as received: optional transitive ones vipd does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttribute {
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

/// The path attributes of an UPDATE. AS numbers are always the real 4-octet ones:
/// on 2-octet sessions AS4_PATH / AS4_AGGREGATOR are folded in on decode and
/// produced on encode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathAttributes {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<[u32; 3]>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    pub unknown: Vec<RawAttribute>,
}

/// What RFC 7606 says to do about a malformed attribute that does not reset the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Handle the UPDATE's announced prefixes as withdrawn (RFC 7606 §2).
    TreatAsWithdraw,
    /// Ignore the attribute and use the rest of the UPDATE.
    AttributeDiscard,
}

/// A non-fatal problem found while decoding an UPDATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrIssue {
    pub type_code: u8,
    pub action: ErrorAction,
    pub reason: String,
}

/// Attributes whose decoding needs the rest of the list (RFC 6793 folding).
#[derive(Default)]
pub(crate) struct Decoded {
    pub attrs: PathAttributes,
    pub issues: Vec<AttrIssue>,
    as4_path: Option<AsPath>,
    as4_aggregator: Option<Aggregator>,
}

fn reset(subcode: u8, data: Vec<u8>, reason: String) -> DecodeError {
    DecodeError::new(Notification::new(code::UPDATE, subcode, data), reason)
}

/// The flags a recognised attribute must carry (optional, transitive).
fn expected_flags(t: u8) -> Option<(bool, bool)> {
    Some(match t {
        tc::ORIGIN | tc::AS_PATH | tc::NEXT_HOP | tc::LOCAL_PREF | tc::ATOMIC_AGGREGATE => {
            (false, true)
        }
        tc::MED | tc::MP_REACH_NLRI | tc::MP_UNREACH_NLRI => (true, false),
        tc::AGGREGATOR
        | tc::COMMUNITIES
        | tc::AS4_PATH
        | tc::AS4_AGGREGATOR
        | tc::LARGE_COMMUNITIES => (true, true),
        _ => return None,
    })
}

/// RFC 7606 §7: the approach for a malformed instance of each recognised attribute.
fn malformed_action(t: u8) -> Option<ErrorAction> {
    match t {
        tc::ATOMIC_AGGREGATE | tc::AGGREGATOR | tc::AS4_PATH | tc::AS4_AGGREGATOR => {
            Some(ErrorAction::AttributeDiscard)
        }
        // MP_REACH / MP_UNREACH reset the session: their NLRI cannot be located.
        tc::MP_REACH_NLRI | tc::MP_UNREACH_NLRI => None,
        _ => Some(ErrorAction::TreatAsWithdraw),
    }
}

fn be32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.try_into().ok()?))
}

/// Parses the path attribute list.
pub(crate) fn decode(mut buf: &[u8], ctx: &SessionCtx) -> Result<Decoded, DecodeError> {
    let mut d = Decoded::default();
    let mut seen = [false; 256];
    while !buf.is_empty() {
        let Some((&[flags, t], rest)) = buf.split_first_chunk::<2>() else {
            d.issue(
                0,
                ErrorAction::TreatAsWithdraw,
                "attribute list ends inside an attribute header".into(),
            );
            break;
        };
        let (len, rest) = if flags & FLAG_EXTENDED != 0 {
            match rest.split_first_chunk::<2>() {
                Some((l, r)) => (usize::from(u16::from_be_bytes(*l)), r),
                None => {
                    d.issue(
                        t,
                        ErrorAction::TreatAsWithdraw,
                        "attribute list ends inside an attribute header".into(),
                    );
                    break;
                }
            }
        } else {
            match rest.split_first() {
                Some((l, r)) => (usize::from(*l), r),
                None => {
                    d.issue(
                        t,
                        ErrorAction::TreatAsWithdraw,
                        "attribute list ends inside an attribute header".into(),
                    );
                    break;
                }
            }
        };
        let Some(value) = rest.get(..len) else {
            // RFC 7606 §4: the total attribute length still locates the NLRI.
            d.issue(
                t,
                ErrorAction::TreatAsWithdraw,
                format!(
                    "attribute type {t} length {len} overruns the attribute list ({} octets left)",
                    rest.len()
                ),
            );
            break;
        };
        buf = rest.get(len..).unwrap_or_default();

        if seen[usize::from(t)] {
            if matches!(t, tc::MP_REACH_NLRI | tc::MP_UNREACH_NLRI) {
                return Err(reset(
                    code::update::MALFORMED_ATTRIBUTE_LIST,
                    vec![],
                    format!("UPDATE carries attribute type {t} more than once"),
                ));
            }
            d.issue(
                t,
                ErrorAction::AttributeDiscard,
                format!("repeated attribute type {t} ignored"),
            );
            continue;
        }
        seen[usize::from(t)] = true;

        match expected_flags(t) {
            Some((opt, trans)) => {
                if (flags & FLAG_OPTIONAL != 0) != opt || (flags & FLAG_TRANSITIVE != 0) != trans {
                    d.malformed(
                        t,
                        format!("attribute type {t} has wrong flags {flags:#04x}"),
                    )?;
                    continue;
                }
                d.decode_known(t, value, ctx)?;
            }
            None if flags & FLAG_OPTIONAL == 0 => {
                return Err(reset(
                    code::update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    attr_bytes(flags, t, value),
                    format!("UPDATE carries unknown well-known attribute type {t}"),
                ));
            }
            None if flags & FLAG_TRANSITIVE != 0 => d.attrs.unknown.push(RawAttribute {
                flags: flags & !FLAG_EXTENDED,
                type_code: t,
                value: value.to_vec(),
            }),
            // Unknown optional non-transitive attributes are quietly ignored (RFC 4271 §5).
            None => {}
        }
    }
    d.fold_as4(ctx);
    Ok(d)
}

fn attr_bytes(flags: u8, t: u8, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    put_attr(flags & !FLAG_EXTENDED, t, value, &mut v);
    v
}

impl Decoded {
    fn issue(&mut self, t: u8, action: ErrorAction, reason: String) {
        self.issues.push(AttrIssue {
            type_code: t,
            action,
            reason,
        });
    }

    /// Records a malformed recognised attribute with its RFC 7606 approach.
    fn malformed(&mut self, t: u8, reason: String) -> Result<(), DecodeError> {
        match malformed_action(t) {
            Some(action) => {
                self.issue(t, action, reason);
                Ok(())
            }
            None => Err(reset(
                code::update::OPTIONAL_ATTRIBUTE_ERROR,
                vec![],
                reason,
            )),
        }
    }

    fn decode_known(&mut self, t: u8, v: &[u8], ctx: &SessionCtx) -> Result<(), DecodeError> {
        let a = &mut self.attrs;
        match t {
            tc::ORIGIN => match v {
                [0] => a.origin = Some(Origin::Igp),
                [1] => a.origin = Some(Origin::Egp),
                [2] => a.origin = Some(Origin::Incomplete),
                _ => return self.malformed(t, format!("ORIGIN value {v:?} is invalid")),
            },
            tc::AS_PATH => match AsPath::decode(v, ctx.four_octet_as) {
                Ok(p) => a.as_path = Some(p),
                Err(e) => return self.malformed(t, format!("malformed AS_PATH: {e}")),
            },
            tc::NEXT_HOP => match <[u8; 4]>::try_from(v) {
                Ok(o) => a.next_hop = Some(Ipv4Addr::from(o)),
                Err(_) => {
                    return self.malformed(t, format!("NEXT_HOP has {} octets, not 4", v.len()))
                }
            },
            tc::MED => match be32(v) {
                Some(x) => a.med = Some(x),
                None => return self.malformed(t, format!("MED has {} octets, not 4", v.len())),
            },
            tc::LOCAL_PREF => match be32(v) {
                Some(x) => a.local_pref = Some(x),
                None => {
                    return self.malformed(t, format!("LOCAL_PREF has {} octets, not 4", v.len()))
                }
            },
            tc::ATOMIC_AGGREGATE if v.is_empty() => a.atomic_aggregate = true,
            tc::ATOMIC_AGGREGATE => {
                return self.malformed(t, format!("ATOMIC_AGGREGATE has {} octets, not 0", v.len()))
            }
            tc::AGGREGATOR => match decode_aggregator(v, ctx.four_octet_as) {
                Some(g) => a.aggregator = Some(g),
                None => return self.malformed(t, format!("AGGREGATOR has {} octets", v.len())),
            },
            tc::COMMUNITIES if !v.is_empty() && v.len().is_multiple_of(4) => {
                a.communities = v.chunks_exact(4).filter_map(be32).collect();
            }
            tc::COMMUNITIES => {
                return self.malformed(
                    t,
                    format!(
                        "COMMUNITIES length {} is not a non-zero multiple of 4",
                        v.len()
                    ),
                )
            }
            tc::LARGE_COMMUNITIES if !v.is_empty() && v.len().is_multiple_of(12) => {
                a.large_communities = v
                    .chunks_exact(12)
                    .map(|c| {
                        [
                            be32(&c[0..4]).unwrap_or(0),
                            be32(&c[4..8]).unwrap_or(0),
                            be32(&c[8..12]).unwrap_or(0),
                        ]
                    })
                    .collect();
            }
            tc::LARGE_COMMUNITIES => {
                return self.malformed(
                    t,
                    format!(
                        "LARGE_COMMUNITIES length {} is not a non-zero multiple of 12",
                        v.len()
                    ),
                )
            }
            tc::MP_REACH_NLRI => match MpReach::decode(v) {
                Ok(r) => a.mp_reach = Some(r),
                Err(e) => return self.mp_error(t, "MP_REACH_NLRI", e),
            },
            tc::MP_UNREACH_NLRI => match MpUnreach::decode(v) {
                Ok(u) => a.mp_unreach = Some(u),
                Err(e) => return self.mp_error(t, "MP_UNREACH_NLRI", e),
            },
            // A 4-octet speaker ignores AS4_* from another 4-octet speaker (RFC 6793 §4.1).
            tc::AS4_PATH | tc::AS4_AGGREGATOR if ctx.four_octet_as => {}
            tc::AS4_PATH => match AsPath::decode(v, true) {
                Ok(p) if p.segments.iter().all(|s| s.kind as u8 <= 2) => self.as4_path = Some(p),
                Ok(_) => {
                    return self.malformed(t, "AS4_PATH carries confederation segments".into())
                }
                Err(e) => return self.malformed(t, format!("malformed AS4_PATH: {e}")),
            },
            tc::AS4_AGGREGATOR => match decode_aggregator(v, true) {
                Some(g) => self.as4_aggregator = Some(g),
                None => {
                    return self
                        .malformed(t, format!("AS4_AGGREGATOR has {} octets, not 8", v.len()))
                }
            },
            _ => {}
        }
        Ok(())
    }

    /// RFC 7606 §5.3 / §7.11: a malformed MP attribute resets the session, as
    /// its NLRI cannot be trusted; one for a family vipd does not speak is ignored.
    fn mp_error(&mut self, t: u8, name: &str, e: MpError) -> Result<(), DecodeError> {
        if let MpError::UnknownFamily { afi, safi } = e {
            self.issue(
                t,
                ErrorAction::AttributeDiscard,
                format!("{name} for AFI {afi} SAFI {safi}, which was not negotiated, ignored"),
            );
            return Ok(());
        }
        Err(reset(
            code::update::OPTIONAL_ATTRIBUTE_ERROR,
            vec![],
            format!("malformed {name}: {e}"),
        ))
    }

    /// RFC 6793 §4.2.3: on a 2-octet session, rebuild real AS numbers.
    fn fold_as4(&mut self, ctx: &SessionCtx) {
        if ctx.four_octet_as {
            return;
        }
        // An AGGREGATOR that is not AS_TRANS means the AS4 attributes are stale.
        if let Some(agg) = self.attrs.aggregator {
            if agg.asn != u32::from(AS_TRANS) {
                return;
            }
            if let Some(a4) = self.as4_aggregator {
                self.attrs.aggregator = Some(a4);
            }
        }
        if let (Some(p), Some(p4)) = (&self.attrs.as_path, &self.as4_path) {
            self.attrs.as_path = Some(p.merge_as4(p4));
        }
    }
}

fn decode_aggregator(v: &[u8], four_octet: bool) -> Option<Aggregator> {
    let (asn, addr) = match (four_octet, v.len()) {
        (false, 6) => (u32::from(u16::from_be_bytes([v[0], v[1]])), &v[2..]),
        (true, 8) => (be32(&v[..4])?, &v[4..]),
        _ => return None,
    };
    Some(Aggregator {
        asn,
        address: Ipv4Addr::from(<[u8; 4]>::try_from(addr).ok()?),
    })
}

fn put_attr(flags: u8, t: u8, value: &[u8], out: &mut Vec<u8>) {
    match u8::try_from(value.len()) {
        Ok(l) => {
            out.extend_from_slice(&[flags & !FLAG_EXTENDED, t, l]);
        }
        Err(_) => {
            let l = u16::try_from(value.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&[flags | FLAG_EXTENDED, t]);
            out.extend_from_slice(&l.to_be_bytes());
        }
    }
    out.extend_from_slice(value);
}

const WELL_KNOWN: u8 = FLAG_TRANSITIVE;
const OPT_TRANS: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;
const OPT_NON_TRANS: u8 = FLAG_OPTIONAL;

impl PathAttributes {
    /// Appends the encoded attribute list: the MP attributes first, so a receiver
    /// still finds the NLRI when a later attribute is malformed (RFC 7606 §5.1),
    /// then the others in type-code order.
    pub(crate) fn encode(&self, ctx: &SessionCtx, out: &mut Vec<u8>) {
        let mut v = Vec::new();
        if let Some(r) = &self.mp_reach {
            v.clear();
            r.encode(&mut v);
            put_attr(OPT_NON_TRANS, tc::MP_REACH_NLRI, &v, out);
        }
        if let Some(u) = &self.mp_unreach {
            v.clear();
            u.encode(&mut v);
            put_attr(OPT_NON_TRANS, tc::MP_UNREACH_NLRI, &v, out);
        }
        if let Some(o) = self.origin {
            put_attr(WELL_KNOWN, tc::ORIGIN, &[o as u8], out);
        }
        if let Some(p) = &self.as_path {
            v.clear();
            p.encode(ctx.four_octet_as, false, &mut v);
            put_attr(WELL_KNOWN, tc::AS_PATH, &v, out);
        }
        if let Some(nh) = self.next_hop {
            put_attr(WELL_KNOWN, tc::NEXT_HOP, &nh.octets(), out);
        }
        if let Some(m) = self.med {
            put_attr(OPT_NON_TRANS, tc::MED, &m.to_be_bytes(), out);
        }
        if let Some(lp) = self.local_pref {
            put_attr(WELL_KNOWN, tc::LOCAL_PREF, &lp.to_be_bytes(), out);
        }
        if self.atomic_aggregate {
            put_attr(WELL_KNOWN, tc::ATOMIC_AGGREGATE, &[], out);
        }
        if let Some(g) = self.aggregator {
            v.clear();
            if ctx.four_octet_as {
                v.extend_from_slice(&g.asn.to_be_bytes());
            } else {
                v.extend_from_slice(&u16::try_from(g.asn).unwrap_or(AS_TRANS).to_be_bytes());
            }
            v.extend_from_slice(&g.address.octets());
            put_attr(OPT_TRANS, tc::AGGREGATOR, &v, out);
        }
        if !self.communities.is_empty() {
            v.clear();
            self.communities
                .iter()
                .for_each(|c| v.extend_from_slice(&c.to_be_bytes()));
            put_attr(OPT_TRANS, tc::COMMUNITIES, &v, out);
        }
        if !ctx.four_octet_as {
            if let Some(p) = self.as_path.as_ref().filter(|p| p.has_four_octet()) {
                v.clear();
                p.encode(true, true, &mut v);
                put_attr(OPT_TRANS, tc::AS4_PATH, &v, out);
            }
            if let Some(g) = self.aggregator.filter(|g| g.asn > u32::from(u16::MAX)) {
                v.clear();
                v.extend_from_slice(&g.asn.to_be_bytes());
                v.extend_from_slice(&g.address.octets());
                put_attr(OPT_TRANS, tc::AS4_AGGREGATOR, &v, out);
            }
        }
        if !self.large_communities.is_empty() {
            v.clear();
            for c in &self.large_communities {
                c.iter().for_each(|x| v.extend_from_slice(&x.to_be_bytes()));
            }
            put_attr(OPT_TRANS, tc::LARGE_COMMUNITIES, &v, out);
        }
        for u in &self.unknown {
            put_attr(u.flags, u.type_code, &u.value, out);
        }
    }
}
