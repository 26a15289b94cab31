//! Authentication: any altered byte, a wrong key or a stranger is refused,
//! counted, and changes nothing.

use super::util::{
    addr, at, batch, datagram_with, feed, heartbeat, multicast, rec, session, snapshot, unicast,
    Rng, EPOCH,
};
use crate::message::{Body, MessageType};
use crate::{Config, Session, SyncError};

/// A session that already knows node 2 (one heartbeat), so there is state
/// to disturb.
fn warmed(cfg: Config) -> Session {
    let mut s = session(cfg);
    feed(&mut s, addr(2), &heartbeat(2, EPOCH, 1), at(1));
    assert_eq!(s.stats().received_messages, 1);
    s
}

#[test]
fn every_single_byte_flip_is_refused_counted_and_harmless() {
    let good = batch(2, EPOCH, 2, &[rec(1), rec(2)]);
    for cfg in [unicast(1, &[2]), multicast(1)] {
        for fresh in [false, true] {
            let mut s = if fresh {
                session(cfg.clone())
            } else {
                warmed(cfg.clone())
            };
            for i in 0..good.len() {
                for mask in [0x01u8, 0x80, 0xff] {
                    let mut b = good.clone();
                    b[i] ^= mask;
                    let before = snapshot(&s);
                    let rejected = s.stats().rejected.total();
                    let out = feed(&mut s, addr(2), &b, at(2));
                    assert!(out.is_empty(), "byte {i} ^ {mask:#x}: {out:?}");
                    assert_eq!(
                        s.stats().rejected.total(),
                        rejected + 1,
                        "byte {i} ^ {mask:#x}"
                    );
                    assert_eq!(snapshot(&s), before, "byte {i} ^ {mask:#x}");
                }
            }
            // Untouched, it is still accepted: nothing above moved the window.
            let out = feed(&mut s, addr(2), &good, at(3));
            assert_eq!(super::util::applied(&out).len(), 2);
        }
    }
}

#[test]
fn header_flips_past_the_structure_fail_authentication() {
    let good = heartbeat(2, EPOCH, 1);
    let mut s = session(multicast(1));
    // Sender, to, epoch, seq, sent time, flags: all under the tag.
    for i in (4..32).chain(34..36) {
        let mut b = good.clone();
        b[i] ^= 0x10;
        feed(&mut s, addr(2), &b, at(1));
    }
    assert_eq!(s.stats().rejected.bad_auth, 30);
    assert_eq!(s.stats().rejected.total(), 30);
    assert_eq!(s.peers().count(), 0);
}

#[test]
fn a_wrong_key_is_refused() {
    let other = datagram_with(
        b"another site's key, not ours!!",
        MessageType::Batch,
        2,
        0,
        EPOCH,
        1,
        EPOCH,
        Body::Records(&[rec(1)]),
    );
    let mut s = session(multicast(1));
    let out = feed(&mut s, addr(2), &other, at(1));
    assert!(out.is_empty());
    assert_eq!(s.stats().rejected.bad_auth, 1);
    assert_eq!(s.peers().count(), 0);
}

#[test]
fn short_keys_are_refused_at_config_time() {
    for len in 0..16 {
        let cfg = Config::new(1, vec![7; len], None, EPOCH);
        let err = Session::new(cfg, at(0)).err();
        assert_eq!(err, Some(SyncError::KeyTooShort(len)));
    }
    let msg = SyncError::KeyTooShort(8).to_string();
    assert!(msg.contains("16") && msg.contains('8'), "{msg}");
    assert!(Session::new(Config::new(1, vec![7; 16], None, EPOCH), at(0)).is_ok());
}

#[test]
fn the_key_stays_out_of_debug_output() {
    let text = format!("{:?}", multicast(1));
    assert!(!text.contains("vipd test site key"), "{text}");
    assert!(text.contains("32 bytes"), "{text}");
}

#[test]
fn strangers_are_refused_in_unicast_mode_only() {
    let hb = heartbeat(2, EPOCH, 1);
    let mut s = session(unicast(1, &[2, 3]));
    let before = snapshot(&s);
    assert!(feed(&mut s, addr(9), &hb, at(1)).is_empty());
    assert_eq!(s.stats().rejected.stranger, 1);
    assert_eq!(snapshot(&s), before);
    // The same datagram from a configured address is fine, and so it is
    // from anywhere in multicast mode.
    assert_eq!(feed(&mut s, addr(2), &hb, at(1)).len(), 1);
    let mut m = session(multicast(1));
    assert_eq!(feed(&mut m, addr(9), &hb, at(1)).len(), 1);
}

#[test]
fn ipv4_mapped_sources_match_ipv4_peers() {
    let mut s = session(unicast(1, &[2]));
    let mapped = std::net::IpAddr::V6(std::net::Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped());
    feed(&mut s, mapped, &heartbeat(2, EPOCH, 1), at(1));
    assert_eq!(s.stats().received_messages, 1);
    assert_eq!(s.peers().next().map(|p| p.addr), Some(addr(2)));
}

#[test]
fn our_own_looped_back_multicast_is_counted_apart() {
    let mut s = session(multicast(1));
    let mut out = Vec::new();
    s.handle(crate::Input::Local(rec(1).into()), at(0), &mut out);
    s.handle(crate::Input::Tick, at(10), &mut out);
    let own = super::util::sends(&out)[0].1.to_vec();
    assert!(feed(&mut s, addr(1), &own, at(11)).is_empty());
    assert_eq!(s.stats().own, 1);
    assert_eq!(s.stats().rejected.total(), 0);
    assert_eq!(s.stats().received_messages, 0);
    assert_eq!(s.peers().count(), 0);
}

#[test]
fn random_garbage_is_refused_and_counted() {
    let mut rng = Rng::new(23);
    for cfg in [unicast(1, &[2]), multicast(1)] {
        let mut s = session(cfg);
        for i in 0..20_000u64 {
            let len = rng.below(300) as usize;
            let mut b = rng.bytes(len);
            // Often a plausible header, so the later checks run too.
            if i % 2 == 0 && b.len() >= 4 {
                b[..4].copy_from_slice(b"VS\x01\x01");
            }
            let out = feed(&mut s, addr(2), &b, at(i));
            assert!(out.is_empty());
        }
        assert_eq!(s.stats().rejected.total(), 20_000);
        assert_eq!(s.peers().count(), 0);
    }
}
