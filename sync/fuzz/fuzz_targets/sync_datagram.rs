//! Any bytes as a datagram on the sync socket: the record decoders (IPv4
//! and IPv6) and the message view never panic, and a session in unicast
//! and multicast mode, idle or holding, either accepts the datagram,
//! counts it as its own, or refuses it for a counted reason, exactly once. A refused datagram
//! changes nothing, and the same bytes again are never accepted twice.
//! Seeds: `seeds/sync_datagram` (valid datagrams from node 2 to node 1,
//! records of both families).

#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use connsync::{AnyRecord, Config, Input, MessageView, Now, Record, Session, WireAddr};
use libfuzzer_sys::fuzz_target;

/// The key the crate's tests sign the seeds with.
const KEY: &[u8] = b"vipd test site key, 32 bytes ok!";
const EPOCH: u64 = 1_700_000_000_000_000;

fn accounted(s: &Session) -> u64 {
    let st = s.stats();
    st.received_messages + st.own + st.rejected.total()
}

/// A record of family `A` that decodes encodes back to the same bytes.
fn round_trips<A: WireAddr>(data: &[u8]) {
    if let Ok(r) = Record::<A>::decode(data) {
        let mut again = vec![0u8; Record::<A>::LEN];
        r.encode_into(&mut again).expect("record size");
        assert_eq!(&again[..], &data[..Record::<A>::LEN]);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trips::<u32>(data);
    round_trips::<[u8; 16]>(data);
    if let Ok(v) = MessageView::new_checked(data) {
        assert_eq!(v.records().count(), usize::from(v.record_count()));
        if let Some(family) = v.family() {
            for r in v.records() {
                assert_eq!(r.len(), family.record_len());
                let _ = AnyRecord::decode(family, r);
            }
        }
        let _ = (
            v.sender(),
            v.to(),
            v.flags(),
            v.epoch(),
            v.seq(),
            v.sent_unix_us(),
            v.dump_total(),
        );
    }
    let from = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let peers = [Some(vec![from]), None];
    for (peers, start) in peers.iter().flat_map(|p| [(p, false), (p, true)]) {
        let now = Now {
            ms: 0,
            unix_us: EPOCH,
        };
        let mut s =
            Session::new(Config::new(1, KEY, peers.clone(), EPOCH + 1), now).expect("valid config");
        let mut out = Vec::new();
        if start {
            s.handle(Input::Start, now, &mut out);
        }
        for round in 0..2 {
            let before = (
                accounted(&s),
                s.stats().rejected.total(),
                s.stats().received_messages,
            );
            let peers_before: Vec<_> = s.peers().cloned().collect();
            out.clear();
            s.handle(Input::Datagram { from, bytes: data }, now, &mut out);
            assert_eq!(accounted(&s), before.0 + 1);
            if s.stats().rejected.total() > before.1 {
                assert!(out.is_empty());
                assert!(s.peers().cloned().eq(peers_before));
            }
            if round == 1 {
                assert_eq!(s.stats().received_messages, before.2, "accepted twice");
            }
        }
        out.clear();
        s.handle(
            Input::Tick,
            Now {
                ms: 60_000,
                unix_us: EPOCH,
            },
            &mut out,
        );
    }
});
