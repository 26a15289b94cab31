//! Any bytes as the payload of a received VRRP datagram, over IPv4 and over
//! IPv6: the decoder never panics, what it accepts is consistent, and
//! instances configured like the seeds' senders (keepalived captures over
//! IPv4, hand-built IPv6 adverts) report every datagram as either accepted
//! or rejected, counted once. Seeds: `seeds/vrrp_packet`.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use vrrp::{
    AddressFamily, Datagram, Input, Instance, InstanceConfig, Output, Rejection, Version,
    VrrpPacket, HEADER_LEN, IPPROTO_VRRP, V2_AUTH_LEN,
};

/// The IPv4 seeds' sender and the instances receiving them.
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
/// The IPv6 seeds' sender and the instance receiving them.
const PEER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe12, 0x3456));
const ME6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2));

/// Each instance with the address it receives adverts from.
fn instances() -> [(Instance, IpAddr); 3] {
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
    let v6_vips = vec![IpAddr::V6(Ipv6Addr::new(
        0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50,
    ))];
    let v6 = InstanceConfig {
        advert_interval: Duration::from_millis(100),
        ..InstanceConfig::new("fuzz-v6", 51, 100, v6_vips)
    };
    let make = |cfg, me| Instance::new(cfg, me).expect("valid fuzz config");
    [
        (make(v3, ME), PEER),
        (make(v2, ME), PEER),
        (make(v6, ME6), PEER6),
    ]
}

fuzz_target!(|data: &[u8]| {
    for (af, src) in [(AddressFamily::Ipv4, PEER), (AddressFamily::Ipv6, PEER6)] {
        let Ok(pkt) = VrrpPacket::new_checked(data, af) else {
            continue;
        };
        assert_eq!(pkt.packet_type(), 1);
        assert_eq!(pkt.address_family(), af);
        assert_eq!(pkt.addresses().len(), usize::from(pkt.count_ip()));
        assert!(pkt.addresses().all(|a| AddressFamily::of(&a) == af));
        let v2 = pkt.version() == Version::V2;
        assert_eq!(pkt.auth_type().is_some(), v2);
        assert_eq!(pkt.auth_data().map(|d| d.len()), v2.then_some(V2_AUTH_LEN));
        assert!(pkt.advert_interval() <= Duration::from_secs(255));
        if af == AddressFamily::Ipv6 {
            assert!(!v2, "v2 decoded over IPv6");
            assert_eq!(data.len(), HEADER_LEN + 16 * usize::from(pkt.count_ip()));
        }
        let _ = pkt.verify_checksum(src, af.multicast_group());
    }
    let now = Instant::now();
    for (mut inst, peer) in instances() {
        let mut out = Vec::new();
        inst.handle(Input::Start, now, &mut out);
        out.clear();
        let dgram = Datagram {
            src: peer,
            dst: inst.address_family().multicast_group(),
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
