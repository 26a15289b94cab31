// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// vipbench sink: counts what arrives (per CPU, by kind), checks every
// frame against what the row's DUT must deliver (IPv4 and TCP/UDP
// checksums valid, addressed as the forwarding mode says), samples the
// one-way latency of timestamped UDP packets into a ring buffer, drops.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define STAMP_MAGIC 0x56425453
#define L4_OFF (ETH_HLEN + 20)
#define PAYLOAD_OFF (L4_OFF + 8)
#define PAYLOAD_OFF6 (ETH_HLEN + 40 + 8)

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
	SINK_VERIFIED,
	SINK_MALFORMED,
	SINK_STAT_COUNT,
};

// What a delivered frame must look like besides valid checksums. Mirrored
// by `Expect` in src/bpf.rs.
enum expect_mode {
	EXPECT_ANY = 0,     // checksums only
	EXPECT_TO_RANGE,    // destination address in [lo, hi]
	EXPECT_TO_RANGE_FROM, // and source address == from (full NAT)
	EXPECT_TO_MAC,      // destination address == lo, Ethernet destination == mac (direct routing)
};

struct expect {
	__u32 mode;
	__u32 lo;   // host order
	__u32 hi;   // host order
	__u32 from; // host order
	__u8 mac[6];
	// The DUT is the kernel, whose veth transmits leave TCP/UDP checksums
	// for the receiver's "NIC" to finish (CHECKSUM_PARTIAL): a checksum in
	// that form is right from it, and wrong from anything that sends
	// through XDP or AF_XDP.
	__u8 partial_ok;
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct expect);
} expect SEC(".maps");

// What a delivered IPv6 frame must look like: mode EXPECT_ANY or
// EXPECT_TO_RANGE. No partial checksums: the kernel is no IPv6 row's DUT.
// Mirrored by `Expect6` in src/bpf.rs.
struct expect6 {
	__u32 mode;
	__u8 prefix[12]; // the backends' first 96 bits
	__u32 lo;        // their last 32 bits, host order
	__u32 hi;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct expect6);
} expect6 SEC(".maps");

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

static __always_inline __u32 fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	return (sum & 0xffff) + (sum >> 16);
}

// The largest IPv4 payload the sink checks (a 1514-byte frame).
#define MAX_L4_WORDS 740

// Adds the `len` bytes at `p` to `sum`; 0 if they are not all in bounds.
static __always_inline int l4_sum(__u8 *p, __u32 len, void *data_end, __u32 *sum)
{
	__u32 words = len / 2, i;

	if (words > MAX_L4_WORDS)
		return 0;
	for (i = 0; i < MAX_L4_WORDS; i++) {
		__u16 *w = (__u16 *)p + i;

		if (i >= words || (void *)(w + 1) > data_end)
			break;
		*sum += *w;
	}
	if (i < words)
		return 0;
	if (len & 1) {
		__u8 *odd = p + len - 1;

		if (len > 2 * MAX_L4_WORDS || (void *)(odd + 1) > data_end)
			return 0;
		*sum += *odd; // the odd byte is the high byte of a zero-padded word
	}
	return 1;
}

// Whether the IPv4 packet at `ip` (20-byte header, in bounds) has valid
// checksums and the addresses `e` asks for.
static __always_inline int verified(void *data, void *data_end, struct iphdr *ip,
				    struct expect *e)
{
	__u16 *w = (__u16 *)ip;
	__u8 *dst_mac = data;
	__u32 sum = 0, pseudo, len, i, src, dst;
	__u16 field;
	__u8 *p;

#pragma unroll
	for (i = 0; i < 10; i++)
		sum += w[i];
	if (fold(sum) != 0xffff)
		return 0;
	len = bpf_ntohs(ip->tot_len);
	if (len < 28 || (void *)ip + len > data_end)
		return 0;
	len -= 20;
	p = (void *)(ip + 1);
	if ((void *)(p + 8) > data_end)
		return 0;
	// UDP over IPv4 may go without a checksum, but the generator always
	// sets one: a zero means a DUT lost it.
	if (ip->protocol == IPPROTO_UDP && p[6] == 0 && p[7] == 0)
		return 0;
	pseudo = (ip->saddr >> 16) + (ip->saddr & 0xffff) + (ip->daddr >> 16) +
		 (ip->daddr & 0xffff) + bpf_htons(ip->protocol) + bpf_htons(len);
	if (ip->protocol == IPPROTO_UDP) {
		field = *(__u16 *)(p + 6);
	} else {
		if ((void *)(p + 18) > data_end)
			return 0;
		field = *(__u16 *)(p + 16);
	}
	sum = pseudo;
	if (!l4_sum(p, len, data_end, &sum))
		return 0;
	if (fold(fold(sum)) != 0xffff && !(e->partial_ok && field == fold(fold(pseudo))))
		return 0;
	src = bpf_ntohl(ip->saddr);
	dst = bpf_ntohl(ip->daddr);
	switch (e->mode) {
	case EXPECT_TO_RANGE:
		return dst >= e->lo && dst <= e->hi;
	case EXPECT_TO_RANGE_FROM:
		return dst >= e->lo && dst <= e->hi && src == e->from;
	case EXPECT_TO_MAC:
		return dst == e->lo && dst_mac[0] == e->mac[0] && dst_mac[1] == e->mac[1] &&
		       dst_mac[2] == e->mac[2] && dst_mac[3] == e->mac[3] &&
		       dst_mac[4] == e->mac[4] && dst_mac[5] == e->mac[5];
	default:
		return 1;
	}
}

// Counts a timestamped UDP packet whose stamp sits at `off` and samples
// its one-way latency.
static __always_inline int sample(void *data, void *data_end, __u32 off)
{
	__u32 zero = 0, magic, *every;
	__u64 sent, n, lat;

	if (data + off + 12 > data_end)
		return XDP_DROP;
	__builtin_memcpy(&magic, data + off, 4);
	if (magic != bpf_htonl(STAMP_MAGIC))
		return XDP_DROP;
	n = bump(SINK_STAMPED, 1);
	every = bpf_map_lookup_elem(&sample_every, &zero);
	if (!every || *every == 0 || n % *every != 0)
		return XDP_DROP;
	__builtin_memcpy(&sent, data + off + 4, 8);
	lat = bpf_ktime_get_ns() - sent;
	if (bpf_ringbuf_output(&latency, &lat, sizeof(lat), 0))
		bump(SINK_SAMPLE_LOST, 1);
	return XDP_DROP;
}

// Whether the IPv6 UDP packet at `ip6` (header in bounds, no extension
// headers) has a valid checksum and the destination `e` asks for.
static __always_inline int verified6(void *data_end, struct ipv6hdr *ip6, struct expect6 *e)
{
	__u32 sum = 0, len = bpf_ntohs(ip6->payload_len), i, dst;
	__u16 *addrs = (__u16 *)&ip6->saddr;
	__u8 *p = (void *)(ip6 + 1), *d = (__u8 *)&ip6->daddr;

	if (len < 8 || (void *)(p + 8) > data_end)
		return 0;
	// Zero means "no checksum", which IPv6 does not allow for UDP.
	if (p[6] == 0 && p[7] == 0)
		return 0;
#pragma unroll
	for (i = 0; i < 16; i++)
		sum += addrs[i];
	sum += bpf_htons(len) + bpf_htons(IPPROTO_UDP);
	if (!l4_sum(p, len, data_end, &sum) || fold(fold(sum)) != 0xffff)
		return 0;
	if (e->mode != EXPECT_TO_RANGE)
		return 1;
	for (i = 0; i < 12; i++)
		if (d[i] != e->prefix[i])
			return 0;
	__builtin_memcpy(&dst, d + 12, 4);
	dst = bpf_ntohl(dst);
	return dst >= e->lo && dst <= e->hi;
}

static __always_inline int sink6(void *data, void *data_end)
{
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct expect6 *e;
	__u32 zero = 0;

	if ((void *)(ip6 + 1) > data_end || ip6->nexthdr != IPPROTO_UDP) {
		bump(SINK_OTHER, 1);
		return XDP_DROP;
	}
	e = bpf_map_lookup_elem(&expect6, &zero);
	if (e)
		bump(verified6(data_end, ip6, e) ? SINK_VERIFIED : SINK_MALFORMED, 1);
	bump(SINK_UDP, 1);
	return sample(data, data_end, PAYLOAD_OFF6);
}

SEC("xdp")
int vipbench_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	__u8 *l4 = data + L4_OFF;
	__u32 zero = 0;
	struct expect *e;

	bump(SINK_PACKETS, 1);
	bump(SINK_BYTES, data_end - data);
	if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_IPV6))
		return sink6(data, data_end);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5) {
		bump(SINK_OTHER, 1);
		return XDP_DROP;
	}
	e = bpf_map_lookup_elem(&expect, &zero);
	if (e && (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP))
		bump(verified(data, data_end, ip, e) ? SINK_VERIFIED : SINK_MALFORMED, 1);
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
	return sample(data, data_end, PAYLOAD_OFF);
}

char _license[] SEC("license") = "Dual MIT/GPL";
