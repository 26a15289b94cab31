//! The body digest an HTTP or HTTPS check compares: MD5 (32 hex characters,
//! as keepalived's HTTP_GET and SSL_GET write it) or SHA-256 (64).

use std::fmt;
use std::str::FromStr;

use md5::{Digest, Md5};
use sha2::Sha256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyDigest {
    Md5([u8; 16]),
    Sha256([u8; 32]),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("{0} characters: give 32 hex characters (MD5, as md5sum prints) or 64 (SHA-256, as sha256sum prints)")]
    Length(usize),
    #[error("not hexadecimal: use only 0-9 and a-f")]
    NotHex,
}

impl BodyDigest {
    /// The digest of `body` by the same algorithm as `self`.
    pub fn of_same_kind(&self, body: &[u8]) -> BodyDigest {
        match self {
            BodyDigest::Md5(_) => BodyDigest::Md5(Md5::digest(body).into()),
            BodyDigest::Sha256(_) => BodyDigest::Sha256(Sha256::digest(body).into()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            BodyDigest::Md5(d) => d,
            BodyDigest::Sha256(d) => d,
        }
    }

    pub fn algorithm(&self) -> &'static str {
        match self {
            BodyDigest::Md5(_) => "MD5",
            BodyDigest::Sha256(_) => "SHA-256",
        }
    }
}

impl fmt::Display for BodyDigest {
    /// Lower-case hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.bytes().iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl FromStr for BodyDigest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, DigestError> {
        fn fill<const N: usize>(s: &str) -> Result<[u8; N], DigestError> {
            let mut out = [0u8; N];
            for (i, byte) in out.iter_mut().enumerate() {
                let pair = s.get(2 * i..2 * i + 2).ok_or(DigestError::NotHex)?;
                *byte = u8::from_str_radix(pair, 16).map_err(|_| DigestError::NotHex)?;
            }
            Ok(out)
        }
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestError::NotHex);
        }
        match s.len() {
            32 => fill(s).map(BodyDigest::Md5),
            64 => fill(s).map(BodyDigest::Sha256),
            n => Err(DigestError::Length(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_lengths_and_round_trips() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        let d: BodyDigest = md5.parse().expect("md5");
        assert_eq!(d.to_string(), md5);
        assert_eq!(d.of_same_kind(b""), d);
        let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d: BodyDigest = sha.to_uppercase().parse().expect("sha-256");
        assert_eq!(d.to_string(), sha);
        assert_eq!(d.of_same_kind(b""), d);
        assert_eq!(d.algorithm(), "SHA-256");
    }

    #[test]
    fn rejects_other_text() {
        assert_eq!("abc".parse::<BodyDigest>(), Err(DigestError::Length(3)));
        assert_eq!(
            "zz1d8cd98f00b204e9800998ecf8427e".parse::<BodyDigest>(),
            Err(DigestError::NotHex)
        );
        assert_eq!(
            "é41d8cd98f00b204e9800998ecf8427".parse::<BodyDigest>(),
            Err(DigestError::NotHex)
        );
    }
}
