//! The pure part of the sync lag: which records belong to which generated
//! connection, whether a record says what the master must have said, and
//! the percentiles of the lags.

use std::collections::HashMap;

use connsync::{ConnRecord, RecordOp};

/// A connection's key as the generator and the record name it: client
/// address (host order) and port.
pub(crate) type Key = (u32, u16);

/// A connection the generator opened: its establishing ACK went out at
/// `ack_ns` (CLOCK_REALTIME, ns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sent {
    pub key: Key,
    pub ack_ns: u64,
}

/// A record the backup received in a sync datagram at `at_ns`
/// (CLOCK_REALTIME, ns, the kernel's receive stamp).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub at_ns: u64,
    pub record: ConnRecord,
}

/// What every record of a generated connection must say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Expect {
    pub vip: u32,
    pub vip_port: u16,
    /// The backends' addresses (host order); the port is `vip_port`.
    pub backends: Vec<u32>,
    pub client_mac: [u8; 6],
    /// The dataplane's code of ESTABLISHED.
    pub state: u8,
    /// The master's sync node id.
    pub origin: u16,
}

impl Expect {
    /// Whether `r` is an upsert of an established NAT connection to one of
    /// the backends, from the master, with the client's MAC.
    pub(crate) fn fits(&self, r: &ConnRecord) -> bool {
        r.op == RecordOp::Upsert
            && r.proto == 6
            && r.state == self.state
            && r.vip == self.vip
            && r.vip_port == self.vip_port
            && self.backends.contains(&r.backend_ip)
            && r.backend_port == self.vip_port
            && r.snat_ip == 0
            && r.snat_port == 0
            && r.client_mac == self.client_mac
            && r.origin == self.origin
            && r.timeout_ms > 0
    }
}

/// The generated connections against what the backup received.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Matched {
    /// Connections the generator opened.
    pub created: u64,
    /// Of those, seen on the backup with a right record: lags below.
    pub matched: u64,
    /// Seen, but the first record was wrong (not in the lags).
    pub wrong: u64,
    /// Never seen on the backup.
    pub lost: u64,
    /// Records the backup received for these connections, repeats (the
    /// master's refreshes) included.
    pub records: u64,
    /// Receive stamp minus ACK stamp of each matched connection, ns,
    /// sorted; negative where the record came in before the send call
    /// that carried the ACK returned.
    pub lags_ns: Vec<i64>,
}

/// Matches every sent connection with the first record of its key among
/// `seen` (a refresh later carries the same connection again).
pub(crate) fn match_lags(sent: &[Sent], seen: &[Seen], expect: &Expect) -> Matched {
    let mut first: HashMap<Key, (&Seen, u64)> = HashMap::with_capacity(seen.len());
    for s in seen.iter().filter(|s| s.record.proto == 6) {
        let key = (s.record.client_ip, s.record.client_port);
        first
            .entry(key)
            .and_modify(|(e, n)| {
                *n += 1;
                if s.at_ns < e.at_ns {
                    *e = s;
                }
            })
            .or_insert((s, 1));
    }
    let mut m = Matched {
        created: sent.len() as u64,
        ..Matched::default()
    };
    for c in sent {
        let found = first.get(&c.key);
        m.records += found.map_or(0, |f| f.1);
        match found.map(|f| f.0) {
            None => m.lost += 1,
            Some(s) if !expect.fits(&s.record) => m.wrong += 1,
            Some(s) => {
                m.matched += 1;
                m.lags_ns.push(s.at_ns as i64 - c.ack_ns as i64);
            }
        }
    }
    m.lags_ns.sort_unstable();
    m
}

/// The `q` quantile (0..=1) of sorted values, nearest rank; `None` for
/// none.
pub(crate) fn percentile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect() -> Expect {
        Expect {
            vip: 100,
            vip_port: 80,
            backends: vec![11, 12],
            client_mac: [2, 0, 0, 0, 0, 2],
            state: 2,
            origin: 513,
        }
    }

    fn record(ip: u32, port: u16) -> ConnRecord {
        ConnRecord {
            op: RecordOp::Upsert,
            proto: 6,
            state: 2,
            client_ip: ip,
            client_port: port,
            vip: 100,
            vip_port: 80,
            backend_ip: 12,
            backend_port: 80,
            client_mac: [2, 0, 0, 0, 0, 2],
            origin: 513,
            timeout_ms: 900_000,
            ..ConnRecord::default()
        }
    }

    #[test]
    fn a_right_record_fits_and_each_wrong_field_does_not() {
        let e = expect();
        assert!(e.fits(&record(1, 2)));
        let wrong: [fn(&mut ConnRecord); 9] = [
            |r| r.op = RecordOp::Delete,
            |r| r.proto = 17,
            |r| r.state = 1,
            |r| r.vip = 101,
            |r| r.backend_ip = 13,
            |r| r.backend_port = 81,
            |r| r.client_mac = [0; 6],
            |r| r.origin = 514,
            |r| r.snat_ip = 7,
        ];
        for change in wrong {
            let mut r = record(1, 2);
            change(&mut r);
            assert!(!e.fits(&r), "{r:?} fits");
        }
    }

    #[test]
    fn matching_takes_the_first_record_and_counts_wrong_and_lost() {
        let sent = [
            Sent {
                key: (1, 10),
                ack_ns: 1_000,
            },
            Sent {
                key: (1, 11),
                ack_ns: 2_000,
            },
            Sent {
                key: (2, 10),
                ack_ns: 3_000,
            },
            Sent {
                key: (3, 10),
                ack_ns: 4_000,
            },
        ];
        let mut bad = record(2, 10);
        bad.backend_ip = 99;
        let seen = [
            // A refresh after the first sighting, listed first.
            Seen {
                at_ns: 9_000,
                record: record(1, 10),
            },
            Seen {
                at_ns: 6_000,
                record: record(1, 10),
            },
            Seen {
                at_ns: 1_500,
                record: record(1, 11),
            },
            Seen {
                at_ns: 5_000,
                record: bad,
            },
            // Not generated: ignored.
            Seen {
                at_ns: 5_000,
                record: record(8, 8),
            },
        ];
        let m = match_lags(&sent, &seen, &expect());
        assert_eq!((m.created, m.matched, m.wrong, m.lost), (4, 2, 1, 1));
        assert_eq!(
            m.records, 4,
            "two for (1, 10), one each for (1, 11) and (2, 10)"
        );
        assert_eq!(m.lags_ns, vec![-500, 5_000]);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&v, 1.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
