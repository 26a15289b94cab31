use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::ones_complement;
use crate::{encode, AddressFamily, Advert, Version, VrrpError, VrrpPacket};

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn golden_v3_ipv4() {
    let src = v4(192, 0, 2, 1);
    let dst = v4(224, 0, 0, 18);
    // Version 3 / type 1, VRID 51, priority 150, two addresses, interval 100 cs.
    let mut expected = vec![0x31, 51, 150, 2, 0x00, 100, 0, 0];
    expected.extend_from_slice(&[10, 123, 0, 50, 10, 123, 0, 51]);
    let mut pseudo = vec![192, 0, 2, 1, 224, 0, 0, 18, 0, 112, 0, expected.len() as u8];
    pseudo.extend_from_slice(&expected);
    let sum = ones_complement(&pseudo);
    expected[6] = (sum >> 8) as u8;
    expected[7] = sum as u8;

    let adv = Advert {
        version: Version::V3,
        vrid: 51,
        priority: 150,
        interval: Duration::from_secs(1),
        addresses: vec![v4(10, 123, 0, 50), v4(10, 123, 0, 51)],
        auth: None,
    };
    let mut buf = [0u8; 64];
    let n = encode(&mut buf, &adv, src, dst).expect("encodes");
    assert_eq!(&buf[..n], &expected[..]);

    let pkt = VrrpPacket::new_checked(&expected[..], AddressFamily::Ipv4).expect("decodes");
    assert_eq!(pkt.version(), Version::V3);
    assert_eq!(pkt.packet_type(), 1);
    assert_eq!(pkt.vrid(), 51);
    assert_eq!(pkt.priority(), 150);
    assert_eq!(pkt.count_ip(), 2);
    assert_eq!(pkt.auth_type(), None);
    assert_eq!(pkt.auth_data(), None);
    assert_eq!(pkt.advert_interval(), Duration::from_millis(1000));
    assert_eq!(pkt.checksum(), sum);
    assert!(pkt.verify_checksum(src, dst));
    assert!(
        !pkt.verify_checksum(v4(192, 0, 2, 2), dst),
        "pseudo-header source counts"
    );
    assert!(
        !pkt.verify_checksum(src, v4(192, 0, 2, 9)),
        "pseudo-header destination counts"
    );
    assert_eq!(pkt.addresses().collect::<Vec<_>>(), adv.addresses);
}

#[test]
fn golden_v3_ipv6() {
    let src: Ipv6Addr = "fe80::1:2:3:4".parse().unwrap();
    let dst = crate::MULTICAST_V6;
    let vip: Ipv6Addr = "2001:db8::50".parse().unwrap();
    // Version 3 / type 1, VRID 1, priority 100, one address, interval 35 cs.
    let mut expected = vec![0x31, 1, 100, 1, 0x00, 35, 0, 0];
    expected.extend_from_slice(&vip.octets());
    // RFC 8200 §8.1 pseudo-header: source, destination, 32-bit length,
    // three zero bytes, next header.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(expected.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 112]);
    pseudo.extend_from_slice(&expected);
    let sum = ones_complement(&pseudo);
    expected[6..8].copy_from_slice(&sum.to_be_bytes());

    let adv = Advert {
        version: Version::V3,
        vrid: 1,
        priority: 100,
        interval: Duration::from_millis(350),
        addresses: vec![IpAddr::V6(vip)],
        auth: None,
    };
    let mut buf = [0u8; 64];
    let n = encode(&mut buf, &adv, IpAddr::V6(src), IpAddr::V6(dst)).expect("encodes");
    assert_eq!(&buf[..n], &expected[..]);
    let pkt = VrrpPacket::new_checked(&expected[..], AddressFamily::Ipv6).expect("decodes");
    assert!(pkt.verify_checksum(IpAddr::V6(src), IpAddr::V6(dst)));
    assert_eq!(pkt.addresses().collect::<Vec<_>>(), vec![IpAddr::V6(vip)]);
}

#[test]
fn golden_v2_with_password() {
    // Version 2 / type 1, VRID 7, priority 100, one address, auth type 1,
    // interval 3 s, then the password.
    let mut expected = vec![0x21, 7, 100, 1, 1, 3, 0, 0, 10, 0, 0, 1];
    expected.extend_from_slice(b"secret\0\0");
    let sum = ones_complement(&expected);
    expected[6] = (sum >> 8) as u8;
    expected[7] = sum as u8;

    let adv = Advert {
        version: Version::V2,
        vrid: 7,
        priority: 100,
        interval: Duration::from_secs(3),
        addresses: vec![v4(10, 0, 0, 1)],
        auth: Some(*b"secret\0\0"),
    };
    let mut buf = [0u8; 64];
    let n = encode(&mut buf, &adv, v4(192, 0, 2, 1), v4(224, 0, 0, 18)).expect("encodes");
    assert_eq!(&buf[..n], &expected[..]);

    let pkt = VrrpPacket::new_checked(&expected[..], AddressFamily::Ipv4).expect("decodes");
    assert_eq!(pkt.version(), Version::V2);
    assert_eq!(pkt.auth_type(), Some(1));
    assert_eq!(pkt.auth_data(), Some(*b"secret\0\0"));
    assert_eq!(pkt.advert_interval(), Duration::from_secs(3));
    // v2 has no pseudo-header: any addresses verify.
    assert!(pkt.verify_checksum(v4(1, 2, 3, 4), v4(5, 6, 7, 8)));
    let mut bad = expected.clone();
    bad[9] ^= 0x40;
    let pkt = VrrpPacket::new_checked(&bad[..], AddressFamily::Ipv4).expect("decodes");
    assert!(!pkt.verify_checksum(v4(1, 2, 3, 4), v4(5, 6, 7, 8)));
}

fn round_trip(adv: &Advert, src: IpAddr, dst: IpAddr) {
    let af = AddressFamily::of(&src);
    let mut buf = vec![0u8; adv.encoded_len(af) + 5];
    let n = encode(&mut buf, adv, src, dst).expect("encodes");
    assert_eq!(n, adv.encoded_len(af));
    let pkt = VrrpPacket::new_checked(&buf[..n], af).expect("decodes");
    assert!(pkt.verify_checksum(src, dst));
    assert_eq!(pkt.version(), adv.version);
    assert_eq!(pkt.vrid(), adv.vrid);
    assert_eq!(pkt.priority(), adv.priority);
    assert_eq!(pkt.advert_interval(), adv.interval);
    assert_eq!(usize::from(pkt.count_ip()), adv.addresses.len());
    assert_eq!(pkt.addresses().collect::<Vec<_>>(), adv.addresses);
    if adv.version == Version::V2 {
        assert_eq!(pkt.auth_data(), Some(adv.auth.unwrap_or([0; 8])));
        assert_eq!(pkt.auth_type(), Some(u8::from(adv.auth.is_some())));
    }
}

#[test]
fn round_trips() {
    let src4 = v4(10, 1, 1, 1);
    let dst4 = v4(224, 0, 0, 18);
    for (version, interval) in [
        (Version::V2, Duration::from_secs(1)),
        (Version::V2, Duration::from_secs(255)),
        (Version::V3, Duration::from_millis(10)),
        (Version::V3, Duration::from_millis(40_950)),
    ] {
        for count in [0usize, 1, 20, 255] {
            let addresses: Vec<IpAddr> = (0..count).map(|i| v4(10, 9, 0, i as u8)).collect();
            let auths: &[Option<[u8; 8]>] = match version {
                Version::V2 => &[None, Some(*b"pa55w0rd")],
                Version::V3 => &[None],
            };
            for auth in auths {
                let adv = Advert {
                    version,
                    vrid: 200,
                    priority: 254,
                    interval,
                    addresses: addresses.clone(),
                    auth: *auth,
                };
                round_trip(&adv, src4, dst4);
                round_trip(&adv, src4, v4(10, 1, 1, 2));
            }
        }
    }
    let src6 = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 1, 2, 3, 4));
    let dst6 = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));
    for count in [0u16, 1, 3, 100] {
        let adv = Advert {
            version: Version::V3,
            vrid: 1,
            priority: 100,
            interval: Duration::from_millis(350),
            addresses: (0..count)
                .map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)))
                .collect(),
            auth: None,
        };
        round_trip(&adv, src6, dst6);
    }
}

fn sample_v3() -> (Vec<u8>, IpAddr, IpAddr) {
    let src = v4(10, 1, 1, 1);
    let dst = v4(224, 0, 0, 18);
    let adv = Advert {
        version: Version::V3,
        vrid: 9,
        priority: 100,
        interval: Duration::from_secs(1),
        addresses: vec![v4(10, 0, 0, 1), v4(10, 0, 0, 2)],
        auth: None,
    };
    let mut buf = vec![0u8; 64];
    let n = encode(&mut buf, &adv, src, dst).expect("encodes");
    buf.truncate(n);
    (buf, src, dst)
}

#[test]
fn truncated_at_every_length() {
    let (v3, _, _) = sample_v3();
    let mut v2 = vec![0u8; 64];
    let adv2 = Advert {
        version: Version::V2,
        vrid: 9,
        priority: 100,
        interval: Duration::from_secs(1),
        addresses: vec![v4(10, 0, 0, 1)],
        auth: None,
    };
    let n = encode(&mut v2, &adv2, v4(10, 1, 1, 1), v4(224, 0, 0, 18)).expect("encodes");
    v2.truncate(n);
    for full in [&v3, &v2] {
        for len in 0..full.len() {
            match VrrpPacket::new_checked(&full[..len], AddressFamily::Ipv4) {
                Err(VrrpError::Truncated { have, need }) => {
                    assert_eq!(have, len);
                    assert!(need > len && need <= full.len(), "need {need} at {len}");
                }
                other => panic!("length {len} of {}: {other:?}", full.len()),
            }
        }
        assert!(VrrpPacket::new_checked(&full[..], AddressFamily::Ipv4).is_ok());
    }
}

#[test]
fn header_errors() {
    let (pkt, _, _) = sample_v3();
    for version in [0u8, 1, 4, 15] {
        let mut bad = pkt.clone();
        bad[0] = version << 4 | 1;
        assert_eq!(
            VrrpPacket::new_checked(&bad[..], AddressFamily::Ipv4).err(),
            Some(VrrpError::UnsupportedVersion(version))
        );
    }
    for ty in [0u8, 2, 15] {
        let mut bad = pkt.clone();
        bad[0] = 0x30 | ty;
        assert_eq!(
            VrrpPacket::new_checked(&bad[..], AddressFamily::Ipv4).err(),
            Some(VrrpError::UnknownType(ty))
        );
    }
    let mut v2 = pkt.clone();
    v2[0] = 0x21;
    v2.resize(64, 0);
    assert_eq!(
        VrrpPacket::new_checked(&v2[..], AddressFamily::Ipv6).err(),
        Some(VrrpError::V2Ipv6)
    );
    // The same bytes read as IPv6 need 16 bytes per address.
    assert!(matches!(
        VrrpPacket::new_checked(&pkt[..], AddressFamily::Ipv6),
        Err(VrrpError::Truncated { need: 40, .. })
    ));
}

#[test]
fn checksum_mismatch_in_every_byte() {
    let (pkt, src, dst) = sample_v3();
    for i in 0..pkt.len() {
        let mut bad = pkt.clone();
        bad[i] ^= 0x01;
        if let Ok(view) = VrrpPacket::new_checked(&bad[..], AddressFamily::Ipv4) {
            assert!(
                !view.verify_checksum(src, dst),
                "flip in byte {i} went unnoticed"
            );
        }
    }
    let view = VrrpPacket::new_checked(&pkt[..], AddressFamily::Ipv4).expect("decodes");
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert!(
        !view.verify_checksum(v6, dst),
        "mixed families never verify"
    );
}

#[test]
fn encoder_errors() {
    let src = v4(10, 1, 1, 1);
    let dst = v4(224, 0, 0, 18);
    let base = Advert {
        version: Version::V3,
        vrid: 9,
        priority: 100,
        interval: Duration::from_secs(1),
        addresses: vec![v4(10, 0, 0, 1)],
        auth: None,
    };
    let mut buf = [0u8; 2048];
    assert_eq!(
        encode(&mut buf[..11], &base, src, dst),
        Err(VrrpError::BufferTooSmall { have: 11, need: 12 })
    );
    let six = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let mixed = Advert {
        addresses: vec![v4(10, 0, 0, 1), six],
        ..base.clone()
    };
    assert!(matches!(
        encode(&mut buf, &mixed, src, dst),
        Err(VrrpError::MixedFamilies { addr, .. }) if addr == six
    ));
    assert!(matches!(
        encode(&mut buf, &base, src, six),
        Err(VrrpError::MixedFamilies { .. })
    ));
    let many = Advert {
        addresses: (0..256u32).map(|i| IpAddr::V4(Ipv4Addr::from(i))).collect(),
        ..base.clone()
    };
    assert_eq!(
        encode(&mut buf, &many, src, dst),
        Err(VrrpError::TooManyAddresses(256))
    );
    let auth3 = Advert {
        auth: Some([1; 8]),
        ..base.clone()
    };
    assert_eq!(
        encode(&mut buf, &auth3, src, dst),
        Err(VrrpError::AuthNeedsV2)
    );
    let v2 = Advert {
        version: Version::V2,
        ..base.clone()
    };
    assert_eq!(encode(&mut buf, &v2, six, six), Err(VrrpError::V2Ipv6));
    for (version, ms) in [
        (Version::V2, 0),
        (Version::V2, 1500),
        (Version::V2, 256_000),
        (Version::V3, 0),
        (Version::V3, 5),
        (Version::V3, 105),
        (Version::V3, 40_960),
    ] {
        let adv = Advert {
            version,
            interval: Duration::from_millis(ms),
            ..base.clone()
        };
        assert!(
            matches!(
                encode(&mut buf, &adv, src, dst),
                Err(VrrpError::BadInterval { .. })
            ),
            "{version} {ms} ms"
        );
    }
}
