//! Logs other hosts' ARP claims on this node's addresses. The workers have
//! already answered each with a gratuitous ARP; this says who it was, once
//! per claimant and address a minute, so a spoofer cannot flood the log.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dataplane::arp_claims::Claim;
use wire::MacAddr;

use crate::node::NodeState;

/// One log line per claimant and address at most this often.
const REPEAT: Duration = Duration::from_secs(60);

#[derive(Default)]
pub(super) struct ArpWatch {
    logged: HashMap<(MacAddr, Ipv4Addr), Instant>,
}

impl ArpWatch {
    /// The lines to log for `claims` seen by `now`.
    pub(super) fn lines(&mut self, claims: &[Claim], st: &NodeState, now: Instant) -> Vec<String> {
        self.logged.retain(|_, at| now.duration_since(*at) < REPEAT);
        claims
            .iter()
            .filter(|c| {
                let fresh = !self.logged.contains_key(&(c.mac, c.addr));
                if fresh {
                    self.logged.insert((c.mac, c.addr), now);
                }
                fresh
            })
            .map(|c| line(c, st))
            .collect()
    }
}

fn line(c: &Claim, st: &NodeState) -> String {
    let port = st
        .ports
        .get(usize::from(c.port))
        .map_or("?", |p| p.name.as_str());
    let owner = match st.config.vip_owner(c.addr) {
        Some(v) => format!("as master of VRRP instance {}", v.name),
        None => "outright".to_string(),
    };
    format!(
        "ARP: {} on {port} claims {}, which this node owns {owner}; answered with a gratuitous ARP. A host with that MAC has the address configured, or is spoofing it (repeats from it are logged once per {} s)",
        c.mac,
        c.addr,
        REPEAT.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_claimant_is_logged_once_a_minute() {
        let cfg = crate::config::parse(
            "[node]\nname = \"a\"\n[dataplane]\ninterfaces = [\"eth0\"]\n[[vrrp]]\nname = \"site\"\ninterface = \"eth0\"\nvrid = 9\nvips = [\"10.0.0.9\"]\n",
            "t.toml",
        )
        .expect("config");
        let st = NodeState::new(cfg, Vec::new());
        let spoof = Claim {
            addr: Ipv4Addr::new(10, 0, 0, 9),
            mac: MacAddr([2, 0x66, 0, 0, 0, 1]),
            port: 0,
        };
        let other = Claim {
            mac: MacAddr([2, 0x66, 0, 0, 0, 2]),
            ..spoof
        };
        let mut w = ArpWatch::default();
        let t0 = Instant::now();
        let first = w.lines(&[spoof], &st, t0);
        assert_eq!(first.len(), 1);
        assert!(
            first[0].contains("02:66:00:00:00:01")
                && first[0].contains("10.0.0.9")
                && first[0].contains("VRRP instance site"),
            "{first:?}"
        );
        assert_eq!(
            w.lines(&[spoof, other], &st, t0 + Duration::from_secs(30))
                .len(),
            1
        );
        assert_eq!(
            w.lines(&[spoof], &st, t0 + Duration::from_secs(59)).len(),
            0
        );
        assert_eq!(w.lines(&[spoof], &st, t0 + REPEAT).len(), 1);
    }
}
