//! The bench: topology, sink, latency ring and generator thread, and the
//! dispatch of one scenario to its DUT and measurement.

use std::net::Ipv4Addr;

use anyhow::{anyhow, Result};
use aya::maps::{MapData, RingBuf};
use viplab::netns;

use crate::bpf::{Ceiling, Expect, Expect6, Expected, GenConfig, Sink};
use crate::dut::Dut;
use crate::failover;
use crate::frame::{FrameSpec, Proto, Udp6Spec};
use crate::generator::{Frame, GenThread, Traffic};
use crate::plan::{Family, Forward, Frames, NewConnDut, Plan, Scenario};
use crate::report::Measured;
use crate::topo::{
    backend_ip, backend_ip6, Topo, BACKENDS, EST_BASE, FLOW_BASE, FLOW_BASE6, SNAT_IP, VIP, VIP6,
    VIP_PORT,
};

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
    /// `flows` flows of IPv4 `proto` frames of the plan's size, their
    /// sources from `src_base` on.
    pub(crate) fn traffic(&self, proto: Proto, src_base: Ipv4Addr, flows: u32) -> Result<Traffic> {
        self.traffic4(proto, src_base, flows, self.plan.frame_size)
    }

    /// The UDP flows of a throughput row: `flows` flows of `frames` to the
    /// VIP of their family.
    pub(crate) fn udp_traffic(&self, frames: Frames, flows: u32) -> Result<Traffic> {
        match frames.family {
            Family::Ipv4 => self.traffic4(Proto::Udp, FLOW_BASE, flows, frames.size),
            Family::Ipv6 => {
                let template = Udp6Spec {
                    size: frames.size,
                    dst_mac: self.topo.dut_in.mac,
                    src_mac: self.topo.gen.mac,
                    dst_ip: VIP6,
                    dst_port: VIP_PORT,
                }
                .build()?;
                Ok(Traffic {
                    // The IPv4 source base is the IPv6 one's last 32 bits,
                    // which configure6 writes.
                    cfg: self.gen_config(
                        GenConfig::from_template6(&template),
                        Ipv4Addr::UNSPECIFIED,
                        flows,
                    ),
                    frame: Frame::V6 {
                        template,
                        src_base: FLOW_BASE6,
                    },
                })
            }
        }
    }

    fn traffic4(
        &self,
        proto: Proto,
        src_base: Ipv4Addr,
        flows: u32,
        size: usize,
    ) -> Result<Traffic> {
        let t = FrameSpec {
            size,
            proto,
            dst_mac: self.topo.dut_in.mac,
            src_mac: self.topo.gen.mac,
            dst_ip: VIP,
            dst_port: VIP_PORT,
        }
        .build()?;
        Ok(Traffic {
            cfg: self.gen_config(GenConfig::from_template(&t), src_base, flows),
            frame: Frame::V4(t),
        })
    }

    /// `base` (a template's settings) sent between the topology's MACs as
    /// `flows` flows from `src_base` on.
    fn gen_config(&self, base: GenConfig, src_base: Ipv4Addr, flows: u32) -> GenConfig {
        GenConfig {
            dst_mac: self.topo.dut_in.mac,
            src_mac: self.topo.gen.mac,
            src_base,
            flows: flows.max(1),
            ports_per_ip: 50_000,
            port_base: 10_000,
            est_base: EST_BASE,
            ..base
        }
    }

    /// Runs one scenario; `progress` hears about its parts (failover events).
    /// UDP rows send `frames`.
    pub(crate) fn scenario(
        &mut self,
        s: Scenario,
        flows: u32,
        frames: Frames,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Measured> {
        let w = self.plan.warmup;
        self.sink.expect(&expectation(s, self.topo.sink.mac))?;
        self.sink.expect6(&expectation6(s))?;
        match s {
            Scenario::Ceiling => {
                let (dut_in, out) = (self.topo.dut_in.clone(), self.topo.dut_out.ifindex);
                let c = netns::in_ns(self.topo.dut_ns(), move || {
                    Ceiling::attach((dut_in.ifindex, dut_in.name), out)
                })?;
                // Its loss-free rate is what any DUT can be offered here
                // without veth refusing frames: the SYN flood's rate.
                let m = self.udp(Dut::Ceiling { _attached: c }, frames, flows, w, true)?;
                self.ceiling = Some(m.loss_free_pps.unwrap_or(m.delivered_pps));
                Ok(m)
            }
            Scenario::AfXdp => {
                let dut = self.afxdp()?;
                self.udp(dut, frames, flows, w, true)
            }
            Scenario::Nftables => {
                let dut = self.nftables()?;
                self.udp(dut, frames, flows, w, false)
            }
            Scenario::Vipd(mode) => {
                let dut = self.vipd(mode, flows, 0, true)?;
                self.udp(dut, frames, flows, w, true)
            }
            Scenario::NatFamilies => {
                let dut = self.vipd_with(Forward::Nat, frames.family, flows, 0, true, None)?;
                self.udp(dut, frames, flows, w, true)
            }
            Scenario::VipdWorkers => {
                let dut = self.vipd(Forward::Nat, flows, 0, false)?;
                self.udp(dut, frames, flows, w, true)
            }
            Scenario::NewConns(which) => self.new_connections(which, flows),
            Scenario::FlowScaling => self.flow_scaling(flows, frames),
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
        | Scenario::NatFamilies
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

/// What the sink must see of every IPv6 frame: only the IPv6 NAT rows send
/// any, to a backend.
fn expectation6(s: Scenario) -> Expect6 {
    match s {
        Scenario::NatFamilies => Expect6::ToBackends {
            lo: backend_ip6(0),
            hi: backend_ip6(BACKENDS - 1),
        },
        _ => Expect6::Any,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::topo::{mac_string, DUT_IN_IP6, DUT_OUT_IP6, GEN_IP6, SINK_IP6};

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "lab: needs root and network namespaces; scripts/test runs it"
    )]
    fn ipv6_frames_cross_the_topology_and_the_sink_verifies_them() {
        // The ceiling writes no file into the work directory.
        let plan = Plan {
            duration: Duration::from_millis(300),
            warmup: Duration::ZERO,
            search_steps: 1,
            search_probe: Duration::from_millis(200),
            cost_pps: 0,
            latency_pps: 20_000,
            latency_duration: Duration::from_millis(300),
            ..Plan::quick(std::env::temp_dir())
        };
        let mut bench = Bench::up(&plan).expect("bench topology (run the tests as root)");
        // Usable at once: no address of ours waits for duplicate address
        // detection.
        let t = &bench.topo;
        for (ns, dev, ip) in [
            (t.gen_ns(), "gen0", GEN_IP6),
            (t.dut_ns(), "dut0", DUT_IN_IP6),
            (t.dut_ns(), "dut1", DUT_OUT_IP6),
            (t.sink_ns(), "snk0", SINK_IP6),
            (t.sink_ns(), "snk0", backend_ip6(BACKENDS - 1)),
        ] {
            let out = netns::exec_ok(ns, &["ip", "-6", "-o", "addr", "show", "dev", dev]).unwrap();
            let line = out
                .lines()
                .find(|l| l.contains(&format!(" {ip}/64 ")))
                .unwrap_or_else(|| panic!("{ip} not on {dev}: {out}"));
            assert!(!line.contains("tentative"), "{line}");
        }
        let neigh =
            netns::exec_ok(t.dut_ns(), &["ip", "-6", "neigh", "show", "dev", "dut1"]).unwrap();
        let want = format!(
            "{} lladdr {} PERMANENT",
            backend_ip6(0),
            mac_string(&t.sink.mac)
        );
        assert!(neigh.contains(&want), "{neigh}");

        // The ceiling forwards whatever arrives: the generator's IPv6 frames
        // reach the sink unchanged, and every one has a valid checksum.
        for size in [64, 84] {
            let frames = Frames {
                family: Family::Ipv6,
                size,
            };
            let m = bench
                .scenario(Scenario::Ceiling, 100, frames, &mut |_| {})
                .unwrap_or_else(|e| panic!("{size} bytes: {e:#}"));
            assert!(m.delivered > 0, "{size} bytes: nothing verified");
            assert_eq!(m.malformed, 0, "{size} bytes");
            assert_eq!(m.delivered, m.verified.min(m.sent), "{size} bytes");
            assert_eq!(
                m.latency.is_some(),
                size >= 74,
                "{size} bytes: {:?}",
                m.notes
            );
        }
    }
}
