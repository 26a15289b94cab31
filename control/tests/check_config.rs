//! `vipd --check-config`: exit status and what it prints, as an operator sees it.

use std::path::Path;
use std::process::Command;

fn check(path: &Path) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vipd"))
        .arg("--check-config")
        .arg(path)
        .output()
        .expect("run vipd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_contract_validates_and_is_summarised() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/contract.toml");
    let (ok, stdout, stderr) = check(&path);
    assert!(ok, "contract rejected: {stderr}");
    assert!(
        stdout.contains("web 10.123.0.50:80 tcp wrr nat 2 backends"),
        "{stdout}"
    );
}

#[test]
fn a_broken_file_names_file_line_and_field_and_fails() {
    let dir = std::env::temp_dir().join(format!("vipd-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("broken.toml");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/contract.toml"),
    )
    .expect("contract")
    .replace("weight = 3", "weight = \"heavy\"")
    .replace("scheduler = \"wrr\"", "scheduler = \"fastest\"");
    std::fs::write(&path, &text).expect("write");
    let (ok, _, stderr) = check(&path);
    std::fs::remove_dir_all(&dir).ok();
    assert!(!ok, "a broken file was accepted");
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect("needle")
    };
    let shown = path.display().to_string();
    for (needle, field) in [
        ("\"heavy\"", "service[0].backend[0].weight"),
        ("\"fastest\"", "service[0].scheduler"),
    ] {
        let expect = format!("{shown}:{}: {field}:", line_of(needle));
        assert!(stderr.contains(&expect), "missing `{expect}` in:\n{stderr}");
    }
}

/// A scratch directory of this test process.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("vipd-check-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn what_is_no_configuration_file_is_named_as_such() {
    let dir = scratch("notfiles");
    let huge = dir.join("huge.toml");
    let f = std::fs::File::create(&huge).expect("create");
    // Sparse: no 17 MiB written, but 17 MiB to read.
    f.set_len(17 << 20).expect("grow");
    let latin1 = dir.join("latin1.toml");
    std::fs::write(&latin1, b"[node]\nname = \"lb1\"\n# caf\xe9\n").expect("write");
    let cases: [(&Path, &str); 4] = [
        (&huge, ":0: is larger than 16 MiB"),
        (&latin1, ":3: is not UTF-8 text: line 3, byte 6 (offset 25)"),
        (Path::new("/dev/zero"), "/dev/zero:0: is a device"),
        (&dir, ":0: is a directory"),
    ];
    for (path, expect) in cases {
        let (ok, _, stderr) = check(path);
        assert!(!ok, "{} accepted", path.display());
        assert!(stderr.contains(expect), "{}: {stderr}", path.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_reader_that_stops_early_is_no_error() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/contract.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vipd"))
        .arg("--check-config")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run vipd");
    // Closed before vipd writes: every write meets a closed pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("vipd exits");
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
