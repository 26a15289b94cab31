// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// vipbench sink: counts what arrives (per CPU, by kind), samples the
// one-way latency of timestamped UDP packets into a ring buffer, drops.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define STAMP_MAGIC 0x56425453
#define L4_OFF (ETH_HLEN + 20)
#define PAYLOAD_OFF (L4_OFF + 8)

// Mirrored by `SinkStat` in src/bpf.rs.
enum sink_stat {
	SINK_PACKETS = 0,
	SINK_BYTES,
	SINK_UDP,
	SINK_TCP_SYN,
	SINK_TCP_EST,
	SINK_OTHER,
	SINK_STAMPED,
	SINK_SAMPLE_LOST,
	SINK_STAT_COUNT,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SINK_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

// Sample every n-th timestamped packet (per CPU); 0 samples none.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sample_every SEC(".maps");

// Latency samples in nanoseconds.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} latency SEC(".maps");

static __always_inline __u64 bump(__u32 which, __u64 by)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (!v)
		return 0;
	*v += by;
	return *v;
}

SEC("xdp")
int vipbench_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 zero = 0, *every;
	__u8 *l4 = data + L4_OFF;

	bump(SINK_PACKETS, 1);
	bump(SINK_BYTES, data_end - data);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5) {
		bump(SINK_OTHER, 1);
		return XDP_DROP;
	}
	if (ip->protocol == IPPROTO_TCP) {
		__u8 flags;

		if (data + L4_OFF + 14 > data_end) {
			bump(SINK_OTHER, 1);
			return XDP_DROP;
		}
		flags = l4[13];
		if ((flags & 0x02) && !(flags & 0x10))
			bump(SINK_TCP_SYN, 1);
		else if ((flags & 0x10) && !(flags & 0x02))
			bump(SINK_TCP_EST, 1);
		else
			bump(SINK_OTHER, 1);
		return XDP_DROP;
	}
	if (ip->protocol != IPPROTO_UDP) {
		bump(SINK_OTHER, 1);
		return XDP_DROP;
	}
	bump(SINK_UDP, 1);
	if (data + PAYLOAD_OFF + 12 <= data_end) {
		__u32 magic;
		__u64 sent, n, lat;

		__builtin_memcpy(&magic, data + PAYLOAD_OFF, 4);
		if (magic != bpf_htonl(STAMP_MAGIC))
			return XDP_DROP;
		n = bump(SINK_STAMPED, 1);
		every = bpf_map_lookup_elem(&sample_every, &zero);
		if (!every || *every == 0 || n % *every != 0)
			return XDP_DROP;
		__builtin_memcpy(&sent, data + PAYLOAD_OFF + 4, 8);
		lat = bpf_ktime_get_ns() - sent;
		if (bpf_ringbuf_output(&latency, &lat, sizeof(lat), 0))
			bump(SINK_SAMPLE_LOST, 1);
	}
	return XDP_DROP;
}

char _license[] SEC("license") = "Dual MIT/GPL";
