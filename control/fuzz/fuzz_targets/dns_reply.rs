//! Any datagram as the reply to a DNS health check's query: the decoder
//! never panics, and what it accepts is consistent. The id is taken from
//! the datagram itself so the fuzzer gets past the id test. Seeds:
//! `seeds/dns_reply`.

#![no_main]

use control::health::dns::{decode_reply, reply_id, QType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id = reply_id(data).unwrap_or(0);
    for qtype in [QType::A, QType::Aaaa] {
        if let Ok(answer) = decode_reply(data, id, "svc.test", qtype) {
            assert!(answer.of_type >= 1 && answer.of_type <= answer.records);
        }
    }
});
