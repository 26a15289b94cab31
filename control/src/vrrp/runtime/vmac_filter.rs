//! The virtual MAC in the interface's unicast address filter, so that
//! frames addressed to it are accepted while the instance runs. This is the
//! kernel path of `bridge fdb add VMAC dev IF self permanent`: an
//! RTM_NEWNEIGH for family AF_BRIDGE with NTF_SELF, which a driver without
//! its own FDB turns into a secondary unicast address. Removed again
//! (RTM_DELNEIGH) when the instance stops. vipd never asks for promiscuous
//! mode itself; a driver with no unicast filter at all makes the kernel
//! fall back to it, which is logged.

use std::io::{self, Read};
use std::time::Duration;

use log::{info, warn};
use socket2::{Domain, Protocol, Socket, Type};

const NLMSG_HDR_LEN: usize = 16;
const NDMSG_LEN: usize = 12;
/// nlattr header (4) + MAC (6), padded to 4 bytes.
const LLADDR_ATTR_LEN: usize = 12;
pub(crate) const MSG_LEN: usize = NLMSG_HDR_LEN + NDMSG_LEN + LLADDR_ATTR_LEN;
const NLMSG_ERROR: u16 = 2;
const NDA_LLADDR: u16 = 2;
const IFF_PROMISC: u32 = 0x100;
/// How long the kernel gets to acknowledge.
const ACK_WAIT: Duration = Duration::from_secs(1);

/// Builds the RTM_NEWNEIGH (`add`) or RTM_DELNEIGH request for `mac` on
/// `ifindex`, asking for an acknowledgement.
pub(crate) fn request(add: bool, ifindex: u32, mac: [u8; 6], seq: u32) -> [u8; MSG_LEN] {
    let (kind, flags) = if add {
        (libc::RTM_NEWNEIGH, libc::NLM_F_CREATE | libc::NLM_F_EXCL)
    } else {
        (libc::RTM_DELNEIGH, 0)
    };
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK | flags) as u16;
    let mut m = [0u8; MSG_LEN];
    let fields: [(usize, &[u8]); 10] = [
        (0, &(MSG_LEN as u32).to_ne_bytes()),
        (4, &kind.to_ne_bytes()),
        (6, &flags.to_ne_bytes()),
        (8, &seq.to_ne_bytes()),
        // ndmsg: family, padding, ifindex, state, flags, type.
        (16, &[libc::AF_BRIDGE as u8]),
        (20, &ifindex.to_ne_bytes()),
        (24, &libc::NUD_PERMANENT.to_ne_bytes()),
        (26, &[libc::NTF_SELF]),
        (
            28,
            &[
                (4 + 6) as u8,
                0,
                NDA_LLADDR.to_ne_bytes()[0],
                NDA_LLADDR.to_ne_bytes()[1],
            ],
        ),
        (32, &mac),
    ];
    for (at, bytes) in fields {
        if let Some(dst) = m.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
    m
}

/// The errno of a netlink acknowledgement for `seq` (0 for success);
/// `None` if `reply` is not one.
pub(crate) fn ack_errno(reply: &[u8], seq: u32) -> Option<i32> {
    let word = |at: usize| -> Option<[u8; 4]> { reply.get(at..at + 4)?.try_into().ok() };
    let kind = u16::from_ne_bytes(reply.get(4..6)?.try_into().ok()?);
    if kind != NLMSG_ERROR || u32::from_ne_bytes(word(8)?) != seq {
        return None;
    }
    Some(-i32::from_ne_bytes(word(NLMSG_HDR_LEN)?))
}

/// Sends one request to the kernel and waits for its acknowledgement.
fn transact(msg: &[u8], seq: u32) -> io::Result<()> {
    let sock = Socket::new(
        Domain::from(libc::AF_NETLINK),
        Type::RAW,
        Some(Protocol::from(libc::NETLINK_ROUTE)),
    )?;
    sock.set_read_timeout(Some(ACK_WAIT))?;
    // Unbound and unconnected, a netlink socket sends to the kernel.
    sock.send(msg)?;
    let mut reply = [0u8; 512];
    let n = (&sock).read(&mut reply)?;
    match reply.get(..n).and_then(|r| ack_errno(r, seq)) {
        Some(0) => Ok(()),
        Some(errno) => Err(io::Error::from_raw_os_error(errno)),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected netlink reply",
        )),
    }
}

fn promiscuous(interface: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{interface}/flags"))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|f| f & IFF_PROMISC != 0)
}

fn mac_text(mac: [u8; 6]) -> String {
    wire::MacAddr(mac).to_string()
}

/// The virtual MAC held in an interface's unicast filter; dropping it
/// takes the address out again.
pub(crate) struct VmacFilter {
    instance: String,
    interface: String,
    ifindex: u32,
    mac: [u8; 6],
}

impl VmacFilter {
    /// Adds `mac` to `interface`'s unicast filter. Failure is logged, not
    /// fatal: frames to the virtual MAC may then not arrive, but adverts
    /// and the VIPs' traffic through the dataplane can still work.
    pub(crate) fn add(instance: &str, interface: &str, ifindex: u32, mac: [u8; 6]) -> Option<Self> {
        let was_promisc = promiscuous(interface);
        let filter = VmacFilter {
            instance: instance.to_string(),
            interface: interface.to_string(),
            ifindex,
            mac,
        };
        match transact(&request(true, ifindex, mac, 1), 1) {
            Ok(()) => {}
            // Left behind by a vipd that was killed, or added by hand:
            // ours now, removed at stop like our own.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => info!(
                "VRRP instance {instance}: virtual MAC {} already in {interface}'s unicast filter; taking it over",
                mac_text(mac)
            ),
            Err(e) => {
                warn!(
                    "VRRP instance {instance}: adding virtual MAC {} to {interface}'s unicast filter failed: {e}; frames to the virtual MAC may be dropped by the NIC. Check that the driver supports secondary unicast addresses (`bridge fdb add {} dev {interface} self permanent` should work), or put {interface} in promiscuous mode",
                    mac_text(mac),
                    mac_text(mac)
                );
                return None;
            }
        }
        if !was_promisc && promiscuous(interface) {
            warn!(
                "VRRP instance {instance}: {interface} has no unicast address filter, so the kernel put it in promiscuous mode to accept virtual MAC {}; it leaves it when the instance stops",
                mac_text(mac)
            );
        }
        Some(filter)
    }
}

impl Drop for VmacFilter {
    fn drop(&mut self) {
        if let Err(e) = transact(&request(false, self.ifindex, self.mac, 2), 2) {
            warn!(
                "VRRP instance {}: removing virtual MAC {} from {}'s unicast filter failed: {e}; remove it with `bridge fdb del {} dev {} self`",
                self.instance,
                mac_text(self.mac),
                self.interface,
                mac_text(self.mac),
                self.interface
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_mac_the_interface_and_the_bridge_family() {
        let mac = [0, 0, 0x5e, 0, 1, 51];
        let add = request(true, 7, mac, 9);
        assert_eq!(u32::from_ne_bytes(add[0..4].try_into().unwrap()), 40);
        assert_eq!(u16::from_ne_bytes([add[4], add[5]]), libc::RTM_NEWNEIGH);
        let flags = u16::from_ne_bytes([add[6], add[7]]);
        for f in [libc::NLM_F_REQUEST, libc::NLM_F_ACK, libc::NLM_F_CREATE] {
            assert_ne!(flags & f as u16, 0, "flag {f:#x}");
        }
        assert_eq!(u32::from_ne_bytes(add[8..12].try_into().unwrap()), 9);
        assert_eq!(i32::from(add[16]), libc::AF_BRIDGE);
        assert_eq!(u32::from_ne_bytes(add[20..24].try_into().unwrap()), 7);
        assert_eq!(u16::from_ne_bytes([add[24], add[25]]), libc::NUD_PERMANENT);
        assert_eq!(add[26], libc::NTF_SELF);
        assert_eq!(u16::from_ne_bytes([add[28], add[29]]), 10, "attr length");
        assert_eq!(u16::from_ne_bytes([add[30], add[31]]), NDA_LLADDR);
        assert_eq!(&add[32..38], &mac);

        let del = request(false, 7, mac, 10);
        assert_eq!(u16::from_ne_bytes([del[4], del[5]]), libc::RTM_DELNEIGH);
        assert_eq!(
            u16::from_ne_bytes([del[6], del[7]]) & libc::NLM_F_CREATE as u16,
            0
        );
        assert_eq!(&del[16..], &add[16..]);
    }

    #[test]
    fn acknowledgements_are_read_and_others_refused() {
        let mut ack = [0u8; 36];
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        ack[8..12].copy_from_slice(&5u32.to_ne_bytes());
        ack[16..20].copy_from_slice(&(-libc::EEXIST).to_ne_bytes());
        assert_eq!(ack_errno(&ack, 5), Some(libc::EEXIST));
        assert_eq!(ack_errno(&ack, 6), None, "other sequence");
        ack[16..20].copy_from_slice(&0i32.to_ne_bytes());
        assert_eq!(ack_errno(&ack, 5), Some(0));
        assert_eq!(ack_errno(&ack[..18], 5), None, "truncated");
        ack[4] = 3;
        assert_eq!(ack_errno(&ack, 5), None, "not an ack");
    }
}
