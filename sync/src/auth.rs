//! HMAC-SHA256 over every byte of a message before its tag. The key is
//! shared by the nodes of a site; whoever holds it may speak for any node
//! id, so the key, not the source address, is what makes a datagram ours.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::SyncError;

/// Length of the tag that closes every message.
pub const TAG_LEN: usize = 32;
/// Shortest key accepted: below 128 bits a captured datagram could be
/// brute-forced offline.
pub const MIN_KEY_LEN: usize = 16;

/// A keyed HMAC state, cloned for each message so the key schedule runs
/// once.
#[derive(Clone)]
pub(crate) struct Key(Hmac<Sha256>);

impl Key {
    pub(crate) fn new(key: &[u8]) -> Result<Key, SyncError> {
        if key.len() < MIN_KEY_LEN {
            return Err(SyncError::KeyTooShort(key.len()));
        }
        // HMAC takes keys of any length: this never fails.
        Hmac::<Sha256>::new_from_slice(key)
            .map(Key)
            .map_err(|_| SyncError::KeyTooShort(key.len()))
    }

    pub(crate) fn tag(&self, data: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.0.clone();
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Constant-time comparison, so timing tells a forger nothing about
    /// how many tag bytes were right.
    pub(crate) fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(data);
        mac.verify_slice(tag).is_ok()
    }
}
