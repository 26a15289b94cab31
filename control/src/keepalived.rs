//! `vipctl import-keepalived`: translates the keepalived constructs vipd has
//! an equivalent for into a vipd config, and names every other one with its
//! file and line so the operator knows what was left behind.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The translated config and what could not be translated.
#[derive(Debug, Default)]
pub struct Import {
    pub toml: String,
    /// `FILE:LINE: what and why`, one per construct left behind or changed.
    pub notes: Vec<String>,
}

/// A statement: its words, its line, and its block if it has one.
#[derive(Debug)]
struct Stmt {
    words: Vec<String>,
    line: usize,
    block: Option<Vec<Stmt>>,
}

impl Stmt {
    fn key(&self) -> &str {
        self.words.first().map(String::as_str).unwrap_or_default()
    }
    fn arg(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(String::as_str)
    }
    fn children(&self) -> &[Stmt] {
        self.block.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, PartialEq)]
enum Tok {
    Open,
    Close,
    Word(String),
}

/// Splits into `(token, line)`: braces, words, quoted strings; `#` and `!`
/// start a comment to the end of the line.
fn tokenize(text: &str) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut chars = line.chars().peekable();
        while let Some(&c) = chars.peek() {
            match c {
                '#' | '!' => break,
                c if c.is_whitespace() => {
                    chars.next();
                }
                '{' => {
                    chars.next();
                    out.push((Tok::Open, n + 1));
                }
                '}' => {
                    chars.next();
                    out.push((Tok::Close, n + 1));
                }
                '"' => {
                    chars.next();
                    let mut w = String::new();
                    for c in chars.by_ref() {
                        if c == '"' {
                            break;
                        }
                        w.push(c);
                    }
                    out.push((Tok::Word(w), n + 1));
                }
                _ => {
                    let mut w = String::new();
                    while let Some(&c) = chars.peek() {
                        if c.is_whitespace() || c == '{' || c == '}' {
                            break;
                        }
                        w.push(c);
                        chars.next();
                    }
                    out.push((Tok::Word(w), n + 1));
                }
            }
        }
    }
    out
}

fn parse_block(toks: &[(Tok, usize)], i: &mut usize) -> Vec<Stmt> {
    let mut out = Vec::new();
    while let Some((tok, line)) = toks.get(*i) {
        match tok {
            Tok::Close => {
                *i += 1;
                return out;
            }
            Tok::Open => {
                *i += 1;
                let block = parse_block(toks, i);
                out.push(Stmt {
                    words: Vec::new(),
                    line: *line,
                    block: Some(block),
                });
            }
            Tok::Word(_) => {
                let mut words = Vec::new();
                while let Some((Tok::Word(w), l)) = toks.get(*i) {
                    if *l != *line {
                        break;
                    }
                    words.push(w.clone());
                    *i += 1;
                }
                let block = if matches!(toks.get(*i), Some((Tok::Open, _))) {
                    *i += 1;
                    Some(parse_block(toks, i))
                } else {
                    None
                };
                out.push(Stmt {
                    words,
                    line: *line,
                    block,
                });
            }
        }
    }
    out
}

struct Cx<'a> {
    file: &'a str,
    notes: Vec<String>,
}

impl Cx<'_> {
    fn note(&mut self, s: &Stmt, msg: impl AsRef<str>) {
        self.notes
            .push(format!("{}:{}: {}", self.file, s.line, msg.as_ref()));
    }
    fn skipped(&mut self, s: &Stmt, why: &str) {
        let what = s.words.join(" ");
        self.note(s, format!("`{what}` not translated: {why}"));
    }
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn num<T: std::str::FromStr>(cx: &mut Cx, s: &Stmt) -> Option<T> {
    match s.arg(1).and_then(|a| a.parse().ok()) {
        Some(v) => Some(v),
        None => {
            cx.skipped(s, "its value is missing or not a number");
            None
        }
    }
}

fn secs_ms(cx: &mut Cx, s: &Stmt) -> Option<u64> {
    let v: f64 = num(cx, s)?;
    if !(0.0..=3_600.0).contains(&v) {
        cx.skipped(s, "out of range");
        return None;
    }
    Some((v * 1000.0).round() as u64)
}

/// Translates keepalived configuration text; `file` names it in the notes.
pub fn import(text: &str, file: &str) -> Import {
    let toks = tokenize(text);
    let mut i = 0;
    let mut all = Vec::new();
    while i < toks.len() {
        all.extend(parse_block(&toks, &mut i));
    }
    let mut cx = Cx {
        file,
        notes: Vec::new(),
    };
    let scripts: HashMap<&str, &Stmt> = all
        .iter()
        .filter(|s| s.key() == "vrrp_script")
        .filter_map(|s| Some((s.arg(1)?, s)))
        .collect();
    let mut vrrp = String::new();
    let mut services = String::new();
    let mut interfaces: Vec<String> = Vec::new();
    let mut service_names: HashMap<String, usize> = HashMap::new();
    for s in &all {
        match s.key() {
            "global_defs" => cx.note(
                s,
                "global_defs ignored: router id, notification e-mail and SMTP settings have no vipd equivalent (vipd logs state changes instead)",
            ),
            "vrrp_script" => {}
            "vrrp_instance" => vrrp_instance(&mut cx, s, &scripts, &mut vrrp, &mut interfaces),
            "virtual_server" => virtual_server(&mut cx, s, &mut services, &mut service_names),
            "virtual_server_group" => cx.skipped(s, "virtual_server_group is not supported; write one [[service]] per address"),
            "vrrp_sync_group" => cx.skipped(s, "vrrp_sync_group is not supported; instances run independently"),
            "include" => cx.skipped(s, "include is not followed; import each file on its own"),
            _ => cx.skipped(s, "unknown or unsupported top-level keyword"),
        }
    }
    let mut out = String::new();
    out += "# Translated from keepalived configuration ";
    out += file;
    out += " by vipctl import-keepalived.\n\n[node]\nname = \"imported\"\nsite = \"default\"\n\n[dataplane]\n";
    if interfaces.is_empty() {
        interfaces.push("eth0".into());
        out += "# No vrrp_instance names an interface: eth0 is assumed. Set the interfaces\n# that receive client traffic and reach the backends.\n";
    } else {
        out += "# Taken from the vrrp_instance interfaces. List every interface that receives\n# client traffic or reaches the backends; vipd attaches AF_XDP to each.\n";
    }
    let list: Vec<String> = interfaces.iter().map(|i| q(i)).collect();
    let _ = writeln!(out, "interfaces = [{}]\nqueues = 1\n", list.join(", "));
    out += &vrrp;
    out += &services;
    Import {
        toml: out,
        notes: cx.notes,
    }
}

fn vrrp_instance(
    cx: &mut Cx,
    s: &Stmt,
    scripts: &HashMap<&str, &Stmt>,
    out: &mut String,
    interfaces: &mut Vec<String>,
) {
    let name = s.arg(1).unwrap_or("vrrp").to_string();
    let mut body = String::new();
    let mut track = String::new();
    let (mut vrid, mut interface, mut advert_ms, mut vips) = (None, None, 1000u64, Vec::new());
    let mut version = 2u8;
    for c in s.children() {
        match c.key() {
            "state" => cx.note(
                c,
                format!("`state {}` not carried over: vipd starts every instance as backup and the priority elects the master", c.arg(1).unwrap_or("")),
            ),
            "interface" => interface = c.arg(1).map(str::to_string),
            "virtual_router_id" => vrid = num::<u8>(cx, c),
            "priority" => {
                if let Some(p) = num::<u8>(cx, c) {
                    let _ = writeln!(body, "priority = {p}");
                }
            }
            "version" => {
                if let Some(v) = num::<u8>(cx, c) {
                    version = v;
                }
            }
            "advert_int" => advert_ms = secs_ms(cx, c).unwrap_or(1000),
            "nopreempt" => body += "preempt = false\n",
            "preempt_delay" => {
                if let Some(ms) = secs_ms(cx, c) {
                    let _ = writeln!(body, "preempt_delay_ms = {ms}");
                }
            }
            "authentication" => {
                let kind = c.children().iter().find(|a| a.key() == "auth_type");
                let pass = c.children().iter().find(|a| a.key() == "auth_pass");
                match (kind.and_then(|k| k.arg(1)), pass.and_then(|p| p.arg(1))) {
                    (Some("PASS"), Some(p)) => {
                        let _ = writeln!(body, "auth_pass = {}", q(p));
                    }
                    _ => cx.skipped(c, "only auth_type PASS with an auth_pass is supported (AH is not)"),
                }
            }
            "virtual_ipaddress" => {
                for a in c.children() {
                    let addr = a.key().split('/').next().unwrap_or_default();
                    match addr.parse::<Ipv4Addr>() {
                        Ok(ip) => vips.push(ip),
                        Err(_) => cx.skipped(a, "not an IPv4 address"),
                    }
                    if a.words.len() > 1 {
                        cx.note(a, format!("options `{}` of {} dropped: vipd answers ARP for the VIP itself and puts no address on an interface", a.words[1..].join(" "), a.key()));
                    }
                }
            }
            "unicast_peer" => {
                let peers: Vec<String> = c.children().iter().map(|p| q(p.key())).collect();
                let _ = writeln!(body, "unicast_peers = [{}]", peers.join(", "));
            }
            "unicast_src_ip" => {
                if let Some(a) = c.arg(1) {
                    let _ = writeln!(body, "unicast_src = {}", q(a));
                }
            }
            "notify" => {
                if let Some(a) = c.arg(1) {
                    let _ = writeln!(body, "notify = {}", q(a));
                }
            }
            "track_script" => {
                for t in c.children() {
                    match scripts.get(t.key()) {
                        Some(sc) => track_script(cx, sc, &mut track),
                        None => cx.skipped(t, "no vrrp_script of that name in this file"),
                    }
                }
            }
            "track_interface" => {
                for t in c.children() {
                    let _ = writeln!(track, "  [[vrrp.track_interface]]\n  name = {}", q(t.key()));
                    if t.arg(1) == Some("weight") {
                        if let Some(w) = t.arg(2).and_then(|w| w.parse::<i32>().ok()) {
                            let _ = writeln!(track, "  weight = {w}");
                        }
                    }
                }
            }
            "mcast_src_ip" => cx.skipped(c, "vipd sends adverts from the interface's own address"),
            "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => cx.skipped(
                c,
                "vipd runs one `notify` command on every state change, with the new state as an argument; merge these into it",
            ),
            "smtp_alert" => cx.skipped(c, "e-mail alerts are not supported"),
            _ => cx.skipped(c, "not supported in a vrrp_instance"),
        }
    }
    let (Some(vrid), Some(interface)) = (vrid, interface) else {
        cx.skipped(s, "an instance needs interface and virtual_router_id");
        return;
    };
    if version == 2 && advert_ms % 1000 != 0 {
        cx.note(s, "advert_int below a whole second needs VRRP version 3: written as version 3, without authentication");
        version = 3;
    }
    if !interfaces.contains(&interface) {
        interfaces.push(interface.clone());
    }
    let vips: Vec<String> = vips.iter().map(|v| q(&v.to_string())).collect();
    let _ = writeln!(
        out,
        "[[vrrp]]\nname = {}\ninterface = {}\nvrid = {vrid}\nversion = {version}\nadvert_interval_ms = {advert_ms}\nvips = [{}]",
        q(&name),
        q(&interface),
        vips.join(", ")
    );
    for line in body.lines() {
        if version == 3 && line.starts_with("auth_pass") {
            continue;
        }
        let _ = writeln!(out, "{line}");
    }
    out.push_str(&track);
    out.push('\n');
}

fn track_script(cx: &mut Cx, s: &Stmt, out: &mut String) {
    let _ = writeln!(
        out,
        "  [[vrrp.track_script]]\n  name = {}",
        q(s.arg(1).unwrap_or("script"))
    );
    for c in s.children() {
        match c.key() {
            "script" => {
                let _ = writeln!(out, "  command = {}", q(&c.words[1..].join(" ")));
            }
            "interval" | "timeout" => {
                if let Some(ms) = secs_ms(cx, c) {
                    let _ = writeln!(out, "  {}_ms = {}", c.key(), ms.max(10));
                }
            }
            "weight" | "fall" | "rise" => {
                if let Some(v) = num::<i64>(cx, c) {
                    let _ = writeln!(out, "  {} = {v}", c.key());
                }
            }
            _ => cx.skipped(c, "not supported in a vrrp_script"),
        }
    }
}

fn virtual_server(cx: &mut Cx, s: &Stmt, out: &mut String, names: &mut HashMap<String, usize>) {
    let (Some(vip), Some(port)) = (
        s.arg(1).and_then(|a| a.parse::<Ipv4Addr>().ok()),
        s.arg(2).and_then(|p| p.parse::<u16>().ok()),
    ) else {
        cx.skipped(
            s,
            "only `virtual_server ADDRESS PORT` is supported (not fwmark or group)",
        );
        return;
    };
    let base = format!("vs-{vip}-{port}");
    let n = names.entry(base.clone()).or_default();
    *n += 1;
    let name = if *n == 1 { base } else { format!("{base}-{n}") };
    let mut body = String::new();
    let mut backends = String::new();
    let mut interval_ms = None;
    let (mut scheduler, mut forward) = ("wlc".to_string(), "nat".to_string());
    for c in s.children() {
        match c.key() {
            "delay_loop" => interval_ms = secs_ms(cx, c),
            "lb_algo" => match c.arg(1) {
                Some(a @ ("rr" | "wrr" | "lc" | "wlc" | "sh" | "dh" | "sed" | "nq")) => {
                    scheduler = a.into()
                }
                Some("mh") => scheduler = "maglev".into(),
                _ => cx.skipped(c, "scheduler not supported by vipd (it has rr wrr lc wlc sh dh sed nq maglev); wlc used"),
            },
            "lb_kind" => match c.arg(1) {
                Some("NAT") => forward = "nat".into(),
                Some("DR") => forward = "dr".into(),
                _ => cx.skipped(c, "vipd forwards by nat, fullnat or dr (no IP tunnel); written as nat"),
            },
            "protocol" => match c.arg(1) {
                Some("TCP") => body += "protocol = \"tcp\"\n",
                Some("UDP") => body += "protocol = \"udp\"\n",
                _ => cx.skipped(c, "vipd balances TCP and UDP only"),
            },
            "persistence_timeout" => {
                if let Some(v) = num::<u32>(cx, c) {
                    let _ = writeln!(body, "persistence_s = {}", v.clamp(1, 86_400));
                }
            }
            "sorry_server" => match (c.arg(1), c.arg(2)) {
                (Some(a), Some(p)) => {
                    let _ = writeln!(body, "sorry_server = {}", q(&format!("{a}:{p}")));
                }
                _ => cx.skipped(c, "needs an address and a port"),
            },
            "real_server" => real_server(cx, c, &mut backends),
            _ => cx.skipped(c, "not supported in a virtual_server"),
        }
    }
    let _ = writeln!(
        out,
        "[[service]]\nname = {}\nvip = {}\nport = {port}\nscheduler = {}\nforward = {}\n{body}",
        q(&name),
        q(&vip.to_string()),
        q(&scheduler),
        q(&forward)
    );
    let interval = interval_ms.map(|ms| ms.max(10)).unwrap_or(1000);
    out.push_str(&backends.replace("@INTERVAL@", &interval.to_string()));
}

fn real_server(cx: &mut Cx, s: &Stmt, out: &mut String) {
    let (Some(ip), Some(port)) = (
        s.arg(1).and_then(|a| a.parse::<Ipv4Addr>().ok()),
        s.arg(2).and_then(|p| p.parse::<u16>().ok()),
    ) else {
        cx.skipped(s, "needs an IPv4 address and a port");
        return;
    };
    let mut weight = 1u32;
    let mut check = None;
    for c in s.children() {
        match c.key() {
            "weight" => weight = num(cx, c).unwrap_or(1),
            "TCP_CHECK" => check = Some(health_check(cx, c, "kind = \"tcp\"".into())),
            "HTTP_GET" => {
                let mut kind = "kind = \"http\"".to_string();
                let urls: Vec<&Stmt> = c.children().iter().filter(|u| u.key() == "url").collect();
                if let Some(url) = urls.first() {
                    for u in url.children() {
                        match (u.key(), u.arg(1)) {
                            ("path", Some(p)) => kind += &format!(", path = {}", q(p)),
                            ("digest", Some(d)) => kind += &format!(", digest = {}", q(d)),
                            ("status_code", Some(code)) => {
                                kind += &format!(", expect_status = {code}")
                            }
                            _ => cx.skipped(u, "not supported in a url block"),
                        }
                    }
                }
                for extra in urls.iter().skip(1) {
                    cx.skipped(
                        extra,
                        "vipd checks one URL per backend; the first one is used",
                    );
                }
                check = Some(health_check(cx, c, kind));
            }
            "MISC_CHECK" => {
                let kind = match c.children().iter().find(|m| m.key() == "misc_path") {
                    Some(m) => format!(
                        "kind = \"script\", command = {}",
                        q(&m.words[1..].join(" "))
                    ),
                    None => {
                        cx.skipped(c, "MISC_CHECK without misc_path");
                        continue;
                    }
                };
                check = Some(health_check(cx, c, kind));
            }
            "SSL_GET" => cx.skipped(
                c,
                "TLS health checks are not supported; add a tcp or http check on a plain port",
            ),
            "SMTP_CHECK" | "DNS_CHECK" | "UDP_CHECK" | "BFD_CHECK" => cx.skipped(
                c,
                "this check kind is not supported; vipd has tcp, http and script checks",
            ),
            _ => cx.skipped(c, "not supported in a real_server"),
        }
    }
    let _ = writeln!(
        out,
        "  [[service.backend]]\n  address = {}\n  weight = {weight}",
        q(&format!("{ip}:{port}"))
    );
    match check {
        Some(check) => {
            let _ = writeln!(out, "  check = {{ {check} }}\n");
        }
        None => out.push_str("  check = { kind = \"none\" }\n\n"),
    }
}

/// The common timing keys of a check block, after `kind`.
fn health_check(cx: &mut Cx, s: &Stmt, mut kind: String) -> String {
    kind += ", interval_ms = @INTERVAL@";
    for c in s.children() {
        match c.key() {
            "connect_timeout" | "misc_timeout" => {
                if let Some(ms) = secs_ms(cx, c) {
                    kind += &format!(", timeout_ms = {}", ms.max(1));
                }
            }
            "retry" | "nb_get_retry" => {
                if let Some(n) = num::<u32>(cx, c) {
                    kind += &format!(", fall = {}", n.max(1));
                }
            }
            "connect_port" => {
                if let Some(p) = num::<u16>(cx, c) {
                    kind += &format!(", port = {p}");
                }
            }
            "url" | "misc_path" => {}
            "delay_before_retry" => cx.note(
                c,
                "delay_before_retry dropped: vipd checks at the service's interval (delay_loop)",
            ),
            _ => cx.skipped(c, "not supported in a health check"),
        }
    }
    kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_respect_quotes_comments_and_braces() {
        let t = tokenize("a \"b c\"{ # x\n! y\n}d");
        let words: Vec<&Tok> = t.iter().map(|(t, _)| t).collect();
        assert_eq!(
            words,
            vec![
                &Tok::Word("a".into()),
                &Tok::Word("b c".into()),
                &Tok::Open,
                &Tok::Close,
                &Tok::Word("d".into())
            ]
        );
        assert_eq!(t[3].1, 3);
    }

    #[test]
    fn unknown_constructs_are_named_with_their_line() {
        let out = import(
            "virtual_server_group G {\n 1.2.3.4 80\n}\nfoo bar\n",
            "k.conf",
        );
        assert!(
            out.notes
                .iter()
                .any(|n| n.starts_with("k.conf:1:") && n.contains("virtual_server_group")),
            "{:?}",
            out.notes
        );
        assert!(
            out.notes
                .iter()
                .any(|n| n.starts_with("k.conf:4:") && n.contains("foo bar")),
            "{:?}",
            out.notes
        );
    }
}
