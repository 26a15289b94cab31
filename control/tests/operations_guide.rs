//! docs/operations.md says only what the tools accept. Every fenced snippet
//! is checked by what it is, named by its info string:
//!
//! - `toml vipd-config`: loaded by vipd's config loader without an error;
//! - `bird`: parsed by BIRD (`bird -p`);
//! - `frr`: checked by FRR's vtysh (`vtysh --dryrun`);
//! - `sh vipctl`: every line parsed by vipctl, which then fails only for
//!   want of a running node;
//! - `sysctl`: every name exists under /proc/sys;
//! - `promql`: every metric name and fixed label value is one vipd exports.
//!
//! A snippet with any other info string fails, so nothing in the guide goes
//! unchecked. Metric names anywhere in the guide's text are checked too.
//!
//! What this does not reach: the guide's advice on bonding and team
//! devices is prose only, as the kernels the tests run on here have neither
//! driver; no snippet runs vipd on a bond.
//!
//! `needs=FEATURE` marks a snippet written for a feature vipd does not have
//! yet. Until it has it, the snippet must fail only for that feature's
//! absence (and hold without it); once it has it, the marker changes
//! nothing and the snippet is checked like any other:
//!
//! - `needs=bfd`: the `bfd` key of `[[bgp.peer]]`;
//! - `needs=node-drain`: the `vipctl node` verbs and the `drain` keys of
//!   `[bgp]`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const GUIDE: &str = "docs/operations.md";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn guide() -> String {
    std::fs::read_to_string(root().join(GUIDE)).expect("docs/operations.md")
}

struct Snippet {
    /// Line of the opening fence, 1-based.
    line: usize,
    /// The info string without `needs=` markers.
    kind: String,
    needs: Option<String>,
    body: String,
}

impl Snippet {
    fn place(&self) -> String {
        format!("{GUIDE}:{} ({})", self.line, self.kind)
    }

    /// Lines that are neither blank nor comments.
    fn lines(&self) -> impl Iterator<Item = &str> {
        self.body
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    }
}

/// Every fenced block, indented ones (inside list items) included.
fn snippets(text: &str) -> Vec<Snippet> {
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, String)> = None;
    let mut body = String::new();
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        match &open {
            None if trimmed.starts_with("```") => {
                open = Some((i + 1, indent, trimmed.trim_start_matches('`').trim().into()));
                body.clear();
            }
            None => {}
            Some(_) if trimmed.starts_with("```") => {
                let Some((line, _, info)) = open.take() else {
                    continue;
                };
                let (needs, kind): (Vec<&str>, Vec<&str>) = info
                    .split_whitespace()
                    .partition(|w| w.starts_with("needs="));
                out.push(Snippet {
                    line,
                    kind: kind.join(" "),
                    needs: needs
                        .first()
                        .map(|n| n.trim_start_matches("needs=").to_string()),
                    body: std::mem::take(&mut body),
                });
            }
            Some((_, indent, _)) => {
                // The fence's indentation, no more, is the list item's.
                let spaces = line.len() - line.trim_start_matches(' ').len();
                body += &line[spaces.min(*indent)..];
                body.push('\n');
            }
        }
    }
    assert!(open.is_none(), "{GUIDE}: a fenced block is never closed");
    out
}

/// The body in a file of its own, for tools that read files.
fn scratch_file(s: &Snippet) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "vipd-guide-{}-{}-line{}.conf",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        s.line
    ));
    std::fs::write(&path, &s.body).expect("write a scratch file");
    path
}

/// Runs a router's checker; its absence is a missing package, said so.
fn run(program: &str, args: &[&std::ffi::OsStr], package: &str) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install {package} (scripts/install-deps)")
        })
}

/// What a tool printed, both streams.
fn both(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// What a check found wrong, or `Ok` with notes on snippets that wait for
/// a feature.
type Checked = Result<Vec<String>, String>;

/// The configuration keys each `needs=` feature brings.
const FEATURE_KEYS: [(&str, &[&str]); 2] = [
    ("bfd", &["bfd"]),
    ("node-drain", &["drain", "drain_med", "drain_prepend"]),
];

fn check_vipd_config(s: &Snippet) -> Checked {
    let file = s.place();
    let errors = match control::config::parse(&s.body, &file) {
        Ok(_) => return Ok(Vec::new()),
        Err(e) => e,
    };
    let keys = FEATURE_KEYS
        .iter()
        .find(|(f, _)| Some(*f) == s.needs.as_deref())
        .map_or(&[][..], |(_, k)| *k);
    let unknown = |e: &control::config::ConfigError| {
        keys.iter()
            .any(|k| e.message.starts_with(&format!("unknown key `{k}`")))
    };
    if keys.is_empty() || !errors.0.iter().all(unknown) {
        return Err(format!("{file}: vipd rejects it:\n{errors}"));
    }
    // vipd lacks the feature yet: the rest of the snippet must still hold.
    let without: String = s
        .body
        .lines()
        .filter(|l| {
            let key = l.split('=').next().unwrap_or_default().trim();
            !keys.contains(&key)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    match control::config::parse(&without, &file) {
        Ok(_) => Ok(vec![format!(
            "{file}: waits for vipd's {} keys; the rest loads",
            keys.join(", ")
        )]),
        Err(e) => Err(format!(
            "{file}: without its {} keys vipd still rejects it:\n{e}",
            keys.join(", ")
        )),
    }
}

fn check_bird(s: &Snippet) -> Checked {
    let path = scratch_file(s);
    let out = run(
        "bird",
        &["-p".as_ref(), "-c".as_ref(), path.as_os_str()],
        "bird2",
    );
    let _ = std::fs::remove_file(&path);
    if !out.status.success() {
        return Err(format!("{}: BIRD rejects it: {}", s.place(), both(&out)));
    }
    Ok(Vec::new())
}

fn check_frr(s: &Snippet) -> Checked {
    let path = scratch_file(s);
    let out = run(
        "vtysh",
        &["--dryrun".as_ref(), "-f".as_ref(), path.as_os_str()],
        "frr",
    );
    let _ = std::fs::remove_file(&path);
    let text = both(&out);
    // An unreadable /etc/frr/vtysh.conf (as a normal user) is only a warning.
    let complaints = text
        .lines()
        .any(|l| !l.contains("vtysh.conf") && !l.trim().is_empty());
    if !out.status.success() || complaints {
        return Err(format!("{}: FRR rejects it: {text}", s.place()));
    }
    Ok(Vec::new())
}

fn check_vipctl(s: &Snippet) -> Checked {
    let mut notes = Vec::new();
    let mut lines = 0;
    for line in s.lines() {
        lines += 1;
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"vipctl") {
            return Err(format!(
                "{}: `{line}` is not a vipctl command; other commands belong in the prose",
                s.place()
            ));
        }
        words.remove(0);
        // The test gives its own socket, where no node listens.
        if let Some(i) = words.iter().position(|w| *w == "--socket") {
            words.drain(i..(i + 2).min(words.len()));
        }
        let out = Command::new(env!("CARGO_BIN_EXE_vipctl"))
            .args(["--socket", "/nonexistent/vipd-guide.sock"])
            .args(&words)
            .output()
            .expect("vipctl runs");
        let err = String::from_utf8_lossy(&out.stderr);
        if s.needs.as_deref() == Some("node-drain")
            && err.contains("unrecognized subcommand 'node'")
        {
            notes.push(format!(
                "{}: `{line}` waits for the vipctl node verbs",
                s.place()
            ));
            continue;
        }
        // Past argument parsing, vipctl fails only on the missing socket.
        if !err.contains("cannot reach vipd") {
            return Err(format!("{}: `{line}`: {err}", s.place()));
        }
    }
    if lines == 0 {
        return Err(format!("{}: an empty vipctl snippet", s.place()));
    }
    Ok(notes)
}

fn check_sysctl(s: &Snippet) -> Checked {
    for line in s.lines() {
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("{}: `{line}` is not NAME = VALUE", s.place()));
        };
        let (name, value) = (name.trim(), value.trim());
        if value.is_empty() {
            return Err(format!("{}: `{line}` has no value", s.place()));
        }
        let path = Path::new("/proc/sys").join(name.replace('.', "/"));
        if !path.exists() {
            return Err(format!(
                "{}: no sysctl {name} ({} does not exist)",
                s.place(),
                path.display()
            ));
        }
    }
    Ok(Vec::new())
}

/// What vipd exports: a node's rendered metrics, and the sources that name
/// the families and the fixed label values (families without samples on a
/// node with no dataplane or speaker are not rendered).
struct Exported {
    rendered: String,
    sources: String,
}

impl Exported {
    fn new() -> Exported {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/detached_node.toml");
        let cfg = control::config::load(&path).expect("node config");
        let node = control::node::Node::detached(cfg, path);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let rendered = rt.block_on(control::metrics::render(&node));
        let sources = [
            "control/src/metrics.rs",
            "dataplane/src/verdict.rs",
            "vrrp/src/events.rs",
        ]
        .iter()
        .map(|f| std::fs::read_to_string(root().join(f)).expect("a metrics source"))
        .collect();
        Exported { rendered, sources }
    }

    fn has_metric(&self, name: &str) -> bool {
        self.sources.contains(&format!("\"{name}\""))
            || self.rendered.contains(&format!("\n{name}{{"))
            || self.rendered.contains(&format!("\n{name} "))
    }

    fn has_label_value(&self, value: &str) -> bool {
        let quoted = format!("\"{value}\"");
        self.sources.contains(&quoted) || self.rendered.contains(&quoted)
    }
}

/// Words starting with `vipd_` (not inside a longer word).
fn metric_names(text: &str) -> Vec<&str> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    for (i, _) in text.match_indices("vipd_") {
        if text[..i].chars().next_back().is_some_and(word) {
            continue;
        }
        let end = text[i..].find(|c| !word(c)).map_or(text.len(), |e| i + e);
        out.push(&text[i..end]);
    }
    out
}

/// Labels whose values vipd fixes (the others name services, backends,
/// peers and instances from the configuration).
const FIXED_LABELS: [&str; 6] = ["reason", "state", "cause", "decision", "direction", "kind"];

fn check_promql(s: &Snippet, exported: &Exported) -> Checked {
    for line in s.lines() {
        let names = metric_names(line);
        if names.is_empty() {
            return Err(format!("{}: `{line}` names no vipd metric", s.place()));
        }
        if let Some(name) = names.iter().find(|n| !exported.has_metric(n)) {
            return Err(format!("{}: vipd exports no metric {name}", s.place()));
        }
        for (label, rest) in line
            .split(['{', ','])
            .skip(1)
            .filter_map(|p| p.split_once("=\""))
        {
            let label = label.trim();
            let value = rest.split('"').next().unwrap_or_default();
            if FIXED_LABELS.contains(&label) && !exported.has_label_value(value) {
                return Err(format!(
                    "{}: vipd gives {label} no value {value:?}",
                    s.place()
                ));
            }
        }
    }
    Ok(Vec::new())
}

fn check(s: &Snippet, exported: &Exported) -> Checked {
    match s.kind.as_str() {
        "toml vipd-config" => check_vipd_config(s),
        "bird" => check_bird(s),
        "frr" => check_frr(s),
        "sh vipctl" => check_vipctl(s),
        "sysctl" => check_sysctl(s),
        "promql" => check_promql(s, exported),
        other => Err(format!(
            "{}: no check for snippets of kind `{other}`; give it one of the kinds this test knows",
            s.place()
        )),
    }
}

#[test]
fn every_snippet_is_what_the_tools_accept() {
    let text = guide();
    let all = snippets(&text);
    let exported = Exported::new();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for s in &all {
        match check(s, &exported) {
            Ok(notes) => notes.iter().for_each(|n| eprintln!("{n}")),
            Err(e) => failures.push(e),
        }
        *kinds.entry(s.kind.clone()).or_default() += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The guide's subjects: sites, BFD and ECMP configurations for vipd and
    // both routers, the drills, the sysctls and what to watch.
    for (kind, at_least) in [
        ("toml vipd-config", 4),
        ("bird", 2),
        ("frr", 3),
        ("sh vipctl", 4),
        ("sysctl", 2),
        ("promql", 1),
    ] {
        let n = kinds.get(kind).copied().unwrap_or(0);
        assert!(
            n >= at_least,
            "{GUIDE} has {n} `{kind}` snippets, expected at least {at_least}"
        );
    }
}

#[test]
fn every_metric_named_in_the_guide_exists() {
    let text = guide();
    let exported = Exported::new();
    let names = metric_names(&text);
    assert!(names.len() >= 10, "{GUIDE} lost its metric names");
    for name in names {
        assert!(
            exported.has_metric(name),
            "{GUIDE} names {name}, which vipd does not export"
        );
    }
}

#[test]
fn snippet_checks_catch_mistakes() {
    let exported = Exported::new();
    let refused = |kind: &str, needs: Option<&str>, body: &str| {
        let s = Snippet {
            line: 0,
            kind: kind.into(),
            needs: needs.map(String::from),
            body: body.into(),
        };
        check(&s, &exported).is_err()
    };
    let good = snippets(&guide());
    let site = good
        .iter()
        .find(|s| s.kind == "toml vipd-config" && s.needs.is_none())
        .expect("a vipd configuration");
    let broken = site.body.replace("remote_as", "remote_asn");
    assert!(refused("toml vipd-config", None, &broken));
    // `needs=` excuses only the feature's own keys.
    assert!(refused("toml vipd-config", Some("bfd"), &broken));
    assert!(refused("toml vipd-config", Some("node-drain"), &broken));
    assert!(refused("bird", None, "protocol bgp x { locl as 1; }\n"));
    assert!(refused(
        "frr",
        None,
        "router bgp 65000\n neighbor 192.0.2.1 remote-az 65001\nexit\n"
    ));
    assert!(refused("sh vipctl", None, "vipctl vrrp handoff site-a\n"));
    assert!(refused("sh vipctl", None, "ip route show\n"));
    assert!(refused(
        "sh vipctl",
        Some("node-drain"),
        "vipctl bgp withdrawal 198.51.100.0/25\n"
    ));
    assert!(refused(
        "sysctl",
        None,
        "net.ipv4.fib_multipath_hash_polcy = 1\n"
    ));
    assert!(refused("promql", None, "vipd_bgp_sessions_up == 0\n"));
    assert!(refused(
        "promql",
        None,
        "rate(vipd_drops_total{reason=\"vip_unowned\"}[5m])\n"
    ));
    assert!(refused("yaml", None, "groups: []\n"));
}
