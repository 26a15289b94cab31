// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// vipd XDP steering program.
//
// Only traffic the dataplane serves is redirected to the queue's AF_XDP
// socket: ARP for owned addresses, IPv4 to a VIP or full-NAT source address,
// and packets of the workers' NAT connections coming back from backends,
// found by their exact reply key (and ICMP errors quoting such a
// connection). Everything else (BGP, VRRP, SSH, health-check replies, a
// backend's own traffic through the node, IPv6, ...) goes to the kernel
// untouched, so the control plane and the routed traffic keep working next to
// the dataplane.
//
// A SYN flood is met here, before the AF_XDP ring: new TCP connections to a
// VIP are admitted at a configured rate per receive queue and the excess is
// dropped, so the workers keep the capacity to serve established flows.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_QUEUES 64

enum stat {
	STAT_REDIRECTED = 0,
	STAT_PASS_ARP,
	STAT_PASS_IPV4,
	STAT_PASS_IPV6,
	STAT_PASS_OTHER_ETHERTYPE,
	STAT_PASS_TRUNCATED,
	STAT_DROP_SYN_LIMIT,
	STAT_COUNT,
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

// Destination addresses the dataplane serves (network order); presence is
// what counts.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} vips SEC(".maps");

// A TCP or UDP packet's key as it sits in the packet (network order).
struct flow_key {
	__be32 src;
	__be32 dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

// Reply keys of the workers' NAT connections, added when a worker opens one
// and withdrawn when it ends; presence is what counts. Sized at load time to
// the workers' flow tables; entries are allocated as they come.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct flow_key);
	__type(value, __u8);
} replies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

#define NS_PER_SEC 1000000000ULL

// SYN admission: entry SYN_RATE holds SYNs per second per receive queue
// (0 admits every SYN), SYN_BURST the largest burst admitted at once.
enum { SYN_RATE = 0, SYN_BURST, SYN_LIMIT_COUNT };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SYN_LIMIT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} syn_limit SEC(".maps");

// One token bucket per receive queue, in SYNs scaled by NS_PER_SEC so the
// refill needs no division. A queue is polled by one CPU at a time.
struct syn_bucket {
	__u64 tokens;
	__u64 last_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct syn_bucket);
} syn_buckets SEC(".maps");

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (v)
		*v += 1;
}

// Redirects to the queue's socket; a queue without a socket falls back to
// the kernel, counted under `pass_stat`.
static __always_inline int redirect(struct xdp_md *ctx, __u32 pass_stat)
{
	int ret = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);

	count(ret == XDP_REDIRECT ? STAT_REDIRECTED : pass_stat);
	return ret;
}

// Whether the IPv4 packet at `ip` is a TCP SYN (without ACK) opening a
// connection. Fragments past the first carry no TCP header.
static __always_inline int is_syn(void *ip, void *data_end)
{
	__u8 *h = ip;
	__u8 *tcp;
	__u32 ihl;

	if (h[9] != 6 || (h[6] & 0x1f) || h[7])
		return 0;
	ihl = (h[0] & 0x0f) * 4;
	if (ihl < 20)
		return 0;
	tcp = ip + ihl;
	if ((void *)(tcp + 14) > data_end)
		return 0;
	return (tcp[13] & 0x12) == 0x02;
}

// Whether the IPv4 packet at `ip` (header checked to be 20 bytes long)
// belongs to one of the workers' NAT connections: its key is a reply key, or
// it is an ICMP error quoting a packet of such a connection. Later fragments
// carry no ports and stay with the kernel.
static __always_inline int is_reply(void *ip, void *data_end)
{
	__u8 *h = ip;
	struct flow_key k = {};
	__u32 ihl = (h[0] & 0x0f) * 4;
	__u8 *l4, *q, *ql4;

	if (ihl < 20 || (h[6] & 0x1f) || h[7])
		return 0;
	l4 = ip + ihl;
	if (h[9] == IPPROTO_TCP || h[9] == IPPROTO_UDP) {
		if ((void *)(l4 + 4) > data_end)
			return 0;
		__builtin_memcpy(&k.src, h + 12, 4);
		__builtin_memcpy(&k.dst, h + 16, 4);
		__builtin_memcpy(&k.sport, l4, 2);
		__builtin_memcpy(&k.dport, l4 + 2, 2);
		k.proto = h[9];
		return bpf_map_lookup_elem(&replies, &k) != 0;
	}
	if (h[9] != IPPROTO_ICMP)
		return 0;
	// Destination unreachable, time exceeded, parameter problem: 8 bytes of
	// ICMP header, then the offending packet's IPv4 header and ports. That
	// packet went towards the backend, so its key reversed is the reply key.
	q = l4 + 8;
	if ((void *)(q + 20) > data_end)
		return 0;
	if (l4[0] != 3 && l4[0] != 11 && l4[0] != 12)
		return 0;
	if (q[9] != IPPROTO_TCP && q[9] != IPPROTO_UDP)
		return 0;
	ql4 = q + (q[0] & 0x0f) * 4;
	if ((void *)(ql4 + 4) > data_end)
		return 0;
	__builtin_memcpy(&k.src, q + 16, 4);
	__builtin_memcpy(&k.dst, q + 12, 4);
	__builtin_memcpy(&k.sport, ql4 + 2, 2);
	__builtin_memcpy(&k.dport, ql4, 2);
	k.proto = q[9];
	return bpf_map_lookup_elem(&replies, &k) != 0;
}

// Takes a token from the queue's bucket; 0 when the SYN is over the limit.
static __always_inline int syn_admitted(struct xdp_md *ctx)
{
	__u32 rate_key = SYN_RATE, burst_key = SYN_BURST, queue = ctx->rx_queue_index;
	__u64 *rate = bpf_map_lookup_elem(&syn_limit, &rate_key);
	__u64 *burst = bpf_map_lookup_elem(&syn_limit, &burst_key);
	struct syn_bucket *b;
	__u64 now, elapsed, tokens, cap;

	if (!rate || !burst || !*rate)
		return 1;
	b = bpf_map_lookup_elem(&syn_buckets, &queue);
	if (!b)
		return 1;
	now = bpf_ktime_get_ns();
	elapsed = now - b->last_ns;
	// The bucket is full after a second idle; capping keeps the product small.
	if (elapsed > NS_PER_SEC)
		elapsed = NS_PER_SEC;
	cap = *burst * NS_PER_SEC;
	tokens = b->tokens + elapsed * *rate;
	if (tokens > cap)
		tokens = cap;
	b->last_ns = now;
	if (tokens < NS_PER_SEC) {
		b->tokens = tokens;
		return 0;
	}
	b->tokens = tokens - NS_PER_SEC;
	return 1;
}

SEC("xdp")
int vipd_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cur;
	__be16 proto;
	__u32 addr;
	int i;

	if ((void *)(eth + 1) > data_end) {
		count(STAT_PASS_TRUNCATED);
		return XDP_PASS;
	}
	proto = eth->h_proto;
	cur = eth + 1;

#pragma unroll
	for (i = 0; i < 2; i++) {
		struct vlan_hdr *vlan = cur;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vlan + 1) > data_end) {
			count(STAT_PASS_TRUNCATED);
			return XDP_PASS;
		}
		proto = vlan->proto;
		cur = vlan + 1;
	}

	if (proto == bpf_htons(ETH_P_ARP)) {
		// The sender and target protocol addresses follow the 8 fixed
		// bytes and each hardware address; their offsets come from the
		// announced hardware length, so malformed ARP for a VIP still
		// reaches the workers, which count it. A reply naming a VIP as its
		// sender is a claim on it, which the workers answer while this
		// node owns the VIP; requests from a VIP (a DR backend resolving
		// its gateway, say) stay with the kernel, which answers them.
		__u8 *arp = cur;
		void *sender, *target;
		__u32 hlen;

		if ((void *)(arp + 8) > data_end) {
			count(STAT_PASS_TRUNCATED);
			return XDP_PASS;
		}
		hlen = arp[4] & 0x1f;
		sender = cur + 8 + hlen;
		target = sender + 4 + hlen;
		if (sender + 4 > data_end || target + 4 > data_end) {
			count(STAT_PASS_TRUNCATED);
			return XDP_PASS;
		}
		__builtin_memcpy(&addr, target, sizeof(addr));
		if (bpf_map_lookup_elem(&vips, &addr))
			return redirect(ctx, STAT_PASS_ARP);
		__builtin_memcpy(&addr, sender, sizeof(addr));
		if (arp[7] == 2 && arp[6] == 0 && bpf_map_lookup_elem(&vips, &addr))
			return redirect(ctx, STAT_PASS_ARP);
		count(STAT_PASS_ARP);
		return XDP_PASS;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		// Only the fixed 20 bytes are needed for the addresses; header
		// validity (version, IHL, length, fragments) is judged in userspace
		// so such drops are counted there.
		if (cur + 20 > data_end) {
			count(STAT_PASS_TRUNCATED);
			return XDP_PASS;
		}
		__builtin_memcpy(&addr, cur + 16, sizeof(addr));
		if (bpf_map_lookup_elem(&vips, &addr)) {
			if (is_syn(cur, data_end) && !syn_admitted(ctx)) {
				count(STAT_DROP_SYN_LIMIT);
				return XDP_DROP;
			}
			return redirect(ctx, STAT_PASS_IPV4);
		}
		if (is_reply(cur, data_end))
			return redirect(ctx, STAT_PASS_IPV4);
		count(STAT_PASS_IPV4);
		return XDP_PASS;
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		count(STAT_PASS_IPV6);
		return XDP_PASS;
	}

	count(STAT_PASS_OTHER_ETHERTYPE);
	return XDP_PASS;
}

char _license[] SEC("license") = "Dual MIT/GPL";
