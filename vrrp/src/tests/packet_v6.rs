//! The VRRPv3 codec over IPv6 (RFC 5798 §5): 16-byte addresses and the
//! IPv6 pseudo-header checksum.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use super::ones_complement;
use crate::{encode, AddressFamily, Advert, Version, VrrpError, VrrpPacket, MULTICAST_V6};

fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse().expect("test address"))
}

/// What keepalived sends for `vrrp_version 3`, `family inet6`,
/// `virtual_router_id 51`, `priority 150`, `advert_int 0.1` and the VIP
/// 2001:db8::50, from fe80::5054:ff:fe12:3456.
///
/// Checksum by hand, in 16-bit words:
/// pseudo-header fe80 + 5054 + 00ff + fe12 + 3456 (source) + ff02 + 0012
/// (destination) + 0018 (length 24) + 0070 (next header 112) = 0x381d7,
/// folded 0x81da; message 3133 + 9601 + 000a + 2001 + 0db8 + 0050 = 0xf547;
/// 0x81da + 0xf547 = 0x17721, folded 0x7722, inverted 0x88dd.
const KEEPALIVED_V6: [u8; 24] = [
    0x31, 0x33, 0x96, 0x01, 0x00, 0x0a, 0x88, 0xdd, // header
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, // VIP
];

fn keepalived_src() -> IpAddr {
    v6("fe80::5054:ff:fe12:3456")
}

#[test]
fn golden_keepalived_style_ipv6_advert() {
    let src = keepalived_src();
    let dst = IpAddr::V6(MULTICAST_V6);
    assert_eq!(dst, v6("ff02::12"));

    let pkt = VrrpPacket::new_checked(&KEEPALIVED_V6[..], AddressFamily::Ipv6).expect("decodes");
    assert_eq!(pkt.version(), Version::V3);
    assert_eq!(pkt.packet_type(), 1);
    assert_eq!(pkt.vrid(), 51);
    assert_eq!(pkt.priority(), 150);
    assert_eq!(pkt.count_ip(), 1);
    assert_eq!(pkt.address_family(), AddressFamily::Ipv6);
    assert_eq!(pkt.advert_interval(), Duration::from_millis(100));
    assert_eq!(pkt.auth_type(), None);
    assert_eq!(pkt.auth_data(), None);
    assert_eq!(pkt.checksum(), 0x88dd);
    assert_eq!(
        pkt.addresses().collect::<Vec<_>>(),
        vec![v6("2001:db8::50")]
    );
    assert!(pkt.verify_checksum(src, dst));

    // The same sum from the independent helper over the spelled-out
    // pseudo-header.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(
        &"fe80::5054:ff:fe12:3456"
            .parse::<Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    pseudo.extend_from_slice(&MULTICAST_V6.octets());
    pseudo.extend_from_slice(&[0, 0, 0, 24, 0, 0, 0, 112]);
    let mut zeroed = KEEPALIVED_V6;
    zeroed[6..8].fill(0);
    pseudo.extend_from_slice(&zeroed);
    assert_eq!(ones_complement(&pseudo), 0x88dd);

    let adv = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 150,
        interval: Duration::from_millis(100),
        addresses: vec![v6("2001:db8::50")],
        auth: None,
    };
    let mut buf = [0u8; 64];
    let n = encode(&mut buf, &adv, src, dst).expect("encodes");
    assert_eq!(&buf[..n], &KEEPALIVED_V6[..]);
}

#[test]
fn pseudo_header_source_destination_and_next_header_count() {
    let dst = IpAddr::V6(MULTICAST_V6);
    let pkt = VrrpPacket::new_checked(&KEEPALIVED_V6[..], AddressFamily::Ipv6).expect("decodes");
    assert!(!pkt.verify_checksum(v6("fe80::5054:ff:fe12:3457"), dst));
    assert!(!pkt.verify_checksum(keepalived_src(), v6("ff02::1")));
    assert!(!pkt.verify_checksum(IpAddr::V4([192, 0, 2, 1].into()), dst));
    // Summed without the IPv6 pseudo-header (as v2 does) it fails.
    assert_ne!(ones_complement(&KEEPALIVED_V6), 0);
    for i in 0..KEEPALIVED_V6.len() {
        let mut bad = KEEPALIVED_V6;
        bad[i] ^= 0x80;
        if let Ok(view) = VrrpPacket::new_checked(&bad[..], AddressFamily::Ipv6) {
            assert!(!view.verify_checksum(keepalived_src(), dst), "byte {i}");
        }
    }
}

#[test]
fn ipv6_round_trips_at_the_extremes() {
    let src = keepalived_src();
    let dst = IpAddr::V6(MULTICAST_V6);
    for interval in [10u64, 100, 1000, 40_950].map(Duration::from_millis) {
        for count in [0u16, 1, 2, 255] {
            for priority in [0u8, 1, 254, 255] {
                let adv = Advert {
                    version: Version::V3,
                    vrid: 255,
                    priority,
                    interval,
                    addresses: (0..count)
                        .map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, i)))
                        .collect(),
                    auth: None,
                };
                let len = adv.encoded_len(AddressFamily::Ipv6);
                assert_eq!(len, 8 + 16 * usize::from(count));
                let mut buf = vec![0u8; len];
                assert_eq!(encode(&mut buf, &adv, src, dst), Ok(len));
                let pkt = VrrpPacket::new_checked(&buf[..], AddressFamily::Ipv6).expect("decodes");
                assert!(pkt.verify_checksum(src, dst));
                assert_eq!(pkt.priority(), priority);
                assert_eq!(pkt.advert_interval(), interval);
                assert_eq!(usize::from(pkt.count_ip()), usize::from(count));
                assert_eq!(pkt.addresses().collect::<Vec<_>>(), adv.addresses);
            }
        }
    }
}

#[test]
fn ipv6_length_must_match_the_count() {
    for len in 0..KEEPALIVED_V6.len() {
        assert!(
            matches!(
                VrrpPacket::new_checked(&KEEPALIVED_V6[..len], AddressFamily::Ipv6),
                Err(VrrpError::Truncated { have, need }) if have == len && need == if len < 8 { 8 } else { 24 }
            ),
            "length {len}"
        );
    }
    let mut long = KEEPALIVED_V6.to_vec();
    long.push(0);
    assert_eq!(
        VrrpPacket::new_checked(&long[..], AddressFamily::Ipv6).err(),
        Some(VrrpError::LengthMismatch {
            count: 1,
            have: 25,
            need: 24
        })
    );
    // Four IPv4-sized addresses fill 16 bytes: a count of 4 needs 64.
    let mut v4_sized = KEEPALIVED_V6;
    v4_sized[3] = 4;
    assert_eq!(
        VrrpPacket::new_checked(&v4_sized[..], AddressFamily::Ipv6).err(),
        Some(VrrpError::Truncated { have: 24, need: 72 })
    );
    // A count of 0 with one address' worth of bytes behind it.
    let mut uncounted = KEEPALIVED_V6;
    uncounted[3] = 0;
    assert!(matches!(
        VrrpPacket::new_checked(&uncounted[..], AddressFamily::Ipv6),
        Err(VrrpError::LengthMismatch {
            count: 0,
            have: 24,
            need: 8
        })
    ));
    // Over IPv4 trailing bytes are still tolerated, as before.
    assert!(VrrpPacket::new_checked(&uncounted[..], AddressFamily::Ipv4).is_ok());
}

#[test]
fn v2_is_refused_over_ipv6() {
    let mut v2 = KEEPALIVED_V6.to_vec();
    v2[0] = 0x21;
    v2.extend_from_slice(&[0; 8]);
    assert_eq!(
        VrrpPacket::new_checked(&v2[..], AddressFamily::Ipv6).err(),
        Some(VrrpError::V2Ipv6)
    );
    let adv = Advert {
        version: Version::V2,
        vrid: 51,
        priority: 150,
        interval: Duration::from_secs(1),
        addresses: vec![v6("2001:db8::50")],
        auth: None,
    };
    let mut buf = [0u8; 64];
    assert_eq!(
        encode(&mut buf, &adv, keepalived_src(), IpAddr::V6(MULTICAST_V6)),
        Err(VrrpError::V2Ipv6)
    );
}
