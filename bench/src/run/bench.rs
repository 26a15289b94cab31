//! The bench: topology, sink, latency ring and generator thread, and the
//! dispatch of one scenario to its DUT and measurement.

use std::net::Ipv4Addr;

use anyhow::{anyhow, Result};
use aya::maps::{MapData, RingBuf};
use viplab::netns;

use crate::bpf::{Ceiling, Expect, Expected, GenConfig, Sink};
use crate::dut::Dut;
use crate::failover;
use crate::frame::{FrameSpec, Proto, Template};
use crate::generator::GenThread;
use crate::plan::{Forward, NewConnDut, Plan, Scenario};
use crate::report::Measured;
use crate::topo::{backend_ip, Topo, BACKENDS, EST_BASE, SNAT_IP, VIP, VIP_PORT};

pub(crate) struct Bench<'p> {
    pub(crate) plan: &'p Plan,
    pub(crate) sink: Sink,
    pub(crate) latency: RingBuf<MapData>,
    pub(crate) gen: GenThread,
    /// The ceiling row's loss-free rate (its delivered rate if it found
    /// none), once measured: the SYN flood's rate and twice the latency
    /// phase's.
    pub(crate) ceiling: Option<f64>,
    // Dropped last: the namespaces go after everything attached in them.
    pub(crate) topo: Topo,
}

impl<'p> Bench<'p> {
    pub(crate) fn up(plan: &'p Plan) -> Result<Bench<'p>> {
        let topo = Topo::up(&viplab::unique_name("bench"))?;
        let sink_if = topo.sink.clone();
        let mut sink = netns::in_ns(topo.sink_ns(), move || {
            Sink::attach(sink_if.ifindex, sink_if.name)
        })?;
        let latency = sink
            .take_latency()
            .ok_or_else(|| anyhow!("sink ring buffer missing"))?;
        let gen = GenThread::start(topo.gen_ns(), plan.gen_core, topo.gen.ifindex, plan.batch)?;
        Ok(Bench {
            plan,
            sink,
            latency,
            gen,
            ceiling: None,
            topo,
        })
    }
}

impl Bench<'_> {
    pub(crate) fn template(&self, proto: Proto) -> Result<Template> {
        FrameSpec {
            size: self.plan.frame_size,
            proto,
            dst_mac: self.topo.dut_in.mac,
            src_mac: self.topo.gen.mac,
            dst_ip: VIP,
            dst_port: VIP_PORT,
        }
        .build()
        .map_err(anyhow::Error::from)
    }

    pub(crate) fn gen_config(
        &self,
        t: &Template,
        src_base: Ipv4Addr,
        flows: u32,
        stamp: bool,
    ) -> GenConfig {
        GenConfig {
            dst_mac: self.topo.dut_in.mac,
            src_mac: self.topo.gen.mac,
            src_base,
            flows: flows.max(1),
            ports_per_ip: 50_000,
            port_base: 10_000,
            est_base: EST_BASE,
            stamp,
            ..GenConfig::from_template(t)
        }
    }

    /// Runs one scenario; `progress` hears about its parts (failover events).
    pub(crate) fn scenario(
        &mut self,
        s: Scenario,
        flows: u32,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Measured> {
        let w = self.plan.warmup;
        self.sink.expect(&expectation(s, self.topo.sink.mac))?;
        match s {
            Scenario::Ceiling => {
                let (dut_in, out) = (self.topo.dut_in.clone(), self.topo.dut_out.ifindex);
                let c = netns::in_ns(self.topo.dut_ns(), move || {
                    Ceiling::attach((dut_in.ifindex, dut_in.name), out)
                })?;
                // Its loss-free rate is what any DUT can be offered here
                // without veth refusing frames: the SYN flood's rate.
                let m = self.udp(Dut::Ceiling { _attached: c }, flows, w, true)?;
                self.ceiling = Some(m.loss_free_pps.unwrap_or(m.delivered_pps));
                Ok(m)
            }
            Scenario::AfXdp => {
                let dut = self.afxdp()?;
                self.udp(dut, flows, w, true)
            }
            Scenario::Nftables => {
                let dut = self.nftables()?;
                self.udp(dut, flows, w, false)
            }
            Scenario::Vipd(mode) => {
                let dut = self.vipd(mode, flows, 0, true)?;
                self.udp(dut, flows, w, true)
            }
            Scenario::VipdWorkers => {
                let dut = self.vipd(Forward::Nat, flows, 0, false)?;
                self.udp(dut, flows, w, true)
            }
            Scenario::NewConns(which) => self.new_connections(which, flows),
            Scenario::FlowScaling => {
                let mut dut = self.vipd(Forward::Nat, flows, 0, true)?;
                let tracked = self.fill_flows(&mut dut, flows)?;
                let mut m = self.udp(dut, flows, w, true)?;
                m.notes.push(format!(
                    "{tracked} flows in vipd's tables when the run began"
                ));
                Ok(m)
            }
            Scenario::SynFlood => self.synflood(flows),
            Scenario::Sync => self.sync(flows, progress),
            Scenario::Failover => failover::run(
                &failover::Settings {
                    vipd: self.vipd_path()?,
                    pps: self.plan.failover_pps,
                    after: self.plan.failover_after,
                    work_dir: self.plan.work_dir.clone(),
                },
                progress,
            ),
        }
    }
}

/// What the sink must see of every frame a scenario's DUT delivers: the
/// rows that translate addresses send to a backend (from the full-NAT
/// address under full NAT); direct routing keeps the VIP and sends to the
/// backend's MAC, the sink's.
fn expectation(s: Scenario, sink_mac: [u8; 6]) -> Expect {
    let (lo, hi) = (backend_ip(0), backend_ip(BACKENDS - 1));
    let to = match s {
        Scenario::Ceiling | Scenario::AfXdp | Scenario::Failover => Expected::Any,
        Scenario::Nftables
        | Scenario::Vipd(Forward::Nat)
        | Scenario::VipdWorkers
        | Scenario::FlowScaling
        | Scenario::SynFlood
        | Scenario::NewConns(_)
        | Scenario::Sync => Expected::ToBackends { lo, hi },
        Scenario::Vipd(Forward::FullNat) => Expected::ToBackendsFrom {
            lo,
            hi,
            from: SNAT_IP,
        },
        Scenario::Vipd(Forward::Dr) => Expected::ToMac {
            vip: VIP,
            mac: sink_mac,
        },
    };
    Expect {
        to,
        kernel: matches!(
            s,
            Scenario::Nftables | Scenario::NewConns(NewConnDut::Nftables)
        ),
    }
}
