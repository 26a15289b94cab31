//! Tests of the VRRP core, driven with a fake clock: every instant is an
//! offset from one base `Instant` taken at the start of a test.

mod instance;
mod interop;
mod packet;
mod sim;
mod validation;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::vrrp::{encode, Advert, Version};

/// Ones'-complement checksum written independently of the codec: sum the
/// bytes as big-endian pairs into a wide integer, fold carries, invert.
pub(super) fn ones_complement(bytes: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let hi = u64::from(bytes[i]) << 8;
        let lo = bytes.get(i + 1).map_or(0, |b| u64::from(*b));
        sum += hi | lo;
        i += 2;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Rewrites the checksum of an IPv4 v3 message sent from `src` to `dst`.
pub(super) fn fix_v3_checksum(msg: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
    msg[6] = 0;
    msg[7] = 0;
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 112, 0, msg.len() as u8]);
    pseudo.extend_from_slice(msg);
    let sum = ones_complement(&pseudo);
    msg[6..8].copy_from_slice(&sum.to_be_bytes());
}

pub(super) fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

pub(super) const MCAST: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
pub(super) const VRID: u8 = 51;

pub(super) fn vips() -> Vec<IpAddr> {
    vec![IpAddr::V4(Ipv4Addr::new(10, 123, 0, 50))]
}

/// An advert as a peer of our test instances would send it.
pub(super) fn peer_advert(version: Version, priority: u8, interval: Duration) -> Advert {
    Advert {
        version,
        vrid: VRID,
        priority,
        interval,
        addresses: vips(),
        auth: None,
    }
}

pub(super) fn wire(adv: &Advert, src: IpAddr) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let n = encode(&mut buf, adv, src, MCAST).expect("test advert encodes");
    buf.truncate(n);
    buf
}

/// Master_Down_Interval computed from the RFC formulas in whole nanoseconds.
pub(super) fn expected_mdi(version: Version, interval: Duration, priority: u8) -> Duration {
    let i = interval.as_nanos();
    let skew_base = match version {
        Version::V2 => 1_000_000_000,
        Version::V3 => i,
    };
    let skew = skew_base * (256 - u128::from(priority)) / 256;
    Duration::from_nanos((3 * i + skew) as u64)
}

/// One instance on a fake clock.
pub(super) struct H {
    pub inst: crate::vrrp::Instance,
    pub t0: std::time::Instant,
    pub now: std::time::Instant,
}

impl H {
    pub fn new(cfg: crate::vrrp::InstanceConfig, primary: IpAddr) -> H {
        let t0 = std::time::Instant::now();
        H {
            inst: crate::vrrp::Instance::new(cfg, primary).expect("valid test config"),
            t0,
            now: t0,
        }
    }

    /// Moves the clock to `t0 + offset`.
    pub fn at(&mut self, offset: Duration) -> &mut H {
        self.now = self.t0 + offset;
        self
    }

    pub fn ev(&mut self, ev: crate::vrrp::Event<'_>) -> Vec<crate::vrrp::Action> {
        let mut out = Vec::new();
        self.inst.handle(ev, self.now, &mut out);
        out
    }

    pub fn recv(&mut self, src: IpAddr, packet: &[u8]) -> Vec<crate::vrrp::Action> {
        self.recv_ttl(src, 255, packet)
    }

    pub fn recv_ttl(&mut self, src: IpAddr, ttl: u8, packet: &[u8]) -> Vec<crate::vrrp::Action> {
        self.ev(crate::vrrp::Event::AdvertReceived {
            src,
            dst: MCAST,
            ttl,
            packet,
        })
    }

    /// Time since t0 of the next timeout.
    pub fn next(&self) -> Option<Duration> {
        self.inst.next_timeout().map(|t| t - self.t0)
    }
}
