//! End to end: vipd's BGP speaker announcing IPv6 to BIRD. Sessions over
//! IPv6, one active with TCP MD5 and GTSM and one passive (BIRD connects),
//! install IPv6 prefixes, and a clean stop withdraws its node's; two sites
//! carry both families over IPv4 sessions, the primary announcing a /48 and
//! the backup a /47, so the router follows the longest prefix; a router
//! that does not offer IPv6 gets the IPv4 routes only and vipd says why.
//! Last, real IPv6 traffic to a VIP served by both sites follows the /48
//! to the primary, moves to the backup within 1 s when the primary stops
//! cleanly or loses every backend, and moves back.

mod common;

use std::cell::RefCell;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::two_sites::*;
use common::*;
use viplab::{Site, TwoSiteLab};

/// The primary site's IPv6 prefix, and the backup's shorter one around it.
const PRIMARY6: &str = "2001:db8::/48";
const BACKUP6: &str = "2001:db8::/47";
/// An address inside both, the IPv6 VIP of the traffic test.
const INSIDE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

/// The `[bgp]` of `site` toward the router at `peer`, announcing `announces`
/// (`(prefix, condition)`), with `extra` peer keys.
fn bgp_section(site: Site, peer: &str, extra: &str, announces: &[(&str, &str)]) -> String {
    let mut out = format!(
        "[bgp]\nlocal_as = {}\nrouter_id = \"{}\"\n  [[bgp.peer]]\n  address = \"{peer}\"\n  remote_as = {ROUTER_AS}\n  \
         hold_time_s = {HOLD_S}\n  keepalive_s = 1\n  connect_retry_s = 1\n  next_hop_v6 = \"{}\"\n{extra}",
        site.local_as(),
        site.uplink_ip(),
        site.uplink_ip6()
    );
    for (prefix, condition) in announces {
        out += &format!(
            "  [[bgp.announce]]\n  prefix = \"{prefix}\"\n  condition = \"{condition}\"\n"
        );
    }
    out
}

/// A BIRD session `name` to `neighbor` in `as_`, with `channels`.
fn bird_peer(
    name: &str,
    local: &str,
    neighbor: &str,
    as_: u32,
    extra: &str,
    channels: &str,
) -> String {
    format!(
        "protocol bgp {name} {{\n  local {local} as {ROUTER_AS};\n  neighbor {neighbor} as {as_};\n  \
         hold time {HOLD_S}; keepalive time 1; connect retry time 1;\n  graceful restart off;\n  \
         error wait time 1, 2;\n{extra}{channels}}}\n"
    )
}

fn bird_base() -> String {
    "router id 172.16.0.1;\nlog stderr all;\nprotocol device { scan time 1; }\n\
     protocol kernel { ipv4 { export where source = RTS_BGP; }; }\n\
     protocol kernel { ipv6 { export where source = RTS_BGP; }; }\n"
        .to_string()
}

const BOTH: &str = "  ipv4 { import all; export none; };\n  ipv6 { import all; export none; };\n";
const V6_ONLY: &str = "  ipv6 { import all; export none; };\n";

fn lab(tag: &str) -> TwoSiteLab {
    TwoSiteLab::up_ipv6(&viplab::unique_name(tag), PORT).expect("two-site lab with IPv6")
}

fn wait_or_dump(
    lab: &TwoSiteLab,
    what: &str,
    within: Duration,
    logs: &[&Vipd],
    f: impl FnMut() -> bool,
) {
    lab.wait_until(what, within, f).unwrap_or_else(|e| {
        let logs: Vec<String> = logs.iter().map(|v| v.log()).collect();
        panic!(
            "{e}\nBIRD:\n{}\n{}\nvipd:\n{}",
            lab.birdc(&["show", "protocols", "all"]).unwrap_or_default(),
            lab.birdc(&["show", "route", "all"]).unwrap_or_default(),
            logs.join("\n----\n")
        )
    });
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn ipv6_session_with_md5_and_gtsm_installs_the_prefix_and_a_clean_stop_withdraws_it() {
    let lab = lab("bgp6tcp");
    let bird = bird_base()
        + &bird_peer(
            "sitea",
            &Site::A.router_ip6().to_string(),
            &Site::A.uplink_ip6().to_string(),
            Site::A.local_as(),
            &format!("  ttl security on;\n  password \"{MD5_KEY}\";\n"),
            V6_ONLY,
        )
        + &bird_peer(
            "siteb",
            &Site::B.router_ip6().to_string(),
            &Site::B.uplink_ip6().to_string(),
            Site::B.local_as(),
            "",
            V6_ONLY,
        );
    let _bird = lab.start_bird(&bird).expect("BIRD starts");
    let extra = format!("  ttl_security = true\n  md5_password = \"{MD5_KEY}\"\n");
    let bgp = bgp_section(
        Site::A,
        &Site::A.router_ip6().to_string(),
        &extra,
        &[(PRIMARY6, "always")],
    );
    let conf_a = site_config(&lab, Site::A, &bgp).replace(
        "[control]\n",
        &format!("[control]\nmetrics = \"{METRICS}\"\n"),
    );
    let mut a = Vipd::start(&lab, "sitea", &conf_a).expect("vipd on site A");
    // Site B waits for the router's connection on its IPv6 listener.
    let bgp_b = bgp_section(
        Site::B,
        &Site::B.router_ip6().to_string(),
        "  passive = true\n",
        &[(BACKUP6, "always")],
    );
    let b =
        Vipd::start(&lab, "siteb", &site_config(&lab, Site::B, &bgp_b)).expect("vipd on site B");

    wait_or_dump(
        &lab,
        "the /48 via vipd in the router's kernel",
        Duration::from_secs(20),
        &[&a, &b],
        || {
            kernel_next_hop6(&lab, PRIMARY6) == Some(Site::A.uplink_ip6())
                && kernel_next_hop6(&lab, BACKUP6) == Some(Site::B.uplink_ip6())
        },
    );
    let m = scrape_metrics(&lab, "sitea", METRICS);
    let negotiated = format!(
        "vipd_bgp_family_negotiated{{peer=\"{}\",family=\"ipv6-unicast\"}}",
        Site::A.router_ip6()
    );
    assert_eq!(m.get(&negotiated), Some(&1.0), "{m:?}");
    let st = bgp_status(&a);
    let peer = st
        .peers
        .first()
        .unwrap_or_else(|| panic!("no peer: {st:?}"));
    assert_eq!(peer.address, Site::A.router_ip6().to_string(), "{st:?}");
    assert_eq!(peer.state, "Established", "{st:?}");
    assert_eq!(peer.families, ["ipv6-unicast"], "{st:?}");
    assert_eq!(peer.advertised, [PRIMARY6], "{st:?}");
    let (ok, text, err) = vipctl_run(&a.socket, &["bgp"]);
    assert!(ok, "{err}");
    assert!(
        text.contains(&Site::A.router_ip6().to_string()) && text.contains(PRIMARY6),
        "vipctl bgp shows the IPv6 peer and prefix:\n{text}"
    );
    assert!(text.contains("families: ipv6-unicast"), "{text}");

    a.terminate(&lab).expect("vipd stops");
    let stopped = Instant::now();
    wait_or_dump(
        &lab,
        "the /48 withdrawn",
        Duration::from_secs(1),
        &[&a],
        || kernel_next_hop6(&lab, PRIMARY6).is_none(),
    );
    println!(
        "IPv6 route withdrawn {} ms after vipd exited",
        stopped.elapsed().as_millis()
    );
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn ipv4_sessions_carry_ipv6_and_the_longer_prefix_wins_until_its_site_stops() {
    let lab = lab("bgp6mp");
    let bird = bird_base()
        + &bird_peer(
            "sitea",
            &Site::A.router_ip().to_string(),
            &Site::A.uplink_ip().to_string(),
            Site::A.local_as(),
            "",
            BOTH,
        )
        + &bird_peer(
            "siteb",
            &Site::B.router_ip().to_string(),
            &Site::B.uplink_ip().to_string(),
            Site::B.local_as(),
            "",
            BOTH,
        );
    let _bird = lab.start_bird(&bird).expect("BIRD starts");
    let conf = |site: Site, v6: &str| {
        let bgp = bgp_section(
            site,
            &site.router_ip().to_string(),
            "",
            &[(site.prefix(), "vip_healthy"), (v6, "always")],
        );
        site_config(&lab, site, &bgp)
    };
    let conf_a = conf(Site::A, PRIMARY6);
    let mut a = Vipd::start(&lab, "sitea", &conf_a).expect("vipd on site A");
    let b = Vipd::start(&lab, "siteb", &conf(Site::B, BACKUP6)).expect("vipd on site B");

    let both = || {
        kernel_next_hop6(&lab, PRIMARY6) == Some(Site::A.uplink_ip6())
            && kernel_next_hop6(&lab, BACKUP6) == Some(Site::B.uplink_ip6())
            && lab.kernel_next_hop(Site::A.prefix()) == Some(Site::A.uplink_ip())
            && lab.kernel_next_hop(Site::B.prefix()) == Some(Site::B.uplink_ip())
    };
    wait_or_dump(
        &lab,
        "both sites' IPv4 and IPv6 prefixes",
        Duration::from_secs(20),
        &[&a, &b],
        both,
    );
    assert_eq!(
        kernel_route6(&lab, INSIDE6),
        Some(Site::A.uplink_ip6()),
        "the /48 wins"
    );
    let st = bgp_status(&a);
    let peer = st
        .peers
        .first()
        .unwrap_or_else(|| panic!("no peer: {st:?}"));
    assert_eq!(peer.families, ["ipv4-unicast", "ipv6-unicast"], "{st:?}");
    assert!(peer.unsent_families.is_empty(), "{st:?}");

    a.terminate(&lab).expect("vipd on site A stops");
    wait_or_dump(
        &lab,
        "only the /47 left",
        Duration::from_secs(1),
        &[&b],
        || {
            kernel_next_hop6(&lab, PRIMARY6).is_none()
                && kernel_route6(&lab, INSIDE6) == Some(Site::B.uplink_ip6())
        },
    );

    let a = Vipd::start(&lab, "sitea", &conf_a).expect("vipd on site A again");
    wait_or_dump(
        &lab,
        "the /48 back",
        Duration::from_secs(20),
        &[&a, &b],
        || kernel_route6(&lab, INSIDE6) == Some(Site::A.uplink_ip6()),
    );
    drop(b);
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn a_router_without_ipv6_gets_ipv4_routes_only_and_vipd_says_why() {
    let lab = lab("bgp6none");
    let bird = bird_base()
        + &bird_peer(
            "sitea",
            &Site::A.router_ip().to_string(),
            &Site::A.uplink_ip().to_string(),
            Site::A.local_as(),
            "",
            "  ipv4 { import all; export none; };\n",
        );
    let _bird = lab.start_bird(&bird).expect("BIRD starts");
    let bgp = bgp_section(
        Site::A,
        &Site::A.router_ip().to_string(),
        "",
        &[(Site::A.prefix(), "always"), (PRIMARY6, "always")],
    );
    let a = Vipd::start(&lab, "sitea", &site_config(&lab, Site::A, &bgp)).expect("vipd on site A");

    wait_or_dump(
        &lab,
        "the IPv4 prefix in the router's kernel",
        Duration::from_secs(20),
        &[&a],
        || lab.kernel_next_hop(Site::A.prefix()) == Some(Site::A.uplink_ip()),
    );
    // Give an IPv6 UPDATE, were one sent, time to arrive.
    std::thread::sleep(Duration::from_secs(1));
    let routes = lab.birdc(&["show", "route"]).unwrap_or_default();
    assert!(
        !routes.contains("2001:db8"),
        "no IPv6 route at BIRD:\n{routes}"
    );
    let st = bgp_status(&a);
    let peer = st
        .peers
        .first()
        .unwrap_or_else(|| panic!("no peer: {st:?}"));
    assert_eq!(peer.families, ["ipv4-unicast"], "{st:?}");
    assert_eq!(peer.advertised, [Site::A.prefix()], "{st:?}");
    assert!(
        peer.unsent_families
            .iter()
            .any(|w| w.starts_with("ipv6-unicast") && w.contains("did not offer")),
        "{st:?}"
    );
    let (ok, text, err) = vipctl_run(&a.socket, &["bgp"]);
    assert!(ok, "{err}");
    assert!(text.contains("not carried: ipv6-unicast"), "{text}");
    assert!(
        a.log().contains(&format!("{PRIMARY6} not announced"))
            || a.log().contains("ipv6-unicast routes not announced"),
        "the log names the unsent IPv6 route:\n{}",
        a.log()
    );
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn ipv6_traffic_fails_over_to_the_backup_site_and_back_by_longest_prefix() {
    let lab = lab("bgp6fail");
    let peer = |site: Site| {
        bird_peer(
            site.role(),
            &site.router_ip6().to_string(),
            &site.uplink_ip6().to_string(),
            site.local_as(),
            "",
            V6_ONLY,
        )
    };
    let _bird = lab
        .start_bird(&(bird_base() + &peer(Site::A) + &peer(Site::B)))
        .expect("BIRD starts");
    let conf = |site: Site, prefix: &str| {
        let bgp = bgp_section(
            site,
            &site.router_ip6().to_string(),
            "",
            &[(prefix, "vip_healthy")],
        );
        site_config_with_vip(&lab, site, INSIDE6.into(), &bgp)
    };
    let conf_a = conf(Site::A, PRIMARY6);
    let a = RefCell::new(Vipd::start(&lab, "sitea", &conf_a).expect("vipd on site A"));
    let b = Vipd::start(&lab, "siteb", &conf(Site::B, BACKUP6)).expect("vipd on site B");

    wait_or_dump(
        &lab,
        "both sites' IPv6 prefixes via their uplinks in the router's kernel",
        Duration::from_secs(20),
        &[&a.borrow(), &b],
        || {
            kernel_next_hop6(&lab, PRIMARY6) == Some(Site::A.uplink_ip6())
                && kernel_next_hop6(&lab, BACKUP6) == Some(Site::B.uplink_ip6())
        },
    );
    assert_eq!(
        kernel_route6(&lab, INSIDE6),
        Some(Site::A.uplink_ip6()),
        "the /48 wins"
    );

    // Site A's backends answer over IPv6 and see the client's own address.
    let vip = SocketAddr::new(INSIDE6.into(), PORT);
    let mut seen = String::new();
    wait_or_dump(
        &lab,
        "a site A backend answering through the IPv6 VIP",
        Duration::from_secs(20),
        &[&a.borrow()],
        || {
            seen = lab
                .http_get_path("client", vip, "/peer", Duration::from_secs(1))
                .unwrap_or_default();
            seen.split_whitespace().next().and_then(Site::of_body) == Some(Site::A)
        },
    );
    assert!(
        seen.contains(&format!("[{}]:", lab.client_ip6()))
            || seen.contains(&format!(" {}:", lab.client_ip6())),
        "site A's backend saw {seen:?}, not the client's IPv6 address"
    );

    let prober = vip_prober(&lab, INSIDE6.into());
    let drill = Drill {
        lab: &lab,
        prober: &prober,
    };
    let clean = drill
        .run(
            "site A's vipd stopped with SIGTERM",
            || a.borrow_mut().terminate(&lab),
            || {
                *a.borrow_mut() = Vipd::start(&lab, "sitea", &conf_a)?;
                Ok(())
            },
        )
        .unwrap_or_else(|e| panic!("clean stop drill: {e:#}\nsite B:\n{}", b.log()));
    let health = drill
        .run_backends_down("all of site A's IPv6 backends failing their checks")
        .unwrap_or_else(|e| panic!("health drill: {e:#}\nsite A:\n{}", a.borrow().log()));
    let uplink = drill
        .run(
            "site A's uplink going down",
            || lab.uplink_down(Site::A),
            || lab.uplink_up(Site::A),
        )
        .unwrap_or_else(|e| panic!("uplink drill: {e:#}\nsite A:\n{}", a.borrow().log()));

    println!(
        "IPv6 convergence (client gap): SIGTERM {clean} ms, health {health} ms, uplink down {uplink} ms"
    );
    assert!(
        clean <= 1000,
        "clean-stop failover took {clean} ms, over 1 s"
    );
    assert!(health <= 1000, "health failover took {health} ms, over 1 s");
    assert!(
        uplink <= 1000,
        "uplink-down failover took {uplink} ms, over 1 s"
    );
    drop(b);
}
