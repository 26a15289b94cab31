//! The XDP steering program: loading, attaching (through a bpf_link, so a
//! crashed process leaves nothing behind) and its maps.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, RawFd};
use std::sync::{Arc, Mutex};

use aya::maps::{Array, DevMap, HashMap as BpfHashMap, Map, MapData, PerCpuArray, XskMap};
use aya::programs::{ProgramError, TestRun, TestRunAttrs, TestRunOptions, Xdp};
use aya::{Ebpf, EbpfLoader};

use super::flow_table::{
    self, SharedSlots, Slot4, Slot6, KEY_WORDS, KEY_WORDS6, VALUE_WORDS, VALUE_WORDS6,
};
use super::{EngineError, PortInfo, XdpMode};
use dataplane::flow::{Addr, FastSeen, FlowKey, Ip6, Rewrite, SteerAction, SteerChange};
use wire::{checksum, write_ethernet_header, EthernetHeader, MacAddr};

/// Size of the `xsks` map: the highest queue count the program serves.
pub(super) const MAX_QUEUES: u32 = 64;

static STEER_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/steer.o"));

const PROGRAM: &str = "vipd_steer";
const PROBE: &str = "vipd_probe";
/// IEEE 802 local experimental EtherType 1.
const LOCAL_EXPERIMENTAL_ETHERTYPE: u16 = 0x88b5;

/// The program and socket map of one interface. Dropping it detaches the
/// program.
pub(super) struct Attached {
    interface: String,
    mode: XdpMode,
    xsks: XskMap<MapData>,
    maps: Option<IfaceMaps>,
    flows: Arc<Slots4>,
    flows6: Arc<Slots6>,
    probe_port: Array<MapData, u32>,
    // Holds the programs and the link; the link detaches on drop.
    ebpf: Ebpf,
}

/// The shared mappings of the IPv4 and IPv6 flow tables.
type Slots4 = SharedSlots<KEY_WORDS, VALUE_WORDS>;
type Slots6 = SharedSlots<KEY_WORDS6, VALUE_WORDS6>;

struct IfaceMaps {
    interface: String,
    vips: BpfHashMap<MapData, u32, u8>,
    vips6: BpfHashMap<MapData, Ip6, u8>,
    syn_limit: Array<MapData, u64>,
    stats: PerCpuArray<MapData, u64>,
    ports: Array<MapData, PortEntry>,
    tx_ports: DevMap<MapData>,
    backend_traffic: PerCpuArray<MapData, Traffic>,
}

/// `struct traffic` in steer.c.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Traffic {
    packets: u64,
    bytes: u64,
}

// SAFETY: two u64 fields, no padding, every bit pattern valid; it matches
// `struct traffic` in steer.c.
unsafe impl aya::Pod for Traffic {}

/// `struct port_info` in steer.c.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PortEntry {
    ifindex: u32,
    mtu: u32,
    xmit: u32,
}

// SAFETY: three u32 fields, no padding, every bit pattern valid; it matches
// `struct port_info` in steer.c.
unsafe impl aya::Pod for PortEntry {}

fn load_err(interface: &str, error: impl std::fmt::Display) -> EngineError {
    EngineError::BpfLoad {
        interface: interface.to_string(),
        error: error.to_string(),
    }
}

fn take_map(ebpf: &mut Ebpf, interface: &str, name: &'static str) -> Result<Map, EngineError> {
    ebpf.take_map(name)
        .ok_or_else(|| load_err(interface, format!("map `{name}` missing from the program")))
}

fn errno(e: &ProgramError) -> Option<i32> {
    match e {
        ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
        _ => None,
    }
}

/// Causes of a failed native attach that generic XDP would meet too.
const NO_FALLBACK: [i32; 4] = [libc::EBUSY, libc::EEXIST, libc::EPERM, libc::EACCES];

fn attach_reason(e: &ProgramError, port: &PortInfo, mode: XdpMode) -> String {
    let name = &port.name;
    match errno(e) {
        Some(libc::ERANGE) => format!(
            "the MTU of {name} (or of its veth peer) is too large for native XDP: \
             lower the MTU or set xdp_mode = \"skb\""
        ),
        Some(libc::EOPNOTSUPP) if mode != XdpMode::Skb => format!(
            "the driver of {name} does not support native XDP: set xdp_mode = \"skb\""
        ),
        Some(libc::EBUSY) | Some(libc::EEXIST) => format!(
            "another XDP program is attached to {name}: remove it (`ip link set dev {name} xdp off`) \
             or stop the process that owns it"
        ),
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "permission denied: run as root or grant CAP_NET_ADMIN and CAP_BPF".to_string()
        }
        _ => e.to_string(),
    }
}

impl Attached {
    /// Loads the programs with room for `keys` IPv4 and `keys6` IPv6
    /// connection keys and attaches the steering program to `port`.
    pub(super) fn attach(
        port: &PortInfo,
        mode: XdpMode,
        keys: u32,
        keys6: u32,
    ) -> Result<Attached, EngineError> {
        let name = port.name.as_str();
        let (mut ebpf, table) = load(name, keys, keys6)?;
        let prog = xdp_program(&mut ebpf, name, PROGRAM)?;
        let attach = |prog: &mut Xdp, mode: XdpMode| {
            let aya_mode = match mode {
                XdpMode::Skb => aya::programs::XdpMode::Skb,
                XdpMode::Native | XdpMode::Auto => aya::programs::XdpMode::Driver,
            };
            prog.attach_to_if_index(port.ifindex, aya_mode)
                .map(|_| ())
                .map_err(|e| {
                    let error = EngineError::XdpAttach {
                        interface: name.to_string(),
                        mode: mode.as_str(),
                        reason: attach_reason(&e, port, mode),
                    };
                    (errno(&e), error)
                })
        };
        let mode = match mode {
            XdpMode::Auto => match attach(prog, XdpMode::Native) {
                Ok(()) => XdpMode::Native,
                Err((errno, e)) if !errno.is_some_and(|n| NO_FALLBACK.contains(&n)) => {
                    log::warn!(
                        "interface {name}: native XDP is not available ({e}); using generic \
                         (skb) XDP, which is slower: set xdp_mode = \"skb\" to silence this"
                    );
                    attach(prog, XdpMode::Skb).map_err(|(_, e)| e)?;
                    XdpMode::Skb
                }
                Err((_, e)) => return Err(e),
            },
            fixed => {
                attach(prog, fixed).map_err(|(_, e)| e)?;
                fixed
            }
        };
        Attached::with_maps(ebpf, table, name, mode)
    }

    /// Loads the programs without attaching them, for running frames
    /// through them with BPF_PROG_TEST_RUN; room for `flow_keys` keys of
    /// each family.
    pub(super) fn detached(name: &str, flow_keys: u32) -> Result<Attached, EngineError> {
        let (mut ebpf, table) = load(name, flow_keys, flow_keys)?;
        xdp_program(&mut ebpf, name, PROGRAM)?;
        Attached::with_maps(ebpf, table, name, XdpMode::Native)
    }

    fn with_maps(
        mut ebpf: Ebpf,
        table: TableShape,
        name: &str,
        mode: XdpMode,
    ) -> Result<Attached, EngineError> {
        xdp_program(&mut ebpf, name, PROBE)?;
        let map_err = |map: &'static str, e: aya::maps::MapError| EngineError::Map {
            interface: name.to_string(),
            map,
            error: e.to_string(),
        };
        let xsks =
            XskMap::try_from(take_map(&mut ebpf, name, "xsks")?).map_err(|e| map_err("xsks", e))?;
        let maps = IfaceMaps {
            interface: name.to_string(),
            vips: BpfHashMap::try_from(take_map(&mut ebpf, name, "vips")?)
                .map_err(|e| map_err("vips", e))?,
            vips6: BpfHashMap::try_from(take_map(&mut ebpf, name, "vips6")?)
                .map_err(|e| map_err("vips6", e))?,
            syn_limit: Array::try_from(take_map(&mut ebpf, name, "syn_limit")?)
                .map_err(|e| map_err("syn_limit", e))?,
            stats: PerCpuArray::try_from(take_map(&mut ebpf, name, "stats")?)
                .map_err(|e| map_err("stats", e))?,
            ports: Array::try_from(take_map(&mut ebpf, name, "ports")?)
                .map_err(|e| map_err("ports", e))?,
            tx_ports: DevMap::try_from(take_map(&mut ebpf, name, "tx_ports")?)
                .map_err(|e| map_err("tx_ports", e))?,
            backend_traffic: PerCpuArray::try_from(take_map(&mut ebpf, name, "backend_traffic")?)
                .map_err(|e| map_err("backend_traffic", e))?,
        };
        let probe_port = Array::try_from(take_map(&mut ebpf, name, "probe_port")?)
            .map_err(|e| map_err("probe_port", e))?;
        let flows = map_slots(&mut ebpf, name, "flows", table.slots, table.seed)?;
        let flows6 = map_slots(&mut ebpf, name, "flows6", table.slots6, table.seed)?;
        Ok(Attached {
            interface: name.to_string(),
            mode,
            xsks,
            maps: Some(maps),
            flows: Arc::new(flows),
            flows6: Arc::new(flows6),
            probe_port,
            ebpf,
        })
    }

    /// How the program is attached: native or skb.
    pub(super) fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Runs `frame` through the steering program as if it arrived on
    /// `ingress_ifindex`; returns the XDP action and the frame as it left.
    pub(super) fn run(
        &mut self,
        frame: &[u8],
        ingress_ifindex: u32,
    ) -> Result<(u32, Vec<u8>), EngineError> {
        let interface = self.interface.clone();
        let prog = xdp_program(&mut self.ebpf, &interface, PROGRAM)?;
        let ctx = xdp_md(frame.len(), ingress_ifindex);
        // Room for the program to grow the frame, as a driver leaves.
        let mut out = vec![0u8; frame.len() + 256];
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(frame);
        opts.data_out = Some(&mut out);
        opts.ctx_in = Some(&ctx);
        let r = prog
            .test_run(opts)
            .map_err(|e| load_err(&interface, format!("BPF_PROG_TEST_RUN: {e}")))?;
        out.truncate(r.data_size_out as usize);
        Ok((r.return_value, out))
    }

    /// Whether a frame the XDP program sends out of port `port` (interface
    /// `ifindex`) leaves, rather than being dropped by the driver (a veth
    /// whose peer has neither an XDP program nor GRO drops them and counts
    /// nothing): one harmless frame goes out through the same devmap as the
    /// fast path's, and the driver's count of XDP frames sent must move.
    /// `Ok(None)` when the driver keeps no such count.
    pub(super) fn probe_xmit(
        &mut self,
        port: u32,
        ifindex: u32,
        mac: [u8; 6],
    ) -> Result<Option<bool>, String> {
        let interface = self.interface.clone();
        let Some(before) = super::iface::xdp_xmit_count(&interface).map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        self.probe_port
            .set(0, port, 0)
            .map_err(|e| format!("map probe_port: {e}"))?;
        let prog = xdp_program(&mut self.ebpf, &interface, PROBE).map_err(|e| e.to_string())?;
        // To no one (a locally administered MAC nobody holds), of the IEEE
        // local experimental ethertype: a receiver that gets it ignores it.
        let mut frame = [0u8; 60];
        let eth = EthernetHeader {
            dst: MacAddr([0x02, 0, 0, 0, 0, 0]),
            src: MacAddr(mac),
            ethertype: LOCAL_EXPERIMENTAL_ETHERTYPE,
        };
        write_ethernet_header(&mut frame, &eth).map_err(|e| format!("probe frame: {e}"))?;
        let ctx = xdp_md(frame.len(), ifindex);
        let mut opts = TestRunOptions::new();
        opts.data_in = Some(&frame);
        opts.ctx_in = Some(&ctx);
        opts.attrs = TestRunAttrs::new().xdp_live_frames(1);
        // A live-frame run reports no action: what counts is the driver.
        prog.test_run(opts)
            .map_err(|e| format!("BPF_PROG_TEST_RUN: {e}"))?;
        let after = super::iface::xdp_xmit_count(&interface).map_err(|e| e.to_string())?;
        Ok(Some(after.unwrap_or(before) > before))
    }

    /// Points queue `queue` of this interface at the socket `fd`.
    pub(super) fn insert_socket(&mut self, queue: u16, fd: RawFd) -> Result<(), EngineError> {
        self.xsks
            .set(u32::from(queue), fd, 0)
            .map_err(|e| EngineError::Map {
                interface: self.interface.clone(),
                map: "xsks",
                error: e.to_string(),
            })
    }
}

/// Maps the flow table `map` (`slots` slots whose keys hash with `seed`)
/// into this process.
fn map_slots<const K: usize, const V: usize>(
    ebpf: &mut Ebpf,
    interface: &str,
    map: &'static str,
    slots: u32,
    seed: u32,
) -> Result<SharedSlots<K, V>, EngineError> {
    match take_map(ebpf, interface, map)? {
        Map::Array(data) => {
            SharedSlots::map(data.fd().as_fd(), slots, seed).map_err(|e| EngineError::Map {
                interface: interface.to_string(),
                map,
                error: format!("mmap: {e}"),
            })
        }
        _ => Err(load_err(interface, format!("map `{map}` is not an array"))),
    }
}

/// Flow tables at least this large (MiB, both families) are announced
/// before they are allocated.
const SLOW_TABLES_MIB: u64 = 1024;

/// The sizes and hash seed the flow tables were loaded with.
#[derive(Clone, Copy)]
struct TableShape {
    slots: u32,
    slots6: u32,
    seed: u32,
}

/// Loads the programs with flow tables for `keys` IPv4 and `keys6` IPv6
/// keys.
fn load(name: &str, keys: u32, keys6: u32) -> Result<(Ebpf, TableShape), EngineError> {
    let slots = flow_table::slots_for(keys);
    let slots6 = flow_table::slots_for(keys6);
    let (mask, mask6) = (slots - 1, slots6 - 1);
    let mib = |slots: u32, bytes: usize| (u64::from(slots) * bytes as u64) >> 20;
    let (mib4, mib6) = (
        mib(slots, size_of::<Slot4>()),
        mib(slots6, size_of::<Slot6>()),
    );
    // The kernel zeroes the tables as it creates them: seconds per GiB on
    // a VM, with nothing else to show for it.
    let large = mib4 + mib6 >= SLOW_TABLES_MIB;
    if large {
        log::info!(
            "interface {name}: allocating {} MiB of XDP flow tables for {keys} IPv4 and \
             {keys6} IPv6 connection keys; this takes a while",
            mib4 + mib6
        );
    }
    let started = std::time::Instant::now();
    // A fresh random seed per load: std's hasher keys come from the OS.
    let seed = RandomState::new().hash_one(name) as u32;
    let ebpf = EbpfLoader::new()
        .map_max_entries("flows", slots)
        .map_max_entries("flows6", slots6)
        .override_global("flow_mask", &mask, true)
        .override_global("flow_mask6", &mask6, true)
        .override_global("flow_seed", &seed, true)
        .load(STEER_OBJ)
        .map_err(|e| load_err(name, e))?;
    log::log!(
        if large {
            log::Level::Info
        } else {
            log::Level::Debug
        },
        "interface {name}: XDP program loaded with flow tables of {mib4} MiB (IPv4, {slots} \
         slots) and {mib6} MiB (IPv6, {slots6} slots) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok((
        ebpf,
        TableShape {
            slots,
            slots6,
            seed,
        },
    ))
}

/// The named XDP program of `ebpf`, loaded into the kernel.
fn xdp_program<'a>(
    ebpf: &'a mut Ebpf,
    interface: &str,
    name: &str,
) -> Result<&'a mut Xdp, EngineError> {
    let prog: &mut Xdp = ebpf
        .program_mut(name)
        .ok_or_else(|| load_err(interface, format!("program {name} missing")))?
        .try_into()
        .map_err(|e| load_err(interface, e))?;
    if prog.fd().is_err() {
        prog.load().map_err(|e| load_err(interface, e))?;
    }
    Ok(prog)
}

/// `struct xdp_md` for a test run of a `len`-byte frame received on
/// `ifindex`, queue 0: data, data_end, data_meta, ingress_ifindex,
/// rx_queue_index, egress_ifindex.
pub fn xdp_md(len: usize, ifindex: u32) -> [u8; 24] {
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    ctx
}

/// XDP actions as the kernel numbers them.
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

/// An address family's keys and values as the words of its table's slots
/// (`K` key words, `V` value words).
trait SlotWords<const K: usize, const V: usize>: Addr {
    /// A key as the XDP program reads it from a packet: addresses, ports,
    /// protocol, three zero bytes, in network order.
    fn key_words(key: &FlowKey<Self>) -> [u32; K];
    /// A value handing the packets to the workers.
    fn to_worker() -> [u32; V];
    /// The rewrite of packets arriving with `key`, with the checksum
    /// updates it implies computed once here rather than per packet.
    fn forward(key: &FlowKey<Self>, rw: &Rewrite<Self>, backend: u32) -> [u32; V];

    /// What an update writes for `change`; `None` for a removal.
    fn value_words(change: &SteerChange<Self>) -> Option<[u32; V]> {
        match &change.action {
            SteerAction::ToWorker => Some(Self::to_worker()),
            SteerAction::Forward { rewrite, backend } => {
                Some(Self::forward(&change.key, rewrite, *backend))
            }
            SteerAction::Remove => None,
        }
    }
}

/// Byte strings laid end to end, as `N` words in memory order.
fn pack<const N: usize>(fields: &[&[u8]]) -> [u32; N] {
    let mut words = [[0u8; 4]; N];
    let bytes = fields.iter().flat_map(|f| f.iter());
    for (i, b) in bytes.enumerate() {
        words[i / 4][i % 4] = *b;
    }
    words.map(u32::from_ne_bytes)
}

impl SlotWords<KEY_WORDS, VALUE_WORDS> for u32 {
    fn key_words(k: &FlowKey) -> [u32; KEY_WORDS] {
        pack(&[
            &k.src_ip.to_be_bytes(),
            &k.dst_ip.to_be_bytes(),
            &k.src_port.to_be_bytes(),
            &k.dst_port.to_be_bytes(),
            &[k.proto],
        ])
    }
    fn to_worker() -> [u32; VALUE_WORDS] {
        FlowValue::to_worker().words()
    }
    fn forward(key: &FlowKey, rw: &Rewrite, backend: u32) -> [u32; VALUE_WORDS] {
        FlowValue::forward(key, rw, backend).words()
    }
}

impl SlotWords<KEY_WORDS6, VALUE_WORDS6> for Ip6 {
    fn key_words(k: &FlowKey<Ip6>) -> [u32; KEY_WORDS6] {
        pack(&[
            &k.src_ip,
            &k.dst_ip,
            &k.src_port.to_be_bytes(),
            &k.dst_port.to_be_bytes(),
            &[k.proto],
        ])
    }
    fn to_worker() -> [u32; VALUE_WORDS6] {
        FlowValue6::to_worker().words()
    }
    fn forward(key: &FlowKey<Ip6>, rw: &Rewrite<Ip6>, backend: u32) -> [u32; VALUE_WORDS6] {
        FlowValue6::forward(key, rw, backend).words()
    }
}

const FLOW_TO_WORKER: u8 = 0;
const FLOW_FORWARD: u8 = 1;

/// `struct flow_action` in steer.c: what the program does with one key's
/// packets. Multi-byte packet fields and checksum deltas are in network
/// order, as the program writes them into packets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FlowValue {
    action: u8,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    pad: u8,
    ip_delta: [u8; 2],
    src: [u8; 4],
    dst: [u8; 4],
    sport: [u8; 2],
    dport: [u8; 2],
    l4_delta: [u8; 2],
    egress: u16,
    backend: u32,
}

// The layout of `struct flow_action`, which `words` writes field after
// field: no padding anywhere.
const _: () = assert!(std::mem::size_of::<FlowValue>() == VALUE_WORDS * 4);
const _: () = assert!(std::mem::offset_of!(FlowValue, ip_delta) == 14);
const _: () = assert!(std::mem::offset_of!(FlowValue, l4_delta) == 28);
const _: () = assert!(std::mem::offset_of!(FlowValue, egress) == 30);
const _: () = assert!(std::mem::offset_of!(FlowValue, backend) == 32);

impl FlowValue {
    fn to_worker() -> FlowValue {
        FlowValue {
            action: FLOW_TO_WORKER,
            ..FlowValue::default()
        }
    }

    fn forward(key: &FlowKey, rw: &Rewrite, backend: u32) -> FlowValue {
        let ip =
            checksum::delta32(key.src_ip, rw.src_ip) + checksum::delta32(key.dst_ip, rw.dst_ip);
        FlowValue {
            action: FLOW_FORWARD,
            src_mac: rw.src_mac,
            dst_mac: rw.dst_mac,
            pad: 0,
            ip_delta: checksum::fold(ip).to_be_bytes(),
            src: rw.src_ip.to_be_bytes(),
            dst: rw.dst_ip.to_be_bytes(),
            sport: rw.src_port.to_be_bytes(),
            dport: rw.dst_port.to_be_bytes(),
            l4_delta: l4_delta(ip, key, rw),
            egress: u16::from(rw.egress),
            backend,
        }
    }

    /// The value as it sits in a slot, as the table's words.
    fn words(&self) -> [u32; VALUE_WORDS] {
        pack(&[
            &[self.action],
            &self.src_mac,
            &self.dst_mac,
            &[self.pad],
            &self.ip_delta,
            &self.src,
            &self.dst,
            &self.sport,
            &self.dport,
            &self.l4_delta,
            &self.egress.to_ne_bytes(),
            &self.backend.to_ne_bytes(),
        ])
    }
}

/// The TCP/UDP checksum update of a rewrite whose addresses add `addrs`
/// (unfolded deltas) to it: the ports' on top, folded, in network order.
fn l4_delta<A: Copy>(addrs: u32, key: &FlowKey<A>, rw: &Rewrite<A>) -> [u8; 2] {
    let l4 = addrs
        + checksum::delta16(key.src_port, rw.src_port)
        + checksum::delta16(key.dst_port, rw.dst_port);
    checksum::fold(l4).to_be_bytes()
}

/// `struct flow_action6` in steer.c: `FlowValue` for IPv6, without the
/// header checksum update (IPv6 has no header checksum).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct FlowValue6 {
    action: u8,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    pad: u8,
    l4_delta: [u8; 2],
    src: Ip6,
    dst: Ip6,
    sport: [u8; 2],
    dport: [u8; 2],
    egress: u16,
    pad2: u16,
    backend: u32,
}

const _: () = assert!(std::mem::size_of::<FlowValue6>() == VALUE_WORDS6 * 4);
const _: () = assert!(std::mem::offset_of!(FlowValue6, l4_delta) == 14);
const _: () = assert!(std::mem::offset_of!(FlowValue6, egress) == 52);
const _: () = assert!(std::mem::offset_of!(FlowValue6, backend) == 56);

impl FlowValue6 {
    fn to_worker() -> FlowValue6 {
        FlowValue6 {
            action: FLOW_TO_WORKER,
            ..FlowValue6::default()
        }
    }

    fn forward(key: &FlowKey<Ip6>, rw: &Rewrite<Ip6>, backend: u32) -> FlowValue6 {
        let addr = |a: Ip6| Ipv6Addr::from(a);
        let addrs = checksum::delta_v6(addr(key.src_ip), addr(rw.src_ip))
            + checksum::delta_v6(addr(key.dst_ip), addr(rw.dst_ip));
        FlowValue6 {
            action: FLOW_FORWARD,
            src_mac: rw.src_mac,
            dst_mac: rw.dst_mac,
            pad: 0,
            l4_delta: l4_delta(addrs, key, rw),
            src: rw.src_ip,
            dst: rw.dst_ip,
            sport: rw.src_port.to_be_bytes(),
            dport: rw.dst_port.to_be_bytes(),
            egress: u16::from(rw.egress),
            pad2: 0,
            backend,
        }
    }

    /// The value as it sits in a slot, as the table's words.
    fn words(&self) -> [u32; VALUE_WORDS6] {
        pack(&[
            &[self.action],
            &self.src_mac,
            &self.dst_mac,
            &[self.pad],
            &self.l4_delta,
            &self.src,
            &self.dst,
            &self.sport,
            &self.dport,
            &self.egress.to_ne_bytes(),
            &self.pad2.to_ne_bytes(),
            &self.backend.to_ne_bytes(),
        ])
    }
}

/// Applies `changes` in order to the tables of their ports; returns how
/// many were refused (no free slot in the key's window, or no such port):
/// those keys' packets go where they would without.
fn apply_changes<A: SlotWords<K, V>, const K: usize, const V: usize>(
    tables: &[Arc<SharedSlots<K, V>>],
    changes: &[SteerChange<A>],
) -> usize {
    let refused = |change: &SteerChange<A>| {
        let Some(shared) = tables.get(usize::from(change.port)) else {
            return change.action != SteerAction::Remove;
        };
        let table = shared.table();
        let key = A::key_words(&change.key);
        match A::value_words(change) {
            Some(value) => table.insert(&key, &value).is_none(),
            None => {
                // A key whose insertion was refused is absent: nothing to
                // withdraw.
                table.remove(&key);
                false
            }
        }
    };
    changes.iter().filter(|c| refused(c)).count()
}

/// When the program last forwarded a packet of `key` arriving on `port`
/// (engine clock, ms), from the tables of every port.
fn last_seen<A: SlotWords<K, V>, const K: usize, const V: usize>(
    tables: &[Arc<SharedSlots<K, V>>],
    port: u8,
    key: &FlowKey<A>,
) -> Option<u64> {
    let e = tables
        .get(usize::from(port))?
        .table()
        .get(&A::key_words(key))?;
    // The coarse clock is CLOCK_MONOTONIC_COARSE: the engine clock's base.
    (e.action() == FLOW_FORWARD && e.last_seen_ns != 0).then_some(e.last_seen_ns / 1_000_000)
}

/// One worker's handles on the flow tables of every interface, in port
/// order. Workers share an interface's tables, each writing only its own
/// connections' keys, with no lock.
pub(super) struct FlowEntries {
    tables: Vec<Arc<Slots4>>,
    tables6: Vec<Arc<Slots6>>,
}

impl FlowEntries {
    pub(super) fn new(attached: &[Attached]) -> FlowEntries {
        FlowEntries {
            tables: attached.iter().map(|a| Arc::clone(&a.flows)).collect(),
            tables6: attached.iter().map(|a| Arc::clone(&a.flows6)).collect(),
        }
    }

    /// Applies IPv4 changes in order; returns how many were refused.
    pub(super) fn apply_all(&mut self, changes: &[SteerChange]) -> usize {
        apply_changes(&self.tables, changes)
    }

    /// Applies IPv6 changes in order; returns how many were refused.
    pub(super) fn apply6(&mut self, changes: &[SteerChange<Ip6>]) -> usize {
        apply_changes(&self.tables6, changes)
    }
}

impl FastSeen for FlowEntries {
    fn last_seen_ms(&mut self, port: u8, key: &FlowKey) -> Option<u64> {
        last_seen(&self.tables, port, key)
    }
}

impl FastSeen<Ip6> for FlowEntries {
    fn last_seen_ms(&mut self, port: u8, key: &FlowKey<Ip6>) -> Option<u64> {
        last_seen(&self.tables6, port, key)
    }
}

/// Counters of the steering program, summed over CPUs and interfaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpStats {
    /// Frames handed to an AF_XDP socket.
    pub redirected: u64,
    /// ARP frames left to the kernel (not for an owned address, or no socket).
    pub pass_arp: u64,
    pub pass_ipv4: u64,
    pub pass_ipv6: u64,
    pub pass_other_ethertype: u64,
    /// Frames too short to classify.
    pub pass_truncated: u64,
    /// SYNs to a VIP dropped over the SYN admission rate.
    pub drop_syn_limit: u64,
    /// Packets of offloaded connections forwarded by the program itself.
    pub fast_forwarded: u64,
    /// Packets of offloaded connections handed to the workers instead
    /// (TCP SYN/FIN/RST, IP options, TTL or hop limit, over the egress
    /// MTU, malformed).
    pub fast_to_worker: u64,
    /// Of those, because the egress port cannot send XDP frames.
    pub fast_no_egress: u64,
    /// Packets the program rewrote but could not redirect (the egress port
    /// left the devmap under it): dropped.
    pub fast_aborted: u64,
}

impl XdpStats {
    /// Every counter with its name, as `vipctl stats` and the metrics show
    /// them.
    pub fn by_decision(&self) -> [(&'static str, u64); 11] {
        [
            ("redirected", self.redirected),
            ("pass_arp", self.pass_arp),
            ("pass_ipv4", self.pass_ipv4),
            ("pass_ipv6", self.pass_ipv6),
            ("pass_other_ethertype", self.pass_other_ethertype),
            ("pass_truncated", self.pass_truncated),
            ("drop_syn_limit", self.drop_syn_limit),
            ("fast_forwarded", self.fast_forwarded),
            ("fast_to_worker", self.fast_to_worker),
            ("fast_no_egress", self.fast_no_egress),
            ("fast_aborted", self.fast_aborted),
        ]
    }
}

/// SYN admission in the steering program: new TCP connections to VIPs per
/// second and receive queue; the excess is dropped before it reaches a
/// worker, so a flood cannot starve established flows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynLimit {
    /// SYNs per second per queue; 0 admits every SYN.
    pub rate: u32,
    /// The largest burst admitted at once.
    pub burst: u32,
}

/// A port as the XDP program's fast path sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EgressPort {
    pub ifindex: u32,
    pub mtu: u32,
    /// Frames can leave by it from XDP.
    pub xmit: bool,
}

/// The steering maps of every interface: which traffic goes to the workers.
pub struct XdpSteering {
    ifaces: Mutex<Vec<IfaceMaps>>,
}

fn key(ip: Ipv4Addr) -> u32 {
    // The program compares the address as it sits in the packet.
    u32::from_ne_bytes(ip.octets())
}

/// Makes `map` hold exactly `want`: inserts new keys, deletes stale ones.
fn replace<K: aya::Pod + Eq + std::hash::Hash, V: aya::Pod + PartialEq>(
    map: &mut BpfHashMap<MapData, K, V>,
    want: &[(K, V)],
    interface: &str,
    name: &'static str,
) -> Result<(), EngineError> {
    let err = |e: aya::maps::MapError| EngineError::Map {
        interface: interface.to_string(),
        map: name,
        error: e.to_string(),
    };
    let keep: HashSet<K> = want.iter().map(|(k, _)| *k).collect();
    for (k, v) in want {
        if map.get(k, 0).ok().as_ref() != Some(v) {
            map.insert(k, v, 0).map_err(err)?;
        }
    }
    let stale = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| !keep.contains(k))
        .collect::<Vec<_>>();
    for k in stale {
        map.remove(&k).map_err(err)?;
    }
    Ok(())
}

impl XdpSteering {
    /// Takes the steering maps out of every attached program.
    pub(super) fn new(attached: &mut [Attached]) -> XdpSteering {
        let ifaces = attached.iter_mut().filter_map(|a| a.maps.take()).collect();
        XdpSteering {
            ifaces: Mutex::new(ifaces),
        }
    }

    fn with_maps(
        &self,
        mut f: impl FnMut(&mut IfaceMaps) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let mut ifaces = self.ifaces.lock().unwrap_or_else(|p| p.into_inner());
        ifaces.iter_mut().try_for_each(&mut f)
    }

    /// Addresses the dataplane serves (VIPs and full-NAT source addresses);
    /// replaces the previous set.
    pub fn set_vips(&self, vips: &[Ipv4Addr]) -> Result<(), EngineError> {
        let want: Vec<(u32, u8)> = vips.iter().map(|&ip| (key(ip), 1)).collect();
        self.with_maps(|m| replace(&mut m.vips, &want, &m.interface, "vips"))
    }

    /// The IPv6 addresses the dataplane serves; replaces the previous set.
    pub fn set_vips6(&self, vips: &[Ipv6Addr]) -> Result<(), EngineError> {
        let want: Vec<(Ip6, u8)> = vips.iter().map(|ip| (ip.octets(), 1)).collect();
        self.with_maps(|m| replace(&mut m.vips6, &want, &m.interface, "vips6"))
    }

    /// Tells every interface's program where ports lead: their interface,
    /// MTU and whether XDP frames can leave by them (`xmit`), in port order.
    pub fn set_ports(&self, ports: &[EgressPort]) -> Result<(), EngineError> {
        self.with_maps(|m| {
            let err = |map: &'static str, error: String| EngineError::Map {
                interface: m.interface.clone(),
                map,
                error,
            };
            for (i, p) in ports.iter().enumerate() {
                let entry = PortEntry {
                    ifindex: p.ifindex,
                    mtu: p.mtu,
                    xmit: u32::from(p.xmit),
                };
                m.tx_ports
                    .set(i as u32, p.ifindex, None, 0)
                    .map_err(|e| err("tx_ports", e.to_string()))?;
                m.ports
                    .set(i as u32, entry, 0)
                    .map_err(|e| err("ports", e.to_string()))?;
            }
            Ok(())
        })
    }

    /// Packets and bytes the fast path forwarded for each backend of
    /// `ids`, summed over CPUs and interfaces; ids the program does not
    /// count (see `MAX_BACKEND_IDS` in steer.c) read zero.
    pub fn backend_traffic(&self, ids: &[u32]) -> Result<Vec<(u64, u64)>, EngineError> {
        let mut sums = vec![(0u64, 0u64); ids.len()];
        self.with_maps(|m| {
            for (id, sum) in ids.iter().zip(sums.iter_mut()) {
                let Ok(values) = m.backend_traffic.get(id, 0) else {
                    continue;
                };
                for t in values.iter() {
                    sum.0 += t.packets;
                    sum.1 += t.bytes;
                }
            }
            Ok(())
        })?;
        Ok(sums)
    }

    /// Sets the SYN admission rate on every interface.
    pub fn set_syn_limit(&self, limit: SynLimit) -> Result<(), EngineError> {
        self.with_maps(|m| {
            for (index, value) in [(0, limit.rate), (1, limit.burst)] {
                m.syn_limit
                    .set(index, u64::from(value), 0)
                    .map_err(|e| EngineError::Map {
                        interface: m.interface.clone(),
                        map: "syn_limit",
                        error: e.to_string(),
                    })?;
            }
            Ok(())
        })
    }

    /// The steering program's counters, summed over CPUs and interfaces.
    pub fn xdp_stats(&self) -> Result<XdpStats, EngineError> {
        let mut sums = [0u64; 11];
        self.with_maps(|m| {
            for (i, sum) in sums.iter_mut().enumerate() {
                let values = m.stats.get(&(i as u32), 0).map_err(|e| EngineError::Map {
                    interface: m.interface.clone(),
                    map: "stats",
                    error: e.to_string(),
                })?;
                *sum += values.iter().sum::<u64>();
            }
            Ok(())
        })?;
        let [redirected, pass_arp, pass_ipv4, pass_ipv6, pass_other_ethertype, pass_truncated, drop_syn_limit, fast_forwarded, fast_to_worker, fast_no_egress, fast_aborted] =
            sums;
        Ok(XdpStats {
            redirected,
            pass_arp,
            pass_ipv4,
            pass_ipv6,
            pass_other_ethertype,
            pass_truncated,
            fast_forwarded,
            fast_to_worker,
            fast_no_egress,
            fast_aborted,
            drop_syn_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `words` lays the value out as `struct flow_action` does (offsets
    /// asserted there and above), and keys as `struct flow_key`.
    #[test]
    fn a_value_and_a_key_sit_in_their_words_as_in_the_c_structs() {
        let v = FlowValue {
            action: FLOW_FORWARD,
            src_mac: [1, 2, 3, 4, 5, 6],
            dst_mac: [7, 8, 9, 10, 11, 12],
            pad: 0,
            ip_delta: [13, 14],
            src: [15, 16, 17, 18],
            dst: [19, 20, 21, 22],
            sport: [23, 24],
            dport: [25, 26],
            l4_delta: [27, 28],
            egress: 0x1e1d,
            backend: 0x2221_201f,
        };
        let bytes: Vec<u8> = v.words().iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut want: Vec<u8> = vec![1];
        want.extend(1..=12);
        want.push(0);
        want.extend(13..=28);
        want.extend(0x1d..=0x22);
        assert_eq!(bytes, want);
        let key = FlowKey {
            src_ip: 0x0a00_0001,
            dst_ip: 0x0a00_0002,
            src_port: 0x1234,
            dst_port: 80,
            proto: 17,
        };
        let bytes: Vec<u8> = SlotWords::key_words(&key)
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        assert_eq!(
            bytes,
            [10, 0, 0, 1, 10, 0, 0, 2, 0x12, 0x34, 0, 80, 17, 0, 0, 0]
        );
    }

    /// The same for `struct flow_action6` and `struct flow_key6`.
    #[test]
    fn an_ipv6_value_and_key_sit_in_their_words_as_in_the_c_structs() {
        let v = FlowValue6 {
            action: FLOW_FORWARD,
            src_mac: [1, 2, 3, 4, 5, 6],
            dst_mac: [7, 8, 9, 10, 11, 12],
            pad: 0,
            l4_delta: [13, 14],
            src: std::array::from_fn(|i| 15 + i as u8),
            dst: std::array::from_fn(|i| 31 + i as u8),
            sport: [47, 48],
            dport: [49, 50],
            egress: 0x3433,
            pad2: 0,
            backend: 0x3c3b_3a39,
        };
        let bytes: Vec<u8> = v.words().iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut want: Vec<u8> = vec![1];
        want.extend(1..=12);
        want.push(0);
        want.extend(13..=52);
        want.extend([0, 0]);
        want.extend(0x39..=0x3c);
        assert_eq!(bytes, want);
        let key = FlowKey {
            src_ip: std::array::from_fn(|i| i as u8),
            dst_ip: std::array::from_fn(|i| 16 + i as u8),
            src_port: 0x1234,
            dst_port: 80,
            proto: 6,
        };
        let bytes: Vec<u8> = SlotWords::key_words(&key)
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        let mut want: Vec<u8> = (0..32).collect();
        want.extend([0x12, 0x34, 0, 80, 6, 0, 0, 0]);
        assert_eq!(bytes, want);
    }
}
