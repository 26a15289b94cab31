//! What goes into an instance and what comes out.

use std::fmt;
use std::net::IpAddr;
use std::time::Instant;

/// State of a virtual router instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or shut down.
    Initialize,
    Backup,
    Master,
    /// A tracked interface or script failed: no adverts, no VIPs.
    Fault,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "initialize",
            State::Backup => "backup",
            State::Master => "master",
            State::Fault => "fault",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The instance's timers; at most one is armed at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerKind {
    /// Master: the next advert is due (RFC 5798 Adver_Timer).
    Advert,
    /// Backup: no master has advertised for the master-down interval
    /// (Master_Down_Timer), or a resigned master's skew time ran out.
    MasterDown,
}

/// A received IP datagram as the shell read it off the wire: the header
/// fields the checks need and the IP payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub src: IpAddr,
    /// Feeds the v3 checksum's pseudo-header.
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// IP protocol (IPv4) or next header (IPv6).
    pub protocol: u8,
    pub payload: &'a [u8],
}

/// Something that happened to the instance.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    Start,
    Stop,
    /// An IP datagram arrived on the instance's VRRP socket.
    Received(Datagram<'a>),
    /// A timer armed by [`Output::SetTimer`] fired; pass a `now` at or after
    /// its deadline. Firings of a cancelled or replaced timer are ignored.
    Timer(TimerKind),
    /// Tracked interfaces or scripts changed: the sum of the weights of the
    /// failing ones (negative lowers priority), and whether one that has no
    /// weight failed, which puts the instance in Fault.
    Track {
        weight_sum: i32,
        fault: bool,
    },
    /// The operator holds the instance down (`true`): a master resigns with
    /// a priority-0 advert and becomes backup, and a held backup does not
    /// preempt, so a peer keeps mastership. A held backup still takes over
    /// when no master advertises at all, so the VIPs are never left unowned.
    /// `false` releases the hold; preemption then works as configured.
    Hold(bool),
}

/// Why a received datagram was not processed. Each reason has its counter
/// in [`crate::InstanceStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// The IP protocol is not VRRP.
    NotVrrp,
    /// The datagram's source or destination is not of the instance's
    /// address family.
    Family,
    /// TTL / hop limit was not 255: the advert crossed a router.
    Ttl,
    /// IPv6: the source is not link-local (fe80::/10).
    Source,
    /// IPv6: the destination is neither ff02::12 nor, with unicast peers,
    /// our own address.
    Destination,
    /// Priority 255 (address owner) from a source that is none of our VIPs.
    FalseOwner,
    /// Version field unsupported or not the instance's version.
    Version,
    /// Type field was not ADVERTISEMENT.
    Type,
    /// Shorter than its header, addresses and authentication data.
    Truncated,
    /// IPv6: longer than its header and addresses.
    Length,
    /// A VRRPv2 advert over IPv6, which v2 cannot carry.
    V2OverIpv6,
    Checksum,
    /// A valid advert for another virtual router on the same link.
    OtherVrid,
    /// Our own advert came back (multicast loopback).
    OwnAdvert,
    /// The sender is not among the configured unicast peers.
    UnknownPeer,
    /// v2 authentication type or password differs from ours.
    Auth,
    /// v2: interval differs from ours; v3: interval of zero.
    Interval,
    /// v2: the address list differs from our VIPs (and the sender is not
    /// the owner).
    Addresses,
}

/// What the shell must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Arm (`Some`) or cancel (`None`) a one-shot timer, replacing any
    /// earlier deadline of that kind; on expiry feed [`Input::Timer`].
    SetTimer(TimerKind, Option<Instant>),
    /// Encode [`crate::Instance::advert`] with this priority and send it with
    /// TTL 255 to the multicast group, or to every unicast peer (encode once
    /// per destination: the v3 checksum covers it).
    /// [`crate::Instance::advert_headers`] and
    /// [`crate::Instance::encode_advert`] do both, for either family.
    SendAdvert { priority: u8 },
    /// Entered Master: take the VIPs (answer ARP / ND for them with the
    /// virtual MAC). Gratuitous ARP is asked for separately.
    BecomeMaster,
    /// Entered Backup: do not hold the VIPs (release them if held).
    BecomeBackup,
    /// Entered Fault: do not hold the VIPs (release them if held).
    EnterFault,
    /// Shut down to Initialize: do not hold the VIPs (release them if held).
    Stopped,
    /// Announce the VIPs with the virtual MAC: gratuitous ARP for IPv4,
    /// unsolicited neighbour advertisements for IPv6, as
    /// [`crate::Instance::announcement`] says. The name predates IPv6 and is
    /// kept so existing shells still match it.
    SendGratuitousArp,
    /// The state changed; for logs, notifications and metrics.
    Transition {
        from: State,
        to: State,
        priority: u8,
        reason: &'static str,
    },
    /// An advert from `src` passed the checks and reached the state machine.
    Accepted { src: IpAddr, priority: u8 },
    /// A datagram from `src` was dropped, counted under `reason`.
    Rejected { src: IpAddr, reason: Rejection },
}
