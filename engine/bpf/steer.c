// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// vipd XDP program: the fast path of established connections and the
// steering of everything else.
//
// Packets of a connection a worker has offloaded (an entry in `flows` whose
// action is FLOW_FORWARD) are rewritten here with the rewrite the worker
// decided and sent on at once: XDP_TX on the interface they came in on,
// the `tx_ports` devmap to another. Anything the worker must see -- TCP
// SYN/FIN/RST, IP options, TTL about to expire, a frame over the egress MTU,
// a malformed header -- goes to the worker instead, which stays the
// authority on every connection.
//
// Only traffic the dataplane serves is redirected to the queue's AF_XDP
// socket: ARP and IPv6 Neighbor Solicitations for owned addresses, IPv4 and
// IPv6 to a VIP or full-NAT source address, packets of the workers'
// connections found by their exact key (and ICMP errors quoting such a
// connection). Everything else (BGP, VRRP, SSH, health-check replies, a
// backend's own traffic through the node, the kernel's own Neighbor
// Discovery and router advertisements, ...) goes to the kernel untouched, so
// the control plane and the routed traffic keep working next to the
// dataplane. IPv6 connections have no fast path yet.
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
	STAT_FAST_FORWARDED,
	STAT_FAST_TO_WORKER,
	STAT_FAST_NO_EGRESS,
	STAT_FAST_ABORTED,
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

enum { FLOW_TO_WORKER = 0, FLOW_FORWARD = 1, FLOW_DELETED = 2 };

// What to do with the packets of one key. Addresses, ports and checksum
// deltas are in network order, as they sit in the packet.
struct flow_action {
	__u8 action;
	__u8 src_mac[6];
	__u8 dst_mac[6];
	__u8 pad;
	// One's complement sum of the IPv4 header words the rewrite changes
	// (old complemented, new as is): the header checksum update.
	__u16 ip_delta;
	__be32 src;
	__be32 dst;
	__be16 sport;
	__be16 dport;
	// The same over the addresses and ports: the TCP/UDP checksum update.
	__u16 l4_delta;
	// Port index of the egress interface: the key of `ports` and `tx_ports`.
	__u16 egress;
	// The backend the packets are counted for: the key of
	// `backend_traffic` (ids beyond it are not counted here).
	__u32 backend;
};

// One slot of `flows`: one cache line. `seq` is a sequence lock: 0 for a
// slot never used, odd while a worker writes the slot, even otherwise. A
// deleted slot keeps an even `seq`, a zero key and FLOW_DELETED. The
// program writes only `last_seen_ns`, outside the lock: a time noted as a
// worker rewrites the slot may land in the new entry, which is being
// opened anyway. `Slot` in engine/src/flow_table.rs (with `FlowValue` in
// engine/src/steer.rs for `value`) is the same layout.
struct flow_slot {
	__u32 seq;
	struct flow_key key;
	struct flow_action value;
	__u64 last_seen_ns;
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct flow_slot) == 64, "a slot is one cache line");
_Static_assert(__builtin_offsetof(struct flow_slot, key) == 4, "slot layout");
_Static_assert(__builtin_offsetof(struct flow_slot, value) == 20, "slot layout");
_Static_assert(__builtin_offsetof(struct flow_slot, value.egress) == 50, "slot layout");
_Static_assert(__builtin_offsetof(struct flow_slot, value.backend) == 52, "slot layout");
_Static_assert(__builtin_offsetof(struct flow_slot, last_seen_ns) == 56, "slot layout");

// Keys of the workers' connections, added when a worker opens one and
// withdrawn when it ends: FLOW_TO_WORKER hands the packets to the workers
// (NAT replies, which come from the backends' own addresses), FLOW_FORWARD
// forwards them here. An open-addressing table the workers write through
// a shared mapping of the array (BPF_F_MMAPABLE): a key lives in one of
// the FLOW_WINDOW slots from its hash, so a lookup costs one cache line,
// not the bucket, key and value misses of a hash map. Sized at load time
// to a power of two, `flow_mask` + 1 slots.
//
// Ordering: clang 14 has no BPF load-acquire, so the sequence lock rests
// on x86-64 keeping loads in order with loads and stores with stores (the
// workers write seq odd, the slot, seq even; the program reads seq, the
// slot, seq again); barrier() keeps the compiler from reordering them.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct flow_slot);
} flows SEC(".maps");

#define FLOW_WINDOW 8

// Set at load: the slot count less one, and a random seed of the hash, so
// that a sender cannot cheaply pick keys that crowd one window.
const volatile __u32 flow_mask = FLOW_WINDOW - 1;
const volatile __u32 flow_seed = 0;

#define barrier() asm volatile("" ::: "memory")
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))

static __always_inline __u32 flow_mix(__u32 h, __u32 w)
{
	h = (h ^ w) * 0x9e3779b1;
	return h ^ (h >> 16);
}

// The hash of a key, over its four 32-bit words as they sit in memory;
// `flow_hash` in engine/src/steer.rs is the same function.
static __always_inline __u32 flow_hash(const struct flow_key *k)
{
	const __u32 *w = (const __u32 *)k;
	__u32 h = flow_seed;

	h = flow_mix(h, w[0]);
	h = flow_mix(h, w[1]);
	h = flow_mix(h, w[2]);
	h = flow_mix(h, w[3]);
	h ^= h >> 13;
	h *= 0x85ebca6b;
	return h ^ (h >> 16);
}

enum { FLOW_MISS = 0, FLOW_HIT, FLOW_BUSY };

// Looks `k` up: FLOW_HIT with a consistent copy of its slot in `copy` and
// the slot itself in `live`; FLOW_BUSY when a slot of the window is being
// written or changed under the read (the worker, the authority, takes the
// packet); FLOW_MISS when no slot holds it.
static __always_inline int flow_find(const struct flow_key *k, struct flow_slot *copy,
				     struct flow_slot **live)
{
	const __u32 *kw = (const __u32 *)k;
	__u32 h = flow_hash(k);
	int i;

#pragma unroll
	for (i = 0; i < FLOW_WINDOW; i++) {
		__u32 idx = (h + i) & flow_mask;
		struct flow_slot *s = bpf_map_lookup_elem(&flows, &idx);
		const __u32 *sw;
		__u32 seq;

		if (!s)
			return FLOW_MISS;
		seq = READ_ONCE(s->seq);
		if (seq == 0)
			return FLOW_MISS;
		if (seq & 1)
			return FLOW_BUSY;
		barrier();
		sw = (const __u32 *)&s->key;
		if (READ_ONCE(sw[0]) != kw[0] || READ_ONCE(sw[1]) != kw[1] ||
		    READ_ONCE(sw[2]) != kw[2] || READ_ONCE(sw[3]) != kw[3])
			continue;
		__builtin_memcpy(copy, s, sizeof(*copy));
		barrier();
		if (READ_ONCE(s->seq) != seq)
			return FLOW_BUSY;
		if (copy->value.action == FLOW_DELETED)
			continue;
		*live = s;
		return FLOW_HIT;
	}
	return FLOW_MISS;
}

// IPv6 destination addresses the dataplane serves, as in the packet.
struct addr6 {
	__u8 b[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct addr6);
	__type(value, __u8);
} vips6 SEC(".maps");

// An IPv6 TCP or UDP packet's key as it sits in the packet.
struct flow_key6 {
	struct addr6 src;
	struct addr6 dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

// Keys of the workers' IPv6 NAT connections' replies, which come from the
// backends' own addresses: presence hands the packets to the workers.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct flow_key6);
	__type(value, __u8);
} flows6 SEC(".maps");

// The dataplane's interfaces by port index. `xmit` is 0 while frames
// cannot leave the port from XDP (a veth whose peer has neither an XDP
// program nor GRO drops them): its connections stay in the workers.
struct port_info {
	__u32 ifindex;
	__u32 mtu;
	__u32 xmit;
};

#define MAX_PORTS 256

// Packets and bytes the fast path forwarded, by backend id.
struct traffic {
	__u64 packets;
	__u64 bytes;
};

#define MAX_BACKEND_IDS 65536

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_BACKEND_IDS);
	__type(key, __u32);
	__type(value, struct traffic);
} backend_traffic SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, struct port_info);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

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

// Reads the key of the IPv4 packet at `ip` (20 header bytes checked to be
// there) into `k`: 0 when it is not TCP or UDP with its ports in the frame.
// Later fragments carry no ports and stay with the kernel.
static __always_inline int flow_key_of(void *ip, void *data_end, struct flow_key *k)
{
	__u8 *h = ip;
	__u32 ihl = (h[0] & 0x0f) * 4;
	__u8 *l4;

	if (ihl < 20 || (h[6] & 0x1f) || h[7])
		return 0;
	if (h[9] != IPPROTO_TCP && h[9] != IPPROTO_UDP)
		return 0;
	l4 = ip + ihl;
	if ((void *)(l4 + 4) > data_end)
		return 0;
	__builtin_memcpy(&k->src, h + 12, 4);
	__builtin_memcpy(&k->dst, h + 16, 4);
	__builtin_memcpy(&k->sport, l4, 2);
	__builtin_memcpy(&k->dport, l4 + 2, 2);
	k->proto = h[9];
	return 1;
}

// Whether the IPv4 packet at `ip` (header checked to be 20 bytes long) is
// an ICMP error quoting a packet of one of the workers' connections:
// destination unreachable, time exceeded, parameter problem carry 8 bytes
// of ICMP header, then the offending packet's IPv4 header and ports. That
// packet went towards the backend, so its key reversed is the reply key.
static __always_inline int quotes_flow(void *ip, void *data_end)
{
	__u8 *h = ip;
	struct flow_key k = {};
	struct flow_slot copy, *live;
	__u32 ihl = (h[0] & 0x0f) * 4;
	__u8 *l4, *q, *ql4;

	if (h[9] != IPPROTO_ICMP || ihl < 20 || (h[6] & 0x1f) || h[7])
		return 0;
	l4 = ip + ihl;
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
	return flow_find(&k, &copy, &live) != FLOW_MISS;
}

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

// All sums below are one's complement sums of 16-bit words as the machine
// loads them: byte order does not matter to them (RFC 1071 2(B)), and the
// deltas the workers write are in packet order, so nothing is swapped.
static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

static __always_inline __u64 addr_sum(__u32 a)
{
	return (a & 0xffff) + (a >> 16);
}

#define SUM_FAILED (1ULL << 32)

// Adds the `n` bytes at `p` to `sum` when bit `n` of `len` is set (the
// chunks of a length below 512, largest first) and moves `p` past them.
#define SUM_CHUNK(n)                                                   \
	if (len & (n)) {                                               \
		if (p + (n) > data_end)                                \
			return SUM_FAILED;                             \
		sum = bpf_csum_diff(0, 0, p, (n), sum);                \
		p += (n);                                              \
	}

// Adds 512 bytes while at least that many are left.
#define SUM_512                                                        \
	if (len >= 512) {                                              \
		if (p + 512 > data_end)                                \
			return SUM_FAILED;                             \
		sum = bpf_csum_diff(0, 0, p, 512, sum);                \
		p += 512;                                              \
		len -= 512;                                            \
	}

// The sum of the `len` bytes at offset `off` of the frame (a TCP or UDP
// header and payload), by bpf_csum_diff, which takes at most 512 bytes a
// call in multiples of four; SUM_FAILED when they do not lie within the
// frame or pass 2047 bytes, more than the engine's largest MTU. A function
// of its own, so the verifier walks its branches once, not once for every
// path that leads to it.
__attribute__((noinline)) __u64 l4_sum(struct xdp_md *ctx, __u32 off, __u32 len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	void *p;
	__u32 sum = 0;

	if (off > 64)
		return SUM_FAILED;
	p = data + off;
	SUM_512
	SUM_512
	SUM_512
	if (len >= 512)
		return SUM_FAILED;
	SUM_CHUNK(256)
	SUM_CHUNK(128)
	SUM_CHUNK(64)
	SUM_CHUNK(32)
	SUM_CHUNK(16)
	SUM_CHUNK(8)
	SUM_CHUNK(4)
	if (len & 2) {
		if (p + 2 > data_end)
			return SUM_FAILED;
		sum = fold((__u64)sum + *(__u16 *)p);
		p += 2;
	}
	if (len & 1) {
		// A last odd byte is the high half of a word padded with zero.
		if (p + 1 > data_end)
			return SUM_FAILED;
		sum = fold((__u64)sum + *(__u8 *)p);
	}
	return sum;
}

// Forwards a packet of an offloaded connection with the worker's rewrite,
// as the worker would: MACs, TTL, addresses, ports, checksums updated
// incrementally, or computed whole when the sender left the TCP/UDP
// checksum for its NIC to finish. Returns -1, with the packet untouched,
// when the worker must handle it. `f` is the stable copy of the slot
// `live`, where the time of the packet is noted.
static __always_inline int fast_forward(struct xdp_md *ctx, const struct flow_action *f,
					struct flow_slot *live, void *data, void *ip,
					void *data_end)
{
	__u8 *h = ip, *l4 = ip + 20;
	__u16 *field, csum, ttl_old, ttl_new, c;
	__u32 tot_len, l4_len, egress = f->egress;
	__u64 body;
	__u32 src, dst;
	struct port_info *port;
	struct traffic *t;
	__u32 backend;
	int partial, i, ret;
	__u64 s = 0;

	// Options, a header that does not add up, a TTL that ends here: the
	// worker decides and counts.
	if (h[0] != 0x45 || h[8] <= 1)
		return -1;
#pragma unroll
	for (i = 0; i < 10; i++)
		s += ((__u16 *)h)[i];
	if (fold(s) != 0xffff)
		return -1;
	tot_len = bpf_ntohs(*(__be16 *)(h + 2));
	if (tot_len < 20 || ip + tot_len > data_end)
		return -1;
	l4_len = tot_len - 20;
	if (h[9] == IPPROTO_TCP) {
		__u32 doff;

		if ((void *)(l4 + 20) > data_end)
			return -1;
		doff = (l4[12] >> 4) * 4;
		if (doff < 20 || doff > l4_len)
			return -1;
		// Opening and closing are the worker's: it tracks the state.
		if ((l4[13] & (TCP_SYN | TCP_FIN | TCP_RST)) || !(l4[13] & TCP_ACK))
			return -1;
		field = (__u16 *)(l4 + 16);
	} else {
		__u32 ulen;

		if ((void *)(l4 + 8) > data_end)
			return -1;
		ulen = bpf_ntohs(*(__be16 *)(l4 + 4));
		if (ulen < 8 || ulen > l4_len)
			return -1;
		l4_len = ulen;
		field = (__u16 *)(l4 + 6);
	}
	port = bpf_map_lookup_elem(&ports, &egress);
	if (!port || !port->ifindex || tot_len > port->mtu)
		return -1;
	if (!port->xmit) {
		count(STAT_FAST_NO_EGRESS);
		return -1;
	}

	csum = *field;
	src = *(__u32 *)(h + 12);
	dst = *(__u32 *)(h + 16);
	s = addr_sum(src) + addr_sum(dst) + bpf_htons(h[9]) + bpf_htons(l4_len);
	partial = csum == fold(s) && !(h[9] == IPPROTO_UDP && csum == 0);
	if (partial) {
		body = l4_sum(ctx, (__u32)((void *)l4 - data), l4_len);
		if (body == SUM_FAILED)
			return -1;
		// The sum included the field and the old ports: adding their
		// complements takes them out.
		s = body + (__u16)~csum + (__u16)~*(__u16 *)l4 + f->sport +
		    (__u16)~*(__u16 *)(l4 + 2) + f->dport + addr_sum(f->src) + addr_sum(f->dst) +
		    bpf_htons(h[9]) + bpf_htons(l4_len);
		c = ~fold(s);
	} else if (h[9] == IPPROTO_UDP && csum == 0) {
		c = 0;
	} else {
		c = ~fold((__u64)(__u16)~csum + f->l4_delta);
	}
	if (h[9] == IPPROTO_UDP && c == 0 && csum != 0)
		c = 0xffff;

	// From here on the packet is changed and forwarded.
	__builtin_memcpy(data, f->dst_mac, 6);
	__builtin_memcpy(data + 6, f->src_mac, 6);
	ttl_old = *(__u16 *)(h + 8);
	h[8] -= 1;
	ttl_new = *(__u16 *)(h + 8);
	s = (__u64)(__u16)~*(__u16 *)(h + 10) + (__u16)~ttl_old + ttl_new + f->ip_delta;
	*(__u16 *)(h + 10) = ~fold(s);
	*(__u32 *)(h + 12) = f->src;
	*(__u32 *)(h + 16) = f->dst;
	*(__u16 *)l4 = f->sport;
	*(__u16 *)(l4 + 2) = f->dport;
	*field = c;

	// Traffic is counted per CPU and backend, not per flow: a flow's
	// counters would be shared by every CPU its packets arrive on.
	WRITE_ONCE(live->last_seen_ns, bpf_ktime_get_coarse_ns());
	backend = f->backend;
	t = bpf_map_lookup_elem(&backend_traffic, &backend);
	if (t) {
		t->packets += 1;
		t->bytes += data_end - data;
	}
	count(STAT_FAST_FORWARDED);
	if (port->ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	ret = bpf_redirect_map(&tx_ports, egress, 0);
	if (ret != XDP_REDIRECT)
		count(STAT_FAST_ABORTED);
	return ret;
}

#define IPV6_HEADER 40
#define PROTO_ICMPV6 58
#define ICMPV6_NEIGHBOR_SOLICIT 135

// Whether the IPv6 packet at `ip` (fixed header checked to be in the frame)
// is the dataplane's: to an owned address, a Neighbor Solicitation for one,
// a packet of a workers' connection by its key, or an ICMPv6 error (types 1
// to 4) quoting one. Only a transport header right after the fixed header
// is looked at: anything behind extension headers is a VIP's by its
// destination or the kernel's.
static __always_inline int ipv6_ours(void *ip, void *data_end)
{
	__u8 *h = ip, *l4 = ip + IPV6_HEADER, *q;
	struct flow_key6 k = {};
	struct addr6 a;

	__builtin_memcpy(&a, h + 24, sizeof(a));
	if (bpf_map_lookup_elem(&vips6, &a))
		return 1;
	if (h[6] == PROTO_ICMPV6) {
		if ((void *)(l4 + 24) > data_end)
			return 0;
		if (l4[0] == ICMPV6_NEIGHBOR_SOLICIT) {
			__builtin_memcpy(&a, l4 + 8, sizeof(a));
			return bpf_map_lookup_elem(&vips6, &a) != 0;
		}
		if (l4[0] < 1 || l4[0] > 4)
			return 0;
		// The quoted packet went towards the backend: its key reversed
		// is the reply key.
		q = l4 + 8;
		if ((void *)(q + IPV6_HEADER + 4) > data_end)
			return 0;
		if (q[6] != IPPROTO_TCP && q[6] != IPPROTO_UDP)
			return 0;
		__builtin_memcpy(&k.src, q + 24, 16);
		__builtin_memcpy(&k.dst, q + 8, 16);
		__builtin_memcpy(&k.sport, q + IPV6_HEADER + 2, 2);
		__builtin_memcpy(&k.dport, q + IPV6_HEADER, 2);
		k.proto = q[6];
		return bpf_map_lookup_elem(&flows6, &k) != 0;
	}
	if (h[6] != IPPROTO_TCP && h[6] != IPPROTO_UDP)
		return 0;
	if ((void *)(l4 + 4) > data_end)
		return 0;
	__builtin_memcpy(&k.src, h + 8, 16);
	__builtin_memcpy(&k.dst, h + 24, 16);
	__builtin_memcpy(&k.sport, l4, 2);
	__builtin_memcpy(&k.dport, l4 + 2, 2);
	k.proto = h[6];
	return bpf_map_lookup_elem(&flows6, &k) != 0;
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
	struct flow_key key = {};
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
		// A SYN opening a connection to a VIP is the workers' whatever the
		// flow map holds (the fast path forwards no SYN): admission comes
		// first, and a flood's random sources cost no flow map lookup.
		if (is_syn(cur, data_end) && bpf_map_lookup_elem(&vips, &addr)) {
			if (!syn_admitted(ctx)) {
				count(STAT_DROP_SYN_LIMIT);
				return XDP_DROP;
			}
			return redirect(ctx, STAT_PASS_IPV4);
		}
		if (flow_key_of(cur, data_end, &key)) {
			struct flow_slot f, *live = 0;
			int found = flow_find(&key, &f, &live);

			if (found == FLOW_BUSY)
				return redirect(ctx, STAT_PASS_IPV4);
			if (found == FLOW_HIT) {
				if (f.value.action == FLOW_FORWARD) {
					int ret = fast_forward(ctx, &f.value, live, data, cur, data_end);

					if (ret >= 0)
						return ret;
					count(STAT_FAST_TO_WORKER);
				}
				return redirect(ctx, STAT_PASS_IPV4);
			}
		}
		if (bpf_map_lookup_elem(&vips, &addr))
			return redirect(ctx, STAT_PASS_IPV4);
		if (quotes_flow(cur, data_end))
			return redirect(ctx, STAT_PASS_IPV4);
		count(STAT_PASS_IPV4);
		return XDP_PASS;
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		if (cur + IPV6_HEADER > data_end) {
			count(STAT_PASS_TRUNCATED);
			return XDP_PASS;
		}
		if (ipv6_ours(cur, data_end))
			return redirect(ctx, STAT_PASS_IPV6);
		count(STAT_PASS_IPV6);
		return XDP_PASS;
	}

	count(STAT_PASS_OTHER_ETHERTYPE);
	return XDP_PASS;
}

// The port `vipd_probe` sends to.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} probe_port SEC(".maps");

// Sends the frame out of the port in `probe_port` the way the fast path
// does. The engine runs it on a live frame (BPF_PROG_TEST_RUN) to learn
// whether frames can leave a port from XDP before it offloads connections
// whose packets would leave there.
SEC("xdp")
int vipd_probe(struct xdp_md *ctx)
{
	__u32 zero = 0, *port = bpf_map_lookup_elem(&probe_port, &zero);

	if (!port)
		return XDP_ABORTED;
	return bpf_redirect_map(&tx_ports, *port, 0);
}

char _license[] SEC("license") = "Dual MIT/GPL";
