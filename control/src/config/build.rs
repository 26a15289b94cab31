//! Reads each section into its typed form and checks what can be checked
//! within one entry. Checks that span entries live in `validate`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use toml_edit::Value;

use super::reader::{as_str, Ctx, Tbl};
use super::types::*;

const IPV4: &str = "an IPv4 address such as 10.0.0.1";
const SOCK4: &str = "an IPv4 address and port such as 10.0.0.1:8080";

/// A whole file; `None` when a required section could not be read at all.
pub(super) fn config(cx: &mut Ctx, root: &Tbl) -> Option<Config> {
    root.check_keys(
        cx,
        &["node", "dataplane", "control", "service", "vrrp", "bgp"],
    );
    let node = root
        .must("node", root.table(cx, "node"), cx)
        .and_then(|t| node(cx, &t));
    let dataplane = root
        .must("dataplane", root.table(cx, "dataplane"), cx)
        .and_then(|t| dataplane(cx, &t));
    let control = match root.table(cx, "control") {
        Some(t) => control(cx, &t),
        None if root.has("control") => None,
        None => Some(default_control()),
    };
    let services: Vec<Option<Service>> = root.each(cx, "service", service);
    let vrrp: Vec<Option<VrrpInstance>> = root.each(cx, "vrrp", vrrp);
    let bgp = root.table(cx, "bgp").map(|t| bgp(cx, &t));

    super::validate::cross_checks(
        cx,
        dataplane.as_ref(),
        &services,
        &vrrp,
        bgp.as_ref().and_then(Option::as_ref),
    );

    Some(Config {
        node: node?,
        dataplane: dataplane?,
        control: control?,
        services: services.into_iter().collect::<Option<_>>()?,
        vrrp: vrrp.into_iter().collect::<Option<_>>()?,
        bgp: match bgp {
            Some(b) => Some(b?),
            None => None,
        },
    })
}

fn node(cx: &mut Ctx, t: &Tbl) -> Option<Identity> {
    t.check_keys(cx, &["name", "site"]);
    let name = t.must("name", t.str(cx, "name"), cx);
    let site = t.str(cx, "site").unwrap_or_else(|| "default".to_string());
    let name = name?;
    if name.trim().is_empty() {
        cx.err_at(
            &t.field("name"),
            "the node name is empty; give this node a name such as \"lb1\"",
        );
    }
    Some(Identity { name, site })
}

/// A kernel interface name: what `ip link` would accept.
fn interface_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("an interface name cannot be empty")
    } else if name.len() > 15 {
        Some("an interface name is at most 15 bytes (IFNAMSIZ)")
    } else if name.contains(|c: char| c == '/' || c.is_whitespace()) || name == "." || name == ".."
    {
        Some("an interface name cannot contain '/' or whitespace")
    } else {
        None
    }
}

fn dataplane(cx: &mut Ctx, t: &Tbl) -> Option<Dataplane> {
    t.check_keys(
        cx,
        &[
            "interfaces",
            "queues",
            "cores",
            "xdp_mode",
            "flow_capacity",
            "frames_per_worker",
            "timeouts",
            "persistence_capacity",
            "syn_rate_limit",
            "syn_burst",
            "fast_path",
        ],
    );
    let interfaces = t.must("interfaces", t.str_list(cx, "interfaces"), cx);
    if let Some(ifs) = &interfaces {
        let field = t.field("interfaces");
        if ifs.is_empty() || ifs.len() > 8 {
            cx.err_at(
                &field,
                format!("{} interfaces given; list 1 to 8", ifs.len()),
            );
        }
        for (i, name) in ifs.iter().enumerate() {
            let f = format!("{field}[{i}]");
            if let Some(p) = interface_name_problem(name) {
                cx.err_at(&f, format!("`{name}`: {p}"));
            } else if ifs[..i].contains(name) {
                cx.err_at(&f, format!("interface `{name}` is listed twice"));
            }
        }
    }
    let queues: u16 = t.num(cx, "queues", 1, 64).unwrap_or(1);
    let cores: Option<Vec<usize>> = if t.has("cores") {
        let cores = t.list(cx, "cores", |cx, v, f, l| {
            super::reader::as_int(cx, v, f, l, 0, 4095).and_then(|n| usize::try_from(n).ok())
        });
        if let Some(c) = &cores {
            if c.len() != usize::from(queues) {
                cx.err_at(
                    &t.field("cores"),
                    format!(
                        "{} cores given for {queues} queue(s); give exactly one core per queue, or leave `cores` out",
                        c.len()
                    ),
                );
            }
            for (i, core) in c.iter().enumerate() {
                if c[..i].contains(core) {
                    cx.err_at(
                        &format!("{}[{i}]", t.field("cores")),
                        format!("core {core} is listed twice; each worker needs its own core"),
                    );
                }
            }
        }
        cores
    } else {
        None
    };
    let xdp_mode = t
        .parse(cx, "xdp_mode", "an XDP mode")
        .unwrap_or(XdpMode::Auto);
    let flow_capacity = t.num(cx, "flow_capacity", 64, 1 << 28).unwrap_or(1_048_576);
    // Bulk TCP bursts emptied the fill ring of 4096 frames on veth.
    let frames_per_worker: u32 = t.num(cx, "frames_per_worker", 1, 1 << 24).unwrap_or(16_384);
    if !frames_per_worker.is_power_of_two() {
        cx.err_at(
            &t.field("frames_per_worker"),
            format!(
                "{frames_per_worker} is not a power of two; try {}",
                frames_per_worker.next_power_of_two()
            ),
        );
    }
    let persistence_capacity = t
        .num(cx, "persistence_capacity", 64, 1 << 28)
        .unwrap_or(65_536);
    let timeouts = match t.table(cx, "timeouts") {
        Some(tt) => timeouts(cx, &tt),
        None => FlowTimeouts::default(),
    };
    let syn_rate_limit: u32 = t.num(cx, "syn_rate_limit", 0, 100_000_000).unwrap_or(0);
    // A tenth of a second's worth by default: smooths arrival jitter without
    // letting a flood through in one gulp.
    let syn_burst: u32 = t
        .num(cx, "syn_burst", 1, 100_000_000)
        .unwrap_or((syn_rate_limit / 10).max(64));
    if t.has("syn_burst") && syn_rate_limit == 0 {
        cx.err_at(
            &t.field("syn_burst"),
            "syn_burst has no effect without syn_rate_limit; set syn_rate_limit (SYNs per second per queue) or remove syn_burst".to_string(),
        );
    }
    let fast_path = t.bool(cx, "fast_path").unwrap_or(true);
    Some(Dataplane {
        interfaces: interfaces?,
        queues,
        cores,
        xdp_mode,
        flow_capacity,
        frames_per_worker,
        timeouts,
        persistence_capacity,
        syn_rate_limit,
        syn_burst,
        fast_path,
    })
}

fn timeouts(cx: &mut Ctx, t: &Tbl) -> FlowTimeouts {
    let d = FlowTimeouts::default();
    t.check_keys(
        cx,
        &[
            "tcp_embryonic_ms",
            "tcp_established_ms",
            "tcp_closing_ms",
            "tcp_time_wait_ms",
            "tcp_close_ms",
            "udp_ms",
        ],
    );
    const DAY_MS: u64 = 86_400_000;
    FlowTimeouts {
        tcp_embryonic: t
            .ms(cx, "tcp_embryonic_ms", 1, DAY_MS)
            .unwrap_or(d.tcp_embryonic),
        tcp_established: t
            .ms(cx, "tcp_established_ms", 1, DAY_MS)
            .unwrap_or(d.tcp_established),
        tcp_closing: t
            .ms(cx, "tcp_closing_ms", 1, DAY_MS)
            .unwrap_or(d.tcp_closing),
        tcp_time_wait: t
            .ms(cx, "tcp_time_wait_ms", 1, DAY_MS)
            .unwrap_or(d.tcp_time_wait),
        tcp_close: t.ms(cx, "tcp_close_ms", 1, DAY_MS).unwrap_or(d.tcp_close),
        udp: t.ms(cx, "udp_ms", 1, DAY_MS).unwrap_or(d.udp),
    }
}

fn default_control() -> Control {
    Control {
        socket: PathBuf::from("/run/vipd/vipd.sock"),
        socket_group: None,
        socket_mode: 0o660,
        metrics: None,
    }
}

fn control(cx: &mut Ctx, t: &Tbl) -> Option<Control> {
    t.check_keys(cx, &["socket", "socket_group", "socket_mode", "metrics"]);
    let d = default_control();
    let socket = t.str(cx, "socket").map(PathBuf::from).unwrap_or(d.socket);
    let len = socket.as_os_str().len();
    if len == 0 || len >= 108 {
        cx.err_at(
            &t.field("socket"),
            format!("a unix socket path must be 1 to 107 bytes long, this one is {len}"),
        );
    }
    let socket_mode = match t.str(cx, "socket_mode") {
        Some(s) => match u32::from_str_radix(s.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o777 => m,
            _ => {
                cx.err_at(
                    &t.field("socket_mode"),
                    format!("`{s}` is not an octal permission such as \"0660\""),
                );
                d.socket_mode
            }
        },
        None => d.socket_mode,
    };
    Some(Control {
        socket,
        socket_group: t.str(cx, "socket_group"),
        socket_mode,
        metrics: t.parse::<SocketAddr>(cx, "metrics", "an address and port such as 127.0.0.1:9100"),
    })
}

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2u32;
    while u64::from(d) * u64::from(d) <= u64::from(n) {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

fn next_prime(n: u32) -> u32 {
    (n..).find(|k| is_prime(*k)).unwrap_or(n)
}

fn service(cx: &mut Ctx, t: &Tbl) -> Option<Service> {
    t.check_keys(
        cx,
        &[
            "name",
            "vip",
            "port",
            "protocol",
            "scheduler",
            "forward",
            "snat",
            "sorry_server",
            "persistence_s",
            "maglev_table_size",
            "locality_expiration_s",
            "on_backend_down",
            "backend",
        ],
    );
    let name = t.must("name", t.str(cx, "name"), cx);
    let vip = t.must("vip", t.parse::<Ipv4Addr>(cx, "vip", IPV4), cx);
    let port = t.must("port", t.num::<u16>(cx, "port", 1, 65535), cx);
    let protocol = t
        .parse(cx, "protocol", "a protocol")
        .unwrap_or(Protocol::Tcp);
    let scheduler = t
        .parse(cx, "scheduler", "a scheduler")
        .unwrap_or(SchedulerKind::Wlc);
    let forward = t
        .parse(cx, "forward", "a forwarding mode")
        .unwrap_or(ForwardMode::Nat);
    let snat: Vec<Ipv4Addr> = t.parse_list(cx, "snat", IPV4).unwrap_or_default();
    match forward {
        ForwardMode::FullNat if snat.is_empty() && !t.has("snat") => cx.err(
            t.line,
            t.field("snat"),
            "forward = \"fullnat\" needs `snat`: the source addresses vipd puts on packets to backends",
        ),
        ForwardMode::FullNat if snat.is_empty() => {
            cx.err_at(&t.field("snat"), "`snat` is empty; full NAT needs at least one source address")
        }
        ForwardMode::Nat | ForwardMode::Dr if t.has("snat") => cx.err_at(
            &t.field("snat"),
            format!(
                "`snat` only applies to forward = \"fullnat\", this service uses \"{forward}\"; remove it or switch to fullnat"
            ),
        ),
        _ => {}
    }
    for (i, a) in snat.iter().enumerate() {
        if snat[..i].contains(a) {
            cx.err_at(
                &format!("{}[{i}]", t.field("snat")),
                format!("{a} is listed twice"),
            );
        }
    }
    let sorry_server = t.parse::<SocketAddrV4>(cx, "sorry_server", SOCK4);
    let persistence_timeout = t
        .num::<u64>(cx, "persistence_s", 1, 86_400)
        .map(Duration::from_secs);
    let maglev_table_size = t
        .num::<u32>(cx, "maglev_table_size", 3, 16_777_259)
        .unwrap_or(65_537);
    if !is_prime(maglev_table_size) {
        cx.err_at(
            &t.field("maglev_table_size"),
            format!(
                "{maglev_table_size} is not prime; Maglev needs a prime table size, such as {}",
                next_prime(maglev_table_size)
            ),
        );
    }
    let locality_expiration = t
        .num::<u64>(cx, "locality_expiration_s", 1, 604_800)
        .map_or(
            Duration::from_millis(dataplane::sched::DEFAULT_EXPIRATION_MS),
            Duration::from_secs,
        );
    if t.has("locality_expiration_s")
        && !matches!(scheduler, SchedulerKind::Lblc | SchedulerKind::Lblcr)
    {
        cx.err_at(
            &t.field("locality_expiration_s"),
            format!(
                "`locality_expiration_s` only applies to scheduler = \"lblc\" or \"lblcr\", this service uses \"{scheduler}\"; remove it"
            ),
        );
    }
    let on_backend_down = t
        .parse(cx, "on_backend_down", "a down action")
        .unwrap_or(DownAction::Keep);

    let backend_tables = t.tables(cx, "backend");
    if backend_tables.is_empty() {
        t.need_entries(
            cx,
            "backend",
            "a service needs at least one [[service.backend]]",
        );
    } else if backend_tables.len() > 256 {
        cx.err_at(
            &t.field("backend"),
            format!(
                "{} backends given; a service takes at most 256",
                backend_tables.len()
            ),
        );
    }
    let backends: Vec<Option<Backend>> = backend_tables.iter().map(|b| backend(cx, b)).collect();
    for (i, b) in backends.iter().enumerate() {
        let Some(b) = b else { continue };
        let field = format!("{}.address", backend_tables[i].path);
        if backends[..i]
            .iter()
            .flatten()
            .any(|o| o.address == b.address)
        {
            cx.err_at(
                &field,
                format!("backend {} is listed twice in this service", b.address),
            );
        }
        if forward == ForwardMode::Dr {
            if let Some(port) = port.filter(|p| *p != b.address.port()) {
                cx.err_at(
                    &field,
                    format!(
                        "port {} differs from the service port {port}: direct routing rewrites only MAC addresses, so the backend must listen on the VIP's port {port}",
                        b.address.port()
                    ),
                );
            }
        }
    }
    if let (ForwardMode::Dr, Some(s), Some(port)) = (forward, sorry_server, port) {
        if s.port() != port {
            cx.err_at(
                &t.field("sorry_server"),
                format!("port {} differs from the service port {port}: direct routing rewrites only MAC addresses", s.port()),
            );
        }
    }
    Some(Service {
        name: name?,
        vip: vip?,
        port: port?,
        protocol,
        scheduler,
        locality_expiration,
        forward,
        snat,
        sorry_server,
        persistence_timeout,
        maglev_table_size,
        on_backend_down,
        backends: backends.into_iter().collect::<Option<_>>()?,
    })
}

fn backend(cx: &mut Ctx, t: &Tbl) -> Option<Backend> {
    t.check_keys(cx, &["address", "weight", "check"]);
    let address = t.must("address", t.parse::<SocketAddrV4>(cx, "address", SOCK4), cx);
    let weight = t.num(cx, "weight", 0, 65_535).unwrap_or(1);
    let check = match t.table(cx, "check") {
        Some(c) => check(cx, &c),
        None if t.has("check") => None,
        None => Some(Check::default()),
    };
    Some(Backend {
        address: address?,
        weight,
        check: check?,
    })
}

const CHECK_COMMON: &[&str] = &["kind", "interval_ms", "timeout_ms", "rise", "fall"];
const CHECK_KIND_KEYS: &[(&str, &[&str])] = &[
    ("none", &[]),
    ("tcp", &["port"]),
    ("http", &["path", "expect_status", "digest", "host", "port"]),
    (
        "https",
        &[
            "path",
            "expect_status",
            "digest",
            "host",
            "port",
            "sni",
            "verify",
            "ca_file",
        ],
    ),
    (
        "udp",
        &["port", "payload", "payload_hex", "expect", "expect_hex"],
    ),
    ("dns", &["port", "name", "qtype"]),
    ("ping", &[]),
    ("script", &["command"]),
];

fn check(cx: &mut Ctx, t: &Tbl) -> Option<Check> {
    let kind = t.str(cx, "kind").unwrap_or_else(|| "tcp".to_string());
    let Some((_, own)) = CHECK_KIND_KEYS.iter().find(|(k, _)| *k == kind) else {
        let words: Vec<&str> = CHECK_KIND_KEYS.iter().map(|(k, _)| *k).collect();
        cx.err_at(
            &t.field("kind"),
            format!("`{kind}` is not one of: {}", words.join(", ")),
        );
        return None;
    };
    let mut known: Vec<&str> = CHECK_COMMON.to_vec();
    known.extend_from_slice(own);
    // Keys of another kind get a message naming the kinds they belong to.
    let mut all = known.clone();
    for (_, keys) in CHECK_KIND_KEYS {
        for key in keys.iter() {
            if all.contains(key) {
                continue;
            }
            all.push(key);
            if t.has(key) {
                t.mark(cx, key);
                let owners: Vec<String> = CHECK_KIND_KEYS
                    .iter()
                    .filter(|(_, k)| k.contains(key))
                    .map(|(o, _)| format!("kind = \"{o}\""))
                    .collect();
                cx.err_at(
                    &t.field(key),
                    format!(
                        "`{key}` does not apply to kind = \"{kind}\" (it is for {})",
                        owners.join(" or ")
                    ),
                );
            }
        }
    }
    t.check_keys(cx, &all);

    let kind = match kind.as_str() {
        "none" => CheckKind::None,
        "tcp" => CheckKind::Tcp {
            port: t.num::<u16>(cx, "port", 1, 65_535),
        },
        "http" => http_check(cx, t)?,
        "https" => https_check(cx, t)?,
        "udp" => udp_check(cx, t)?,
        "dns" => dns_check(cx, t)?,
        "ping" => CheckKind::Ping,
        _ => CheckKind::Script {
            command: t.must("command", t.command(cx, "command"), cx)?,
        },
    };
    Some(Check {
        kind,
        interval: t
            .ms(cx, "interval_ms", 10, 3_600_000)
            .unwrap_or(Duration::from_millis(1000)),
        timeout: t
            .ms(cx, "timeout_ms", 1, 3_600_000)
            .unwrap_or(Duration::from_millis(1000)),
        rise: t.num(cx, "rise", 1, 1000).unwrap_or(2),
        fall: t.num(cx, "fall", 1, 1000).unwrap_or(3),
    })
}

/// The keys `http` and `https` share.
struct HttpKeys {
    path: String,
    expect_status: u16,
    digest: Option<BodyDigest>,
    host: Option<String>,
    port: Option<u16>,
}

fn http_keys(cx: &mut Ctx, t: &Tbl) -> HttpKeys {
    let path = t.str(cx, "path").unwrap_or_else(|| "/".to_string());
    if !path.starts_with('/') {
        cx.err_at(
            &t.field("path"),
            format!("`{path}` must start with '/', as in \"/{path}\""),
        );
    }
    HttpKeys {
        path,
        expect_status: t.num(cx, "expect_status", 100, 599).unwrap_or(200),
        digest: t.parse(cx, "digest", "a body digest"),
        host: t.str(cx, "host"),
        port: t.num::<u16>(cx, "port", 1, 65_535),
    }
}

fn http_check(cx: &mut Ctx, t: &Tbl) -> Option<CheckKind> {
    let k = http_keys(cx, t);
    Some(CheckKind::Http {
        path: k.path,
        expect_status: k.expect_status,
        digest: k.digest,
        host: k.host,
        port: k.port,
    })
}

fn https_check(cx: &mut Ctx, t: &Tbl) -> Option<CheckKind> {
    let k = http_keys(cx, t);
    let sni = t.str(cx, "sni");
    if let Some(name) = &sni {
        if let Err(e) = crate::health::tls::server_name(Some(name), Ipv4Addr::UNSPECIFIED) {
            cx.err_at(&t.field("sni"), e.to_string());
        }
    }
    let verify = t.bool(cx, "verify").unwrap_or(false);
    let ca_file = t.str(cx, "ca_file").map(PathBuf::from);
    match (&ca_file, verify) {
        (None, true) => cx.err_at(
            &t.field("verify"),
            "verify = true needs `ca_file`: a PEM file with the certificates that sign the backend's",
        ),
        (Some(_), false) => cx.err_at(
            &t.field("ca_file"),
            "`ca_file` is only read with verify = true; set verify = true or remove it",
        ),
        (Some(path), true) => {
            if let Err(e) = crate::health::tls::load_roots(path) {
                cx.err_at(&t.field("ca_file"), e.to_string());
            }
        }
        (None, false) => {}
    }
    Some(CheckKind::Https {
        path: k.path,
        expect_status: k.expect_status,
        digest: k.digest,
        host: k.host,
        port: k.port,
        sni,
        ca_file: ca_file.filter(|_| verify),
    })
}

/// Bytes given as text in `key` or as hex in `key_hex`, not both.
fn bytes_or_hex(cx: &mut Ctx, t: &Tbl, key: &str) -> Option<Vec<u8>> {
    let hex_key = format!("{key}_hex");
    let text = t.str(cx, key);
    let hex = t.str(cx, &hex_key);
    match (text, hex) {
        (Some(_), Some(_)) => {
            cx.err_at(
                &t.field(&hex_key),
                format!("give `{key}` or `{hex_key}`, not both"),
            );
            None
        }
        (Some(s), None) => Some(s.into_bytes()),
        (None, Some(h)) => match parse_hex(&h) {
            Some(b) => Some(b),
            None => {
                cx.err_at(
                    &t.field(&hex_key),
                    format!("`{h}` is not hex: give pairs of 0-9 and a-f, such as \"0d0a\""),
                );
                None
            }
        },
        (None, None) => None,
    }
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn udp_check(cx: &mut Ctx, t: &Tbl) -> Option<CheckKind> {
    let payload = bytes_or_hex(cx, t, "payload");
    if payload.is_none() && !t.has("payload") && !t.has("payload_hex") {
        cx.err(
            t.line,
            t.field("payload"),
            "a udp check needs `payload` (text) or `payload_hex`: the datagram sent to the backend",
        );
    }
    let expect = bytes_or_hex(cx, t, "expect");
    Some(CheckKind::Udp {
        port: t.num::<u16>(cx, "port", 1, 65_535),
        payload: payload?,
        expect,
    })
}

fn dns_check(cx: &mut Ctx, t: &Tbl) -> Option<CheckKind> {
    let name = t.must("name", t.str(cx, "name"), cx)?;
    if let Err(e) = crate::health::dns::check_name(&name) {
        cx.err_at(&t.field("name"), format!("`{name}`: {e}"));
    }
    Some(CheckKind::Dns {
        port: t.num::<u16>(cx, "port", 1, 65_535),
        name,
        qtype: t.parse(cx, "qtype", "a query type").unwrap_or(QType::A),
    })
}

fn vrrp(cx: &mut Ctx, t: &Tbl) -> Option<VrrpInstance> {
    t.check_keys(
        cx,
        &[
            "name",
            "interface",
            "vrid",
            "version",
            "priority",
            "advert_interval_ms",
            "preempt",
            "preempt_delay_ms",
            "vips",
            "unicast_peers",
            "unicast_src",
            "auth_pass",
            "garp_count",
            "garp_interval_ms",
            "garp_refresh_ms",
            "track_script",
            "track_interface",
            "notify",
        ],
    );
    let name = t.must("name", t.str(cx, "name"), cx);
    let interface = t.must("interface", t.str(cx, "interface"), cx);
    let vrid = t.must("vrid", t.num::<u8>(cx, "vrid", 1, 255), cx);
    let version: u8 = t.num(cx, "version", 2, 3).unwrap_or(3);
    let priority = t.num(cx, "priority", 1, 255).unwrap_or(100);
    let advert_interval = t
        .ms(cx, "advert_interval_ms", 1, 255_000)
        .unwrap_or(Duration::from_millis(1000));
    let ms = advert_interval.as_millis();
    let field = t.field("advert_interval_ms");
    if version == 3 && (!ms.is_multiple_of(10) || !(10..=40_950).contains(&ms)) {
        cx.err_at(
            &field,
            format!("{ms} ms: VRRPv3 adverts are counted in centiseconds, so give a multiple of 10 between 10 and 40950"),
        );
    } else if version == 2 && !ms.is_multiple_of(1000) {
        cx.err_at(
            &field,
            format!(
                "{ms} ms: VRRPv2 adverts are counted in whole seconds, so give a multiple of 1000 (such as {}), or use version = 3",
                (ms / 1000).max(1) * 1000
            ),
        );
    }
    let vips: Option<Vec<Ipv4Addr>> = t.must("vips", t.parse_list(cx, "vips", IPV4), cx);
    if let Some(v) = &vips {
        if v.is_empty() || v.len() > 20 {
            cx.err_at(
                &t.field("vips"),
                format!("{} VIPs given; list 1 to 20", v.len()),
            );
        }
    }
    let auth_pass = t.str(cx, "auth_pass");
    if let Some(p) = &auth_pass {
        if version != 2 {
            cx.err_at(
                &t.field("auth_pass"),
                "VRRPv3 has no authentication (RFC 5798); remove `auth_pass` or use version = 2",
            );
        } else if p.is_empty() || p.len() > 8 {
            cx.err_at(
                &t.field("auth_pass"),
                format!("the password is {} bytes; VRRPv2 takes 1 to 8", p.len()),
            );
        }
    }
    let unicast_peers: Vec<Ipv4Addr> = t.parse_list(cx, "unicast_peers", IPV4).unwrap_or_default();
    let unicast_src = t.parse(cx, "unicast_src", IPV4);
    if unicast_src.is_some() && unicast_peers.is_empty() {
        cx.err_at(
            &t.field("unicast_src"),
            "`unicast_src` is set but `unicast_peers` is empty; list the peers or remove it",
        );
    }
    let track_scripts: Vec<Option<TrackScript>> = t.each(cx, "track_script", track_script);
    let track_interfaces: Vec<Option<TrackInterface>> =
        t.each(cx, "track_interface", track_interface);
    Some(VrrpInstance {
        name: name?,
        interface: interface?,
        vrid: vrid?,
        version,
        priority,
        advert_interval,
        preempt: t.bool(cx, "preempt").unwrap_or(true),
        preempt_delay: t
            .ms(cx, "preempt_delay_ms", 0, 1_000_000)
            .unwrap_or_default(),
        vips: vips?,
        unicast_peers,
        unicast_src,
        auth_pass,
        garp_count: t.num(cx, "garp_count", 0, 100).unwrap_or(5),
        garp_interval: t
            .ms(cx, "garp_interval_ms", 0, 60_000)
            .unwrap_or(Duration::from_millis(20)),
        garp_refresh: garp_refresh(cx, t),
        track_scripts: track_scripts.into_iter().collect::<Option<_>>()?,
        track_interfaces: track_interfaces.into_iter().collect::<Option<_>>()?,
        notify: t.str(cx, "notify"),
    })
}

/// How often a master repeats its gratuitous ARP: by default every 10 s,
/// like keepalived's `vrrp_garp_master_refresh` when set, so a host misled
/// about the VIP's MAC (a spoofed reply vipd never saw) learns it again
/// soon; 0 turns it off.
fn garp_refresh(cx: &mut Ctx, t: &Tbl) -> Option<Duration> {
    const DEFAULT: Duration = Duration::from_secs(10);
    match t.ms(cx, "garp_refresh_ms", 0, 86_400_000) {
        None => Some(DEFAULT),
        Some(d) if d.is_zero() => None,
        Some(d) if d < Duration::from_millis(100) => {
            cx.err_at(
                &t.field("garp_refresh_ms"),
                format!("{} ms: give 0 (off) or at least 100 ms", d.as_millis()),
            );
            None
        }
        Some(d) => Some(d),
    }
}

fn track_script(cx: &mut Ctx, t: &Tbl) -> Option<TrackScript> {
    t.check_keys(
        cx,
        &[
            "name",
            "command",
            "interval_ms",
            "timeout_ms",
            "weight",
            "fall",
            "rise",
        ],
    );
    let name = t.must("name", t.str(cx, "name"), cx);
    let command = t.must("command", t.command(cx, "command"), cx);
    Some(TrackScript {
        name: name?,
        command: command?,
        interval: t
            .ms(cx, "interval_ms", 10, 3_600_000)
            .unwrap_or(Duration::from_millis(1000)),
        timeout: t
            .ms(cx, "timeout_ms", 1, 3_600_000)
            .unwrap_or(Duration::from_millis(1000)),
        weight: t.num(cx, "weight", -253, 253).unwrap_or(0),
        fall: t.num(cx, "fall", 1, 1000).unwrap_or(1),
        rise: t.num(cx, "rise", 1, 1000).unwrap_or(1),
    })
}

fn track_interface(cx: &mut Ctx, t: &Tbl) -> Option<TrackInterface> {
    t.check_keys(cx, &["name", "weight"]);
    let name = t.must("name", t.str(cx, "name"), cx)?;
    if let Some(p) = interface_name_problem(&name) {
        cx.err_at(&t.field("name"), format!("`{name}`: {p}"));
    }
    Some(TrackInterface {
        name,
        weight: t.num(cx, "weight", -253, 253),
    })
}

fn bgp(cx: &mut Ctx, t: &Tbl) -> Option<Bgp> {
    t.check_keys(
        cx,
        &[
            "local_as",
            "router_id",
            "hold_time_s",
            "connect_retry_s",
            "peer",
            "announce",
        ],
    );
    let local_as = t.must(
        "local_as",
        t.num::<u32>(cx, "local_as", 1, 4_294_967_295),
        cx,
    );
    let router_id = t.must("router_id", t.parse::<Ipv4Addr>(cx, "router_id", IPV4), cx);
    if router_id == Some(Ipv4Addr::UNSPECIFIED) {
        cx.err_at(&t.field("router_id"), "the router id must not be 0.0.0.0");
    }
    let hold_time_s = hold_time(cx, t).unwrap_or(90);
    let connect_retry_s = t.num(cx, "connect_retry_s", 1, 3600).unwrap_or(5);
    let peer_tables = t.tables(cx, "peer");
    if peer_tables.is_empty() {
        t.need_entries(cx, "peer", "[bgp] needs at least one [[bgp.peer]]");
    }
    let peers: Vec<Option<BgpPeer>> = peer_tables
        .iter()
        .map(|p| peer(cx, p, hold_time_s, connect_retry_s))
        .collect();
    for (i, p) in peers.iter().enumerate() {
        let Some(p) = p else { continue };
        if peers[..i].iter().flatten().any(|o| o.address == p.address) {
            cx.err_at(
                &format!("{}.address", peer_tables[i].path),
                format!("peer {} is listed twice", p.address),
            );
        }
    }
    let announces: Vec<Option<Announce>> = t.each(cx, "announce", announce);
    Some(Bgp {
        local_as: local_as?,
        router_id: router_id?,
        hold_time_s,
        connect_retry_s,
        peers: peers.into_iter().collect::<Option<_>>()?,
        announces: announces.into_iter().collect::<Option<_>>()?,
    })
}

fn hold_time(cx: &mut Ctx, t: &Tbl) -> Option<u16> {
    let h: u16 = t.num(cx, "hold_time_s", 0, 65_535)?;
    if h == 1 || h == 2 {
        cx.err_at(
            &t.field("hold_time_s"),
            format!("{h} s: a BGP hold time is 0 (no keepalives) or at least 3 seconds (RFC 4271)"),
        );
        return None;
    }
    Some(h)
}

fn peer(cx: &mut Ctx, t: &Tbl, hold_default: u16, retry_default: u16) -> Option<BgpPeer> {
    t.check_keys(
        cx,
        &[
            "address",
            "remote_as",
            "hold_time_s",
            "keepalive_s",
            "passive",
            "port",
            "local_address",
            "ttl_security",
            "md5_password",
            "connect_retry_s",
            "max_prefixes",
            "graceful_restart",
        ],
    );
    let address = t.must("address", t.parse::<Ipv4Addr>(cx, "address", IPV4), cx);
    let remote_as = t.must(
        "remote_as",
        t.num::<u32>(cx, "remote_as", 1, 4_294_967_295),
        cx,
    );
    let hold_time_s = hold_time(cx, t).unwrap_or(hold_default);
    let keepalive_s: Option<u16> = t.num(cx, "keepalive_s", 1, 21_845);
    if let Some(k) = keepalive_s.filter(|k| hold_time_s != 0 && *k >= hold_time_s) {
        cx.err_at(
            &t.field("keepalive_s"),
            format!("keepalive {k} s is not below the hold time {hold_time_s} s; a third of it is usual"),
        );
    }
    let md5_password = t.str(cx, "md5_password");
    if let Some(p) = md5_password
        .as_ref()
        .filter(|p| p.is_empty() || p.len() > 80)
    {
        cx.err_at(
            &t.field("md5_password"),
            format!("the TCP MD5 key is {} bytes; it must be 1 to 80", p.len()),
        );
    }
    Some(BgpPeer {
        address: address?,
        remote_as: remote_as?,
        hold_time_s,
        keepalive_s,
        passive: t.bool(cx, "passive").unwrap_or(false),
        port: t.num(cx, "port", 1, 65_535).unwrap_or(179),
        local_address: t.parse(cx, "local_address", IPV4),
        ttl_security: t.bool(cx, "ttl_security").unwrap_or(false),
        md5_password,
        connect_retry_s: t
            .num(cx, "connect_retry_s", 1, 3600)
            .unwrap_or(retry_default),
        max_prefixes: t.num(cx, "max_prefixes", 0, 4_294_967_295).unwrap_or(1000),
        graceful_restart: t.bool(cx, "graceful_restart").unwrap_or(false),
    })
}

fn announce(cx: &mut Ctx, t: &Tbl) -> Option<Announce> {
    t.check_keys(
        cx,
        &[
            "prefix",
            "next_hop",
            "communities",
            "large_communities",
            "med",
            "local_pref",
            "prepend",
            "condition",
        ],
    );
    let prefix = t.must(
        "prefix",
        t.parse::<Prefix>(cx, "prefix", "an IPv4 prefix"),
        cx,
    );
    if let Some(p) = prefix.filter(Prefix::has_host_bits) {
        cx.err_at(
            &t.field("prefix"),
            format!("{p} has host bits set; did you mean {}?", p.network()),
        );
    }
    let communities = t
        .list(cx, "communities", |cx, v, f, l| {
            community(cx, v, f, l, 2).and_then(|n| {
                Some((
                    u16::try_from(*n.first()?).ok()?,
                    u16::try_from(*n.get(1)?).ok()?,
                ))
            })
        })
        .unwrap_or_default();
    let large_communities = t
        .list(cx, "large_communities", |cx, v, f, l| {
            community(cx, v, f, l, 3).and_then(|n| Some((*n.first()?, *n.get(1)?, *n.get(2)?)))
        })
        .unwrap_or_default();
    Some(Announce {
        prefix: prefix?,
        next_hop: t.parse(cx, "next_hop", IPV4),
        communities,
        large_communities,
        med: t.num(cx, "med", 0, 4_294_967_295),
        local_pref: t.num(cx, "local_pref", 0, 4_294_967_295),
        prepend: t.num(cx, "prepend", 0, 10).unwrap_or(0),
        condition: t
            .parse(cx, "condition", "an announce condition")
            .unwrap_or(AnnounceCondition::VipHealthy),
    })
}

/// "65000:100" (parts = 2, each ≤ 65535) or "65000:1:2" (parts = 3, u32 each).
fn community(cx: &mut Ctx, v: &Value, field: &str, line: usize, parts: usize) -> Option<Vec<u32>> {
    let s = as_str(cx, v, field, line)?;
    let max = if parts == 2 {
        u32::from(u16::MAX)
    } else {
        u32::MAX
    };
    let nums: Option<Vec<u32>> = s
        .split(':')
        .map(|p| p.parse::<u32>().ok().filter(|n| *n <= max))
        .collect();
    match nums.filter(|n| n.len() == parts) {
        Some(n) => Some(n),
        None => {
            let form = if parts == 2 {
                "ASN:VALUE with numbers up to 65535, such as \"65000:100\""
            } else {
                "GLOBAL:DATA1:DATA2 with 32-bit numbers, such as \"65000:1:2\""
            };
            cx.err(
                line,
                field,
                format!("`{s}` is not a community: write {form}"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes() {
        let small: Vec<u32> = (0..30).filter(|n| is_prime(*n)).collect();
        assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65_537));
        assert!(!is_prime(65_536));
        assert_eq!(next_prime(65_536), 65_537);
    }

    #[test]
    fn hex_bytes() {
        assert_eq!(parse_hex("00ff0A"), Some(vec![0, 0xff, 0x0a]));
        assert_eq!(parse_hex(""), Some(vec![]));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex("é1"), None);
    }
}
