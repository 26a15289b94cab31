//! Unpredictable bits from the standard library's randomly keyed hasher:
//! enough for probe tokens and starting points, which must not repeat
//! across runs or nodes; nothing here is a secret.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

/// Fresh bits, different on every call.
pub(crate) fn random(salt: impl Hash) -> u64 {
    RandomState::new().hash_one((salt, std::time::SystemTime::now()))
}
