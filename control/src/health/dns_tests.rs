use super::*;

const ID: u16 = 0x1234;

/// A reply to `encode_query(ID, "svc.test", A)` with `answers` A records
/// (a compressed owner name) and the given RCODE.
fn reply(answers: u16, rcode: u8) -> Vec<u8> {
    let mut m = encode_query(ID, "svc.test", QType::A).expect("query");
    m[2] |= 0x80;
    m[3] = 0x80 | rcode;
    m[6..8].copy_from_slice(&answers.to_be_bytes());
    for i in 0..answers {
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0]);
        m.push(u8::try_from(i).unwrap_or(0));
    }
    m
}

#[test]
fn query_wire_form() {
    let q = encode_query(0xabcd, "www.Example.test.", QType::Aaaa).expect("query");
    let want: &[u8] = b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07Example\x04test\x00\x00\x1c\x00\x01";
    assert_eq!(q, want);
    assert_eq!(reply_id(&q), Some(0xabcd));
    assert_eq!(reply_id(&[1]), None);
}

#[test]
fn names_are_checked() {
    assert_eq!(check_name(""), Err(DnsError::EmptyName));
    assert_eq!(check_name("."), Err(DnsError::EmptyName));
    assert!(matches!(check_name("a..b"), Err(DnsError::BadLabel(_))));
    assert!(matches!(
        check_name(&format!("{}.test", "a".repeat(64))),
        Err(DnsError::BadLabel(_))
    ));
    let long = vec!["abcdefghi"; 30].join(".");
    assert_eq!(check_name(&long), Err(DnsError::NameTooLong(299)));
    assert_eq!(check_name("a b.test"), Err(DnsError::NameNotAscii));
    assert_eq!(check_name("bücher.test"), Err(DnsError::NameNotAscii));
    assert_eq!(check_name("a.test."), Ok(()));
    assert_eq!("aaaa".parse::<QType>(), Ok(QType::Aaaa));
    assert!("MX"
        .parse::<QType>()
        .expect_err("MX")
        .to_string()
        .contains("\"A\" or \"AAAA\""));
}

#[test]
fn good_replies() {
    let r = decode_reply(&reply(2, 0), ID, "svc.test", QType::A).expect("good");
    assert_eq!(
        r,
        Answer {
            records: 2,
            of_type: 2
        }
    );
    // The question matches case-insensitively and with a final dot.
    assert!(decode_reply(&reply(1, 0), ID, "SVC.Test.", QType::A).is_ok());
}

#[test]
fn bad_outcomes() {
    let dec = |m: &[u8]| decode_reply(m, ID, "svc.test", QType::A);
    assert_eq!(dec(&reply(0, 0)), Err(DnsError::NoAnswer(QType::A)));
    assert_eq!(dec(&reply(0, 3)), Err(DnsError::Rcode(Rcode(3))));
    assert_eq!(DnsError::Rcode(Rcode(3)).to_string(), "DNS NXDOMAIN");
    assert_eq!(DnsError::Rcode(Rcode(9)).to_string(), "DNS RCODE 9");
    assert_eq!(
        decode_reply(&reply(1, 0), ID + 1, "svc.test", QType::A),
        Err(DnsError::WrongId {
            got: ID,
            want: ID + 1
        })
    );
    assert!(matches!(
        decode_reply(&reply(1, 0), ID, "other.test", QType::A),
        Err(DnsError::OtherQuestion(_))
    ));
    assert!(matches!(
        decode_reply(&reply(1, 0), ID, "svc.test", QType::Aaaa),
        Err(DnsError::OtherQuestion(_))
    ));
    let query = encode_query(ID, "svc.test", QType::A).expect("query");
    assert_eq!(dec(&query), Err(DnsError::NotAReply));
    let mut two = reply(1, 0);
    two[5] = 2;
    assert_eq!(dec(&two), Err(DnsError::QuestionCount(2)));
    // Answers of another type only (a CNAME without its target).
    let mut cname = reply(1, 0);
    let at = cname.len() - 13;
    cname[at] = 5;
    assert_eq!(dec(&cname), Err(DnsError::NoAnswer(QType::A)));
}

#[test]
fn hostile_replies_fail_cleanly() {
    let dec = |m: &[u8]| decode_reply(m, ID, "svc.test", QType::A);
    let good = reply(2, 0);
    // Every truncation fails, none panics.
    for cut in 0..good.len() {
        assert!(dec(&good[..cut]).is_err(), "cut at {cut}");
    }
    assert_eq!(dec(&good[..5]), Err(DnsError::Truncated(5)));
    // A huge answer count with no records behind it.
    let mut huge = reply(1, 0);
    huge[6..8].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(dec(&huge), Err(DnsError::PastEnd { .. })));
    // A huge data length.
    let mut rdlen = reply(1, 0);
    let at = rdlen.len() - 6;
    rdlen[at..at + 2].copy_from_slice(&[0xff, 0xff]);
    assert!(matches!(dec(&rdlen), Err(DnsError::PastEnd { .. })));
    // A question name pointing at itself.
    let mut looped = reply(1, 0);
    looped.truncate(12);
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(dec(&looped), Err(DnsError::PointerLoop));
    // A pointer past the end, and a reserved label type.
    let mut far = reply(1, 0);
    far.truncate(12);
    far.extend_from_slice(&[0xff, 0xff, 0, 1, 0, 1]);
    assert!(matches!(dec(&far), Err(DnsError::PastEnd { .. })));
    let mut reserved = reply(1, 0);
    reserved[12] = 0x80;
    assert_eq!(dec(&reserved), Err(DnsError::BadName));
    // Unprintable bytes in a name never reach a detail verbatim.
    let mut odd = reply(1, 0);
    odd[13] = 0x1b;
    let err = dec(&odd).expect_err("other question").to_string();
    assert!(err.contains("?vc.test") && !err.contains('\u{1b}'), "{err}");
    // A name of many one-byte labels is bounded.
    let mut long = reply(0, 0);
    long.truncate(12);
    for _ in 0..200 {
        long.extend_from_slice(&[1, b'a']);
    }
    long.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(dec(&long), Err(DnsError::BadName));
}

#[test]
fn fuzz_seeds_decode_without_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/dns_reply");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.expect("seed").path();
        let data = std::fs::read(&path).expect("seed file");
        let id = reply_id(&data).unwrap_or(0);
        let got = decode_reply(&data, id, "svc.test", QType::A);
        if path.ends_with("a_record") {
            assert!(got.is_ok(), "{got:?}");
        }
        seen += 1;
    }
    assert!(seen >= 4, "{seen} seeds in {}", dir.display());
}
