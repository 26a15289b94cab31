//! OPEN messages and capabilities (RFC 4271 §4.2, RFC 5492).

use std::net::Ipv4Addr;

use super::notification::{code, Notification};
use super::{DecodeError, EncodeError};
use crate::prefix::Family;

/// Substituted for a 4-octet AS in 2-octet fields (RFC 6793).
pub const AS_TRANS: u16 = 23456;

const PARAM_CAPABILITIES: u8 = 2;

const CAP_MULTIPROTOCOL: u8 = 1;
const CAP_ROUTE_REFRESH: u8 = 2;
const CAP_GRACEFUL_RESTART: u8 = 64;
const CAP_FOUR_OCTET_AS: u8 = 65;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The 2-octet "My Autonomous System" field; AS_TRANS when the real AS needs 4 octets.
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

/// One address family in a graceful restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartFamily {
    pub afi: u16,
    pub safi: u8,
    pub forwarding_preserved: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    /// RFC 4760; AFI/SAFI kept raw so unsupported families are still visible.
    Multiprotocol {
        afi: u16,
        safi: u8,
    },
    /// RFC 2918.
    RouteRefresh,
    /// RFC 4724; parsed so it can be shown, not acted on.
    GracefulRestart {
        restarted: bool,
        restart_time: u16,
        families: Vec<GracefulRestartFamily>,
    },
    /// RFC 6793.
    FourOctetAs(u32),
    Unknown {
        code: u8,
        value: Vec<u8>,
    },
}

impl Capability {
    pub fn multiprotocol(family: Family) -> Capability {
        let (afi, safi) = family.afi_safi();
        Capability::Multiprotocol { afi, safi }
    }

    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[0, 0]);
        let code = match self {
            Capability::Multiprotocol { afi, safi } => {
                out.extend_from_slice(&afi.to_be_bytes());
                out.extend_from_slice(&[0, *safi]);
                CAP_MULTIPROTOCOL
            }
            Capability::RouteRefresh => CAP_ROUTE_REFRESH,
            Capability::GracefulRestart {
                restarted,
                restart_time,
                families,
            } => {
                let flags: u16 = if *restarted { 0x8000 } else { 0 };
                out.extend_from_slice(&(flags | (restart_time & 0x0fff)).to_be_bytes());
                for f in families {
                    out.extend_from_slice(&f.afi.to_be_bytes());
                    out.push(f.safi);
                    out.push(if f.forwarding_preserved { 0x80 } else { 0 });
                }
                CAP_GRACEFUL_RESTART
            }
            Capability::FourOctetAs(asn) => {
                out.extend_from_slice(&asn.to_be_bytes());
                CAP_FOUR_OCTET_AS
            }
            Capability::Unknown { code, value } => {
                out.extend_from_slice(value);
                *code
            }
        };
        let len = out.len() - start - 2;
        out[start] = code;
        out[start + 1] =
            u8::try_from(len).map_err(|_| EncodeError::CapabilityTooLong { code, len })?;
        Ok(())
    }

    fn decode(code: u8, value: &[u8]) -> Result<Capability, DecodeError> {
        let bad = |what: &str| {
            DecodeError::new(
                Notification::new(code::OPEN, 0, vec![]),
                format!("malformed {what} capability ({} octets)", value.len()),
            )
        };
        Ok(match code {
            CAP_MULTIPROTOCOL => match value {
                [a, b, _, safi] => Capability::Multiprotocol {
                    afi: u16::from_be_bytes([*a, *b]),
                    safi: *safi,
                },
                _ => return Err(bad("multiprotocol")),
            },
            CAP_ROUTE_REFRESH if value.is_empty() => Capability::RouteRefresh,
            CAP_ROUTE_REFRESH => return Err(bad("route refresh")),
            CAP_GRACEFUL_RESTART => {
                let (head, tail) = value
                    .split_first_chunk::<2>()
                    .ok_or_else(|| bad("graceful restart"))?;
                if !tail.len().is_multiple_of(4) {
                    return Err(bad("graceful restart"));
                }
                let word = u16::from_be_bytes(*head);
                Capability::GracefulRestart {
                    restarted: word & 0x8000 != 0,
                    restart_time: word & 0x0fff,
                    families: tail
                        .chunks_exact(4)
                        .map(|c| GracefulRestartFamily {
                            afi: u16::from_be_bytes([c[0], c[1]]),
                            safi: c[2],
                            forwarding_preserved: c[3] & 0x80 != 0,
                        })
                        .collect(),
                }
            }
            CAP_FOUR_OCTET_AS => match value {
                [a, b, c, d] => Capability::FourOctetAs(u32::from_be_bytes([*a, *b, *c, *d])),
                _ => return Err(bad("4-octet AS")),
            },
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        })
    }
}

impl Open {
    /// An OPEN for `local_as`, filling My AS with AS_TRANS when it needs 4 octets.
    pub fn new(
        local_as: u32,
        hold_time: u16,
        bgp_id: Ipv4Addr,
        capabilities: Vec<Capability>,
    ) -> Open {
        Open {
            version: 4,
            my_as: u16::try_from(local_as).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The 4-octet AS capability's value, if the speaker sent one.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// The speaker's real AS: the 4-octet capability when present, else My AS.
    pub fn peer_as(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// Families announced with the multiprotocol capability that vipd knows.
    pub fn families(&self) -> Vec<Family> {
        self.capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol { afi, safi } => Family::from_afi_safi(*afi, *safi),
                _ => None,
            })
            .collect()
    }

    /// True if any multiprotocol capability was sent; without one, IPv4 unicast is implied.
    pub fn has_multiprotocol(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol { .. }))
    }

    pub fn route_refresh(&self) -> bool {
        self.capabilities.contains(&Capability::RouteRefresh)
    }

    /// Capabilities are packed into as few parameters as fit (RFC 5492 allows
    /// either form); the optional parameters must fit their one-octet length.
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.version);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let mut params: Vec<u8> = Vec::new();
        let mut param_start = None;
        let mut cap = Vec::new();
        for c in &self.capabilities {
            cap.clear();
            c.encode(&mut cap)?;
            let fits =
                param_start.is_some_and(|at: usize| params.len() - at - 2 + cap.len() <= 255);
            if !fits {
                param_start = Some(params.len());
                params.extend_from_slice(&[PARAM_CAPABILITIES, 0]);
            }
            params.extend_from_slice(&cap);
            if let Some(at) = param_start {
                params[at + 1] = (params.len() - at - 2) as u8;
            }
        }
        let len = u8::try_from(params.len())
            .map_err(|_| EncodeError::OpenParametersTooLong { len: params.len() })?;
        out.push(len);
        out.extend_from_slice(&params);
        Ok(())
    }

    pub(crate) fn decode_body(body: &[u8]) -> Result<Open, DecodeError> {
        let short = || {
            DecodeError::new(
                Notification::new(
                    code::MESSAGE_HEADER,
                    code::header::BAD_MESSAGE_LENGTH,
                    vec![],
                ),
                "OPEN shorter than its fixed fields".to_string(),
            )
        };
        let (fixed, rest) = body.split_first_chunk::<10>().ok_or_else(short)?;
        let open_err =
            |reason: String| DecodeError::new(Notification::new(code::OPEN, 0, vec![]), reason);
        let opt_len = usize::from(fixed[9]);
        if rest.len() != opt_len {
            return Err(open_err(format!(
                "OPEN optional parameters length {opt_len} disagrees with the {} octets present",
                rest.len()
            )));
        }
        let mut open = Open {
            version: fixed[0],
            my_as: u16::from_be_bytes([fixed[1], fixed[2]]),
            hold_time: u16::from_be_bytes([fixed[3], fixed[4]]),
            bgp_id: Ipv4Addr::new(fixed[5], fixed[6], fixed[7], fixed[8]),
            capabilities: Vec::new(),
        };
        let mut params = rest;
        while !params.is_empty() {
            let (ptype, plen, value, tail) = tlv(params)
                .ok_or_else(|| open_err("OPEN optional parameter overruns the list".into()))?;
            if ptype != PARAM_CAPABILITIES {
                return Err(DecodeError::new(
                    Notification::new(
                        code::OPEN,
                        code::open::UNSUPPORTED_OPTIONAL_PARAMETER,
                        vec![],
                    ),
                    format!(
                        "OPEN carries unsupported optional parameter type {ptype} ({plen} octets)"
                    ),
                ));
            }
            let mut caps = value;
            while !caps.is_empty() {
                let (ccode, _, cvalue, ctail) = tlv(caps)
                    .ok_or_else(|| open_err("capability overruns its parameter".into()))?;
                open.capabilities.push(Capability::decode(ccode, cvalue)?);
                caps = ctail;
            }
            params = tail;
        }
        Ok(open)
    }
}

/// Splits a type/length/value with 1-octet type and length from the front of `buf`.
fn tlv(buf: &[u8]) -> Option<(u8, u8, &[u8], &[u8])> {
    let (&[t, l], rest) = buf.split_first_chunk::<2>()?;
    let value = rest.get(..usize::from(l))?;
    let tail = rest.get(usize::from(l)..)?;
    Some((t, l, value, tail))
}
