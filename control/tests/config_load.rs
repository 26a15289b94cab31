//! Loading vipd configuration files: the contract example, the example set in
//! `configs/`, and the error reports for each kind of mistake.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bgp::Family;
use control::config::{
    load, parse, AnnounceCondition, CheckKind, Config, ConfigError, ConfigErrors, DrainRoutes,
    ForwardMode, HttpGet, Prefix, Protocol, SchedulerKind, Tls, XdpMode,
};

const FILE: &str = "test.toml";

/// A small valid file that every error case below breaks in one place.
const BASE: &str = r#"
[node]
name = "lb1"

[dataplane]
interfaces = ["eth0", "eth1"]

[[service]]
name = "web"
vip = "10.0.0.10"
port = 80
scheduler = "wrr"

  [[service.backend]]
  address = "192.168.10.11:80"

  [[service.backend]]
  address = "192.168.10.12:80"
  weight = 2

[[vrrp]]
name = "v10"
interface = "eth0"
vrid = 10
vips = ["10.0.0.10"]

[bgp]
local_as = 65001
router_id = "172.16.1.2"

  [[bgp.peer]]
  address = "172.16.1.1"
  remote_as = 65000

  [[bgp.announce]]
  prefix = "10.0.0.0/25"
"#;

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// `BASE` with the first occurrence of `from` replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "test bug: `{from}` not in BASE");
    BASE.replacen(from, to, 1)
}

/// 1-based number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("test bug: `{needle}` not in text"))
        + 1
}

fn errors(text: &str) -> Vec<ConfigError> {
    match parse(text, FILE) {
        Ok(_) => panic!("expected errors, the config was accepted"),
        Err(ConfigErrors(e)) => e,
    }
}

/// Asserts `text` fails with exactly one error, on `field`, on the line
/// containing `at`, whose message contains `why`.
fn single_error(text: &str, field: &str, at: &str, why: &str) -> ConfigError {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got: {errs:#?}");
    let e = errs.into_iter().next().expect("one error");
    assert_eq!(e.file, FILE);
    assert_eq!(e.field, field, "{e}");
    assert_eq!(e.line, line_of(text, at), "{e}");
    assert!(
        e.message.contains(why),
        "message `{}` lacks `{why}`",
        e.message
    );
    e
}

#[test]
fn base_is_valid() {
    let c = parse(BASE, FILE).expect("BASE must be valid");
    assert_eq!(c.services.len(), 1);
    assert_eq!(c.services[0].backends[1].weight, 2);
    assert_eq!(c.services[0].backends[0].weight, 1);
}

#[test]
fn contract_parses_to_expected_values() {
    let c = load(&configs_dir().join("contract.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.node.name, "lb1");
    assert_eq!(c.node.site, "primary");
    assert_eq!(c.dataplane.interfaces, ["eth0", "eth1"]);
    assert_eq!(c.dataplane.queues, 1);
    assert_eq!(c.dataplane.cores, None);
    assert_eq!(c.dataplane.xdp_mode, XdpMode::Auto);
    assert_eq!(c.dataplane.flow_capacity, 1_048_576);
    assert_eq!(c.dataplane.frames_per_worker, 16_384);
    assert_eq!(
        c.dataplane.syn_rate_limit, 0,
        "SYN admission is off by default"
    );
    assert_eq!(
        c.dataplane.timeouts.tcp_established,
        Duration::from_secs(900)
    );
    assert_eq!(c.control.socket, Path::new("/run/vipd/lb1.sock"));
    assert_eq!(c.control.socket_mode, 0o660);
    assert!(c.vrrp.is_empty());
    assert!(c.bgp.is_none());

    let [web] = c.services.as_slice() else {
        panic!("one service expected, got {:?}", c.services)
    };
    assert_eq!(web.name, "web");
    assert_eq!(web.vip, Ipv4Addr::new(10, 123, 0, 50));
    assert_eq!(web.port, 80);
    assert_eq!(web.protocol, Protocol::Tcp);
    assert_eq!(web.scheduler, SchedulerKind::Wrr);
    assert_eq!(web.forward, ForwardMode::Nat);
    assert!(web.snat.is_empty());
    assert_eq!(web.sorry_server, None);
    assert_eq!(web.maglev_table_size, 65_537);

    let [b1, b2] = web.backends.as_slice() else {
        panic!("two backends expected")
    };
    assert_eq!(
        b1.address,
        "10.123.1.11:8080".parse::<std::net::SocketAddr>().unwrap()
    );
    assert_eq!(b1.weight, 3);
    assert_eq!(
        b1.check.kind,
        CheckKind::Http {
            port: None,
            get: HttpGet {
                path: "/".into(),
                expect_status: 200,
                digest: None,
                host: None,
                tls: None,
            },
        }
    );
    assert_eq!(b1.check.interval, Duration::from_millis(200));
    assert_eq!(b1.check.timeout, Duration::from_millis(500));
    assert_eq!((b1.check.rise, b1.check.fall), (2, 2));
    assert_eq!(
        b2.address,
        "10.123.1.12:8080".parse::<std::net::SocketAddr>().unwrap()
    );
    assert_eq!(b2.weight, 1);
    assert_eq!(b2.check.kind, CheckKind::Tcp { port: None });

    assert_eq!(c.vip_owner(web.vip), None);
    assert_eq!(c.summary(), "web 10.123.0.50:80 tcp wrr nat 2 backends\n");
}

#[test]
fn contract_with_its_commented_sections_enabled_parses() {
    // The commented-out VRRP and BGP parts of the contract are part of it too.
    let text = std::fs::read_to_string(configs_dir().join("contract.toml")).unwrap();
    let enabled: String = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            let uncommented = t.strip_prefix('#').map_or(t, str::trim_start);
            let is_section = ["[[vrrp]]", "[bgp]", "[[bgp.", "[sync]"]
                .iter()
                .any(|s| uncommented.starts_with(s));
            let is_key = uncommented.split_once(" = ").is_some_and(|(k, _)| {
                !k.contains(' ') && !["cores", "snat", "sorry_server"].contains(&k)
            });
            if t.starts_with('#') && (is_section || is_key) {
                format!("{uncommented}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    // As printed, the sketch announces 10.0.0.0/25 while its VIP is 10.123.0.50:
    // that prefix could never be announced, and exactly that is reported.
    let errs = parse(&enabled, "contract-enabled.toml").unwrap_err().0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].field, "bgp.announce[0].prefix");
    assert_eq!(errs[0].line, line_of(&enabled, "prefix = \"10.0.0.0/25\""));
    assert!(errs[0].message.contains("contains no service VIP"));

    let enabled = enabled.replacen("prefix = \"10.0.0.0/25\"", "prefix = \"10.123.0.0/25\"", 1);
    let c = parse(&enabled, "contract-enabled.toml").unwrap_or_else(|e| panic!("{e}\n{enabled}"));
    let v = &c.vrrp[0];
    assert_eq!((v.vrid, v.version, v.priority), (51, 3, 150));
    assert_eq!(v.advert_interval, Duration::from_millis(100));
    let bgp = c.bgp.as_ref().expect("bgp section");
    assert_eq!((bgp.local_as, bgp.peers[0].remote_as), (65001, 65000));
    assert_eq!(bgp.peers[0].hold_time_s, 3);
    assert_eq!(bgp.announces[0].prefix.to_string(), "10.123.0.0/25");
    assert_eq!(
        c.vip_owner(Ipv4Addr::new(10, 123, 0, 50))
            .map(|v| v.name.as_str()),
        Some("site-a")
    );
    let sync = c.sync.as_ref().expect("sync section");
    assert_eq!(sync.interface, "eth0");
    assert_eq!(sync.peers, vec![Ipv4Addr::new(10, 132, 0, 12)]);
    assert_eq!(sync.key_file, Path::new("/etc/vipd/sync.key"));
    assert_eq!((sync.port, sync.node_id), (8848, None));
    assert_eq!(sync.group, Ipv4Addr::new(224, 0, 0, 81));
}

/// `[sync]` with every key, then each key broken in turn.
const SYNC: &str = r#"
[sync]
interface = "eth1"
peers = ["10.0.1.12", "10.0.1.13"]
key_file = "/etc/vipd/sync.key"
node_id = 7
port = 9000
dump_deadline_ms = 2000
flush_after_ms = 3
"#;

#[test]
fn sync_section_reads_every_key_and_names_what_is_wrong() {
    let text = format!("{BASE}{SYNC}");
    let c = parse(&text, FILE).expect("valid");
    let s = c.sync.expect("sync");
    assert_eq!(s.node_id, Some(7));
    assert_eq!(s.port, 9000);
    assert_eq!(s.dump_deadline, Duration::from_secs(2));
    assert_eq!(s.flush_after, Duration::from_millis(3));
    assert_eq!(s.peers.len(), 2);
    let multicast = parse(
        &format!("{BASE}[sync]\ninterface = \"eth1\"\nkey_file = \"k\"\n"),
        FILE,
    )
    .expect("valid")
    .sync
    .expect("sync");
    assert!(multicast.peers.is_empty(), "no peers: the multicast group");

    for (from, to, field, why) in [
        ("node_id = 7", "node_id = 0", "sync.node_id", "1"),
        ("node_id = 7", "node_id = 65536", "sync.node_id", "65535"),
        ("node_id = 7", "node_id = -1", "sync.node_id", "1"),
        ("node_id = 7", "node_id = 1e308", "sync.node_id", "integer"),
        ("port = 9000", "port = 0", "sync.port", "65535"),
        (
            "dump_deadline_ms = 2000",
            "dump_deadline_ms = 9223372036854775807",
            "sync.dump_deadline_ms",
            "",
        ),
        (
            "flush_after_ms = 3",
            "flush_after_ms = 11",
            "sync.flush_after_ms",
            "10",
        ),
        (
            "flush_after_ms = 3",
            "flush_after_ms = nan",
            "sync.flush_after_ms",
            "integer",
        ),
        (
            "\"10.0.1.13\"",
            "\"224.0.0.81\"",
            "sync.peers[1]",
            "not a unicast address",
        ),
        (
            "node_id = 7",
            "group = \"10.0.0.1\"",
            "sync.group",
            "not a multicast address",
        ),
        (
            "key_file = \"/etc/vipd/sync.key\"",
            "key_file = \"\"",
            "sync.key_file",
            "shared sync key",
        ),
        ("port = 9000", "prot = 9000", "sync.prot", "port"),
    ] {
        let text = format!("{BASE}{}", SYNC.replacen(from, to, 1));
        single_error(&text, field, to, why);
    }
    let missing = errors(&format!("{BASE}[sync]\ninterface = \"eth1\"\n"));
    assert!(
        missing.iter().any(|e| e.field == "sync.key_file"),
        "{missing:#?}"
    );
}

#[test]
fn addresses_a_vrrp_instance_holds_that_no_service_uses_are_floating() {
    let text = edit(
        "vips = [\"10.0.0.10\"]",
        "vips = [\"10.0.0.10\", \"192.168.10.1\"]",
    );
    let c = parse(&text, FILE).expect("valid");
    let floating: Vec<_> = c
        .floating_addresses()
        .map(|(v, a)| (v.name.clone(), a))
        .collect();
    assert_eq!(
        floating,
        vec![("v10".to_string(), Ipv4Addr::new(192, 168, 10, 1).into())]
    );
    assert_eq!(
        parse(BASE, FILE)
            .expect("valid")
            .floating_addresses()
            .count(),
        0
    );
}

#[test]
fn every_example_config_loads() {
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(configs_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let c = load(&path).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
            loaded.push((path.file_stem().unwrap().to_string_lossy().into_owned(), c));
        }
    }
    assert!(
        loaded.len() >= 5,
        "contract and four nodes expected, found {}",
        loaded.len()
    );

    let node = |n: &str| -> &Config {
        &loaded
            .iter()
            .find(|(name, _)| name == n)
            .unwrap_or_else(|| panic!("{n} missing"))
            .1
    };
    let site_prefix: Prefix = "10.0.0.0/24".parse().expect("valid prefix");
    // The primary site's prefixes are longer than the backup's, and each
    // holds the VIPs of one VRRP instance: it is announced only by that
    // instance's master.
    for (site, len) in [("a", 29), ("b", 28)] {
        let (lb1, lb2) = (
            node(&format!("site-{site}-lb1")),
            node(&format!("site-{site}-lb2")),
        );
        for c in [lb1, lb2] {
            let bgp = c.bgp.as_ref().expect("every node speaks BGP");
            assert!(bgp.announces.iter().all(|a| a.prefix.len == len));
            for a in &bgp.announces {
                let instances = c
                    .vrrp
                    .iter()
                    .filter(|v| v.ipv4_vips().any(|ip| a.prefix.contains(ip)))
                    .count();
                assert_eq!(instances, 1, "{} covers {instances} instances", a.prefix);
            }
            for s in &c.services {
                assert!(site_prefix.contains(s.vip), "{} outside 10.0.0.0/24", s.vip);
                assert!(c.vip_owner(s.vip).is_some(), "{} has no VRRP owner", s.vip);
            }
        }
        // Each node of a pair is master (higher priority) of exactly one VIP.
        let masters = |me: &Config, peer: &Config| {
            me.vrrp
                .iter()
                .filter(|v| {
                    let p = peer
                        .vrrp
                        .iter()
                        .find(|o| o.vrid == v.vrid)
                        .expect("same vrids");
                    v.priority > p.priority
                })
                .count()
        };
        assert_eq!(masters(lb1, lb2), 1);
        assert_eq!(masters(lb2, lb1), 1);
    }
}

#[test]
fn unknown_key_is_named_with_a_suggestion() {
    let text = edit("weight = 2", "wieght = 2");
    let e = single_error(
        &text,
        "service[0].backend[1].wieght",
        "wieght",
        "did you mean `weight`?",
    );
    assert!(e.message.contains("[[service.backend]]"), "{}", e.message);

    let text = edit("[node]", "[node]\ncolour = \"blue\"");
    let e = single_error(
        &text,
        "node.colour",
        "colour",
        "unknown key `colour` in [node]",
    );
    assert!(
        e.message.contains("known keys: name, site"),
        "{}",
        e.message
    );

    let text = edit("[bgp]", "[bpg]\nx = 1\n[bgp]");
    let errs = errors(&text);
    assert!(errs
        .iter()
        .any(|e| e.field == "bpg" && e.message.contains("did you mean `bgp`?")));
}

#[test]
fn wrong_type() {
    let text = edit("port = 80", "port = \"80\"");
    single_error(
        &text,
        "service[0].port",
        "port = \"80\"",
        "expected an integer, found the string \"80\"",
    );
}

#[test]
fn bad_address() {
    let text = edit("192.168.10.11:80", "192.168.10.300:80");
    single_error(
        &text,
        "service[0].backend[0].address",
        "192.168.10.300",
        "is not an address and port such as 10.0.0.1:8080 or [2001:db8::1]:8080",
    );

    let text = edit(
        "vips = [\"10.0.0.10\"]",
        "vips = [\"10.0.0.10\", \"10.0.0\"]",
    );
    single_error(
        &text,
        "vrrp[0].vips[1]",
        "vips",
        "`10.0.0` is not an IPv4 or IPv6 address",
    );
}

/// BASE with its service moved to IPv6, beside the IPv4 VRRP instance.
fn ipv6_service(service_keys: &str, backend: &str) -> String {
    edit(
        "vip = \"10.0.0.10\"",
        &format!("vip = \"2001:db8::50\"{service_keys}"),
    )
    .replacen("192.168.10.11:80", backend, 1)
    .replacen("192.168.10.12:80", "[2001:db8:1::12]:80", 1)
    .replacen(
        "prefix = \"10.0.0.0/25\"",
        "prefix = \"10.0.0.0/25\"\n  condition = \"always\"",
        1,
    )
}

#[test]
fn ipv6_services() {
    let c =
        parse(&ipv6_service("", "[2001:db8:1::11]:8080"), FILE).unwrap_or_else(|e| panic!("{e}"));
    let s = &c.services[0];
    assert_eq!(s.vip, "2001:db8::50".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(
        s.backends[0].address,
        "[2001:db8:1::11]:8080"
            .parse::<std::net::SocketAddr>()
            .unwrap()
    );
    let fullnat = ipv6_service(
        "\nforward = \"fullnat\"\nsnat = [\"2001:db8:1::100\", \"2001:db8:1::101\"]\nsorry_server = \"[2001:db8:1::99]:80\"",
        "[2001:db8:1::11]:8080",
    );
    let c = parse(&fullnat, FILE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.services[0].snat.len(), 2);
    assert!(c.services[0].sorry_server.is_some_and(|a| a.is_ipv6()));

    // Every address of a service is of its VIP's family.
    single_error(
        &ipv6_service("", "192.168.10.11:80"),
        "service[0].backend[0].address",
        "192.168.10.11",
        "backend 192.168.10.11:80 is not of the VIP 2001:db8::50's family; backends must be IPv6",
    );
    single_error(
        &ipv6_service(
            "\nforward = \"fullnat\"\nsnat = [\"10.1.1.1\"]",
            "[2001:db8:1::11]:80",
        ),
        "service[0].snat[0]",
        "snat",
        "10.1.1.1 is not of the VIP 2001:db8::50's family",
    );
    single_error(
        &ipv6_service("\nsorry_server = \"10.1.1.9:80\"", "[2001:db8:1::11]:80"),
        "service[0].sorry_server",
        "sorry_server",
        "10.1.1.9:80 is not of the VIP 2001:db8::50's family",
    );
    // Addresses no client can reach through a router are no VIP.
    for (vip, why) in [
        ("fe80::50", "link-local"),
        ("ff02::1", "multicast"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("::ffff:10.0.0.10", "IPv4-mapped"),
        ("255.255.255.255", "broadcast"),
        ("0.0.0.0", "unspecified"),
    ] {
        let backend = if vip.contains(':') {
            "[2001:db8:1::11]:80"
        } else {
            "10.1.1.1:80"
        };
        let text = ipv6_service("", backend)
            .replacen("2001:db8::50", vip, 1)
            .replacen(
                "[2001:db8:1::12]:80",
                if vip.contains(':') {
                    "[2001:db8:1::12]:80"
                } else {
                    "10.1.1.2:80"
                },
                1,
            );
        let errs = errors(&text);
        assert!(
            errs.iter()
                .any(|e| e.field == "service[0].vip" && e.message.contains(why)),
            "{vip}: {errs:#?}"
        );
    }
    // A brackets-less IPv6 backend is not an address and port.
    single_error(
        &ipv6_service("", "2001:db8:1::11:80"),
        "service[0].backend[0].address",
        "2001:db8:1::11:80",
        "is not an address and port",
    );
}

#[test]
fn ipv6_vrrp_instances() {
    let text = edit(
        "vips = [\"10.0.0.10\"]",
        "vips = [\"2001:db8::50\"]\nunicast_peers = [\"fe80::3\"]",
    );
    let cfg = parse(&text, FILE).expect("an IPv6 instance loads");
    let v = &cfg.vrrp[0];
    assert_eq!(v.family(), vrrp::AddressFamily::Ipv6);
    assert_eq!(v.virtual_mac(), [0, 0, 0x5e, 0, 2, 10]);
    assert_eq!(
        v.vips,
        vec!["2001:db8::50".parse::<std::net::IpAddr>().unwrap()]
    );

    let mixed = edit(
        "vips = [\"10.0.0.10\"]",
        "vips = [\"10.0.0.10\", \"2001:db8::50\"]",
    );
    single_error(
        &mixed,
        "vrrp[0].vips[1]",
        "vips",
        "address 2001:db8::50 is not IPv4",
    );

    let v2 = edit(
        "vips = [\"10.0.0.10\"]",
        "version = 2\nadvert_interval_ms = 1000\nvips = [\"2001:db8::50\"]",
    );
    let e = single_error(
        &v2,
        "vrrp[0].version",
        "version = 2",
        "VRRPv2 carries IPv4 addresses only",
    );
    assert!(e.message.contains("2001:db8::50"), "{e}");

    let global_peer = edit(
        "vips = [\"10.0.0.10\"]",
        "vips = [\"2001:db8::50\"]\nunicast_peers = [\"2001:db8::3\"]",
    );
    single_error(
        &global_peer,
        "vrrp[0].unicast_peers[0]",
        "unicast_peers",
        "2001:db8::3 is not link-local",
    );

    let v4_peer = edit(
        "vips = [\"10.0.0.10\"]",
        "vips = [\"2001:db8::50\"]\nunicast_peers = [\"10.0.0.3\"]",
    );
    single_error(
        &v4_peer,
        "vrrp[0].unicast_peers[0]",
        "unicast_peers",
        "10.0.0.3 is not IPv6 like vip 2001:db8::50",
    );

    // Their virtual MACs differ, so both families may use one vrid.
    let both = edit(
        "[bgp]",
        "[[vrrp]]\nname = \"v10-6\"\ninterface = \"eth0\"\nvrid = 10\nvips = [\"2001:db8::50\"]\n\n[bgp]",
    );
    parse(&both, FILE).expect("IPv4 and IPv6 instances share vrid 10");
}

#[test]
fn duplicate_service() {
    let second = "\n[[service]]\nname = \"web\"\nvip = \"10.0.0.10\"\nport = 80\n  [[service.backend]]\n  address = \"192.168.10.13:80\"\n";
    let text = edit("[[vrrp]]", &format!("{second}\n[[vrrp]]"));
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    let header = line_of(&text, "name = \"web\"");
    let second_name = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("name = \"web\""))
        .nth(1)
        .unwrap()
        .0
        + 1;
    assert_eq!(
        (errs[0].field.as_str(), errs[0].line),
        ("service[1].name", second_name)
    );
    assert!(errs[0]
        .message
        .contains(&format!("already used by service[0] (line {header})")));
    assert_eq!(errs[1].field, "service[1].vip");
    assert!(errs[1]
        .message
        .contains("10.0.0.10:80/tcp is already served by service[0]"));
}

#[test]
fn fullnat_needs_snat_and_only_fullnat_takes_it() {
    let text = edit(
        "scheduler = \"wrr\"",
        "scheduler = \"wrr\"\nforward = \"fullnat\"",
    );
    single_error(&text, "service[0].snat", "[[service]]", "needs `snat`");

    let text = edit(
        "scheduler = \"wrr\"",
        "scheduler = \"wrr\"\nsnat = [\"192.168.10.100\"]",
    );
    single_error(
        &text,
        "service[0].snat",
        "snat =",
        "only applies to forward = \"fullnat\"",
    );

    let text = edit(
        "scheduler = \"wrr\"",
        "forward = \"fullnat\"\nsnat = [\"192.168.10.100\"]",
    );
    let c = parse(&text, FILE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.services[0].snat, [Ipv4Addr::new(192, 168, 10, 100)]);
}

#[test]
fn maglev_table_size_must_be_prime() {
    let text = edit(
        "scheduler = \"wrr\"",
        "scheduler = \"maglev\"\nmaglev_table_size = 65536",
    );
    single_error(
        &text,
        "service[0].maglev_table_size",
        "65536",
        "such as 65537",
    );
}

#[test]
fn locality_schedulers_take_an_expiration() {
    let c = parse(&edit("scheduler = \"wrr\"", "scheduler = \"lblcr\""), FILE)
        .expect("lblcr is a scheduler");
    assert_eq!(c.services[0].scheduler, SchedulerKind::Lblcr);
    assert_eq!(
        c.services[0].locality_expiration,
        Duration::from_secs(86_400)
    );
    let c = parse(
        &edit(
            "scheduler = \"wrr\"",
            "scheduler = \"lblc\"\nlocality_expiration_s = 360",
        ),
        FILE,
    )
    .expect("lblc with an expiration");
    assert_eq!(c.services[0].scheduler, SchedulerKind::Lblc);
    assert_eq!(c.services[0].locality_expiration, Duration::from_secs(360));
    let text = edit(
        "scheduler = \"wrr\"",
        "scheduler = \"wrr\"\nlocality_expiration_s = 360",
    );
    single_error(
        &text,
        "service[0].locality_expiration_s",
        "locality_expiration_s",
        "only applies to scheduler = \"lblc\" or \"lblcr\", this service uses \"wrr\"",
    );
    let text = edit(
        "scheduler = \"wrr\"",
        "scheduler = \"lblc\"\nlocality_expiration_s = 0",
    );
    single_error(
        &text,
        "service[0].locality_expiration_s",
        "locality_expiration_s",
        "",
    );
}

#[test]
fn bad_vrid() {
    let text = edit("vrid = 10", "vrid = 0");
    single_error(&text, "vrrp[0].vrid", "vrid = 0", "between 1 and 255");

    let text = edit("vrid = 10", "vrid = 256");
    single_error(&text, "vrrp[0].vrid", "vrid = 256", "256 is out of range");

    let second = "[[vrrp]]\nname = \"v20\"\ninterface = \"eth0\"\nvrid = 10\nvips = [\"10.0.0.20\"]\n\n[bgp]";
    let text = edit("[bgp]", second);
    let at = text
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "vrid = 10")
        .nth(1)
        .unwrap()
        .0
        + 1;
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!((errs[0].field.as_str(), errs[0].line), ("vrrp[1].vrid", at));
    assert!(
        errs[0].message.contains("00:00:5e:00:01:0a"),
        "{}",
        errs[0].message
    );
}

#[test]
fn vrrp_v2_interval_must_be_whole_seconds() {
    let text = edit(
        "vrid = 10",
        "vrid = 10\nversion = 2\nadvert_interval_ms = 1500",
    );
    single_error(&text, "vrrp[0].advert_interval_ms", "1500", "whole seconds");

    let text = edit(
        "vrid = 10",
        "vrid = 10\nversion = 3\nadvert_interval_ms = 105",
    );
    single_error(&text, "vrrp[0].advert_interval_ms", "105", "multiple of 10");

    let text = edit(
        "vrid = 10",
        "vrid = 10\nversion = 2\nadvert_interval_ms = 2000\nauth_pass = \"secret\"",
    );
    let c = parse(&text, FILE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.vrrp[0].advert_interval, Duration::from_secs(2));

    let text = edit("vrid = 10", "vrid = 10\nauth_pass = \"secret\"");
    single_error(
        &text,
        "vrrp[0].auth_pass",
        "auth_pass",
        "VRRPv3 has no authentication",
    );
}

#[test]
fn dr_backend_port_must_match_service_port() {
    let text = edit("scheduler = \"wrr\"", "forward = \"dr\"").replacen(
        "192.168.10.12:80",
        "192.168.10.12:8080",
        1,
    );
    single_error(
        &text,
        "service[0].backend[1].address",
        "192.168.10.12:8080",
        "rewrites only MAC addresses",
    );
}

#[test]
fn vrrp_interface_must_be_a_dataplane_interface() {
    let text = edit("interface = \"eth0\"", "interface = \"eth9\"");
    single_error(
        &text,
        "vrrp[0].interface",
        "eth9",
        "not one of dataplane.interfaces (eth0, eth1)",
    );
}

#[test]
fn vip_in_two_instances() {
    let second = "[[vrrp]]\nname = \"v20\"\ninterface = \"eth1\"\nvrid = 20\nvips = [\"10.0.0.20\", \"10.0.0.10\"]\n\n[bgp]";
    let text = edit("[bgp]", second);
    single_error(
        &text,
        "vrrp[1].vips[1]",
        "10.0.0.20\", \"10.0.0.10",
        "already belongs to vrrp[0]",
    );
}

#[test]
fn prefix_with_host_bits() {
    let text = edit("10.0.0.0/25", "10.0.0.1/25");
    single_error(
        &text,
        "bgp.announce[0].prefix",
        "10.0.0.1/25",
        "did you mean 10.0.0.0/25?",
    );
}

#[test]
fn announce_must_cover_a_vip_unless_always() {
    let text = edit("10.0.0.0/25", "10.9.0.0/24");
    single_error(
        &text,
        "bgp.announce[0].prefix",
        "10.9.0.0/24",
        "contains no service VIP",
    );

    let text = edit(
        "prefix = \"10.0.0.0/25\"",
        "prefix = \"10.9.0.0/24\"\n  condition = \"always\"",
    );
    let c = parse(&text, FILE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.bgp.unwrap().announces[0].condition,
        AnnounceCondition::Always
    );
}

#[test]
fn check_keys_depend_on_the_kind() {
    let text = edit(
        "weight = 2",
        "weight = 2\n  check = { kind = \"tcp\", path = \"/\" }",
    );
    single_error(
        &text,
        "service[0].backend[1].check.path",
        "check = ",
        "(it is for kind = \"http\" or kind = \"https\")",
    );

    let text = edit(
        "weight = 2",
        "weight = 2\n  check = { kind = \"http\", path = \"health\" }",
    );
    single_error(
        &text,
        "service[0].backend[1].check.path",
        "check = ",
        "must start with '/'",
    );

    let text = edit(
        "weight = 2",
        "weight = 2\n  [service.backend.check]\n  kind = \"script\"\n  command = [\"/bin/check\", \"-q\"]\n  digest = \"d41d8cd98f00b204e9800998ecf8427e\"",
    );
    single_error(
        &text,
        "service[0].backend[1].check.digest",
        "digest",
        "does not apply to kind = \"script\"",
    );
}

/// The check of backend 2 in `BASE`, written as an inline table.
fn with_check(check: &str) -> String {
    edit(
        "weight = 2",
        &format!("weight = 2\n  check = {{ {check} }}"),
    )
}

fn check_of(check: &str) -> CheckKind {
    let c = parse(&with_check(check), FILE).unwrap_or_else(|e| panic!("{check}: {e}"));
    c.services[0].backends[1].check.kind.clone()
}

const CHECK: &str = "service[0].backend[1].check";

#[test]
fn https_udp_dns_and_ping_checks() {
    let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    match check_of(&format!(
        "kind = \"https\", path = \"/h\", expect_status = 204, sni = \"www.example.test\", digest = \"{sha}\""
    )) {
        CheckKind::Http {
            get:
                HttpGet {
                    path,
                    expect_status,
                    digest,
                    tls: Some(Tls { sni, ca_file }),
                    ..
                },
            ..
        } => {
            assert_eq!((path.as_str(), expect_status), ("/h", 204));
            assert_eq!(digest.map(|d| d.to_string()).as_deref(), Some(sha));
            assert_eq!(sni.as_deref(), Some("www.example.test"));
            assert_eq!(ca_file, None, "verify defaults to false");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        check_of("kind = \"udp\", payload_hex = \"00ff\", expect = \"pong\", port = 5353"),
        CheckKind::Udp {
            port: Some(5353),
            payload: vec![0, 0xff],
            expect: Some(b"pong".to_vec()),
        }
    );
    assert_eq!(
        check_of("kind = \"dns\", name = \"svc.example.test\""),
        CheckKind::Dns {
            port: None,
            name: "svc.example.test".into(),
            qtype: control::config::QType::A,
        }
    );
    assert!(matches!(
        check_of("kind = \"dns\", name = \"svc.test\", qtype = \"AAAA\""),
        CheckKind::Dns {
            qtype: control::config::QType::Aaaa,
            ..
        }
    ));
    assert_eq!(check_of("kind = \"ping\""), CheckKind::Ping);
}

#[test]
fn new_check_kinds_report_bad_keys() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "kind = \"https\", verify = true",
            "verify",
            "needs `ca_file`",
        ),
        (
            "kind = \"https\", ca_file = \"/etc/ssl/ca.pem\"",
            "ca_file",
            "only read with verify = true",
        ),
        (
            "kind = \"https\", verify = true, ca_file = \"/nonexistent/ca.pem\"",
            "ca_file",
            "cannot read CA certificates from /nonexistent/ca.pem",
        ),
        (
            "kind = \"https\", sni = \"bad name\"",
            "sni",
            "not a valid TLS server name",
        ),
        (
            "kind = \"http\", digest = \"abc\"",
            "digest",
            "3 characters: give 32 hex characters (MD5",
        ),
        (
            "kind = \"udp\"",
            "payload",
            "needs `payload` (text) or `payload_hex`",
        ),
        (
            "kind = \"udp\", payload = \"a\", payload_hex = \"61\"",
            "payload_hex",
            "not both",
        ),
        (
            "kind = \"udp\", payload_hex = \"6\"",
            "payload_hex",
            "is not hex",
        ),
        (
            "kind = \"udp\", payload = \"a\", expect_hex = \"zz\"",
            "expect_hex",
            "is not hex",
        ),
        ("kind = \"dns\"", "name", "missing"),
        (
            "kind = \"dns\", name = \"a..b\"",
            "name",
            "is empty or longer than 63",
        ),
        (
            "kind = \"dns\", name = \"a.b\", qtype = \"MX\"",
            "qtype",
            "\"A\" or \"AAAA\"",
        ),
        (
            "kind = \"ping\", port = 80",
            "port",
            "does not apply to kind = \"ping\"",
        ),
        (
            "kind = \"tcp\", sni = \"a\"",
            "sni",
            "(it is for kind = \"https\")",
        ),
        (
            "kind = \"icmp\"",
            "kind",
            "tcp, http, https, udp, dns, ping, script",
        ),
    ];
    for (check, key, why) in cases {
        let errs = errors(&with_check(check));
        let field = format!("{CHECK}.{key}");
        assert!(
            errs.iter()
                .any(|e| e.field == field && e.message.contains(why)),
            "{check}: want {field}: {why}, got {errs:#?}"
        );
    }
}

#[test]
fn missing_required_key_points_at_its_table() {
    let text = edit("  address = \"192.168.10.11:80\"\n", "  weight = 4\n");
    let at = "[[service.backend]]";
    single_error(
        &text,
        "service[0].backend[0].address",
        at,
        "required key `address` is missing",
    );
}

#[test]
fn multiple_errors_are_all_reported_in_file_order() {
    let text = edit("port = 80", "port = 0")
        .replacen("weight = 2", "weight = 70000", 1)
        .replacen("vrid = 10", "vrid = \"ten\"", 1)
        .replacen("[dataplane]", "[dataplane]\nqueues = 0", 1);
    let errs = errors(&text);
    let got: Vec<(&str, usize)> = errs.iter().map(|e| (e.field.as_str(), e.line)).collect();
    assert_eq!(
        got,
        [
            ("dataplane.queues", line_of(&text, "queues = 0")),
            ("service[0].port", line_of(&text, "port = 0")),
            (
                "service[0].backend[1].weight",
                line_of(&text, "weight = 70000")
            ),
            ("vrrp[0].vrid", line_of(&text, "vrid = \"ten\"")),
        ]
    );
}

#[test]
fn one_bad_backend_rejects_the_whole_file() {
    let dir = std::env::temp_dir().join(format!("vipd-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad-backend.toml");
    std::fs::write(&path, edit("192.168.10.12:80", "192.168.10.12")).unwrap();
    let result = load(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    let errs = result
        .expect_err("a file with a bad backend must not load")
        .0;
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].file, path.display().to_string());
    assert_eq!(errs[0].field, "service[0].backend[1].address");
}

#[test]
fn unreadable_file_and_syntax_errors() {
    let missing = configs_dir().join("no-such-file.toml");
    let errs = load(&missing).unwrap_err().0;
    assert_eq!(
        (errs.len(), errs[0].line, errs[0].field.as_str()),
        (1, 0, "")
    );
    assert!(errs[0].message.contains("cannot read"));

    let text = edit("vrid = 10", "vrid = = 10");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, line_of(&text, "vrid = = 10"));
    assert!(
        errs[0].message.starts_with("TOML syntax error"),
        "{}",
        errs[0].message
    );
}

#[test]
fn display_format() {
    let e = ConfigError {
        file: "a.toml".into(),
        line: 7,
        field: "service[1].backend[0].weight".into(),
        message: "too heavy".into(),
    };
    assert_eq!(
        e.to_string(),
        "a.toml:7: service[1].backend[0].weight: too heavy"
    );

    let text = edit("port = 80", "port = -1").replacen("vrid = 10", "vrid = 0", 1);
    let all = parse(&text, FILE).unwrap_err();
    let shown = all.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), all.0.len());
    for (line, e) in lines.iter().zip(&all.0) {
        assert_eq!(
            *line,
            format!("{FILE}:{}: {}: {}", e.line, e.field, e.message)
        );
    }
}

#[test]
fn damaged_files_give_located_errors_never_a_panic() {
    // Drop each line of each example in turn: whatever breaks must be
    // reported with a line and (outside syntax errors) a field.
    for entry in std::fs::read_dir(configs_dir()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for skip in 0..lines.len() {
            let damaged: String = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            if let Err(ConfigErrors(errs)) = parse(&damaged, FILE) {
                assert!(!errs.is_empty());
                for e in errs {
                    assert!(
                        e.line >= 1 && e.line <= lines.len(),
                        "{}: {e}",
                        path.display()
                    );
                    assert!(!e.message.is_empty());
                    assert!(
                        !e.field.is_empty() || e.message.starts_with("TOML syntax error"),
                        "{e}"
                    );
                }
            }
        }
    }
}

#[test]
fn wrong_shapes_are_reported_not_guessed() {
    let text = edit("[[service]]", "[service]");
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.field == "service" && e.message.contains("write each entry as [[service]]")),
        "{errs:#?}"
    );

    let text = edit("weight = 2", "weight = 2\n  check = \"tcp\"");
    single_error(
        &text,
        "service[0].backend[1].check",
        "check = ",
        "expected a table, found the string \"tcp\"",
    );

    let text = edit("scheduler = \"wrr\"", "scheduler = \"wrrr\"");
    single_error(
        &text,
        "service[0].scheduler",
        "wrrr",
        "expected one of: rr, wrr, lc, wlc, sh, dh, sed, nq, lblc, lblcr, maglev",
    );
}

#[test]
fn dataplane_and_control_rules() {
    let text = edit("[dataplane]", "[dataplane]\nqueues = 2\ncores = [1]");
    single_error(
        &text,
        "dataplane.cores",
        "cores",
        "1 cores given for 2 queue(s)",
    );

    let text = edit("[dataplane]", "[dataplane]\nframes_per_worker = 3000");
    single_error(&text, "dataplane.frames_per_worker", "3000", "try 4096");

    let text = edit("[dataplane]", "[dataplane]\nsyn_burst = 500");
    single_error(
        &text,
        "dataplane.syn_burst",
        "syn_burst",
        "no effect without syn_rate_limit",
    );
    let c = parse(
        &edit("[dataplane]", "[dataplane]\nsyn_rate_limit = 50000"),
        FILE,
    )
    .expect("a SYN rate alone is valid");
    assert_eq!(
        (c.dataplane.syn_rate_limit, c.dataplane.syn_burst),
        (50_000, 5_000),
        "the burst defaults to a tenth of the rate"
    );

    let text = edit(
        "\"eth0\", \"eth1\"]",
        "\"eth0\", \"a-very-long-interface0\"]",
    );
    single_error(
        &text,
        "dataplane.interfaces[1]",
        "a-very-long",
        "at most 15 bytes",
    );

    let text = edit("\"eth0\", \"eth1\"]", "\"eth0\", \"eth0\"]");
    single_error(
        &text,
        "dataplane.interfaces[1]",
        "interfaces",
        "listed twice",
    );

    let text = edit("[node]", "[control]\nsocket_mode = \"0999\"\n\n[node]");
    single_error(
        &text,
        "control.socket_mode",
        "0999",
        "not an octal permission",
    );

    let text = edit("[node]", "[dataplane.timeouts]\nudp_ms = 0\n\n[node]");
    single_error(
        &text,
        "dataplane.timeouts.udp_ms",
        "udp_ms",
        "0 is out of range",
    );

    let text = edit(
        "[dataplane]",
        "[control]\nsocket = \"/run/vipd/x.sock\"\nsocket_mode = \"0640\"\nmetrics = \"[::1]:9100\"\n\n[dataplane]\nqueues = 2\ncores = [0, 1]\nxdp_mode = \"skb\"",
    );
    let c = parse(&text, FILE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.control.socket_mode, 0o640);
    assert_eq!(c.control.metrics, Some("[::1]:9100".parse().unwrap()));
    assert_eq!(c.dataplane.cores, Some(vec![0, 1]));
    assert_eq!(c.dataplane.xdp_mode, XdpMode::Skb);
}

#[test]
fn bgp_rules() {
    let text = edit("remote_as = 65000", "remote_as = 65000\n  hold_time_s = 2");
    single_error(
        &text,
        "bgp.peer[0].hold_time_s",
        "hold_time_s",
        "0 (no keepalives) or at least 3",
    );

    let text = edit(
        "remote_as = 65000",
        "remote_as = 65000\n  hold_time_s = 9\n  keepalive_s = 9",
    );
    single_error(
        &text,
        "bgp.peer[0].keepalive_s",
        "keepalive_s",
        "not below the hold time 9 s",
    );

    let text = edit(
        "prefix = \"10.0.0.0/25\"",
        "prefix = \"10.0.0.0/25\"\n  communities = [\"65000:100\", \"65000:70000\"]",
    );
    single_error(
        &text,
        "bgp.announce[0].communities[1]",
        "communities",
        "not a community",
    );

    let peer =
        "  [[bgp.peer]]\n  address=\"172.16.1.1\"\n  remote_as = 65009\n\n  [[bgp.announce]]";
    let text = edit("  [[bgp.announce]]", peer);
    single_error(&text, "bgp.peer[1].address", "address=", "listed twice");

    let text = edit(
        "prefix = \"10.0.0.0/25\"",
        "prefix = \"10.0.0.0/25\"\n  communities = [\"65001:100\"]\n  large_communities = [\"65001:1:2\"]\n  med = 10\n  prepend = 2",
    )
    .replacen("remote_as = 65000", "remote_as = 65000\n  passive = true\n  md5_password = \"s3cret\"", 1);
    let c = parse(&text, FILE).unwrap_or_else(|e| panic!("{e}"));
    let bgp = c.bgp.unwrap();
    let (p, a) = (&bgp.peers[0], &bgp.announces[0]);
    assert_eq!(
        (p.hold_time_s, p.port, p.connect_retry_s, p.max_prefixes),
        (90, 179, 5, 1000)
    );
    assert!(p.passive);
    assert_eq!(a.communities, [(65001, 100)]);
    assert_eq!(a.large_communities, [(65001, 1, 2)]);
    assert_eq!((a.med, a.prepend), (Some(10), 2));
}

/// `BASE` plus an IPv6 announce (`always`), with `peer_keys` added to the peer.
fn with_ipv6_announce(prefix: &str, peer_keys: &str) -> String {
    edit(
        "prefix = \"10.0.0.0/25\"",
        &format!("prefix = \"10.0.0.0/25\"\n  [[bgp.announce]]\n  prefix = \"{prefix}\"\n  condition = \"always\""),
    )
    .replacen("remote_as = 65000", &format!("remote_as = 65000{peer_keys}"), 1)
}

#[test]
fn bgp_ipv6_prefixes_peers_and_next_hops() {
    let text = with_ipv6_announce("2001:db8::/48", "");
    single_error(
        &text,
        "bgp.peer[0].address",
        "address = \"172.16.1.1\"",
        "has no IPv6 next hop for 2001:db8::/48: set next_hop_v6",
    );

    let nh = "\n  next_hop_v6 = \"2001:db8:20::2\"\n  next_hop_v6_link_local = \"fe80::2\"";
    let c = parse(&with_ipv6_announce("2001:db8::/48", nh), FILE).unwrap_or_else(|e| panic!("{e}"));
    let bgp = c.bgp.unwrap();
    let p = &bgp.peers[0];
    assert_eq!(p.families, [Family::Ipv4Unicast, Family::Ipv6Unicast]);
    let want = bgp::Ipv6NextHop {
        global: "2001:db8:20::2".parse().unwrap(),
        link_local: Some("fe80::2".parse().unwrap()),
    };
    assert_eq!(p.ipv6_next_hop, Some(want));
    assert_eq!(bgp.announces[1].prefix.to_string(), "2001:db8::/48");

    let c = parse(
        &with_ipv6_announce("2001:db8::/48", "\n  families = [\"ipv4\"]"),
        FILE,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.bgp.unwrap().peers[0].families, [Family::Ipv4Unicast]);

    let text = with_ipv6_announce("2001:db8::/48", "\n  next_hop_v6 = \"fe80::2\"");
    single_error(
        &text,
        "bgp.peer[0].next_hop_v6",
        "fe80::2",
        "must be a global unicast address",
    );
    let text = with_ipv6_announce("2001:db8::1/48", nh);
    single_error(
        &text,
        "bgp.announce[1].prefix",
        "2001:db8::1/48",
        "did you mean 2001:db8::/48?",
    );
    let text = with_ipv6_announce("2001:db8::/48", "\n  families = [\"ipv5\"]");
    single_error(
        &text,
        "bgp.peer[0].families[0]",
        "ipv5",
        "not an address family",
    );
    let text = with_ipv6_announce("2001:db8::/48", nh).replacen(
        "condition = \"always\"",
        "condition = \"always\"\n  next_hop = \"172.16.1.2\"",
        1,
    );
    single_error(
        &text,
        "bgp.announce[1].next_hop",
        "next_hop = \"172.16.1.2\"",
        "of the other address family",
    );
    let text = with_ipv6_announce("2001:db8::/48", nh).replacen(
        "condition = \"always\"",
        "condition = \"vip_healthy\"",
        1,
    );
    single_error(
        &text,
        "bgp.announce[1].prefix",
        "2001:db8::/48",
        "contains no service VIP",
    );

    // A session over IPv6.
    let v6_peer = edit("address = \"172.16.1.1\"", "address = \"2001:db8:20::1\"");
    single_error(
        &v6_peer,
        "bgp.peer[0].address",
        "2001:db8:20::1",
        "10.0.0.0/25 would have no IPv4 next hop of ours",
    );
    let text = v6_peer.replacen(
        "remote_as = 65000",
        "remote_as = 65000\n  local_address = \"172.16.1.2\"\n  bfd = {}\n  next_hop_v6 = \"2001:db8:20::2\"\n  families = [\"ipv6\"]",
        1,
    );
    let errs = errors(&text);
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["bgp.peer[0].local_address", "bgp.peer[0].bfd"],
        "{errs:#?}"
    );
    assert!(
        errs[0].message.contains("of the other address family"),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].message.contains("BFD runs over IPv4 only"),
        "{}",
        errs[1]
    );
    let text = v6_peer.replacen(
        "remote_as = 65000",
        "remote_as = 65000\n  local_address = \"2001:db8:20::2\"\n  families = [\"ipv6\"]",
        1,
    );
    let c = parse(&text, FILE).unwrap_or_else(|e| panic!("{e}"));
    let p = &c.bgp.unwrap().peers[0];
    assert_eq!(p.address.to_string(), "2001:db8:20::1");
    assert_eq!(p.families, [Family::Ipv6Unicast]);
}

#[test]
fn vrrp_tracking_rules() {
    let text = edit(
        "vips = [\"10.0.0.10\"]",
        "vips = [\"10.0.0.10\"]\n  [[vrrp.track_script]]\n  name = \"proc\"\n  command = \"pidof vipd\"\n  weight = -300",
    );
    single_error(
        &text,
        "vrrp[0].track_script[0].weight",
        "-300",
        "between -253 and 253",
    );

    let text = edit(
        "vips = [\"10.0.0.10\"]",
        "vips = [\"10.0.0.10\"]\nnotify = \"/usr/local/bin/vrrp-notify\"\n  [[vrrp.track_script]]\n  name = \"proc\"\n  command = \"pidof  vipd\"\n  weight = -5\n  fall = 3\n  rise = 2\n  [[vrrp.track_interface]]\n  name = \"eth1\"",
    );
    let c = parse(&text, FILE).unwrap_or_else(|e| panic!("{e}"));
    let v = &c.vrrp[0];
    assert_eq!(v.track_scripts[0].command, ["pidof", "vipd"]);
    assert_eq!(
        (
            v.track_scripts[0].weight,
            v.track_scripts[0].fall,
            v.track_scripts[0].rise
        ),
        (-5, 3, 2)
    );
    assert_eq!(v.track_interfaces[0].weight, None);
    assert_eq!(
        (v.version, v.priority, v.preempt, v.garp_count),
        (3, 100, true, 5)
    );
    assert_eq!(c.vip_owner(Ipv4Addr::new(10, 0, 0, 10)), Some(v));
    assert_eq!(c.vip_owner(Ipv4Addr::new(10, 0, 0, 11)), None);
}

#[test]
fn empty_lists_are_rejected() {
    let text = edit(
        "[[vrrp]]",
        "[[service]]\nname = \"empty\"\nvip = \"10.0.0.11\"\nport = 80\nbackend = []\n\n[[vrrp]]",
    );
    single_error(
        &text,
        "service[1].backend",
        "backend = []",
        "at least one [[service.backend]]",
    );

    let text = edit("[bgp]", "[bgp]\npeer = []").replacen(
        "  [[bgp.peer]]\n  address = \"172.16.1.1\"\n  remote_as = 65000\n",
        "",
        1,
    );
    single_error(&text, "bgp.peer", "peer = []", "at least one [[bgp.peer]]");

    let text = edit("vips = [\"10.0.0.10\"]", "vips = []");
    single_error(
        &text,
        "vrrp[0].vips",
        "vips = []",
        "0 VIPs given; list 1 to 20",
    );
}

#[test]
fn garp_refresh_defaults_to_ten_seconds_and_zero_turns_it_off() {
    let cfg = parse(BASE, FILE).expect("base loads");
    assert_eq!(cfg.vrrp[0].garp_refresh, Some(Duration::from_secs(10)));
    let off = parse(
        &edit("vrid = 10\n", "vrid = 10\ngarp_refresh_ms = 0\n"),
        FILE,
    )
    .expect("0 turns it off");
    assert_eq!(off.vrrp[0].garp_refresh, None);
    let e = parse(
        &edit("vrid = 10\n", "vrid = 10\ngarp_refresh_ms = 50\n"),
        FILE,
    )
    .expect_err("50 ms refused")
    .to_string();
    assert!(
        e.contains("garp_refresh_ms") && e.contains("at least 100 ms"),
        "{e}"
    );
}

#[test]
fn bgp_peer_bfd_takes_an_interval_and_a_multiplier_within_range() {
    let with = |bfd: &str| {
        edit(
            "remote_as = 65000",
            &format!("remote_as = 65000\n  bfd = {bfd}"),
        )
    };
    let c = parse(&with("{ interval_ms = 50, multiplier = 3 }"), FILE)
        .unwrap_or_else(|e| panic!("{e}"));
    let b = c.bgp.unwrap().peers[0].bfd.expect("bfd set");
    assert_eq!((b.interval, b.multiplier), (Duration::from_millis(50), 3));
    let c = parse(&with("{}"), FILE).unwrap_or_else(|e| panic!("{e}"));
    let b = c.bgp.unwrap().peers[0].bfd.expect("bfd set");
    assert_eq!((b.interval, b.multiplier), (Duration::from_millis(300), 3));
    assert!(parse(BASE, FILE).unwrap().bgp.unwrap().peers[0]
        .bfd
        .is_none());

    for (bfd, field, why) in [
        (
            "{ interval_ms = 5 }",
            "interval_ms",
            "must be between 10 and 60000",
        ),
        (
            "{ interval_ms = 60001 }",
            "interval_ms",
            "must be between 10 and 60000",
        ),
        (
            "{ multiplier = 0 }",
            "multiplier",
            "must be between 1 and 255",
        ),
        (
            "{ multiplier = 256 }",
            "multiplier",
            "must be between 1 and 255",
        ),
        ("{ interval = 50 }", "interval", "unknown key"),
        ("true", "bfd", "expected a table"),
    ] {
        let errs = errors(&with(bfd));
        assert_eq!(errs.len(), 1, "{bfd}: {errs:#?}");
        assert!(
            errs[0].field.starts_with("bgp.peer[0].bfd") && errs[0].field.ends_with(field),
            "{bfd}: {errs:#?}"
        );
        assert!(errs[0].message.contains(why), "{bfd}: {errs:#?}");
        assert_eq!(errs[0].line, line_of(&with(bfd), "bfd = "), "{bfd}");
    }
}

#[test]
fn drain_modes_and_their_values() {
    let with = |keys: &str| {
        edit(
            "router_id = \"172.16.1.2\"\n",
            &format!("router_id = \"172.16.1.2\"\n{keys}\n"),
        )
    };
    let drain_of = |text: &str| parse(text, FILE).expect("valid").bgp.expect("bgp").drain;
    assert_eq!(drain_of(BASE), DrainRoutes::Withdraw);
    assert_eq!(
        drain_of(&with("drain = \"med\"\ndrain_med = 500")),
        DrainRoutes::Med(500)
    );
    assert_eq!(
        drain_of(&with("drain = \"med\"")),
        DrainRoutes::Med(4_294_967_294)
    );
    assert_eq!(
        drain_of(&with("drain = \"prepend\"")),
        DrainRoutes::Prepend(3)
    );
    assert_eq!(
        drain_of(&with("drain = \"prepend\"\ndrain_prepend = 5")),
        DrainRoutes::Prepend(5)
    );
    let t = with("drain = \"sideways\"");
    single_error(&t, "bgp.drain", "sideways", "\"withdraw\"");
    let t = with("drain_med = 10");
    single_error(&t, "bgp.drain_med", "drain_med", "drain = \"med\"");
    let t = with("drain = \"med\"\ndrain_prepend = 2");
    single_error(
        &t,
        "bgp.drain_prepend",
        "drain_prepend",
        "drain = \"prepend\"",
    );
    let t = with("drain = \"prepend\"\ndrain_prepend = 11");
    single_error(&t, "bgp.drain_prepend", "drain_prepend", "");
    let t = with("drain = \"med\"\ndrain_med = -1");
    single_error(&t, "bgp.drain_med", "drain_med", "");
}
