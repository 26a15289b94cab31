//! `[[vrrp]]` instances with their tracked scripts and interfaces.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ::vrrp::{AddressFamily, VrrpError};

use super::dataplane::interface_name_problem;
use super::{IP, IPV4};
use crate::config::reader::{Ctx, Tbl};

/// One `[[vrrp]]` instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    /// Unique among instances.
    pub name: String,
    /// One of `dataplane.interfaces`.
    pub interface: String,
    /// 1..=255, unique per interface.
    pub vrid: u8,
    /// 2 or 3 (default 3).
    pub version: u8,
    /// 1..=255, default 100.
    pub priority: u8,
    /// `advert_interval_ms`: v3 a multiple of 10 ms in 10..=40950; v2 whole seconds 1..=255.
    pub advert_interval: Duration,
    pub preempt: bool,
    /// `preempt_delay_ms`, default 0, ≤ 1000 s.
    pub preempt_delay: Duration,
    /// 1..=20 addresses of one family; each VIP belongs to at most one
    /// instance. IPv6 VIPs make an IPv6 instance (version 3 only), which
    /// advertises from the interface's link-local address.
    pub vips: Vec<IpAddr>,
    /// Of the VIPs' family; link-local for an IPv6 instance.
    pub unicast_peers: Vec<IpAddr>,
    /// IPv4 instances only.
    pub unicast_src: Option<Ipv4Addr>,
    /// VRRPv2 simple-text password, ≤ 8 bytes, sent in clear in every
    /// advert: it only keeps instances of different deployments apart (and
    /// matches keepalived's `auth_pass`); it protects nothing.
    pub auth_pass: Option<String>,
    pub garp_count: u32,
    /// `garp_interval_ms`, default 20: the old master may still send a
    /// frame or two from the virtual MAC before it hears the new master,
    /// pulling switches back to it; the next announcement should follow
    /// soon rather than an advert interval later.
    pub garp_interval: Duration,
    /// `garp_refresh_ms`: repeat gratuitous ARP this often while master
    /// (default 10 s; `None` when set to 0).
    pub garp_refresh: Option<Duration>,
    /// Key `track_script`.
    pub track_scripts: Vec<TrackScript>,
    /// Key `track_interface`.
    pub track_interfaces: Vec<TrackInterface>,
    /// Command run on every state change.
    pub notify: Option<String>,
}

impl VrrpInstance {
    /// The family of the VIPs (validation keeps them all of one).
    pub fn family(&self) -> AddressFamily {
        self.vips
            .first()
            .map_or(AddressFamily::Ipv4, AddressFamily::of)
    }

    /// 00:00:5e:00:01:VRID for an IPv4 instance, 00:00:5e:00:02:VRID for
    /// an IPv6 one.
    pub fn virtual_mac(&self) -> [u8; 6] {
        self.family().virtual_mac(self.vrid)
    }

    /// The IPv4 VIPs: all of an IPv4 instance's, none of an IPv6 one's.
    pub fn ipv4_vips(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.vips.iter().filter_map(|a| match a {
            IpAddr::V4(v) => Some(*v),
            IpAddr::V6(_) => None,
        })
    }
}

/// A `[[vrrp.track_script]]`: a command whose result adjusts the priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    pub name: String,
    /// Program and arguments, non-empty.
    pub command: Vec<String>,
    /// `interval_ms`, default 1000, ≥ 10 ms.
    pub interval: Duration,
    /// `timeout_ms`, default 1000, ≥ 1 ms.
    pub timeout: Duration,
    /// -253..=253, default 0: added to the priority while the script fails
    /// (negative) or succeeds (positive); 0 means failure → FAULT.
    pub weight: i32,
    /// ≥ 1, default 1.
    pub fall: u32,
    /// ≥ 1, default 1.
    pub rise: u32,
}

/// A `[[vrrp.track_interface]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    pub name: String,
    /// -253..=253 added to the priority while the link is down; `None`
    /// means link down puts the instance in FAULT.
    pub weight: Option<i32>,
}

pub(super) fn read(cx: &mut Ctx, t: &Tbl) -> Option<VrrpInstance> {
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
    let vips: Option<Vec<IpAddr>> = t.must("vips", t.parse_list(cx, "vips", IP), cx);
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
    let unicast_peers: Vec<IpAddr> = t.parse_list(cx, "unicast_peers", IP).unwrap_or_default();
    let unicast_src = t.parse(cx, "unicast_src", IPV4);
    if unicast_src.is_some() && unicast_peers.is_empty() {
        cx.err_at(
            &t.field("unicast_src"),
            "`unicast_src` is set but `unicast_peers` is empty; list the peers or remove it",
        );
    }
    if let Some(v) = &vips {
        families(cx, t, version, v, &unicast_peers, unicast_src.is_some());
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

/// The checks of the vrrp crate that need no interface address: one
/// family per instance, VRRPv3 for IPv6, peers of the VIPs' family and,
/// over IPv6, link-local. The rest (the link-local source itself) is
/// checked when the instance starts.
fn families(
    cx: &mut Ctx,
    t: &Tbl,
    version: u8,
    vips: &[IpAddr],
    peers: &[IpAddr],
    unicast_src: bool,
) {
    let Some(first) = vips.first() else { return };
    let af = AddressFamily::of(first);
    for (j, vip) in vips.iter().enumerate() {
        if AddressFamily::of(vip) != af {
            cx.err_at(
                &t.field(&format!("vips[{j}]")),
                format!(
                    "{}; vip {first} makes this an {af} instance, so put {vip} in an instance of its own",
                    VrrpError::MixedFamilies { addr: *vip, expected: af }
                ),
            );
        }
    }
    if af == AddressFamily::Ipv6 && version == 2 {
        cx.err_at(
            &t.field("version"),
            format!("vip {first}: {}", VrrpError::V2Ipv6),
        );
    }
    if af == AddressFamily::Ipv6 && unicast_src {
        cx.err_at(
            &t.field("unicast_src"),
            format!("vip {first} makes this an IPv6 instance, whose adverts always come from the interface's link-local address; remove `unicast_src`"),
        );
    }
    for (j, peer) in peers.iter().enumerate() {
        let field = t.field(&format!("unicast_peers[{j}]"));
        match peer {
            IpAddr::V6(p) if af == AddressFamily::Ipv6 && !::vrrp::is_link_local(p) => cx.err_at(
                &field,
                format!("{peer} is not link-local (fe80::/10); IPv6 adverts come only from link-local addresses, so list the peers' link-local addresses"),
            ),
            _ if AddressFamily::of(peer) != af => cx.err_at(
                &field,
                format!("{peer} is not {af} like vip {first}; the peers of an instance are of its family"),
            ),
            _ => {}
        }
    }
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
    let (interval, timeout) = super::check::schedule(cx, t);
    Some(TrackScript {
        name: name?,
        command: command?,
        interval,
        timeout,
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
