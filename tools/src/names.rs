//! Lab names, the namespace names derived from them, and the log directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Result};

use crate::netns;

/// Every lab namespace starts with this; `down_all` only touches these.
pub const NS_PREFIX: &str = "vl-";
const MAX_NAME_LEN: usize = 16;

pub(crate) fn validate_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        bail!(
            "invalid lab name {name:?}: use 1 to {MAX_NAME_LEN} lowercase ASCII letters or digits \
             (it becomes part of namespace names vl-<lab>-<role>)"
        );
    }
    Ok(())
}

pub(crate) fn lab_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{NS_PREFIX}{name}"))
}

/// Namespaces whose names start with `vl-`.
pub(crate) fn all_lab_namespaces() -> Result<Vec<String>> {
    Ok(netns::list()?
        .into_iter()
        .filter(|n| n.starts_with(NS_PREFIX))
        .collect())
}

/// Lab name of a lab namespace `vl-<lab>-<role>`.
pub(crate) fn lab_of(ns: &str) -> Option<&str> {
    let (lab, _role) = ns.strip_prefix(NS_PREFIX)?.rsplit_once('-')?;
    Some(lab)
}

pub(crate) fn lab_namespaces(name: &str) -> Result<Vec<String>> {
    Ok(all_lab_namespaces()?
        .into_iter()
        .filter(|ns| lab_of(ns) == Some(name))
        .collect())
}

/// A lab name unique per process and call, derived from `test` (e.g. the
/// test's name): up to 6 of its letters, then the pid (7 digits) and a
/// 3-character counter. Because the tag is letters only and the rest has a
/// fixed length starting with a digit, no result is a prefix of another.
pub fn unique_name(test: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let mut tag: String = test
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .take(6)
        .collect();
    if tag.is_empty() {
        tag.push('t');
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) % (36 * 36 * 36);
    let digit = |d: usize| char::from_digit(u32::try_from(d).unwrap_or(0), 36).unwrap_or('0');
    format!(
        "{tag}{:07}{}{}{}",
        std::process::id() % 10_000_000,
        digit(n / 1296),
        digit(n / 36 % 36),
        digit(n % 36)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_are_valid_distinct_and_prefix_free() {
        let names: Vec<String> = ["drain", "drain", "a", "abc123def", "", "wrr-weights"]
            .iter()
            .map(|t| unique_name(t))
            .collect();
        for (i, a) in names.iter().enumerate() {
            validate_name(a).unwrap();
            for (j, b) in names.iter().enumerate() {
                if i != j {
                    assert!(!b.starts_with(a.as_str()), "{a} is a prefix of {b}");
                }
            }
        }
        assert!(names[0].starts_with("drain"));
        assert!(names[4].starts_with('t'));
    }

    #[test]
    fn lab_name_is_recovered_from_namespace() {
        assert_eq!(lab_of("vl-abc0001234000-lb1"), Some("abc0001234000"));
        assert_eq!(lab_of("vl-x-client"), Some("x"));
        assert_eq!(lab_of("other-ns"), None);
        assert_eq!(lab_of("vl-nodash"), None);
    }
}
