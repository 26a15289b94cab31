//! Tests of the VRRP core, driven with a fake clock: every instant is an
//! offset from one base `Instant` taken at the start of a test.

mod instance;
mod instance_v6;
mod interop;
mod packet;
mod packet_v6;
mod seeds;
mod sim;
mod validation;
mod validation_v6;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::{
    encode, Advert, Datagram, Input, Instance, InstanceConfig, Output, TimerKind, Version,
    IPPROTO_VRRP, MULTICAST_V6,
};

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

/// Applies the timer outputs of one call to `timer`, the instance's one
/// armed timer, and returns the other outputs.
pub(super) fn track_timer(
    timer: &mut Option<(TimerKind, Instant)>,
    out: Vec<Output>,
) -> Vec<Output> {
    out.into_iter()
        .filter(|o| match *o {
            Output::SetTimer(kind, Some(at)) => {
                *timer = Some((kind, at));
                false
            }
            Output::SetTimer(kind, None) => {
                if timer.is_some_and(|(armed, _)| armed == kind) {
                    *timer = None;
                }
                false
            }
            _ => true,
        })
        .collect()
}

/// A link-local address, fe80::`last`.
pub(super) fn ll(last: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, last))
}

pub(super) const MCAST6: IpAddr = IpAddr::V6(MULTICAST_V6);

pub(super) fn vips6() -> Vec<IpAddr> {
    vec![IpAddr::V6(Ipv6Addr::new(
        0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50,
    ))]
}

/// An IPv6 advert as a peer of our IPv6 test instances would send it.
pub(super) fn peer_advert6(priority: u8, interval: Duration) -> Advert {
    Advert {
        addresses: vips6(),
        ..peer_advert(Version::V3, priority, interval)
    }
}

pub(super) fn wire6(adv: &Advert, src: IpAddr) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let n = encode(&mut buf, adv, src, MCAST6).expect("test advert encodes");
    buf.truncate(n);
    buf
}

/// The datagram of an IPv6 advert sent to ff02::12.
pub(super) fn datagram6(src: IpAddr, hop_limit: u8, payload: &[u8]) -> Input<'_> {
    Input::Received(Datagram {
        src,
        dst: MCAST6,
        ttl: hop_limit,
        protocol: IPPROTO_VRRP,
        payload,
    })
}

/// The datagram of an advert as the shell passes it in.
pub(super) fn datagram(src: IpAddr, ttl: u8, payload: &[u8]) -> Input<'_> {
    Input::Received(Datagram {
        src,
        dst: MCAST,
        ttl,
        protocol: IPPROTO_VRRP,
        payload,
    })
}

/// One instance on a fake clock; the timer it armed is tracked from its
/// outputs.
pub(super) struct H {
    pub inst: Instance,
    pub t0: Instant,
    pub now: Instant,
    pub timer: Option<(TimerKind, Instant)>,
}

impl H {
    pub fn new(cfg: InstanceConfig, primary: IpAddr) -> H {
        let t0 = Instant::now();
        H {
            inst: Instance::new(cfg, primary).expect("valid test config"),
            t0,
            now: t0,
            timer: None,
        }
    }

    /// Moves the clock to `t0 + offset`.
    pub fn at(&mut self, offset: Duration) -> &mut H {
        self.now = self.t0 + offset;
        self
    }

    /// Feeds one input; returns its outputs except the timer ones, which
    /// update `timer`.
    pub fn ev(&mut self, input: Input<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        self.inst.handle(input, self.now, &mut out);
        track_timer(&mut self.timer, out)
    }

    /// Fires the armed timer, or every kind when none is armed (which the
    /// instance must ignore).
    pub fn fire(&mut self) -> Vec<Output> {
        match self.timer {
            Some((kind, _)) => self.ev(Input::Timer(kind)),
            None => [TimerKind::Advert, TimerKind::MasterDown]
                .into_iter()
                .flat_map(|kind| self.ev(Input::Timer(kind)))
                .collect(),
        }
    }

    pub fn recv(&mut self, src: IpAddr, packet: &[u8]) -> Vec<Output> {
        self.ev(datagram(src, 255, packet))
    }

    /// Receives an IPv6 advert sent to ff02::12 with hop limit 255.
    pub fn recv6(&mut self, src: IpAddr, packet: &[u8]) -> Vec<Output> {
        self.ev(datagram6(src, 255, packet))
    }

    /// Time since t0 of the armed timer's deadline.
    pub fn next(&self) -> Option<Duration> {
        self.timer.map(|(_, t)| t - self.t0)
    }
}
