//! Cross-checks the codec against an independent implementation (bgpkit-parser):
//! what vipd encodes, bgpkit decodes to the same values, and the reverse.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use bgp::message::{
    Aggregator, AsPath, AsSegment, Capability, MpReach, MpUnreach, Notification, Open, Origin,
    PathAttributes, SegmentKind, Update, AS_TRANS,
};
use bgp::{decode, encode, Family, Message, Prefix, SessionCtx};
use bgpkit_parser::models as kit;
use bgpkit_parser::parser::bgp::messages::parse_bgp_message;
use bytes::Bytes;

const FOUR: SessionCtx = SessionCtx {
    four_octet_as: true,
};
const TWO: SessionCtx = SessionCtx {
    four_octet_as: false,
};

fn p(s: &str) -> Prefix {
    s.parse().unwrap()
}

fn ours_to_kit(msg: &Message, ctx: SessionCtx) -> kit::BgpMessage {
    let mut buf = Vec::new();
    encode(msg, &ctx, &mut buf).unwrap();
    let len = if ctx.four_octet_as {
        kit::AsnLength::Bits32
    } else {
        kit::AsnLength::Bits16
    };
    parse_bgp_message(&mut Bytes::from(buf), false, &len).unwrap()
}

fn kit_to_ours(msg: &kit::BgpMessage, ctx: SessionCtx) -> Message {
    let len = if ctx.four_octet_as {
        kit::AsnLength::Bits32
    } else {
        kit::AsnLength::Bits16
    };
    let bytes = msg.encode(len).unwrap();
    let (m, used) = decode(&bytes, &ctx).unwrap().unwrap();
    assert_eq!(used, bytes.len());
    m
}

fn kit_path(path: &kit::AsPath) -> Vec<(SegmentKind, Vec<u32>)> {
    path.iter_segments()
        .map(|s| match s {
            kit::AsPathSegment::AsSequence(v) => {
                (SegmentKind::Sequence, v.iter().map(u32::from).collect())
            }
            kit::AsPathSegment::AsSet(v) => (SegmentKind::Set, v.iter().map(u32::from).collect()),
            kit::AsPathSegment::ConfedSequence(v) => (
                SegmentKind::ConfedSequence,
                v.iter().map(u32::from).collect(),
            ),
            kit::AsPathSegment::ConfedSet(v) => {
                (SegmentKind::ConfedSet, v.iter().map(u32::from).collect())
            }
        })
        .collect()
}

fn our_path(path: &AsPath) -> Vec<(SegmentKind, Vec<u32>)> {
    path.segments
        .iter()
        .map(|s| (s.kind, s.asns.clone()))
        .collect()
}

fn kit_communities(attrs: &kit::Attributes) -> (Vec<u32>, Vec<[u32; 3]>) {
    let mut plain = Vec::new();
    let mut large = Vec::new();
    for c in attrs.iter_communities() {
        match c {
            kit::MetaCommunity::Plain(kit::Community::Custom(asn, v)) => {
                plain.push((u32::from(asn) << 16) | u32::from(v))
            }
            kit::MetaCommunity::Plain(kit::Community::NoExport) => plain.push(0xFFFF_FF01),
            kit::MetaCommunity::Plain(kit::Community::NoAdvertise) => plain.push(0xFFFF_FF02),
            kit::MetaCommunity::Plain(kit::Community::NoExportSubConfed) => plain.push(0xFFFF_FF03),
            kit::MetaCommunity::Large(l) => {
                large.push([l.global_admin, l.local_data[0], l.local_data[1]])
            }
            other => panic!("unexpected community {other:?}"),
        }
    }
    (plain, large)
}

fn kit_prefixes(v: &[kit::NetworkPrefix]) -> Vec<Prefix> {
    v.iter()
        .map(|n| Prefix::new(n.prefix.addr(), n.prefix.prefix_len()).unwrap())
        .collect()
}

fn kit_caps(open: &kit::BgpOpenMessage) -> Vec<kit::CapabilityValue> {
    open.opt_params
        .iter()
        .flat_map(|o| match &o.param_value {
            kit::ParamValue::Capacities(c) => c.iter().map(|c| c.value.clone()).collect(),
            kit::ParamValue::Raw(_) => Vec::new(),
        })
        .collect()
}

#[test]
fn open_with_capabilities_and_as_trans() {
    let open = Open::new(
        4_200_000_001,
        90,
        Ipv4Addr::new(10, 20, 1, 2),
        vec![
            Capability::multiprotocol(Family::Ipv4Unicast),
            Capability::multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(4_200_000_001),
            Capability::GracefulRestart {
                restarted: true,
                restart_time: 120,
                families: Vec::new(),
            },
        ],
    );
    let kit::BgpMessage::Open(k) = ours_to_kit(&Message::Open(open.clone()), TWO) else {
        panic!("not an OPEN")
    };
    assert_eq!(k.version, 4);
    assert_eq!(u32::from(k.asn), u32::from(AS_TRANS));
    assert_eq!(k.hold_time, 90);
    assert_eq!(k.bgp_identifier, open.bgp_id);
    let caps = kit_caps(&k);
    let mp: Vec<(u16, u8)> = caps
        .iter()
        .filter_map(|c| match c {
            kit::CapabilityValue::MultiprotocolExtensions(m) => Some((m.afi as u16, m.safi as u8)),
            _ => None,
        })
        .collect();
    assert_eq!(mp, vec![(1, 1), (2, 1)]);
    assert!(caps
        .iter()
        .any(|c| matches!(c, kit::CapabilityValue::RouteRefresh(_))));
    assert!(caps
        .iter()
        .any(|c| matches!(c, kit::CapabilityValue::FourOctetAs(f) if f.asn == 4_200_000_001)));
    assert!(caps.iter().any(
        |c| matches!(c, kit::CapabilityValue::GracefulRestart(g) if g.restart_state && g.restart_time == 120)
    ));

    // And back: bgpkit's encoding of the same OPEN decodes to ours.
    let Message::Open(back) = kit_to_ours(&kit::BgpMessage::Open(k), TWO) else {
        panic!("not an OPEN")
    };
    assert_eq!(back.peer_as(), 4_200_000_001);
    assert_eq!(
        back.families(),
        vec![Family::Ipv4Unicast, Family::Ipv6Unicast]
    );
    assert!(back.route_refresh());
}

fn rich_attributes() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![4_200_000_001, 65001, 4_200_000_002],
                },
                AsSegment {
                    kind: SegmentKind::Set,
                    asns: vec![64512, 4_200_000_003],
                },
            ],
        }),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        med: Some(50),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 4_200_000_009,
            address: Ipv4Addr::new(192, 0, 2, 9),
        }),
        communities: vec![(65001 << 16) | 100, 0xFFFF_FF01],
        large_communities: vec![[4_200_000_001, 1, 2], [65001, 0, 7]],
        ..PathAttributes::default()
    }
}

#[test]
fn update_on_four_octet_session_matches() {
    let u = Update {
        withdrawn: vec![p("10.9.0.0/16")],
        attributes: rich_attributes(),
        nlri: vec![p("10.0.0.0/25"), p("10.1.0.0/24"), p("0.0.0.0/0")],
        issues: Vec::new(),
    };
    let kit::BgpMessage::Update(k) = ours_to_kit(&Message::Update(Box::new(u.clone())), FOUR)
    else {
        panic!("not an UPDATE")
    };
    let a = &u.attributes;
    assert_eq!(kit_prefixes(&k.announced_prefixes), u.nlri);
    assert_eq!(kit_prefixes(&k.withdrawn_prefixes), u.withdrawn);
    assert_eq!(k.attributes.origin(), kit::Origin::IGP);
    assert_eq!(
        kit_path(k.attributes.as_path().unwrap()),
        our_path(a.as_path.as_ref().unwrap())
    );
    assert_eq!(k.attributes.next_hop(), a.next_hop.map(IpAddr::V4));
    assert_eq!(k.attributes.multi_exit_discriminator(), a.med);
    assert_eq!(k.attributes.local_preference(), a.local_pref);
    assert!(k.attributes.atomic_aggregate());
    let (agg_as, agg_id) = k.attributes.aggregator().unwrap();
    assert_eq!(
        (u32::from(agg_as), agg_id),
        (4_200_000_009, Ipv4Addr::new(192, 0, 2, 9))
    );
    let (plain, large) = kit_communities(&k.attributes);
    assert_eq!(plain, a.communities);
    assert_eq!(large, a.large_communities);
    assert!(!k.attributes.has_attr(kit::AttrType::AS4_PATH));

    let Message::Update(back) = kit_to_ours(&kit::BgpMessage::Update(k), FOUR) else {
        panic!("not an UPDATE")
    };
    assert_eq!(back.attributes, u.attributes);
    assert_eq!(back.nlri, u.nlri);
    assert_eq!(back.withdrawn, u.withdrawn);
}

#[test]
fn update_on_two_octet_session_carries_as4_path() {
    let mut attrs = rich_attributes();
    attrs.as_path = Some(AsPath::sequence(vec![65001, 4_200_000_001, 4_200_000_002]));
    let u = Update {
        attributes: attrs,
        nlri: vec![p("10.0.0.0/25")],
        ..Update::default()
    };
    let kit::BgpMessage::Update(k) = ours_to_kit(&Message::Update(Box::new(u.clone())), TWO) else {
        panic!("not an UPDATE")
    };
    let as_path = k.attributes.as_path().unwrap();
    let trans = u32::from(AS_TRANS);
    assert_eq!(
        kit_path(as_path),
        vec![(SegmentKind::Sequence, vec![65001, trans, trans])]
    );
    let Some(kit::Attribute {
        value: kit::AttributeValue::As4Path(as4),
        ..
    }) = k.attributes.get_attr(kit::AttrType::AS4_PATH)
    else {
        panic!("no AS4_PATH")
    };
    assert_eq!(
        kit_path(&as4),
        vec![(
            SegmentKind::Sequence,
            vec![65001, 4_200_000_001, 4_200_000_002]
        )]
    );
    let Some(kit::Attribute {
        value: kit::AttributeValue::Aggregator { asn, .. },
        ..
    }) = k.attributes.get_attr(kit::AttrType::AGGREGATOR)
    else {
        panic!("no AGGREGATOR")
    };
    assert_eq!(u32::from(asn), trans);
    let Some(kit::Attribute {
        value: kit::AttributeValue::As4Aggregator { asn, .. },
        ..
    }) = k.attributes.get_attr(kit::AttrType::AS4_AGGREGATOR)
    else {
        panic!("no AS4_AGGREGATOR")
    };
    assert_eq!(u32::from(asn), 4_200_000_009);

    // Our own decoder folds AS4_PATH / AS4_AGGREGATOR back into real numbers.
    let mut buf = Vec::new();
    encode(&Message::Update(Box::new(u.clone())), &TWO, &mut buf).unwrap();
    let Some((Message::Update(back), _)) = decode(&buf, &TWO).unwrap() else {
        panic!("not an UPDATE")
    };
    assert_eq!(back.attributes, u.attributes);
}

#[test]
fn mp_reach_and_unreach_ipv6_match() {
    let gua: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let ll: Ipv6Addr = "fe80::1".parse().unwrap();
    let u = Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![65001])),
            mp_reach: Some(MpReach {
                family: Family::Ipv6Unicast,
                next_hop: IpAddr::V6(gua),
                link_local: Some(ll),
                nlri: vec![p("2001:db8:1::/48"), p("2001:db8:2:8000::/49")],
            }),
            mp_unreach: Some(MpUnreach {
                family: Family::Ipv6Unicast,
                withdrawn: vec![p("2001:db8:9::/48")],
            }),
            ..PathAttributes::default()
        },
        ..Update::default()
    };
    let kit::BgpMessage::Update(k) = ours_to_kit(&Message::Update(Box::new(u.clone())), FOUR)
    else {
        panic!("not an UPDATE")
    };
    let reach = k.attributes.get_reachable_nlri().unwrap();
    assert_eq!(reach.afi, kit::Afi::Ipv6);
    assert_eq!(
        reach.next_hop,
        Some(kit::NextHopAddress::Ipv6LinkLocal(gua, ll))
    );
    assert_eq!(
        kit_prefixes(&reach.prefixes),
        u.attributes.mp_reach.as_ref().unwrap().nlri
    );
    let unreach = k.attributes.get_unreachable_nlri().unwrap();
    assert_eq!(kit_prefixes(&unreach.prefixes), vec![p("2001:db8:9::/48")]);

    let Message::Update(back) = kit_to_ours(&kit::BgpMessage::Update(k), FOUR) else {
        panic!("not an UPDATE")
    };
    assert_eq!(back.attributes, u.attributes);
}

#[test]
fn end_of_rib_is_recognised_by_both() {
    for family in [Family::Ipv4Unicast, Family::Ipv6Unicast] {
        let kit::BgpMessage::Update(k) =
            ours_to_kit(&Message::Update(Box::new(Update::end_of_rib(family))), FOUR)
        else {
            panic!("not an UPDATE")
        };
        assert!(k.is_end_of_rib(), "{family}");
    }
}

#[test]
fn bgpkit_built_update_decodes_identically() {
    let attrs = kit::Attributes::from_iter(vec![
        kit::AttributeValue::Origin(kit::Origin::INCOMPLETE),
        kit::AttributeValue::AsPath(kit::AsPath::from_sequence([65010u32, 4_200_000_077])),
        kit::AttributeValue::NextHop(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1))),
        kit::AttributeValue::MultiExitDiscriminator(7),
        kit::AttributeValue::Communities(vec![kit::Community::Custom(
            kit::Asn::from(65010u32),
            42,
        )]),
        kit::AttributeValue::LargeCommunities(vec![kit::LargeCommunity::new(
            4_200_000_077,
            [3, 4],
        )]),
    ]);
    let k = kit::BgpMessage::Update(kit::BgpUpdateMessage {
        withdrawn_prefixes: vec![kit::NetworkPrefix::from_str("172.16.0.0/12").unwrap()],
        attributes: attrs,
        announced_prefixes: vec![kit::NetworkPrefix::from_str("203.0.113.0/24").unwrap()],
    });
    let Message::Update(u) = kit_to_ours(&k, FOUR) else {
        panic!("not an UPDATE")
    };
    assert!(u.issues.is_empty(), "{:?}", u.issues);
    let a = &u.attributes;
    assert_eq!(a.origin, Some(Origin::Incomplete));
    assert_eq!(
        a.as_path,
        Some(AsPath::sequence(vec![65010, 4_200_000_077]))
    );
    assert_eq!(a.next_hop, Some(Ipv4Addr::new(198, 51, 100, 1)));
    assert_eq!(a.med, Some(7));
    assert_eq!(a.communities, vec![(65010 << 16) | 42]);
    assert_eq!(a.large_communities, vec![[4_200_000_077, 3, 4]]);
    assert_eq!(u.nlri, vec![p("203.0.113.0/24")]);
    assert_eq!(u.withdrawn, vec![p("172.16.0.0/12")]);
}

#[test]
fn notification_keepalive_and_refresh_match() {
    let n = Notification::administrative_shutdown("maintenance window");
    let kit::BgpMessage::Notification(k) = ours_to_kit(&Message::Notification(n.clone()), FOUR)
    else {
        panic!("not a NOTIFICATION")
    };
    assert_eq!(k.error.get_codes(), (n.code, n.subcode));
    assert_eq!(k.data, n.data);
    let Message::Notification(back) = kit_to_ours(&kit::BgpMessage::Notification(k), FOUR) else {
        panic!("not a NOTIFICATION")
    };
    assert_eq!(
        back.shutdown_message().as_deref(),
        Some("maintenance window")
    );

    assert!(matches!(
        ours_to_kit(&Message::Keepalive, FOUR),
        kit::BgpMessage::KeepAlive
    ));
    let rr = Message::RouteRefresh {
        afi: 2,
        subtype: 0,
        safi: 1,
    };
    let kit::BgpMessage::RouteRefresh(k) = ours_to_kit(&rr, FOUR) else {
        panic!("not a ROUTE-REFRESH")
    };
    assert_eq!((k.afi, k.subtype, k.safi), (2, 0, 1));
    assert_eq!(kit_to_ours(&kit::BgpMessage::RouteRefresh(k), FOUR), rr);
}
