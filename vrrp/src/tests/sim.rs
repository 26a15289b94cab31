//! Several instances on one simulated link: adverts are encoded, carried to
//! every connected peer at the same instant, decoded and validated.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{expected_mdi, ip, ll, track_timer, vips, vips6, VRID};
use crate::{
    Datagram, Input, Instance, InstanceConfig, Output, State, TimerKind, Version, IPPROTO_VRRP,
};

const SEC: Duration = Duration::from_secs(1);

struct Node {
    inst: Instance,
    ip: IpAddr,
    /// The timer the instance armed, from its outputs.
    timer: Option<(TimerKind, Instant)>,
    holds_vips: bool,
    garps: u32,
    /// When the node last entered Master.
    master_since: Option<Instant>,
}

struct Net {
    t0: Instant,
    now: Instant,
    nodes: Vec<Node>,
    /// `links[a][b]`: adverts from a reach b.
    links: Vec<Vec<bool>>,
    /// Sender, destination and VRRP message of each advert in flight.
    wire: VecDeque<(usize, IpAddr, Vec<u8>)>,
}

impl Net {
    /// Nodes at 10.0.0.1, 10.0.0.2, …
    fn new(cfgs: Vec<InstanceConfig>) -> Net {
        let addrs = (1..=cfgs.len()).map(|i| ip(i as u8)).collect();
        Net::with_addresses(cfgs, addrs)
    }

    /// Nodes at fe80::1, fe80::2, …
    fn new_v6(cfgs: Vec<InstanceConfig>) -> Net {
        let addrs = (1..=cfgs.len()).map(|i| ll(i as u16)).collect();
        Net::with_addresses(cfgs, addrs)
    }

    fn with_addresses(cfgs: Vec<InstanceConfig>, addrs: Vec<IpAddr>) -> Net {
        let t0 = Instant::now();
        let nodes: Vec<Node> = cfgs
            .into_iter()
            .zip(addrs)
            .map(|(cfg, addr)| Node {
                inst: Instance::new(cfg, addr).expect("valid config"),
                ip: addr,
                timer: None,
                holds_vips: false,
                garps: 0,
                master_since: None,
            })
            .collect();
        let n = nodes.len();
        Net {
            t0,
            now: t0,
            nodes,
            links: vec![vec![true; n]; n],
            wire: VecDeque::new(),
        }
    }

    fn connect(&mut self, up: bool) {
        for row in &mut self.links {
            row.iter_mut().for_each(|l| *l = up);
        }
    }

    fn event(&mut self, i: usize, ev: Input<'_>) {
        let mut out = Vec::new();
        self.nodes[i].inst.handle(ev, self.now, &mut out);
        let node = &mut self.nodes[i];
        for action in track_timer(&mut node.timer, out) {
            let node = &mut self.nodes[i];
            match action {
                Output::SendAdvert { priority } => {
                    for header in node.inst.advert_headers() {
                        assert_eq!((header.src, header.ttl), (node.ip, 255));
                        let mut buf = vec![0u8; 1500];
                        let n = node
                            .inst
                            .encode_advert(priority, &header, &mut buf)
                            .expect("encodes");
                        buf.truncate(n);
                        self.wire.push_back((i, header.dst, buf));
                    }
                }
                Output::BecomeMaster => {
                    node.holds_vips = true;
                    node.master_since = Some(self.now);
                }
                Output::BecomeBackup | Output::EnterFault | Output::Stopped => {
                    node.holds_vips = false
                }
                Output::SendGratuitousArp => node.garps += 1,
                Output::Transition { .. }
                | Output::Accepted { .. }
                | Output::Rejected { .. }
                | Output::SetTimer(..) => {}
            }
        }
    }

    fn deliver(&mut self) {
        while let Some((from, dst, packet)) = self.wire.pop_front() {
            let src = self.nodes[from].ip;
            for to in 0..self.nodes.len() {
                if to != from && self.links[from][to] {
                    let dgram = Datagram {
                        src,
                        dst,
                        ttl: 255,
                        protocol: IPPROTO_VRRP,
                        payload: &packet,
                    };
                    self.event(to, Input::Received(dgram));
                }
            }
        }
    }

    fn send(&mut self, i: usize, ev: Input<'_>) {
        self.event(i, ev);
        self.deliver();
    }

    fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.send(i, Input::Start);
        }
    }

    /// Fires every timer due up to `t0 + until`, in time order.
    fn run_until(&mut self, until: Duration) {
        let end = self.t0 + until;
        loop {
            let due = (0..self.nodes.len())
                .filter_map(|i| self.due(i).map(|t| (t, i)))
                .min();
            match due {
                Some((t, i)) if t <= end => {
                    self.now = t;
                    self.fire(i);
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// The deadline of node `i`'s armed timer.
    fn due(&self, i: usize) -> Option<Instant> {
        self.nodes[i].timer.map(|(_, t)| t)
    }

    /// Fires node `i`'s armed timer.
    fn fire(&mut self, i: usize) {
        if let Some((kind, _)) = self.nodes[i].timer {
            self.send(i, Input::Timer(kind));
        }
    }

    fn at(&mut self, offset: Duration) {
        self.run_until(offset);
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].inst.state() == State::Master)
            .collect()
    }

    fn vip_holders(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].holds_vips)
            .collect()
    }

    fn master_since(&self, i: usize) -> Option<Duration> {
        self.nodes[i].master_since.map(|t| t - self.t0)
    }
}

fn cfg(priority: u8) -> InstanceConfig {
    InstanceConfig::new("site-a", VRID, priority, vips())
}

#[test]
fn highest_priority_wins_and_others_stay_backup() {
    let mut net = Net::new(vec![cfg(100), cfg(150), cfg(50)]);
    net.start_all();
    net.at(20 * SEC);
    assert_eq!(net.masters(), vec![1]);
    assert_eq!(net.vip_holders(), vec![1]);
    assert_eq!(
        net.master_since(1),
        Some(expected_mdi(Version::V3, SEC, 150))
    );
    assert_eq!(net.nodes[1].inst.stats().became_master, 1);
    assert_eq!(net.nodes[0].inst.stats().became_master, 0);
}

#[test]
fn clean_stop_hands_over_at_skew_time() {
    let mut net = Net::new(vec![cfg(150), cfg(100)]);
    net.start_all();
    net.at(10 * SEC);
    assert_eq!(net.masters(), vec![0]);
    net.send(0, Input::Stop);
    net.at(20 * SEC);
    assert_eq!(net.masters(), vec![1]);
    let skew = SEC * (256 - 100) / 256;
    assert_eq!(net.master_since(1), Some(10 * SEC + skew));
}

#[test]
fn hard_failure_hands_over_after_master_down_interval() {
    let mut net = Net::new(vec![cfg(150), cfg(100)]);
    net.start_all();
    net.at(10 * SEC);
    let last_advert = net.due(0).unwrap() - SEC - net.t0;
    net.links[0][1] = false;
    net.at(20 * SEC);
    assert_eq!(
        net.master_since(1),
        Some(last_advert + expected_mdi(Version::V3, SEC, 100))
    );
}

#[test]
fn split_brain_heals_to_one_master() {
    let mut net = Net::new(vec![cfg(150), cfg(100)]);
    net.start_all();
    net.at(5 * SEC);
    net.connect(false);
    net.at(15 * SEC);
    assert_eq!(net.masters(), vec![0, 1], "both master while partitioned");
    assert_eq!(net.vip_holders(), vec![0, 1]);
    net.connect(true);
    net.at(15 * SEC + SEC);
    assert_eq!(net.masters(), vec![0]);
    assert_eq!(net.vip_holders(), vec![0]);
    net.at(30 * SEC);
    assert_eq!(net.masters(), vec![0]);
    assert_eq!(net.nodes[1].inst.stats().released_master, 1);
}

#[test]
fn split_brain_survivor_reannounces_when_it_hears_the_other_first() {
    let mut net = Net::new(vec![cfg(150), cfg(100)]);
    net.start_all();
    net.connect(false);
    net.at(10 * SEC);
    assert_eq!(net.masters(), vec![0, 1]);
    net.connect(true);
    // The weak master's advert goes out first after the heal.
    let weak_due = net.due(1).unwrap();
    net.now = weak_due.max(net.now);
    let (garps, sent) = (net.nodes[0].garps, net.nodes[0].inst.stats().adverts_sent);
    net.fire(1);
    assert_eq!(net.nodes[0].garps, garps + 1, "survivor re-announced");
    assert_eq!(net.nodes[0].inst.stats().adverts_sent, sent + 1);
    assert_eq!(
        net.masters(),
        vec![0],
        "the weak master heard the re-announce"
    );
    assert_eq!(net.vip_holders(), vec![0]);
}

#[test]
fn track_weight_hands_over_to_a_preempting_peer_and_back() {
    let mut net = Net::new(vec![cfg(150), cfg(100)]);
    net.start_all();
    net.at(10 * SEC);
    assert_eq!(net.masters(), vec![0]);
    let tracked_at = 10 * SEC;
    net.send(
        0,
        Input::Track {
            weight_sum: -60,
            fault: false,
        },
    );
    net.at(20 * SEC);
    assert_eq!(net.masters(), vec![1]);
    assert_eq!(net.vip_holders(), vec![1]);
    let took = net.master_since(1).unwrap();
    let mdi = expected_mdi(Version::V3, SEC, 100);
    assert!(took > tracked_at && took <= tracked_at + mdi, "{took:?}");

    // From now on the lower master's adverts are ignored, so the master-down
    // timer, armed while our priority was still 90, runs out from the last
    // one before the restore.
    let last_b_advert = net.due(1).unwrap() - SEC - net.t0;
    net.send(
        0,
        Input::Track {
            weight_sum: 0,
            fault: false,
        },
    );
    net.at(30 * SEC);
    assert_eq!(net.masters(), vec![0]);
    let back = net.master_since(0).unwrap();
    assert_eq!(back, last_b_advert + expected_mdi(Version::V3, SEC, 90));
}

#[test]
fn track_weight_without_preempt_keeps_the_lowered_master() {
    let nopreempt = InstanceConfig {
        preempt: false,
        ..cfg(100)
    };
    let mut net = Net::new(vec![cfg(150), nopreempt]);
    net.start_all();
    net.at(10 * SEC);
    net.send(
        0,
        Input::Track {
            weight_sum: -60,
            fault: false,
        },
    );
    net.at(30 * SEC);
    assert_eq!(net.masters(), vec![0]);
    assert_eq!(net.nodes[0].inst.priority(), 90);
}

#[test]
fn fault_hands_over_at_skew_time_and_recovery_preempts_back() {
    let mut net = Net::new(vec![cfg(150), cfg(100)]);
    net.start_all();
    net.at(10 * SEC);
    net.send(
        0,
        Input::Track {
            weight_sum: 0,
            fault: true,
        },
    );
    assert_eq!(net.nodes[0].inst.state(), State::Fault);
    net.at(20 * SEC);
    assert_eq!(net.masters(), vec![1]);
    assert_eq!(
        net.master_since(1),
        Some(10 * SEC + SEC * (256 - 100) / 256)
    );
    net.send(
        0,
        Input::Track {
            weight_sum: 0,
            fault: false,
        },
    );
    net.at(30 * SEC);
    assert_eq!(net.masters(), vec![0]);
    assert_eq!(net.vip_holders(), vec![0]);
}

#[test]
fn v2_pair_with_password() {
    let v2 = |priority| InstanceConfig {
        version: Version::V2,
        auth: Some(*b"vipd\0\0\0\0"),
        ..cfg(priority)
    };
    let mut net = Net::new(vec![v2(100), v2(200)]);
    net.start_all();
    net.at(20 * SEC);
    assert_eq!(net.masters(), vec![1]);
    assert_eq!(
        net.master_since(1),
        Some(expected_mdi(Version::V2, SEC, 200))
    );
    assert!(net.nodes[0].inst.stats().adverts_received > 10);
    assert_eq!(net.nodes[0].inst.stats().dropped(), 0);
}

fn cfg6(priority: u8) -> InstanceConfig {
    InstanceConfig::new("site-6", VRID, priority, vips6())
}

#[test]
fn ipv6_pair_elects_and_takes_over_within_the_ipv4_bounds() {
    for interval in [SEC, Duration::from_millis(100)] {
        let with = |priority| InstanceConfig {
            advert_interval: interval,
            ..cfg6(priority)
        };
        let mut net = Net::new_v6(vec![with(150), with(100)]);
        net.start_all();
        net.at(20 * interval);
        assert_eq!(net.masters(), vec![0]);
        assert_eq!(net.vip_holders(), vec![0]);
        assert_eq!(
            net.master_since(0),
            Some(expected_mdi(Version::V3, interval, 150))
        );
        let s = net.nodes[1].inst.stats();
        assert!(s.adverts_received > 10, "{s:?}");
        assert_eq!(s.dropped() + s.address_mismatch, 0, "{s:?}");

        // The master dies: the backup takes over one master-down interval
        // after the last advert it heard, exactly as over IPv4.
        let last_advert = net.due(0).unwrap() - interval - net.t0;
        net.links[0][1] = false;
        net.at(40 * interval);
        assert_eq!(net.masters(), vec![0, 1]);
        assert_eq!(
            net.master_since(1),
            Some(last_advert + expected_mdi(Version::V3, interval, 100))
        );
        assert_eq!(net.nodes[1].garps, 1, "announced once on takeover");
        assert!(matches!(
            net.nodes[1].inst.announcement(),
            crate::Announcement::UnsolicitedNa { ref vips, .. } if vips.len() == 1
        ));

        // Healed: the higher priority preempts back.
        net.links[0][1] = true;
        net.at(42 * interval);
        assert_eq!(net.masters(), vec![0]);
        assert_eq!(net.vip_holders(), vec![0]);
    }
}

#[test]
fn ipv6_clean_stop_hands_over_at_skew_time() {
    let mut net = Net::new_v6(vec![cfg6(150), cfg6(100)]);
    net.start_all();
    net.at(10 * SEC);
    assert_eq!(net.masters(), vec![0]);
    net.send(0, Input::Stop);
    net.at(20 * SEC);
    assert_eq!(net.masters(), vec![1]);
    assert_eq!(
        net.master_since(1),
        Some(10 * SEC + SEC * (256 - 100) / 256)
    );
}

#[test]
fn ipv6_equal_priorities_elect_the_higher_link_local_address() {
    let mut net = Net::new_v6(vec![cfg6(100), cfg6(100), cfg6(100)]);
    net.connect(false);
    net.start_all();
    net.at(10 * SEC);
    assert_eq!(net.masters(), vec![0, 1, 2], "all master while partitioned");
    net.connect(true);
    net.at(12 * SEC);
    assert_eq!(net.masters(), vec![2], "fe80::3 is the highest");
    assert_eq!(net.vip_holders(), vec![2]);
    net.at(30 * SEC);
    assert_eq!(net.masters(), vec![2]);
}
