//! A failover drill: break site A, measure the client's gap until site B
//! answers, repair A and wait for the traffic to return.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Result};
use viplab::{ProbeSample, Site, TwoSiteLab};

use super::now_ms;

/// Whether the last `n` finished probes started after `since` all reached `site`.
pub fn settled_on(samples: &[ProbeSample], since: u64, site: Site, n: usize) -> bool {
    let recent: Vec<&ProbeSample> = samples.iter().filter(|s| s.at_ms >= since).collect();
    recent.len() >= n
        && recent[recent.len() - n..]
            .iter()
            .all(|s| s.body.as_deref().and_then(Site::of_body) == Some(site))
}

/// Client-side gap of a failover that began at `t0`: from the last probe
/// answered by site A to the first answered by site B.
pub fn gap_ms(samples: &[ProbeSample], t0: u64) -> Result<u64> {
    let site = |s: &ProbeSample| s.body.as_deref().and_then(Site::of_body);
    let Some(first_b) = samples
        .iter()
        .find(|s| s.at_ms >= t0 && site(s) == Some(Site::B))
    else {
        bail!("no probe reached site B after the failure");
    };
    let Some(last_a) = samples
        .iter()
        .rfind(|s| s.at_ms < first_b.at_ms && site(s) == Some(Site::A))
    else {
        bail!("no probe reached site A before the failover");
    };
    Ok(first_b.at_ms - last_a.at_ms)
}

/// Probes `vip` (either family) from the client every 15 ms, each request
/// given 250 ms: what the drills read the client's gaps from.
pub fn vip_prober(lab: &TwoSiteLab, vip: IpAddr) -> viplab::Prober {
    lab.start_prober(
        SocketAddr::new(vip, super::PORT),
        Duration::from_millis(15),
        Duration::from_millis(250),
    )
    .expect("prober")
}

pub struct Drill<'a> {
    pub lab: &'a TwoSiteLab,
    pub prober: &'a viplab::Prober,
}

impl Drill<'_> {
    pub fn wait_site(&self, since: u64, site: Site, what: &str, within: Duration) -> Result<()> {
        let r = self.lab.wait_until(what, within, || {
            settled_on(&self.prober.samples(), since, site, 8)
        });
        if let Err(e) = r {
            let recent: Vec<ProbeSample> = self
                .prober
                .samples()
                .into_iter()
                .filter(|s| s.at_ms >= since)
                .collect();
            bail!(
                "{}: probes since then by site: {:?}; router routes: {}{}",
                e,
                viplab::sites::by_site(&recent),
                self.lab.exec_ok("rt", &["ip", "route"]).unwrap_or_default(),
                self.lab
                    .exec_ok("rt", &["ip", "-6", "route"])
                    .unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Breaks site A, measures the move to B, repairs A and waits for the
    /// traffic to return. Returns the gap in ms.
    pub fn run(
        &self,
        name: &str,
        fail: impl FnOnce() -> Result<()>,
        repair: impl FnOnce() -> Result<()>,
    ) -> Result<u64> {
        self.wait_site(
            now_ms(),
            Site::A,
            "traffic on site A before the drill",
            Duration::from_secs(20),
        )?;
        let t0 = now_ms();
        fail()?;
        self.wait_site(
            t0,
            Site::B,
            &format!("traffic on site B after {name}"),
            Duration::from_secs(15),
        )?;
        let gap = gap_ms(&self.prober.samples(), t0)?;
        let t1 = now_ms();
        repair()?;
        self.wait_site(
            t1,
            Site::A,
            &format!("traffic back on site A after repairing {name}"),
            Duration::from_secs(30),
        )?;
        println!("failover on {name}: client gap {gap} ms (last answer from site A to first from site B)");
        Ok(gap)
    }

    /// [`Drill::run`] with every backend of site A failing its check,
    /// then serving again.
    pub fn run_backends_down(&self, name: &str) -> Result<u64> {
        let each = |act: fn(&TwoSiteLab, usize) -> Result<()>| {
            Site::A
                .backends()
                .into_iter()
                .try_for_each(|i| act(self.lab, i))
        };
        self.run(
            name,
            || each(|lab, i| lab.stop_backend(i)),
            || each(|lab, i| lab.start_backend(i)),
        )
    }
}
