//! Compiles the generator, sink, ceiling and lookup-probe XDP programs (`bpf/*.c`) into
//! OUT_DIR; the benchmark embeds the object files.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const PROGRAMS: [&str; 4] = ["gen", "sink", "ceiling", "lookup"];

fn main() {
    println!("cargo:rerun-if-env-changed=CLANG");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    // Kernel UAPI headers include <asm/types.h> from the multiarch directory.
    let multiarch = format!(
        "/usr/include/{}-linux-gnu",
        env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".to_string())
    );
    for name in PROGRAMS {
        let src = format!("bpf/{name}.c");
        println!("cargo:rerun-if-changed={src}");
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
            .arg(format!("-I{multiarch}"))
            .args(["-c", &src, "-o"])
            .arg(out_dir.join(format!("{name}.o")))
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!(
                "clang failed ({s}) compiling the XDP program {src}; it needs the kernel and \
                 libbpf headers (apt install libbpf-dev linux-libc-dev)"
            ),
            Err(e) => panic!(
                "cannot run `{clang}` to compile the XDP program {src}: {e}; install clang \
                 (apt install clang) or point the CLANG environment variable at it"
            ),
        }
    }
}
