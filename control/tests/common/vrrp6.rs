//! The IPv6 VRRP tests' harness: IPv6 on the client segment of a two-node
//! lab, vipd and keepalived nodes with one IPv6 instance, a sniffer of
//! IPv6 adverts and Neighbor Advertisements, and takeover times read off
//! the wire.

use std::net::Ipv6Addr;
use std::time::Duration;

use ctlproto::{reply, Command};
use viplab::{Lab, LabProcess};

use super::vrrp::{VrrpLab, VRID};
use super::{node_config, Vipd};

pub const VIP6: &str = "2001:db8::50";
/// 00:00:5e:00:02:{VRID}.
pub const VMAC6: &str = "00:00:5e:00:02:33";
pub const ROLES: [&str; 3] = ["lb1", "lb2", "client"];

/// Turns IPv6 on for eth0 of the LB nodes and the client, which the lab
/// leaves off. DAD is off first, on these interfaces only, which this
/// test owns: a tentative link-local address cannot be an advert source,
/// and DAD after every link-up would delay a node's return by a second.
pub fn ipv6_on(lab: &Lab) {
    for role in ROLES {
        lab.exec_ok(
            role,
            &[
                "sysctl",
                "-q",
                "-w",
                "net.ipv6.conf.eth0.accept_dad=0",
                "net.ipv6.conf.eth0.disable_ipv6=0",
            ],
        )
        .unwrap_or_else(|e| panic!("IPv6 on {role}: {e}"));
    }
    for role in ROLES {
        lab.wait_until(
            &format!("{role} has a link-local address"),
            Duration::from_secs(5),
            || link_local(lab, role).is_some(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The link-local address of `role`'s eth0.
pub fn link_local(lab: &Lab, role: &str) -> Option<Ipv6Addr> {
    let out = lab
        .exec_ok(
            role,
            &[
                "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
            ],
        )
        .ok()?;
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)?
        .split('/')
        .next()?
        .parse()
        .ok()
}

pub fn vipd6_config(lab: &Lab, k: usize, keys: &str) -> String {
    format!(
        "{}[[vrrp]]\nname = \"vi6\"\ninterface = \"eth0\"\nvrid = {VRID}\nvips = [\"{VIP6}\"]\n{keys}\n",
        node_config(lab, &format!("lb{k}"), 1, "", &[]),
    )
}

pub fn start_vipd6(lab: &Lab, k: usize, keys: &str) -> Vipd {
    Vipd::start(lab, &format!("lb{k}"), &vipd6_config(lab, k, keys)).expect("vipd starts")
}

pub fn instance6(vipd: &Vipd) -> reply::VrrpInstance {
    vipd.call::<reply::Vrrp>(Command::Vrrp {})
        .ok()
        .and_then(|r| r.instances.into_iter().next())
        .unwrap_or_default()
}

pub fn wait_state6(lab: &Lab, vipd: &Vipd, want: &str, within: Duration) {
    lab.wait_until(&format!("vipd VRRP state {want}"), within, || {
        instance6(vipd).state == want
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}\n{}", instance6(vipd), vipd.log()));
}

/// A keepalived node with one IPv6 instance.
pub struct Keepalived6 {
    pub process: Option<LabProcess>,
    pub role: String,
}

impl Keepalived6 {
    pub fn start(lab: &Lab, k: usize, priority: u8) -> Self {
        let role = format!("lb{k}");
        let dir = lab.dir();
        let conf = dir.join(format!("{role}-keepalived6.conf"));
        let text = format!(
            "global_defs {{\n  router_id {role}\n  vrrp_version 3\n}}\nvrrp_instance VI6 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id {VRID}\n  priority {priority}\n  advert_int 0.1\n  version 3\n  native_ipv6\n  virtual_ipaddress {{\n    {VIP6}/64 dev eth0\n  }}\n}}\n"
        );
        std::fs::write(&conf, text).expect("write keepalived.conf");
        let process = super::vrrp::spawn_keepalived(lab, &role, &conf);
        Keepalived6 {
            process: Some(process),
            role,
        }
    }

    /// Whether keepalived put the VIP on its interface (it is master).
    pub fn holds_vip(&self, lab: &Lab) -> bool {
        lab.exec_ok(&self.role, &["ip", "-6", "addr", "show", "dev", "eth0"])
            .is_ok_and(|o| o.contains(&format!("{VIP6}/64")))
    }

    pub fn log(&self) -> String {
        self.process.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    /// A hard kill of the VRRP process: SIGKILL to the parent alone would
    /// make its VRRP child resign with a priority-0 advert (it dies with
    /// its parent by SIGTERM), and a killed child alone would be
    /// respawned. So the parent is stopped, the child killed, then the
    /// parent.
    pub fn kill_hard(&mut self, lab: &Lab) {
        let pid_file = lab.dir().join(format!("{}-vrrp.pid", self.role));
        let child: i32 = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(|| panic!("no VRRP pid in {}", pid_file.display()));
        let parent = self
            .process
            .as_ref()
            .and_then(|p| i32::try_from(p.pid()).ok())
            .expect("keepalived runs");
        for (pid, sig) in [
            (parent, libc::SIGSTOP),
            (child, libc::SIGKILL),
            (parent, libc::SIGKILL),
        ] {
            // SAFETY: signalling keepalived processes this test started.
            unsafe { libc::kill(pid, sig) };
        }
        self.process.take();
    }
}

/// tcpdump on the client's eth0 with `filter`, waiting until it listens.
pub fn sniff(lab: &Lab, args: &[&str]) -> LabProcess {
    let mut argv = vec!["tcpdump", "-l", "-n", "-e", "-tt", "-i", "eth0"];
    argv.extend_from_slice(args);
    let p = lab.spawn("client", &argv).expect("tcpdump");
    lab.wait_until("tcpdump listens", Duration::from_secs(5), || {
        p.log().contains("listening on")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", p.log()));
    p
}

/// IPv6 VRRP adverts on the client's segment.
pub fn sniff_adverts(lab: &Lab) -> LabProcess {
    sniff(lab, &["ip6 proto 112"])
}

/// Neighbor Advertisements on the client's segment, with their options.
pub fn sniff_nas(lab: &Lab) -> LabProcess {
    sniff(lab, &["-v", "icmp6 and ip6[40] == 136"])
}

/// One advert as tcpdump printed it.
#[derive(Clone, Debug)]
pub struct Advert {
    /// Seconds since the epoch.
    pub at: f64,
    pub mac: String,
    pub src: String,
    pub prio: u8,
}

/// Reads lines like `TS SRCMAC > DSTMAC, ethertype IPv6 (0x86dd), length
/// 74: SRC > ff02::12: VRRPv3, Advertisement, vrid 51, prio 150, …`.
pub fn adverts(sniff: &LabProcess) -> Vec<Advert> {
    sniff
        .log()
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let at = w.first()?.parse().ok()?;
            let mac = w.get(1)?.to_string();
            let len = w.iter().position(|t| *t == "length")?;
            let src = w.get(len + 2)?.to_string();
            let prio = w.iter().position(|t| *t == "prio")?;
            let prio = w.get(prio + 1)?.trim_end_matches(',').parse().ok()?;
            Some(Advert { at, mac, src, prio })
        })
        .collect()
}

/// How long after `old`'s last advert `new` sent its first one (non-zero
/// priority), in ms: the master-down interval as the wire shows it.
pub fn takeover_ms(sniff: &LabProcess, old: Ipv6Addr, new: Ipv6Addr) -> Option<u64> {
    let all = adverts(sniff);
    let (old, new) = (old.to_string(), new.to_string());
    let last_old = all.iter().rev().find(|a| a.src == old && a.prio > 0)?;
    let first_new = all
        .iter()
        .find(|a| a.src == new && a.prio > 0 && a.at > last_old.at)?;
    Some(((first_new.at - last_old.at) * 1000.0).round() as u64)
}

/// Waits until `new` advertises after `old` fell silent and returns the
/// takeover time; fails above `limit_ms`.
pub fn assert_takeover(
    lab: &VrrpLab,
    sniff: &LabProcess,
    what: &str,
    (old, new): (Ipv6Addr, Ipv6Addr),
    limit_ms: u64,
) -> u64 {
    lab.wait_until(what, Duration::from_secs(5), || {
        takeover_ms(sniff, old, new).is_some()
    })
    .unwrap_or_else(|e| panic!("{e}:\n{}", sniff.log()));
    // The new master's adverts must keep coming: it stayed master.
    std::thread::sleep(Duration::from_millis(300));
    let ms = takeover_ms(sniff, old, new).unwrap_or(u64::MAX);
    println!("takeover {what}: {ms} ms (limit {limit_ms} ms)");
    assert!(ms <= limit_ms, "{what}: {ms} ms, limit {limit_ms} ms");
    ms
}

/// Whether an unsolicited advertisement for the VIP came from the IPv6
/// virtual MAC to all nodes with a good checksum, Override set, Solicited
/// clear, and the virtual MAC as target link-layer address (option 2,
/// which `tcpdump -v` prints on the next line).
pub fn saw_vip_na(sniff: &LabProcess) -> bool {
    let log = sniff.log();
    let lines: Vec<&str> = log.lines().collect();
    lines.windows(2).any(|w| {
        w[0].contains(&format!("{VMAC6} > 33:33:00:00:00:01"))
            && w[0].contains("> ff02::1:")
            && w[0].contains("sum ok")
            && w[0].contains(&format!("tgt is {VIP6},"))
            && w[0].contains("override")
            && !w[0].contains("solicited")
            && w[1].contains("link-address option (2)")
            && w[1].trim_end().ends_with(VMAC6)
    })
}

/// Sends hostile IPv6 adverts from the client: `kind` is hop254, global,
/// checksum or v2; `count` of each.
pub fn hostile6(lab: &Lab, kind: &str, count: u32) {
    let mac = super::mac_of(lab, "client", "eth0").expect("client MAC");
    super::python(
        lab,
        "client",
        HOSTILE6,
        &[kind, &mac, VIP6, &count.to_string()],
    )
    .unwrap_or_else(|e| panic!("scapy sends {kind} adverts: {e}"));
}

/// argv: KIND SRCMAC VIP COUNT. Sends COUNT IPv6 adverts for vrid 51 at
/// priority 254 (any of them accepted would make the sender master) that
/// are wrong in one way: `hop254` hop limit 254, `global` from a global
/// address, `checksum` a bad checksum, `v2` VRRPv2 over IPv6.
const HOSTILE6: &str = r#"
import socket, struct, sys
from scapy.all import Ether, IPv6, Raw, sendp
kind, mac, vip, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
src = "2001:db8::99" if kind == "global" else "fe80::99"
dst = "ff02::12"
addr = socket.inet_pton(socket.AF_INET6, vip)
def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
if kind == "v2":
    body = bytes([0x21, 51, 254, 1, 0, 1, 0, 0]) + addr + bytes(8)
else:
    body = bytes([0x31, 51, 254, 1, 0, 10, 0, 0]) + addr
pseudo = (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
          + struct.pack("!I", len(body)) + bytes([0, 0, 0, 112]))
ck = csum(pseudo + body)
if kind == "checksum":
    ck ^= 0x5a5a
body = body[:6] + struct.pack("!H", ck) + body[8:]
hlim = 254 if kind == "hop254" else 255
frame = Ether(src=mac, dst="33:33:00:00:00:12") / IPv6(src=src, dst=dst, hlim=hlim, nh=112) / Raw(body)
sendp(frame, iface="eth0", count=count, verbose=False)
print("sent", count, kind)
"#;
