//! Any bytes as the payload of a datagram received on port 3784: the
//! decoder never panics, what it accepts re-encodes to the same fields, and
//! a session in every state either accepts the packet or drops it for a
//! counted reason, exactly once. Seeds: `seeds/bfd_packet`.

#![no_main]

use std::time::{Duration, Instant};

use bfd::{ControlPacket, Input, Output, Session, SessionConfig, TTL};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ControlPacket::new_checked(data) {
        let c = p.to_control();
        let again = c.encode();
        let q = ControlPacket::new_checked(&again[..]).expect("own encoding decodes");
        assert_eq!(q.to_control(), c);
        assert!(p.detect_mult() > 0 && p.my_discriminator() != 0);
    }
    let now = Instant::now();
    let discr = data
        .get(8..12)
        .map_or(1, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    for (ttl, start, stop) in [(TTL, true, false), (TTL, false, false), (TTL, true, true), (254, true, false)] {
        let mut s = Session::new(
            SessionConfig::new("fuzz", discr, Duration::from_millis(50), 3),
            u64::from(discr),
        );
        let mut out = Vec::new();
        if start {
            s.handle(Input::Start, now, &mut out);
        }
        if stop {
            s.handle(Input::Stop, now, &mut out);
        }
        let before = s.stats().clone();
        s.handle(Input::Received { packet: data, ttl }, now, &mut out);
        let after = s.stats();
        let counted = (after.packets_in - before.packets_in) + (after.dropped() - before.dropped());
        assert_eq!(counted, 1, "{after:?}");
        let dropped = out.iter().filter(|o| matches!(o, Output::Dropped(_))).count() as u64;
        assert_eq!(dropped, after.dropped() - before.dropped());
        s.handle(Input::Timer(bfd::TimerKind::Detect), now + Duration::from_secs(300), &mut out);
    }
});
