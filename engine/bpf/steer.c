// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// vipd XDP program: the fast path of established connections and the
// steering of everything else.
//
// Packets of a connection a worker has offloaded (an entry in `flows`, or
// `flows6` for IPv6, whose action is FLOW_FORWARD) are rewritten here with
// the rewrite the worker decided and sent on at once: XDP_TX on the
// interface they came in on, the `tx_ports` devmap to another. Anything the
// worker must see -- TCP SYN/FIN/RST, IP options or IPv6 extension
// headers, a TTL or hop limit about to expire, a frame over the egress MTU,
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
// dataplane.
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
// opened anyway. `Slot4` in engine/src/flow_table.rs (with `FlowValue` in
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

// The hash of a key, over its `n` 32-bit words as they sit in memory;
// `hash` in engine/src/flow_table.rs is the same function.
static __always_inline __u32 flow_hash(const __u32 *w, const int n)
{
	__u32 h = flow_seed;
	int i;

#pragma unroll
	for (i = 0; i < n; i++)
		h = flow_mix(h, w[i]);
	h ^= h >> 13;
	h *= 0x85ebca6b;
	return h ^ (h >> 16);
}

enum { FLOW_MISS = 0, FLOW_HIT, FLOW_BUSY };

// Defines `name`, the lookup of a key in `map` (slots `slot_t` holding
// `key_t` and `value_t`, `mask` the slot count less one): FLOW_HIT with a
// consistent copy of the slot's value in `copy` and the slot itself in
// `live`; FLOW_BUSY when a slot of the window is being written or changed
// under the read (the worker, the authority, takes the packet); FLOW_MISS
// when no slot holds the key. One definition for both families' tables,
// which differ only in their types.
#define DEFINE_FLOW_FIND(name, map, slot_t, key_t, value_t, mask)                     \
	static __always_inline int name(const key_t *k, value_t *copy, slot_t **live) \
	{                                                                             \
		const int words = sizeof(key_t) / 4;                                  \
		const __u32 *kw = (const __u32 *)k;                                   \
		__u32 h = flow_hash(kw, words);                                       \
		int i, j;                                                             \
                                                                                      \
		_Pragma("unroll") for (i = 0; i < FLOW_WINDOW; i++)                   \
		{                                                                     \
			__u32 idx = (h + i) & (mask);                                 \
			slot_t *s = bpf_map_lookup_elem(&(map), &idx);                \
			const __u32 *sw;                                              \
			__u32 seq, differ = 0;                                        \
                                                                                      \
			if (!s)                                                       \
				return FLOW_MISS;                                     \
			seq = READ_ONCE(s->seq);                                      \
			if (seq == 0)                                                 \
				return FLOW_MISS;                                     \
			if (seq & 1)                                                  \
				return FLOW_BUSY;                                     \
			barrier();                                                    \
			sw = (const __u32 *)&s->key;                                  \
			_Pragma("unroll") for (j = 0; j < words; j++)                 \
				differ |= READ_ONCE(sw[j]) ^ kw[j];                   \
			if (differ)                                                   \
				continue;                                             \
			__builtin_memcpy(copy, &s->value, sizeof(*copy));             \
			barrier();                                                    \
			if (READ_ONCE(s->seq) != seq)                                 \
				return FLOW_BUSY;                                     \
			if (copy->action == FLOW_DELETED)                             \
				continue;                                             \
			*live = s;                                                    \
			return FLOW_HIT;                                              \
		}                                                                     \
		return FLOW_MISS;                                                     \
	}

DEFINE_FLOW_FIND(flow_find, flows, struct flow_slot, struct flow_key, struct flow_action, flow_mask)

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

// What to do with the packets of one IPv6 key: `struct flow_action`
// without the header checksum update (IPv6 has no header checksum).
struct flow_action6 {
	__u8 action;
	__u8 src_mac[6];
	__u8 dst_mac[6];
	__u8 pad;
	__u16 l4_delta;
	struct addr6 src;
	struct addr6 dst;
	__be16 sport;
	__be16 dport;
	__u16 egress;
	__u16 pad2;
	__u32 backend;
};

// One slot of `flows6`: two cache lines, with the sequence lock and rules
// of `struct flow_slot`. `Slot6` in engine/src/flow_table.rs (with
// `FlowValue6` in engine/src/steer.rs for `value`) is the same layout.
struct flow_slot6 {
	__u32 seq;
	struct flow_key6 key;
	struct flow_action6 value;
	__u64 last_seen_ns;
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct flow_slot6) == 128, "an IPv6 slot is two cache lines");
_Static_assert(__builtin_offsetof(struct flow_slot6, key) == 4, "slot6 layout");
_Static_assert(__builtin_offsetof(struct flow_slot6, value) == 44, "slot6 layout");
_Static_assert(__builtin_offsetof(struct flow_slot6, value.l4_delta) == 58, "slot6 layout");
_Static_assert(__builtin_offsetof(struct flow_slot6, value.egress) == 96, "slot6 layout");
_Static_assert(__builtin_offsetof(struct flow_slot6, value.backend) == 100, "slot6 layout");
_Static_assert(__builtin_offsetof(struct flow_slot6, last_seen_ns) == 104, "slot6 layout");

// The workers' IPv6 connection keys, as `flows` holds the IPv4 ones: the
// same table and writer over slots twice the size (a key alone is 40
// bytes), so both families share one design. Sized at load time,
// `flow_mask6` + 1 slots.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, struct flow_slot6);
} flows6 SEC(".maps");

const volatile __u32 flow_mask6 = FLOW_WINDOW - 1;

DEFINE_FLOW_FIND(flow_find6, flows6, struct flow_slot6, struct flow_key6, struct flow_action6,
		 flow_mask6)

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
	struct flow_action copy;
	struct flow_slot *live;
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

// The L4 half of forwarding a packet of an offloaded connection, which
// both families share: checks the TCP or UDP header at `l4` (`*l4_len`
// bytes of IP payload, narrowed to the UDP length), that the `ip_len`-byte
// IP packet fits the egress port's MTU and that XDP can send by it, and
// computes the new L4 checksum as the worker would: updated by the
// precomputed delta, or whole when the sender left it for its NIC to
// finish. `old_addrs` and `new_addrs` are the sums of the pseudo-header's
// addresses before and after the rewrite. Returns -1, with nothing
// changed, when the worker must handle the packet.
static __always_inline int l4_prepare(struct xdp_md *ctx, void *data, void *data_end, __u8 *l4,
				      __u8 proto, __u32 *l4_len, __u32 ip_len, __u64 old_addrs,
				      __u64 new_addrs, __be16 sport, __be16 dport, __u16 l4_delta,
				      __u32 egress, __u16 **field_out, __u16 *c_out,
				      struct port_info **port_out)
{
	struct port_info *port;
	__u16 *field, csum, c;
	__u64 body, s;
	int partial;

	if (proto == IPPROTO_TCP) {
		__u32 doff;

		if ((void *)(l4 + 20) > data_end)
			return -1;
		doff = (l4[12] >> 4) * 4;
		if (doff < 20 || doff > *l4_len)
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
		if (ulen < 8 || ulen > *l4_len)
			return -1;
		*l4_len = ulen;
		field = (__u16 *)(l4 + 6);
	}
	port = bpf_map_lookup_elem(&ports, &egress);
	if (!port || !port->ifindex || ip_len > port->mtu)
		return -1;
	if (!port->xmit) {
		count(STAT_FAST_NO_EGRESS);
		return -1;
	}

	csum = *field;
	s = old_addrs + bpf_htons(proto) + bpf_htons(*l4_len);
	partial = csum == fold(s) && !(proto == IPPROTO_UDP && csum == 0);
	if (partial) {
		body = l4_sum(ctx, (__u32)((void *)l4 - data), *l4_len);
		if (body == SUM_FAILED)
			return -1;
		// The sum included the field and the old ports: adding their
		// complements takes them out.
		s = body + (__u16)~csum + (__u16)~*(__u16 *)l4 + sport + (__u16)~*(__u16 *)(l4 + 2) +
		    dport + new_addrs + bpf_htons(proto) + bpf_htons(*l4_len);
		c = ~fold(s);
	} else if (proto == IPPROTO_UDP && csum == 0) {
		c = 0;
	} else {
		c = ~fold((__u64)(__u16)~csum + l4_delta);
	}
	if (proto == IPPROTO_UDP && c == 0 && csum != 0)
		c = 0xffff;
	*field_out = field;
	*c_out = c;
	*port_out = port;
	return 0;
}

// The end of forwarding, for both families once the IP header is
// rewritten: the ports and checksum, the time of the packet in the slot's
// `last_seen`, the counters, and out by `port` (port index `egress`).
static __always_inline int l4_send(struct xdp_md *ctx, void *data, void *data_end, __u8 *l4,
				   __u16 *field, __u16 c, __be16 sport, __be16 dport,
				   __u64 *last_seen, __u32 backend, struct port_info *port,
				   __u32 egress)
{
	struct traffic *t;
	int ret;

	*(__u16 *)l4 = sport;
	*(__u16 *)(l4 + 2) = dport;
	*field = c;

	// Traffic is counted per CPU and backend, not per flow: a flow's
	// counters would be shared by every CPU its packets arrive on.
	WRITE_ONCE(*last_seen, bpf_ktime_get_coarse_ns());
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

// Forwards an IPv4 packet of an offloaded connection with the worker's
// rewrite, as the worker would: MACs, TTL, addresses, ports, checksums.
// Returns -1, with the packet untouched, when the worker must handle it.
// `f` is the stable copy of the value of the slot `live`, where the time
// of the packet is noted.
static __always_inline int fast_forward(struct xdp_md *ctx, const struct flow_action *f,
					struct flow_slot *live, void *data, void *ip,
					void *data_end)
{
	__u8 *h = ip, *l4 = ip + 20;
	__u16 *field, ttl_old, ttl_new, c;
	__u32 tot_len, l4_len;
	struct port_info *port;
	int i;
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
	if (l4_prepare(ctx, data, data_end, l4, h[9], &l4_len, tot_len,
		       addr_sum(*(__u32 *)(h + 12)) + addr_sum(*(__u32 *)(h + 16)),
		       addr_sum(f->src) + addr_sum(f->dst), f->sport, f->dport, f->l4_delta,
		       f->egress, &field, &c, &port))
		return -1;

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
	return l4_send(ctx, data, data_end, l4, field, c, f->sport, f->dport, &live->last_seen_ns,
		       f->backend, port, f->egress);
}

#define IPV6_HEADER 40
#define PROTO_ICMPV6 58
#define ICMPV6_NEIGHBOR_SOLICIT 135

static __always_inline __u64 addr6_sum(const void *a)
{
	const __u32 *w = a;

	return addr_sum(w[0]) + addr_sum(w[1]) + addr_sum(w[2]) + addr_sum(w[3]);
}

// Forwards an IPv6 packet of an offloaded connection with the worker's
// rewrite, as the worker would: MACs, hop limit, addresses, ports, the
// TCP/UDP checksum (IPv6 has no header checksum). The key lookup found the
// transport header right after the fixed one, so there are no extension
// headers. Returns -1, with the packet untouched, when the worker must
// handle it; `f` and `live` as for `fast_forward`.
static __always_inline int fast_forward6(struct xdp_md *ctx, const struct flow_action6 *f,
					 struct flow_slot6 *live, void *data, void *ip,
					 void *data_end)
{
	__u8 *h = ip, *l4 = ip + IPV6_HEADER;
	struct port_info *port;
	__u32 l4_len;
	__u16 *field, c;

	// A hop limit that ends here: the worker answers.
	if ((h[0] >> 4) != 6 || h[7] <= 1)
		return -1;
	l4_len = bpf_ntohs(*(__be16 *)(h + 4));
	if (ip + IPV6_HEADER + l4_len > data_end)
		return -1;
	if (l4_prepare(ctx, data, data_end, l4, h[6], &l4_len, IPV6_HEADER + l4_len,
		       addr6_sum(h + 8) + addr6_sum(h + 24), addr6_sum(&f->src) + addr6_sum(&f->dst),
		       f->sport, f->dport, f->l4_delta, f->egress, &field, &c, &port))
		return -1;

	// From here on the packet is changed and forwarded.
	__builtin_memcpy(data, f->dst_mac, 6);
	__builtin_memcpy(data + 6, f->src_mac, 6);
	h[7] -= 1;
	__builtin_memcpy(h + 8, &f->src, sizeof(f->src));
	__builtin_memcpy(h + 24, &f->dst, sizeof(f->dst));
	return l4_send(ctx, data, data_end, l4, field, c, f->sport, f->dport, &live->last_seen_ns,
		       f->backend, port, f->egress);
}

// Whether the IPv6 packet at `ip` (fixed header checked to be in the frame,
// not a packet of a workers' connection by its key) is the dataplane's: to
// an owned address, a Neighbor Solicitation for one, or an ICMPv6 error
// (types 1 to 4) quoting a packet of a workers' connection. Anything behind
// extension headers is a VIP's by its destination or the kernel's.
static __always_inline int ipv6_ours(void *ip, void *data_end)
{
	__u8 *h = ip, *l4 = ip + IPV6_HEADER, *q;
	struct flow_key6 k = {};
	struct flow_action6 copy;
	struct flow_slot6 *live;
	struct addr6 a;

	__builtin_memcpy(&a, h + 24, sizeof(a));
	if (bpf_map_lookup_elem(&vips6, &a))
		return 1;
	if (h[6] != PROTO_ICMPV6 || (void *)(l4 + 24) > data_end)
		return 0;
	if (l4[0] == ICMPV6_NEIGHBOR_SOLICIT) {
		__builtin_memcpy(&a, l4 + 8, sizeof(a));
		return bpf_map_lookup_elem(&vips6, &a) != 0;
	}
	if (l4[0] < 1 || l4[0] > 4)
		return 0;
	// The quoted packet went towards the backend: its key reversed is the
	// reply key.
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
	return flow_find6(&k, &copy, &live) != FLOW_MISS;
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

// An IPv6 packet (fixed header checked to be in the frame): forwarded here
// when it belongs to an offloaded connection, else steered. Only a
// transport header right after the fixed header gives a key.
static __always_inline int ipv6_steer(struct xdp_md *ctx, void *data, void *ip, void *data_end)
{
	__u8 *h = ip, *l4 = ip + IPV6_HEADER;
	struct flow_key6 k = {};
	struct flow_action6 f;
	struct flow_slot6 *live = 0;
	struct addr6 dst;
	int found, ret;

	// As for IPv4: a SYN to a VIP meets admission before any flow lookup.
	// One behind extension headers goes to the workers, which judge the
	// chain, without admission.
	__builtin_memcpy(&dst, h + 24, sizeof(dst));
	if (h[6] == IPPROTO_TCP && (void *)(l4 + 14) <= data_end && (l4[13] & 0x12) == 0x02 &&
	    bpf_map_lookup_elem(&vips6, &dst)) {
		if (!syn_admitted(ctx)) {
			count(STAT_DROP_SYN_LIMIT);
			return XDP_DROP;
		}
		return redirect(ctx, STAT_PASS_IPV6);
	}
	if ((h[6] == IPPROTO_TCP || h[6] == IPPROTO_UDP) && (void *)(l4 + 4) <= data_end) {
		__builtin_memcpy(&k.src, h + 8, 16);
		__builtin_memcpy(&k.dst, h + 24, 16);
		__builtin_memcpy(&k.sport, l4, 2);
		__builtin_memcpy(&k.dport, l4 + 2, 2);
		k.proto = h[6];
		found = flow_find6(&k, &f, &live);
		if (found == FLOW_BUSY)
			return redirect(ctx, STAT_PASS_IPV6);
		if (found == FLOW_HIT) {
			if (f.action == FLOW_FORWARD) {
				ret = fast_forward6(ctx, &f, live, data, ip, data_end);
				if (ret >= 0)
					return ret;
				count(STAT_FAST_TO_WORKER);
			}
			return redirect(ctx, STAT_PASS_IPV6);
		}
	}
	if (ipv6_ours(ip, data_end))
		return redirect(ctx, STAT_PASS_IPV6);
	count(STAT_PASS_IPV6);
	return XDP_PASS;
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
			struct flow_action f;
			struct flow_slot *live = 0;
			int found = flow_find(&key, &f, &live);

			if (found == FLOW_BUSY)
				return redirect(ctx, STAT_PASS_IPV4);
			if (found == FLOW_HIT) {
				if (f.action == FLOW_FORWARD) {
					int ret = fast_forward(ctx, &f, live, data, cur, data_end);

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
		return ipv6_steer(ctx, data, cur, data_end);
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
