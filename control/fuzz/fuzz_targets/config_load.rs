//! Any bytes as a vipd configuration file: the loader returns a config or
//! errors, and does not panic. Seeds: `../../configs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = control::config::parse(text, "fuzz.toml");
    }
});
