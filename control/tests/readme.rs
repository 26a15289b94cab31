//! The README's operator examples are what the binaries accept: every
//! `vipctl` line parses, and the counter names it gives exist in `vipctl
//! stats` and `/metrics`.

use std::path::Path;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
        .expect("README.md")
}

/// Turns a synopsis (`add|remove`, `[--weight W]`, `a | b`) into concrete
/// argument lists with placeholder values.
fn expand(synopsis: &str) -> Vec<Vec<String>> {
    let value = |w: &str| {
        match w {
            "SERVICE" => "web",
            "ADDR" => "10.0.0.1:80",
            "W" => "2",
            "INSTANCE" => "site-a",
            "PREFIX" => "10.0.0.0/24",
            "IP" => "10.0.0.7",
            "S" => "30",
            other => other,
        }
        .to_string()
    };
    let mut out = Vec::new();
    for alternative in synopsis.split(" | ") {
        let mut words: Vec<&str> = alternative
            .split_whitespace()
            .filter(|w| *w != "vipctl")
            .collect();
        // The test gives its own socket.
        if let Some(i) = words.iter().position(|w| *w == "--socket") {
            words.drain(i..(i + 2).min(words.len()));
        }
        let mut lines: Vec<Vec<String>> = vec![Vec::new()];
        for w in words {
            let w = w.trim_matches(['[', ']']);
            let choices: Vec<String> = w.split('|').map(value).collect();
            lines = lines
                .iter()
                .flat_map(|l| {
                    choices.iter().map(move |c| {
                        let mut l = l.clone();
                        l.push(c.clone());
                        l
                    })
                })
                .collect();
        }
        out.extend(lines);
    }
    out
}

#[test]
fn every_vipctl_example_parses() {
    let text = readme();
    let examples: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("vipctl ") && !l.contains("import-keepalived"))
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .collect();
    assert!(examples.len() >= 8, "README lost its vipctl examples");
    for synopsis in examples {
        for args in expand(synopsis) {
            let out = Command::new(env!("CARGO_BIN_EXE_vipctl"))
                .args(["--socket", "/nonexistent/vipd-readme.sock"])
                .args(&args)
                .output()
                .expect("vipctl runs");
            let err = String::from_utf8_lossy(&out.stderr);
            // Past argument parsing, vipctl fails only on the missing socket.
            assert!(
                err.contains("cannot reach vipd"),
                "README example `vipctl {}` ({synopsis}): {err}",
                args.join(" ")
            );
        }
    }
}

#[test]
fn afxdp_counter_names_exist() {
    let text = readme();
    let para = text
        .split("\n\n")
        .find(|p| p.contains("`afxdp` in `vipctl stats`"))
        .expect("README explains the afxdp counters");
    // What follows is advice, naming config keys.
    let para = para.split("A count that").next().unwrap_or_default();
    let named: Vec<&str> = para.split('`').skip(1).step_by(2).collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/detached_node.toml");
    let cfg = control::config::load(&path).expect("node config");
    let node = control::node::Node::detached(cfg, path);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stats = rt
        .block_on(control::ctl::handle(&node, br#"{"v":1,"cmd":"stats"}"#))
        .result
        .expect("stats");
    let stats: ctlproto::reply::Stats = serde_json::from_value(stats).expect("a stats reply");
    let metrics = rt.block_on(control::metrics::render(&node));
    // The names scripts see in `vipctl --json stats`.
    let afxdp = serde_json::to_value(&stats.afxdp).expect("afxdp encodes");
    let afxdp = afxdp.as_object().expect("afxdp is an object");
    for name in named {
        let known = ["afxdp", "vipctl stats", "/metrics", "cause"].contains(&name)
            || afxdp.contains_key(name)
            || metrics.contains(&format!("{name}\"")) // a label value
            || metrics.contains(&format!("{name}{{")); // a metric name
        assert!(known, "README names `{name}`; vipctl stats has {afxdp:?}");
    }
}
