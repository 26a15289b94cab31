use std::time::Duration;

use super::sim::Link;
use crate::{Control, Diag, Discard, Input, Output, Session, SessionConfig, State, TTL};

const MS: Duration = Duration::from_millis(1);

fn up_link(interval_ms: u64, mult: u8) -> Link {
    let mut l = Link::new([interval_ms; 2], [mult; 2]);
    l.start();
    l.run_for(3 * Duration::from_secs(1));
    assert!(l.both(State::Up), "sessions did not come Up");
    l
}

#[test]
fn two_sessions_come_up_through_init_and_speed_up_by_a_poll() {
    let mut l = Link::new([50, 50], [3, 3]);
    l.start();
    l.run_for(10 * MS);
    assert!(l.both(State::Up));
    for e in &l.ends {
        let path: Vec<State> = e
            .changes
            .iter()
            .map(|(_, o)| match o {
                Output::StateChanged { to, .. } => *to,
                _ => unreachable!(),
            })
            .collect();
        assert!(
            path == [State::Down, State::Init, State::Up] || path == [State::Down, State::Up],
            "{path:?}"
        );
        // Up: the fast interval is in force, agreed by a poll sequence.
        assert_eq!(e.session.tx_interval(), 50 * MS);
        assert_eq!(e.session.detection_time(), 150 * MS);
    }
    let sent = l.ends[0].sent_at.len();
    l.run_for(Duration::from_secs(1));
    let per_s = l.ends[0].sent_at.len() - sent;
    // 50 ms less 0–25 % jitter: between 20 and 27 packets a second.
    assert!((19..=28).contains(&per_s), "{per_s} packets in 1 s");
    assert_eq!(l.ends[0].session.stats().failures, 0);
}

#[test]
fn not_up_sends_at_most_once_a_second() {
    let mut l = Link::new([50, 50], [3, 3]);
    l.ends[0].delivers = false;
    l.ends[1].delivers = false;
    l.start();
    l.run_for(Duration::from_secs(10));
    let n = l.ends[0].sent_at.len();
    assert!((10..=14).contains(&n), "{n} packets in 10 s while Down");
    assert_eq!(l.ends[0].session.state(), State::Down);
}

#[test]
fn a_silent_peer_is_detected_after_multiplier_times_interval() {
    let mut l = up_link(50, 3);
    let t0 = l.now;
    l.ends[1].delivers = false;
    l.run_for(Duration::from_secs(1));
    let down = l.ends[0].went(State::Down);
    let at = *down.last().expect("a went Down") - t0;
    // The last packet from b came at most one (jittered) interval before t0.
    assert!(
        at <= 150 * MS && at >= 150 * MS - 50 * MS,
        "detected after {at:?}"
    );
    match &l.ends[0].changes.last().expect("a change").1 {
        Output::StateChanged {
            from: State::Up,
            to: State::Down,
            diag: Diag::DetectionTimeExpired,
            failure: true,
        } => {}
        o => panic!("{o:?}"),
    }
    assert_eq!(l.ends[0].session.stats().failures, 1);
    // b hears a's Down and follows with diagnostic 3.
    assert!(l.ends[1].changes.iter().any(|(_, o)| *o
        == Output::StateChanged {
            from: State::Up,
            to: State::Down,
            diag: Diag::NeighborSignaledDown,
            failure: true,
        }));
}

#[test]
fn detection_uses_the_peers_multiplier_and_the_slower_interval() {
    let mut l = Link::new([50, 200], [5, 2]);
    l.start();
    l.run_for(Duration::from_secs(3));
    assert!(l.both(State::Up));
    // a: b's multiplier 2 × max(a's rx 50, b's tx 200).
    assert_eq!(l.ends[0].session.detection_time(), 400 * MS);
    // b: a's multiplier 5 × max(b's rx 200, a's tx 50).
    assert_eq!(l.ends[1].session.detection_time(), 1000 * MS);
    // a may not send faster than b can take.
    assert_eq!(l.ends[0].session.tx_interval(), 200 * MS);
}

#[test]
fn comes_back_up_once_the_peer_is_heard_again() {
    let mut l = up_link(50, 3);
    l.ends[1].delivers = false;
    l.run_for(Duration::from_millis(500));
    assert_eq!(l.ends[0].session.state(), State::Down);
    l.ends[1].delivers = true;
    l.run_for(Duration::from_secs(3));
    assert!(l.both(State::Up));
    assert_eq!(l.ends[0].session.stats().up_count, 2);
}

#[test]
fn admin_down_is_not_a_failure() {
    let mut l = up_link(50, 3);
    l.feed(1, Input::Stop);
    assert_eq!(l.ends[1].session.state(), State::AdminDown);
    assert_eq!(l.ends[1].session.diag(), Diag::AdministrativelyDown);
    match &l.ends[0].changes.last().expect("a change").1 {
        Output::StateChanged {
            from: State::Up,
            to: State::Down,
            diag: Diag::NeighborSignaledDown,
            failure: false,
        } => {}
        o => panic!("{o:?}"),
    }
    l.run_for(Duration::from_secs(5));
    assert_eq!(l.ends[0].session.state(), State::Down);
    assert_eq!(l.ends[0].session.stats().failures, 0);
    // Started again, the sessions come Up.
    l.feed(1, Input::Start);
    l.run_for(Duration::from_secs(3));
    assert!(l.both(State::Up));
}

#[test]
fn jitter_stays_within_75_to_100_percent_and_90_with_multiplier_one() {
    for (mult, max) in [(3u8, 100u128), (1, 90)] {
        let mut l = up_link(100, mult);
        let from = l.ends[0].sent_at.len();
        l.run_for(Duration::from_secs(5));
        let sent = &l.ends[0].sent_at[from..];
        let gaps: Vec<u128> = sent.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
        assert!(gaps.len() > 40);
        assert!(gaps.iter().all(|&g| (75..=max).contains(&g)), "{gaps:?}");
        assert!(gaps.iter().any(|&g| g < 85) && gaps.iter().any(|&g| g > 85));
    }
}

fn peer_packet(your: u32, state: State) -> Control {
    Control {
        diag: Diag::None,
        state,
        poll: false,
        final_bit: false,
        detect_mult: 3,
        my_discriminator: 9,
        your_discriminator: your,
        desired_min_tx_us: 50_000,
        required_min_rx_us: 50_000,
        required_min_echo_rx_us: 0,
    }
}

#[test]
fn bad_packets_are_counted_by_reason_and_change_nothing() {
    let now = std::time::Instant::now();
    let mut s = Session::new(SessionConfig::new("p", 5, 50 * MS, 3), 1);
    let mut out = Vec::new();
    s.handle(Input::Start, now, &mut out);
    let mut auth = peer_packet(0, State::Down).encode().to_vec();
    auth[1] |= 0x04;
    auth[3] = 28;
    auth.extend([1, 4, 0, 0]);
    let cases: Vec<(Vec<u8>, u8, Discard)> = vec![
        (
            peer_packet(0, State::Down).encode()[..20].to_vec(),
            TTL,
            Discard::Malformed(crate::PacketError::Truncated(20)),
        ),
        (
            peer_packet(0, State::Down).encode().to_vec(),
            254,
            Discard::Ttl(254),
        ),
        (auth, TTL, Discard::Authentication),
        (
            peer_packet(6, State::Init).encode().to_vec(),
            TTL,
            Discard::Discriminator(6),
        ),
        (
            peer_packet(0, State::Up).encode().to_vec(),
            TTL,
            Discard::NoDiscriminator(State::Up),
        ),
    ];
    for (bytes, ttl, want) in cases {
        out.clear();
        s.handle(
            Input::Received {
                packet: &bytes,
                ttl,
            },
            now,
            &mut out,
        );
        assert_eq!(out, [Output::Dropped(want)]);
    }
    let st = s.stats();
    assert_eq!(
        (
            st.dropped_malformed,
            st.dropped_ttl,
            st.dropped_auth,
            st.dropped_discriminator
        ),
        (1, 1, 1, 2)
    );
    assert_eq!(st.packets_in, 0);
    assert_eq!(s.state(), State::Down);
}

#[test]
fn a_poll_is_answered_at_once_with_final() {
    let now = std::time::Instant::now();
    let mut s = Session::new(SessionConfig::new("p", 5, 50 * MS, 3), 1);
    let mut out = Vec::new();
    s.handle(Input::Start, now, &mut out);
    out.clear();
    let mut p = peer_packet(5, State::Down);
    p.poll = true;
    receive(&mut s, p, now, &mut out);
    let finals: Vec<Control> = sent(&out).into_iter().filter(|c| c.final_bit).collect();
    assert_eq!(finals.len(), 1, "{out:?}");
    assert!(!finals[0].poll);
    assert_eq!(finals[0].your_discriminator, 9);
    assert_eq!(s.state(), State::Init);
}

fn receive(s: &mut Session, p: Control, now: std::time::Instant, out: &mut Vec<Output>) {
    out.clear();
    s.handle(
        Input::Received {
            packet: &p.encode(),
            ttl: TTL,
        },
        now,
        out,
    );
}

fn sent(out: &[Output]) -> Vec<Control> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(b) => Some(crate::ControlPacket::new_checked(&b[..]).ok()?.to_control()),
            _ => None,
        })
        .collect()
}

#[test]
fn coming_up_polls_for_the_fast_interval_until_the_peer_answers_final() {
    let mut now = std::time::Instant::now();
    let mut s = Session::new(SessionConfig::new("p", 5, 50 * MS, 3), 1);
    let mut out = Vec::new();
    s.handle(Input::Start, now, &mut out);
    assert!(sent(&out)
        .iter()
        .all(|c| c.desired_min_tx_us == 1_000_000 && !c.poll));
    receive(&mut s, peer_packet(0, State::Down), now, &mut out);
    receive(&mut s, peer_packet(5, State::Init), now, &mut out);
    let up = sent(&out);
    assert_eq!(up.len(), 1, "{out:?}");
    assert!(up[0].poll && up[0].state == State::Up);
    assert_eq!(up[0].desired_min_tx_us, 50_000);
    // Periodic packets keep asking until the Final arrives.
    now += Duration::from_secs(1);
    out.clear();
    s.handle(Input::Timer(crate::TimerKind::Transmit), now, &mut out);
    assert!(sent(&out).iter().all(|c| c.poll), "{out:?}");
    let mut fin = peer_packet(5, State::Up);
    fin.final_bit = true;
    receive(&mut s, fin, now, &mut out);
    now += Duration::from_secs(1);
    out.clear();
    s.handle(Input::Timer(crate::TimerKind::Transmit), now, &mut out);
    let after = sent(&out);
    assert_eq!(after.len(), 1, "{out:?}");
    assert!(!after[0].poll);
}
