//! `vipctl import-keepalived` against fixtures covering every construct
//! keepalived's own sample configurations use: each either imports to a
//! file that `vipd --check-config` accepts and that means what the
//! keepalived file meant, or fails naming each construct with its line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use control::config::{self, CheckKind, Config, HttpGet, Tls};
use control::keepalived::import;
use control::vrrp::runtime::track::{interface_effect, script_effect};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(name: &str) -> String {
    let path = fixtures().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Imports text that must translate completely; returns the config and the notes.
fn complete(text: &str, file: &str) -> (Config, Vec<String>) {
    let out = import(text, file);
    assert!(
        out.is_complete(),
        "{file}: not translated:\n{}\n---\n{}",
        out.untranslated.join("\n"),
        out.toml
    );
    match config::parse(&out.toml, "imported.toml") {
        Ok(cfg) => (cfg, out.notes),
        Err(e) => panic!("imported config does not load:\n{e}\n---\n{}", out.toml),
    }
}

/// Imports text that must fail; each `(line, fragment)` must be named.
fn refused(text: &str, file: &str, wanted: &[(usize, &str)]) {
    let out = import(text, file);
    assert!(!out.is_complete(), "{file} imported:\n{}", out.toml);
    for (line, what) in wanted {
        let prefix = format!("{file}:{line}:");
        assert!(
            out.untranslated
                .iter()
                .any(|n| n.starts_with(&prefix) && n.contains(what)),
            "{file}: nothing says `{what}` at line {line}:\n{}",
            out.untranslated.join("\n")
        );
    }
}

/// A check fragment placed in a virtual server.
fn in_virtual_server(fragment: &str) -> String {
    format!("virtual_server 192.168.56.1 80 {{\n    delay_loop 5\n    lb_algo wlc\n    lb_kind DR\n    protocol TCP\n{fragment}}}\n")
}

#[test]
fn vrrp_and_virtual_server_translate() {
    let text =
        fixture("vrrp_backup_nopreempt.conf") + &fixture("virtual_server_wrr_sorry_server.conf");
    let (cfg, notes) = complete(&text, "s1.conf");
    assert_eq!(cfg.dataplane.interfaces, vec!["eth1".to_string()]);
    let v = &cfg.vrrp[0];
    assert_eq!(
        (
            v.name.as_str(),
            v.interface.as_str(),
            v.vrid,
            v.priority,
            v.preempt,
            v.version
        ),
        ("LoadBalancers", "eth1", 100, 100, false, 2)
    );
    assert_eq!(v.advert_interval, Duration::from_secs(1));
    assert_eq!(v.vips, vec![std::net::Ipv4Addr::new(10, 20, 30, 100)]);
    let s = &cfg.services[0];
    assert_eq!((s.vip.to_string(), s.port), ("192.168.56.1".into(), 80));
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
    for (line, what) in [(2, "state BACKUP"), (13, "router name")] {
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with(&format!("s1.conf:{line}:")) && n.contains(what)),
            "{notes:?}"
        );
    }
}

#[test]
fn health_checks_translate_with_keepalived_defaults() {
    let (cfg, notes) = complete(
        &in_virtual_server(&fixture("check_tcp_retry.conf")),
        "tcp.conf",
    );
    let c = &cfg.services[0].backends[0].check;
    assert_eq!(c.kind, CheckKind::Tcp { port: None });
    assert_eq!(
        (c.interval, c.timeout, c.fall, c.rise),
        (Duration::from_secs(5), Duration::from_secs(3), 3, 1)
    );
    assert!(
        notes.iter().any(|n| n.contains("delay_before_retry")),
        "{notes:?}"
    );

    let (cfg, _) = complete(
        &in_virtual_server(&fixture("check_http_get_digest.conf")),
        "http.conf",
    );
    match &cfg.services[0].backends[0].check.kind {
        CheckKind::Http {
            get:
                HttpGet {
                    path,
                    digest,
                    tls: None,
                    ..
                },
            ..
        } => {
            assert_eq!(path, "/index.xhtml");
            let digest = digest.expect("digest carried over");
            assert_eq!(digest.to_string(), "fecf605e44acaaab933e7b509dbde185");
            assert_eq!(digest.algorithm(), "MD5");
        }
        other => panic!("expected an http check, got {other:?}"),
    }

    let (cfg, _) = complete(&fixture("http_get_single_url_virtualhost.conf"), "vh.conf");
    let c = &cfg.services[0].backends[0].check;
    match &c.kind {
        CheckKind::Http {
            port,
            get:
                HttpGet {
                    path,
                    expect_status,
                    host,
                    tls: None,
                    ..
                },
        } => {
            assert_eq!(
                (path.as_str(), *expect_status, host.as_deref(), *port),
                ("/healthz", 204, Some("shop.example.org"), Some(8081))
            );
        }
        other => panic!("expected an http check, got {other:?}"),
    }
    // keepalived's 5 s timeout is not written over; its retry is vipd's fall.
    assert_eq!(
        (c.interval, c.timeout, c.fall),
        (Duration::from_secs(4), Duration::from_secs(2), 2)
    );
    // A backend without a check block is checked by none, as in keepalived.
    let (cfg, _) = complete(
        &fixture("virtual_server_wrr_sorry_server.conf"),
        "nocheck.conf",
    );
    assert_eq!(cfg.services[0].backends[0].check.kind, CheckKind::None);
}

#[test]
fn script_checks_run_as_keepalived_runs_them() {
    let text = fixture("misc_check_with_arguments.conf").replace("            misc_dynamic\n", "");
    let (cfg, notes) = complete(&text, "misc.conf");
    let kinds: Vec<&CheckKind> = cfg.services[0]
        .backends
        .iter()
        .map(|b| &b.check.kind)
        .collect();
    assert_eq!(
        kinds[0],
        &CheckKind::Script {
            command: "/usr/local/bin/check-app --port 8080 --host 192.0.2.141"
                .split(' ')
                .map(str::to_string)
                .collect()
        }
    );
    assert_eq!(
        kinds[1],
        &CheckKind::Script {
            command: vec![
                "/bin/sh".into(),
                "-c".into(),
                "/usr/local/bin/check-app --port 8080 > /dev/null 2>&1".into()
            ]
        }
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("misc.conf:16:") && n.contains("/bin/sh -c")),
        "{notes:?}"
    );
    refused(
        &fixture("misc_check_with_arguments.conf"),
        "dyn.conf",
        &[(18, "misc_dynamic")],
    );
    refused(
        &in_virtual_server(&fixture("check_misc_as_other_user.conf")),
        "user.conf",
        &[(10, "user nobody")],
    );
}

/// keepalived's rule for a tracked link: a positive weight is added while
/// it is up, a negative one while it is down, none (or 0) is a fault when
/// down. For a tracked script: the same with success for up.
fn keepalived_priority(base: i32, links: &[(i32, bool)], scripts: &[(i32, bool)]) -> Option<i32> {
    let mut p = base;
    for &(w, ok) in links.iter().chain(scripts) {
        match (w, ok) {
            (0, false) => return None,
            (w, true) if w > 0 => p += w,
            (w, false) if w < 0 => p += w,
            _ => {}
        }
    }
    Some(p.clamp(1, 254))
}

#[test]
fn track_weights_and_overrides_keep_their_meaning() {
    let (cfg, notes) = complete(&fixture("track_weights_and_overrides.conf"), "track.conf");
    let v = &cfg.vrrp[0];
    // keepalived: uplink0 +15 while up, uplink1 -25 while down, mgmt0 fault.
    let links_k = [15, -25, 0];
    // keepalived: link_probe -10 (its own), web_port +9 (the instance's
    // override of -7), exit_two 0 (override: failure is a fault).
    let scripts_k = [-10, 9, 0];
    let names: Vec<&str> = v.track_scripts.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["link_probe", "web_port", "exit_two"]);
    // Every combination of link and script states: vipd's priority from the
    // imported config equals keepalived's from the original.
    for mask in 0u32..64 {
        let up = |i: u32| mask & (1 << i) != 0;
        let links: Vec<(i32, bool)> = (0..3).map(|i| (links_k[i as usize], up(i))).collect();
        let scripts: Vec<(i32, bool)> =
            (0..3).map(|i| (scripts_k[i as usize], up(i + 3))).collect();
        let mut sum = 0;
        let mut fault = false;
        for (t, (_, link_up)) in v.track_interfaces.iter().zip(&links) {
            let (w, f) = interface_effect(t.weight, *link_up);
            sum += w;
            fault |= f;
        }
        for (t, (_, ok)) in v.track_scripts.iter().zip(&scripts) {
            let (w, f) = script_effect(t.weight, Some(*ok));
            sum += w;
            fault |= f;
        }
        let vipd = (!fault).then(|| (i32::from(v.priority) + sum).clamp(1, 254));
        assert_eq!(
            vipd,
            keepalived_priority(120, &links, &scripts),
            "links {links:?} scripts {scripts:?}"
        );
    }
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("track.conf:19:") && n.contains("priority 135")),
        "{notes:?}"
    );
}

#[test]
fn shell_scripts_run_through_the_shell() {
    let (cfg, _) = complete(&fixture("track_weights_and_overrides.conf"), "track.conf");
    let t = &cfg.vrrp[0].track_scripts;
    assert_eq!(t[1].command, ["/bin/sh", "-c", "</dev/tcp/127.0.0.1/8080"]);
    // Run as vipd runs it (no shell of its own): only a shell knows `exit`.
    let status = Command::new(&t[2].command[0])
        .args(&t[2].command[1..])
        .status()
        .expect("the command starts");
    assert_eq!(status.code(), Some(2), "{:?}", t[2].command);
    assert_eq!(t[0].command, ["/usr/bin/true"]);
}

#[test]
fn vip_options_and_repeated_keys_translate() {
    let (cfg, notes) = complete(&fixture("vip_labels_devices_and_repeats.conf"), "vip.conf");
    let v = &cfg.vrrp[0];
    assert_eq!(
        v.priority, 110,
        "the later priority counts, as in keepalived"
    );
    assert_eq!(
        v.vips,
        vec![
            std::net::Ipv4Addr::new(203, 0, 113, 5),
            std::net::Ipv4Addr::new(203, 0, 113, 6)
        ]
    );
    assert_eq!(
        cfg.dataplane.interfaces,
        vec!["lan0".to_string(), "lan1".to_string()]
    );
    for (line, what) in [
        (5, "given again"),
        (8, "label lan0:1"),
        (9, "listed again"),
        (10, "dev lan1"),
    ] {
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with(&format!("vip.conf:{line}:")) && n.contains(what)),
            "no note `{what}` at line {line}: {notes:?}"
        );
    }
}

#[test]
fn ssl_udp_dns_and_ping_checks_translate() {
    let (cfg, notes) = complete(&fixture("checks_ssl_udp_dns_ping.conf"), "kinds.conf");
    let svc = &cfg.services[0];
    assert_eq!(svc.scheduler, control::config::SchedulerKind::Lblcr);
    let kinds: Vec<&CheckKind> = svc.backends.iter().map(|b| &b.check.kind).collect();
    match kinds[0] {
        CheckKind::Http {
            get:
                HttpGet {
                    path,
                    expect_status,
                    digest,
                    host,
                    tls: Some(Tls { sni, ca_file }),
                },
            ..
        } => {
            assert_eq!((path.as_str(), *expect_status), ("/healthz", 200));
            assert_eq!(
                digest.map(|d| d.to_string()).as_deref(),
                Some("9b3a0c5f1d2e4f6a8b7c9d0e1f2a3b4c")
            );
            assert_eq!(host.as_deref(), Some("shop.example.org"));
            assert_eq!((sni, ca_file), (&None, &None), "keepalived does not verify");
        }
        other => panic!("expected an https check, got {other:?}"),
    }
    let c = &svc.backends[0].check;
    assert_eq!((c.timeout, c.fall), (Duration::from_secs(2), 3));
    assert_eq!(
        kinds[1],
        &CheckKind::Udp {
            port: None,
            payload: vec![0, 1, 2, 3],
            expect: Some(vec![0, 1]),
        }
    );
    assert_eq!(
        kinds[2],
        &CheckKind::Dns {
            port: Some(5353),
            name: "www.example.net".into(),
            qtype: control::config::QType::Aaaa,
        }
    );
    assert_eq!(kinds[3], &CheckKind::Ping);
    assert_eq!(svc.backends[3].check.fall, 2);
    assert!(
        notes.iter().any(|n| n.contains("require_reply")),
        "{notes:?}"
    );
}

#[test]
fn untranslatable_constructs_are_named_with_their_line() {
    refused(
        &fixture("checks_vipd_cannot_run.conf"),
        "checks.conf",
        &[
            (10, "status_code 200-299"),
            (15, "SMTP_CHECK"),
            (27, "min_reply_length"),
            (32, "an ICMP echo has no port"),
            (37, "A or AAAA records only"),
        ],
    );
    refused(
        &fixture("conditional_lines_per_node.conf"),
        "cond.conf",
        &[
            (2, "@north"),
            (4, "-i north"),
            (5, "-i south"),
            (13, "@north priority 200"),
            (19, "no (unconditional) `script`"),
        ],
    );
    refused(
        &fixture("numbers_out_of_range.conf"),
        "range.conf",
        &[
            (3, "300 is out of range 1–255"),
            (4, "0 is out of range 1–255"),
            (10, "70000 is out of range 1–65535"),
        ],
    );
    refused(
        &fixture("sync_group_notify_and_mail.conf"),
        "sync.conf",
        &[
            (9, "vrrp_garp_master_refresh"),
            (11, "vrrp_sync_group"),
            (22, "smtp_alert"),
            (23, "notify"),
            (24, "notify_backup"),
            (25, "notify_fault"),
            (26, "garp_master_delay"),
            (27, "lvs_sync_daemon_interface"),
            (28, "mcast_src_ip"),
            (29, "AH"),
        ],
    );
    refused(
        &fixture("groups_fwmark_and_routes.conf"),
        "groups.conf",
        &[
            (1, "static_ipaddress"),
            (4, "static_routes"),
            (8, "static_rules"),
            (11, "virtual_server_group"),
            (14, "group"),
            (18, "fwmark"),
            (30, "virtual_routes"),
            (33, "virtual_rules"),
        ],
    );
    refused(
        &fixture("virtual_server_quorum_and_http_variants.conf"),
        "vs.conf",
        &[
            (8, "quorum 2"),
            (9, "quorum_up"),
            (10, "quorum_down"),
            (11, "hysteresis"),
            (12, "alpha"),
            (13, "omega"),
            (14, "ha_suspend"),
            (18, "2 url blocks"),
        ],
    );
    refused(
        &fixture("vrrp_master_track_script_mcast_src.conf"),
        "s3.conf",
        &[(15, "mcast_src_ip")],
    );
    let status_range = "virtual_server 192.0.2.1 80 {\n real_server 192.0.2.2 80 {\n  HTTP_GET {\n   url {\n    path /\n    status_code 200-299\n   }\n  }\n }\n}\n";
    refused(status_range, "codes.conf", &[(6, "one status code")]);
}

/// The translation of the IPv6 sample, byte for byte.
const IPV6_SAMPLE_TOML: &str = r#"# Translated from keepalived configuration v6.conf by vipctl import-keepalived.

[node]
name = "imported"
site = "default"

[dataplane]
# Taken from the vrrp_instance interfaces. List every interface that receives
# client traffic or reaches the backends; vipd attaches AF_XDP to each.
interfaces = ["lan0", "lan1"]
queues = 1

[[vrrp]]
name = "web6"
interface = "lan0"
vrid = 60
version = 3
priority = 150
advert_interval_ms = 500
vips = ["2001:db8::50", "2001:db8::60"]
unicast_peers = ["fe80::2"]

[[service]]
name = "vs-2001:db8::50-80"
vip = "2001:db8::50"
port = 80
scheduler = "wrr"
forward = "nat"
protocol = "tcp"
persistence_s = 300
sorry_server = "[2001:db8::99]:80"

  [[service.backend]]
  address = "[2001:db8:1::11]:8080"
  weight = 3
  check = { kind = "http", path = "/health", expect_status = 200, interval_ms = 5000, port = 8081, timeout_ms = 2000, fall = 2, rise = 1 }

  [[service.backend]]
  address = "[2001:db8:1::12]:8080"
  weight = 1
  check = { kind = "tcp", interval_ms = 5000, timeout_ms = 3000, fall = 1, rise = 1 }

[[service]]
name = "vs-2001:db8::60-443"
vip = "2001:db8::60"
port = 443
scheduler = "maglev"
forward = "dr"
protocol = "tcp"

  [[service.backend]]
  address = "[2001:db8::61]:443"
  weight = 1
  check = { kind = "tcp", interval_ms = 60000, port = 443, timeout_ms = 5000, fall = 1, rise = 1 }

"#;

#[test]
fn ipv6_sample_translates_vrrp_and_services() {
    let text = fixture("ipv6_vips_and_servers.conf");
    let out = import(&text, "v6.conf");
    assert_eq!(out.toml, IPV6_SAMPLE_TOML);
    let refusals: Vec<&String> = out
        .untranslated
        .iter()
        .filter(|u| u.contains("not translated"))
        .collect();
    assert!(refusals.is_empty(), "{refusals:?}");
    for (line, what) in [
        (2, "router name"),
        (7, "state MASTER"),
        (18, "Neighbor Solicitations"),
        (37, "backend's own address"),
    ] {
        assert!(
            out.notes
                .iter()
                .any(|n| n.starts_with(&format!("v6.conf:{line}:")) && n.contains(what)),
            "{:?}",
            out.notes
        );
    }
    // The VRRP half loads on its own.
    let vrrp_only: String = text.lines().take(20).map(|l| format!("{l}\n")).collect();
    let (cfg, _) = complete(&vrrp_only, "v6.conf");
    assert_eq!(cfg.dataplane.interfaces, vec!["lan0", "lan1"]);
    let v = &cfg.vrrp[0];
    assert_eq!((v.version, v.vrid, v.priority), (3, 60, 150));
    assert_eq!(v.advert_interval, Duration::from_millis(500));
    let six = |a: &str| a.parse::<std::net::IpAddr>().expect("address");
    assert_eq!(v.vips, vec![six("2001:db8::50"), six("2001:db8::60")]);
    assert_eq!(v.unicast_peers, vec![six("fe80::2")]);
    assert_eq!(v.unicast_src, None);

    // An IPv4 and an IPv6 instance may share a vrid: their virtual MACs differ.
    let both = "vrrp_instance a {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.5\n }\n}\nvrrp_instance b {\n interface eth0\n virtual_router_id 5\n version 3\n unicast_src_ip fe80::1\n unicast_peer {\n  fe80::2\n }\n virtual_ipaddress {\n  2001:db8::5\n }\n}\n";
    let (cfg, notes) = complete(both, "both.conf");
    assert_eq!(
        cfg.vrrp.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("both.conf:12:") && n.contains("link-local")),
        "{notes:?}"
    );
}

#[test]
fn ipv6_mixed_families_v2_and_extremes_are_refused_by_line() {
    refused(
        &fixture("ipv6_mixed_families_and_extremes.conf"),
        "mix.conf",
        &[
            (
                7,
                "this instance is IPv4 (its first VIP 192.0.2.7 at line 6)",
            ),
            (13, "vipd runs IPv6 over VRRPv3 only"),
            (18, "keepalived (its default without `version 3`"),
            (21, "cannot send them from another"),
            (23, "link-local (fe80::/10)"),
            (24, "the peer's family differs from this IPv6 instance's"),
            (30, "65536 is out of range 1–65535"),
            (33, "0 is out of range 1–65535"),
            (37, "no IP tunnel"),
            (38, "-1 is out of range 1–86400"),
            (39, "an IPv4 server behind the IPv6 VIP 2001:db8::50"),
            (40, "an IPv4 server behind the IPv6 VIP"),
            (41, "0 is out of range 1–65535"),
            (42, "65536 is out of range 1–65535"),
            (44, "1e308 is out of range 0–65535"),
            (47, "-1 is out of range 0–65535"),
            (49, "at its own address 2001:db8::55, not another"),
        ],
    );
    refused(
        "vrrp_instance n {\n interface eth0\n virtual_router_id 1\n version 3\n native_ipv6\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
        "native.conf",
        &[(7, "this instance is IPv6 (native_ipv6 at line 5)")],
    );
    refused(
        "virtual_server 192.0.2.1 80 {\n real_server 2001:db8::1 80\n}\n",
        "v4v6.conf",
        &[(2, "an IPv6 server behind the IPv4 VIP 192.0.2.1")],
    );
}

#[test]
fn mail_settings_alone_change_nothing() {
    let (cfg, notes) = complete(&fixture("global_mail_settings.conf"), "mail.conf");
    assert!(cfg.services.is_empty() && cfg.vrrp.is_empty());
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("mail.conf:2:") && n.contains("smtp_alert")),
        "{notes:?}"
    );
}

fn vipctl_import(input: &Path, output: &Path, draft: bool) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vipctl"));
    cmd.arg("import-keepalived")
        .arg(input)
        .arg("-o")
        .arg(output);
    if draft {
        cmd.arg("--draft");
    }
    let out = cmd.output().expect("vipctl runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_config(path: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vipd"))
        .arg("--check-config")
        .arg(path)
        .output()
        .expect("vipd runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The exit status is the contract: 0 only with a file vipd accepts; else
/// nothing written (without --draft) and each construct named.
#[test]
fn every_fixture_imports_to_a_valid_file_or_fails_naming_why() {
    let dir = std::env::temp_dir().join(format!("vipd-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    let (mut ok, mut failed) = (0, 0);
    for input in names {
        let output = dir.join("out.toml");
        let _ = std::fs::remove_file(&output);
        let (success, stderr) = vipctl_import(&input, &output, false);
        let shown = input.display();
        if success {
            ok += 1;
            let (valid, why) = check_config(&output);
            assert!(
                valid,
                "{shown}: imported, but vipd --check-config says:\n{why}"
            );
        } else {
            failed += 1;
            assert!(
                !output.exists(),
                "{shown}: failed, yet wrote {}",
                output.display()
            );
            let ours: Vec<&str> = stderr
                .lines()
                .filter(|l| l.starts_with(&format!("{shown}:")))
                .collect();
            let named = ours.iter().filter(|l| l.contains("not translated")).count();
            assert!(
                named > 0,
                "{shown}: failed without naming a construct:\n{stderr}"
            );
            let (success, _) = vipctl_import(&input, &output, true);
            assert!(
                !success && output.exists(),
                "{shown}: --draft writes and still fails"
            );
        }
    }
    assert!(ok >= 5 && failed >= 5, "{ok} imported, {failed} refused");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Mutations of every fixture: the importer never panics, and whatever it
/// calls complete loads in vipd.
#[test]
fn mutated_fixtures_never_yield_a_false_success() {
    let mut seed = 0x6b65_6570u64;
    let mut next = |below: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % below.max(1) as u64) as usize
    };
    const WORDS: &[&str] = &[
        "{",
        "}",
        "\"",
        "#",
        "@x ",
        "300",
        "-1",
        "1e9",
        "weight",
        "priority 7",
        "::1",
        "\n",
        "0.001",
        "virtual_ipaddress {",
        "track_script {",
        "é",
        "\u{0}",
    ];
    for entry in std::fs::read_dir(fixtures()).expect("fixtures") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("fixture");
        for _ in 0..150 {
            let mut m = text.clone();
            for _ in 0..=next(4) {
                let mut at = next(m.len() + 1);
                while !m.is_char_boundary(at) {
                    at -= 1;
                }
                if next(2) == 0 {
                    m.insert_str(at, WORDS[next(WORDS.len())]);
                } else {
                    let mut end = (at + next(12)).min(m.len());
                    while !m.is_char_boundary(end) {
                        end -= 1;
                    }
                    m.replace_range(at..end, "");
                }
            }
            let out = import(&m, "m.conf");
            if out.is_complete() {
                if let Err(e) = config::parse(&out.toml, "m.toml") {
                    panic!(
                        "{}: a mutation imported but does not load:\n{e}\n---\n{m}",
                        path.display()
                    );
                }
            }
        }
    }
}
