//! Control requests, hostile ones included, decoded and executed on a node
//! without a dataplane: each gets a reply naming what was wrong, none panics.
//! Replays the fuzz target's seeds (`control/fuzz/seeds/ctl_request`) and
//! mutations of them, so `cargo test` covers what `cargo fuzz` explores.

use std::path::{Path, PathBuf};

use control::node::Node;
use ctlproto::{reply, Reply};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn node() -> Node {
    let path = fuzz_dir().join("detached_node.toml");
    let cfg = control::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    Node::detached(cfg, path)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn ask(rt: &tokio::runtime::Runtime, node: &Node, line: &[u8]) -> Reply {
    let reply = rt.block_on(control::ctl::handle(node, line));
    assert_eq!(reply.v, 1, "reply without version to {line:?}");
    assert_eq!(
        reply.ok,
        reply.error.is_none(),
        "reply to {:?} is both or neither: {reply:?}",
        String::from_utf8_lossy(line)
    );
    reply
}

fn error_of(rt: &tokio::runtime::Runtime, node: &Node, line: &str) -> String {
    let reply = ask(rt, node, line.as_bytes());
    reply
        .error
        .unwrap_or_else(|| panic!("{line} was accepted: {:?}", reply.result))
}

#[test]
fn crafted_requests_are_refused_with_the_reason() {
    let rt = runtime();
    let node = node();
    let cases: &[(&str, &[&str])] = &[
        (
            r#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":2e19}"#,
            &["\"x\"", "out of range", "300"],
        ),
        (
            r#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":1e308}"#,
            &["out of range"],
        ),
        (
            r#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":-1}"#,
            &["out of range"],
        ),
        (
            r#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":0}"#,
            &["out of range"],
        ),
        (
            r#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":NaN}"#,
            &["not JSON"],
        ),
        (
            r#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":1e999}"#,
            &["not JSON"],
        ),
        (
            r#"{"v":1,"cmd":"vrrp_handover","instance":"x","timeout_s":"10"}"#,
            &["timeout_s"],
        ),
        (
            r#"{"v":1,"cmd":"vrrp_handover","instance":"nope","timeout_s":1}"#,
            &["no VRRP instance \"nope\""],
        ),
        (
            r#"{"v":1,"cmd":"backend","op":"weight","service":"web","address":"10.9.1.11:8080","weight":70000}"#,
            &["weight 70000", "out of range", "10.9.1.11:8080", "web"],
        ),
        (
            r#"{"v":1,"cmd":"backend","op":"weight","service":"web","address":"10.9.1.11:8080","weight":-1}"#,
            &["weight"],
        ),
        (
            r#"{"v":1,"cmd":"backend","op":"drain","service":"web","address":"10.9.1.11:8080","weight":1}"#,
            &["drain takes no weight"],
        ),
        (
            r#"{"v":1,"cmd":"backend","op":"add","service":"web","address":"10.9.1.11"}"#,
            &["with a port"],
        ),
        (
            r#"{"v":1,"cmd":"flows","top":0}"#,
            &["top 0", "out of range 1–1000"],
        ),
        (
            r#"{"v":1,"cmd":"flows","top":18446744073709551615}"#,
            &["out of range"],
        ),
        (
            r#"{"v":1,"cmd":"flows","client":"nobody"}"#,
            &["\"nobody\"", "not an IP address", "2001:db8::7"],
        ),
        (
            r#"{"v":1,"cmd":"flows","client":"[2001:db8::7]:80"}"#,
            &["\"[2001:db8::7]:80\"", "not an IP address"],
        ),
        (
            r#"{"v":1,"cmd":"backend","op":"drain","service":"web6","address":"2001:db8:9:1::11:8080"}"#,
            &[
                "\"2001:db8:9:1::11:8080\"",
                "with a port",
                "[2001:db8::1]:8080",
            ],
        ),
        (
            r#"{"v":1,"cmd":"backend","op":"drain","service":"web6","address":"[2001:db8:9:1::99]:8080"}"#,
            &["web6 has no backend [2001:db8:9:1::99]:8080"],
        ),
        (
            r#"{"v":1,"cmd":"backend","op":"add","service":"web6","address":"10.9.1.13:8080"}"#,
            &["10.9.1.13:8080", "web6", "IPv6"],
        ),
        (
            r#"{"v":1,"cmd":"backend","op":"add","service":"web","address":"[2001:db8:9:1::13]:8080"}"#,
            &["[2001:db8:9:1::13]:8080", "service web's", "IPv4"],
        ),
        (r#"{"v":1,"v":1,"cmd":"status"}"#, &["\"v\" appears twice"]),
        (
            r#"{"v":1,"cmd":"backend","op":"drain","op":"remove","service":"web","address":"10.9.1.11:8080"}"#,
            &["\"op\" appears twice"],
        ),
        (r#"{"v":"1","cmd":"status"}"#, &["version \"1\""]),
        (
            r#"{"v":1,"cmd":"vrrp_release","instance":""}"#,
            &["instance is empty"],
        ),
        (
            r#"{"v":1,"cmd":"bgp_withdraw","prefix":"10.9.0.0/99"}"#,
            &["10.9.0.0/99", "0..=32"],
        ),
        (
            r#"{"v":1,"cmd":"bgp_withdraw","prefix":"10.8.0.0/24"}"#,
            &["10.8.0.0/24", "10.9.0.0/25"],
        ),
        (
            r#"{"v":1,"cmd":"node_drain","timeout_s":-1}"#,
            &["node drain", "out of range", "3600"],
        ),
        (
            r#"{"v":1,"cmd":"node_drain","timeout_s":2e19}"#,
            &["node drain", "out of range"],
        ),
        (
            r#"{"v":1,"cmd":"node_drain","timeout_s":NaN}"#,
            &["not JSON"],
        ),
        (
            r#"{"v":1,"cmd":"node_drain","timeout_s":null}"#,
            &["timeout_s"],
        ),
        (
            r#"{"v":1,"cmd":"node_undrain","timeout_s":5}"#,
            &["timeout_s"],
        ),
    ];
    for (line, wanted) in cases {
        let e = error_of(&rt, &node, line);
        assert!(
            wanted.iter().all(|w| e.contains(w)),
            "{line}\n  got {e:?}\n  wanted all of {wanted:?}"
        );
    }
    let long = format!(
        r#"{{"v":1,"cmd":"vrrp_release","instance":"{}"}}"#,
        "i".repeat(10_000)
    );
    let e = error_of(&rt, &node, &long);
    assert!(e.contains("10000 bytes") && e.len() < 300, "{e}");
    let e = error_of(&rt, &node, "");
    assert!(e.contains("not JSON"), "{e}");
    let reply = ask(&rt, &node, b"{\"v\":1,\"cmd\":\"stat\xffs\"}\n");
    let e = reply.error.expect("invalid UTF-8 refused");
    assert!(e.contains("not UTF-8") && e.contains("offset 18"), "{e}");
}

#[test]
fn valid_requests_are_served() {
    let rt = runtime();
    let node = node();
    // Each result reads back as its reply type and encodes to the same
    // JSON: the type neither loses nor invents a field.
    type Check = fn(serde_json::Value) -> Result<(), serde_json::Error>;
    fn reads_as<R: serde::de::DeserializeOwned + serde::Serialize>(
        v: serde_json::Value,
    ) -> Result<(), serde_json::Error> {
        let typed: R = serde_json::from_value(v.clone())?;
        let again = serde_json::to_value(&typed)?;
        if again == v {
            Ok(())
        } else {
            Err(serde::de::Error::custom(format!(
                "fields lost or added: {v} became {again}"
            )))
        }
    }
    let cases: [(&str, Check); 6] = [
        (r#"{"v":1,"cmd":"status"}"#, reads_as::<reply::Status>),
        (r#"{"v":1,"cmd":"sync"}"#, reads_as::<reply::Sync>),
        (r#"{"v":1,"cmd":"stats"}"#, reads_as::<reply::Stats>),
        (
            r#"{"v":1,"cmd":"flows","top":1000}"#,
            reads_as::<reply::Flows>,
        ),
        (
            r#"{"v":1,"cmd":"backend","op":"weight","service":"web","address":"10.9.1.11:8080","weight":65535}"#,
            reads_as::<reply::BackendChange>,
        ),
        (
            r#"{"v":1,"cmd":"bgp_withdraw","prefix":"10.9.0.0/25"}"#,
            reads_as::<reply::BgpOverride>,
        ),
    ];
    for (line, check) in cases {
        let reply = ask(&rt, &node, line.as_bytes());
        assert!(reply.ok, "{line}: {reply:?}");
        let result = reply.result.expect("a result");
        if let Err(e) = check(result) {
            panic!("{line}: {e}");
        }
    }
}

#[test]
fn ipv6_services_backends_and_clients_are_served() {
    let rt = runtime();
    let node = node();
    let call = |line: &str| -> serde_json::Value {
        let reply = ask(&rt, &node, line.as_bytes());
        assert!(reply.ok, "{line}: {reply:?}");
        reply.result.expect("a result")
    };
    let services: reply::Services =
        serde_json::from_value(call(r#"{"v":1,"cmd":"services"}"#)).expect("services");
    let web6 = services
        .services
        .iter()
        .find(|s| s.summary.name == "web6")
        .expect("the IPv6 service");
    assert_eq!(
        (web6.summary.vip.as_str(), web6.summary.port),
        ("2001:db8:9::50", 80)
    );
    let backends: reply::Backends =
        serde_json::from_value(call(r#"{"v":1,"cmd":"backends"}"#)).expect("backends");
    assert!(
        backends
            .backends
            .iter()
            .any(|b| b.service == "web6" && b.address == "[2001:db8:9:1::11]:8080"),
        "{backends:?}"
    );
    let flows: reply::Flows =
        serde_json::from_value(call(r#"{"v":1,"cmd":"flows","client":"2001:db8::7"}"#))
            .expect("flows");
    assert_eq!(flows.client.as_deref(), Some("2001:db8::7"));
    let change: reply::BackendChange = serde_json::from_value(call(
        r#"{"v":1,"cmd":"backend","op":"weight","service":"web6","address":"[2001:db8:9:1::11]:8080","weight":3}"#,
    ))
    .expect("a backend change");
    assert_eq!(change.address, "[2001:db8:9:1::11]:8080");
    let added: reply::BackendChange = serde_json::from_value(call(
        r#"{"v":1,"cmd":"backend","op":"add","service":"web6","address":"[2001:db8:9:1::12]:8080"}"#,
    ))
    .expect("a backend added");
    assert_ne!(added.id, change.id);
}

#[test]
fn ipv6_backends_are_labelled_with_brackets_only_before_a_port() {
    let rt = runtime();
    let node = node();
    let metrics = rt.block_on(control::metrics::render(&node));
    for want in [
        r#"vipd_backend_weight{service="web6",backend="[2001:db8:9:1::11]:8080"} 1"#,
        r#"vipd_backend_connections{service="web6",backend="[2001:db8:9:1::11]:8080",state="active"} 0"#,
        r#"vipd_service_packets_total{service="web6"} 0"#,
    ] {
        assert!(metrics.contains(want), "no `{want}` in\n{metrics}");
    }
}

#[test]
fn a_drain_is_shown_until_undrained_and_survives_a_reload() {
    let rt = runtime();
    let node = node();
    let call = |line: &str| -> serde_json::Value {
        let reply = ask(&rt, &node, line.as_bytes());
        assert!(reply.ok, "{line}: {reply:?}");
        reply.result.expect("a result")
    };
    let read =
        |v: serde_json::Value| -> reply::Node { serde_json::from_value(v).expect("a node reply") };
    let before = read(call(r#"{"v":1,"cmd":"node"}"#));
    assert!(!before.draining && before.drain.is_none() && !before.changed);
    assert_eq!(before.mode, "withdraw", "the default drain mode");
    let drained = read(call(r#"{"v":1,"cmd":"node_drain","timeout_s":30}"#));
    assert!(drained.draining && drained.changed, "{drained:?}");
    let d = drained.drain.expect("progress shown while drained");
    assert_eq!(d.timeout_left_s.map(f64::round), Some(30.0));
    assert!(!d.empty, "nothing measured yet, so not empty: {d:?}");
    let again = read(call(r#"{"v":1,"cmd":"node_drain"}"#));
    assert!(again.draining && !again.changed, "{again:?}");
    let reload = ask(&rt, &node, br#"{"v":1,"cmd":"reload"}"#);
    assert!(reload.ok, "{reload:?}");
    let status: reply::Status =
        serde_json::from_value(call(r#"{"v":1,"cmd":"status"}"#)).expect("status");
    assert!(status.drain.is_some(), "the drain survives the reload");
    let undrained = read(call(r#"{"v":1,"cmd":"node_undrain"}"#));
    assert!(!undrained.draining && undrained.changed && undrained.drain.is_none());
    let status: reply::Status =
        serde_json::from_value(call(r#"{"v":1,"cmd":"status"}"#)).expect("status");
    assert!(status.drain.is_none());
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("seeds/ctl_request");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("directory entry").path();
            let bytes = std::fs::read(&path).expect("seed readable");
            (path.display().to_string(), bytes)
        })
        .collect();
    seeds.sort();
    seeds
}

/// Values that broke or could break a range check, spliced over numbers.
const EDGES: &[&str] = &[
    "2e19",
    "1e308",
    "-1e308",
    "1e999",
    "-0",
    "0",
    "-1",
    "4294967296",
    "18446744073709551616",
    "0.0000001",
    "300.0000001",
    "NaN",
    "\"\"",
    "null",
    "[]",
    "{}",
    "true",
];

/// A small deterministic generator: the same mutations on every run, so a
/// failure reproduces.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut m = seed.to_vec();
    for _ in 0..=rng.next(3) {
        let at = rng.next(m.len() + 1);
        match rng.next(4) {
            0 if at < m.len() => m[at] = rng.next(256) as u8,
            1 if at < m.len() => {
                m.remove(at);
            }
            2 => {
                // Replaces the number (or word) at `at` with an edge value.
                let end = m[at..]
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']'))
                    .map_or(m.len(), |p| at + p);
                let edge = EDGES[rng.next(EDGES.len())].as_bytes();
                m.splice(at..end, edge.iter().copied());
            }
            _ => m.insert(at, b"{}[]\",:\\"[rng.next(7)]),
        }
    }
    m
}

#[test]
fn seeds_and_their_mutations_get_a_reply() {
    let rt = runtime();
    let node = node();
    let seeds = seeds();
    assert!(seeds.len() >= 20, "seed corpus missing: {}", seeds.len());
    let mut rng = XorShift(0x5eed_c0de);
    for (name, seed) in &seeds {
        ask(&rt, &node, seed);
        for _ in 0..300 {
            let m = mutate(seed, &mut rng);
            let reply = ask(&rt, &node, &m);
            if let Some(e) = reply.error {
                assert!(!e.is_empty(), "{name}: empty error for {m:?}");
            }
        }
    }
}
