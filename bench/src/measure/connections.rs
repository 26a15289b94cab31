//! Rows about connections: the SYN flood with established flows, new
//! connections per second, and filling vipd's tables before a
//! flow-scaling row.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use viplab::netns;

use crate::bpf::GenConfig;
use crate::dut::Dut;
use crate::frame::Proto;
use crate::generator::{GenJob, Traffic};
use crate::plan::{Forward, NewConnDut};
use crate::report::Measured;
use crate::run::Bench;
use crate::topo::{EST_BASE, FLOW_BASE};

/// Rate at which a flow-scaling row first sends its flows: below what the
/// DUT forwards here, so few are lost before they enter the table.
const FILL_PPS: u64 = 200_000;
/// Share of a row's flows vipd must track before the row is measured:
/// every untracked flow's packets take the workers' first-packet path, so
/// even 5 % of them would measure that path rather than tracked flows.
const FILL_SHARE: f64 = 0.999;
/// Passes over every flow at [`FILL_PPS`] before the fill gives up: the
/// first passes lose first packets to a busy worker, later ones send few.
const FILL_PASSES: f64 = 8.0;

impl Bench<'_> {
    /// Opens the established flows (a SYN each, until vipd tracks them
    /// all), then floods SYNs from `flows` sources with every
    /// `est_every`-th packet an ACK of an established flow; reports the
    /// share of those delivered.
    pub(crate) fn synflood(&mut self, flows: u32) -> Result<Measured> {
        let mut dut = self.vipd(Forward::Nat, flows, self.plan.syn_rate_limit, true)?;
        let est = self.plan.est_flows.max(1);
        let open = self.traffic(Proto::TcpSyn, EST_BASE, est)?;
        self.await_delivery(&mut dut, &open, Duration::from_secs(20))?;
        // Under the admission rate: SYNs over it are dropped in XDP, and a
        // flow never opened would count its ACKs as lost in the flood.
        let open_pps = match u64::from(self.plan.syn_rate_limit) / 2 {
            0 => 50_000,
            half => half.min(50_000),
        };
        self.send_until_tracked(
            &mut dut,
            GenJob {
                traffic: open,
                pps: Some(open_pps),
                duration: Duration::from_secs_f64(f64::from(est) / open_pps as f64),
            },
            u64::from(est),
            Duration::from_secs(10),
        )?;
        let syns = self.traffic(Proto::TcpSyn, FLOW_BASE, flows)?;
        let flood = Traffic {
            cfg: GenConfig {
                est_flows: est,
                est_every: self.plan.est_every.max(2),
                ..syns.cfg
            },
            ..syns
        };
        // At the rate any DUT can be offered here without veth refusing
        // frames before it: a flood above it measures the veth ring.
        let pps = self.ceiling.map(|c| c as u64).or(self.plan.rate_pps);
        let mut m = self.throughput(&mut dut, &flood, self.plan.warmup, pps)?;
        match pps {
            Some(p) => m.notes.push(format!(
                "offered at {:.2} Mpps, the ceiling row's loss-free rate",
                p as f64 / 1e6
            )),
            None => m
                .notes
                .push("offered at the generator's full rate: no ceiling row ran".into()),
        }
        m.notes.push(format!(
            "vipd admits {} SYNs per second per queue (syn_rate_limit)",
            self.plan.syn_rate_limit
        ));
        dut.check_alive()?;
        m.notes.extend(self.vipd_drops());
        Ok(m)
    }

    /// Every packet opens a connection: `flows` distinct sources, more
    /// than the row sends, and no warm-up (it would use them up). The
    /// delivered rate is new connections per second.
    pub(crate) fn new_connections(&mut self, which: NewConnDut, flows: u32) -> Result<Measured> {
        let mut dut = match which {
            NewConnDut::Nftables => self.nftables()?,
            NewConnDut::Vipd => self.vipd(Forward::Nat, flows, 0, true)?,
        };
        let traffic = self.traffic(Proto::Udp, FLOW_BASE, flows)?;
        let mut m = self.throughput(&mut dut, &traffic, Duration::ZERO, self.plan.rate_pps)?;
        if m.sent >= u64::from(flows) {
            m.notes.push(format!(
                "{} packets for {flows} flows: the later ones met flows already open",
                m.sent
            ));
        }
        match which {
            NewConnDut::Nftables => {
                let ns = self.topo.dut_ns();
                let read = |f: &str| {
                    netns::exec_ok(ns, &["cat", &format!("/proc/sys/net/netfilter/{f}")])
                        .map(|s| s.trim().to_string())
                        .unwrap_or_else(|e| format!("unreadable ({e:#})"))
                };
                m.notes.push(format!(
                    "conntrack entries at the end: {} (nf_conntrack_max {})",
                    read("nf_conntrack_count"),
                    read("nf_conntrack_max")
                ));
            }
            NewConnDut::Vipd => {
                if let Ok(n) = self.vipd_flows() {
                    m.notes
                        .push(format!("{n} flows in vipd's tables at the end"));
                }
                m.notes.extend(self.vipd_drops());
            }
        }
        dut.check_alive()?;
        Ok(m)
    }

    /// Sends every flow at a rate the DUT takes until vipd's tables hold
    /// [`FILL_SHARE`] of them, so a flow-scaling row measures packets of
    /// flows vipd already tracks, not first packets. Returns how many it
    /// tracks.
    pub(crate) fn fill_flows(&self, dut: &mut Dut, flows: u32) -> Result<u64> {
        let traffic = self.traffic(Proto::Udp, FLOW_BASE, flows)?;
        self.await_delivery(dut, &traffic, Duration::from_secs(20))?;
        let want = (f64::from(flows) * FILL_SHARE) as u64;
        let limit =
            Duration::from_secs_f64(FILL_PASSES * f64::from(flows) / FILL_PPS as f64 + 10.0);
        self.send_until_tracked(
            dut,
            GenJob {
                traffic,
                pps: Some(FILL_PPS),
                duration: Duration::from_millis(500),
            },
            want,
            limit,
        )
    }

    /// Runs `pass` again and again until vipd tracks `want` flows; fails,
    /// saying how far it got, after `limit`. Returns how many it tracks.
    fn send_until_tracked(
        &self,
        dut: &mut Dut,
        pass: GenJob,
        want: u64,
        limit: Duration,
    ) -> Result<u64> {
        let start = Instant::now();
        loop {
            dut.check_alive()?;
            let tracked = self.vipd_flows()?;
            if tracked >= want {
                return Ok(tracked);
            }
            if start.elapsed() > limit {
                bail!(
                    "vipd tracks {tracked} of {want} flows after {limit:?} of sending them at {} pps: its tables did not fill",
                    pass.pps.unwrap_or(0)
                );
            }
            self.gen.run(pass.clone())?;
        }
    }
}
