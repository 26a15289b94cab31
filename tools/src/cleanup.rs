//! Removing labs, also those a killed run left behind.

use anyhow::{bail, Result};

use crate::names::{all_lab_namespaces, lab_dir, lab_namespaces, lab_of, validate_name, NS_PREFIX};
use crate::netns;

/// Remove lab `name` (namespaces, processes in them, log directory), whether
/// or not it is complete. Returns whether there was anything to remove.
pub fn down(name: &str) -> Result<bool> {
    validate_name(name)?;
    let namespaces = lab_namespaces(name)?;
    let dir = lab_dir(name);
    let found = !namespaces.is_empty() || dir.exists();
    let mut failures = Vec::new();
    for ns in &namespaces {
        if let Err(e) = netns::remove(ns) {
            failures.push(format!("{ns}: {e:#}"));
        }
    }
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            failures.push(format!("{}: {e}", dir.display()));
        }
    }
    if !failures.is_empty() {
        bail!(
            "lab {name}: could not remove {}; check that you are root",
            failures.join("; ")
        );
    }
    Ok(found)
}

/// Remove every lab (optionally only those whose name starts with
/// `prefix_filter`): namespaces `vl-*` and their log directories. Returns how
/// many labs were removed.
pub fn down_all(prefix_filter: Option<&str>) -> Result<usize> {
    let mut names: Vec<String> = all_lab_namespaces()?
        .iter()
        .filter_map(|ns| lab_of(ns))
        .map(str::to_string)
        .collect();
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(lab) = file_name.to_str().and_then(|n| n.strip_prefix(NS_PREFIX)) else {
                continue;
            };
            if validate_name(lab).is_ok() && entry.path().is_dir() {
                names.push(lab.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    let mut removed = 0;
    for name in names {
        if prefix_filter.is_some_and(|p| !name.starts_with(p)) {
            continue;
        }
        if down(&name)? {
            removed += 1;
        }
    }
    Ok(removed)
}
