//! The fuzz target's seeds (`fuzz/seeds/sync_datagram`): one datagram of
//! each type, IPv4 and IPv6 records alike, sent by node 2 to node 1 with
//! the test key (the fuzz target uses the same key and nodes). Replayed
//! here: each is accepted by a fresh session in either mode, and compared
//! with what the current code sends.

use std::path::{Path, PathBuf};

use super::util::{
    addr, at, feed, heartbeat, multicast, rec, rec6, sends, session, unicast, EPOCH,
};
use crate::{Input, Output};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/sync_datagram")
}

/// Node 2's messages, in the order it sends them.
fn generate() -> Vec<(&'static str, Vec<u8>)> {
    let mut tx = session(multicast(2));
    let mut out = Vec::new();
    tx.handle(Input::Start, at(0), &mut out);
    // Node 1 is heard, so node 2 can address a dump to it.
    feed(&mut tx, addr(1), &heartbeat(1, EPOCH, 1), at(1));
    for n in 1..=3 {
        tx.handle(Input::Local(rec(n).into()), at(1), &mut out);
    }
    tx.handle(Input::Tick, at(10), &mut out);
    tx.handle(Input::Tick, at(1010), &mut out);
    let table = [rec(10).into(), rec(11).into()];
    tx.handle(
        Input::DumpRecords {
            to: 1,
            records: &table,
        },
        at(1011),
        &mut out,
    );
    tx.handle(Input::DumpDone { to: 1 }, at(1012), &mut out);
    // IPv6 after the rest, so the IPv4 seeds stay as they were.
    let table6 = [rec6(10).into(), rec6(11).into()];
    tx.handle(
        Input::DumpRecords {
            to: 1,
            records: &table6,
        },
        at(1013),
        &mut out,
    );
    for n in 1..=3 {
        tx.handle(Input::Local(rec6(n).into()), at(1014), &mut out);
    }
    tx.handle(Input::Tick, at(1020), &mut out);
    let names = [
        "dump_request",
        "batch",
        "heartbeat",
        "dump",
        "dump_end",
        "dump6",
        "batch6",
    ];
    let sent = sends(&out);
    assert_eq!(sent.len(), names.len());
    names
        .into_iter()
        .zip(sent.into_iter().map(|(_, b)| b.to_vec()))
        .collect()
}

#[test]
fn seeds_are_accepted_in_both_modes() {
    let mut n = 0;
    for entry in std::fs::read_dir(dir()).expect("seed directory") {
        let path = entry.expect("seed").path();
        let data = std::fs::read(&path).expect("seed file");
        for cfg in [unicast(1, &[2]), multicast(1)] {
            let mut s = session(cfg);
            s.handle(Input::Start, at(0), &mut Vec::new());
            let out = feed(&mut s, addr(2), &data, at(1));
            assert!(
                out.contains(&Output::PeerUp {
                    node: 2,
                    addr: addr(2)
                }),
                "{}",
                path.display()
            );
            assert_eq!(s.stats().received_messages, 1, "{}", path.display());
        }
        n += 1;
    }
    assert!(n >= 7, "{n} seeds");
}

/// After a wire format change, `VIPD_WRITE_SEEDS=1 cargo test -p vipd-sync
/// seeds_match` writes them again.
#[test]
fn seeds_match_the_current_format() {
    let write = std::env::var_os("VIPD_WRITE_SEEDS").is_some();
    if write {
        std::fs::create_dir_all(dir()).expect("seed directory");
    }
    for (name, bytes) in generate() {
        if write {
            std::fs::write(dir().join(name), &bytes).expect("seed written");
        }
        let on_disk = std::fs::read(dir().join(name)).expect("seed file");
        assert_eq!(
            on_disk, bytes,
            "{name}: the wire format changed; VIPD_WRITE_SEEDS=1 writes the seeds again"
        );
    }
}
