//! Flow scaling in pairs on one vipd: what a row's flows cost against a
//! few of the same flows, with the vipd, its table and the moment equal.

use anyhow::Result;

use crate::dut::Dut;
use crate::plan::Frames;
use crate::report::FlowPair;
use crate::run::Bench;

impl Bench<'_> {
    /// `plan.flow_pairs` pairs of full-load runs on `dut`, whose tables
    /// hold `many` flows: its first `few` flows, then all `many`, the order
    /// turned round every other pair so a drift of the host weighs on both.
    pub(crate) fn flow_pairs(
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
