//! AS_PATH values and the RFC 6793 AS4_PATH reconstruction for 2-octet sessions.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

impl SegmentKind {
    pub(crate) fn from_u8(v: u8) -> Option<SegmentKind> {
        match v {
            1 => Some(SegmentKind::Set),
            2 => Some(SegmentKind::Sequence),
            3 => Some(SegmentKind::ConfedSequence),
            4 => Some(SegmentKind::ConfedSet),
            _ => None,
        }
    }

    fn is_confed(self) -> bool {
        matches!(self, SegmentKind::ConfedSequence | SegmentKind::ConfedSet)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsSegment {
    pub kind: SegmentKind,
    pub asns: Vec<u32>,
}

/// An AS path with real (4-octet) AS numbers, whatever the session's encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

/// A malformed AS_PATH or AS4_PATH value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AsPathError {
    Overrun,
    BadSegmentType(u8),
    EmptySegment,
}

impl fmt::Display for AsPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsPathError::Overrun => f.write_str("a segment runs past the end of the attribute"),
            AsPathError::BadSegmentType(t) => write!(f, "unknown segment type {t}"),
            AsPathError::EmptySegment => f.write_str("a segment has zero AS numbers"),
        }
    }
}

impl AsPath {
    /// A path of one AS_SEQUENCE.
    pub fn sequence(asns: Vec<u32>) -> AsPath {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentKind::Sequence,
                asns,
            }],
        }
    }

    /// Path length as used for best-path selection and RFC 6793 merging: a set
    /// counts one, confederation segments count zero.
    pub fn count(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentKind::Sequence => s.asns.len(),
                SegmentKind::Set => 1,
                _ => 0,
            })
            .sum()
    }

    /// The first AS of the path, i.e. the neighbour AS on an eBGP session.
    pub fn first_as(&self) -> Option<u32> {
        let s = self.segments.first()?;
        match s.kind {
            SegmentKind::Sequence => s.asns.first().copied(),
            _ => None,
        }
    }

    pub fn has_four_octet(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.asns.iter().any(|a| *a > u32::from(u16::MAX)))
    }

    /// Puts `asn` in front `times` times, merging into a leading AS_SEQUENCE.
    pub fn prepend(&mut self, asn: u32, times: usize) {
        match self.segments.first_mut() {
            Some(s) if s.kind == SegmentKind::Sequence => {
                s.asns.splice(0..0, std::iter::repeat_n(asn, times));
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![asn; times],
                },
            ),
        }
    }

    pub(crate) fn decode(mut buf: &[u8], four_octet: bool) -> Result<AsPath, AsPathError> {
        let width = if four_octet { 4 } else { 2 };
        let mut segments = Vec::new();
        while !buf.is_empty() {
            let (&[t, n], rest) = buf.split_first_chunk::<2>().ok_or(AsPathError::Overrun)?;
            let kind = SegmentKind::from_u8(t).ok_or(AsPathError::BadSegmentType(t))?;
            if n == 0 {
                return Err(AsPathError::EmptySegment);
            }
            let bytes = usize::from(n) * width;
            let body = rest.get(..bytes).ok_or(AsPathError::Overrun)?;
            let asns = body
                .chunks_exact(width)
                .map(|c| match c {
                    [a, b] => u32::from(u16::from_be_bytes([*a, *b])),
                    [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
                    _ => 0,
                })
                .collect();
            segments.push(AsSegment { kind, asns });
            buf = rest.get(bytes..).unwrap_or_default();
        }
        Ok(AsPath { segments })
    }

    /// Encodes with 4-octet or 2-octet numbers; 2-octet encoding writes AS_TRANS
    /// for numbers that do not fit. Segments longer than 255 are split.
    pub(crate) fn encode(&self, four_octet: bool, skip_confed: bool, out: &mut Vec<u8>) {
        for s in &self.segments {
            if skip_confed && s.kind.is_confed() {
                continue;
            }
            for chunk in s.asns.chunks(255) {
                out.push(s.kind as u8);
                out.push(chunk.len() as u8);
                for a in chunk {
                    if four_octet {
                        out.extend_from_slice(&a.to_be_bytes());
                    } else {
                        let v = u16::try_from(*a).unwrap_or(super::open::AS_TRANS);
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
            }
        }
    }

    /// RFC 6793 §4.2.3: rebuilds the real path from AS_PATH and AS4_PATH.
    pub(crate) fn merge_as4(&self, as4: &AsPath) -> AsPath {
        let n2 = self.count();
        let n4 = as4.count();
        if n2 < n4 {
            return self.clone();
        }
        let mut keep = n2 - n4;
        let mut segments = Vec::new();
        for s in &self.segments {
            if keep == 0 {
                break;
            }
            match s.kind {
                SegmentKind::Sequence => {
                    let take = keep.min(s.asns.len());
                    segments.push(AsSegment {
                        kind: s.kind,
                        asns: s.asns[..take].to_vec(),
                    });
                    keep -= take;
                }
                SegmentKind::Set => {
                    segments.push(s.clone());
                    keep -= 1;
                }
                _ => segments.push(s.clone()),
            }
        }
        segments.extend(as4.segments.iter().cloned());
        AsPath { segments }
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let list = s
                .asns
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" ");
            match s.kind {
                SegmentKind::Sequence => f.write_str(&list)?,
                SegmentKind::Set => write!(f, "{{{list}}}")?,
                SegmentKind::ConfedSequence => write!(f, "({list})")?,
                SegmentKind::ConfedSet => write!(f, "[{list}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as4_merge_keeps_leading_two_octet_hops() {
        // A 2-octet speaker (65001) prepended itself in front of a 4-octet path.
        let two = AsPath::sequence(vec![65001, 23456, 23456]);
        let four = AsPath::sequence(vec![4_200_000_001, 4_200_000_002]);
        let merged = two.merge_as4(&four);
        assert_eq!(merged.to_string(), "65001 4200000001 4200000002");
        assert_eq!(merged.count(), 3);
    }

    #[test]
    fn as4_path_longer_than_as_path_is_ignored() {
        let two = AsPath::sequence(vec![23456]);
        let four = AsPath::sequence(vec![4_200_000_001, 4_200_000_002]);
        assert_eq!(two.merge_as4(&four), two);
    }

    #[test]
    fn prepend_merges_into_leading_sequence() {
        let mut p = AsPath::sequence(vec![3, 4]);
        p.prepend(1, 2);
        assert_eq!(p.to_string(), "1 1 3 4");
        let mut q = AsPath::default();
        q.prepend(7, 1);
        assert_eq!(q.first_as(), Some(7));
    }
}
