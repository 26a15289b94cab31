use std::time::Duration;

use super::{expected_mdi, ip, peer_advert, vips, wire, H, VRID};
use crate::{
    effective_priority, AddressFamily, Input, InstanceConfig, Output, State, Version, VrrpError,
    VrrpPacket,
};

const SEC: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg(priority: u8) -> InstanceConfig {
    InstanceConfig::new("site-a", VRID, priority, vips())
}

fn cfg_v(version: Version, interval: Duration, priority: u8) -> InstanceConfig {
    InstanceConfig {
        version,
        advert_interval: interval,
        ..cfg(priority)
    }
}

fn is_transition(a: &Output, from: State, to: State) -> bool {
    matches!(a, Output::Transition { from: f, to: t, .. } if *f == from && *t == to)
}

/// A node at 10.0.0.2 that has become master through the master-down timer.
fn master(priority: u8) -> H {
    let mut h = H::new(cfg(priority), ip(2));
    h.ev(Input::Start);
    let due = h.next().expect("backup timer armed");
    h.at(due).fire();
    assert_eq!(h.inst.state(), State::Master);
    h
}

#[test]
fn owner_starts_as_master_at_once() {
    let mut h = H::new(cfg(255), ip(2));
    let out = h.ev(Input::Start);
    assert_eq!(out.len(), 4, "{out:?}");
    assert!(is_transition(&out[0], State::Initialize, State::Master));
    assert_eq!(
        &out[1..],
        &[
            Output::BecomeMaster,
            Output::SendAdvert { priority: 255 },
            Output::SendGratuitousArp
        ]
    );
    assert_eq!(h.inst.state(), State::Master);
    assert_eq!(h.next(), Some(SEC));
    assert_eq!(h.inst.stats().became_master, 1);

    assert_eq!(h.at(ms(999)).fire(), vec![], "early wake-up is ignored");
    assert_eq!(h.at(SEC).fire(), vec![Output::SendAdvert { priority: 255 }]);
    assert_eq!(h.next(), Some(2 * SEC));
    assert_eq!(h.inst.stats().adverts_sent, 2);
    assert_eq!(h.ev(Input::Start), vec![], "a second startup is ignored");
}

#[test]
fn backup_takes_over_after_exact_master_down_interval() {
    let cases = [
        (Version::V3, SEC),
        (Version::V3, ms(100)),
        (Version::V3, ms(40_950)),
        (Version::V2, SEC),
        (Version::V2, 3 * SEC),
    ];
    for (version, interval) in cases {
        for priority in [1u8, 50, 100, 200, 254] {
            let mut h = H::new(cfg_v(version, interval, priority), ip(2));
            let out = h.ev(Input::Start);
            assert!(is_transition(&out[0], State::Initialize, State::Backup));
            assert_eq!(out[1..], [Output::BecomeBackup]);
            let mdi = expected_mdi(version, interval, priority);
            assert_eq!(h.inst.master_down_interval(), mdi);
            assert_eq!(
                h.next(),
                Some(mdi),
                "{version} {interval:?} priority {priority}"
            );

            let just_before = mdi - Duration::from_nanos(1);
            assert_eq!(h.at(just_before).fire(), vec![]);
            assert_eq!(h.inst.state(), State::Backup);

            let out = h.at(mdi).fire();
            assert!(is_transition(&out[0], State::Backup, State::Master));
            assert_eq!(
                out[1..],
                [
                    Output::BecomeMaster,
                    Output::SendAdvert { priority },
                    Output::SendGratuitousArp
                ]
            );
            assert_eq!(h.next(), Some(mdi + interval));
        }
    }
}

#[test]
fn adverts_from_the_master_keep_a_backup_waiting() {
    let mut h = H::new(cfg(100), ip(2));
    h.ev(Input::Start);
    let adv = wire(&peer_advert(Version::V3, 200, SEC), ip(3));
    let mdi = expected_mdi(Version::V3, SEC, 100);
    for i in 0..10u64 {
        let t = ms(500) + SEC * i as u32;
        assert_eq!(
            h.at(t).recv(ip(3), &adv),
            vec![Output::Accepted {
                src: ip(3),
                priority: 200
            }]
        );
        assert_eq!(h.next(), Some(t + mdi));
    }
    assert_eq!(h.inst.state(), State::Backup);
    assert_eq!(h.inst.stats().adverts_received, 10);
    let last = ms(9500);
    h.at(last + mdi).fire();
    assert_eq!(h.inst.state(), State::Master);
}

#[test]
fn priority_zero_makes_backup_take_over_at_skew_time() {
    let mut h = H::new(cfg(100), ip(2));
    h.ev(Input::Start);
    h.at(ms(200))
        .recv(ip(3), &wire(&peer_advert(Version::V3, 200, SEC), ip(3)));
    h.at(ms(700))
        .recv(ip(3), &wire(&peer_advert(Version::V3, 0, SEC), ip(3)));
    let skew = SEC * 156 / 256;
    assert_eq!(h.inst.skew_time(), skew);
    assert_eq!(h.next(), Some(ms(700) + skew));
    assert_eq!(h.inst.stats().priority_zero_received, 1);
    let out = h.at(ms(700) + skew).fire();
    assert!(is_transition(&out[0], State::Backup, State::Master));
    assert!(
        matches!(out[0], Output::Transition { reason, .. } if reason.contains("priority 0")),
        "{out:?}"
    );
    assert_eq!(h.inst.state(), State::Master);
}

#[test]
fn master_answers_priority_zero_with_an_advert() {
    let mut h = master(100);
    let t = h.next().unwrap() - ms(300);
    let out = h
        .at(t)
        .recv(ip(3), &wire(&peer_advert(Version::V3, 0, SEC), ip(3)));
    assert_eq!(
        out,
        vec![
            Output::Accepted {
                src: ip(3),
                priority: 0
            },
            Output::SendAdvert { priority: 100 }
        ]
    );
    assert_eq!(h.next(), Some(t + SEC));
    assert_eq!(h.inst.state(), State::Master);
}

#[test]
fn shutdown_as_master_sends_priority_zero() {
    let mut h = H::new(cfg(255), ip(2));
    h.ev(Input::Start);
    let out = h.at(ms(300)).ev(Input::Stop);
    assert!(is_transition(&out[0], State::Master, State::Initialize));
    assert_eq!(
        out[1..],
        [Output::SendAdvert { priority: 0 }, Output::Stopped]
    );
    assert_eq!(h.inst.state(), State::Initialize);
    assert_eq!(h.next(), None);
    let s = h.inst.stats();
    assert_eq!((s.priority_zero_sent, s.released_master), (1, 1));

    let adv = h.inst.advert(0);
    let bytes = wire(&adv, ip(2));
    let pkt = VrrpPacket::new_checked(&bytes[..], AddressFamily::Ipv4).unwrap();
    assert_eq!((pkt.priority(), pkt.vrid()), (0, VRID));
    assert_eq!(pkt.addresses().collect::<Vec<_>>(), vips());

    assert_eq!(h.ev(Input::Stop), vec![], "already stopped");
    let out = h.at(SEC).ev(Input::Start);
    assert!(
        is_transition(&out[0], State::Initialize, State::Master),
        "restarts"
    );
}

#[test]
fn shutdown_as_backup_sends_nothing() {
    let mut h = H::new(cfg(100), ip(2));
    h.ev(Input::Start);
    let out = h.at(ms(10)).ev(Input::Stop);
    assert!(is_transition(&out[0], State::Backup, State::Initialize));
    assert_eq!(out[1..], [Output::Stopped]);
    assert_eq!(h.inst.stats().adverts_sent, 0);
    assert_eq!(h.next(), None);
}

/// Feeds adverts of a lower-priority master every second from 0.5 s to 30 s
/// and returns when the instance became master, if it did.
fn takeover_time(cfg: InstanceConfig) -> Option<Duration> {
    let mut h = H::new(cfg, ip(2));
    h.ev(Input::Start);
    let adv = wire(&peer_advert(Version::V3, 100, SEC), ip(3));
    for i in 0..30u32 {
        let t = ms(500) + SEC * i;
        if let Some(due) = h.next().filter(|d| *d <= t) {
            h.at(due).fire();
            if h.inst.state() == State::Master {
                return Some(due);
            }
        }
        h.at(t).recv(ip(3), &adv);
    }
    None
}

#[test]
fn preempt_takes_over_from_a_lower_master() {
    let got = takeover_time(cfg(150));
    assert_eq!(got, Some(expected_mdi(Version::V3, SEC, 150)));
}

#[test]
fn takeover_reason_names_the_cause() {
    let mut h = H::new(cfg(150), ip(2));
    h.ev(Input::Start);
    h.at(ms(500))
        .recv(ip(3), &wire(&peer_advert(Version::V3, 100, SEC), ip(3)));
    let due = h.next().unwrap();
    let out = h.at(due).fire();
    assert!(
        matches!(out[0], Output::Transition { reason, .. } if reason.contains("preempt")),
        "{out:?}"
    );
    let mut quiet = H::new(cfg(150), ip(2));
    quiet.ev(Input::Start);
    let due = quiet.next().unwrap();
    let out = quiet.at(due).fire();
    assert!(
        matches!(out[0], Output::Transition { reason, .. } if reason.contains("no advert")),
        "{out:?}"
    );
}

#[test]
fn nopreempt_leaves_a_live_lower_master_alone() {
    let got = takeover_time(InstanceConfig {
        preempt: false,
        ..cfg(150)
    });
    assert_eq!(got, None);
}

#[test]
fn preempt_delay_tolerates_a_lower_master_for_a_while() {
    let delay = 10 * SEC;
    let got = takeover_time(InstanceConfig {
        preempt_delay: delay,
        ..cfg(150)
    })
    .expect("takes over eventually");
    // The last tolerated advert is the last one before the delay ran out.
    let last_accepted = ms(9500);
    assert!(got > delay);
    assert_eq!(got, last_accepted + expected_mdi(Version::V3, SEC, 150));
}

#[test]
fn equal_priority_master_with_higher_address_wins() {
    let mut h = master(100);
    let t = h.next().unwrap() - ms(100);
    let out = h
        .at(t)
        .recv(ip(3), &wire(&peer_advert(Version::V3, 100, SEC), ip(3)));
    let accepted = Output::Accepted {
        src: ip(3),
        priority: 100,
    };
    assert_eq!(out[0], accepted);
    assert!(
        is_transition(&out[1], State::Master, State::Backup),
        "{out:?}"
    );
    assert_eq!(out[2..], [Output::BecomeBackup]);
    assert_eq!(h.inst.stats().released_master, 1);
    assert_eq!(h.next(), Some(t + expected_mdi(Version::V3, SEC, 100)));
}

#[test]
fn split_brain_survivor_reannounces() {
    // Equal priority from a lower address, and a lower priority from a
    // higher address: both times we stay master and announce again at once.
    for (src, priority) in [(ip(1), 100u8), (ip(9), 99)] {
        let mut h = master(100);
        let t = h.next().unwrap() - ms(100);
        let out = h
            .at(t)
            .recv(src, &wire(&peer_advert(Version::V3, priority, SEC), src));
        assert_eq!(
            out,
            vec![
                Output::Accepted { src, priority },
                Output::SendAdvert { priority: 100 },
                Output::SendGratuitousArp
            ]
        );
        assert_eq!(h.inst.state(), State::Master);
        assert_eq!(h.next(), Some(t + SEC));
    }
    // The weaker master backs off when it hears the stronger one.
    let mut weak = master(99);
    let out = weak.recv(ip(9), &wire(&peer_advert(Version::V3, 100, SEC), ip(9)));
    assert!(is_transition(&out[1], State::Master, State::Backup));
}

#[test]
fn v3_backup_learns_the_master_interval() {
    let mut h = H::new(cfg(100), ip(2));
    h.ev(Input::Start);
    let t = ms(100);
    h.at(t)
        .recv(ip(3), &wire(&peer_advert(Version::V3, 200, ms(200)), ip(3)));
    assert_eq!(h.inst.master_adver_interval(), ms(200));
    assert_eq!(h.next(), Some(t + expected_mdi(Version::V3, ms(200), 100)));
    // Our own adverts keep our configured interval once we are master.
    let due = h.next().unwrap();
    h.at(due).fire();
    assert_eq!(h.next(), Some(due + SEC));
    assert_eq!(h.inst.advert(100).interval, SEC);

    // A master that backs off learns the new master's interval.
    let mut m = master(100);
    m.recv(ip(3), &wire(&peer_advert(Version::V3, 200, ms(300)), ip(3)));
    assert_eq!(m.inst.state(), State::Backup);
    assert_eq!(m.inst.master_adver_interval(), ms(300));
}

#[test]
fn v2_backup_keeps_its_interval() {
    let mut h = H::new(cfg_v(Version::V2, SEC, 100), ip(2));
    h.ev(Input::Start);
    h.at(ms(100))
        .recv(ip(3), &wire(&peer_advert(Version::V2, 200, SEC), ip(3)));
    assert_eq!(h.inst.stats().adverts_received, 1);
    assert_eq!(
        h.next(),
        Some(ms(100) + expected_mdi(Version::V2, SEC, 100))
    );
}

/// The owner still processes adverts, and other nodes treat its 255 as just
/// the highest priority. (A 255 from a source that is none of the VIPs is
/// dropped: see the validation tests.)
#[test]
fn owner_priority_is_just_higher() {
    let owner = vips()[0];
    let mut h = H::new(cfg(100), ip(2));
    h.ev(Input::Start);
    h.at(ms(100))
        .recv(owner, &wire(&peer_advert(Version::V3, 255, SEC), owner));
    assert_eq!(h.inst.stats().adverts_received, 1);
    assert_eq!(h.inst.state(), State::Backup);
    assert_eq!(
        h.next(),
        Some(ms(100) + expected_mdi(Version::V3, SEC, 100))
    );

    let mut m = master(254);
    let out = m.recv(owner, &wire(&peer_advert(Version::V3, 255, SEC), owner));
    assert!(is_transition(&out[1], State::Master, State::Backup));
}

#[test]
fn effective_priority_is_clamped() {
    for (base, weights, want) in [
        (100u8, -60i32, 40u8),
        (100, 0, 100),
        (100, -200, 1),
        (200, 100, 254),
        (1, i32::MIN, 1),
        (254, i32::MAX, 254),
        (255, -100, 255),
    ] {
        assert_eq!(effective_priority(base, weights), want, "{base} {weights}");
    }
}

#[test]
fn track_weight_moves_master_below_peer() {
    let mut h = master(150);
    let out = h.ev(Input::Track {
        weight_sum: -60,
        fault: false,
    });
    assert_eq!(out, vec![], "a priority change alone is no transition");
    assert_eq!(h.inst.priority(), 90);
    let due = h.next().unwrap();
    assert_eq!(h.at(due).fire(), vec![Output::SendAdvert { priority: 90 }]);
    let out = h.recv(ip(1), &wire(&peer_advert(Version::V3, 100, SEC), ip(1)));
    assert!(is_transition(&out[1], State::Master, State::Backup));

    // Restored, and with preempt on, our backup now ignores the peer.
    h.ev(Input::Track {
        weight_sum: 0,
        fault: false,
    });
    assert_eq!(h.inst.priority(), 150);
    let before = h.next();
    h.recv(ip(1), &wire(&peer_advert(Version::V3, 100, SEC), ip(1)));
    assert_eq!(h.next(), before, "lower master's advert ignored to preempt");
}

#[test]
fn track_fault_stops_adverts_and_releases() {
    let mut h = master(150);
    let t = h.next().unwrap() - ms(500);
    let out = h.at(t).ev(Input::Track {
        weight_sum: 0,
        fault: true,
    });
    assert!(is_transition(&out[0], State::Master, State::Fault));
    assert_eq!(
        out[1..],
        [Output::SendAdvert { priority: 0 }, Output::EnterFault]
    );
    assert_eq!(h.next(), None);
    assert_eq!(h.fire(), vec![]);
    let out = h.recv(ip(1), &wire(&peer_advert(Version::V3, 100, SEC), ip(1)));
    let ignored = Output::Accepted {
        src: ip(1),
        priority: 100,
    };
    assert_eq!(out, vec![ignored], "counted, and nothing done in Fault");
    assert_eq!(h.inst.state(), State::Fault);

    let r = t + SEC;
    let out = h.at(r).ev(Input::Track {
        weight_sum: 0,
        fault: false,
    });
    assert!(is_transition(&out[0], State::Fault, State::Backup));
    assert_eq!(out[1..], [Output::BecomeBackup]);
    assert_eq!(h.next(), Some(r + expected_mdi(Version::V3, SEC, 150)));

    let out = h.ev(Input::Stop);
    assert!(is_transition(&out[0], State::Backup, State::Initialize));
}

#[test]
fn fault_before_startup_and_owner_recovery() {
    let mut h = H::new(cfg(255), ip(2));
    h.ev(Input::Track {
        weight_sum: 0,
        fault: true,
    });
    assert_eq!(h.inst.state(), State::Initialize);
    let out = h.ev(Input::Start);
    assert!(is_transition(&out[0], State::Initialize, State::Fault));
    assert_eq!(
        out[1..],
        [Output::EnterFault],
        "never was master: no priority 0"
    );
    let out = h.ev(Input::Track {
        weight_sum: 0,
        fault: false,
    });
    assert!(is_transition(&out[0], State::Fault, State::Master));
    let out = h.ev(Input::Stop);
    assert!(is_transition(&out[0], State::Master, State::Initialize));
}

#[test]
fn bad_configs_are_refused_with_the_instance_name() {
    let six = "2001:db8::1".parse().unwrap();
    let bad = [
        InstanceConfig {
            vrid: 0,
            ..cfg(100)
        },
        InstanceConfig {
            priority: 0,
            ..cfg(100)
        },
        cfg_v(Version::V2, ms(1500), 100),
        cfg_v(Version::V3, ms(5), 100),
        cfg_v(Version::V3, Duration::ZERO, 100),
        InstanceConfig {
            auth: Some([1; 8]),
            ..cfg(100)
        },
        InstanceConfig {
            vips: vec![],
            ..cfg(100)
        },
        InstanceConfig {
            vips: vec![vips()[0], vips()[0]],
            ..cfg(100)
        },
        InstanceConfig {
            vips: vec![vips()[0], six],
            ..cfg(100)
        },
        InstanceConfig {
            unicast_peers: vec![six],
            ..cfg(100)
        },
        InstanceConfig {
            unicast_peers: vec![ip(2)],
            ..cfg(100)
        },
    ];
    for c in bad {
        match crate::Instance::new(c.clone(), ip(2)) {
            Err(e @ VrrpError::Config { .. }) => assert!(e.to_string().contains("site-a"), "{e}"),
            other => panic!("{c:?} gave {other:?}"),
        }
    }
    let v2_on_v6 = InstanceConfig {
        vips: vec![six],
        ..cfg_v(Version::V2, SEC, 100)
    };
    let link_local = "fe80::1".parse().unwrap();
    assert!(crate::Instance::new(v2_on_v6, link_local).is_err());
    let v3_on_v6 = InstanceConfig {
        vips: vec![six],
        ..cfg(100)
    };
    assert!(crate::Instance::new(v3_on_v6, link_local).is_ok());
}

#[test]
fn hold_makes_a_master_resign_and_stay_backup_until_released() {
    let mut h = master(150);
    let t = h.next().unwrap() - ms(300);
    let out = h.at(t).ev(Input::Hold(true));
    assert_eq!(out[0], Output::SendAdvert { priority: 0 });
    assert!(is_transition(&out[1], State::Master, State::Backup));
    assert!(
        matches!(out[1], Output::Transition { reason, .. } if reason.contains("handover")),
        "{out:?}"
    );
    assert!(out.contains(&Output::BecomeBackup));
    assert!(h.inst.held());
    assert_eq!(h.inst.stats().priority_zero_sent, 1);
    assert_eq!(
        h.ev(Input::Hold(true)),
        vec![],
        "holding twice does nothing"
    );

    // A lower-priority peer takes over; held, we leave it alone for as long
    // as it advertises.
    let adv = wire(&peer_advert(Version::V3, 100, SEC), ip(3));
    for i in 1..20u32 {
        let at = t + SEC * i;
        if let Some(due) = h.next().filter(|d| *d <= at) {
            h.at(due).fire();
        }
        h.at(at).recv(ip(3), &adv);
        assert_eq!(h.inst.state(), State::Backup, "held backup preempted");
    }

    // Released, preemption takes mastership back one master-down interval
    // after the last advert it had to honour.
    let released = t + SEC * 20;
    assert_eq!(h.at(released).ev(Input::Hold(false)), vec![]);
    assert!(!h.inst.held());
    let mut back = None;
    for i in 0..10u32 {
        let at = released + ms(500) + SEC * i;
        if let Some(due) = h.next().filter(|d| *d <= at) {
            h.at(due).fire();
            if h.inst.state() == State::Master {
                back = Some(due);
                break;
            }
        }
        h.at(at).recv(ip(3), &adv);
    }
    assert_eq!(
        back,
        Some(t + SEC * 19 + expected_mdi(Version::V3, SEC, 150)),
        "the last honoured advert came at 19 s"
    );
}

#[test]
fn held_backup_still_takes_over_when_no_master_is_left() {
    let mut h = H::new(cfg(150), ip(2));
    h.ev(Input::Start);
    h.at(ms(10)).ev(Input::Hold(true));
    assert_eq!(h.inst.state(), State::Backup);
    let due = h.next().expect("master-down timer armed");
    assert_eq!(due, expected_mdi(Version::V3, SEC, 150));
    h.at(due).fire();
    assert_eq!(
        h.inst.state(),
        State::Master,
        "the VIPs must not go unowned"
    );
    assert!(h.inst.held(), "the hold outlives the takeover");
}

#[test]
fn held_owner_starts_as_backup() {
    let mut h = H::new(cfg(255), ip(2));
    h.ev(Input::Hold(true));
    h.ev(Input::Start);
    assert_eq!(h.inst.state(), State::Backup);
}
