//! The flow-scaling rows: vipd filled with a row's flows, measured in
//! pairs against a few of the same flows on the same vipd, then as a row,
//! then the host's cost of one lookup in a table of its size.

use anyhow::Result;

use crate::bpf::table_mib;
use crate::dut::{table_slots, Dut};
use crate::plan::{Forward, Frames};
use crate::rate::ratio;
use crate::report::{FlowPair, Measured};
use crate::run::Bench;

impl Bench<'_> {
    /// One flow-scaling row of `flows` flows.
    pub(crate) fn flow_scaling(&mut self, flows: u32, frames: Frames) -> Result<Measured> {
        let mut dut = self.vipd(Forward::Nat, flows, 0, true)?;
        let tracked = self.fill_flows(&mut dut, flows)?;
        let few = self.plan.flow_points.iter().copied().min().unwrap_or(flows);
        // The pairs add to the row; a failed one must not cost its figures.
        let pairs = if few < flows {
            self.flow_pairs(&mut dut, frames, few, flows)
        } else {
            Ok(Vec::new())
        };
        let mut m = self.udp(dut, frames, flows, self.plan.warmup, true)?;
        m.notes.push(format!(
            "{tracked} flows in vipd's tables after the fill, before the paired runs"
        ));
        match pairs {
            Ok(pairs) => {
                if !pairs.is_empty() {
                    let ratios: Vec<String> = pairs
                        .iter()
                        .map(|p| ratio(p.many, p.few).map_or("-".into(), |r| format!("{r:.2}")))
                        .collect();
                    m.notes.push(format!(
                        "all {flows} flows over its first {few}, delivered at full load back to back on this vipd, per pair: {}",
                        ratios.join(", ")
                    ));
                }
                m.flow_pairs = pairs;
            }
            Err(e) => m.notes.push(format!("paired runs: {e:#}")),
        }
        match self.table_lookup(flows) {
            Ok(d) => {
                m.lookup_ns = Some(d.as_nanos() as f64);
                m.notes.push(format!(
                    "one random access into a flow table of this row's size ({} MiB) among {flows} slots: {} ns of the DUT core (lookup probe)",
                    table_mib(table_slots(flows)),
                    d.as_nanos()
                ));
            }
            Err(e) => m.notes.push(format!("lookup probe: {e:#}")),
        }
        Ok(m)
    }

    /// `plan.flow_pairs` pairs of full-load runs on `dut`, whose tables
    /// hold `many` flows: its first `few` flows, then all `many`, the order
    /// turned round every other pair so a drift of the host weighs on both.
    fn flow_pairs(
        &self,
        dut: &mut Dut,
        frames: Frames,
        few: u32,
        many: u32,
    ) -> Result<Vec<FlowPair>> {
        let (few_t, many_t) = (
            self.udp_traffic(frames, few)?,
            self.udp_traffic(frames, many)?,
        );
        let mut pairs = Vec::new();
        for k in 0..self.plan.flow_pairs {
            let mut run = |t| {
                self.throughput(dut, t, self.plan.warmup, self.plan.rate_pps)
                    .map(|m| m.delivered_pps)
            };
            let pair = if k % 2 == 0 {
                let few = run(&few_t)?;
                FlowPair {
                    few,
                    many: run(&many_t)?,
                }
            } else {
                let many = run(&many_t)?;
                FlowPair {
                    few: run(&few_t)?,
                    many,
                }
            };
            pairs.push(pair);
        }
        Ok(pairs)
    }
}
