// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// vipbench lookup probe: what one random access into a flow table costs
// the XDP program on this host, with nothing else of a packet's path.
//
// `table` is allocated as vipd's IPv4 flow table is (an mmapable array of
// 64-byte slots, so vmalloc'ed in 4 KiB pages) and sized as the row's DUT
// sized its own. Each run reads one slot of `keys` spread over the table by
// a hash, as a lookup hit does, and notes a time in it, as a forwarded
// packet does. The slot read feeds the next run's choice, so consecutive
// runs cannot overlap their cache and TLB misses any more than packets do.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct slot {
	__u32 seq;
	__u32 key[4];
	__u8 rest[36];
	__u64 last_seen_ns;
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct slot) == 64, "the size of vipd's IPv4 slot");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct slot);
} table SEC(".maps");

// The value read by the previous run (always 0: the table stays zero but
// for the times), added to the next choice to chain the runs.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} chain SEC(".maps");

// Set at load: the slot count less one (a power of two less one), and how
// many distinct slots the runs visit.
const volatile __u32 mask = 7;
const volatile __u32 keys = 1;

SEC("xdp")
int vipbench_lookup(struct xdp_md *ctx)
{
	__u32 zero = 0, k, idx;
	__u32 *prev = bpf_map_lookup_elem(&chain, &zero);
	struct slot *s;

	if (!prev)
		return XDP_ABORTED;
	k = (bpf_get_prandom_u32() + *prev) % keys;
	// Key k's slot: a multiplicative hash spreads the keys over the table
	// as vipd's seeded hash spreads flows.
	idx = (k * 0x9e3779b1);
	idx ^= idx >> 15;
	idx &= mask;
	s = bpf_map_lookup_elem(&table, &idx);
	if (!s)
		return XDP_ABORTED;
	*prev = *(volatile __u32 *)&s->seq;
	s->last_seen_ns = bpf_ktime_get_coarse_ns();
	return XDP_DROP;
}

char _license[] SEC("license") = "Dual MIT/GPL";
