//! Compiles the XDP steering program (`bpf/steer.c`) into OUT_DIR; the engine
//! embeds the object file.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/steer.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CLANG");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("steer.o");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());

    // Kernel UAPI headers include <asm/types.h>, which lives under the
    // host's multiarch directory on Debian-style systems.
    let multiarch = format!(
        "/usr/include/{}-linux-gnu",
        env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".to_string())
    );

    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I{multiarch}"))
        .args(["-c", src, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "clang failed ({s}) compiling the XDP steering program {src}; \
             it needs the kernel and libbpf headers (apt install libbpf-dev linux-libc-dev)"
        ),
        Err(e) => panic!(
            "cannot run `{clang}` to compile the XDP steering program {src}: {e}; \
             install clang (apt install clang) or point the CLANG environment variable at it"
        ),
    }
}
