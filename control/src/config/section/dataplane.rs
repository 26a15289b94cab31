//! `[dataplane]`: the AF_XDP interfaces, the per-worker resources and the
//! flow timeouts.

use std::time::Duration;

pub use engine::XdpMode;

use crate::config::reader::{as_int, Ctx, Tbl};

/// `[dataplane]`: AF_XDP interfaces and the per-worker resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataplane {
    /// 1..=8 unique kernel interface names.
    pub interfaces: Vec<String>,
    /// Queues per interface, 1..=64; one pinned worker per queue.
    pub queues: u16,
    /// CPU to pin each worker to; when present its length equals `queues`.
    pub cores: Option<Vec<usize>>,
    pub xdp_mode: XdpMode,
    /// Flow table entries per worker, ≥ 64.
    pub flow_capacity: usize,
    /// UMEM frames per worker, a power of two.
    pub frames_per_worker: u32,
    /// From `[dataplane.timeouts]` (keys end in `_ms`).
    pub timeouts: FlowTimeouts,
    /// Persistence (sticky source) entries per worker, ≥ 64.
    pub persistence_capacity: usize,
    /// New TCP connections to VIPs admitted per second and receive queue by
    /// the XDP program; 0 (the default) admits all.
    pub syn_rate_limit: u32,
    /// The largest SYN burst admitted at once; default a tenth of the rate,
    /// at least 64.
    pub syn_burst: u32,
    /// Established connections forwarded by the XDP program itself
    /// (default); `false` keeps every packet in the workers. `reload`
    /// switches it.
    pub fast_path: bool,
}

/// Idle timeouts of a flow entry by protocol state; all are > 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowTimeouts {
    /// `tcp_embryonic_ms`, default 5 s: SYN seen, handshake not finished.
    pub tcp_embryonic: Duration,
    /// `tcp_established_ms`, default 900 s.
    pub tcp_established: Duration,
    /// `tcp_closing_ms`, default 60 s: one FIN seen.
    pub tcp_closing: Duration,
    /// `tcp_time_wait_ms`, default 10 s: both FINs seen.
    pub tcp_time_wait: Duration,
    /// `tcp_close_ms`, default 2 s: RST seen.
    pub tcp_close: Duration,
    /// `udp_ms`, default 300 s.
    pub udp: Duration,
}

impl Default for FlowTimeouts {
    fn default() -> Self {
        FlowTimeouts {
            tcp_embryonic: Duration::from_millis(5_000),
            tcp_established: Duration::from_millis(900_000),
            tcp_closing: Duration::from_millis(60_000),
            tcp_time_wait: Duration::from_millis(10_000),
            tcp_close: Duration::from_millis(2_000),
            udp: Duration::from_millis(300_000),
        }
    }
}

/// A kernel interface name: what `ip link` would accept.
pub(super) fn interface_name_problem(name: &str) -> Option<&'static str> {
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

pub(super) fn read(cx: &mut Ctx, t: &Tbl) -> Option<Dataplane> {
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
            as_int(cx, v, f, l, 0, 4095).and_then(|n| usize::try_from(n).ok())
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
