//! vipbench: pktgen-style throughput runs for vipd, side by side with the
//! kernel and the machine's ceiling, in one namespace topology.
//!
//! The generator is the kernel's XDP live-frames test run
//! (BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES) on a program that
//! rewrites each frame's source into one of many flows and sends it with
//! XDP_TX; the sink is an XDP program that counts and drops, sampling
//! one-way latencies from timestamps the generator wrote. See README.md for
//! the pinning.

pub mod bpf;
pub mod cpu;
mod dut;
pub mod failover;
pub mod frame;
mod generator;
mod measure;
pub mod plan;
pub mod rate;
pub mod report;
pub mod run;
mod sync;
pub mod topo;

pub use plan::{Family, Forward, Frames, NewConnDut, Plan, Progress, Scenario};
pub use report::{
    FailoverEvent, Outcome, Report, ReportFiles, Row, SyncCompare, SyncFigures, SyncLag,
};
pub use run::run;
