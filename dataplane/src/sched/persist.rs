//! Source-IP persistence: a client keeps going to the backend it was first
//! given, per service, until the entry times out. Bounded and preallocated:
//! an 8-way set-associative cache that replaces expired entries first and
//! otherwise the one closest to expiry.

use super::mix;
use crate::flow::Addr;

const WAYS: usize = 8;
const SEED_PERSIST: u64 = 0x7669_7064_7065_7273;

#[derive(Clone, Copy, Default)]
struct Entry {
    /// The client's address whole ([`Addr::wide`]): one cache serves both
    /// families.
    client_ip: u128,
    backend_id: u32,
    expires_ms: u64,
    service: u16,
    used: bool,
}

pub struct Persistence {
    buckets: Vec<[Entry; WAYS]>,
}

impl Persistence {
    /// Room for at least `capacity` clients, allocated now.
    pub fn new(capacity: usize) -> Self {
        let n = capacity.div_ceil(WAYS).next_power_of_two().max(1);
        Persistence {
            buckets: vec![[Entry::default(); WAYS]; n],
        }
    }

    pub fn capacity(&self) -> usize {
        self.buckets.len() * WAYS
    }

    pub fn memory_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<[Entry; WAYS]>()
    }

    fn bucket<A: Addr>(&mut self, service: u16, client_ip: A) -> &mut [Entry; WAYS] {
        let h = mix(((u64::from(service) << 32) ^ client_ip.word()) ^ SEED_PERSIST);
        let mask = self.buckets.len() - 1;
        &mut self.buckets[h as usize & mask]
    }

    pub fn get<A: Addr>(&mut self, service: u16, client_ip: A, now_ms: u64) -> Option<u32> {
        let wide = client_ip.wide();
        let e = self
            .bucket(service, client_ip)
            .iter_mut()
            .find(|e| e.used && e.service == service && e.client_ip == wide)?;
        if now_ms >= e.expires_ms {
            e.used = false;
            return None;
        }
        Some(e.backend_id)
    }

    /// Records (or refreshes) the client's backend for `timeout_ms`.
    pub fn put<A: Addr>(
        &mut self,
        service: u16,
        client_ip: A,
        backend_id: u32,
        timeout_ms: u64,
        now_ms: u64,
    ) {
        let wide = client_ip.wide();
        let bucket = self.bucket(service, client_ip);
        let pos = bucket
            .iter()
            .position(|e| e.used && e.service == service && e.client_ip == wide)
            .or_else(|| {
                bucket
                    .iter()
                    .position(|e| !e.used || now_ms >= e.expires_ms)
            })
            .unwrap_or_else(|| (0..WAYS).min_by_key(|&w| bucket[w].expires_ms).unwrap_or(0));
        bucket[pos] = Entry {
            client_ip: wide,
            backend_id,
            expires_ms: now_ms.saturating_add(timeout_ms),
            service,
            used: true,
        };
    }
}
