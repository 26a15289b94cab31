//! The virtual router state machine of RFC 5798 §6.4 (RFC 3768 §6.4 for v2),
//! plus keepalived's Fault state, preempt delay and tracking weights.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::config::InstanceConfig;
use super::error::VrrpError;
use super::packet::{AddressFamily, Advert, Version, PRIORITY_OWNER, PRIORITY_STOP};
use super::stats::InstanceStats;

mod validate;

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

/// Something that happened to the instance.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    Startup,
    Shutdown,
    /// A VRRP message arrived. `packet` is the IP payload; `src`, `dst` and
    /// `ttl` come from its IP header (`dst` feeds the v3 checksum).
    AdvertReceived {
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        packet: &'a [u8],
    },
    /// The instant returned by [`Instance::next_timeout`] has passed. Early
    /// or spurious calls are ignored.
    TimerFired,
    /// Tracked interfaces or scripts changed: the sum of the weights of the
    /// failing ones (negative lowers priority), and whether one that has no
    /// weight failed, which puts the instance in Fault.
    TrackChanged {
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

/// What the shell must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Encode [`Instance::advert`] with this priority and send it with TTL
    /// 255 to the multicast group, or to every unicast peer (encode once per
    /// destination: the v3 checksum covers it).
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
    /// unsolicited neighbour advertisements for IPv6.
    SendGratuitousArp,
    /// The state changed; for logs, notifications and metrics.
    Transition {
        from: State,
        to: State,
        priority: u8,
        reason: &'static str,
    },
}

const NO_ADVERTS: &str = "no advert from a master within the master-down interval";

/// Effective priority: the base plus the tracking weights, kept within
/// 1..=254 so tracking can neither make us the owner nor a stopping master;
/// an owner (255) stays 255.
pub fn effective_priority(base: u8, weight_sum: i32) -> u8 {
    if base == PRIORITY_OWNER {
        return PRIORITY_OWNER;
    }
    let p = (i64::from(base) + i64::from(weight_sum)).clamp(1, 254);
    u8::try_from(p).unwrap_or(1)
}

/// One virtual router. See the module documentation of `vrrp` for the
/// events-in, actions-out contract.
#[derive(Debug)]
pub struct Instance {
    cfg: InstanceConfig,
    af: AddressFamily,
    primary_ip: IpAddr,
    state: State,
    priority: u8,
    fault: bool,
    /// Held down by the operator: see [`Event::Hold`].
    held: bool,
    /// The interval the current master advertises (v3 learns it).
    master_adver_interval: Duration,
    /// Master: Adver_Timer. Backup: Master_Down_Timer. Otherwise unarmed.
    timer: Option<Instant>,
    /// Backup with preempt: a lower-priority master is tolerated until then.
    preempt_at: Option<Instant>,
    /// Backup: why the master-down timer will make us master, for the log.
    takeover_reason: &'static str,
    stats: InstanceStats,
}

impl Instance {
    /// A stopped instance; `primary_ip` is this node's address on the
    /// interface, the source of its adverts and its tie-breaker.
    pub fn new(cfg: InstanceConfig, primary_ip: IpAddr) -> Result<Self, VrrpError> {
        let af = cfg.validate(primary_ip)?;
        Ok(Instance {
            af,
            primary_ip,
            state: State::Initialize,
            priority: cfg.priority,
            fault: false,
            held: false,
            master_adver_interval: cfg.advert_interval,
            timer: None,
            preempt_at: None,
            takeover_reason: NO_ADVERTS,
            stats: InstanceStats::default(),
            cfg,
        })
    }

    pub fn handle(&mut self, ev: Event<'_>, now: Instant, out: &mut Vec<Action>) {
        match ev {
            Event::Startup => {
                if self.state == State::Initialize {
                    self.start(now, "starting up", out);
                }
            }
            Event::Shutdown => self.shutdown(out),
            Event::AdvertReceived {
                src,
                dst,
                ttl,
                packet,
            } => self.on_packet(src, dst, ttl, packet, now, out),
            Event::TimerFired => self.on_timer(now, out),
            Event::TrackChanged { weight_sum, fault } => self.on_track(weight_sum, fault, now, out),
            Event::Hold(on) => self.on_hold(on, now, out),
        }
    }

    /// When the shell must deliver [`Event::TimerFired`] next.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timer
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Effective priority (base plus tracking weights).
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Whether the operator holds the instance down ([`Event::Hold`]).
    pub fn held(&self) -> bool {
        self.held
    }

    pub fn stats(&self) -> &InstanceStats {
        &self.stats
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    pub fn primary_ip(&self) -> IpAddr {
        self.primary_ip
    }

    pub fn address_family(&self) -> AddressFamily {
        self.af
    }

    /// The current master's advert interval (v3 learns it from the master).
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }

    /// RFC 5798: ((256 − priority) × Master_Adver_Interval) / 256;
    /// RFC 3768: (256 − priority) / 256 seconds.
    pub fn skew_time(&self) -> Duration {
        let base = match self.cfg.version {
            Version::V2 => Duration::from_secs(1),
            Version::V3 => self.master_adver_interval,
        };
        base * (256 - u32::from(self.priority)) / 256
    }

    /// 3 × Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_interval * 3 + self.skew_time()
    }

    /// The advert to send for [`Action::SendAdvert`].
    pub fn advert(&self, priority: u8) -> Advert {
        Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            interval: self.cfg.advert_interval,
            addresses: self.cfg.vips.clone(),
            auth: self.cfg.auth,
        }
    }

    /// Leaves Initialize or Fault the way RFC 5798 §6.4.1 starts up.
    fn start(&mut self, now: Instant, reason: &'static str, out: &mut Vec<Action>) {
        if self.fault {
            self.enter_fault("a tracked interface or script is down", out);
        } else if self.priority == PRIORITY_OWNER && !self.held {
            self.enter_master(now, "address owner (priority 255) starting", out);
        } else {
            self.enter_backup(now, self.cfg.advert_interval, reason, out);
        }
    }

    fn shutdown(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Initialize {
            return;
        }
        let from = self.state;
        self.transition(State::Initialize, "shutting down", out);
        if from == State::Master {
            self.send_advert(PRIORITY_STOP, out);
        }
        out.push(Action::Stopped);
    }

    fn enter_master(&mut self, now: Instant, reason: &'static str, out: &mut Vec<Action>) {
        self.transition(State::Master, reason, out);
        self.stats.became_master += 1;
        self.timer = Some(now + self.cfg.advert_interval);
        out.push(Action::BecomeMaster);
        self.send_advert(self.priority, out);
        out.push(Action::SendGratuitousArp);
    }

    fn enter_backup(
        &mut self,
        now: Instant,
        master_interval: Duration,
        reason: &'static str,
        out: &mut Vec<Action>,
    ) {
        self.transition(State::Backup, reason, out);
        self.master_adver_interval = master_interval;
        self.timer = Some(now + self.master_down_interval());
        self.takeover_reason = NO_ADVERTS;
        self.preempt_at = Some(now + self.cfg.preempt_delay);
        out.push(Action::BecomeBackup);
    }

    fn enter_fault(&mut self, reason: &'static str, out: &mut Vec<Action>) {
        let from = self.state;
        self.transition(State::Fault, reason, out);
        if from == State::Master {
            // As on shutdown: let a backup take over at skew time rather than
            // after a full master-down interval.
            self.send_advert(PRIORITY_STOP, out);
        }
        out.push(Action::EnterFault);
    }

    /// Records and reports a state change; leaving Master counts as a release.
    fn transition(&mut self, to: State, reason: &'static str, out: &mut Vec<Action>) {
        let from = self.state;
        if from == State::Master {
            self.stats.released_master += 1;
        }
        self.state = to;
        self.timer = None;
        self.preempt_at = None;
        info!(
            "VRRP instance {} (vrid {}, priority {}): {} -> {}: {}",
            self.cfg.name, self.cfg.vrid, self.priority, from, to, reason
        );
        out.push(Action::Transition {
            from,
            to,
            priority: self.priority,
            reason,
        });
    }

    fn send_advert(&mut self, priority: u8, out: &mut Vec<Action>) {
        self.stats.adverts_sent += 1;
        if priority == PRIORITY_STOP {
            self.stats.priority_zero_sent += 1;
        }
        out.push(Action::SendAdvert { priority });
    }

    fn on_timer(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.timer {
            Some(deadline) if now >= deadline => {}
            _ => return,
        }
        match self.state {
            State::Master => {
                self.send_advert(self.priority, out);
                self.timer = Some(now + self.cfg.advert_interval);
            }
            State::Backup => self.enter_master(now, self.takeover_reason, out),
            State::Initialize | State::Fault => self.timer = None,
        }
    }

    fn on_hold(&mut self, on: bool, now: Instant, out: &mut Vec<Action>) {
        if on == self.held {
            return;
        }
        self.held = on;
        if on && self.state == State::Master {
            // Resigning like a shutdown lets the peer take over at its skew
            // time instead of after a full master-down interval.
            self.send_advert(PRIORITY_STOP, out);
            self.enter_backup(
                now,
                self.cfg.advert_interval,
                "operator handover: stepping down",
                out,
            );
        } else if !on {
            info!(
                "VRRP instance {} (vrid {}): operator hold released; preemption works as configured again",
                self.cfg.name, self.cfg.vrid
            );
        }
    }

    fn on_track(&mut self, weight_sum: i32, fault: bool, now: Instant, out: &mut Vec<Action>) {
        let priority = effective_priority(self.cfg.priority, weight_sum);
        if priority != self.priority {
            info!(
                "VRRP instance {} (vrid {}): priority {} -> {} (tracking weights sum to {})",
                self.cfg.name, self.cfg.vrid, self.priority, priority, weight_sum
            );
            self.priority = priority;
        }
        if fault == self.fault {
            return;
        }
        self.fault = fault;
        match (fault, self.state) {
            (true, State::Backup | State::Master) => {
                self.enter_fault("a tracked interface or script went down", out)
            }
            (false, State::Fault) => {
                self.start(now, "tracked interfaces and scripts recovered", out)
            }
            _ => {}
        }
    }

    fn on_packet(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        packet: &[u8],
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(pkt) = self.validate(src, dst, ttl, packet) else {
            return;
        };
        let priority = pkt.priority();
        let interval = pkt.advert_interval();
        self.stats.adverts_received += 1;
        if priority == PRIORITY_STOP {
            self.stats.priority_zero_received += 1;
        }
        match self.state {
            State::Backup => self.backup_advert(src, priority, interval, now),
            State::Master => self.master_advert(src, priority, interval, now, out),
            State::Initialize | State::Fault => {}
        }
    }

    /// RFC 5798 §6.4.2, with keepalived's preempt delay.
    fn backup_advert(&mut self, src: IpAddr, priority: u8, interval: Duration, now: Instant) {
        if priority == PRIORITY_STOP {
            debug!(
                "VRRP instance {} (vrid {}): master {} resigned, taking over after the skew time",
                self.cfg.name, self.cfg.vrid, src
            );
            self.timer = Some(now + self.skew_time());
            self.takeover_reason = "the master resigned (priority 0 advert)";
            return;
        }
        let delayed = self.preempt_at.is_some_and(|at| now < at);
        if self.cfg.preempt && !self.held && priority < self.priority && !delayed {
            debug!(
                "VRRP instance {} (vrid {}): ignoring advert of lower-priority master {} ({} < {}) to preempt it",
                self.cfg.name, self.cfg.vrid, src, priority, self.priority
            );
            self.takeover_reason = "preempting a lower-priority master";
            return;
        }
        if self.cfg.version == Version::V3 {
            self.master_adver_interval = interval;
        }
        self.timer = Some(now + self.master_down_interval());
        self.takeover_reason = NO_ADVERTS;
    }

    /// RFC 5798 §6.4.3, plus re-announcing when another master is weaker.
    fn master_advert(
        &mut self,
        src: IpAddr,
        priority: u8,
        interval: Duration,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if priority == PRIORITY_STOP {
            self.send_advert(self.priority, out);
            self.timer = Some(now + self.cfg.advert_interval);
            return;
        }
        if priority > self.priority || (priority == self.priority && src > self.primary_ip) {
            let learned = match self.cfg.version {
                Version::V2 => self.cfg.advert_interval,
                Version::V3 => interval,
            };
            let reason = if priority > self.priority {
                "advert from a higher-priority master"
            } else {
                "advert from an equal-priority master with a higher address"
            };
            self.enter_backup(now, learned, reason, out);
            return;
        }
        // Two masters: the other one will back off when it hears us, but
        // switches and hosts may have learned its MAC meanwhile, so announce
        // again now rather than at the next interval.
        warn!(
            "VRRP instance {} (vrid {}): {} also claims to be master with priority {} (ours {}); re-announcing the VIPs",
            self.cfg.name, self.cfg.vrid, src, priority, self.priority
        );
        self.send_advert(self.priority, out);
        out.push(Action::SendGratuitousArp);
        self.timer = Some(now + self.cfg.advert_interval);
    }
}
