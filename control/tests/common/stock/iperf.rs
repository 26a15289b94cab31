//! iperf3 runs through the lab and their medians.

use std::net::Ipv4Addr;

use serde_json::Value;
use viplab::Lab;

pub const IPERF_PORT: u16 = 5201;
pub const IPERF_SECONDS: u32 = 5;

pub struct Iperf {
    pub bits_per_second: f64,
    pub retransmits: u64,
}

/// An iperf3 run from `role` to `addr`:IPERF_PORT.
pub fn iperf(lab: &Lab, role: &str, addr: Ipv4Addr) -> anyhow::Result<Iperf> {
    let out = lab.exec_ok(
        role,
        &[
            "iperf3",
            "-c",
            &addr.to_string(),
            "-p",
            &IPERF_PORT.to_string(),
            "-t",
            &IPERF_SECONDS.to_string(),
            "-J",
        ],
    )?;
    let v: Value = serde_json::from_str(&out)?;
    let sent = &v["end"]["sum_sent"];
    let (Some(bits_per_second), Some(retransmits)) = (
        v["end"]["sum_received"]["bits_per_second"].as_f64(),
        sent["retransmits"].as_u64(),
    ) else {
        anyhow::bail!("iperf3 report without throughput or retransmits: {out}");
    };
    Ok(Iperf {
        bits_per_second,
        retransmits,
    })
}

/// Several iperf3 runs: their median rate and total retransmits.
pub struct IperfRuns {
    pub rates: Vec<f64>,
    pub median: f64,
    pub retransmits: u64,
}

impl IperfRuns {
    pub fn of(runs: Vec<Iperf>) -> IperfRuns {
        let mut rates: Vec<f64> = runs.iter().map(|r| r.bits_per_second).collect();
        rates.sort_by(f64::total_cmp);
        IperfRuns {
            median: rates[rates.len() / 2],
            retransmits: runs.iter().map(|r| r.retransmits).sum(),
            rates,
        }
    }
}

impl std::fmt::Display for IperfRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rates: Vec<String> = self
            .rates
            .iter()
            .map(|r| format!("{:.2}", r / 1e9))
            .collect();
        write!(
            f,
            "{} Gbit/s (median {:.2}), {} retransmits",
            rates.join("/"),
            self.median / 1e9,
            self.retransmits
        )
    }
}
