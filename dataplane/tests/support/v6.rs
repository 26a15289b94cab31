//! IPv6 frames and snapshots for the tests of the IPv6 path, built with
//! etherparse.

use std::net::Ipv6Addr;

use super::*;
use etherparse::VlanId;

pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 2);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 0x101);
pub const SNAT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 1, 0, 0, 0, 0x200);
pub const PORT0_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, 1);
pub const PORT1_IP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x77, 1, 0, 0, 0, 1);

pub fn backend_ip6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0x77, 1, 0, 0, 0, 0x101 + i as u16)
}

/// [`snapshot`] with the service on VIP6 and IPv6 backends (same MACs).
pub fn snapshot6(forward: ForwardMode, scheduler: SchedulerKind, weights: &[u32]) -> Snapshot {
    let mut snap = snapshot(forward, scheduler, weights);
    let svc = &mut snap.services[0];
    svc.vip = VIP6.into();
    for (i, b) in svc.backends.iter_mut().enumerate() {
        b.ip = backend_ip6(i).into();
    }
    if forward == ForwardMode::FullNat {
        svc.snat = vec![SNAT6.into()];
    }
    snap.ports[0].ipv6 = vec![PORT0_IP6];
    snap.ports[1].ipv6 = vec![PORT1_IP6];
    snap.locals6 = snap
        .locals
        .drain()
        .map(|(a, l)| {
            let v6 = if a == VIP.to_bits() { VIP6 } else { SNAT6 };
            (v6.octets(), l)
        })
        .collect();
    snap.index();
    snap
}

/// Backend ids of the IPv6 service in [`dual_stack`] start here, so both
/// services' backends can be told apart.
pub const BACKEND6_IDS: u32 = 100;

/// [`snapshot`]'s IPv4 service `web` and [`snapshot6`]'s IPv6 service
/// `web6` (backend ids after [`BACKEND6_IDS`]) on one node.
pub fn dual_stack(forward: ForwardMode, scheduler: SchedulerKind, weights: &[u32]) -> Snapshot {
    let mut snap = snapshot(forward, scheduler, weights);
    let mut six = snapshot6(forward, scheduler, weights);
    let mut svc = six.services.remove(0);
    svc.name = "web6".into();
    for w in &mut svc.weights {
        w.id += BACKEND6_IDS;
    }
    if svc.maglev.is_some() {
        svc.maglev = Some(Arc::new(
            MaglevTable::build(&svc.weights, 65537).expect("maglev"),
        ));
    }
    snap.services.push(svc);
    for (port, port6) in snap.ports.iter_mut().zip(six.ports) {
        port.ipv6 = port6.ipv6;
    }
    snap.locals6 = six.locals6;
    snap.index();
    snap
}

/// An Ethernet (optionally 802.1Q-tagged) IPv6 TCP segment.
#[allow(clippy::too_many_arguments)]
pub fn tcp6(
    macs: ([u8; 6], [u8; 6]),
    vlan: Option<u16>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(macs.0, macs.1);
    let ip = match vlan {
        Some(v) => eth.single_vlan(VlanId::try_new(v).expect("vlan id")).ipv6(
            src.octets(),
            dst.octets(),
            64,
        ),
        None => eth.ipv6(src.octets(), dst.octets(), 64),
    };
    super::tcp_frame(ip.tcp(sport, dport, 1000, 65535), flags, payload)
}

/// An Ethernet IPv6 UDP datagram.
pub fn udp6(
    macs: ([u8; 6], [u8; 6]),
    src: Ipv6Addr,
    dst: Ipv6Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv6(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).expect("build udp frame");
    out
}

/// An Ethernet IPv6 ICMPv6 message of `msg_type`/`code` with bytes 5 to 8
/// `word` and body `body`, from `src` to `dst` with `hops`.
#[allow(clippy::too_many_arguments)]
pub fn icmp6(
    macs: ([u8; 6], [u8; 6]),
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hops: u8,
    msg_type: u8,
    code: u8,
    word: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv6(src.octets(), dst.octets(), hops)
        .icmpv6_raw(msg_type, code, word);
    let mut out = Vec::with_capacity(b.size(body.len()));
    b.write(&mut out, body).expect("build icmpv6 frame");
    out
}

/// A Neighbor Solicitation for `target` from `src` (with a source
/// link-layer option unless `src` is unspecified) to the target's
/// solicited-node group.
pub fn neighbor_solicitation(src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let t = target.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(t[13]),
        u16::from_be_bytes([t[14], t[15]]),
    );
    let mut body = t.to_vec();
    if !src.is_unspecified() {
        body.extend_from_slice(&[1, 1]);
        body.extend_from_slice(&CLIENT_MAC);
    }
    let dst_mac = [0x33, 0x33, 0xff, t[13], t[14], t[15]];
    icmp6(
        (CLIENT_MAC, dst_mac),
        src,
        group,
        255,
        135,
        0,
        [0; 4],
        &body,
    )
}

/// Like [`make_partial`], for an untagged IPv6 frame.
pub fn make_partial6(frame: &mut [u8]) {
    let proto = frame[14 + 6];
    let l4_len = u32::from(u16::from_be_bytes([frame[14 + 4], frame[14 + 5]]));
    let mut sum: u32 = 0;
    for at in (14 + 8..14 + 40).step_by(2) {
        sum += u32::from(u16::from_be_bytes([frame[at], frame[at + 1]]));
    }
    sum += u32::from(proto) + l4_len;
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let at = 14 + 40 + if proto == 6 { 16 } else { 6 };
    frame[at..at + 2].copy_from_slice(&(sum as u16).to_be_bytes());
}
