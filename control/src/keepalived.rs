//! `vipctl import-keepalived`: translates a keepalived configuration into a
//! vipd one. The contract: when [`Import::untranslated`] is empty, the TOML
//! loads as a vipd config and means what the keepalived file meant (same
//! VIPs, priorities with keepalived's track-weight sign rules, checks,
//! scripts run as keepalived runs them). Every construct it cannot carry
//! over is listed there with its file and line, and the import has failed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use ::vrrp::{is_link_local, AddressFamily};

/// The translated config, what could not be translated, and remarks on
/// what was translated differently in form but not in meaning.
#[derive(Debug, Default)]
pub struct Import {
    pub toml: String,
    /// `FILE:LINE: what and why`, one per construct vipd cannot express:
    /// the TOML alone does not mean what the keepalived file meant.
    pub untranslated: Vec<String>,
    /// `FILE:LINE: remark`: dropped settings that change nothing vipd does,
    /// and translations worth a look.
    pub notes: Vec<String>,
}

impl Import {
    /// Whether the TOML means what the keepalived file meant.
    pub fn is_complete(&self) -> bool {
        self.untranslated.is_empty()
    }
}

/// A statement: its words, its line, and its block if it has one.
#[derive(Debug)]
struct Stmt {
    words: Vec<String>,
    line: usize,
    block: Option<Vec<Stmt>>,
}

impl Stmt {
    /// Word `i` as the value of a statement shown as this whole line, to
    /// read a number inside a line (`eth0 weight 5`) with the line named.
    fn value_at(&self, i: usize) -> Stmt {
        Stmt {
            words: vec![
                self.words.get(..i).unwrap_or_default().join(" "),
                self.words.get(i).cloned().unwrap_or_default(),
            ],
            line: self.line,
            block: None,
        }
    }
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
    untranslated: Vec<String>,
    notes: Vec<String>,
}

impl Cx<'_> {
    /// A remark that changes nothing the translation means.
    fn note(&mut self, s: &Stmt, msg: impl AsRef<str>) {
        self.notes
            .push(format!("{}:{}: {}", self.file, s.line, msg.as_ref()));
    }
    /// A construct the translation does not carry over.
    fn refuse(&mut self, s: &Stmt, why: impl AsRef<str>) {
        let what = s.words.join(" ");
        self.untranslated.push(format!(
            "{}:{}: `{what}` not translated: {}",
            self.file,
            s.line,
            why.as_ref()
        ));
    }
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A TOML array of strings.
fn q_list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|i| q(i)).collect();
    format!("[{}]", items.join(", "))
}

/// The statement's first argument as a number in `lo..=hi`, or a refusal
/// saying which of missing, not a number or out of range it is.
fn num_in<T>(cx: &mut Cx, s: &Stmt, lo: T, hi: T) -> Option<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(text) = s.arg(1) else {
        cx.refuse(s, format!("the value is missing (a number {lo}–{hi})"));
        return None;
    };
    match text.parse::<T>() {
        Ok(v) if v >= lo && v <= hi => Some(v),
        Ok(_) => {
            cx.refuse(s, format!("{text} is out of range {lo}–{hi}"));
            None
        }
        // A value too large for the type is out of range too.
        Err(_) if text.parse::<f64>().is_ok_and(f64::is_finite) => {
            cx.refuse(s, format!("{text} is out of range {lo}–{hi}"));
            None
        }
        Err(_) => {
            cx.refuse(s, format!("{text:?} is not a number {lo}–{hi}"));
            None
        }
    }
}

/// Seconds (fractions allowed) in `0..=max_s`, as milliseconds.
fn secs_ms(cx: &mut Cx, s: &Stmt, max_s: f64) -> Option<u64> {
    let v: f64 = num_in(cx, s, 0.0, max_s)?;
    Some((v * 1000.0).round() as u64)
}

/// A keepalived script line as vipd's argument vector: split on whitespace
/// when that is all keepalived would do, otherwise run through `/bin/sh -c`
/// as keepalived does for text with shell syntax.
fn command(cx: &mut Cx, s: &Stmt, text: &str) -> Option<Vec<String>> {
    const SHELL: &[char] = &[
        '<', '>', '|', '&', ';', '$', '`', '(', ')', '*', '?', '[', ']', '~', '\'', '"', '\\', '=',
    ];
    if text.trim().is_empty() {
        cx.refuse(s, "the command is empty");
        return None;
    }
    if text.contains(SHELL) {
        cx.note(
            s,
            format!("`{text}` uses shell syntax: written as /bin/sh -c, as keepalived runs it"),
        );
        return Some(vec!["/bin/sh".into(), "-c".into(), text.to_string()]);
    }
    Some(text.split_whitespace().map(str::to_string).collect())
}

/// `key = value` lines of one TOML table; a key given again replaces the
/// earlier value, as the last one wins in keepalived.
#[derive(Default)]
struct Keys(Vec<(String, String)>);

impl Keys {
    fn set(&mut self, cx: &mut Cx, s: &Stmt, key: &str, value: String) {
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| k == key) {
            cx.note(
                s,
                format!(
                    "`{}` given again: this later one counts, as in keepalived",
                    s.key()
                ),
            );
            slot.1 = value;
        } else {
            self.0.push((key.to_string(), value));
        }
    }
    fn write(&self, out: &mut String, indent: &str) {
        for (k, v) in &self.0 {
            let _ = writeln!(out, "{indent}{k} = {v}");
        }
    }
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
        untranslated: Vec::new(),
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
    let mut vrids: HashMap<(String, bool, u8), usize> = HashMap::new();
    // keepalived's default for instances without `version`; a bad value is
    // refused where global_defs is read.
    let default_version = all
        .iter()
        .filter(|s| s.key() == "global_defs")
        .flat_map(|s| s.children())
        .filter(|c| c.key() == "vrrp_version")
        .filter_map(|c| c.arg(1)?.parse::<u8>().ok())
        .rfind(|v| (2..=3).contains(v))
        .unwrap_or(2);
    for s in &all {
        match s.key() {
            k if k.starts_with('@') => conditional(&mut cx, s),
            "global_defs" => global_defs(&mut cx, s),
            "vrrp_script" => vrrp_script_keys(&mut cx, s),
            "vrrp_instance" => vrrp_instance(
                &mut cx,
                s,
                &scripts,
                &mut vrrp,
                &mut interfaces,
                &mut vrids,
                default_version,
            ),
            "virtual_server" => virtual_server(&mut cx, s, &mut services, &mut service_names),
            "virtual_server_group" => cx.refuse(
                s,
                "virtual_server_group is not supported; write one virtual_server per address",
            ),
            "vrrp_sync_group" => cx.refuse(
                s,
                "vrrp_sync_group is not supported: vipd runs each instance on its own, so the group would not fail over together",
            ),
            "static_routes" | "static_ipaddress" | "static_rules" => cx.refuse(
                s,
                "vipd configures no addresses, routes or rules; set them up with the system's network configuration",
            ),
            "include" => cx.refuse(s, "include is not followed; merge the files and import the result"),
            "" => cx.refuse(s, "a block without a keyword"),
            _ => cx.refuse(s, "unknown or unsupported top-level keyword"),
        }
    }
    let mut out = String::new();
    out += "# Translated from keepalived configuration ";
    out += &file.replace(['\n', '\r'], " ");
    out += " by vipctl import-keepalived.\n\n[node]\nname = \"imported\"\nsite = \"default\"\n\n[dataplane]\n";
    if interfaces.is_empty() {
        interfaces.push("eth0".into());
        out += "# No vrrp_instance names an interface: eth0 is assumed. Set the interfaces\n# that receive client traffic and reach the backends.\n";
    } else {
        out += "# Taken from the vrrp_instance interfaces. List every interface that receives\n# client traffic or reaches the backends; vipd attaches AF_XDP to each.\n";
    }
    let _ = writeln!(out, "interfaces = {}\nqueues = 1\n", q_list(&interfaces));
    out += &vrrp;
    out += &services;
    // The contract is checked, not assumed: a translation vipd refuses is
    // no translation.
    if cx.untranslated.is_empty() {
        if let Err(errors) = crate::config::parse(&out, "imported.toml") {
            for e in errors.0 {
                cx.untranslated.push(format!(
                    "{file}: the translation fails vipd's own checks ({e}); please report this with the keepalived file"
                ));
            }
        }
    }
    Import {
        toml: out,
        untranslated: cx.untranslated,
        notes: cx.notes,
    }
}

/// keepalived's `@ID` lines apply only on the node started with `-i ID`.
fn conditional(cx: &mut Cx, s: &Stmt) {
    cx.refuse(
        s,
        format!(
            "conditional configuration ({}) applies only to keepalived started with `-i {}`; vipd has no config ids: keep the lines of one node, drop the prefix and import once per node",
            s.key(),
            s.key().trim_start_matches(['@', '^'])
        ),
    );
}

fn global_defs(cx: &mut Cx, s: &Stmt) {
    for c in s.children() {
        match c.key() {
            "router_id" | "lvs_id" => cx.note(c, "the router name is not needed by vipd ([node] name is its own)"),
            "notification_email" | "notification_email_from" | "smtp_server"
            | "smtp_connect_timeout" | "smtp_helo_name" => cx.note(
                c,
                "e-mail settings do nothing without smtp_alert (each smtp_alert is listed on its own)",
            ),
            k if k.starts_with('@') => conditional(cx, c),
            "vrrp_version" => {
                // Read before the instances; only a bad value is reported here.
                let _ = num_in::<u8>(cx, c, 2, 3);
            }
            "vrrp_garp_master_refresh" => cx.refuse(c, "set garp_refresh_ms on each [[vrrp]] instance by hand"),
            _ => cx.refuse(c, "this global setting has no vipd equivalent"),
        }
    }
}

/// Keys of a vrrp_script the instances cannot use, reported once.
fn vrrp_script_keys(cx: &mut Cx, s: &Stmt) {
    for c in s.children() {
        match c.key() {
            "script" | "interval" | "timeout" | "weight" | "fall" | "rise" => {}
            k if k.starts_with('@') => conditional(cx, c),
            _ => cx.refuse(c, "not supported in a vrrp_script"),
        }
    }
}

/// One tracked interface: keepalived adds a positive weight while the link
/// is up and a negative one while it is down; weight 0 or none makes a
/// down link a fault. vipd adds its weight while the link is down, so a
/// positive weight N becomes N on the base priority and -N while down.
struct TrackedLink {
    name: String,
    /// Added to the base priority (keepalived's positive weights).
    raise: i32,
    /// vipd's weight: added while down; `None` is a fault.
    down: Option<i32>,
}

fn track_interface(cx: &mut Cx, t: &Stmt) -> Option<TrackedLink> {
    let name = t.key().to_string();
    let weight = match (t.arg(1), t.arg(2), t.arg(3)) {
        (None, _, _) => 0,
        (Some("weight"), Some(_), None) => num_in(cx, &t.value_at(2), -253i32, 253)?,
        (Some("weight"), Some(_), Some("reverse")) => {
            cx.refuse(t, "`reverse` weights are not supported");
            return None;
        }
        _ => {
            cx.refuse(t, "expected `INTERFACE` or `INTERFACE weight N`");
            return None;
        }
    };
    Some(match weight {
        0 => TrackedLink {
            name,
            raise: 0,
            down: None,
        },
        w if w > 0 => TrackedLink {
            name,
            raise: w,
            down: Some(-w),
        },
        w => TrackedLink {
            name,
            raise: 0,
            down: Some(w),
        },
    })
}

fn vrrp_instance(
    cx: &mut Cx,
    s: &Stmt,
    scripts: &HashMap<&str, &Stmt>,
    out: &mut String,
    interfaces: &mut Vec<String>,
    vrids: &mut HashMap<(String, bool, u8), usize>,
    default_version: u8,
) {
    let name = s.arg(1).unwrap_or("vrrp").to_string();
    let before = cx.untranslated.len();
    let mut keys = Keys::default();
    let mut track = String::new();
    let mut links: Vec<TrackedLink> = Vec::new();
    let (mut vrid, mut interface, mut vips) = (None, None, Vec::<(IpAddr, usize)>::new());
    let (mut vrid_given, mut vips_given) = (false, false);
    let mut extra_interfaces: Vec<String> = Vec::new();
    let (mut advert_ms, mut version, mut priority) = (1000u64, default_version, 100i32);
    let mut auth: Option<String> = None;
    // Checked once the instance's family is known, which a later line may set.
    let mut native_ipv6: Option<&Stmt> = None;
    let mut version_line: Option<&Stmt> = None;
    let mut peers: Vec<(IpAddr, &Stmt)> = Vec::new();
    let mut unicast_src: Option<(IpAddr, &Stmt)> = None;
    for c in s.children() {
        match c.key() {
            k if k.starts_with('@') => conditional(cx, c),
            "state" => cx.note(
                c,
                format!("`state {}` is only where keepalived starts; vipd starts as backup and the priorities elect the master, as keepalived does after its first advert", c.arg(1).unwrap_or("")),
            ),
            "interface" => interface = c.arg(1).map(str::to_string),
            "virtual_router_id" => {
                vrid_given = true;
                vrid = num_in::<u8>(cx, c, 1, 255);
            }
            "priority" => {
                if let Some(p) = num_in::<u8>(cx, c, 1, 255) {
                    // Only to note a repeat; the value is written below.
                    keys.set(cx, c, "priority", String::new());
                    priority = i32::from(p);
                }
            }
            "version" => {
                if let Some(v) = num_in::<u8>(cx, c, 2, 3) {
                    version = v;
                    version_line = Some(c);
                }
            }
            "native_ipv6" => native_ipv6 = Some(c),
            "advert_int" => advert_ms = secs_ms(cx, c, 255.0).unwrap_or(1000),
            "nopreempt" => keys.set(cx, c, "preempt", "false".into()),
            "preempt" => keys.set(cx, c, "preempt", "true".into()),
            "preempt_delay" => {
                if let Some(ms) = secs_ms(cx, c, 1000.0) {
                    keys.set(cx, c, "preempt_delay_ms", ms.to_string());
                }
            }
            "authentication" => {
                let kind = c.children().iter().find(|a| a.key() == "auth_type");
                let pass = c.children().iter().find(|a| a.key() == "auth_pass");
                match (kind.and_then(|k| k.arg(1)), pass.and_then(|p| p.arg(1))) {
                    (Some("PASS"), Some(p)) if (1..=8).contains(&p.len()) => auth = Some(p.to_string()),
                    (Some("PASS"), Some(p)) => cx.refuse(c, format!("auth_pass is {} bytes; VRRPv2 carries 1 to 8", p.len())),
                    _ => cx.refuse(c, "only auth_type PASS with an auth_pass is supported (AH is not)"),
                }
            }
            "virtual_ipaddress" => {
                vips_given = true;
                for a in c.children() {
                    vip(cx, a, &mut vips, &mut extra_interfaces);
                }
            }
            "unicast_peer" => {
                // An empty block leaves keepalived on multicast, as vipd.
                for p in c.children() {
                    match p.key().parse::<IpAddr>() {
                        Ok(ip) if p.words.len() == 1 => peers.push((ip, p)),
                        _ => cx.refuse(p, "a unicast peer must be one IP address"),
                    }
                }
            }
            "unicast_src_ip" => match c.arg(1).map(str::parse::<IpAddr>) {
                Some(Ok(a)) => unicast_src = Some((a, c)),
                _ => cx.refuse(c, "needs an IP address"),
            },
            "track_script" => {
                for t in c.children() {
                    match scripts.get(t.key()) {
                        Some(sc) => track_script(cx, sc, t, &mut track),
                        None => cx.refuse(t, "no vrrp_script of that name in this file"),
                    }
                }
            }
            "track_interface" => {
                for t in c.children() {
                    if let Some(l) = track_interface(cx, t) {
                        links.push(l);
                    }
                }
            }
            "garp_master_delay" | "garp_master_repeat" | "garp_master_refresh" => cx.refuse(
                c,
                "vipd's gratuitous ARP is set by garp_count, garp_interval_ms and garp_refresh_ms; set them by hand",
            ),
            "use_vmac" => cx.note(c, "vipd always answers for its VIPs with the virtual MAC; no interface is made for it"),
            "mcast_src_ip" => cx.refuse(c, "vipd sends multicast adverts from the interface's first address; give the interface that address first"),
            "notify" => cx.refuse(
                c,
                "vipd calls notify with NAME OLD-STATE NEW-STATE PRIORITY, keepalived with INSTANCE NAME STATE PRIORITY: adapt the script, then set `notify` by hand",
            ),
            "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => cx.refuse(
                c,
                "vipd runs one `notify` command on every state change, with the new state as an argument; merge these into it",
            ),
            "smtp_alert" => cx.refuse(c, "e-mail alerts are not supported; vipd logs every state change"),
            "virtual_routes" | "virtual_rules" => cx.refuse(c, "vipd installs no routes or rules with the VIPs"),
            "lvs_sync_daemon_interface" => cx.refuse(c, "vipd does not synchronise connections between nodes yet"),
            _ => cx.refuse(c, "not supported in a vrrp_instance"),
        }
    }
    let ipv6 = instance_family(cx, &vips, native_ipv6);
    let family = if ipv6 { "IPv6" } else { "IPv4" };
    if ipv6 && version == 2 {
        cx.refuse(
            version_line.unwrap_or(s),
            if version_line.is_some() {
                "an IPv6 instance in VRRP version 2 is outside the standard and vipd runs IPv6 over VRRPv3 only: use `version 3` (keepalived speaks it too)"
            } else {
                "this IPv6 instance runs VRRP version 2 in keepalived (its default without `version 3` or global_defs `vrrp_version 3`), outside the standard; vipd runs IPv6 over VRRPv3 only: add `version 3`"
            },
        );
    }
    let mut peer_list = Vec::new();
    for (ip, p) in &peers {
        match ip {
            IpAddr::V6(v6) if ipv6 && !is_link_local(v6) => cx.refuse(
                p,
                "IPv6 adverts come from link-local addresses only: list the peer's link-local (fe80::/10) address",
            ),
            ip if ip.is_ipv6() == ipv6 => peer_list.push(ip.to_string()),
            _ => cx.refuse(p, format!("the peer's family differs from this {family} instance's; vipd runs one family per instance")),
        }
    }
    if !peer_list.is_empty() {
        keys.set(cx, s, "unicast_peers", q_list(&peer_list));
    }
    match unicast_src {
        Some((IpAddr::V4(a), _)) if !ipv6 => keys.set(cx, s, "unicast_src", q(&a.to_string())),
        Some((IpAddr::V6(a), c)) if ipv6 && is_link_local(&a) => cx.note(
            c,
            "unicast_src_ip dropped: vipd sends IPv6 adverts from the interface's link-local address, which should be this one",
        ),
        Some((_, c)) if ipv6 => cx.refuse(
            c,
            "IPv6 adverts come from the interface's link-local address; vipd cannot send them from another",
        ),
        Some((_, c)) => cx.refuse(c, "needs an IPv4 address for this IPv4 instance"),
        None => {}
    }
    let (Some(vrid), Some(interface)) = (vrid, interface) else {
        if !vrid_given || cx.untranslated.len() == before {
            cx.refuse(s, "an instance needs interface and virtual_router_id");
        }
        return;
    };
    if let Some(first) = vrids.insert((interface.clone(), ipv6, vrid), s.line) {
        cx.refuse(s, format!("virtual_router_id {vrid} on {interface} is already used by the {family} instance at line {first}"));
    }
    if version == 3 && (advert_ms % 10 != 0 || !(10..=40_950).contains(&advert_ms)) {
        cx.refuse(
            s,
            "VRRPv3 adverts are counted in hundredths of a second: advert_int must be 0.01 to 40.95",
        );
    }
    if version == 2 && advert_ms % 1000 != 0 {
        cx.refuse(
            s,
            "advert_int below a whole second needs VRRP version 3 (`version 3` in keepalived too)",
        );
    }
    if !vips_given {
        cx.refuse(s, "no virtual_ipaddress: a vipd instance has 1 to 20 VIPs");
    } else if vips.len() > 20 {
        cx.refuse(
            s,
            format!(
                "{} VIPs; a vipd instance has 1 to 20: split them over instances",
                vips.len()
            ),
        );
    }
    let raise: i32 = links.iter().map(|l| l.raise).sum();
    let base = priority + raise;
    if raise > 0 && base > 254 {
        cx.refuse(s, format!("priority {priority} plus the positive track_interface weights ({raise}) exceeds 254, which vipd would need as base priority"));
    } else if raise > 0 {
        cx.note(s, format!("priority {priority} with track_interface weights adding {raise} while up: written as priority {base}, those weights subtracted while down"));
    }
    if cx.untranslated.len() > before {
        return;
    }
    for i in std::iter::once(&interface).chain(&extra_interfaces) {
        if !interfaces.contains(i) {
            interfaces.push(i.clone());
        }
    }
    keys.0.retain(|(k, _)| k != "priority");
    let _ = writeln!(
        out,
        "[[vrrp]]\nname = {}\ninterface = {}\nvrid = {vrid}\nversion = {version}\npriority = {base}\nadvert_interval_ms = {advert_ms}\nvips = {}",
        q(&name),
        q(&interface),
        q_list(&vips.iter().map(|(ip, _)| ip.to_string()).collect::<Vec<_>>())
    );
    match (&auth, version) {
        (Some(p), 2) => {
            let _ = writeln!(out, "auth_pass = {}", q(p));
        }
        (Some(_), _) => cx.note(
            s,
            "authentication ignored: VRRPv3 has none, keepalived ignores it too",
        ),
        (None, _) => {}
    }
    keys.write(out, "");
    for l in &links {
        let _ = writeln!(out, "\n  [[vrrp.track_interface]]\n  name = {}", q(&l.name));
        if let Some(w) = l.down {
            let _ = writeln!(out, "  weight = {w}");
        }
    }
    out.push_str(&track);
    out.push('\n');
}

/// Whether an instance is IPv6: `native_ipv6` or, as keepalived decides,
/// its first VIP. VIPs of the other family are refused: keepalived would
/// carry them in the adverts of one family, a vipd instance has one.
fn instance_family(cx: &mut Cx, vips: &[(IpAddr, usize)], native_ipv6: Option<&Stmt>) -> bool {
    let (ipv6, why) = match (native_ipv6, vips.first()) {
        (Some(n), _) => (true, format!("native_ipv6 at line {}", n.line)),
        (None, Some((first, line))) => (
            first.is_ipv6(),
            format!("its first VIP {first} at line {line}"),
        ),
        (None, None) => return false,
    };
    let family = if ipv6 { "IPv6" } else { "IPv4" };
    for (ip, line) in vips.iter().filter(|(ip, _)| ip.is_ipv6() != ipv6) {
        cx.untranslated.push(format!(
            "{}:{line}: `{ip}` not translated: this instance is {family} ({why}); vipd runs one address family per instance, so give the other family's VIPs an instance of their own",
            cx.file
        ));
    }
    ipv6
}

/// One `virtual_ipaddress` line: `ADDRESS[/LEN] [dev IF] [label L] ...`.
fn vip(cx: &mut Cx, a: &Stmt, vips: &mut Vec<(IpAddr, usize)>, interfaces: &mut Vec<String>) {
    let addr = a.key().split('/').next().unwrap_or_default();
    let Ok(ip) = addr.parse::<IpAddr>() else {
        cx.refuse(a, "not an IP address");
        return;
    };
    if vips.iter().any(|(v, _)| *v == ip) {
        cx.note(
            a,
            format!("{ip} listed again (another label or device): one VIP"),
        );
    } else {
        vips.push((ip, a.line));
    }
    let mut opts = a.words[1..].iter();
    while let Some(opt) = opts.next() {
        match (opt.as_str(), opts.next()) {
            ("dev", Some(dev)) => {
                let asks = if ip.is_ipv6() { "Neighbor Solicitations" } else { "ARP" };
                cx.note(a, format!("`dev {dev}`: vipd answers {asks} for the VIP on {dev}, which is added to the dataplane interfaces"));
                if !interfaces.contains(dev) {
                    interfaces.push(dev.clone());
                }
            }
            ("label", Some(l)) => cx.note(a, format!("`label {l}` names an address alias; vipd puts no address on the interface, so there is nothing to name")),
            ("brd" | "broadcast" | "scope", Some(_)) => cx.note(a, format!("`{opt}` dropped: vipd puts no address on the interface")),
            _ => cx.refuse(a, format!("option `{opt}` of a virtual address is not supported")),
        }
    }
}

/// One `track_script` entry of an instance: the vrrp_script `sc` with the
/// entry's own `weight N` if it gives one (keepalived's per-instance
/// override).
fn track_script(cx: &mut Cx, sc: &Stmt, entry: &Stmt, out: &mut String) {
    let name = sc.arg(1).unwrap_or("script");
    let mut keys = Keys::default();
    let mut cmd = None;
    for c in sc.children() {
        match c.key() {
            "script" => {
                let text = c.words[1..].join(" ");
                cmd = command(cx, c, &text);
            }
            "interval" | "timeout" => {
                if let Some(ms) = secs_ms(cx, c, 3600.0) {
                    keys.set(cx, c, &format!("{}_ms", c.key()), ms.max(10).to_string());
                }
            }
            "weight" => {
                if c.arg(2) == Some("reverse") {
                    cx.refuse(c, "`reverse` weights are not supported");
                } else if let Some(v) = num_in(cx, c, -253i32, 253) {
                    keys.set(cx, c, "weight", v.to_string());
                }
            }
            "fall" | "rise" => {
                if let Some(v) = num_in(cx, c, 1u32, 1000) {
                    keys.set(cx, c, c.key(), v.to_string());
                }
            }
            _ => {}
        }
    }
    match (entry.arg(1), entry.arg(2), entry.arg(3)) {
        (None, _, _) => {}
        (Some("weight"), Some(_), None) => {
            if let Some(v) = num_in(cx, &entry.value_at(2), -253i32, 253) {
                keys.0.retain(|(k, _)| k != "weight");
                keys.0.push(("weight".into(), v.to_string()));
            }
        }
        _ => cx.refuse(
            entry,
            "expected `SCRIPT` or `SCRIPT weight N` (no `reverse`)",
        ),
    }
    let Some(cmd) = cmd else {
        cx.refuse(
            entry,
            format!("vrrp_script {name} has no (unconditional) `script` line to run"),
        );
        return;
    };
    let _ = writeln!(
        out,
        "\n  [[vrrp.track_script]]\n  name = {}\n  command = {}",
        q(name),
        q_list(&cmd)
    );
    keys.write(out, "  ");
}

fn virtual_server(cx: &mut Cx, s: &Stmt, out: &mut String, names: &mut HashMap<String, usize>) {
    let addr = s.arg(1).map(str::parse::<IpAddr>);
    let (vip, port) = match (addr, s.arg(2)) {
        (Some(Ok(vip)), Some(_)) if s.words.len() == 3 => {
            let Some(port) = num_in::<u16>(cx, &s.value_at(2), 1, 65535) else {
                return;
            };
            (vip, port)
        }
        _ if matches!(s.arg(1), Some("fwmark" | "group")) => {
            cx.refuse(
                s,
                "only `virtual_server ADDRESS PORT` is supported (not fwmark or group)",
            );
            return;
        }
        _ => {
            cx.refuse(s, "expected `virtual_server ADDRESS PORT`");
            return;
        }
    };
    let base = format!("vs-{vip}-{port}");
    let n = names.entry(base.clone()).or_default();
    *n += 1;
    let name = if *n == 1 { base } else { format!("{base}-{n}") };
    let mut keys = Keys::default();
    let mut real: Vec<&Stmt> = Vec::new();
    let mut interval_ms = 60_000u64;
    let mut virtualhost = None;
    let (mut scheduler, mut forward) = ("wlc".to_string(), "nat".to_string());
    for c in s.children() {
        match c.key() {
            k if k.starts_with('@') => conditional(cx, c),
            "delay_loop" => interval_ms = secs_ms(cx, c, 3600.0).unwrap_or(interval_ms).max(10),
            "lb_algo" => match c.arg(1) {
                Some(a @ ("rr" | "wrr" | "lc" | "wlc" | "sh" | "dh" | "sed" | "nq" | "lblc" | "lblcr")) => scheduler = a.into(),
                Some("mh") => scheduler = "maglev".into(),
                _ => cx.refuse(c, "scheduler not supported by vipd (it has rr wrr lc wlc sh dh sed nq lblc lblcr, and maglev for mh)"),
            },
            "lb_kind" => match c.arg(1) {
                Some("NAT") => forward = "nat".into(),
                Some("DR") => forward = "dr".into(),
                _ => cx.refuse(c, "vipd forwards by NAT, full NAT or DR (no IP tunnel)"),
            },
            "protocol" => match c.arg(1) {
                Some("TCP") => keys.set(cx, c, "protocol", q("tcp")),
                Some("UDP") => keys.set(cx, c, "protocol", q("udp")),
                _ => cx.refuse(c, "vipd balances TCP and UDP only"),
            },
            "persistence_timeout" => {
                if let Some(v) = num_in(cx, c, 1u32, 86_400) {
                    keys.set(cx, c, "persistence_s", v.to_string());
                }
            }
            "sorry_server" => {
                if let Some(a) = socket(cx, c, vip) {
                    keys.set(cx, c, "sorry_server", q(&a.to_string()));
                }
            }
            "virtualhost" => virtualhost = c.arg(1).map(str::to_string),
            "real_server" => real.push(c),
            _ => cx.refuse(c, "not supported in a virtual_server"),
        }
    }
    let _ = writeln!(
        out,
        "[[service]]\nname = {}\nvip = {}\nport = {port}\nscheduler = {}\nforward = {}",
        q(&name),
        q(&vip.to_string()),
        q(&scheduler),
        q(&forward)
    );
    keys.write(out, "");
    out.push('\n');
    for r in real {
        real_server(cx, r, out, vip, interval_ms, virtualhost.as_deref());
    }
}

/// `KEYWORD ADDRESS PORT` of a real or sorry server as a socket address
/// (IPv6 written in brackets), of the VIP's family: vipd does not
/// translate between families.
fn socket(cx: &mut Cx, s: &Stmt, vip: IpAddr) -> Option<SocketAddr> {
    let ip = match s.arg(1).map(str::parse::<IpAddr>) {
        Some(Ok(ip)) if s.words.len() == 3 => ip,
        _ => {
            cx.refuse(s, "expected an IP address and a port");
            return None;
        }
    };
    let port = num_in::<u16>(cx, &s.value_at(2), 1, 65535)?;
    if ip.is_ipv6() != vip.is_ipv6() {
        let (this, that) = (AddressFamily::of(&ip), AddressFamily::of(&vip));
        cx.refuse(
            s,
            format!("an {this} server behind the {that} VIP {vip}: vipd forwards within one address family"),
        );
        return None;
    }
    Some(SocketAddr::new(ip, port))
}

fn real_server(
    cx: &mut Cx,
    s: &Stmt,
    out: &mut String,
    vip: IpAddr,
    interval_ms: u64,
    virtualhost: Option<&str>,
) {
    let Some(address) = socket(cx, s, vip) else {
        return;
    };
    let ip = address.ip();
    let mut weight = 1u32;
    let mut checks: Vec<String> = Vec::new();
    for c in s.children() {
        match c.key() {
            "weight" => weight = num_in(cx, c, 0u32, 65_535).unwrap_or(1),
            "inhibit_on_failure" => cx.note(c, "a failed backend gets no new flows in vipd either way"),
            "TCP_CHECK" => checks.extend(health_check(cx, c, "kind = \"tcp\"".into(), (ip, interval_ms), &[])),
            "HTTP_GET" | "SSL_GET" => {
                let scheme = if c.key() == "SSL_GET" { "https" } else { "http" };
                if let Some(kind) = http_get(cx, c, scheme, virtualhost) {
                    checks.extend(health_check(cx, c, kind, (ip, interval_ms), &["url", "virtualhost"]));
                }
            }
            "UDP_CHECK" => {
                if let Some(kind) = udp_check(cx, c) {
                    checks.extend(health_check(cx, c, kind, (ip, interval_ms), &["payload", "require_reply"]));
                }
            }
            "DNS_CHECK" => {
                if let Some(kind) = dns_check(cx, c) {
                    checks.extend(health_check(cx, c, kind, (ip, interval_ms), &["type", "name"]));
                }
            }
            "PING_CHECK" => match c.children().iter().find(|p| p.key() == "connect_port") {
                Some(p) => cx.refuse(p, "an ICMP echo has no port"),
                None => checks.extend(health_check(cx, c, "kind = \"ping\"".into(), (ip, interval_ms), &[])),
            },
            "MISC_CHECK" => {
                let path = c.children().iter().find(|m| m.key() == "misc_path");
                let kind = path
                    .and_then(|m| command(cx, m, &m.words[1..].join(" ")))
                    .map(|cmd| format!("kind = \"script\", command = {}", q_list(&cmd)));
                match kind {
                    Some(kind) => checks.extend(health_check(cx, c, kind, (ip, interval_ms), &["misc_path"])),
                    None if path.is_none() => cx.refuse(c, "MISC_CHECK without misc_path"),
                    None => {}
                }
            }
            "SMTP_CHECK" | "BFD_CHECK" | "FILE_CHECK" => cx.refuse(
                c,
                "vipd has tcp, http, https, udp, dns, ping and script checks only; this backend would be unchecked (always healthy). A MISC_CHECK script can do it",
            ),
            _ => cx.refuse(c, "not supported in a real_server"),
        }
    }
    if checks.len() > 1 {
        cx.refuse(
            s,
            "vipd runs one check per backend; keepalived requires all of these to pass",
        );
    }
    let _ = writeln!(
        out,
        "  [[service.backend]]\n  address = {}\n  weight = {weight}\n  check = {{ {} }}\n",
        q(&address.to_string()),
        checks.first().map_or("kind = \"none\"", String::as_str)
    );
}

/// The `kind` part of an HTTP_GET or SSL_GET (`scheme` "http" or "https"):
/// one url with a path, and at most one status code and a digest. keepalived
/// does not verify a backend's certificate unless told to, and neither does
/// vipd's https check by default.
fn http_get(cx: &mut Cx, c: &Stmt, scheme: &str, virtualhost: Option<&str>) -> Option<String> {
    let mut kind = format!("kind = \"{scheme}\"");
    let urls: Vec<&Stmt> = c.children().iter().filter(|u| u.key() == "url").collect();
    let [url] = urls.as_slice() else {
        cx.refuse(
            c,
            format!(
                "{} url blocks: vipd checks exactly one URL per backend",
                urls.len()
            ),
        );
        return None;
    };
    for u in url.children() {
        match (u.key(), u.arg(1), u.words.len()) {
            ("path", Some(p), 2) => kind += &format!(", path = {}", q(p)),
            ("digest", Some(d), 2) => kind += &format!(", digest = {}", q(d)),
            ("status_code", Some(code), 2) if code.bytes().all(|b| b.is_ascii_digit()) => {
                let code = num_in(cx, u, 100u16, 599)?;
                kind += &format!(", expect_status = {code}");
            }
            ("status_code", _, _) => {
                cx.refuse(u, "vipd expects one status code, not ranges or lists");
                return None;
            }
            _ => {
                cx.refuse(u, "not supported in a url block");
                return None;
            }
        }
    }
    let host = c
        .children()
        .iter()
        .find(|h| h.key() == "virtualhost")
        .and_then(|h| h.arg(1))
        .or(virtualhost);
    if let Some(h) = host {
        kind += &format!(", host = {}", q(h));
    }
    Some(kind)
}

/// The `kind` part of a UDP_CHECK: keepalived's hex `payload` (an empty
/// datagram without one) and `require_reply`, which vipd looks for anywhere
/// in the reply.
fn udp_check(cx: &mut Cx, c: &Stmt) -> Option<String> {
    let mut kind = "kind = \"udp\"".to_string();
    let mut payload = false;
    for o in c.children() {
        let hex = o.arg(1).filter(|h| {
            o.words.len() == 2
                && h.len().is_multiple_of(2)
                && h.bytes().all(|b| b.is_ascii_hexdigit())
        });
        match (o.key(), hex) {
            ("payload", Some(h)) => {
                payload = true;
                let _ = write!(kind, ", payload_hex = {}", q(h));
            }
            ("require_reply", Some(h)) => {
                cx.note(
                    o,
                    "require_reply: vipd accepts a reply holding these bytes anywhere",
                );
                let _ = write!(kind, ", expect_hex = {}", q(h));
            }
            ("payload" | "require_reply", None) => {
                cx.refuse(o, "expected one hex string with an even number of digits");
                return None;
            }
            _ => {}
        }
    }
    if !payload {
        kind += ", payload = \"\"";
    }
    Some(kind)
}

/// The `kind` part of a DNS_CHECK: `type` A or AAAA, and a `name`.
fn dns_check(cx: &mut Cx, c: &Stmt) -> Option<String> {
    let mut kind = "kind = \"dns\"".to_string();
    let (mut named, mut typed) = (false, false);
    for o in c.children() {
        match (o.key(), o.arg(1), o.words.len()) {
            ("type", Some(t @ ("A" | "AAAA" | "a" | "aaaa")), 2) => {
                typed = true;
                let _ = write!(kind, ", qtype = {}", q(&t.to_ascii_uppercase()));
            }
            ("type", _, _) => {
                cx.refuse(o, "vipd's dns check asks for A or AAAA records only");
                return None;
            }
            ("name", Some(n), 2) if crate::health::dns::check_name(n).is_ok() => {
                named = true;
                let _ = write!(kind, ", name = {}", q(n));
            }
            ("name", _, _) => {
                cx.refuse(
                    o,
                    "vipd's dns check needs a host name such as www.example.com",
                );
                return None;
            }
            _ => {}
        }
    }
    if !named {
        cx.refuse(
            c,
            "vipd's dns check needs a `name` to look up (keepalived's default, the root's SOA, is not an A or AAAA question)",
        );
        return None;
    }
    if !typed {
        cx.note(
            c,
            "no type: keepalived asks for SOA records, vipd asks for A",
        );
    }
    Some(kind)
}

/// The common timing keys of a check block, after `kind`. keepalived's
/// defaults are written out (5 s timeout, one failure takes a backend down,
/// one success brings it back), as vipd's differ. `own` are the keys the
/// kind itself has read. `at` is the backend's address and the service's
/// check interval.
fn health_check(
    cx: &mut Cx,
    s: &Stmt,
    mut kind: String,
    at: (IpAddr, u64),
    own: &[&str],
) -> Option<String> {
    let (backend, interval_ms) = at;
    let _ = write!(kind, ", interval_ms = {interval_ms}");
    let before = cx.untranslated.len();
    let (mut timeout_ms, mut fall) = (5000, 1);
    for c in s.children() {
        match c.key() {
            "connect_timeout" | "misc_timeout" => {
                if let Some(ms) = secs_ms(cx, c, 3600.0) {
                    timeout_ms = ms.max(1);
                }
            }
            "retry" | "nb_get_retry" => {
                if let Some(n) = num_in(cx, c, 0u32, 1000) {
                    fall = n.max(1);
                }
            }
            "connect_port" => {
                if let Some(p) = num_in(cx, c, 1u16, 65535) {
                    let _ = write!(kind, ", port = {p}");
                }
            }
            k if own.contains(&k) => {}
            "connect_ip" => match c.arg(1).map(str::parse::<IpAddr>) {
                Some(Ok(ip)) if ip == backend => cx.note(
                    c,
                    "connect_ip is the backend's own address, which vipd checks anyway",
                ),
                Some(Ok(_)) => cx.refuse(
                    c,
                    format!("vipd checks a backend at its own address {backend}, not another"),
                ),
                _ => cx.refuse(c, "needs an IP address"),
            },
            "delay_before_retry" => cx.note(
                c,
                "delay_before_retry dropped: vipd checks at the service's interval (delay_loop)",
            ),
            _ => cx.refuse(c, "not supported in a health check"),
        }
    }
    let _ = write!(kind, ", timeout_ms = {timeout_ms}, fall = {fall}, rise = 1");
    (cx.untranslated.len() == before).then_some(kind)
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
            out.untranslated
                .iter()
                .any(|n| n.starts_with("k.conf:1:") && n.contains("virtual_server_group")),
            "{:?}",
            out.untranslated
        );
        assert!(
            out.untranslated
                .iter()
                .any(|n| n.starts_with("k.conf:4:") && n.contains("foo bar")),
            "{:?}",
            out.untranslated
        );
    }
}
