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

/// Largest configuration file read; real ones are a few KiB, so a larger
/// one is the wrong file (a log, an image, `/dev/zero`), not a config.
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Reads, parses and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = read(path).map_err(|(line, message)| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            line,
            field: String::new(),
            message,
        }])
    })?;
    parse(&text, &file)
}

/// The file's text, or why it cannot be a configuration file (and the line
/// where it stops being one, 0 for the whole file).
fn read(path: &Path) -> Result<String, (usize, String)> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let cannot = |e: std::io::Error| (0, format!("cannot read the configuration file: {e}"));
    let kind = std::fs::metadata(path).map_err(cannot)?.file_type();
    if kind.is_dir() {
        return Err((
            0,
            "is a directory; give the path of the TOML configuration file in it".into(),
        ));
    }
    if kind.is_char_device() || kind.is_block_device() {
        return Err((
            0,
            "is a device, not a configuration file; give the path of a TOML file".into(),
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err((
            0,
            format!(
                "is larger than {} MiB, far more than any configuration; is it the right file?",
                MAX_CONFIG_BYTES >> 20
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let good = &e.as_bytes()[..at];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let column = at - good.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) + 1;
        (
            line,
            format!(
                "is not UTF-8 text: line {line}, byte {column} (offset {at}) is not valid UTF-8; save the file as UTF-8"
            ),
        )
    })
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
