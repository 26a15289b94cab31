//! The virtual router state machine of RFC 5798 §6.4 (RFC 3768 §6.4 for v2),
//! plus keepalived's Fault state, preempt delay and tracking weights.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::config::InstanceConfig;
use super::error::VrrpError;
use super::events::{Datagram, Input, Output, State, TimerKind};
use super::family::AddressFamily;
use super::packet::{Advert, Version, PRIORITY_OWNER, PRIORITY_STOP};
use super::stats::InstanceStats;

mod send;
mod validate;

pub use send::AdvertHeader;

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

/// One virtual router. See the crate documentation for the inputs-in,
/// outputs-out contract.
#[derive(Debug)]
pub struct Instance {
    cfg: InstanceConfig,
    af: AddressFamily,
    primary_ip: IpAddr,
    state: State,
    priority: u8,
    fault: bool,
    /// Held down by the operator: see [`Input::Hold`].
    held: bool,
    /// The interval the current master advertises (v3 learns it).
    master_adver_interval: Duration,
    /// The one armed timer and its deadline: Adver_Timer in Master,
    /// Master_Down_Timer in Backup, none otherwise.
    timer: Option<(TimerKind, Instant)>,
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

    pub fn handle(&mut self, input: Input<'_>, now: Instant, out: &mut Vec<Output>) {
        match input {
            Input::Start => {
                if self.state == State::Initialize {
                    self.start(now, "starting up", out);
                }
            }
            Input::Stop => self.shutdown(out),
            Input::Received(dgram) => self.on_datagram(dgram, now, out),
            Input::Timer(kind) => self.on_timer(kind, now, out),
            Input::Track { weight_sum, fault } => self.on_track(weight_sum, fault, now, out),
            Input::Hold(on) => self.on_hold(on, now, out),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Effective priority (base plus tracking weights).
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// Whether the operator holds the instance down ([`Input::Hold`]).
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

    /// The advert to send for [`Output::SendAdvert`].
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
    fn start(&mut self, now: Instant, reason: &'static str, out: &mut Vec<Output>) {
        if self.fault {
            self.enter_fault("a tracked interface or script is down", out);
        } else if self.priority == PRIORITY_OWNER && !self.held {
            self.enter_master(now, "address owner (priority 255) starting", out);
        } else {
            self.enter_backup(now, self.cfg.advert_interval, reason, out);
        }
    }

    fn shutdown(&mut self, out: &mut Vec<Output>) {
        if self.state == State::Initialize {
            return;
        }
        let from = self.state;
        self.transition(State::Initialize, "shutting down", out);
        if from == State::Master {
            self.send_advert(PRIORITY_STOP, out);
        }
        out.push(Output::Stopped);
    }

    fn enter_master(&mut self, now: Instant, reason: &'static str, out: &mut Vec<Output>) {
        self.transition(State::Master, reason, out);
        self.stats.became_master += 1;
        self.arm(TimerKind::Advert, now + self.cfg.advert_interval, out);
        out.push(Output::BecomeMaster);
        self.send_advert(self.priority, out);
        out.push(Output::SendGratuitousArp);
    }

    fn enter_backup(
        &mut self,
        now: Instant,
        master_interval: Duration,
        reason: &'static str,
        out: &mut Vec<Output>,
    ) {
        self.transition(State::Backup, reason, out);
        self.master_adver_interval = master_interval;
        self.await_master(now, out);
        self.preempt_at = Some(now + self.cfg.preempt_delay);
        out.push(Output::BecomeBackup);
    }

    fn enter_fault(&mut self, reason: &'static str, out: &mut Vec<Output>) {
        let from = self.state;
        self.transition(State::Fault, reason, out);
        if from == State::Master {
            // As on shutdown: let a backup take over at skew time rather than
            // after a full master-down interval.
            self.send_advert(PRIORITY_STOP, out);
        }
        out.push(Output::EnterFault);
    }

    /// Records and reports a state change; leaving Master counts as a release.
    fn transition(&mut self, to: State, reason: &'static str, out: &mut Vec<Output>) {
        let from = self.state;
        if from == State::Master {
            self.stats.released_master += 1;
        }
        self.state = to;
        self.set_timer(None, out);
        self.preempt_at = None;
        info!(
            "VRRP instance {} (vrid {}, priority {}): {} -> {}: {}",
            self.cfg.name, self.cfg.vrid, self.priority, from, to, reason
        );
        out.push(Output::Transition {
            from,
            to,
            priority: self.priority,
            reason,
        });
    }

    fn send_advert(&mut self, priority: u8, out: &mut Vec<Output>) {
        self.stats.adverts_sent += 1;
        if priority == PRIORITY_STOP {
            self.stats.priority_zero_sent += 1;
        }
        out.push(Output::SendAdvert { priority });
    }

    /// Arms `kind` to fire at `at`, replacing the armed timer.
    fn arm(&mut self, kind: TimerKind, at: Instant, out: &mut Vec<Output>) {
        self.set_timer(Some((kind, at)), out);
    }

    /// Changes the armed timer and tells the shell: a timer of another kind
    /// that was armed is cancelled.
    fn set_timer(&mut self, timer: Option<(TimerKind, Instant)>, out: &mut Vec<Output>) {
        if self.timer == timer {
            return;
        }
        if let Some((old, _)) = self.timer {
            if timer.map(|(kind, _)| kind) != Some(old) {
                out.push(Output::SetTimer(old, None));
            }
        }
        if let Some((kind, at)) = timer {
            out.push(Output::SetTimer(kind, Some(at)));
        }
        self.timer = timer;
    }

    fn on_timer(&mut self, kind: TimerKind, now: Instant, out: &mut Vec<Output>) {
        match self.timer {
            Some((armed, deadline)) if armed == kind && now >= deadline => {}
            _ => return,
        }
        match self.state {
            State::Master => {
                self.send_advert(self.priority, out);
                self.arm(TimerKind::Advert, now + self.cfg.advert_interval, out);
            }
            State::Backup => self.enter_master(now, self.takeover_reason, out),
            State::Initialize | State::Fault => self.set_timer(None, out),
        }
    }

    fn on_hold(&mut self, on: bool, now: Instant, out: &mut Vec<Output>) {
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
                "VRRP instance {} (vrid {}): hold released; preemption works as configured again",
                self.cfg.name, self.cfg.vrid
            );
        }
    }

    fn on_track(&mut self, weight_sum: i32, fault: bool, now: Instant, out: &mut Vec<Output>) {
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

    fn on_datagram(&mut self, dgram: Datagram<'_>, now: Instant, out: &mut Vec<Output>) {
        let src = dgram.src;
        let pkt = match self.validate(&dgram) {
            Ok(pkt) => pkt,
            Err(reason) => {
                out.push(Output::Rejected { src, reason });
                return;
            }
        };
        let priority = pkt.priority();
        let interval = pkt.advert_interval();
        self.stats.adverts_received += 1;
        if priority == PRIORITY_STOP {
            self.stats.priority_zero_received += 1;
        }
        out.push(Output::Accepted { src, priority });
        let heard = Heard {
            src,
            priority,
            interval,
        };
        match self.state {
            State::Backup => self.backup_advert(heard, now, out),
            State::Master => self.master_advert(heard, now, out),
            State::Initialize | State::Fault => {}
        }
    }

    /// RFC 5798 §6.4.2, with keepalived's preempt delay.
    fn backup_advert(&mut self, heard: Heard, now: Instant, out: &mut Vec<Output>) {
        let (src, priority) = (heard.src, heard.priority);
        if priority == PRIORITY_STOP {
            debug!(
                "VRRP instance {} (vrid {}): master {} resigned, taking over after the skew time",
                self.cfg.name, self.cfg.vrid, src
            );
            self.arm(TimerKind::MasterDown, now + self.skew_time(), out);
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
            self.master_adver_interval = heard.interval;
        }
        self.await_master(now, out);
    }

    /// (Re)starts the master-down timer: without an advert within it, the
    /// master is presumed gone.
    fn await_master(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.arm(
            TimerKind::MasterDown,
            now + self.master_down_interval(),
            out,
        );
        self.takeover_reason = NO_ADVERTS;
    }

    /// RFC 5798 §6.4.3, plus re-announcing when another master is weaker.
    fn master_advert(&mut self, heard: Heard, now: Instant, out: &mut Vec<Output>) {
        let (src, priority) = (heard.src, heard.priority);
        if priority == PRIORITY_STOP {
            self.send_advert(self.priority, out);
            self.arm(TimerKind::Advert, now + self.cfg.advert_interval, out);
            return;
        }
        let higher_address = as_number(src) > as_number(self.primary_ip);
        if priority > self.priority || (priority == self.priority && higher_address) {
            let learned = match self.cfg.version {
                Version::V2 => self.cfg.advert_interval,
                Version::V3 => heard.interval,
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
        out.push(Output::SendGratuitousArp);
        self.arm(TimerKind::Advert, now + self.cfg.advert_interval, out);
    }
}

/// What an accepted advert said.
#[derive(Clone, Copy)]
struct Heard {
    src: IpAddr,
    priority: u8,
    interval: Duration,
}

/// An address as the number RFC 5798 §6.4.3 compares to break a priority
/// tie: the primary IPv4 address, or over IPv6 the link-local source, as an
/// unsigned integer. Validation keeps both sides of one family.
fn as_number(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}
