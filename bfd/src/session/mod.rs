//! One BFD session (RFC 5880 section 6.8) in asynchronous mode, active role,
//! without authentication or the echo function.

mod config;
mod events;
mod stats;

use std::time::{Duration, Instant};

use crate::packet::{Control, ControlPacket, Diag, State};
use crate::TTL;
pub use config::SessionConfig;
pub use events::{Discard, Input, Output, TimerKind};
pub use stats::SessionStats;

/// Desired min TX while the session is not Up (RFC 5880 6.8.3).
const IDLE_TX: Duration = Duration::from_secs(1);

/// A session in the active role. Demand mode is not used: a peer asking
/// for it keeps receiving periodic packets, which RFC 5880 allows.
pub struct Session {
    cfg: SessionConfig,
    state: State,
    diag: Diag,
    remote_state: State,
    remote_discr: u32,
    /// Starts at 1 µs (RFC 5880 6.8.1), so the first packets go out.
    remote_min_rx: Duration,
    remote_desired_tx: Duration,
    remote_detect_mult: u8,
    /// The Desired Min TX we advertise: [`IDLE_TX`] unless Up.
    desired_tx: Duration,
    /// A poll sequence is running: periodic packets carry P until an F arrives.
    polling: bool,
    tx_at: Option<Instant>,
    detect_at: Option<Instant>,
    rng: u64,
    stats: SessionStats,
}

impl Session {
    /// A session in AdminDown until [`Input::Start`]; `seed` drives the
    /// transmit jitter (any value; zero is replaced).
    pub fn new(cfg: SessionConfig, seed: u64) -> Session {
        Session {
            desired_tx: cfg.desired_min_tx.max(IDLE_TX),
            cfg,
            state: State::AdminDown,
            diag: Diag::None,
            remote_state: State::Down,
            remote_discr: 0,
            remote_min_rx: Duration::from_micros(1),
            remote_desired_tx: Duration::ZERO,
            remote_detect_mult: 0,
            polling: false,
            tx_at: None,
            detect_at: None,
            rng: seed | 1,
            stats: SessionStats::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The diagnostic we send: why the session last left Up.
    pub fn diag(&self) -> Diag {
        self.diag
    }

    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// Time without a packet after which the session goes Down: the peer's
    /// multiplier times the slower of its sending and our receiving.
    pub fn detection_time(&self) -> Duration {
        self.remote_desired_tx.max(self.cfg.required_min_rx) * u32::from(self.remote_detect_mult)
    }

    /// The interval between our periodic packets, before jitter.
    pub fn tx_interval(&self) -> Duration {
        self.desired_tx.max(self.remote_min_rx)
    }

    pub fn handle(&mut self, input: Input<'_>, now: Instant, out: &mut Vec<Output>) {
        match input {
            Input::Start => {
                if self.state == State::AdminDown {
                    self.diag = Diag::None;
                    self.set_state(State::Down, now, out);
                }
            }
            Input::Stop => {
                if self.state != State::AdminDown {
                    self.diag = Diag::AdministrativelyDown;
                    self.set_state(State::AdminDown, now, out);
                    self.arm_detect(None, out);
                }
            }
            Input::Received { packet, ttl } => self.receive(packet, ttl, now, out),
            Input::Timer(TimerKind::Transmit) => {
                if self.tx_at.is_some_and(|at| at <= now) {
                    self.transmit(false, out);
                    self.schedule_tx(now, out);
                }
            }
            Input::Timer(TimerKind::Detect) => {
                if self.detect_at.is_some_and(|at| at <= now) {
                    self.detect_at = None;
                    self.detection_expired(now, out);
                }
            }
        }
    }

    fn receive(&mut self, bytes: &[u8], ttl: u8, now: Instant, out: &mut Vec<Output>) {
        let p = match ControlPacket::new_checked(bytes) {
            Ok(p) => p,
            Err(e) => return self.discard(Discard::Malformed(e), out),
        };
        if ttl != TTL {
            return self.discard(Discard::Ttl(ttl), out);
        }
        if p.authenticated() {
            return self.discard(Discard::Authentication, out);
        }
        let yours = p.your_discriminator();
        if yours != 0 && yours != self.cfg.local_discriminator {
            return self.discard(Discard::Discriminator(yours), out);
        }
        if yours == 0 && !matches!(p.state(), State::Down | State::AdminDown) {
            return self.discard(Discard::NoDiscriminator(p.state()), out);
        }
        self.stats.packets_in += 1;
        let was_tx = self.tx_interval();
        self.remote_discr = p.my_discriminator();
        self.remote_state = p.state();
        self.remote_min_rx = Duration::from_micros(u64::from(p.required_min_rx_us()));
        self.remote_desired_tx = Duration::from_micros(u64::from(p.desired_min_tx_us()));
        self.remote_detect_mult = p.detect_mult();
        if p.final_bit() && self.polling {
            self.polling = false;
        }
        if self.state == State::AdminDown {
            return;
        }
        self.arm_detect(Some(now + self.detection_time()), out);
        let changed = match (self.state, p.state()) {
            (State::Init | State::Up, State::AdminDown) | (State::Up, State::Down) => {
                self.diag = Diag::NeighborSignaledDown;
                self.set_state(State::Down, now, out)
            }
            (State::Down, State::Down) => self.set_state(State::Init, now, out),
            (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                self.set_state(State::Up, now, out)
            }
            _ => false,
        };
        if p.poll() {
            // The answer goes out now, whatever the transmit timer says.
            self.transmit(true, out);
        }
        if !changed && self.tx_interval() < was_tx {
            // The peer lets us send faster: do not wait out the old interval.
            self.schedule_tx(now, out);
        }
    }

    fn detection_expired(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.remote_discr = 0;
        self.remote_state = State::Down;
        if matches!(self.state, State::Init | State::Up) {
            self.diag = Diag::DetectionTimeExpired;
            self.set_state(State::Down, now, out);
        }
    }

    /// Moves to `to`, tells the peer at once and reports it; false when
    /// already there.
    fn set_state(&mut self, to: State, now: Instant, out: &mut Vec<Output>) -> bool {
        let from = self.state;
        if from == to {
            return false;
        }
        self.state = to;
        let failure = from == State::Up
            && to == State::Down
            && !(self.diag == Diag::NeighborSignaledDown && self.remote_state == State::AdminDown);
        if to == State::Up {
            self.stats.up_count += 1;
            self.diag = Diag::None;
        }
        if failure {
            self.stats.failures += 1;
        }
        let desired = if to == State::Up {
            self.cfg.desired_min_tx
        } else {
            self.cfg.desired_min_tx.max(IDLE_TX)
        };
        if desired != self.desired_tx {
            self.desired_tx = desired;
            self.polling = true;
        }
        out.push(Output::StateChanged {
            from,
            to,
            diag: self.diag,
            failure,
        });
        self.transmit(false, out);
        self.schedule_tx(now, out);
        true
    }

    fn transmit(&mut self, final_bit: bool, out: &mut Vec<Output>) {
        if !final_bit && self.remote_min_rx.is_zero() {
            // The peer asked for no periodic packets (RFC 5880 6.8.7).
            return;
        }
        let us = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        let c = Control {
            diag: self.diag,
            state: self.state,
            poll: self.polling && !final_bit,
            final_bit,
            detect_mult: self.cfg.detect_mult,
            my_discriminator: self.cfg.local_discriminator,
            your_discriminator: self.remote_discr,
            desired_min_tx_us: us(self.desired_tx),
            required_min_rx_us: us(self.cfg.required_min_rx),
            required_min_echo_rx_us: 0,
        };
        self.stats.packets_out += 1;
        out.push(Output::Send(c.encode().to_vec()));
    }

    /// Arms the next periodic packet: the interval less 0–25 % jitter
    /// (10–25 % with a multiplier of 1, so one late packet is not a failure).
    fn schedule_tx(&mut self, now: Instant, out: &mut Vec<Output>) {
        let span = if self.cfg.detect_mult == 1 { 16 } else { 26 };
        let percent = 75 + self.next_random() % span;
        let at = now + self.tx_interval() * percent as u32 / 100;
        self.tx_at = Some(at);
        out.push(Output::SetTimer(TimerKind::Transmit, Some(at)));
    }

    fn arm_detect(&mut self, at: Option<Instant>, out: &mut Vec<Output>) {
        self.detect_at = at;
        out.push(Output::SetTimer(TimerKind::Detect, at));
    }

    fn discard(&mut self, why: Discard, out: &mut Vec<Output>) {
        self.stats.count_drop(&why);
        out.push(Output::Dropped(why));
    }

    /// xorshift64: jitter needs spread, not secrecy.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}
