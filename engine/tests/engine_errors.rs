//! The engine's start-up errors name the interface and say what to do
//! (needs root).

mod engine_common;

use engine::{Engine, EngineConfig, EngineError, ForwardHandler, XdpMode, MAX_MTU};
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
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
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
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
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
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn an_mtu_above_what_an_af_xdp_frame_holds_is_refused_in_every_mode() {
    let lab = Lab::new("ee2", 1);
    lab.a.exec(&["ip", "link", "set", "a0", "mtu", "9000"]);
    lab.l.exec(&["ip", "link", "set", "l0", "mtu", "9000"]);
    let cfg = |xdp_mode| EngineConfig {
        interfaces: vec!["l0".into(), "l1".into()],
        xdp_mode,
        ..EngineConfig::default()
    };
    for mode in [XdpMode::Auto, XdpMode::Native, XdpMode::Skb] {
        let err = start_err(Some(&lab), cfg(mode));
        match &err {
            EngineError::MtuTooLarge {
                interface,
                mtu,
                max,
            } => {
                assert_eq!((interface.as_str(), *mtu, *max), ("l0", 9000, MAX_MTU));
            }
            other => panic!("{mode:?}: expected the MTU refused, got {other:?}"),
        }
        let advice = format!("ip link set dev l0 mtu {MAX_MTU}");
        assert!(err.to_string().contains(&advice), "{err}");
        assert!(!Lab::has_xdp(&lab.l, "l0") && !Lab::has_xdp(&lab.l, "l1"));
    }

    // At the limit it starts, and `auto` attaches natively on veth.
    let max = MAX_MTU.to_string();
    lab.a.exec(&["ip", "link", "set", "a0", "mtu", &max]);
    lab.l.exec(&["ip", "link", "set", "l0", "mtu", &max]);
    let engine = lab
        .l
        .run(move || Engine::start(&cfg(XdpMode::Auto), |_, _| handler()))
        .unwrap_or_else(|e| panic!("MTU {MAX_MTU}: {e}"));
    let port = &engine.ports()[0];
    assert_eq!((port.mtu, port.xdp_mode), (MAX_MTU, XdpMode::Native));
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
