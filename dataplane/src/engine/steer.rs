//! The XDP steering program: loading, attaching (through a bpf_link, so a
//! crashed process leaves nothing behind) and its maps.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, RawFd};
use std::sync::Mutex;

use aya::maps::{Array, HashMap as BpfHashMap, Map, MapData, PerCpuArray, XskMap};
use aya::programs::{ProgramError, Xdp};
use aya::{Ebpf, EbpfLoader};

use super::{EngineError, PortInfo, XdpMode};
use crate::flow::{FlowKey, SteerChange};

/// Size of the `xsks` map: the highest queue count the program serves.
pub(super) const MAX_QUEUES: u32 = 64;

static STEER_OBJ: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/steer.o"));

const PROGRAM: &str = "vipd_steer";

/// The program and socket map of one interface. Dropping it detaches the
/// program.
pub(super) struct Attached {
    interface: String,
    mode: XdpMode,
    xsks: XskMap<MapData>,
    maps: Option<IfaceMaps>,
    replies: MapData,
    // Holds the program and its link; the link detaches on drop.
    _ebpf: Ebpf,
}

struct IfaceMaps {
    interface: String,
    vips: BpfHashMap<MapData, u32, u8>,
    syn_limit: Array<MapData, u64>,
    stats: PerCpuArray<MapData, u64>,
}

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
    /// Loads the program with room for `reply_keys` NAT reply keys and
    /// attaches it to `port`.
    pub(super) fn attach(
        port: &PortInfo,
        mode: XdpMode,
        reply_keys: u32,
    ) -> Result<Attached, EngineError> {
        let name = port.name.as_str();
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("replies", reply_keys.max(1))
            .load(STEER_OBJ)
            .map_err(|e| load_err(name, e))?;
        let prog: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| load_err(name, "program vipd_steer missing"))?
            .try_into()
            .map_err(|e| load_err(name, e))?;
        prog.load().map_err(|e| load_err(name, e))?;
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
            syn_limit: Array::try_from(take_map(&mut ebpf, name, "syn_limit")?)
                .map_err(|e| map_err("syn_limit", e))?,
            stats: PerCpuArray::try_from(take_map(&mut ebpf, name, "stats")?)
                .map_err(|e| map_err("stats", e))?,
        };
        let replies = match take_map(&mut ebpf, name, "replies")? {
            Map::HashMap(data) => data,
            _ => return Err(load_err(name, "map `replies` is not a hash map")),
        };
        Ok(Attached {
            interface: name.to_string(),
            mode,
            xsks,
            maps: Some(maps),
            replies,
            _ebpf: ebpf,
        })
    }

    /// How the program is attached: native or skb.
    pub(super) fn mode(&self) -> XdpMode {
        self.mode
    }

    /// A handle of the reply-key map of its own, for one worker.
    fn reply_map(&self) -> Result<BpfHashMap<MapData, ReplyKey, u8>, EngineError> {
        let err = |error: String| EngineError::Map {
            interface: self.interface.clone(),
            map: "replies",
            error,
        };
        let fd = self
            .replies
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| err(e.to_string()))?;
        let data = MapData::from_fd(fd).map_err(|e| err(e.to_string()))?;
        BpfHashMap::try_from(Map::HashMap(data)).map_err(|e| err(e.to_string()))
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

/// A flow key as the XDP program reads it from a packet: network order.
#[repr(C)]
#[derive(Clone, Copy)]
struct ReplyKey {
    src: [u8; 4],
    dst: [u8; 4],
    sport: [u8; 2],
    dport: [u8; 2],
    proto: u8,
    pad: [u8; 3],
}

// SAFETY: a plain 16-byte struct of byte arrays: no padding, alignment 1,
// every bit pattern valid; it matches `struct flow_key` in steer.c.
unsafe impl aya::Pod for ReplyKey {}

impl From<&FlowKey> for ReplyKey {
    fn from(k: &FlowKey) -> ReplyKey {
        ReplyKey {
            src: k.src_ip.to_be_bytes(),
            dst: k.dst_ip.to_be_bytes(),
            sport: k.src_port.to_be_bytes(),
            dport: k.dst_port.to_be_bytes(),
            proto: k.proto,
            pad: [0; 3],
        }
    }
}

/// One worker's handles on the reply-key map of every interface, in port
/// order: the worker applies its connections' changes itself, with no lock
/// shared with other workers.
pub(super) struct ReplyKeys {
    maps: Vec<BpfHashMap<MapData, ReplyKey, u8>>,
}

impl ReplyKeys {
    pub(super) fn new(attached: &[Attached]) -> Result<ReplyKeys, EngineError> {
        let maps = attached
            .iter()
            .map(Attached::reply_map)
            .collect::<Result<_, _>>()?;
        Ok(ReplyKeys { maps })
    }

    /// Applies one change; false when the map refused it (full, or out of
    /// memory), which leaves that connection's replies to the kernel.
    pub(super) fn apply(&mut self, change: &SteerChange) -> bool {
        let Some(map) = self.maps.get_mut(usize::from(change.port)) else {
            return false;
        };
        let key = ReplyKey::from(&change.key);
        if change.add {
            map.insert(key, 1, 0).is_ok()
        } else {
            // A key whose insertion failed is absent: nothing to withdraw.
            let _ = map.remove(&key);
            true
        }
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

/// The steering maps of every interface: which traffic goes to the workers.
pub struct Steering {
    ifaces: Mutex<Vec<IfaceMaps>>,
}

fn key(ip: Ipv4Addr) -> u32 {
    // The program compares the address as it sits in the packet.
    u32::from_ne_bytes(ip.octets())
}

/// Makes `map` hold exactly `want`: inserts new keys, deletes stale ones.
fn replace<V: aya::Pod + PartialEq>(
    map: &mut BpfHashMap<MapData, u32, V>,
    want: &[(u32, V)],
    interface: &str,
    name: &'static str,
) -> Result<(), EngineError> {
    let err = |e: aya::maps::MapError| EngineError::Map {
        interface: interface.to_string(),
        map: name,
        error: e.to_string(),
    };
    let keep: HashSet<u32> = want.iter().map(|(k, _)| *k).collect();
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

impl Steering {
    /// Takes the steering maps out of every attached program.
    pub(super) fn new(attached: &mut [Attached]) -> Steering {
        let ifaces = attached.iter_mut().filter_map(|a| a.maps.take()).collect();
        Steering {
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
        let mut sums = [0u64; 7];
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
        let [redirected, pass_arp, pass_ipv4, pass_ipv6, pass_other_ethertype, pass_truncated, drop_syn_limit] =
            sums;
        Ok(XdpStats {
            redirected,
            pass_arp,
            pass_ipv4,
            pass_ipv6,
            pass_other_ethertype,
            pass_truncated,
            drop_syn_limit,
        })
    }
}
