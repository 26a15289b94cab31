//! Per-peer BGP session state machine (RFC 4271 §8), sans-IO.
//!
//! The caller owns the TCP connection and the timers: it feeds [`Input`]s with the
//! current time and carries out the [`Output`]s. Timer firings are checked against
//! the deadline the session last asked for, so a late or stale firing is harmless.

mod config;
mod events;
mod received;
mod rib_out;
mod stats;

pub use config::{Ipv6NextHop, PeerConfig};
pub use events::{Input, LogLevel, Output, State, TimerKind};
pub use rib_out::Route;
pub use stats::{Negotiated, SessionStats};

use std::time::{Duration, Instant};

use crate::message::{
    code, decode, encode, type_code, AttrIssue, Capability, DecodeError, ErrorAction, Message,
    Notification, Open, SessionCtx, Update,
};
use crate::prefix::{Family, Prefix};
use received::Received;
use rib_out::AdjRibOut;

/// Hold time while waiting for the peer's OPEN (RFC 4271 §8.2.2 suggests 4 minutes).
const OPEN_HOLD: Duration = Duration::from_secs(240);

const MIN_RETRY: Duration = Duration::from_millis(1);
pub(crate) const MAX_RETRY: Duration = Duration::from_secs(86_400);

pub struct Session {
    cfg: PeerConfig,
    state: State,
    /// False after `Stop` (or before `Start`): no automatic reconnects.
    admin_up: bool,
    timers: [Option<Instant>; 3],
    retry_delay: Duration,
    rx: Vec<u8>,
    ctx: SessionCtx,
    negotiated: Option<Negotiated>,
    rib_out: AdjRibOut,
    received: Received,
    stats: SessionStats,
}

impl Session {
    /// Builds an idle session. Retry delays are clamped to 1 ms ..= 1 day so timer
    /// arithmetic cannot overflow; `PeerConfig::validate` reports such values.
    pub fn new(mut cfg: PeerConfig) -> Session {
        cfg.connect_retry_max = cfg.connect_retry_max.clamp(MIN_RETRY, MAX_RETRY);
        cfg.connect_retry = cfg.connect_retry.clamp(MIN_RETRY, cfg.connect_retry_max);
        let retry_delay = cfg.connect_retry;
        Session {
            cfg,
            state: State::Idle,
            admin_up: false,
            timers: [None; 3],
            retry_delay,
            rx: Vec::new(),
            ctx: SessionCtx::default(),
            negotiated: None,
            rib_out: AdjRibOut::default(),
            received: Received::default(),
            stats: SessionStats::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    pub fn config(&self) -> &PeerConfig {
        &self.cfg
    }

    /// Parameters agreed in the OPEN exchange, from OpenConfirm on.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// True while the session wants a TCP connection: report an accepted one with
    /// `TcpConnected` only then, and close it yourself otherwise.
    pub fn wants_connection(&self) -> bool {
        matches!(self.state, State::Connect | State::Active)
    }

    /// The routes this session advertises (or will, once Established).
    pub fn advertised(&self) -> impl Iterator<Item = &Route> {
        self.rib_out
            .routes(Family::Ipv4Unicast)
            .chain(self.rib_out.routes(Family::Ipv6Unicast))
    }

    pub fn handle(&mut self, input: Input, now: Instant, out: &mut Vec<Output>) {
        match input {
            Input::Start => self.start(now, out),
            Input::Stop { reason } => self.stop(&reason, out),
            Input::TcpConnected => self.tcp_connected(now, out),
            Input::TcpFailed => self.tcp_failed(now, out),
            Input::TcpClosed => self.tcp_closed(now, out),
            Input::Bytes(b) => self.bytes(b, now, out),
            Input::Timer(kind) => self.timer(kind, now, out),
            Input::Announce(route) => self.announce(route, now, out),
            Input::Withdraw(prefix) => self.withdraw(prefix, now, out),
        }
    }

    fn log(&self, level: LogLevel, msg: impl AsRef<str>, out: &mut Vec<Output>) {
        out.push(Output::Log(
            level,
            format!(
                "BGP peer {} (AS{}): {}",
                self.cfg.name,
                self.cfg.remote_as,
                msg.as_ref()
            ),
        ));
    }

    fn set_state(&mut self, to: State, out: &mut Vec<Output>) {
        if self.state != to {
            out.push(Output::StateChanged {
                from: self.state,
                to,
            });
            self.state = to;
        }
    }

    fn set_timer(&mut self, kind: TimerKind, at: Option<Instant>, out: &mut Vec<Output>) {
        if self.timers[kind.index()] != at {
            self.timers[kind.index()] = at;
            out.push(Output::SetTimer(kind, at));
        }
    }

    fn send(&mut self, msg: &Message, out: &mut Vec<Output>) {
        let mut buf = Vec::new();
        match encode(msg, &self.ctx, &mut buf) {
            Ok(()) => {
                self.count_out(msg);
                out.push(Output::Send(buf));
            }
            Err(e) => self.log(
                LogLevel::Error,
                format!("could not send {}: {e}", msg.kind()),
                out,
            ),
        }
    }

    fn count_out(&mut self, msg: &Message) {
        self.stats.messages_out += 1;
        match msg {
            Message::Update(_) => self.stats.updates_out += 1,
            Message::Keepalive => self.stats.keepalives_out += 1,
            Message::Notification(_) => self.stats.notifications_out += 1,
            _ => {}
        }
    }

    fn start(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.admin_up = true;
        if self.state == State::Idle {
            self.set_timer(TimerKind::ConnectRetry, None, out);
            self.begin_connecting(now, out);
        }
    }

    /// Idle or Active → Connect (open TCP, with the current backoff as the attempt's
    /// time limit), or Active for a passive peer.
    fn begin_connecting(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.cfg.passive {
            self.set_state(State::Active, out);
        } else {
            self.set_state(State::Connect, out);
            out.push(Output::Connect);
            self.set_timer(TimerKind::ConnectRetry, Some(now + self.retry_delay), out);
        }
    }

    /// Arms the reconnect timer with the current backoff, then doubles it.
    fn schedule_retry(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.set_timer(TimerKind::ConnectRetry, Some(now + self.retry_delay), out);
        self.retry_delay = self
            .retry_delay
            .saturating_mul(2)
            .min(self.cfg.connect_retry_max);
    }

    fn stop(&mut self, reason: &str, out: &mut Vec<Output>) {
        self.admin_up = false;
        let note = Notification::administrative_shutdown(reason);
        let text = format!("stopped by operator: {note}");
        match self.state {
            State::OpenSent | State::OpenConfirm | State::Established => {
                self.send(&Message::Notification(note), out);
                out.push(Output::CloseTcp);
            }
            State::Connect => out.push(Output::CloseTcp),
            State::Idle | State::Active => {}
        }
        self.enter_idle(text, out);
        self.set_timer(TimerKind::ConnectRetry, None, out);
    }

    /// Leaves any state for Idle, cancelling session timers.
    fn enter_idle(&mut self, reason: String, out: &mut Vec<Output>) {
        let was_established = self.state == State::Established;
        self.set_timer(TimerKind::Hold, None, out);
        self.set_timer(TimerKind::Keepalive, None, out);
        self.rx.clear();
        self.ctx = SessionCtx::default();
        self.negotiated = None;
        self.received.clear();
        self.sync_received_stats();
        self.stats.established_since = None;
        self.set_state(State::Idle, out);
        if was_established {
            out.push(Output::Down {
                reason: reason.clone(),
            });
        }
        self.stats.last_error = Some(reason);
    }

    /// Ends the connection after an error: optionally notify, close, go Idle and
    /// reconnect after the backoff delay.
    fn fail(
        &mut self,
        note: Option<Notification>,
        reason: String,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let level = if self.state == State::Established {
            LogLevel::Warn
        } else {
            LogLevel::Info
        };
        self.log(
            level,
            format!("session down in {}: {reason}", self.state),
            out,
        );
        if let Some(n) = note {
            self.send(&Message::Notification(n), out);
        }
        out.push(Output::CloseTcp);
        self.enter_idle(reason, out);
        if self.admin_up {
            self.schedule_retry(now, out);
        }
    }

    fn tcp_connected(&mut self, now: Instant, out: &mut Vec<Output>) {
        if !self.wants_connection() {
            self.log(
                LogLevel::Warn,
                format!(
                    "connection reported in state {}, where none is wanted; ignored",
                    self.state
                ),
                out,
            );
            return;
        }
        self.set_timer(TimerKind::ConnectRetry, None, out);
        self.rx.clear();
        let open = self.our_open();
        self.send(&Message::Open(open), out);
        self.set_timer(TimerKind::Hold, Some(now + OPEN_HOLD), out);
        self.set_state(State::OpenSent, out);
    }

    fn our_open(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .cfg
            .families
            .iter()
            .map(|f| Capability::multiprotocol(*f))
            .collect();
        caps.push(Capability::RouteRefresh);
        caps.push(Capability::FourOctetAs(self.cfg.local_as));
        if self.cfg.graceful_restart {
            caps.push(Capability::GracefulRestart {
                restarted: false,
                restart_time: 0,
                families: Vec::new(),
            });
        }
        Open::new(
            self.cfg.local_as,
            effective_hold(self.cfg.hold_time),
            self.cfg.router_id,
            caps,
        )
    }

    fn tcp_failed(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.state != State::Connect {
            return;
        }
        self.log(
            LogLevel::Info,
            "TCP connection attempt failed; will retry",
            out,
        );
        self.stats.last_error = Some("TCP connection attempt failed".into());
        self.set_state(State::Active, out);
        self.schedule_retry(now, out);
    }

    fn tcp_closed(&mut self, now: Instant, out: &mut Vec<Output>) {
        match self.state {
            State::OpenSent | State::OpenConfirm | State::Established => {
                self.fail(None, "peer closed the TCP connection".into(), now, out)
            }
            State::Connect => self.tcp_failed(now, out),
            State::Idle | State::Active => {}
        }
    }

    fn timer(&mut self, kind: TimerKind, now: Instant, out: &mut Vec<Output>) {
        match self.timers[kind.index()] {
            Some(at) if now >= at => self.timers[kind.index()] = None,
            _ => return,
        }
        match kind {
            TimerKind::ConnectRetry => match self.state {
                State::Idle if self.admin_up => self.begin_connecting(now, out),
                State::Connect => {
                    out.push(Output::CloseTcp);
                    self.schedule_retry(now, out);
                    out.push(Output::Connect);
                }
                State::Active if !self.cfg.passive => self.begin_connecting(now, out),
                _ => {}
            },
            TimerKind::Hold => {
                let note = Notification::new(code::HOLD_TIMER_EXPIRED, 0, Vec::new());
                let held = match self.state {
                    State::OpenSent => OPEN_HOLD.as_secs(),
                    _ => self
                        .negotiated
                        .as_ref()
                        .map_or(0, |n| u64::from(n.hold_time)),
                };
                self.fail(
                    Some(note),
                    format!("no message from the peer for {held} s (hold timer expired)"),
                    now,
                    out,
                );
            }
            TimerKind::Keepalive => {
                if matches!(self.state, State::OpenConfirm | State::Established) {
                    self.send(&Message::Keepalive, out);
                    self.arm_keepalive(now, out);
                }
            }
        }
    }

    fn arm_keepalive(&mut self, now: Instant, out: &mut Vec<Output>) {
        let at = self
            .negotiated
            .as_ref()
            .and_then(|n| n.keepalive)
            .map(|k| now + k);
        self.set_timer(TimerKind::Keepalive, at, out);
    }

    fn restart_hold(&mut self, now: Instant, out: &mut Vec<Output>) {
        let at = self
            .negotiated
            .as_ref()
            .filter(|n| n.hold_time > 0)
            .map(|n| now + Duration::from_secs(u64::from(n.hold_time)));
        self.set_timer(TimerKind::Hold, at, out);
    }

    fn bytes(&mut self, data: &[u8], now: Instant, out: &mut Vec<Output>) {
        if !matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            if !data.is_empty() {
                self.log(
                    LogLevel::Debug,
                    format!(
                        "{} octets received in state {}; ignored",
                        data.len(),
                        self.state
                    ),
                    out,
                );
            }
            return;
        }
        self.rx.extend_from_slice(data);
        let mut used = 0;
        loop {
            let rest = self.rx.get(used..).unwrap_or_default();
            match decode(rest, &self.ctx) {
                Ok(None) => break,
                Ok(Some((msg, n))) => {
                    used += n;
                    self.stats.messages_in += 1;
                    self.message(msg, now, out);
                }
                Err(e) => {
                    self.decode_failed(e, now, out);
                    break;
                }
            }
            // A message may have ended the session; what follows is for no one.
            if self.state == State::Idle {
                break;
            }
        }
        if self.state == State::Idle {
            self.rx.clear();
        } else {
            self.rx.drain(..used.min(self.rx.len()));
        }
    }

    fn decode_failed(&mut self, e: DecodeError, now: Instant, out: &mut Vec<Output>) {
        let reason = format!("malformed message from the peer: {}", e.reason);
        self.fail(Some(e.notification), reason, now, out);
    }

    fn fsm_error(&mut self, msg: &Message, now: Instant, out: &mut Vec<Output>) {
        let sub = match self.state {
            State::OpenSent => code::fsm::UNEXPECTED_IN_OPEN_SENT,
            State::OpenConfirm => code::fsm::UNEXPECTED_IN_OPEN_CONFIRM,
            _ => code::fsm::UNEXPECTED_IN_ESTABLISHED,
        };
        let note = Notification::new(code::FSM, sub, Vec::new());
        self.fail(
            Some(note),
            format!("unexpected {} in state {}", msg.kind(), self.state),
            now,
            out,
        );
    }

    fn message(&mut self, msg: Message, now: Instant, out: &mut Vec<Output>) {
        if let Message::Notification(n) = &msg {
            self.stats.notifications_in += 1;
            let reason = format!("peer sent NOTIFICATION {n}");
            // The peer closes after a NOTIFICATION; answering it would be an error loop.
            self.fail(None, reason, now, out);
            return;
        }
        match (self.state, msg) {
            (State::OpenSent, Message::Open(open)) => self.received_open(open, now, out),
            (State::OpenConfirm, Message::Keepalive) => {
                self.stats.keepalives_in += 1;
                self.established(now, out);
            }
            (State::Established, Message::Keepalive) => {
                self.stats.keepalives_in += 1;
                self.restart_hold(now, out);
            }
            (State::Established, Message::Update(u)) => {
                self.stats.updates_in += 1;
                self.restart_hold(now, out);
                self.received_update(*u, now, out);
            }
            (State::Established, Message::RouteRefresh { afi, safi, .. }) => {
                self.restart_hold(now, out);
                self.route_refresh(afi, safi, now, out);
            }
            (_, msg) => self.fsm_error(&msg, now, out),
        }
    }

    fn received_open(&mut self, open: Open, now: Instant, out: &mut Vec<Output>) {
        let reject = |sub: u8, data: Vec<u8>| Some(Notification::new(code::OPEN, sub, data));
        let peer_as = open.peer_as();
        let problem = if open.version != 4 {
            // Data names the highest version we speak (RFC 4271 §6.2).
            Some((
                reject(code::open::UNSUPPORTED_VERSION, vec![0, 4]),
                format!("peer speaks BGP version {}, vipd speaks 4", open.version),
            ))
        } else if peer_as != self.cfg.remote_as {
            Some((
                reject(code::open::BAD_PEER_AS, Vec::new()),
                format!(
                    "peer says it is AS{peer_as}, configured remote_as is {}",
                    self.cfg.remote_as
                ),
            ))
        } else if matches!(open.hold_time, 1 | 2) {
            Some((
                reject(code::open::UNACCEPTABLE_HOLD_TIME, Vec::new()),
                format!(
                    "peer offers hold time {} s; only 0 or at least 3 are allowed",
                    open.hold_time
                ),
            ))
        } else if open.bgp_id.is_unspecified()
            || open.bgp_id.is_multicast()
            || open.bgp_id.is_broadcast()
            || open.bgp_id == self.cfg.router_id
        {
            Some((
                reject(code::open::BAD_BGP_IDENTIFIER, Vec::new()),
                format!(
                    "peer BGP identifier {} is invalid or equal to ours",
                    open.bgp_id
                ),
            ))
        } else {
            None
        };
        if let Some((note, reason)) = problem {
            self.fail(note, reason, now, out);
            return;
        }
        let hold = effective_hold(self.cfg.hold_time).min(open.hold_time);
        let keepalive = (hold > 0).then(|| {
            let third = (hold / 3).max(1);
            Duration::from_secs(u64::from(
                self.cfg.keepalive.map_or(third, |k| k.clamp(1, third)),
            ))
        });
        let peer_families = if open.has_multiprotocol() {
            open.families()
        } else {
            vec![Family::Ipv4Unicast]
        };
        let families: Vec<Family> = self
            .cfg
            .families
            .iter()
            .copied()
            .filter(|f| peer_families.contains(f))
            .collect();
        if families.is_empty() {
            self.log(LogLevel::Warn, format!("no address family in common (we offer {:?}, peer {:?}); no routes will be exchanged", self.cfg.families, peer_families), out);
        }
        let neg = Negotiated {
            peer_as,
            peer_router_id: open.bgp_id,
            hold_time: hold,
            keepalive,
            four_octet_as: open.four_octet_as().is_some(),
            route_refresh: open.route_refresh(),
            peer_graceful_restart: open
                .capabilities
                .iter()
                .any(|c| matches!(c, Capability::GracefulRestart { .. })),
            families,
            peer_families,
        };
        self.ctx = SessionCtx {
            four_octet_as: neg.four_octet_as,
        };
        self.negotiated = Some(neg);
        self.send(&Message::Keepalive, out);
        self.restart_hold(now, out);
        self.arm_keepalive(now, out);
        self.set_state(State::OpenConfirm, out);
    }

    fn established(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.restart_hold(now, out);
        self.retry_delay = self.cfg.connect_retry;
        self.stats.established_count += 1;
        self.stats.established_since = Some(now);
        self.stats.last_error = None;
        self.set_state(State::Established, out);
        out.push(Output::Established);
        if let Some(n) = &self.negotiated {
            self.log(
                LogLevel::Info,
                format!(
                    "established: peer router id {}, hold time {} s, families {:?}",
                    n.peer_router_id, n.hold_time, n.families
                ),
                out,
            );
        }
        let families = self
            .negotiated
            .as_ref()
            .map(|n| n.families.clone())
            .unwrap_or_default();
        for f in families {
            self.send_family(f, now, out);
        }
        for f in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
            let held = self.rib_out.routes(f).count();
            if held > 0 && !self.family_active(f) {
                let why = self.not_negotiated(f);
                self.log(
                    LogLevel::Warn,
                    format!("{held} {f} routes not announced: {why}"),
                    out,
                );
            }
        }
    }

    /// Why `family` is not exchanged on this Established session, for logs.
    fn not_negotiated(&self, family: Family) -> String {
        if !self.cfg.families.contains(&family) {
            format!("{family} is not among the families configured for this peer")
        } else {
            format!("the peer did not offer {family} in its OPEN (multiprotocol capability)")
        }
    }

    /// Sends every route of `family` followed by its End-of-RIB.
    fn send_family(&mut self, family: Family, now: Instant, out: &mut Vec<Output>) {
        let mut msgs = Vec::new();
        rib_out::announce(self.rib_out.announcements(family), &self.ctx, &mut msgs);
        rib_out::end_of_rib(family, &self.ctx, &mut msgs);
        self.send_updates(msgs, now, out);
        self.stats.prefixes_advertised = self.advertisable_count();
    }

    fn send_updates(&mut self, msgs: Vec<Vec<u8>>, now: Instant, out: &mut Vec<Output>) {
        if msgs.is_empty() {
            return;
        }
        for m in msgs {
            self.stats.messages_out += 1;
            self.stats.updates_out += 1;
            out.push(Output::Send(m));
        }
        // Any message resets the peer's hold timer, so the next keepalive can wait.
        self.arm_keepalive(now, out);
    }

    fn family_active(&self, family: Family) -> bool {
        self.state == State::Established
            && self
                .negotiated
                .as_ref()
                .is_some_and(|n| n.families.contains(&family))
    }

    fn advertisable_count(&self) -> usize {
        let Some(n) = &self.negotiated else { return 0 };
        n.families
            .iter()
            .map(|f| self.rib_out.routes(*f).count())
            .sum()
    }

    fn announce(&mut self, route: Route, now: Instant, out: &mut Vec<Output>) {
        let attrs = match route.attributes(&self.cfg) {
            Ok(a) => a,
            Err(e) => {
                self.log(LogLevel::Error, format!("not announced: {e}"), out);
                // The route this one was meant to replace must not stay advertised.
                self.withdraw(route.prefix, now, out);
                return;
            }
        };
        let (prefix, family) = (route.prefix, route.prefix.family());
        if !self.rib_out.insert(route, attrs) {
            return;
        }
        if !self.family_active(family) {
            if self.state == State::Established {
                let why = self.not_negotiated(family);
                self.log(
                    LogLevel::Warn,
                    format!("route {prefix} not announced: {why}"),
                    out,
                );
            }
            return;
        }
        let mut msgs = Vec::new();
        rib_out::announce(self.rib_out.announcement(&prefix), &self.ctx, &mut msgs);
        self.send_updates(msgs, now, out);
        self.stats.prefixes_advertised = self.advertisable_count();
    }

    fn withdraw(&mut self, prefix: Prefix, now: Instant, out: &mut Vec<Output>) {
        if !self.rib_out.remove(&prefix) || !self.family_active(prefix.family()) {
            return;
        }
        let mut msgs = Vec::new();
        rib_out::withdraw(&[prefix], &self.ctx, &mut msgs);
        self.send_updates(msgs, now, out);
        self.stats.prefixes_advertised = self.advertisable_count();
    }

    fn route_refresh(&mut self, afi: u16, safi: u8, now: Instant, out: &mut Vec<Output>) {
        match Family::from_afi_safi(afi, safi) {
            Some(f) if self.family_active(f) => self.send_family(f, now, out),
            _ => self.log(
                LogLevel::Info,
                format!("ROUTE-REFRESH for AFI {afi} SAFI {safi}, not negotiated; ignored"),
                out,
            ),
        }
    }

    fn received_update(&mut self, mut u: Update, now: Instant, out: &mut Vec<Output>) {
        self.check_first_as(&mut u);
        for issue in &u.issues {
            match issue.action {
                ErrorAction::TreatAsWithdraw => self.stats.treat_as_withdraw += 1,
                ErrorAction::AttributeDiscard => self.stats.attributes_discarded += 1,
            }
            self.log(
                LogLevel::Warn,
                format!(
                    "UPDATE error handled per RFC 7606 ({:?}): {}",
                    issue.action, issue.reason
                ),
                out,
            );
        }
        if let Some(f) = u.end_of_rib_family() {
            self.log(LogLevel::Info, format!("End-of-RIB received for {f}"), out);
            return;
        }
        let mut withdrawn: Vec<Prefix> = u.withdrawn_all().copied().collect();
        let mut announced: Vec<Prefix> = u.announced().copied().collect();
        if u.treat_as_withdraw() {
            withdrawn.append(&mut announced);
        }
        self.drop_unnegotiated(&mut announced, &mut withdrawn, out);
        for p in &withdrawn {
            self.received.remove(p);
        }
        for p in &announced {
            self.received.insert(*p);
        }
        self.sync_received_stats();
        if announced.is_empty() && withdrawn.is_empty() {
            return;
        }
        out.push(Output::RoutesReceived {
            announced,
            withdrawn,
        });
        if let Some(max) = self.cfg.max_prefixes {
            let total = self.received.total();
            if total > max as usize {
                let family = self.received.largest_family();
                let (afi, safi) = family.afi_safi();
                let mut data = afi.to_be_bytes().to_vec();
                data.push(safi);
                data.extend_from_slice(&max.to_be_bytes());
                let note = Notification::new(code::CEASE, code::cease::MAX_PREFIXES, data);
                self.fail(Some(note), format!("peer sent {total} prefixes, over max_prefixes {max}; raise the limit or fix the peer's export filter"), now, out);
            }
        }
    }

    /// Drops routes of families not negotiated (RFC 4760 §6): the peer should not
    /// send them, and they must not count toward max_prefixes.
    fn drop_unnegotiated(
        &mut self,
        announced: &mut Vec<Prefix>,
        withdrawn: &mut Vec<Prefix>,
        out: &mut Vec<Output>,
    ) {
        let families = self
            .negotiated
            .as_ref()
            .map(|n| n.families.clone())
            .unwrap_or_default();
        let Some(stray) = announced
            .iter()
            .chain(withdrawn.iter())
            .map(Prefix::family)
            .find(|f| !families.contains(f))
        else {
            return;
        };
        announced.retain(|p| families.contains(&p.family()));
        withdrawn.retain(|p| families.contains(&p.family()));
        self.stats.attributes_discarded += 1;
        self.log(
            LogLevel::Warn,
            format!("UPDATE carries {stray} routes, which were not negotiated; ignored"),
            out,
        );
    }

    fn check_first_as(&self, u: &mut Update) {
        if !self.cfg.is_ebgp() || !self.cfg.enforce_first_as || u.announced().next().is_none() {
            return;
        }
        let Some(path) = &u.attributes.as_path else {
            return;
        };
        let first = path.first_as();
        if first != Some(self.cfg.remote_as) {
            let shown = first.map_or_else(|| "nothing".to_string(), |a| format!("AS{a}"));
            u.issues.push(AttrIssue {
                type_code: type_code::AS_PATH,
                action: ErrorAction::TreatAsWithdraw,
                reason: format!(
                    "AS_PATH starts with {shown}, not the peer's AS{} (set enforce_first_as = false for a route server)",
                    self.cfg.remote_as
                ),
            });
        }
    }

    fn sync_received_stats(&mut self) {
        self.stats.prefixes_received_v4 = self.received.count(Family::Ipv4Unicast);
        self.stats.prefixes_received_v6 = self.received.count(Family::Ipv6Unicast);
    }
}

/// Our configured hold time as offered in OPEN; 1 and 2 are not allowed, so round up.
fn effective_hold(h: u16) -> u16 {
    if matches!(h, 1 | 2) {
        3
    } else {
        h
    }
}
