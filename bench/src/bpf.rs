//! The generator, sink, ceiling and lookup-probe XDP programs: loading,
//! attaching, maps, and the test runs (aya's BPF_PROG_TEST_RUN) that drive
//! the generator and time the probe.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use aya::maps::{Array, DevMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{ProgramError, TestRun, TestRunAttrs, TestRunOptions, Xdp, XdpMode};
use aya::{Ebpf, EbpfLoader};

use crate::frame::{Template, Template6};
use crate::rate::next_chunk;

/// Target length of one unpaced test-run call.
const CALL_TIME: Duration = Duration::from_millis(250);

static GEN_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/gen.o"));
static SINK_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sink.o"));
static CEILING_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/ceiling.o"));
static LOOKUP_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lookup.o"));

fn load_xdp<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp> {
    let prog: &mut Xdp = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow!("program {name} missing from its object file"))?
        .try_into()
        .with_context(|| format!("{name} is not an XDP program"))?;
    prog.load()
        .with_context(|| format!("loading XDP program {name} (needs root / CAP_BPF)"))?;
    Ok(prog)
}

/// The loaded XDP program `name` of `ebpf`.
fn loaded_xdp<'a>(ebpf: &'a Ebpf, name: &str) -> Result<&'a Xdp> {
    ebpf.program(name)
        .ok_or_else(|| anyhow!("program {name} missing from its object file"))?
        .try_into()
        .with_context(|| format!("{name} is not an XDP program"))
}

fn attach(ebpf: &mut Ebpf, name: &str, ifindex: u32, ifname: &str) -> Result<()> {
    let prog = load_xdp(ebpf, name)?;
    prog.attach_to_if_index(ifindex, XdpMode::Driver)
        .with_context(|| {
            format!(
                "attaching {name} in native mode to {ifname} (ifindex {ifindex}); \
                 remove any XDP program already there (`ip link set dev {ifname} xdp off`)"
            )
        })?;
    Ok(())
}

fn map(ebpf: &mut Ebpf, name: &str) -> Result<aya::maps::Map> {
    ebpf.take_map(name)
        .ok_or_else(|| anyhow!("map {name} missing from its object file"))
}

fn percpu_sums(map: &PerCpuArray<MapData, u64>, n: u32) -> Result<Vec<u64>> {
    (0..n)
        .map(|i| {
            map.get(&i, 0)
                .map(|v| v.iter().sum())
                .with_context(|| format!("reading counter {i}"))
        })
        .collect()
}

/// What the generator puts into the frames; mirrors `struct gen_cfg` in
/// bpf/gen.c.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// First source address; flow `i` uses address `src_base + i / ports_per_ip`
    /// and port `port_base + i % ports_per_ip`.
    pub src_base: Ipv4Addr,
    pub flows: u32,
    pub ports_per_ip: u32,
    pub port_base: u32,
    /// Sources of the established flows riding along (same layout).
    pub est_base: Ipv4Addr,
    /// 0 for no established mix.
    pub est_flows: u32,
    /// Every `est_every`-th packet is an ACK of an established flow.
    pub est_every: u32,
    /// Write a timestamp into UDP payloads (for the sink's latency samples).
    pub stamp: bool,
    pub tmpl_flags: u16,
    pub tmpl_csum: u16,
    /// Pacing: at most one frame per this many nanoseconds (0: unpaced).
    pub interval_ns: u64,
    /// The template's destination address, port and TTL, written into
    /// every frame again (see gen.c).
    pub dst_ip: Ipv4Addr,
    pub dst_port: u16,
    pub ttl: u8,
}

impl GenConfig {
    /// Frames of template `t`: its flags, checksum, destination and TTL; one
    /// unpaced flow without timestamps or established mix. Callers set the
    /// rest.
    pub fn from_template(t: &Template) -> GenConfig {
        GenConfig::one_flow(t.tcp_flags_word, t.l4_csum, t.dst_ip, t.dst_port, t.ttl)
    }

    /// [`GenConfig::from_template`] for an IPv6 UDP template, whose
    /// addresses go to [`Generator::configure6`].
    pub fn from_template6(t: &Template6) -> GenConfig {
        GenConfig::one_flow(0, t.l4_csum, Ipv4Addr::UNSPECIFIED, t.dst_port, t.hop_limit)
    }

    fn one_flow(
        tmpl_flags: u16,
        tmpl_csum: u16,
        dst_ip: Ipv4Addr,
        dst_port: u16,
        ttl: u8,
    ) -> GenConfig {
        GenConfig {
            dst_mac: [0; 6],
            src_mac: [0; 6],
            src_base: Ipv4Addr::UNSPECIFIED,
            flows: 1,
            ports_per_ip: 1,
            port_base: 0,
            est_base: Ipv4Addr::UNSPECIFIED,
            est_flows: 0,
            est_every: 0,
            stamp: false,
            tmpl_flags,
            tmpl_csum,
            interval_ns: 0,
            dst_ip,
            dst_port,
            ttl,
        }
    }
}

/// Size of `struct gen_cfg`.
const GEN_CFG_LEN: usize = 64;
/// Size of `struct gen6_cfg`: the sources' first 96 bits, the destination.
const GEN6_CFG_LEN: usize = 28;

impl GenConfig {
    fn to_bytes(&self) -> [u8; GEN_CFG_LEN] {
        let mut b = [0u8; GEN_CFG_LEN];
        b[0..6].copy_from_slice(&self.dst_mac);
        b[6..12].copy_from_slice(&self.src_mac);
        let words = [
            self.src_base.to_bits(),
            self.flows,
            self.ports_per_ip,
            self.port_base,
            self.est_base.to_bits(),
            self.est_flows,
            self.est_every,
            u32::from(self.stamp),
        ];
        for (i, w) in words.iter().enumerate() {
            b[12 + 4 * i..16 + 4 * i].copy_from_slice(&w.to_ne_bytes());
        }
        b[44..46].copy_from_slice(&self.tmpl_flags.to_ne_bytes());
        b[46..48].copy_from_slice(&self.tmpl_csum.to_ne_bytes());
        b[48..56].copy_from_slice(&self.interval_ns.to_ne_bytes());
        b[56..60].copy_from_slice(&self.dst_ip.to_bits().to_ne_bytes());
        b[60..62].copy_from_slice(&self.dst_port.to_ne_bytes());
        b[62] = self.ttl;
        b
    }
}

/// Packets the generator has sent (all, and established-mix ACKs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenCounts {
    pub sent: u64,
    pub sent_est: u64,
    pub bad_template: u64,
}

/// The generator program, loaded but not attached: it runs only through
/// BPF_PROG_TEST_RUN.
pub struct Generator {
    ebpf: Ebpf,
    prog: &'static str,
    cfg: Array<MapData, [u8; GEN_CFG_LEN]>,
    cfg6: Array<MapData, [u8; GEN6_CFG_LEN]>,
    stats: PerCpuArray<MapData, u64>,
}

impl Generator {
    /// The IPv4 generator (UDP or TCP templates).
    pub fn load() -> Result<Generator> {
        Generator::open(GEN_PROG)
    }

    /// The IPv6 UDP generator: configured with [`Generator::configure6`],
    /// it sends [`crate::frame::Template6`] frames.
    pub fn load6() -> Result<Generator> {
        Generator::open(GEN6_PROG)
    }

    fn open(prog: &'static str) -> Result<Generator> {
        let mut ebpf = Ebpf::load(GEN_OBJ).context("parsing the generator object")?;
        load_xdp(&mut ebpf, prog)?;
        let cfg = Array::try_from(map(&mut ebpf, "cfg")?).context("generator cfg map")?;
        let cfg6 = Array::try_from(map(&mut ebpf, "cfg6")?).context("generator cfg6 map")?;
        let stats = PerCpuArray::try_from(map(&mut ebpf, "stats")?).context("generator stats")?;
        Ok(Generator {
            ebpf,
            prog,
            cfg,
            cfg6,
            stats,
        })
    }

    /// Configures the IPv6 generator: `c` as for IPv4 except its addresses,
    /// and flow `i` from `src_base` plus `i / ports_per_ip` in the last 32
    /// bits, to `dst` (the template's destination).
    pub fn configure6(&mut self, c: &GenConfig, src_base: Ipv6Addr, dst: Ipv6Addr) -> Result<()> {
        let o = src_base.octets();
        // The source prefix is the same in every frame: its sum joins the
        // template's checksum here once, not in the program per frame.
        let mut sum = u32::from(!c.tmpl_csum);
        for w in o[..12].chunks_exact(2) {
            sum += u32::from(u16::from_ne_bytes([w[0], w[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        self.configure(&GenConfig {
            src_base: Ipv4Addr::new(o[12], o[13], o[14], o[15]),
            tmpl_csum: !(sum as u16),
            ..c.clone()
        })?;
        let mut b = [0u8; GEN6_CFG_LEN];
        b[..12].copy_from_slice(&o[..12]);
        b[12..].copy_from_slice(&dst.octets());
        self.cfg6
            .set(0, b, 0)
            .context("writing the IPv6 generator's addresses")
    }

    pub fn configure(&mut self, c: &GenConfig) -> Result<()> {
        if c.flows == 0 || c.ports_per_ip == 0 {
            bail!("generator: flows and ports per address must be at least 1");
        }
        self.cfg
            .set(0, c.to_bytes(), 0)
            .context("writing the generator config")
    }

    pub fn counts(&self) -> Result<GenCounts> {
        let v = percpu_sums(&self.stats, 3)?;
        Ok(GenCounts {
            sent: v[0],
            sent_est: v[1],
            bad_template: v[2],
        })
    }

    /// Sends `frame` (a template of this generator's family) out of
    /// `ifindex` (in the calling thread's network namespace) until
    /// `duration` has passed; the configured `interval_ns` paces it.
    /// Returns the wall time spent.
    ///
    /// Each test run sets up and tears down its own page pool, which costs
    /// tens of milliseconds on a busy machine, so every call is sized to
    /// about a quarter second at the rate the previous call ran frames.
    pub fn run(
        &self,
        ifindex: u32,
        frame: &[u8],
        batch: u32,
        duration: Duration,
    ) -> Result<Duration> {
        let start = Instant::now();
        let mut chunk: u32 = 65_536;
        loop {
            let left = duration.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Ok(start.elapsed());
            }
            let call = Instant::now();
            self.send(ifindex, frame, chunk, batch)?;
            chunk = next_chunk(chunk, call.elapsed(), left.min(CALL_TIME));
        }
    }

    /// Sends `frames` copies of `data` through the live-frames test run.
    pub fn send(&self, ifindex: u32, data: &[u8], frames: u32, batch: u32) -> Result<()> {
        let ctx = engine::xdp_md(data.len(), ifindex);
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(data);
        opts.ctx_in = Some(&ctx);
        opts.repeat = frames;
        opts.attrs = TestRunAttrs::new().xdp_live_frames(batch.clamp(1, MAX_BATCH));
        match loaded_xdp(&self.ebpf, self.prog)?.test_run(opts) {
            Ok(_) => Ok(()),
            Err(ProgramError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::EINTR) =>
            {
                Ok(())
            }
            Err(e) => Err(e).with_context(|| {
                format!(
                    "BPF_PROG_TEST_RUN with live frames on ifindex {ifindex} failed; it needs \
                     kernel 5.18 or newer, root, and the interface in the generator's namespace"
                )
            }),
        }
    }
}

const GEN_PROG: &str = "vipbench_gen";
const GEN6_PROG: &str = "vipbench_gen6";
/// The kernel's limit on frames per live-frames batch.
pub const MAX_BATCH: u32 = 256;

/// Runs `prog` once on `data` without sending (for tests): returns the frame
/// as the program left it.
#[cfg(test)]
fn test_run_once(ebpf: &Ebpf, prog: &str, data: &[u8]) -> Result<Vec<u8>> {
    let prog = loaded_xdp(ebpf, prog)?;
    let mut out = vec![0u8; data.len() + 256];
    let mut opts = TestRunOptions::new();
    opts.data_in = Some(data);
    opts.data_out = Some(&mut out);
    let r = prog.test_run(opts).context("BPF_PROG_TEST_RUN")?;
    out.truncate(r.data_size_out as usize);
    Ok(out)
}

/// What the sink counted (cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkCounts {
    pub packets: u64,
    pub bytes: u64,
    pub udp: u64,
    pub tcp_syn: u64,
    pub tcp_est: u64,
    pub other: u64,
    pub stamped: u64,
    pub samples_lost: u64,
    /// TCP/UDP frames with valid checksums and the addresses the row's
    /// DUT must deliver (see [`Expect`]).
    pub verified: u64,
    /// TCP/UDP frames that failed that check.
    pub malformed: u64,
}

impl SinkCounts {
    pub fn since(&self, earlier: &SinkCounts) -> SinkCounts {
        SinkCounts {
            packets: self.packets.saturating_sub(earlier.packets),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            udp: self.udp.saturating_sub(earlier.udp),
            tcp_syn: self.tcp_syn.saturating_sub(earlier.tcp_syn),
            tcp_est: self.tcp_est.saturating_sub(earlier.tcp_est),
            other: self.other.saturating_sub(earlier.other),
            stamped: self.stamped.saturating_sub(earlier.stamped),
            samples_lost: self.samples_lost.saturating_sub(earlier.samples_lost),
            verified: self.verified.saturating_sub(earlier.verified),
            malformed: self.malformed.saturating_sub(earlier.malformed),
        }
    }
}

/// What a frame delivered to the sink must look like, besides valid IPv4
/// and TCP/UDP checksums, and whether the DUT is the kernel (whose veth
/// transmits may leave a checksum for the receiver to finish).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    pub to: Expected,
    pub kernel: bool,
}

/// The addresses of [`Expect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Checksums only (the reference rows, which rewrite no address).
    Any,
    /// Addressed to one of the backends `lo..=hi` (NAT, nftables DNAT).
    ToBackends { lo: Ipv4Addr, hi: Ipv4Addr },
    /// The same, from the full-NAT source address `from`.
    ToBackendsFrom {
        lo: Ipv4Addr,
        hi: Ipv4Addr,
        from: Ipv4Addr,
    },
    /// Still addressed to the VIP, in a frame to the backend's MAC (direct
    /// routing).
    ToMac { vip: Ipv4Addr, mac: [u8; 6] },
}

impl Expect {
    /// `struct expect` of sink.c: mode, lo, hi, from (host order), mac, pad.
    fn encode(&self) -> [u8; 24] {
        let (mode, lo, hi, from, mac) = match self.to {
            Expected::Any => (0u32, 0u32, 0u32, 0u32, [0u8; 6]),
            Expected::ToBackends { lo, hi } => (1, lo.to_bits(), hi.to_bits(), 0, [0; 6]),
            Expected::ToBackendsFrom { lo, hi, from } => {
                (2, lo.to_bits(), hi.to_bits(), from.to_bits(), [0; 6])
            }
            Expected::ToMac { vip, mac } => (3, vip.to_bits(), 0, 0, mac),
        };
        let mut b = [0u8; 24];
        for (i, v) in [mode, lo, hi, from].into_iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&v.to_ne_bytes());
        }
        b[16..22].copy_from_slice(&mac);
        b[22] = u8::from(self.kernel);
        b
    }
}

/// What an IPv6 frame delivered to the sink must look like besides a valid
/// UDP checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect6 {
    /// The checksum only.
    Any,
    /// Addressed to one of the backends `lo..=hi`, which differ only in
    /// their last 32 bits.
    ToBackends { lo: Ipv6Addr, hi: Ipv6Addr },
}

impl Expect6 {
    /// `struct expect6` of sink.c: mode, prefix, lo, hi (host order).
    fn encode(&self) -> Result<[u8; 24]> {
        let mut b = [0u8; 24];
        if let Expect6::ToBackends { lo, hi } = *self {
            let (lo, hi) = (lo.octets(), hi.octets());
            if lo[..12] != hi[..12] {
                bail!("sink: IPv6 backends must differ only in their last 32 bits");
            }
            b[0..4].copy_from_slice(&1u32.to_ne_bytes());
            b[4..16].copy_from_slice(&lo[..12]);
            for (at, a) in [(16, lo), (20, hi)] {
                let last = u32::from_be_bytes([a[12], a[13], a[14], a[15]]);
                b[at..at + 4].copy_from_slice(&last.to_ne_bytes());
            }
        }
        Ok(b)
    }
}

/// `struct expect` as bytes.
#[derive(Clone, Copy)]
#[repr(transparent)]
struct ExpectPod([u8; 24]);

// SAFETY: a plain byte array: any bit pattern is valid, no padding.
unsafe impl aya::Pod for ExpectPod {}

const SINK_PROG: &str = "vipbench_sink";

/// The sink program attached to the sink's interface.
pub struct Sink {
    _ebpf: Ebpf,
    stats: PerCpuArray<MapData, u64>,
    expect: Array<MapData, ExpectPod>,
    expect6: Array<MapData, ExpectPod>,
    sample_every: Array<MapData, u32>,
    latency: Option<RingBuf<MapData>>,
}

impl Sink {
    /// Attaches in the calling thread's namespace.
    pub fn attach(ifindex: u32, ifname: &str) -> Result<Sink> {
        let mut ebpf = Ebpf::load(SINK_OBJ).context("parsing the sink object")?;
        attach(&mut ebpf, SINK_PROG, ifindex, ifname)?;
        Sink::open(ebpf)
    }

    /// Loaded but not attached: frames reach it only through test runs.
    #[cfg(test)]
    fn detached() -> Result<Sink> {
        let mut ebpf = Ebpf::load(SINK_OBJ).context("parsing the sink object")?;
        load_xdp(&mut ebpf, SINK_PROG)?;
        Sink::open(ebpf)
    }

    fn open(mut ebpf: Ebpf) -> Result<Sink> {
        let stats = PerCpuArray::try_from(map(&mut ebpf, "stats")?).context("sink stats")?;
        let expect = Array::try_from(map(&mut ebpf, "expect")?).context("sink expectation")?;
        let expect6 =
            Array::try_from(map(&mut ebpf, "expect6")?).context("sink IPv6 expectation")?;
        let sample_every =
            Array::try_from(map(&mut ebpf, "sample_every")?).context("sink sample map")?;
        let latency = RingBuf::try_from(map(&mut ebpf, "latency")?).context("sink ring buffer")?;
        Ok(Sink {
            _ebpf: ebpf,
            stats,
            expect,
            expect6,
            sample_every,
            latency: Some(latency),
        })
    }

    pub fn counts(&self) -> Result<SinkCounts> {
        let v = percpu_sums(&self.stats, 10)?;
        Ok(SinkCounts {
            packets: v[0],
            bytes: v[1],
            udp: v[2],
            tcp_syn: v[3],
            tcp_est: v[4],
            other: v[5],
            stamped: v[6],
            samples_lost: v[7],
            verified: v[8],
            malformed: v[9],
        })
    }

    /// What every delivered frame must look like from now on.
    pub fn expect(&mut self, e: &Expect) -> Result<()> {
        self.expect
            .set(0, ExpectPod(e.encode()), 0)
            .context("setting the sink's expectation")
    }

    /// What every delivered IPv6 frame must look like from now on.
    pub fn expect6(&mut self, e: &Expect6) -> Result<()> {
        self.expect6
            .set(0, ExpectPod(e.encode()?), 0)
            .context("setting the sink's IPv6 expectation")
    }

    /// Samples every `n`-th timestamped packet per CPU (0: none).
    pub fn set_sampling(&mut self, n: u32) -> Result<()> {
        self.sample_every
            .set(0, n, 0)
            .context("setting the sink's sampling")
    }

    /// The latency ring buffer, for a sampler thread (once).
    pub fn take_latency(&mut self) -> Option<RingBuf<MapData>> {
        self.latency.take()
    }
}

/// The ceiling program attached to the DUT's ingress interface, redirecting
/// to its egress through a devmap.
pub struct Ceiling {
    _ebpf: Ebpf,
}

impl Ceiling {
    /// Attaches in the calling thread's namespace.
    pub fn attach(ingress: (u32, &str), egress: u32) -> Result<Ceiling> {
        let mut ebpf = Ebpf::load(CEILING_OBJ).context("parsing the ceiling object")?;
        attach(&mut ebpf, "vipbench_ceiling", ingress.0, ingress.1)?;
        let mut devmap = DevMap::try_from(map(&mut ebpf, "egress")?).context("ceiling devmap")?;
        devmap
            .set(0, egress, None, 0)
            .context("pointing the ceiling devmap at the egress interface")?;
        Ok(Ceiling { _ebpf: ebpf })
    }
}

/// The lookup probe (bpf/lookup.c): a table of 64-byte slots allocated as
/// vipd's IPv4 flow table is, of which each run reads and stamps one of
/// `keys` slots spread over it.
pub struct LookupProbe {
    ebpf: Ebpf,
}

impl LookupProbe {
    pub fn load(slots: u32, keys: u32) -> Result<LookupProbe> {
        if !slots.is_power_of_two() || slots < 8 {
            bail!("lookup probe: {slots} slots is not a power of two of at least 8");
        }
        if keys == 0 {
            bail!("lookup probe: keys must be at least 1");
        }
        let mask = slots - 1;
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("table", slots)
            .override_global("mask", &mask, true)
            .override_global("keys", &keys, true)
            .load(LOOKUP_OBJ)
            .with_context(|| {
                format!(
                    "loading the lookup probe with a table of {} MiB",
                    table_mib(slots)
                )
            })?;
        load_xdp(&mut ebpf, LOOKUP_PROG)?;
        Ok(LookupProbe { ebpf })
    }

    /// The kernel's mean time of one of `runs` runs, on the calling
    /// thread's CPU.
    pub fn run(&self, runs: u32) -> Result<Duration> {
        let frame = [0u8; 64];
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(&frame);
        opts.repeat = runs.max(1);
        let r = loaded_xdp(&self.ebpf, LOOKUP_PROG)?
            .test_run(opts)
            .context("BPF_PROG_TEST_RUN of the lookup probe")?;
        if r.return_value != engine::XDP_DROP {
            bail!(
                "the lookup probe returned {} (not XDP_DROP): one of its map lookups failed, \
                 its `mask` beyond its table or its `chain` entry missing",
                r.return_value
            );
        }
        Ok(r.duration)
    }

    /// Slots the runs have stamped so far.
    #[cfg(test)]
    fn visited(&self) -> Result<u32> {
        let table: Array<&MapData, [u8; 64]> = Array::try_from(
            self.ebpf
                .map("table")
                .ok_or_else(|| anyhow!("map table missing from the probe"))?,
        )?;
        let mut n = 0;
        for slot in table.iter() {
            n += u32::from(slot?[56..].iter().any(|&b| b != 0));
        }
        Ok(n)
    }
}

const LOOKUP_PROG: &str = "vipbench_lookup";

/// MiB of a table of `slots` of vipd's IPv4 slots, the probe's size.
pub fn table_mib(slots: u32) -> u64 {
    (u64::from(slots) * engine::FLOW_SLOT_BYTES as u64) >> 20
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameSpec, Proto, Udp6Spec};
    use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};

    const SINK_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x5];

    /// A frame as a DUT would deliver it to the sink; `payload` of odd
    /// length exercises the checksum's padded last word.
    fn delivered(src: [u8; 4], dst: [u8; 4], mac: [u8; 6], udp: bool, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], mac).ipv4(src, dst, 63);
        let mut out = Vec::new();
        if udp {
            b.udp(10_000, 80).write(&mut out, payload).unwrap();
        } else {
            b.tcp(10_000, 80, 7, 1000)
                .ack(1)
                .write(&mut out, payload)
                .unwrap();
        }
        out
    }

    /// (verified, malformed) the sink counts for `frames` sent to `to` by a
    /// DUT that is the kernel or not.
    fn judge(to: Expected, kernel: bool, frames: &[Vec<u8>]) -> (u64, u64) {
        let mut sink = Sink::detached().expect("loading the sink (run the tests as root)");
        sink.expect(&Expect { to, kernel }).unwrap();
        for f in frames {
            test_run_once(&sink._ebpf, SINK_PROG, f).unwrap();
        }
        let c = sink.counts().unwrap();
        (c.verified, c.malformed)
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "lab: needs root and network namespaces; scripts/test runs it"
    )]
    fn the_sink_counts_only_right_frames_as_verified() {
        let (client, snat) = ([10, 90, 0, 1], [10, 88, 1, 100]);
        let (b0, b3, vip) = ([10, 88, 1, 11], [10, 88, 1, 14], [10, 88, 0, 100]);
        let good = delivered(client, b0, SINK_MAC, true, b"odd-sized payload");
        let mut bad_l4 = good.clone();
        *bad_l4.last_mut().unwrap() ^= 0x40;
        let mut no_csum = good.clone();
        no_csum[40..42].copy_from_slice(&[0, 0]);
        let mut bad_ip = good.clone();
        bad_ip[22] ^= 1; // TTL, without fixing the header checksum
        let outside = delivered(client, [10, 88, 1, 15], SINK_MAC, true, b"x");
        let tcp = delivered(client, b3, SINK_MAC, false, b"payload");
        let backends = Expected::ToBackends {
            lo: b0.into(),
            hi: b3.into(),
        };
        let frames = [good.clone(), bad_l4, no_csum, bad_ip.clone(), outside, tcp];
        assert_eq!(judge(backends, false, &frames), (2, 4));

        let from_snat = delivered(snat, b0, SINK_MAC, true, b"x");
        let full_nat = Expected::ToBackendsFrom {
            lo: b0.into(),
            hi: b3.into(),
            from: snat.into(),
        };
        assert_eq!(judge(full_nat, false, &[from_snat, good.clone()]), (1, 1));

        let to_vip = delivered(client, vip, SINK_MAC, true, b"x");
        let elsewhere = delivered(client, vip, [2, 0, 0, 0, 0, 6], true, b"x");
        let dr = Expected::ToMac {
            vip: vip.into(),
            mac: SINK_MAC,
        };
        assert_eq!(judge(dr, false, &[to_vip, elsewhere, good.clone()]), (1, 2));

        assert_eq!(judge(Expected::Any, false, &[good.clone(), bad_ip]), (1, 1));

        // A checksum left for the receiver to finish is right only from
        // the kernel.
        let mut partial = good;
        let pseudo = [
            10u16 << 8 | 90,
            1,
            10 << 8 | 88,
            1 << 8 | 11,
            17,
            partial.len() as u16 - 34,
        ]
        .iter()
        .map(|&w| u32::from(w))
        .sum::<u32>();
        let folded = ((pseudo & 0xffff) + (pseudo >> 16)) as u16;
        partial[40..42].copy_from_slice(&folded.to_be_bytes());
        assert_eq!(judge(Expected::Any, true, &[partial.clone()]), (1, 0));
        assert_eq!(judge(Expected::Any, false, &[partial]), (0, 1));
    }

    /// An IPv6 UDP frame as a DUT would deliver it to the sink.
    fn delivered6(src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], SINK_MAC)
            .ipv6(src.octets(), dst.octets(), 63)
            .udp(10_000, 8080)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "lab: needs root and network namespaces; scripts/test runs it"
    )]
    fn the_sink_verifies_ipv6_frames() {
        let ip = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let (client, b0, b3) = (
            ip("2001:db8:2::1"),
            ip("2001:db8:1::11"),
            ip("2001:db8:1::14"),
        );
        let good = delivered6(client, b0, b"odd-sized payload");
        let mut bad_l4 = good.clone();
        *bad_l4.last_mut().unwrap() ^= 0x40;
        let mut no_csum = good.clone();
        no_csum[60..62].copy_from_slice(&[0, 0]);
        let mut bad_src = good.clone();
        bad_src[22] ^= 1; // the source address is in the pseudo-header
        let outside = delivered6(client, ip("2001:db8:1::15"), b"x");
        let other_net = delivered6(client, ip("2001:db8:9::11"), b"x");
        let last = delivered6(client, b3, b"");
        let backends = Expect6::ToBackends { lo: b0, hi: b3 };
        let judge6 = |e: Expect6, frames: &[Vec<u8>]| {
            let mut sink = Sink::detached().expect("loading the sink (run the tests as root)");
            sink.expect6(&e).unwrap();
            for f in frames {
                test_run_once(&sink._ebpf, SINK_PROG, f).unwrap();
            }
            let c = sink.counts().unwrap();
            (c.verified, c.malformed, c.udp)
        };
        let frames = [
            good.clone(),
            bad_l4,
            no_csum,
            bad_src.clone(),
            outside,
            other_net,
            last,
        ];
        assert_eq!(judge6(backends, &frames), (2, 5, 7));
        assert_eq!(judge6(Expect6::Any, &[good, bad_src]), (1, 1, 2));
        let far = Expect6::ToBackends {
            lo: b0,
            hi: ip("2001:db8:2::14"),
        };
        assert!(Sink::detached().unwrap().expect6(&far).is_err());
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "lab: needs root and network namespaces; scripts/test runs it"
    )]
    fn the_ipv6_generator_cycles_flows_with_valid_checksums() {
        let dst: Ipv6Addr = "2001:db8::50".parse().unwrap();
        let src: Ipv6Addr = "2001:db8:2::a00".parse().unwrap();
        for (size, stamps) in [(64, false), (84, true)] {
            let t = Udp6Spec {
                size,
                dst_mac: [2, 0, 0, 0, 0, 1],
                src_mac: [2, 0, 0, 0, 0, 2],
                dst_ip: dst,
                dst_port: 80,
            }
            .build()
            .unwrap();
            let cfg = GenConfig {
                dst_mac: [2, 0, 0, 0, 0, 0xd],
                src_mac: [2, 0, 0, 0, 0, 0xe],
                flows: 5,
                ports_per_ip: 2,
                port_base: 1000,
                stamp: true,
                ..GenConfig::from_template6(&t)
            };
            let mut g = Generator::load6().expect("loading the generator (run the tests as root)");
            g.configure6(&cfg, src, dst).unwrap();
            // A page that comes back rewritten by a DUT (destination, hop
            // limit) is the template's again.
            let mut used = t.bytes.clone();
            used[21] = 3;
            used[38..54].copy_from_slice(&"2001:db8:1::11".parse::<Ipv6Addr>().unwrap().octets());
            let mut got = Vec::new();
            for i in 0..6 {
                let input = if i == 0 { &used } else { &t.bytes };
                let out = test_run_once(&g.ebpf, GEN6_PROG, input).unwrap();
                assert_eq!(
                    (&out[0..6], &out[6..12]),
                    (&cfg.dst_mac[..], &cfg.src_mac[..])
                );
                let p = SlicedPacket::from_ethernet(&out).unwrap();
                let Some(NetSlice::Ipv6(ip)) = p.net else {
                    panic!("not IPv6")
                };
                let h = ip.header().to_header();
                assert_eq!((h.destination, h.hop_limit), (dst.octets(), 64));
                let Some(TransportSlice::Udp(udp)) = p.transport else {
                    panic!("not UDP")
                };
                let want = udp
                    .to_header()
                    .calc_checksum_ipv6(&h, udp.payload())
                    .unwrap();
                assert_eq!(udp.checksum(), want, "UDP checksum, {size} bytes");
                assert_eq!(
                    out.get(62..66) == Some(b"VBTS"),
                    stamps,
                    "timestamp, {size} bytes"
                );
                got.push((h.source[15], udp.source_port()));
            }
            let want = [
                (0, 1000),
                (0, 1001),
                (1, 1000),
                (1, 1001),
                (2, 1000),
                (0, 1000),
            ];
            assert_eq!(got, want);
            assert_eq!(g.counts().unwrap().sent, 6);
        }
    }

    fn template(proto: Proto) -> Template {
        FrameSpec {
            size: 64,
            proto,
            dst_mac: [2, 0, 0, 0, 0, 1],
            src_mac: [2, 0, 0, 0, 0, 2],
            dst_ip: Ipv4Addr::new(10, 88, 0, 100),
            dst_port: 80,
        }
        .build()
        .unwrap()
    }

    fn config(t: &Template) -> GenConfig {
        GenConfig {
            dst_mac: [2, 0, 0, 0, 0, 0xd],
            src_mac: [2, 0, 0, 0, 0, 0xe],
            src_base: Ipv4Addr::new(10, 90, 0, 0),
            flows: 5,
            ports_per_ip: 2,
            port_base: 1000,
            est_base: Ipv4Addr::new(10, 91, 0, 0),
            stamp: true,
            ..GenConfig::from_template(t)
        }
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "lab: needs root and network namespaces; scripts/test runs it"
    )]
    fn a_page_that_comes_back_modified_is_restored() {
        // A forwarding DUT rewrote the destination, port and TTL in place
        // (the kernel's NAT on the frame's own page): the next frame from
        // that page is the template's again, with valid checksums.
        let t = template(Proto::Udp);
        let mut used = t.bytes.clone();
        used[22] = 3; // TTL
        used[30..34].copy_from_slice(&[10, 88, 1, 11]);
        used[36..38].copy_from_slice(&8080u16.to_be_bytes());
        let mut g = Generator::load().expect("loading the generator (run the tests as root)");
        g.configure(&config(&t)).unwrap();
        let out = test_run_once(&g.ebpf, GEN_PROG, &used).unwrap();
        let p = SlicedPacket::from_ethernet(&out).unwrap();
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!("not IPv4")
        };
        let h = ip.header().to_header();
        assert_eq!((h.time_to_live, h.destination), (64, [10, 88, 0, 100]));
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let Some(TransportSlice::Udp(udp)) = p.transport else {
            panic!("not UDP")
        };
        assert_eq!(udp.destination_port(), 80);
        let want = udp
            .to_header()
            .calc_checksum_ipv4(&h, udp.payload())
            .unwrap();
        assert_eq!(udp.checksum(), want);
    }

    /// (source address, source port, SYN, ACK) of `n` generated frames, each
    /// checked for valid IP and TCP checksums.
    fn generate(cfg: &GenConfig, t: &Template, n: usize) -> Vec<([u8; 4], u16, bool, bool)> {
        let mut g = Generator::load().expect("loading the generator (run the tests as root)");
        g.configure(cfg).unwrap();
        (0..n)
            .map(|_| {
                let out = test_run_once(&g.ebpf, GEN_PROG, &t.bytes).unwrap();
                assert_eq!(out.len(), t.bytes.len());
                assert_eq!(&out[0..6], &cfg.dst_mac);
                assert_eq!(&out[6..12], &cfg.src_mac);
                let p = SlicedPacket::from_ethernet(&out).unwrap();
                let Some(NetSlice::Ipv4(ip)) = p.net else {
                    panic!("not IPv4")
                };
                let h = ip.header().to_header();
                assert_eq!(h.header_checksum, h.calc_header_checksum());
                match p.transport {
                    Some(TransportSlice::Tcp(tcp)) => {
                        let want = tcp
                            .to_header()
                            .calc_checksum_ipv4(&h, tcp.payload())
                            .unwrap();
                        assert_eq!(tcp.checksum(), want, "TCP checksum");
                        (h.source, tcp.source_port(), tcp.syn(), tcp.ack())
                    }
                    Some(TransportSlice::Udp(udp)) => {
                        assert_eq!(&out[42..46], b"VBTS", "timestamp magic");
                        let want = udp
                            .to_header()
                            .calc_checksum_ipv4(&h, udp.payload())
                            .unwrap();
                        assert_eq!(udp.checksum(), want, "UDP checksum");
                        (h.source, udp.source_port(), false, false)
                    }
                    _ => panic!("unexpected transport"),
                }
            })
            .collect()
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "lab: needs root and network namespaces; scripts/test runs it"
    )]
    fn generator_cycles_flows_with_valid_checksums() {
        let t = template(Proto::Udp);
        let got = generate(&config(&t), &t, 6);
        let want: Vec<([u8; 4], u16)> = vec![
            ([10, 90, 0, 0], 1000),
            ([10, 90, 0, 0], 1001),
            ([10, 90, 0, 1], 1000),
            ([10, 90, 0, 1], 1001),
            ([10, 90, 0, 2], 1000),
            ([10, 90, 0, 0], 1000),
        ];
        assert_eq!(got.iter().map(|g| (g.0, g.1)).collect::<Vec<_>>(), want);
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "lab: needs root and network namespaces; scripts/test runs it"
    )]
    fn syn_flood_mix_turns_every_nth_into_an_established_ack() {
        let t = template(Proto::TcpSyn);
        let cfg = GenConfig {
            est_flows: 2,
            est_every: 3,
            ..config(&t)
        };
        let got = generate(&cfg, &t, 7);
        for (i, (src, port, syn, ack)) in got.iter().enumerate() {
            if i % 3 == 0 {
                assert_eq!(src[..2], [10, 91], "packet {i} from an established source");
                assert!(*ack && !*syn, "packet {i} is an ACK");
                assert_eq!(*port, 1000 + ((i / 3) % 2) as u16);
            } else {
                assert_eq!(src[..2], [10, 90], "packet {i} from a flood source");
                assert!(*syn && !*ack, "packet {i} is a SYN");
            }
        }
        let counts = {
            let mut g = Generator::load().unwrap();
            g.configure(&cfg).unwrap();
            for _ in 0..6 {
                test_run_once(&g.ebpf, GEN_PROG, &t.bytes).unwrap();
            }
            g.counts().unwrap()
        };
        assert_eq!(
            counts,
            GenCounts {
                sent: 6,
                sent_est: 2,
                bad_template: 0
            }
        );
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "lab: needs root and network namespaces; scripts/test runs it"
    )]
    fn pacing_drops_frames_that_are_not_due() {
        let t = template(Proto::Udp);
        let mut g = Generator::load().unwrap();
        g.configure(&GenConfig {
            interval_ns: 60_000_000_000,
            ..config(&t)
        })
        .unwrap();
        for _ in 0..3 {
            test_run_once(&g.ebpf, GEN_PROG, &t.bytes).unwrap();
        }
        assert_eq!(g.counts().unwrap().sent, 1, "one frame per minute");
        g.configure(&config(&t)).unwrap();
        for _ in 0..3 {
            test_run_once(&g.ebpf, GEN_PROG, &t.bytes).unwrap();
        }
        assert_eq!(g.counts().unwrap().sent, 4, "unpaced again");
    }

    #[test]
    #[cfg_attr(
        not(feature = "lab"),
        ignore = "lab: needs root and network namespaces; scripts/test runs it"
    )]
    fn the_lookup_probe_visits_its_keys_slots_and_times_a_run() {
        let probe = LookupProbe::load(1 << 16, 100).unwrap();
        assert_eq!(probe.visited().unwrap(), 0, "a fresh table is unstamped");
        let mean = probe.run(100_000).unwrap();
        assert!(
            mean > Duration::ZERO && mean < Duration::from_millis(1),
            "the mean of one run, not of the call: {mean:?}"
        );
        // 100,000 runs draw every one of the 100 keys; the slots they
        // stamp are those bpf/lookup.c's hash gives them.
        let mask = (1u32 << 16) - 1;
        let slots: std::collections::HashSet<u32> = (0..100u32)
            .map(|k| {
                let h = k.wrapping_mul(0x9e37_79b1);
                (h ^ (h >> 15)) & mask
            })
            .collect();
        assert_eq!(probe.visited().unwrap(), slots.len() as u32);
        assert_eq!(
            engine::FLOW_SLOT_BYTES,
            64,
            "bpf/lookup.c's slot is vipd's IPv4 slot"
        );

        let e = LookupProbe::load(1000, 10).err().unwrap();
        assert!(
            format!("{e:#}").contains("1000 slots is not a power of two"),
            "{e:#}"
        );
        assert!(LookupProbe::load(1 << 10, 0).is_err());
    }

    #[test]
    fn config_layout_matches_the_program() {
        let t = template(Proto::TcpSyn);
        let b = config(&t).to_bytes();
        assert_eq!(&b[0..6], &[2, 0, 0, 0, 0, 0xd]);
        assert_eq!(
            u32::from_ne_bytes(b[12..16].try_into().unwrap()),
            0x0a5a_0000
        );
        assert_eq!(u32::from_ne_bytes(b[40..44].try_into().unwrap()), 1);
        assert_eq!(&b[44..46], &[0x50, 0x02]);
        let paced = GenConfig {
            interval_ns: 7,
            ..config(&t)
        };
        assert_eq!(
            u64::from_ne_bytes(paced.to_bytes()[48..56].try_into().unwrap()),
            7
        );
        assert_eq!(
            u32::from_ne_bytes(b[56..60].try_into().unwrap()),
            0x0a58_0064
        );
        assert_eq!(u16::from_ne_bytes(b[60..62].try_into().unwrap()), 80);
        assert_eq!(b[62], 64);
    }
}
