//! Any text as a keepalived configuration: the importer does not panic,
//! and a translation it calls complete loads as a vipd config. Seeds:
//! `../tests/fixtures`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let out = control::keepalived::import(&text, "fuzz.conf");
    if out.is_complete() {
        if let Err(e) = control::config::parse(&out.toml, "imported.toml") {
            panic!("complete import does not load:\n{e}\n---\n{}", out.toml);
        }
    }
});
