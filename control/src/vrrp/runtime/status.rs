//! What the control socket sees of a running instance: its live status,
//! its counters and transitions, and the operator hold.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ::vrrp::{AddressFamily, InstanceStats, State, Version};
use tokio::sync::watch;

/// One state change, for the control socket.
#[derive(Clone, Debug)]
pub struct TransitionRecord {
    pub at: SystemTime,
    pub from: State,
    pub to: State,
    pub priority: u8,
    pub reason: &'static str,
}

/// What the shell itself counted, next to the core's [`InstanceStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShellStats {
    /// Packets whose IP header could not be read.
    pub malformed_ip: u64,
    pub send_errors: u64,
    pub receive_errors: u64,
    pub garps_sent: u64,
    pub notify_runs: u64,
    /// State changes since start.
    pub transitions: u64,
}

/// The live view of one instance, shared with the control socket.
#[derive(Clone, Debug)]
pub struct Status {
    pub name: String,
    pub vrid: u8,
    pub version: Version,
    pub interface: String,
    /// The advert source: an IPv4 address or the link-local IPv6 one.
    pub primary: IpAddr,
    pub family: AddressFamily,
    pub vips: Vec<IpAddr>,
    pub base_priority: u8,
    pub state: State,
    pub priority: u8,
    /// Sum of the active tracking weights, and whether tracking is in fault.
    pub weight_sum: i32,
    pub fault: bool,
    pub stats: InstanceStats,
    pub shell: ShellStats,
    /// Newest last, at most [`super::TRANSITIONS_KEPT`].
    pub transitions: VecDeque<TransitionRecord>,
    /// Held down by the operator (`vipctl vrrp handover`).
    pub held: bool,
    /// The last operator handover, while or since held.
    pub handover: Option<Handover>,
}

/// An operator handover as the shell observed it.
#[derive(Clone, Debug)]
pub struct Handover {
    /// When the hold reached the instance.
    pub since: Instant,
    /// The first peer whose (non-zero priority) advert arrived after the
    /// step-down, and how long after it.
    pub new_master: Option<(IpAddr, Duration)>,
}

pub type SharedStatus = Arc<Mutex<Status>>;

/// What the control socket keeps of a running instance: its status, and the
/// operator hold it can set.
#[derive(Clone, Debug)]
pub struct InstanceControl {
    pub status: SharedStatus,
    pub(super) hold: Arc<watch::Sender<bool>>,
}

impl InstanceControl {
    /// Holds the instance down or releases it ([`::vrrp::Input::Hold`]); returns
    /// whether the hold was set before.
    pub(crate) fn set_hold(&self, on: bool) -> bool {
        self.hold.send_replace(on)
    }
}
