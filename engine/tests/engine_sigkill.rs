//! A SIGKILLed dataplane leaves no XDP program behind (the program is held
//! by a bpf_link that dies with the process), so a restarted vipd can attach
//! again (needs root).
//!
//! Runs without the test harness: the same binary is the parent (builds the
//! namespaces, kills the child) and, when `VIPD_SIGKILL_CHILD` names a
//! namespace, the child that runs the engine there until killed.

mod engine_common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use engine::{Engine, EngineConfig, ForwardHandler};
use engine_common::*;

const CHILD_ENV: &str = "VIPD_SIGKILL_CHILD";

fn child(ns: String) -> ! {
    let netns = Netns { name: ns };
    let engine = netns.run(|| {
        let cfg = EngineConfig {
            interfaces: vec!["l0".into(), "l1".into()],
            ..EngineConfig::default()
        };
        Engine::start(&cfg, |_, _| ForwardHandler::pair([[0; 6]; 2], [[0; 6]; 2]))
    });
    // The parent owns the namespace; the child must not delete it.
    std::mem::forget(netns);
    match engine {
        Ok(_engine) => {
            println!("ready");
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            println!("failed: {e}");
            std::process::exit(1);
        }
    }
}

fn killed_process_leaves_no_program() -> Result<(), String> {
    let lab = Lab::new("ek", 1);
    let mut proc = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .env(CHILD_ENV, &lab.l.name)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn child: {e}"))?;
    let mut line = String::new();
    let stdout = proc.stdout.take().ok_or("no child stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if line.trim() != "ready" {
        let _ = proc.kill();
        return Err(format!("child did not start the engine: {line}"));
    }
    if !(Lab::has_xdp(&lab.l, "l0") && Lab::has_xdp(&lab.l, "l1")) {
        let _ = proc.kill();
        return Err("engine running but no XDP program attached".into());
    }
    proc.kill().map_err(|e| format!("SIGKILL child: {e}"))?;
    proc.wait().map_err(|e| e.to_string())?;
    let gone = wait_for(Duration::from_secs(10), || {
        !Lab::has_xdp(&lab.l, "l0") && !Lab::has_xdp(&lab.l, "l1")
    });
    if !gone {
        return Err("XDP program still attached after SIGKILL".into());
    }
    // And a new engine attaches again.
    let engine = lab
        .l
        .run(|| {
            let cfg = EngineConfig {
                interfaces: vec!["l0".into(), "l1".into()],
                ..EngineConfig::default()
            };
            Engine::start(&cfg, |_, _| ForwardHandler::pair([[0; 6]; 2], [[0; 6]; 2]))
        })
        .map_err(|e| format!("restart after SIGKILL: {e}"))?;
    engine.stop();
    Ok(())
}

fn main() {
    if let Ok(ns) = std::env::var(CHILD_ENV) {
        child(ns);
    }
    // `cargo test -- --list` and filters from other suites: nothing to list.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // A lab test, like those the harnessed suites ignore without `lab`.
    if !cfg!(feature = "lab")
        && !std::env::args().any(|a| a == "--include-ignored" || a == "--ignored")
    {
        println!(
            "test killed_process_leaves_no_program ... ignored, lab: needs root and network namespaces; scripts/test runs it\n\n0 passed, 0 failed, 1 ignored"
        );
        return;
    }
    match killed_process_leaves_no_program() {
        Ok(()) => println!("test killed_process_leaves_no_program ... ok\n\n1 passed, 0 failed"),
        Err(e) => {
            println!("test killed_process_leaves_no_program ... FAILED: {e}\n\n0 passed, 1 failed");
            std::process::exit(1);
        }
    }
}
