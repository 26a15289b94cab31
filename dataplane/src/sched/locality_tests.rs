use super::*;
use std::cell::RefCell;
use std::collections::HashMap;

const EXPIRE: u64 = 60_000;

fn bw(id: u32, weight: u32) -> BackendWeight {
    BackendWeight {
        id,
        weight,
        available: true,
    }
}

/// Active connections per backend id; inactive ones are always 0.
struct Load(RefCell<HashMap<u32, u32>>);

impl Load {
    fn new(active: &[(u32, u32)]) -> Load {
        Load(RefCell::new(active.iter().copied().collect()))
    }

    fn set(&self, id: u32, active: u32) {
        self.0.borrow_mut().insert(id, active);
    }

    fn conns(&self) -> impl Fn(u32) -> (u32, u32) + '_ {
        |id| (self.0.borrow().get(&id).copied().unwrap_or(0), 0)
    }
}

fn pick(t: &mut LocalityTable, b: &[BackendWeight], load: &Load, dst: u32, now: u64) -> usize {
    t.pick(b, &load.conns(), dst, now).expect("a backend")
}

fn set_of(t: &LocalityTable, dst: u32) -> Vec<u32> {
    t.buckets
        .iter()
        .flatten()
        .find(|e| e.used && e.dst == u128::from(dst))
        .map(|e| e.members().to_vec())
        .unwrap_or_default()
}

#[test]
fn lblc_keeps_a_destination_on_its_server() {
    let b = [bw(1, 10), bw(2, 10), bw(3, 10)];
    let load = Load::new(&[(1, 4), (2, 1), (3, 2)]);
    let mut t = LocalityTable::new(Locality::Single, EXPIRE);
    // New destination: weighted least-connection picks backend 2.
    assert_eq!(pick(&mut t, &b, &load, 7, 0), 1);
    // It stays there although backend 2 is no longer the least loaded.
    load.set(2, 9);
    for now in 1..50 {
        assert_eq!(pick(&mut t, &b, &load, 7, now), 1);
    }
    // Another destination goes to the least loaded server now.
    assert_eq!(pick(&mut t, &b, &load, 8, 50), 2);
}

#[test]
fn lblc_moves_only_when_overloaded_and_someone_is_idle_enough() {
    let b = [bw(1, 4), bw(2, 4)];
    let load = Load::new(&[(1, 0), (2, 0)]);
    let mut t = LocalityTable::new(Locality::Single, EXPIRE);
    assert_eq!(pick(&mut t, &b, &load, 7, 0), 0);
    // More active connections than its weight, but backend 2 has 2 of 4
    // (not fewer than half): still not overloaded.
    load.set(1, 5);
    load.set(2, 2);
    assert_eq!(pick(&mut t, &b, &load, 7, 1), 0);
    // Active equal to the weight is not above it.
    load.set(1, 4);
    load.set(2, 1);
    assert_eq!(pick(&mut t, &b, &load, 7, 2), 0);
    // Above its weight while backend 2 has 1 of 4: overloaded, moved.
    load.set(1, 5);
    assert_eq!(pick(&mut t, &b, &load, 7, 3), 1);
    // The destination now belongs to backend 2, even once backend 1 is idle.
    load.set(1, 0);
    assert_eq!(pick(&mut t, &b, &load, 7, 4), 1);
    assert_eq!(set_of(&t, 7), [2]);
}

#[test]
fn lblc_leaves_unavailable_and_drained_servers() {
    let mut b = vec![bw(1, 1), bw(2, 1), bw(3, 1)];
    let load = Load::new(&[]);
    let mut t = LocalityTable::new(Locality::Single, EXPIRE);
    assert_eq!(pick(&mut t, &b, &load, 7, 0), 0);
    b[0].available = false;
    assert_eq!(pick(&mut t, &b, &load, 7, 1), 1);
    b[0].available = true;
    b[1].weight = 0;
    assert_eq!(pick(&mut t, &b, &load, 7, 2), 0);
    // A server removed from the service is unavailable as well.
    let shrunk = [bw(3, 1)];
    assert_eq!(pick(&mut t, &shrunk, &load, 7, 3), 0);
    assert_eq!(set_of(&t, 7), [3]);
    let none = [bw(3, 0)];
    assert_eq!(t.pick(&none, &load.conns(), 7, 4), None);
}

#[test]
fn unused_entries_expire() {
    let b = [bw(1, 10), bw(2, 10)];
    let load = Load::new(&[(1, 0), (2, 3)]);
    for mode in [Locality::Single, Locality::Replicated] {
        let mut t = LocalityTable::new(mode, EXPIRE);
        assert_eq!(pick(&mut t, &b, &load, 7, 0), 0);
        load.set(1, 6);
        // Every use refreshes the entry, so it outlives the expiration time.
        assert_eq!(pick(&mut t, &b, &load, 7, EXPIRE - 1), 0, "{mode:?}");
        assert_eq!(pick(&mut t, &b, &load, 7, 2 * EXPIRE - 2), 0, "{mode:?}");
        // Unused for the whole expiration time: scheduled afresh.
        assert_eq!(pick(&mut t, &b, &load, 7, 3 * EXPIRE - 2), 1, "{mode:?}");
        load.set(1, 0);
    }
}

#[test]
fn lblcr_adds_a_server_when_the_set_is_overloaded() {
    let b = [bw(1, 2), bw(2, 2), bw(3, 2)];
    let load = Load::new(&[(1, 0), (2, 1), (3, 1)]);
    let mut t = LocalityTable::new(Locality::Replicated, EXPIRE);
    assert_eq!(pick(&mut t, &b, &load, 7, 0), 0);
    // Backend 1 is overloaded (3 > 2) while backend 2 and 3 are not idle
    // enough (1 of 2 is not fewer than half): the set keeps one member.
    load.set(1, 3);
    assert_eq!(pick(&mut t, &b, &load, 7, 1), 0);
    // Backend 3 drops to 0 of 2: backend 1 now counts as overloaded, and the
    // least-connection pick joins the set.
    load.set(3, 0);
    assert_eq!(pick(&mut t, &b, &load, 7, 2), 2);
    assert_eq!(set_of(&t, 7), [1, 3]);
    // The set's least loaded member serves from now on.
    load.set(1, 0);
    load.set(3, 1);
    assert_eq!(pick(&mut t, &b, &load, 7, 3), 0);
    load.set(1, 2);
    assert_eq!(pick(&mut t, &b, &load, 7, 4), 2);
    // Backend 2 never joined.
    assert_eq!(set_of(&t, 7), [1, 3]);
}

#[test]
fn lblcr_shrinks_an_unchanged_set_by_its_most_loaded_member() {
    let b = [bw(1, 2), bw(2, 2)];
    let load = Load::new(&[]);
    let mut t = LocalityTable::new(Locality::Replicated, EXPIRE);
    assert_eq!(pick(&mut t, &b, &load, 7, 0), 0);
    load.set(1, 3);
    assert_eq!(pick(&mut t, &b, &load, 7, 10), 1, "set grows");
    assert_eq!(set_of(&t, 7), [1, 2]);
    // In use, but unchanged for the expiration time: the most loaded
    // member (backend 1, 3 active) leaves.
    load.set(2, 1);
    assert_eq!(pick(&mut t, &b, &load, 7, EXPIRE / 2), 1);
    assert_eq!(set_of(&t, 7), [1, 2]);
    assert_eq!(pick(&mut t, &b, &load, 7, 10 + EXPIRE), 1);
    assert_eq!(set_of(&t, 7), [2]);
    // A single member is never removed.
    assert_eq!(pick(&mut t, &b, &load, 7, 10 + 2 * EXPIRE - 1), 1);
    assert_eq!(set_of(&t, 7), [2]);
}

#[test]
fn lblcr_set_is_bounded() {
    let b: Vec<BackendWeight> = (1..=20).map(|id| bw(id, 1)).collect();
    let load = Load::new(&[]);
    let mut t = LocalityTable::new(Locality::Replicated, EXPIRE);
    t.pick(&b, &load.conns(), 7, 0);
    // Every member is overloaded in turn while the others are idle, so the
    // set keeps growing until it is full, then swaps members.
    for now in 1..100 {
        for id in set_of(&t, 7) {
            load.set(id, 2);
        }
        pick(&mut t, &b, &load, 7, now);
        let set = set_of(&t, 7);
        assert!(set.len() <= SET_MAX, "{set:?}");
        let mut dedup = set.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), set.len(), "duplicate member: {set:?}");
        if now > 20 {
            load.0.borrow_mut().clear();
        }
    }
    assert_eq!(set_of(&t, 7).len(), SET_MAX);
}

#[test]
fn hostile_destinations_cannot_grow_the_table() {
    let b = [bw(1, 1), bw(2, 1)];
    let load = Load::new(&[]);
    for mode in [Locality::Single, Locality::Replicated] {
        let mut t = LocalityTable::new(mode, EXPIRE);
        let (cap, bytes) = (t.buckets.len() * WAYS, t.buckets.capacity());
        assert_eq!(cap, LOCALITY_CAPACITY);
        for dst in 0..200_000u32 {
            assert!(t
                .pick(&b, &load.conns(), dst.wrapping_mul(2_654_435_761), 5)
                .is_some());
        }
        assert_eq!((t.buckets.len() * WAYS, t.buckets.capacity()), (cap, bytes));
        let used = t.buckets.iter().flatten().filter(|e| e.used).count();
        assert_eq!(used, LOCALITY_CAPACITY, "{mode:?}: every way reused");
        // A destination used after the flood is remembered again.
        load.set(1, 0);
        let first = pick(&mut t, &b, &load, 1, 6);
        load.set(u32::try_from(first).unwrap_or(0) + 1, 1);
        assert_eq!(pick(&mut t, &b, &load, 1, 7), first, "{mode:?}");
    }
}

#[test]
fn full_bucket_gives_up_its_least_recently_used_entry() {
    let b = [bw(1, 1)];
    let load = Load::new(&[]);
    let mut t = LocalityTable::new(Locality::Single, EXPIRE);
    let mask = t.buckets.len() - 1;
    let home = dst_hash(1) as usize & mask;
    let same: Vec<u32> = (1..)
        .filter(|d| dst_hash(*d) as usize & mask == home)
        .take(WAYS + 1)
        .collect();
    for (now, d) in (0..).zip(&same[..WAYS]) {
        pick(&mut t, &b, &load, *d, now);
    }
    // Touch the oldest, so the second oldest is the one replaced.
    pick(&mut t, &b, &load, same[0], 100);
    pick(&mut t, &b, &load, same[WAYS], 101);
    assert_eq!(set_of(&t, same[0]), [1]);
    assert!(set_of(&t, same[1]).is_empty());
    assert_eq!(set_of(&t, same[WAYS]), [1]);
}
