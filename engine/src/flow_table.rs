//! The XDP program's `flows` and `flows6` tables: open addressing over
//! slots of one cache line (IPv4, [`Slot4`]) or two (IPv6, [`Slot6`]),
//! written by the workers through a shared mapping of the BPF array and
//! read by the program (`struct flow_slot` and `struct flow_slot6` in
//! bpf/steer.c). The two differ only in the words of their keys and
//! values, so one generic table serves both.
//!
//! A key lives in one of the [`WINDOW`] slots that follow its hash. Each
//! slot is a sequence lock: `seq` is 0 while the slot was never used, odd
//! while a worker writes it, even otherwise; a removed key leaves a deleted
//! slot (even `seq`, zero key) that a later insertion may take, so a slot
//! never returns to 0 and a lookup may stop at the first one it meets.
//!
//! Ordering: a writer takes the slot by a compare-and-swap of `seq` from
//! the even value it read to the next odd one, writes the body and
//! publishes the next even value with a Release store; a reader loads
//! `seq` (Acquire), the body, then `seq` again after an Acquire fence. The
//! atomics keep that order for Rust readers; the XDP program (clang 14,
//! no BPF load-acquire) relies on x86-64 keeping stores in order with
//! stores and loads with loads, which these plain stores and loads compile
//! to.

use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Slots a key may occupy from its hash on (`FLOW_WINDOW` in steer.c).
pub(crate) const WINDOW: usize = 8;
/// 32-bit words of an IPv4 key (`struct flow_key`) and value (`struct
/// flow_action`).
pub(crate) const KEY_WORDS: usize = 4;
pub(crate) const VALUE_WORDS: usize = 9;
/// The same for IPv6 (`struct flow_key6`, `struct flow_action6`).
pub(crate) const KEY_WORDS6: usize = 10;
pub(crate) const VALUE_WORDS6: usize = 15;
/// The action byte of a deleted slot (`FLOW_DELETED` in steer.c).
pub(crate) const DELETED: u8 = 2;

/// A slot of `K` key and `V` value words. Atomics only: the program and
/// other workers read and write it under us.
#[repr(C, align(64))]
pub(crate) struct Slot<const K: usize, const V: usize> {
    seq: AtomicU32,
    key: [AtomicU32; K],
    value: [AtomicU32; V],
    last_seen_ns: AtomicU64,
}

/// `struct flow_slot` in steer.c: one cache line.
pub(crate) type Slot4 = Slot<KEY_WORDS, VALUE_WORDS>;
/// `struct flow_slot6` in steer.c: two cache lines.
pub(crate) type Slot6 = Slot<KEY_WORDS6, VALUE_WORDS6>;

const _: () = assert!(size_of::<Slot4>() == 64);
const _: () = assert!(offset_of!(Slot4, key) == 4);
const _: () = assert!(offset_of!(Slot4, value) == 20);
const _: () = assert!(offset_of!(Slot4, last_seen_ns) == 56);
const _: () = assert!(size_of::<Slot6>() == 128);
const _: () = assert!(offset_of!(Slot6, key) == 4);
const _: () = assert!(offset_of!(Slot6, value) == 44);
const _: () = assert!(offset_of!(Slot6, last_seen_ns) == 104);

impl<const K: usize, const V: usize> Default for Slot<K, V> {
    fn default() -> Self {
        Slot {
            seq: AtomicU32::new(0),
            key: std::array::from_fn(|_| AtomicU32::new(0)),
            value: std::array::from_fn(|_| AtomicU32::new(0)),
            last_seen_ns: AtomicU64::new(0),
        }
    }
}

/// A key and its value as 32-bit words, in the order they sit in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry<const K: usize, const V: usize> {
    pub key: [u32; K],
    pub value: [u32; V],
    pub last_seen_ns: u64,
}

impl<const K: usize, const V: usize> Entry<K, V> {
    /// The action, the first byte of the value.
    pub fn action(&self) -> u8 {
        self.value[0].to_ne_bytes()[0]
    }
}

fn action_of(word: u32) -> u8 {
    word.to_ne_bytes()[0]
}

/// The value of a deleted slot: its action byte, the rest zero.
fn deleted_value<const V: usize>() -> [u32; V] {
    let mut v = [0; V];
    v[0] = u32::from_ne_bytes([DELETED, 0, 0, 0]);
    v
}

/// The hash of a key's words; `flow_hash` in steer.c is the same function.
/// The seed is random per load, so a sender cannot cheaply pick keys that
/// crowd one window.
pub(crate) fn hash<const K: usize>(seed: u32, key: &[u32; K]) -> u32 {
    let mix = |h: u32, w: u32| {
        let h = (h ^ w).wrapping_mul(0x9e37_79b1);
        h ^ (h >> 16)
    };
    let mut h = key.iter().fold(seed, |h, &w| mix(h, w));
    h ^= h >> 13;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^ (h >> 16)
}

/// Slots of a table for `keys` keys: a power of two with at least half as
/// many again spare, so that windows seldom fill, and never fewer than a
/// window.
pub fn slots_for(keys: u32) -> u32 {
    let want = (u64::from(keys) * 3).div_ceil(2).max(WINDOW as u64);
    want.next_power_of_two().min(1 << 31) as u32
}

/// One read of a slot.
enum Read<const K: usize, const V: usize> {
    Never,
    Busy,
    Stable(u32, Entry<K, V>),
}

impl<const K: usize, const V: usize> Slot<K, V> {
    fn read(&self) -> Read<K, V> {
        let seq = self.seq.load(Ordering::Acquire);
        if seq == 0 {
            return Read::Never;
        }
        if seq & 1 == 1 {
            return Read::Busy;
        }
        let entry = Entry {
            key: self.key.each_ref().map(|w| w.load(Ordering::Relaxed)),
            value: self.value.each_ref().map(|w| w.load(Ordering::Relaxed)),
            last_seen_ns: self.last_seen_ns.load(Ordering::Relaxed),
        };
        fence(Ordering::Acquire);
        if self.seq.load(Ordering::Relaxed) == seq {
            Read::Stable(seq, entry)
        } else {
            Read::Busy
        }
    }

    /// Writes the slot if its sequence is still `seq` (even): false when
    /// another writer took it first.
    fn write(&self, seq: u32, key: &[u32; K], value: &[u32; V]) -> bool {
        if self
            .seq
            .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // Keeps the body's stores after the odd sequence for any reader
        // that sees one of them.
        fence(Ordering::Release);
        for (w, v) in self.key.iter().zip(key) {
            w.store(*v, Ordering::Relaxed);
        }
        for (w, v) in self.value.iter().zip(value) {
            w.store(*v, Ordering::Relaxed);
        }
        self.last_seen_ns.store(0, Ordering::Relaxed);
        let next = match seq.wrapping_add(2) {
            0 => 2,
            n => n,
        };
        self.seq.store(next, Ordering::Release);
        true
    }
}

/// The table over some slots (a power of two, at least a window).
pub(crate) struct Table<'a, const K: usize, const V: usize> {
    slots: &'a [Slot<K, V>],
    seed: u32,
}

impl<'a, const K: usize, const V: usize> Table<'a, K, V> {
    pub fn new(slots: &'a [Slot<K, V>], seed: u32) -> Table<'a, K, V> {
        assert!(slots.len().is_power_of_two() && slots.len() >= WINDOW);
        Table { slots, seed }
    }

    /// The index of the first slot of `key`'s window.
    pub fn home(&self, key: &[u32; K]) -> usize {
        hash(self.seed, key) as usize & (self.slots.len() - 1)
    }

    fn window(&self, key: &[u32; K]) -> impl Iterator<Item = (usize, &'a Slot<K, V>)> {
        let slots = self.slots;
        let mask = slots.len() - 1;
        let home = self.home(key);
        (0..WINDOW).map(move |i| ((home + i) & mask, &slots[(home + i) & mask]))
    }

    /// The slot holding `key`, its index, the sequence it was read at and
    /// what it holds. A slot being written is passed over: only its key's
    /// owner writes a live slot, so it is not the caller's key.
    fn find(&self, key: &[u32; K]) -> Option<(usize, &'a Slot<K, V>, u32, Entry<K, V>)> {
        for (i, slot) in self.window(key) {
            match slot.read() {
                Read::Never => return None,
                Read::Busy => {}
                Read::Stable(seq, e) if e.key == *key && e.action() != DELETED => {
                    return Some((i, slot, seq, e))
                }
                Read::Stable(..) => {}
            }
        }
        None
    }

    /// Inserts or updates `key`; the index of its slot, `None` when its
    /// window has no free slot.
    pub fn insert(&self, key: &[u32; K], value: &[u32; V]) -> Option<usize> {
        if let Some((i, slot, seq, _)) = self.find(key) {
            return slot.write(seq, key, value).then_some(i);
        }
        // The first free slot, so the key never lies past a never-used one.
        // A lost race for a slot moves on to the next.
        self.window(key).find_map(|(i, slot)| {
            let seq = slot.seq.load(Ordering::Acquire);
            let free = seq == 0
                || (seq & 1 == 0 && action_of(slot.value[0].load(Ordering::Relaxed)) == DELETED);
            (free && slot.write(seq, key, value)).then_some(i)
        })
    }

    /// Removes `key`; false when it was not there.
    pub fn remove(&self, key: &[u32; K]) -> bool {
        self.find(key)
            .is_some_and(|(_, slot, seq, _)| slot.write(seq, &[0; K], &deleted_value()))
    }

    /// What the table holds for `key`, read consistently.
    pub fn get(&self, key: &[u32; K]) -> Option<Entry<K, V>> {
        self.find(key).map(|(_, _, _, e)| e)
    }
}

/// The `flows` or `flows6` array of one interface mapped into this
/// process, shared by its workers; unmapped when the last handle goes.
pub(crate) struct SharedSlots<const K: usize, const V: usize> {
    ptr: NonNull<Slot<K, V>>,
    len: usize,
    seed: u32,
}

// SAFETY: the mapping is plain shared memory of atomics, valid until drop;
// any thread may use it through `&self`.
unsafe impl<const K: usize, const V: usize> Send for SharedSlots<K, V> {}
// SAFETY: as above: every access goes through atomics.
unsafe impl<const K: usize, const V: usize> Sync for SharedSlots<K, V> {}

impl<const K: usize, const V: usize> SharedSlots<K, V> {
    /// Maps the `slots` slots of the BPF_F_MMAPABLE array `fd`, whose keys
    /// hash with `seed`.
    pub fn map(fd: BorrowedFd<'_>, slots: u32, seed: u32) -> io::Result<SharedSlots<K, V>> {
        let len = slots as usize;
        let bytes = len * size_of::<Slot<K, V>>();
        // SAFETY: a new shared mapping of the array's values, which the
        // kernel lays out from a page boundary (so every 64- or 128-byte
        // slot is aligned) and checks the length against; no memory of ours is
        // touched.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<Slot<K, V>>())
            .ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(SharedSlots { ptr, len, seed })
    }

    pub fn table(&self) -> Table<'_, K, V> {
        // SAFETY: `ptr` maps `len` aligned slots until `self` drops; a slot
        // is atomics only, so shared references to memory the program and
        // other workers write concurrently are sound.
        let slots = unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) };
        Table::new(slots, self.seed)
    }
}

impl<const K: usize, const V: usize> Drop for SharedSlots<K, V> {
    fn drop(&mut self) {
        // SAFETY: the mapping `map` made, no longer borrowed (`table`'s
        // borrows end with `&self`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len * size_of::<Slot<K, V>>());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// Each test below runs over both slot layouts, as `ipv4::NAME` and
    /// `ipv6::NAME`.
    macro_rules! for_both_layouts {
        ($($name:ident),* $(,)?) => {
            mod ipv4 {
                $(#[test]
                fn $name() {
                    super::$name::<{ super::KEY_WORDS }, { super::VALUE_WORDS }>();
                })*
            }
            mod ipv6 {
                $(#[test]
                fn $name() {
                    super::$name::<{ super::KEY_WORDS6 }, { super::VALUE_WORDS6 }>();
                })*
            }
        };
    }

    for_both_layouts!(
        inserted_keys_are_found_updated_and_removed,
        a_full_window_refuses_and_a_deleted_slot_is_taken_again,
        a_window_from_the_last_slot_wraps_to_the_first,
        sequence_wraps_past_zero_to_two,
        two_writers_claiming_the_same_slot_cannot_both_win,
        concurrent_writers_never_show_a_torn_value,
    );

    fn memory<const K: usize, const V: usize>(n: usize) -> Vec<Slot<K, V>> {
        (0..n).map(|_| Slot::default()).collect()
    }

    /// Key `n`: its second word is `n`, the others vary with it.
    fn key<const K: usize>(n: u32) -> [u32; K] {
        std::array::from_fn(|i| match i {
            1 => n,
            _ => (0x0a00_0001 + i as u32 * 0x0101) ^ n.rotate_left(i as u32 * 3),
        })
    }

    fn value<const V: usize>(n: u32) -> [u32; V] {
        let mut v = [n.wrapping_mul(0x0101_0101); V];
        v[0] = u32::from_ne_bytes([1, 0, 0, 0]) | (n << 8);
        v
    }

    /// Keys whose window starts at slot `home`.
    fn keys_at<const K: usize, const V: usize>(
        t: &Table<'_, K, V>,
        home: usize,
        n: usize,
    ) -> Vec<[u32; K]> {
        (0..)
            .map(key)
            .filter(|k| t.home(k) == home)
            .take(n)
            .collect()
    }

    fn inserted_keys_are_found_updated_and_removed<const K: usize, const V: usize>() {
        let mem = memory::<K, V>(64);
        let t = Table::new(&mem, 7);
        for n in 0..20 {
            assert!(t.insert(&key(n), &value(n)).is_some());
        }
        for n in 0..20 {
            assert_eq!(t.get(&key(n)).map(|e| e.value), Some(value(n)));
        }
        assert_eq!(t.get(&key(99)), None);
        let at = t.insert(&key(3), &value(33));
        assert_eq!(t.get(&key(3)).map(|e| e.value), Some(value(33)));
        assert_eq!(
            t.insert(&key(3), &value(34)),
            at,
            "an update stays in place"
        );
        assert!(t.remove(&key(3)));
        assert!(!t.remove(&key(3)));
        assert_eq!(t.get(&key(3)), None);
        assert!((0..20)
            .filter(|&n| n != 3)
            .all(|n| t.get(&key(n)).is_some()));
    }

    fn a_full_window_refuses_and_a_deleted_slot_is_taken_again<const K: usize, const V: usize>() {
        let mem = memory::<K, V>(64);
        let t = Table::new(&mem, 1);
        let keys = keys_at(&t, 10, WINDOW + 1);
        let at: Vec<_> = keys[..WINDOW]
            .iter()
            .map(|k| t.insert(k, &value(1)))
            .collect();
        assert_eq!(at, (10..10 + WINDOW).map(Some).collect::<Vec<_>>());
        assert_eq!(
            t.insert(&keys[WINDOW], &value(2)),
            None,
            "the window is full"
        );
        assert!(t.remove(&keys[3]));
        assert_eq!(t.insert(&keys[WINDOW], &value(2)), Some(13));
        // Past the deleted-then-retaken slot, the others are still found.
        assert!(keys
            .iter()
            .enumerate()
            .all(|(i, k)| (i == 3) != t.get(k).is_some()));
    }

    fn a_window_from_the_last_slot_wraps_to_the_first<const K: usize, const V: usize>() {
        let mem = memory::<K, V>(32);
        let t = Table::new(&mem, 3);
        let keys = keys_at(&t, 31, 3);
        let at: Vec<_> = keys.iter().map(|k| t.insert(k, &value(5))).collect();
        assert_eq!(at, vec![Some(31), Some(0), Some(1)]);
        assert!(keys.iter().all(|k| t.get(k).is_some()));
        assert!(t.remove(&keys[0]));
        assert!(
            t.get(&keys[2]).is_some(),
            "a deleted slot does not end the window"
        );
    }

    #[test]
    fn sizes_are_powers_of_two_with_a_third_spare() {
        assert_eq!(slots_for(0), 8);
        assert_eq!(slots_for(5), 8);
        assert_eq!(slots_for(6), 16);
        assert_eq!(slots_for(2 * 1_048_576), 4_194_304);
        assert_eq!(slots_for(2_500_000), 4_194_304);
    }

    fn sequence_wraps_past_zero_to_two<const K: usize, const V: usize>() {
        let s = Slot::<K, V>::default();
        s.seq.store(u32::MAX - 1, Ordering::Relaxed);
        assert!(s.write(u32::MAX - 1, &key(1), &value(1)));
        assert_eq!(s.seq.load(Ordering::Relaxed), 2);
    }

    fn two_writers_claiming_the_same_slot_cannot_both_win<const K: usize, const V: usize>() {
        let s = Slot::<K, V>::default();
        assert!(s.write(0, &key(1), &value(1)));
        assert!(!s.write(0, &key(2), &value(2)), "a stale sequence loses");
        assert!(matches!(s.read(), Read::Stable(2, e) if e.key == key(1)));
    }

    /// Two writers insert and remove their own keys in a table small
    /// enough that their windows overlap, while a reader checks that every
    /// value it gets is whole: each value is a function of its key and the
    /// writer's round.
    fn concurrent_writers_never_show_a_torn_value<const K: usize, const V: usize>() {
        const ROUNDS: u32 = 200_000;
        let mem = memory::<K, V>(32);
        let t = Table::new(&mem, 9);
        let stop = AtomicBool::new(false);
        let keys: Vec<_> = (0..12).map(key).collect();
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..2u32)
                .map(|w| {
                    let (t, keys) = (&t, &keys);
                    s.spawn(move || {
                        let mut last = Vec::new();
                        for round in 0..ROUNDS {
                            last.clear();
                            for n in (0..12u32).filter(|n| n % 2 == w) {
                                let k = &keys[n as usize];
                                // The round's low 16 bits: `value` keeps 24 bits of it.
                                let v = value(n ^ ((round & 0xffff) << 8));
                                let now = if round % 3 == 2 {
                                    t.remove(k);
                                    None
                                } else {
                                    t.insert(k, &v).map(|_| v)
                                };
                                last.push((n, now));
                            }
                        }
                        last
                    })
                })
                .collect();
            let reader = s.spawn(|| {
                let mut seen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for (n, k) in keys.iter().enumerate() {
                        if let Some(e) = t.get(k) {
                            let base = e.value[0] >> 8;
                            assert_eq!(base & 0xff, n as u32, "value of another key");
                            assert_eq!(e.value, value(base), "torn value");
                            seen += 1;
                        }
                    }
                }
                seen
            });
            let last: Vec<_> = writers
                .into_iter()
                .flat_map(|w| w.join().expect("writer"))
                .collect();
            stop.store(true, Ordering::Relaxed);
            assert!(reader.join().expect("reader") > 0);
            assert_eq!(last.len(), 12);
            for (n, want) in last {
                assert_eq!(t.get(&keys[n as usize]).map(|e| e.value), want);
            }
        });
    }
}
