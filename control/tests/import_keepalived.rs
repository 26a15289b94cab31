//! `vipctl import-keepalived` on the keepalived configurations printed in
//! the seed documents: the output loads as a vipd config with the same
//! meaning, and every construct left behind is named with its line.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use control::config::{self, CheckKind, Config};
use control::keepalived::import;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(text: &str, file: &str) -> (Config, Vec<String>) {
    let out = import(text, file);
    match config::parse(&out.toml, "imported.toml") {
        Ok(cfg) => (cfg, out.notes),
        Err(e) => panic!("imported config does not load:\n{e}\n---\n{}", out.toml),
    }
}

/// A check fragment from the seed, placed in a virtual server.
fn in_virtual_server(fragment: &str) -> String {
    format!("virtual_server 192.168.56.1 80 {{\n    delay_loop 5\n    lb_algo wlc\n    lb_kind DR\n    protocol TCP\n{fragment}}}\n")
}

#[test]
fn seed001_vrrp_and_virtual_server_translate() {
    let text = fixture("seed001_vrrp.conf") + &fixture("seed001_virtual_server.conf");
    let (cfg, notes) = load(&text, "s1.conf");
    assert_eq!(cfg.dataplane.interfaces, vec!["eth1".to_string()]);
    let v = &cfg.vrrp[0];
    assert_eq!(
        (
            v.name.as_str(),
            v.interface.as_str(),
            v.vrid,
            v.priority,
            v.preempt
        ),
        ("LoadBalancers", "eth1", 100, 100, false)
    );
    assert_eq!(v.advert_interval, Duration::from_secs(1));
    assert_eq!(
        v.vips,
        vec!["10.20.30.100".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    let s = &cfg.services[0];
    assert_eq!(s.vip.to_string(), "192.168.56.1");
    assert_eq!(s.port, 80);
    assert_eq!(format!("{:?}", s.scheduler).to_lowercase(), "wrr");
    assert_eq!(format!("{:?}", s.forward).to_lowercase(), "nat");
    assert_eq!(
        s.sorry_server.map(|a| a.to_string()).as_deref(),
        Some("192.168.56.250:80")
    );
    let backends: Vec<(String, u32)> = s
        .backends
        .iter()
        .map(|b| (b.address.to_string(), b.weight))
        .collect();
    assert_eq!(
        backends,
        vec![
            ("192.168.56.101:80".to_string(), 1),
            ("192.168.56.102:80".to_string(), 1)
        ]
    );
    // state BACKUP (line 2) and global_defs (line 12) are reported.
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("s1.conf:2:") && n.contains("state BACKUP")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("s1.conf:12:") && n.contains("global_defs")),
        "{notes:?}"
    );
}

#[test]
fn seed001_health_checks_translate() {
    let (cfg, notes) = load(
        &in_virtual_server(&fixture("seed001_tcp_check.conf")),
        "tcp.conf",
    );
    let c = &cfg.services[0].backends[0].check;
    assert_eq!(c.kind, CheckKind::Tcp { port: None });
    assert_eq!(
        (c.interval, c.timeout, c.fall),
        (Duration::from_secs(5), Duration::from_secs(3), 3)
    );
    assert_eq!(
        format!("{:?}", cfg.services[0].forward).to_lowercase(),
        "dr"
    );
    assert!(
        notes.iter().any(|n| n.contains("delay_before_retry")),
        "{notes:?}"
    );

    let (cfg, _) = load(
        &in_virtual_server(&fixture("seed001_http_get.conf")),
        "http.conf",
    );
    match &cfg.services[0].backends[0].check.kind {
        CheckKind::Http { path, body_md5, .. } => {
            assert_eq!(path, "/index.xhtml");
            let hex: String = body_md5
                .expect("digest carried over")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(hex, "fecf605e44acaaab933e7b509dbde185");
        }
        other => panic!("expected an http check, got {other:?}"),
    }

    let (cfg, notes) = load(
        &in_virtual_server(&fixture("seed001_misc_check.conf")),
        "misc.conf",
    );
    let c = &cfg.services[0].backends[0].check;
    assert_eq!(
        c.kind,
        CheckKind::Script {
            command: vec!["/tmp/my_check.sh".into()]
        }
    );
    assert_eq!(c.timeout, Duration::from_secs(5));
    // `user nobody` is line 10 once wrapped (5 wrapper lines + 5).
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("misc.conf:10:") && n.contains("user nobody")),
        "{notes:?}"
    );
}

#[test]
fn seed001_mail_settings_are_reported() {
    let (cfg, notes) = load(&fixture("seed001_smtp.conf"), "mail.conf");
    assert!(cfg.services.is_empty() && cfg.vrrp.is_empty());
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("mail.conf:1:") && n.contains("SMTP")),
        "{notes:?}"
    );
}

#[test]
fn seed003_track_script_and_authentication_translate() {
    let (cfg, notes) = load(&fixture("seed003_master.conf"), "s3.conf");
    assert_eq!(cfg.dataplane.interfaces, vec!["enp0s3".to_string()]);
    let v = &cfg.vrrp[0];
    assert_eq!((v.vrid, v.priority, v.version), (99, 101, 2));
    assert_eq!(v.advert_interval, Duration::from_secs(2));
    assert_eq!(v.auth_pass.as_deref(), Some("1111"));
    let t = &v.track_scripts[0];
    assert_eq!(t.name, "chk_svr");
    assert_eq!(t.command, vec!["killall", "-0", "node"]);
    assert_eq!(
        (t.interval, t.weight, t.fall, t.rise),
        (Duration::from_secs(2), -5, 3, 2)
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("s3.conf:15:") && n.contains("mcast_src_ip")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("s3.conf:13:") && n.contains("state MASTER")),
        "{notes:?}"
    );
}

#[test]
fn untranslatable_constructs_are_listed() {
    let text = "virtual_server 10.0.0.1 443 {\n lb_kind TUN\n lb_algo lblc\n real_server 10.0.0.2 443 {\n  SSL_GET {\n   url {\n    path /\n   }\n  }\n }\n}\nvirtual_server fwmark 7 {\n}\n";
    let (cfg, notes) = load(text, "x.conf");
    assert_eq!(cfg.services.len(), 1);
    for (line, what) in [
        (2, "lb_kind TUN"),
        (3, "lb_algo lblc"),
        (5, "SSL_GET"),
        (12, "fwmark"),
    ] {
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with(&format!("x.conf:{line}:")) && n.contains(what)),
            "no note for {what} at line {line}: {notes:?}"
        );
    }
}

#[test]
fn vipctl_writes_a_loadable_file_and_prints_the_notes() {
    let dir = std::env::temp_dir().join(format!("vipd-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let input = dir.join("keepalived.conf");
    std::fs::write(&input, fixture("seed003_master.conf")).expect("write input");
    let output = dir.join("vipd.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_vipctl"))
        .args([
            "import-keepalived",
            input.to_str().unwrap_or_default(),
            "-o",
            output.to_str().unwrap_or_default(),
        ])
        .output()
        .expect("vipctl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mcast_src_ip"), "{stderr}");
    let cfg = config::load(&output).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.vrrp[0].vrid, 99);
    let _ = std::fs::remove_dir_all(&dir);
}
