//! RFC 7606 error classification: one test per rule. Each UPDATE is built by hand
//! from the RFC 4271 layout so the decoder is checked against the wire format,
//! not against its own encoder.

use bgp::message::{code, type_code as tc, ErrorAction, Update};
use bgp::{decode, Message, SessionCtx};

const FOUR: SessionCtx = SessionCtx {
    four_octet_as: true,
};
const TWO: SessionCtx = SessionCtx {
    four_octet_as: false,
};

#[derive(Debug, PartialEq)]
enum Outcome {
    Reset(u8, u8),
    Withdraw,
    Discard,
    Clean,
}

fn attr(flags: u8, t: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, t, value.len() as u8];
    v.extend_from_slice(value);
    v
}

fn origin() -> Vec<u8> {
    attr(0x40, tc::ORIGIN, &[0])
}

fn as_path() -> Vec<u8> {
    attr(0x40, tc::AS_PATH, &[2, 1, 0, 0, 0xfd, 0xe9])
}

fn next_hop() -> Vec<u8> {
    attr(0x40, tc::NEXT_HOP, &[10, 0, 0, 1])
}

fn mandatory() -> Vec<u8> {
    [origin(), as_path(), next_hop()].concat()
}

/// One UPDATE with the given withdrawn field, attributes and NLRI field.
fn update_bytes(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(attrs);
    body.extend_from_slice(nlri);
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&body);
    m
}

const NLRI: &[u8] = &[24, 10, 1, 2];

fn run(buf: &[u8], ctx: SessionCtx) -> (Outcome, Option<Update>) {
    match decode(buf, &ctx) {
        Err(e) => (
            Outcome::Reset(e.notification.code, e.notification.subcode),
            None,
        ),
        Ok(Some((Message::Update(u), n))) => {
            assert_eq!(n, buf.len());
            let o = if u.treat_as_withdraw() {
                Outcome::Withdraw
            } else if u
                .issues
                .iter()
                .any(|i| i.action == ErrorAction::AttributeDiscard)
            {
                Outcome::Discard
            } else {
                Outcome::Clean
            };
            (o, Some(*u))
        }
        other => panic!("unexpected decode result {other:?}"),
    }
}

fn classify(attrs: &[u8]) -> Outcome {
    run(&update_bytes(&[], attrs, NLRI), FOUR).0
}

fn with_mandatory(extra: &[u8]) -> Outcome {
    classify(&[mandatory(), extra.to_vec()].concat())
}

#[test]
fn well_formed_update_is_clean() {
    let (o, u) = run(&update_bytes(&[], &mandatory(), NLRI), FOUR);
    assert_eq!(o, Outcome::Clean);
    assert_eq!(u.unwrap().nlri[0].to_string(), "10.1.2.0/24");
}

#[test]
fn bad_origin_value_is_treat_as_withdraw() {
    let attrs = [attr(0x40, tc::ORIGIN, &[3]), as_path(), next_hop()].concat();
    assert_eq!(classify(&attrs), Outcome::Withdraw);
}

#[test]
fn origin_wrong_length_is_treat_as_withdraw() {
    let attrs = [attr(0x40, tc::ORIGIN, &[0, 0]), as_path(), next_hop()].concat();
    assert_eq!(classify(&attrs), Outcome::Withdraw);
}

#[test]
fn as_path_segment_overrun_is_treat_as_withdraw() {
    // Segment claims 3 AS numbers but holds one.
    let attrs = [
        origin(),
        attr(0x40, tc::AS_PATH, &[2, 3, 0, 0, 0xfd, 0xe9]),
        next_hop(),
    ]
    .concat();
    assert_eq!(classify(&attrs), Outcome::Withdraw);
}

#[test]
fn as_path_unknown_segment_type_is_treat_as_withdraw() {
    let attrs = [
        origin(),
        attr(0x40, tc::AS_PATH, &[9, 1, 0, 0, 0xfd, 0xe9]),
        next_hop(),
    ]
    .concat();
    assert_eq!(classify(&attrs), Outcome::Withdraw);
}

#[test]
fn as_path_width_follows_the_session() {
    // Two 2-octet AS numbers: fine on a 2-octet session, an overrun-free single
    // 4-octet number would need count 1, so count 2 overruns on a 4-octet session.
    let path = attr(0x40, tc::AS_PATH, &[2, 2, 0xfd, 0xe9, 0xfd, 0xea]);
    let attrs = [origin(), path, next_hop()].concat();
    assert_eq!(run(&update_bytes(&[], &attrs, NLRI), TWO).0, Outcome::Clean);
    assert_eq!(
        run(&update_bytes(&[], &attrs, NLRI), FOUR).0,
        Outcome::Withdraw
    );
}

#[test]
fn next_hop_wrong_length_is_treat_as_withdraw() {
    let attrs = [origin(), as_path(), attr(0x40, tc::NEXT_HOP, &[10, 0, 0])].concat();
    assert_eq!(classify(&attrs), Outcome::Withdraw);
}

#[test]
fn med_and_local_pref_wrong_length_are_treat_as_withdraw() {
    assert_eq!(
        with_mandatory(&attr(0x80, tc::MED, &[0, 0, 1])),
        Outcome::Withdraw
    );
    assert_eq!(
        with_mandatory(&attr(0x40, tc::LOCAL_PREF, &[0, 0, 0, 0, 1])),
        Outcome::Withdraw
    );
}

#[test]
fn atomic_aggregate_with_a_value_is_discarded() {
    assert_eq!(
        with_mandatory(&attr(0x40, tc::ATOMIC_AGGREGATE, &[1])),
        Outcome::Discard
    );
}

#[test]
fn aggregator_wrong_length_is_discarded() {
    // 6 octets is the 2-octet form: wrong on a 4-octet session.
    let (o, u) = run(
        &update_bytes(
            &[],
            &[
                mandatory(),
                attr(0xc0, tc::AGGREGATOR, &[0xfd, 0xe9, 1, 2, 3, 4]),
            ]
            .concat(),
            NLRI,
        ),
        FOUR,
    );
    assert_eq!(o, Outcome::Discard);
    let u = u.unwrap();
    assert_eq!(u.attributes.aggregator, None);
    assert_eq!(u.announced().count(), 1);
}

#[test]
fn communities_not_multiple_of_four_is_treat_as_withdraw() {
    assert_eq!(
        with_mandatory(&attr(0xc0, tc::COMMUNITIES, &[0, 0, 1])),
        Outcome::Withdraw
    );
    assert_eq!(
        with_mandatory(&attr(0xc0, tc::COMMUNITIES, &[])),
        Outcome::Withdraw
    );
}

#[test]
fn large_communities_not_multiple_of_twelve_is_treat_as_withdraw() {
    assert_eq!(
        with_mandatory(&attr(0xc0, tc::LARGE_COMMUNITIES, &[0; 8])),
        Outcome::Withdraw
    );
}

#[test]
fn wrong_flags_use_the_attribute_rule() {
    // ORIGIN marked optional: treat-as-withdraw; AGGREGATOR marked well-known: discard.
    let attrs = [attr(0xc0, tc::ORIGIN, &[0]), as_path(), next_hop()].concat();
    assert_eq!(classify(&attrs), Outcome::Withdraw);
    assert_eq!(
        with_mandatory(&attr(0x40, tc::AGGREGATOR, &[0, 0, 0xfd, 0xe9, 1, 2, 3, 4])),
        Outcome::Discard
    );
}

#[test]
fn duplicate_ordinary_attribute_is_discarded_keeping_the_first() {
    let (o, u) = run(
        &update_bytes(
            &[],
            &[mandatory(), attr(0x40, tc::ORIGIN, &[2])].concat(),
            NLRI,
        ),
        FOUR,
    );
    assert_eq!(o, Outcome::Discard);
    assert_eq!(
        u.unwrap().attributes.origin,
        Some(bgp::message::Origin::Igp)
    );
}

#[test]
fn duplicate_mp_reach_resets_the_session() {
    let reach = attr(
        0x80,
        tc::MP_REACH_NLRI,
        &[
            0, 2, 1, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 32, 0x20, 1,
            0x0d, 0xb8,
        ],
    );
    let attrs = [origin(), as_path(), reach.clone(), reach].concat();
    assert_eq!(
        run(&update_bytes(&[], &attrs, &[]), FOUR).0,
        Outcome::Reset(code::UPDATE, code::update::MALFORMED_ATTRIBUTE_LIST)
    );
}

#[test]
fn malformed_mp_reach_resets_the_session() {
    // IPv6 prefix of length 129.
    let reach = attr(
        0x80,
        tc::MP_REACH_NLRI,
        &[
            0, 2, 1, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 129, 0x20,
        ],
    );
    let attrs = [origin(), as_path(), reach].concat();
    assert_eq!(
        run(&update_bytes(&[], &attrs, &[]), FOUR).0,
        Outcome::Reset(code::UPDATE, code::update::OPTIONAL_ATTRIBUTE_ERROR)
    );
    // Next hop length 5 is not a valid IPv6 next hop.
    let reach = attr(0x80, tc::MP_REACH_NLRI, &[0, 2, 1, 5, 1, 2, 3, 4, 5, 0]);
    let attrs = [origin(), as_path(), reach].concat();
    assert!(matches!(
        run(&update_bytes(&[], &attrs, &[]), FOUR).0,
        Outcome::Reset(..)
    ));
}

#[test]
fn missing_mandatory_attributes_with_nlri_is_treat_as_withdraw() {
    assert_eq!(classify(&[origin(), as_path()].concat()), Outcome::Withdraw);
    assert_eq!(
        classify(&[as_path(), next_hop()].concat()),
        Outcome::Withdraw
    );
    assert_eq!(
        classify(&[origin(), next_hop()].concat()),
        Outcome::Withdraw
    );
}

#[test]
fn missing_attributes_without_nlri_is_fine() {
    let (o, u) = run(&update_bytes(&[16, 10, 9], &[], &[]), FOUR);
    assert_eq!(o, Outcome::Clean);
    assert_eq!(u.unwrap().withdrawn[0].to_string(), "10.9.0.0/16");
}

#[test]
fn nlri_prefix_longer_than_32_resets() {
    assert_eq!(
        run(
            &update_bytes(&[], &mandatory(), &[33, 10, 0, 0, 0, 0]),
            FOUR
        )
        .0,
        Outcome::Reset(code::UPDATE, code::update::INVALID_NETWORK_FIELD)
    );
    assert_eq!(
        run(&update_bytes(&[40, 10, 0, 0, 0, 0], &[], &[]), FOUR).0,
        Outcome::Reset(code::UPDATE, code::update::INVALID_NETWORK_FIELD)
    );
}

#[test]
fn nlri_prefix_overrunning_the_message_resets() {
    assert_eq!(
        run(&update_bytes(&[], &mandatory(), &[24, 10, 1]), FOUR).0,
        Outcome::Reset(code::UPDATE, code::update::INVALID_NETWORK_FIELD)
    );
}

#[test]
fn attribute_overrunning_the_attribute_list_is_treat_as_withdraw() {
    // RFC 7606 §4: the total attribute length still locates the NLRI.
    let mut attrs = mandatory();
    attrs.extend_from_slice(&[0x80, tc::MED, 9, 0, 0]);
    let (o, u) = run(&update_bytes(&[], &attrs, NLRI), FOUR);
    assert_eq!(o, Outcome::Withdraw);
    assert_eq!(u.unwrap().nlri.len(), 1);
    // Fewer than three octets left for an attribute header.
    let mut attrs = mandatory();
    attrs.extend_from_slice(&[0x80, tc::MED]);
    assert_eq!(classify(&attrs), Outcome::Withdraw);
}

#[test]
fn attribute_list_overrunning_the_message_resets() {
    let mut m = update_bytes(&[], &mandatory(), NLRI);
    // Claim a total attribute length past the end of the message.
    m[21..23].copy_from_slice(&200u16.to_be_bytes());
    assert_eq!(
        run(&m, FOUR).0,
        Outcome::Reset(code::UPDATE, code::update::MALFORMED_ATTRIBUTE_LIST)
    );
    let mut m = update_bytes(&[16, 10, 9], &mandatory(), NLRI);
    m[19..21].copy_from_slice(&300u16.to_be_bytes());
    assert_eq!(
        run(&m, FOUR).0,
        Outcome::Reset(code::UPDATE, code::update::MALFORMED_ATTRIBUTE_LIST)
    );
}

#[test]
fn unknown_well_known_attribute_resets() {
    assert_eq!(
        with_mandatory(&attr(0x40, 99, &[1])),
        Outcome::Reset(
            code::UPDATE,
            code::update::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE
        )
    );
}

#[test]
fn unknown_optional_transitive_is_kept_and_non_transitive_dropped() {
    let (o, u) = run(
        &update_bytes(
            &[],
            &[mandatory(), attr(0xc0, 99, &[1, 2]), attr(0x80, 98, &[3])].concat(),
            NLRI,
        ),
        FOUR,
    );
    assert_eq!(o, Outcome::Clean);
    let unknown = u.unwrap().attributes.unknown;
    assert_eq!(unknown.len(), 1);
    assert_eq!(
        (unknown[0].type_code, unknown[0].value.as_slice()),
        (99, &[1u8, 2][..])
    );
}

#[test]
fn malformed_as4_path_is_discarded_on_two_octet_sessions() {
    let as4 = attr(0xc0, tc::AS4_PATH, &[2, 2, 0, 0, 0, 1]);
    let path2 = attr(0x40, tc::AS_PATH, &[2, 1, 0xfd, 0xe9]);
    let (o, u) = run(
        &update_bytes(&[], &[origin(), path2, next_hop(), as4].concat(), NLRI),
        TWO,
    );
    assert_eq!(o, Outcome::Discard);
    assert_eq!(u.unwrap().attributes.as_path.unwrap().to_string(), "65001");
}

#[test]
fn as4_attributes_are_ignored_on_four_octet_sessions() {
    let as4 = attr(0xc0, tc::AS4_PATH, &[2, 1, 0, 0, 0, 7]);
    let (o, u) = run(&update_bytes(&[], &[mandatory(), as4].concat(), NLRI), FOUR);
    assert_eq!(o, Outcome::Clean);
    assert_eq!(u.unwrap().attributes.as_path.unwrap().to_string(), "65001");
}

#[test]
fn most_severe_error_wins() {
    // A discard and a treat-as-withdraw together: withdraw.
    let attrs = [
        attr(0x40, tc::ORIGIN, &[7]),
        as_path(),
        next_hop(),
        attr(0x40, tc::ATOMIC_AGGREGATE, &[1]),
    ]
    .concat();
    assert_eq!(classify(&attrs), Outcome::Withdraw);
    // A withdraw and a reset: reset.
    let attrs = [attr(0x40, tc::ORIGIN, &[7]), as_path(), next_hop()].concat();
    assert!(matches!(
        run(&update_bytes(&[], &attrs, &[33, 0, 0, 0, 0, 0]), FOUR).0,
        Outcome::Reset(..)
    ));
}
