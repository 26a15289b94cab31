use super::*;
use std::collections::HashMap;

const TCP: u8 = 6;
const UDP: u8 = 17;
const VIP: u32 = 0x0a00_0001;
const LB: u32 = 0x0a00_0002;

fn t() -> Timeouts {
    Timeouts::default()
}

/// Keys of a full-NAT connection from client `n` to backend `backend`.
fn keys(n: u32, backend: u32, proto: u8) -> (FlowKey, FlowKey) {
    let client = 0xc000_0000 | n;
    let sport = 1024 + (n % 60_000) as u16;
    let fwd = FlowKey {
        src_ip: client,
        dst_ip: VIP,
        src_port: sport,
        dst_port: 80,
        proto,
    };
    let rep = FlowKey {
        src_ip: 0xac10_0000 | backend,
        dst_ip: LB,
        src_port: 8080,
        dst_port: (n % 65_000) as u16 + 1,
        proto,
    };
    (fwd, rep)
}

fn conn(n: u32, backend: u32, proto: u8, now: u64) -> Conn {
    Conn::new(
        Rewrite::default(),
        Rewrite::default(),
        3,
        backend,
        0xc000_0000 | n,
        proto,
        now,
    )
}

fn add(
    table: &mut FlowTable,
    n: u32,
    backend: u32,
    proto: u8,
    now: u64,
) -> Result<ConnId, InsertError> {
    let (f, r) = keys(n, backend, proto);
    table.insert(f, r, conn(n, backend, proto, now), now)
}

/// Per-backend counts recomputed from scratch must equal the maintained ones.
fn check_counts(table: &FlowTable) {
    let mut want: HashMap<u32, (u32, u32)> = HashMap::new();
    for c in table.iter() {
        let e = want.entry(c.backend_id).or_default();
        if c.state.is_active() {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    assert_eq!(table.iter().count(), table.len());
    for b in 0..64 {
        assert_eq!(
            table.backend_conns(b),
            want.get(&b).copied().unwrap_or((0, 0)),
            "backend {b}"
        );
    }
}

#[test]
fn both_keys_find_the_conn() {
    let mut table = FlowTable::new(16, t());
    let (f, r) = keys(1, 2, TCP);
    let id = table.insert(f, r, conn(1, 2, TCP, 0), 0).unwrap();
    assert_eq!(table.lookup(&f, 1), Some((id, Direction::Forward)));
    assert_eq!(table.lookup(&r, 1), Some((id, Direction::Reply)));
    assert_eq!(table.conn(id).backend_id, 2);
    let listed: Vec<_> = table
        .entries()
        .map(|(a, b, c, e)| (*a, *b, c.backend_id, e))
        .collect();
    assert_eq!(listed, [(f, r, 2, t().embryonic_ms)]);
    let (other, _) = keys(2, 2, TCP);
    assert_eq!(table.lookup(&other, 1), None);
    assert_eq!(
        table.insert(f, other, conn(1, 2, TCP, 0), 0),
        Err(InsertError::Exists)
    );
    table.remove(id);
    assert_eq!(table.lookup(&f, 1), None);
    assert_eq!(table.lookup(&r, 1), None);
    assert_eq!(table.len(), 0);
    table.remove(id);
    assert_eq!(table.len(), 0);
}

#[test]
fn equal_keys_use_one_entry() {
    let mut table = FlowTable::new(4, t());
    let (f, _) = keys(1, 2, UDP);
    let id = table.insert(f, f, conn(1, 2, UDP, 0), 0).unwrap();
    assert_eq!(table.lookup(&f, 0), Some((id, Direction::Forward)));
    table.remove(id);
    assert_eq!(table.lookup(&f, 0), None);
}

#[test]
fn table_drives_state_from_both_directions() {
    let mut table = FlowTable::new(8, t());
    let (f, r) = keys(1, 5, TCP);
    table.insert(f, r, conn(1, 5, TCP, 0), 0).unwrap();
    let steps = [
        (f, TCP_SYN, ConnState::SynRecv),
        (r, TCP_SYN | TCP_ACK, ConnState::SynRecv),
        (f, TCP_ACK, ConnState::Established),
        (f, TCP_FIN | TCP_ACK, ConnState::FinWait),
        (r, TCP_FIN | TCP_ACK, ConnState::LastAck),
        (f, TCP_ACK, ConnState::TimeWait),
    ];
    for (now, (key, flags, want)) in (1..).zip(steps) {
        let (id, dir) = table.lookup(&key, now).unwrap();
        assert_eq!(table.touch(id, dir, flags, now), want);
        assert_eq!(table.conn(id).state, want);
        check_counts(&table);
    }
    assert_eq!(table.backend_conns(5), (0, 1));
}

#[test]
fn expiry_per_state() {
    let to = t();
    let cases = [
        (TCP, 0, to.embryonic_ms),
        (TCP, TCP_ACK, to.established_ms),
        (TCP, TCP_FIN, to.closing_ms),
        (TCP, TCP_RST, to.close_ms),
        (UDP, 0, to.udp_ms),
    ];
    for (n, (proto, flags, timeout)) in (0..).zip(cases) {
        let mut table = FlowTable::new(8, to);
        let (f, r) = keys(n, 1, proto);
        let id = table.insert(f, r, conn(n, 1, proto, 100), 100).unwrap();
        if flags != 0 {
            if flags == TCP_FIN {
                table.touch(id, Direction::Forward, TCP_ACK, 100);
            }
            table.touch(id, Direction::Forward, flags, 100);
        }
        assert!(table.lookup(&f, 100 + timeout - 1).is_some(), "case {n}");
        // The lookup does not refresh; only touch does.
        assert!(table.lookup(&r, 100 + timeout).is_none(), "case {n}");
        assert!(table.lookup(&f, 100 + timeout).is_none(), "case {n}");
        assert_eq!(table.len(), 0);
        check_counts(&table);
    }
    // TIME_WAIT via a full close.
    let mut table = FlowTable::new(8, to);
    let (f, r) = keys(9, 1, TCP);
    let id = table.insert(f, r, conn(9, 1, TCP, 0), 0).unwrap();
    for (dir, flags) in [
        (Direction::Forward, TCP_ACK),
        (Direction::Reply, TCP_FIN),
        (Direction::Forward, TCP_FIN | TCP_ACK),
        (Direction::Reply, TCP_ACK),
    ] {
        table.touch(id, dir, flags, 50);
    }
    assert_eq!(table.conn(id).state, ConnState::TimeWait);
    assert_eq!(
        table.expire(50 + to.time_wait_ms - 1, 8, &mut NothingSeen),
        0
    );
    assert_eq!(table.expire(50 + to.time_wait_ms, 8, &mut NothingSeen), 1);
    assert_eq!(table.len(), 0);
}

#[test]
fn touch_refreshes_timer() {
    let to = t();
    let mut table = FlowTable::new(8, to);
    let (f, r) = keys(1, 1, TCP);
    let id = table.insert(f, r, conn(1, 1, TCP, 0), 0).unwrap();
    table.touch(id, Direction::Forward, TCP_ACK, 0);
    let later = to.established_ms - 1;
    table.touch(id, Direction::Forward, TCP_ACK, later);
    assert!(table.lookup(&f, later + to.established_ms - 1).is_some());
    assert!(table.lookup(&f, later + to.established_ms).is_none());
}

#[test]
fn expire_is_incremental() {
    let mut table = FlowTable::new(100, t());
    for n in 0..100 {
        add(&mut table, n, n % 4, UDP, 0).unwrap();
    }
    let late = t().udp_ms;
    assert_eq!(table.expire(late, 30, &mut NothingSeen), 30);
    assert_eq!(table.len(), 70);
    check_counts(&table);
    assert_eq!(table.expire(late, 1000, &mut NothingSeen), 70);
    assert_eq!(table.len(), 0);
    check_counts(&table);
}

fn establish(table: &mut FlowTable, id: ConnId, now: u64) {
    assert_eq!(
        table.touch(id, Direction::Forward, TCP_ACK, now),
        ConnState::Established
    );
}

#[test]
fn syn_flood_never_evicts_established() {
    let capacity = 1000;
    let mut table = FlowTable::new(capacity, t());
    let bytes = table.memory_bytes();
    let mut established = Vec::new();
    for n in 0..100 {
        let id = add(&mut table, n, n % 8, TCP, 0).unwrap();
        establish(&mut table, id, 0);
        established.push((n, id));
    }
    let mut full = 0;
    let mut now = 0;
    for n in 100..100 + 10 * capacity as u32 {
        now += 1;
        match add(&mut table, n, 8 + n % 8, TCP, now) {
            Ok(_) => {}
            Err(InsertError::Full) => full += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
        if n % 500 == 0 {
            for &(m, id) in &established {
                let (f, _) = keys(m, m % 8, TCP);
                assert_eq!(table.lookup(&f, now), Some((id, Direction::Forward)));
                table.touch(id, Direction::Forward, TCP_ACK, now);
            }
            check_counts(&table);
        }
    }
    for &(m, id) in &established {
        let (f, r) = keys(m, m % 8, TCP);
        assert_eq!(table.lookup(&f, now), Some((id, Direction::Forward)));
        assert_eq!(table.lookup(&r, now), Some((id, Direction::Reply)));
        assert_eq!(table.conn(id).state, ConnState::Established);
    }
    // The flood keeps cycling embryonic entries rather than being refused.
    assert!(full < capacity, "{full} inserts refused");
    assert_eq!(table.len(), capacity);
    check_counts(&table);
    assert_eq!(table.memory_bytes(), bytes);
}

#[test]
fn full_of_established_refuses_new() {
    let mut table = FlowTable::new(50, t());
    let bytes = table.memory_bytes();
    let mut n = 0;
    while table.len() < table.capacity() {
        if let Ok(id) = add(&mut table, n, n % 3, TCP, 0) {
            establish(&mut table, id, 0);
        }
        n += 1;
    }
    for m in n..n + 200 {
        assert!(matches!(
            add(&mut table, m, 1, TCP, 1),
            Err(InsertError::Full)
        ));
    }
    assert_eq!(table.len(), 50);
    check_counts(&table);
    // Once they expire there is room again.
    let later = t().established_ms;
    assert!(add(&mut table, n + 500, 1, TCP, later).is_ok());
    check_counts(&table);
    assert_eq!(table.memory_bytes(), bytes);
}

#[test]
fn oldest_embryonic_is_evicted_first() {
    let mut table = FlowTable::new(3, t());
    let a = add(&mut table, 1, 1, TCP, 0).unwrap();
    let b = add(&mut table, 2, 1, TCP, 1).unwrap();
    let c = add(&mut table, 3, 1, TCP, 2).unwrap();
    // Touching `a` makes `b` the least recently seen.
    table.touch(a, Direction::Forward, TCP_SYN, 3);
    let d = add(&mut table, 4, 1, TCP, 4).unwrap();
    let found = |table: &mut FlowTable, n| table.lookup(&keys(n, 1, TCP).0, 4).map(|x| x.0);
    assert_eq!(found(&mut table, 1), Some(a));
    assert_eq!(found(&mut table, 2), None);
    assert_eq!(found(&mut table, 3), Some(c));
    assert_eq!(found(&mut table, 4), Some(d));
    assert_ne!(b, a);
    check_counts(&table);
}

#[test]
fn counts_exact_through_churn() {
    let to = t();
    let mut table = FlowTable::new(200, to);
    let bytes = table.memory_bytes();
    let mut live: Vec<(u32, u8, ConnId)> = Vec::new();
    let mut seed = 12345u64;
    let mut rand = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as u32
    };
    let (mut inserted, mut touched, mut removed, mut expired) = (0, 0, 0, 0);
    let mut now = 0u64;
    for n in 0..5000u32 {
        now += u64::from(rand() % 50);
        match rand() % 6 {
            0 | 1 => {
                let proto = if rand() % 4 == 0 { UDP } else { TCP };
                if let Ok(id) = add(&mut table, n, rand() % 16, proto, now) {
                    live.push((n, proto, id));
                    inserted += 1;
                }
            }
            2 | 3 if !live.is_empty() => {
                let (m, proto, _) = live[rand() as usize % live.len()];
                let found = (0..16).find_map(|b| table.lookup(&keys(m, b, proto).0, now));
                if let Some((id, _)) = found {
                    let flags = [TCP_SYN, TCP_ACK, TCP_ACK, TCP_FIN, TCP_RST][rand() as usize % 5];
                    let dir = if rand() % 2 == 0 {
                        Direction::Forward
                    } else {
                        Direction::Reply
                    };
                    table.touch(id, dir, flags, now);
                    touched += 1;
                }
            }
            4 if !live.is_empty() => {
                let (_, _, id) = live.swap_remove(rand() as usize % live.len());
                table.remove(id);
                removed += 1;
            }
            _ => expired += table.expire(now, 20, &mut NothingSeen),
        }
        // Drop handles whose conn was reclaimed or evicted meanwhile.
        live.retain(|&(m, _, id)| {
            table.contains(id) && table.conn(id).client_ip == 0xc000_0000 | m
        });
        if n % 100 == 0 {
            check_counts(&table);
        }
    }
    assert!(inserted > 500 && touched > 300 && removed > 100 && expired > 50);
    check_counts(&table);
    table.expire(now + to.established_ms, 200, &mut NothingSeen);
    assert_eq!(table.len(), 0);
    check_counts(&table);
    assert_eq!(table.memory_bytes(), bytes);
}

#[test]
fn zero_capacity_is_always_full() {
    let mut table = FlowTable::new(0, t());
    assert_eq!(add(&mut table, 1, 1, TCP, 0), Err(InsertError::Full));
    assert_eq!(table.expire(0, 10, &mut NothingSeen), 0);
}

#[test]
fn memory_is_bounded_per_conn() {
    let table: FlowTable = FlowTable::new(100_000, t());
    let per_conn = table.bytes_per_conn();
    assert!(per_conn <= 200, "{per_conn} bytes per connection");
}
