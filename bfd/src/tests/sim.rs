//! Two sessions on a simulated link with a fake clock: packets arrive
//! instantly while the link carries them, timers fire in time order.

use std::time::{Duration, Instant};

use crate::{Input, Output, Session, SessionConfig, State, TimerKind, TTL};

pub(super) struct End {
    pub(super) session: Session,
    tx_at: Option<Instant>,
    detect_at: Option<Instant>,
    /// Every state change with the time it happened.
    pub(super) changes: Vec<(Instant, Output)>,
    /// When each packet was sent.
    pub(super) sent_at: Vec<Instant>,
    /// Whether what this end sends reaches the other (false: frozen or cut).
    pub(super) delivers: bool,
}

impl End {
    fn new(name: &str, discr: u32, interval_ms: u64, mult: u8, seed: u64) -> End {
        let cfg = SessionConfig::new(name, discr, Duration::from_millis(interval_ms), mult);
        End {
            session: Session::new(cfg, seed),
            tx_at: None,
            detect_at: None,
            changes: Vec::new(),
            sent_at: Vec::new(),
            delivers: true,
        }
    }

    pub(super) fn went(&self, to: State) -> Vec<Instant> {
        self.changes
            .iter()
            .filter_map(|(t, o)| match o {
                Output::StateChanged { to: s, .. } if *s == to => Some(*t),
                _ => None,
            })
            .collect()
    }
}

pub(super) struct Link {
    pub(super) now: Instant,
    pub(super) ends: [End; 2],
}

impl Link {
    pub(super) fn new(interval_ms: [u64; 2], mult: [u8; 2]) -> Link {
        Link {
            now: Instant::now(),
            ends: [
                End::new("a", 0x1111, interval_ms[0], mult[0], 7),
                End::new("b", 0x2222, interval_ms[1], mult[1], 11),
            ],
        }
    }

    pub(super) fn start(&mut self) {
        for i in 0..2 {
            self.feed(i, Input::Start);
        }
    }

    /// Feeds `input` to end `i`, then delivers what the ends send each
    /// other until the link is quiet.
    pub(super) fn feed(&mut self, i: usize, input: Input<'_>) {
        let mut wire = Vec::new();
        self.feed_one(i, input, &mut wire);
        let mut hops = 0;
        while let Some((to, bytes)) = wire.pop() {
            hops += 1;
            assert!(hops < 100, "the ends keep answering each other");
            self.feed_one(
                to,
                Input::Received {
                    packet: &bytes,
                    ttl: TTL,
                },
                &mut wire,
            );
        }
    }

    fn feed_one(&mut self, i: usize, input: Input<'_>, wire: &mut Vec<(usize, Vec<u8>)>) {
        let mut out = Vec::new();
        self.ends[i].session.handle(input, self.now, &mut out);
        for o in out {
            self.apply(i, o, wire);
        }
    }

    fn apply(&mut self, i: usize, o: Output, wire: &mut Vec<(usize, Vec<u8>)>) {
        let now = self.now;
        let end = &mut self.ends[i];
        match o {
            Output::Send(bytes) => {
                end.sent_at.push(now);
                if end.delivers {
                    wire.insert(0, (1 - i, bytes));
                }
            }
            Output::SetTimer(TimerKind::Transmit, at) => end.tx_at = at,
            Output::SetTimer(TimerKind::Detect, at) => end.detect_at = at,
            Output::StateChanged { .. } => end.changes.push((now, o)),
            Output::Dropped(d) => panic!("end {i} dropped a packet: {d}"),
        }
    }

    /// Fires timers in order until `until`.
    pub(super) fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            let next = (0..2)
                .flat_map(|i| {
                    let e = &self.ends[i];
                    [
                        e.tx_at.map(|t| (t, i, TimerKind::Transmit)),
                        e.detect_at.map(|t| (t, i, TimerKind::Detect)),
                    ]
                })
                .flatten()
                .min_by_key(|(t, _, _)| *t);
            let Some((at, i, kind)) = next.filter(|(t, _, _)| *t <= until) else {
                self.now = until;
                return;
            };
            self.now = self.now.max(at);
            match kind {
                TimerKind::Transmit => self.ends[i].tx_at = None,
                TimerKind::Detect => self.ends[i].detect_at = None,
            }
            self.feed(i, Input::Timer(kind));
        }
    }

    pub(super) fn both(&self, s: State) -> bool {
        self.ends.iter().all(|e| e.session.state() == s)
    }
}
