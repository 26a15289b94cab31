//! The host's cost of one flow-table lookup at a flow row's size: what the
//! table's size alone costs the XDP program on the DUT core, apart from
//! every other part of a packet's path (the lookup probe, bpf/lookup.c).

use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use crate::bpf::LookupProbe;
use crate::dut::table_slots;
use crate::run::Bench;

/// Runs of the probe per key: a few visits of each, so that a small row's
/// keys are warm as a row's flows are. At a large row's size every access
/// misses, first or not.
const RUNS_PER_KEY: u32 = 4;
/// At least this many runs, so the mean is not one stall of the host.
const MIN_RUNS: u32 = 1 << 21;

impl Bench<'_> {
    /// The mean time of one random access into a table of the size a bench
    /// vipd gets for `flows` flows, among `flows` of its slots, on the DUT
    /// core.
    pub(crate) fn table_lookup(&self, flows: u32) -> Result<Duration> {
        let (slots, core) = (table_slots(flows), self.plan.dut_core);
        let runs = flows.saturating_mul(RUNS_PER_KEY).max(MIN_RUNS);
        std::thread::Builder::new()
            .name("vipbench-lookup".into())
            .spawn(move || {
                if !core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
                    bail!("cannot pin the lookup probe to core {core}");
                }
                LookupProbe::load(slots, flows.max(1))?.run(runs)
            })?
            .join()
            .map_err(|_| anyhow!("the lookup probe's thread panicked"))?
    }
}
