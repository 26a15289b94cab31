//! End to end: a host on the client segment claims an owned VIP with forged
//! ARP replies, gratuitous or aimed at the client. After each, the client's neighbour entry for the
//! VIP points back at the VIP's MAC within a second, vipd logs the forger's
//! MAC and counts the claims, and the VIP keeps serving.

mod common;

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use common::*;

const SPOOFER: &str = "02:66:66:66:66:66";

/// An ARP reply claiming the VIP, broadcast on the client bridge from the
/// switch: the client takes it, as hosts take such replies. argv: VIP, the
/// forger's MAC, and the target: the VIP itself (a gratuitous reply) or a
/// host's address and MAC (a reply aimed at that host's cache).
const FORGE: &str = r#"
import sys
from scapy.all import Ether, ARP, sendp, conf
conf.verb = 0
vip, mac, pdst, hwdst = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
sendp(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") /
      ARP(op=2, hwsrc=mac, psrc=vip, hwdst=hwdst, pdst=pdst), iface="brc")
"#;

/// Seconds since the client's neighbour entry for `addr` was last updated
/// (`ip -s neigh`: "used A/B/C", C being the update).
fn entry_age_s(lab: &viplab::Lab, addr: &str) -> Option<u64> {
    let out = lab
        .exec_ok("client", &["ip", "-s", "neigh", "show", addr])
        .ok()?;
    let used = out.split_whitespace().skip_while(|w| *w != "used").nth(1)?;
    // iproute2 prints "used 7/0/7probes 1": the last field runs into the next.
    let updated = used.rsplit('/').next()?;
    let digits = updated.split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

#[test]
#[cfg_attr(
    not(feature = "lab"),
    ignore = "lab: needs root and network namespaces; scripts/test runs it"
)]
fn a_forged_claim_on_an_owned_vip_is_undone_within_a_second() {
    let vip = viplab::vip(42);
    let lab = nat_lab("arpspoof", 1, false);
    let services = [single_service(vip, "nat")];
    let mut vipd =
        Vipd::start(&lab, "lb1", &node_config(&lab, "lb1", 1, "", &services)).expect("vipd starts");
    lab.wait_until("backend healthy", Duration::from_secs(20), || {
        vipd.healthy_backends() == 1
    })
    .expect("healthy");
    let addr = SocketAddrV4::new(vip, SERVICE_PORT);
    // The node owns the VIP outright: it answers with its port's MAC.
    let vip_mac = mac_of(&lab, "lb1", "eth0").expect("mac");
    lab.http_get("client", addr, Duration::from_secs(2))
        .expect("VIP serves");
    assert_eq!(
        client_neighbour(&lab, vip).as_deref(),
        Some(vip_mac.as_str())
    );
    let monitor = lab
        .spawn("client", &["ip", "monitor", "neigh"])
        .expect("ip monitor");
    let shown = vip.to_string();
    // The monitor's lines about the VIP that name `mac`.
    let changes = |mac: &str| {
        monitor
            .log()
            .lines()
            .filter(|l| l.starts_with(&format!("{shown} ")) && l.contains(mac))
            .count()
    };
    let client = lab.client_ip().to_string();
    let client_mac = mac_of(&lab, "client", "eth0").expect("client mac");
    for round in 1..=3 {
        // The second forgery names the client, not the VIP, as its target.
        // A host takes such a reply only once its entry is older than the
        // neighbour table's locktime (1 s by default; gratuitous replies
        // bypass it), so it waits until the entry's last update is 2 s old.
        let (pdst, hwdst) = if round == 2 {
            lab.wait_until(
                "the client's entry for the VIP is past its locktime",
                Duration::from_secs(5),
                || entry_age_s(&lab, &shown).is_some_and(|age| age >= 2),
            )
            .expect("the entry ages");
            (client.as_str(), client_mac.as_str())
        } else {
            (shown.as_str(), SPOOFER)
        };
        lab.exec_ok(
            "sw",
            &[
                "/usr/bin/python3",
                "-c",
                FORGE,
                &shown,
                SPOOFER,
                pdst,
                hwdst,
            ],
        )
        .expect("scapy sends the forged reply");
        // Python exits right after sending: from here is at most a little
        // longer than from the forged frame (scapy's start-up is not counted).
        let sent = Instant::now();
        // The forged reply took hold (the monitor saw it), then the VIP's
        // MAC came back.
        lab.wait_until(
            "the client's entry for the VIP is the VIP's MAC again",
            Duration::from_secs(1).saturating_sub(sent.elapsed()),
            || {
                changes(SPOOFER) >= round
                    && changes(&vip_mac) >= round
                    && client_neighbour(&lab, vip).as_deref() == Some(vip_mac.as_str())
            },
        )
        .unwrap_or_else(|e| {
            panic!(
                "round {round}: {e}\nneighbour now {:?}\nmonitor:\n{}\nstats: {:?}",
                client_neighbour(&lab, vip),
                monitor.log(),
                vipd.stats()
            )
        });
    }
    let stats = vipd.stats();
    assert!(stats.arp_claims >= 3, "{stats:?}");
    lab.wait_until("vipd logs the claim", Duration::from_secs(2), || {
        vipd.log()
            .contains(&format!("ARP: {SPOOFER} on eth0 claims {shown}"))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", vipd.log()));
    // Once per minute per claimant: three forgeries, one line.
    assert_eq!(vipd.log().matches(SPOOFER).count(), 1, "{}", vipd.log());
    let r = lab.http_burst("client", addr, 20, 2).expect("burst");
    assert_eq!(r.failed, 0, "{:?}", r.errors);
    assert!(vipd.is_running(), "{}", vipd.log());
}
