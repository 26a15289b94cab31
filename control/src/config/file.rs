//! Reading a configuration file from disk: refuses what cannot be one
//! (a directory, a device, a huge or non-UTF-8 file) with a message that
//! says what to give instead.

use std::path::Path;

use super::{parse, Config, ConfigError, ConfigErrors};

/// Largest configuration file read; real ones are a few KiB, so a larger
/// one is the wrong file (a log, an image, `/dev/zero`), not a config.
const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Reads, parses and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = read(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            line: e.line(),
            field: String::new(),
            message: e.to_string(),
        }])
    })?;
    parse(&text, &file)
}

/// Why a file cannot be a configuration file.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("cannot read the configuration file: {0}")]
    Io(#[from] std::io::Error),
    #[error("is a directory; give the path of the TOML configuration file in it")]
    Directory,
    #[error("is a device, not a configuration file; give the path of a TOML file")]
    Device,
    #[error(
        "is larger than {} MiB, far more than any configuration; is it the right file?",
        MAX_CONFIG_BYTES >> 20
    )]
    TooLarge,
    #[error("is not UTF-8 text: line {line}, byte {column} (offset {offset}) is not valid UTF-8; save the file as UTF-8")]
    NotUtf8 {
        line: usize,
        column: usize,
        offset: usize,
    },
}

impl FileError {
    /// Where the file stops being one: 0 for the whole file.
    fn line(&self) -> usize {
        match self {
            FileError::NotUtf8 { line, .. } => *line,
            _ => 0,
        }
    }
}

/// The file's text, or why it cannot be a configuration file.
fn read(path: &Path) -> Result<String, FileError> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    let kind = std::fs::metadata(path)?.file_type();
    if kind.is_dir() {
        return Err(FileError::Directory);
    }
    if kind.is_char_device() || kind.is_block_device() {
        return Err(FileError::Device);
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(FileError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let good = &e.as_bytes()[..offset];
        FileError::NotUtf8 {
            line: good.iter().filter(|b| **b == b'\n').count() + 1,
            column: offset - good.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1) + 1,
            offset,
        }
    })
}
