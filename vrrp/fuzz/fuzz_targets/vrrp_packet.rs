//! Any bytes as the payload of a received VRRP datagram: the decoder never
//! panics, what it accepts is consistent, and an instance configured like
//! the seeds' sender (keepalived captures) reports every datagram as either
//! accepted or rejected, counted once. Seeds: `seeds/vrrp_packet`.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vrrp::{
    AddressFamily, Datagram, Input, Instance, InstanceConfig, Output, Rejection, Version,
    VrrpPacket, IPPROTO_VRRP, MULTICAST_V4, V2_AUTH_LEN,
};

/// The seeds' sender.
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

fn instances() -> [Instance; 2] {
    let vips = vec![
        IpAddr::V4(Ipv4Addr::new(10, 123, 0, 50)),
        IpAddr::V4(Ipv4Addr::new(10, 123, 0, 51)),
    ];
    let v3 = InstanceConfig::new("fuzz-v3", 53, 100, vips.clone());
    let v2 = InstanceConfig {
        version: Version::V2,
        auth: Some(*b"secret\0\0"),
        ..InstanceConfig::new("fuzz-v2", 52, 100, vips)
    };
    [v3, v2].map(|cfg| Instance::new(cfg, ME).expect("valid fuzz config"))
}

fuzz_target!(|data: &[u8]| {
    let dst = IpAddr::V4(MULTICAST_V4);
    for af in [AddressFamily::Ipv4, AddressFamily::Ipv6] {
        let Ok(pkt) = VrrpPacket::new_checked(data, af) else {
            continue;
        };
        assert_eq!(pkt.packet_type(), 1);
        assert_eq!(pkt.addresses().len(), usize::from(pkt.count_ip()));
        assert!(pkt.addresses().all(|a| AddressFamily::of(&a) == af));
        let v2 = pkt.version() == Version::V2;
        assert_eq!(pkt.auth_type().is_some(), v2);
        assert_eq!(pkt.auth_data().map(|d| d.len()), v2.then_some(V2_AUTH_LEN));
        assert!(pkt.advert_interval() <= Duration::from_secs(255));
        let _ = pkt.verify_checksum(PEER, dst);
    }
    let now = Instant::now();
    for mut inst in instances() {
        let mut out = Vec::new();
        inst.handle(Input::Start, now, &mut out);
        out.clear();
        let dgram = Datagram {
            src: PEER,
            dst,
            ttl: 255,
            protocol: IPPROTO_VRRP,
            payload: data,
        };
        inst.handle(Input::Received(dgram), now, &mut out);
        let verdicts = out
            .iter()
            .filter(|o| matches!(o, Output::Accepted { .. } | Output::Rejected { .. }))
            .count();
        assert_eq!(verdicts, 1, "{out:?}");
        // A v2 advert for other addresses is dropped but counted as an
        // address mismatch, which is not a drop: a v3 one is processed.
        let other_addresses = out.iter().any(|o| {
            matches!(
                o,
                Output::Rejected {
                    reason: Rejection::Addresses,
                    ..
                }
            )
        });
        let s = inst.stats();
        let counted = s.adverts_received + s.dropped() + u64::from(other_addresses);
        assert_eq!(counted, 1, "{s:?}");
    }
});
