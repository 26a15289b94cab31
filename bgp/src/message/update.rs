//! UPDATE messages (RFC 4271 §4.3) and End-of-RIB markers (RFC 4724 §2).

use super::attributes::{self, type_code, AttrIssue, ErrorAction, PathAttributes};
use super::mp::MpUnreach;
use super::notification::{code, Notification};
use super::{DecodeError, SessionCtx};
use crate::prefix::{Family, Prefix};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// IPv4 prefixes in the Withdrawn Routes field.
    pub withdrawn: Vec<Prefix>,
    pub attributes: PathAttributes,
    /// IPv4 prefixes in the NLRI field.
    pub nlri: Vec<Prefix>,
    /// RFC 7606 findings that did not reset the session (empty when encoding).
    pub issues: Vec<AttrIssue>,
}

impl Update {
    /// The End-of-RIB marker for `family`.
    pub fn end_of_rib(family: Family) -> Update {
        let mut u = Update::default();
        if family != Family::Ipv4Unicast {
            u.attributes.mp_unreach = Some(MpUnreach {
                family,
                withdrawn: Vec::new(),
            });
        }
        u
    }

    /// The family whose End-of-RIB this UPDATE is, if it is one.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        let a = &self.attributes;
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || !self.issues.is_empty() {
            return None;
        }
        if *a == PathAttributes::default() {
            return Some(Family::Ipv4Unicast);
        }
        let only_unreach = PathAttributes {
            mp_unreach: a.mp_unreach.clone(),
            ..PathAttributes::default()
        };
        match &a.mp_unreach {
            Some(u) if u.withdrawn.is_empty() && *a == only_unreach => Some(u.family),
            _ => None,
        }
    }

    /// True if RFC 7606 says to handle every announced prefix as withdrawn.
    pub fn treat_as_withdraw(&self) -> bool {
        self.issues
            .iter()
            .any(|i| i.action == ErrorAction::TreatAsWithdraw)
    }

    /// Prefixes this UPDATE announces (IPv4 NLRI field and MP_REACH_NLRI).
    pub fn announced(&self) -> impl Iterator<Item = &Prefix> {
        let mp = self.attributes.mp_reach.iter().flat_map(|r| r.nlri.iter());
        self.nlri.iter().chain(mp)
    }

    /// Prefixes this UPDATE withdraws (Withdrawn Routes field and MP_UNREACH_NLRI).
    pub fn withdrawn_all(&self) -> impl Iterator<Item = &Prefix> {
        let mp = self
            .attributes
            .mp_unreach
            .iter()
            .flat_map(|u| u.withdrawn.iter());
        self.withdrawn.iter().chain(mp)
    }

    pub(crate) fn encode_body(&self, ctx: &SessionCtx, out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        self.withdrawn.iter().for_each(|p| p.encode(out));
        let wlen = (out.len() - at - 2) as u16;
        out[at..at + 2].copy_from_slice(&wlen.to_be_bytes());
        let at = out.len();
        out.extend_from_slice(&[0, 0]);
        self.attributes.encode(ctx, out);
        let alen = (out.len() - at - 2) as u16;
        out[at..at + 2].copy_from_slice(&alen.to_be_bytes());
        self.nlri.iter().for_each(|p| p.encode(out));
    }

    pub(crate) fn decode_body(body: &[u8], ctx: &SessionCtx) -> Result<Update, DecodeError> {
        let malformed = |reason: String| {
            DecodeError::new(
                Notification::new(code::UPDATE, code::update::MALFORMED_ATTRIBUTE_LIST, vec![]),
                reason,
            )
        };
        let invalid_network = |field: &str, e| {
            DecodeError::new(
                Notification::new(code::UPDATE, code::update::INVALID_NETWORK_FIELD, vec![]),
                format!("UPDATE {field} field is malformed: {e}"),
            )
        };
        let (wlen, rest) = body
            .split_first_chunk::<2>()
            .ok_or_else(|| malformed("UPDATE too short for its withdrawn routes length".into()))?;
        let wlen = usize::from(u16::from_be_bytes(*wlen));
        let withdrawn = rest.get(..wlen).ok_or_else(|| {
            malformed(format!(
                "withdrawn routes length {wlen} overruns the UPDATE"
            ))
        })?;
        let rest = rest.get(wlen..).unwrap_or_default();
        let (alen, rest) = rest
            .split_first_chunk::<2>()
            .ok_or_else(|| malformed("UPDATE too short for its total attribute length".into()))?;
        let alen = usize::from(u16::from_be_bytes(*alen));
        let attrs = rest.get(..alen).ok_or_else(|| {
            malformed(format!("total attribute length {alen} overruns the UPDATE"))
        })?;
        let nlri = rest.get(alen..).unwrap_or_default();

        let withdrawn = Prefix::decode_all(withdrawn, Family::Ipv4Unicast)
            .map_err(|e| invalid_network("withdrawn routes", e))?;
        let nlri = Prefix::decode_all(nlri, Family::Ipv4Unicast)
            .map_err(|e| invalid_network("NLRI", e))?;
        let decoded = attributes::decode(attrs, ctx)?;
        let mut u = Update {
            withdrawn,
            attributes: decoded.attrs,
            nlri,
            issues: decoded.issues,
        };
        u.check_mandatory();
        Ok(u)
    }

    /// RFC 7606 §3(d): missing well-known mandatory attributes with NLRI present
    /// means treat-as-withdraw.
    fn check_mandatory(&mut self) {
        let a = &self.attributes;
        let mp_nlri = a.mp_reach.as_ref().is_some_and(|r| !r.nlri.is_empty());
        if self.nlri.is_empty() && !mp_nlri {
            return;
        }
        let mut missing = Vec::new();
        if a.origin.is_none() {
            missing.push((type_code::ORIGIN, "ORIGIN"));
        }
        if a.as_path.is_none() {
            missing.push((type_code::AS_PATH, "AS_PATH"));
        }
        if !self.nlri.is_empty() && a.next_hop.is_none() {
            missing.push((type_code::NEXT_HOP, "NEXT_HOP"));
        }
        for (t, name) in missing {
            // A malformed (already reported) attribute is also absent; say it once.
            if self.issues.iter().any(|i| i.type_code == t) {
                continue;
            }
            self.issues.push(AttrIssue {
                type_code: t,
                action: ErrorAction::TreatAsWithdraw,
                reason: format!("mandatory attribute {name} is missing"),
            });
        }
    }
}
