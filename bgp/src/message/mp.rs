//! Multiprotocol reachability attributes (RFC 4760 §3, §4) and their next hops
//! (RFC 2545 §3 for IPv6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::prefix::{Family, NlriError, Prefix};

/// MP_REACH_NLRI for a family vipd speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: IpAddr,
    /// The IPv6 link-local next hop that may follow the global one (RFC 2545).
    pub link_local: Option<Ipv6Addr>,
    pub nlri: Vec<Prefix>,
}

/// MP_UNREACH_NLRI; an empty `withdrawn` list is the family's End-of-RIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpUnreach {
    pub family: Family,
    pub withdrawn: Vec<Prefix>,
}

/// Why an MP_REACH_NLRI or MP_UNREACH_NLRI value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MpError {
    #[error("{len} octets are shorter than the {need}-octet header")]
    Truncated { len: usize, need: usize },
    #[error("AFI {afi} SAFI {safi} is not a family vipd speaks")]
    UnknownFamily { afi: u16, safi: u8 },
    #[error("{family} next hop length {len} is not {allowed}")]
    NextHopLength {
        family: Family,
        len: u8,
        allowed: &'static str,
    },
    #[error("next hop length {len} overruns the {left} octets after the header")]
    NextHopOverrun { len: u8, left: usize },
    #[error("the reserved octet after the next hop is missing")]
    NoReserved,
    #[error("{family} NLRI: {error}")]
    Nlri { family: Family, error: NlriError },
}

/// AFI (2 octets) and SAFI (1 octet) from the front of an attribute value.
fn afi_safi(v: &[u8], need: usize) -> Result<(Family, &[u8]), MpError> {
    let truncated = MpError::Truncated { len: v.len(), need };
    let (&[a0, a1, safi], rest) = v.split_first_chunk::<3>().ok_or(truncated)?;
    let afi = u16::from_be_bytes([a0, a1]);
    let family = Family::from_afi_safi(afi, safi).ok_or(MpError::UnknownFamily { afi, safi })?;
    Ok((family, rest))
}

fn nlri(buf: &[u8], family: Family) -> Result<Vec<Prefix>, MpError> {
    Prefix::decode_all(buf, family).map_err(|error| MpError::Nlri { family, error })
}

fn put_family(family: Family, out: &mut Vec<u8>) {
    let (afi, safi) = family.afi_safi();
    out.extend_from_slice(&afi.to_be_bytes());
    out.push(safi);
}

fn v6(octets: &[u8]) -> Ipv6Addr {
    Ipv6Addr::from(<[u8; 16]>::try_from(octets).unwrap_or_default())
}

impl MpReach {
    /// Parses an MP_REACH_NLRI value: AFI, SAFI, next hop length and next hop,
    /// one reserved octet, then the NLRI.
    pub fn decode(v: &[u8]) -> Result<MpReach, MpError> {
        let (family, rest) = afi_safi(v, 4)?;
        let (&len, rest) = rest.split_first().ok_or(MpError::Truncated {
            len: v.len(),
            need: 4,
        })?;
        let (length_ok, allowed) = match family {
            Family::Ipv4Unicast => (len == 4, "4"),
            // RFC 2545 §3: the global address, optionally followed by a link-local one.
            Family::Ipv6Unicast => (len == 16 || len == 32, "16 or 32"),
        };
        if !length_ok {
            return Err(MpError::NextHopLength {
                family,
                len,
                allowed,
            });
        }
        let nh = rest
            .get(..usize::from(len))
            .ok_or(MpError::NextHopOverrun {
                len,
                left: rest.len(),
            })?;
        // The reserved octet is ignored on receipt (RFC 4760 §3).
        let field = rest
            .get(usize::from(len) + 1..)
            .ok_or(MpError::NoReserved)?;
        let (next_hop, link_local) = match nh.len() {
            4 => (
                IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(nh).unwrap_or_default())),
                None,
            ),
            16 => (IpAddr::V6(v6(nh)), None),
            _ => {
                let (global, local) = nh.split_at(16);
                (IpAddr::V6(v6(global)), Some(v6(local)))
            }
        };
        Ok(MpReach {
            family,
            next_hop,
            link_local,
            nlri: nlri(field, family)?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_family(self.family, out);
        let at = out.len();
        out.push(0);
        match self.next_hop {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(g) => out.extend_from_slice(&g.octets()),
        }
        if let (IpAddr::V6(_), Some(l)) = (self.next_hop, self.link_local) {
            out.extend_from_slice(&l.octets());
        }
        out[at] = (out.len() - at - 1) as u8;
        out.push(0);
        self.nlri.iter().for_each(|p| p.encode(out));
    }
}

impl MpUnreach {
    /// Parses an MP_UNREACH_NLRI value: AFI, SAFI, then the withdrawn prefixes.
    pub fn decode(v: &[u8]) -> Result<MpUnreach, MpError> {
        let (family, rest) = afi_safi(v, 3)?;
        Ok(MpUnreach {
            family,
            withdrawn: nlri(rest, family)?,
        })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_family(self.family, out);
        self.withdrawn.iter().for_each(|p| p.encode(out));
    }
}
