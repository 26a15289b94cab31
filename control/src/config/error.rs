//! What `load` and `parse` report: every problem, each with its place.

use std::fmt;

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
