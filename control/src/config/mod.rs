//! vipd's configuration: a TOML file read into a validated [`Config`].
//!
//! [`load`] and [`parse`] either return a complete, valid configuration or
//! every error found, each naming the file, line, field and what to fix. A
//! configuration is never returned half-read, so a bad file can never be
//! half-applied.

mod build;
mod reader;
mod types;
mod validate;

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

pub use types::*;

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the location is unknown (e.g. the file is unreadable).
    pub line: usize,
    /// Dotted path such as `service[1].backend[0].weight`; empty for errors
    /// about the file as a whole (unreadable, TOML syntax).
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `FILE:LINE: FIELD: MESSAGE` (`FILE:LINE: MESSAGE` without a field).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.field, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a configuration file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    /// One error per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads, parses and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file,
            line: 0,
            field: String::new(),
            message: format!("cannot read the configuration file: {e}"),
        }])),
    }
}

/// Parses and validates configuration text; `file` is used in error messages.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    let mut cx = reader::Ctx::new(file, text);
    let doc = match toml_edit::ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let line = cx.line(e.span()).unwrap_or(0);
            cx.err(
                line,
                "",
                format!("TOML syntax error: {}", e.message().trim_end()),
            );
            return Err(ConfigErrors(cx.errors));
        }
    };
    let root = reader::Tbl::root(doc.as_table(), &mut cx);
    let config = build::config(&mut cx, &root);
    match config {
        Some(c) if cx.errors.is_empty() => Ok(c),
        _ => {
            let mut errors = cx.errors;
            // Stable sort: file order, and read order within a line.
            errors.sort_by_key(|e| e.line);
            Err(ConfigErrors(errors))
        }
    }
}

impl Config {
    /// The VRRP instance that decides whether this node owns `vip`; `None`
    /// means the node owns it outright (or it is no VIP of this node).
    pub fn vip_owner(&self, vip: Ipv4Addr) -> Option<&VrrpInstance> {
        self.vrrp.iter().find(|v| v.vips.contains(&vip))
    }

    /// One line per service: `name vip:port proto scheduler forward N backends`.
    pub fn summary(&self) -> String {
        self.services
            .iter()
            .map(|s| {
                format!(
                    "{} {}:{} {} {} {} {} backend{}\n",
                    s.name,
                    s.vip,
                    s.port,
                    s.protocol,
                    s.scheduler,
                    s.forward,
                    s.backends.len(),
                    if s.backends.len() == 1 { "" } else { "s" }
                )
            })
            .collect()
    }
}
