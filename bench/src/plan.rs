//! What a run measures and how: the scenarios, vipd's forwarding modes and
//! the plan of a quick or full run.

use std::path::PathBuf;
use std::time::Duration;

/// vipd's forwarding modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forward {
    Nat,
    FullNat,
    Dr,
}

impl Forward {
    pub fn name(self) -> &'static str {
        match self {
            Forward::Nat => "nat",
            Forward::FullNat => "fullnat",
            Forward::Dr => "dr",
        }
    }
}

/// The address family of a row's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        }
    }
}

/// The frames of a row: their family and Ethernet frame length without
/// FCS, for both families alike (so a 64-byte IPv6 frame carries 2 bytes of
/// UDP payload where a 64-byte IPv4 frame carries 22; on the wire both are
/// the same 64 bytes plus FCS, preamble and gap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frames {
    pub family: Family,
    pub size: usize,
}

/// The scenarios of one run, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// 1: native XDP redirect veth→veth (the machine's ceiling).
    Ceiling,
    /// 2: raw AF_XDP forward, no load-balancing logic.
    AfXdp,
    /// 3: nftables DNAT with conntrack.
    Nftables,
    /// 4: the vipd binary in one forwarding mode (established flows in
    /// the XDP fast path, vipd's default).
    Vipd(Forward),
    /// 4: vipd NAT with `fast_path = false`: every packet through a worker.
    VipdWorkers,
    /// 4: vipd NAT of IPv6 and of IPv4 UDP flows, back to back at each of
    /// the plan's `family_sizes`, each family with its own services.
    NatFamilies,
    /// 5: vipd NAT over the plan's flow counts.
    FlowScaling,
    /// 6: SYN flood at full rate with established flows riding along.
    SynFlood,
    /// 7: failover under load.
    Failover,
    /// 8: every packet opens a connection, in nftables (conntrack) or vipd.
    NewConns(NewConnDut),
    /// 9: connection sync to a backup vipd: lag, and the master's rates
    /// with and without `[sync]`.
    Sync,
}

/// The two DUTs of the new-connection rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewConnDut {
    Nftables,
    Vipd,
}

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 14] = [
        Scenario::Ceiling,
        Scenario::AfXdp,
        Scenario::Nftables,
        Scenario::Vipd(Forward::Nat),
        Scenario::VipdWorkers,
        Scenario::NatFamilies,
        Scenario::Vipd(Forward::FullNat),
        Scenario::Vipd(Forward::Dr),
        Scenario::FlowScaling,
        Scenario::SynFlood,
        Scenario::Failover,
        Scenario::NewConns(NewConnDut::Nftables),
        Scenario::NewConns(NewConnDut::Vipd),
        Scenario::Sync,
    ];

    /// The name `--only` takes.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Ceiling => "ceiling",
            Scenario::AfXdp => "afxdp",
            Scenario::Nftables => "nftables",
            Scenario::Vipd(m) => m.name(),
            Scenario::VipdWorkers => "nat-workers",
            Scenario::NatFamilies => "nat6",
            Scenario::FlowScaling => "flows",
            Scenario::SynFlood => "synflood",
            Scenario::Failover => "failover",
            Scenario::NewConns(NewConnDut::Nftables) => "newconn-nftables",
            Scenario::NewConns(NewConnDut::Vipd) => "newconn-vipd",
            Scenario::Sync => "sync",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// What to run and how long.
#[derive(Clone, Debug)]
pub struct Plan {
    /// "quick" or "full", for the report.
    pub mode: String,
    pub scenarios: Vec<Scenario>,
    /// Measured time of each throughput run.
    pub duration: Duration,
    /// Full-rate time before measuring (fills flow tables).
    pub warmup: Duration,
    /// Offered load and length of the latency phase (0 pps: none).
    pub latency_pps: u64,
    pub latency_duration: Duration,
    /// Load of the core-time phase (0 pps: none): low enough that neither
    /// DUT is overloaded, so each slice is loss-free.
    pub cost_pps: u64,
    /// Rate limit of the throughput runs (None: as fast as the generator goes).
    pub rate_pps: Option<u64>,
    /// Ethernet frame length without FCS of every IPv4 row but the
    /// IPv4/IPv6 pairs.
    pub frame_size: usize,
    /// Frame sizes of the IPv4/IPv6 NAT pairs: 64 bytes, the IPv4 rows'
    /// size and the smallest IPv6 template ([`crate::frame::MIN_FRAME6`]),
    /// and 84, whose IPv6 frames have room for the latency timestamp and
    /// carry as much UDP payload as 64-byte IPv4 frames.
    pub family_sizes: Vec<usize>,
    /// Flows of the throughput scenarios.
    pub flows: u32,
    /// Flow counts of the scaling scenario.
    pub flow_points: Vec<u32>,
    /// Distinct flows of the new-connection rows: more than the packets a
    /// row sends, so every packet opens one.
    pub new_conn_flows: u32,
    /// Established flows and their share (1 in `est_every`) in the SYN flood.
    pub est_flows: u32,
    pub est_every: u32,
    /// vipd's `syn_rate_limit` in the SYN flood (0: off).
    pub syn_rate_limit: u32,
    /// UMEM frames per worker of every AF_XDP DUT (raw forward and vipd);
    /// the rings get a quarter each.
    pub frames_per_worker: u32,
    /// Length and number of the probes of the loss-free rate search.
    pub search_probe: Duration,
    pub search_steps: u32,
    /// Paired runs of raw AF_XDP forward and vipd NAT behind the NAT/raw
    /// figure (its median): one pair is noise on a shared machine.
    pub pairs: u32,
    /// Pairs of full-load runs on each filled flow-scaling vipd, its first
    /// flows of the smallest flow point and all of the row's, behind the
    /// paired 1M / 1k figure (their median).
    pub flow_pairs: u32,
    pub gen_core: usize,
    pub dut_core: usize,
    pub batch: u32,
    /// Sync: offered new TCP connections per second of the lag runs, each
    /// for `duration`.
    pub sync_rates: Vec<u64>,
    /// Failover: rate of the client's UDP stream and how long it runs on
    /// after the new node or site answers, per event.
    pub failover_pps: u64,
    pub failover_after: Duration,
    /// The vipd binary (None: next to this executable).
    pub vipd: Option<PathBuf>,
    /// Where vipd configs and logs go.
    pub work_dir: PathBuf,
}

impl Plan {
    fn base(mode: &str, work_dir: PathBuf) -> Plan {
        Plan {
            mode: mode.into(),
            scenarios: Scenario::ALL.to_vec(),
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            latency_pps: 100_000,
            latency_duration: Duration::from_secs(2),
            cost_pps: 100_000,
            rate_pps: None,
            frame_size: 64,
            family_sizes: vec![64, 84],
            flows: 1000,
            flow_points: vec![1_000, 10_000, 100_000, 1_000_000, 10_000_000],
            new_conn_flows: 8_000_000,
            est_flows: 1000,
            est_every: 20,
            // Below the worker's new-connection rate here (25-50k/s on a
            // core it shares with the receive path): admitted SYNs are the
            // workers' to open, and a worker that saturates its core starves
            // the fast path of the established flows beside it.
            syn_rate_limit: 20_000,
            frames_per_worker: 4096,
            search_probe: Duration::from_secs(1),
            search_steps: 8,
            pairs: 5,
            flow_pairs: 5,
            gen_core: 0,
            dut_core: 1,
            batch: 64,
            sync_rates: vec![10_000, 50_000, 100_000],
            failover_pps: 20_000,
            failover_after: Duration::from_secs(2),
            vipd: None,
            work_dir,
        }
    }

    /// Every scenario, 5 s runs, flows 1k to 10M.
    pub fn full(work_dir: PathBuf) -> Plan {
        Plan::base("full", work_dir)
    }

    /// Every scenario with short runs and two flow points: about 3 minutes.
    pub fn quick(work_dir: PathBuf) -> Plan {
        Plan {
            duration: Duration::from_millis(1500),
            warmup: Duration::from_millis(300),
            latency_duration: Duration::from_millis(500),
            search_probe: Duration::from_millis(400),
            search_steps: 7,
            pairs: 1,
            flow_pairs: 3,
            flow_points: vec![1_000, 1_000_000],
            new_conn_flows: 3_000_000,
            failover_after: Duration::from_millis(500),
            ..Plan::base("quick", work_dir)
        }
    }
}

/// Progress of a run, for a progress line.
pub struct Progress<'a> {
    pub step: usize,
    pub steps: usize,
    pub what: &'a str,
}
