//! The engine's start-up errors name the interface and say what to do
//! (needs root).

mod engine_common;

use dataplane::engine::{Engine, EngineConfig, EngineError, ForwardHandler, XdpMode};
use engine_common::*;

fn handler() -> ForwardHandler {
    ForwardHandler::new(vec![0], vec![[0; 6]], vec![[0; 6]])
}

fn start_err(lab: Option<&Lab>, cfg: EngineConfig) -> EngineError {
    let run = move || Engine::start(&cfg, |_, _| handler()).err();
    let err = match lab {
        Some(lab) => lab.l.run(run),
        None => run(),
    };
    err.expect("the engine started although it should have refused")
}

#[test]
fn missing_interface_is_named() {
    let name = format!("vipdmiss{}", std::process::id() % 100_000);
    let err = start_err(
        None,
        EngineConfig {
            interfaces: vec![name.clone()],
            ..EngineConfig::default()
        },
    );
    assert!(
        matches!(err, EngineError::InterfaceMissing { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&name), "{err}");
}

#[test]
fn too_many_queues_is_refused_with_the_count() {
    let lab = Lab::new("ee1", 1);
    let err = start_err(
        Some(&lab),
        EngineConfig {
            interfaces: vec!["l0".into(), "l1".into()],
            queues: 2,
            ..EngineConfig::default()
        },
    );
    match &err {
        EngineError::QueueMismatch {
            interface,
            configured,
            available,
        } => {
            assert_eq!(interface, "l0");
            assert_eq!((*configured, *available), (2, 1));
        }
        other => panic!("expected a queue mismatch, got {other:?}"),
    }
    assert!(!Lab::has_xdp(&lab.l, "l0"), "nothing left attached");
}

#[test]
fn native_xdp_refused_for_a_large_mtu_says_what_to_do() {
    let lab = Lab::new("ee2", 1);
    lab.a.exec(&["ip", "link", "set", "a0", "mtu", "9000"]);
    lab.l.exec(&["ip", "link", "set", "l0", "mtu", "9000"]);
    let cfg = EngineConfig {
        interfaces: vec!["l0".into(), "l1".into()],
        xdp_mode: XdpMode::Native,
        ..EngineConfig::default()
    };
    let err = start_err(Some(&lab), cfg.clone());
    assert!(matches!(err, EngineError::XdpAttach { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("l0") && msg.contains("MTU") && msg.contains("skb"),
        "{msg}"
    );
    assert!(!Lab::has_xdp(&lab.l, "l0") && !Lab::has_xdp(&lab.l, "l1"));

    // The advice works: generic XDP accepts the same interface.
    let engine = lab
        .l
        .run(move || {
            Engine::start(
                &EngineConfig {
                    xdp_mode: XdpMode::Skb,
                    ..cfg
                },
                |_, _| handler(),
            )
        })
        .unwrap_or_else(|e| panic!("skb mode: {e}"));
    assert!(Lab::has_xdp(&lab.l, "l0"));
    engine.stop();
    assert!(!Lab::has_xdp(&lab.l, "l0"));
}

#[test]
fn invalid_configs_are_refused_before_touching_interfaces() {
    let base = EngineConfig {
        interfaces: vec!["eth0".into(), "eth1".into()],
        ..EngineConfig::default()
    };
    let cases = [
        (
            EngineConfig {
                interfaces: vec![],
                ..base.clone()
            },
            "no interfaces",
        ),
        (
            EngineConfig {
                interfaces: vec!["eth0".into(), "eth0".into()],
                ..base.clone()
            },
            "eth0 is listed twice",
        ),
        (
            EngineConfig {
                queues: 0,
                ..base.clone()
            },
            "queues = 0",
        ),
        (
            EngineConfig {
                queues: 65,
                ..base.clone()
            },
            "queues = 65",
        ),
        (
            EngineConfig {
                queues: 2,
                cores: Some(vec![1]),
                ..base.clone()
            },
            "1 cores listed for 2 queues",
        ),
        (
            EngineConfig {
                frames_per_worker: 3000,
                ..base.clone()
            },
            "frames_per_worker = 3000",
        ),
        (
            EngineConfig {
                frames_per_worker: 128,
                ..base.clone()
            },
            "at least 256",
        ),
        (
            EngineConfig {
                batch: 0,
                ..base.clone()
            },
            "batch = 0",
        ),
    ];
    for (cfg, expect) in cases {
        let err = start_err(None, cfg);
        assert!(matches!(err, EngineError::Config(_)), "{err:?}");
        assert!(err.to_string().contains(expect), "{err} (wanted {expect})");
    }
}
