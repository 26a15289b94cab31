//! Replays the fuzz target's seeds (`fuzz/seeds/bfd_packet`: packets in
//! each state, with poll and final, from a peer's side): each decodes and a
//! session in Down accepts it.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{ControlPacket, Input, Output, Session, SessionConfig, TTL};

#[test]
fn fuzz_seeds_decode_and_a_session_takes_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/bfd_packet");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.expect("seed").path();
        let data = std::fs::read(&path).expect("seed file");
        let p = ControlPacket::new_checked(&data[..])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut s = Session::new(
            SessionConfig::new(
                "seed",
                p.your_discriminator().max(1),
                Duration::from_millis(50),
                3,
            ),
            1,
        );
        let mut out = Vec::new();
        s.handle(Input::Start, Instant::now(), &mut out);
        out.clear();
        s.handle(
            Input::Received {
                packet: &data,
                ttl: TTL,
            },
            Instant::now(),
            &mut out,
        );
        assert!(
            !out.iter().any(|o| matches!(o, Output::Dropped(_))),
            "{}: {out:?}",
            path.display()
        );
        assert_eq!(s.stats().packets_in, 1);
        n += 1;
    }
    assert!(n >= 3, "{n} seeds");
}
