//! The README demo: the two-site failover design, live. A client sits behind a
//! BIRD router; site A (primary) announces the VIP's /25, site B (backup) the
//! /24. Traffic flows to A; A's node dies; longest-prefix routing moves the
//! traffic to B; A comes back and takes it again.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::sites::{by_site, ProbeSample, Site, SiteService, TwoSiteLab, SITE_VIP as VIP};
use crate::{unique_name, LabProcess};

const PORT: u16 = 8080;

fn start_node(lab: &TwoSiteLab, vipd: &Path, site: Site) -> Result<LabProcess> {
    let web = SiteService {
        name: "web",
        port: PORT,
        protocol: "tcp",
        check: r#"{ kind = "http", path = "/", interval_ms = 200, timeout_ms = 500, rise = 2, fall = 2 }"#,
    };
    lab.start_vipd(vipd, site, &[web])
}

fn say(what: &str) {
    println!("\n== {what}");
}

/// Prints where the client's requests went since `from` (CLOCK_MONOTONIC ms).
fn report(samples: &[ProbeSample], from: u64) {
    let recent: Vec<ProbeSample> = samples
        .iter()
        .filter(|s| s.at_ms >= from)
        .cloned()
        .collect();
    let counts: Vec<String> = by_site(&recent)
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    println!(
        "   client requests to {VIP}:{PORT} -> {}",
        counts.join(", ")
    );
}

/// The start time of the newest probe: "now" on the prober's clock.
fn latest(prober: &crate::sites::Prober) -> u64 {
    prober.samples().last().map_or(0, |s| s.at_ms)
}

/// Waits until the last `n` samples all came from `site`.
fn wait_for_site(
    lab: &TwoSiteLab,
    prober: &crate::sites::Prober,
    site: Site,
    what: &str,
) -> Result<()> {
    lab.wait_until(what, Duration::from_secs(30), || {
        let s = prober.samples();
        s.len() >= 5
            && s[s.len() - 5..]
                .iter()
                .all(|p| p.body.as_deref().and_then(Site::of_body) == Some(site))
    })
}

/// The gap the client saw: last answer from `from` before `t0` to the first
/// answer from `to` after it, in ms.
fn gap(samples: &[ProbeSample], t0: u64, from: Site, to: Site) -> Option<u64> {
    let site_of = |s: &ProbeSample| s.body.as_deref().and_then(Site::of_body);
    let last = samples
        .iter()
        .filter(|s| s.at_ms <= t0 && site_of(s) == Some(from))
        .map(|s| s.at_ms)
        .max()?;
    let first = samples
        .iter()
        .filter(|s| s.at_ms > t0 && site_of(s) == Some(to))
        .map(|s| s.at_ms)
        .min()?;
    Some(first.saturating_sub(last))
}

/// Runs the demo with the `vipd` binary at `vipd`.
pub fn run(vipd: PathBuf) -> Result<()> {
    if !vipd.is_file() {
        bail!(
            "no vipd binary at {}: build it first (cargo build --release)",
            vipd.display()
        );
    }
    say("building the two-site lab: client -- BIRD router -- site A (primary, /25) and site B (backup, /24)");
    let lab = TwoSiteLab::up(&unique_name("demo"), PORT)?;
    let _bird = lab.start_bird(&TwoSiteLab::bird_config())?;
    let mut a = Some(start_node(&lab, &vipd, Site::A)?);
    let _b = start_node(&lab, &vipd, Site::B)?;
    lab.wait_until(
        "both sites' routes in the router",
        Duration::from_secs(60),
        || {
            lab.kernel_next_hop(Site::A.prefix()).is_some()
                && lab.kernel_next_hop(Site::B.prefix()).is_some()
        },
    )?;
    println!("{}", lab.birdc(&["show", "route"])?);

    let prober = lab.start_prober(
        SocketAddr::from((VIP, PORT)),
        Duration::from_millis(20),
        Duration::from_millis(300),
    )?;
    say("traffic to the VIP: the /25 from site A wins by longest prefix");
    wait_for_site(&lab, &prober, Site::A, "traffic on site A")?;
    let t = latest(&prober);
    std::thread::sleep(Duration::from_secs(2));
    report(&prober.samples(), t);

    say("site A's vipd is killed (SIGKILL): its BGP session drops, the /25 is withdrawn");
    let t0 = latest(&prober);
    drop(a.take());
    wait_for_site(&lab, &prober, Site::B, "traffic on site B")?;
    let moved = gap(&prober.samples(), t0, Site::A, Site::B);
    println!(
        "   traffic moved to site B; the client saw a gap of {} ms",
        moved.map_or("?".into(), |g| g.to_string())
    );
    println!("{}", lab.birdc(&["show", "route"])?);
    let t1 = latest(&prober);
    std::thread::sleep(Duration::from_secs(2));
    report(&prober.samples(), t1);

    say("site A's vipd restarts: its /25 returns and traffic goes back to A");
    let t2 = latest(&prober);
    a = Some(start_node(&lab, &vipd, Site::A)?);
    wait_for_site(&lab, &prober, Site::A, "traffic back on site A")?;
    println!("   back on site A");
    let t3 = latest(&prober);
    std::thread::sleep(Duration::from_secs(2));
    report(&prober.samples(), t2.min(t3));
    drop(a);

    say("demo done; removing the lab");
    Ok(())
}
