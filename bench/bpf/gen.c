// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// vipbench generator. Run through BPF_PROG_TEST_RUN with
// BPF_F_TEST_XDP_LIVE_FRAMES: every run of the program turns the frame
// template into one packet of the next flow and sends it out of the
// generator's interface (XDP_TX).
//
// Every field the program depends on is written absolutely (never derived
// from the frame's current contents), because the kernel recycles frame pages
// and a page may come back modified by a receiver: addresses, ports, TTL,
// the timestamp area and both checksums.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define STAMP_MAGIC 0x56425453 // "VBTS"
#define L4_OFF (ETH_HLEN + 20)
#define PAYLOAD_OFF (L4_OFF + 8)
#define L4_OFF6 (ETH_HLEN + 40)
#define PAYLOAD_OFF6 (L4_OFF6 + 8)
// Frames a paced run may send late, back to back, to keep its rate.
#define CATCH_UP_FRAMES 32

// Mirrored by `GenConfig` in src/bpf.rs.
struct gen_cfg {
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__u32 src_base;     // first source address (host order)
	__u32 flows;        // flows cycled through, >= 1
	__u32 ports_per_ip; // source ports per source address, >= 1
	__u32 port_base;    // first source port
	__u32 est_base;     // first source address of established flows
	__u32 est_flows;    // established flows; 0: no mix
	__u32 est_every;    // every est_every-th packet is established
	__u32 stamp;        // write a timestamp into the UDP payload
	__u16 tmpl_flags;   // TCP data-offset/flags word of the template (network order)
	__u16 tmpl_csum;    // TCP checksum of the template (network order)
	__u64 interval_ns;  // pacing: at most one frame per interval; 0: unpaced
	// The template's destination and TTL: a forwarding DUT that works on
	// the frame's own page (the kernel's NAT, a TTL decrement) changes
	// them in the page that comes back.
	__u32 dst_ip;       // host order
	__u16 dst_port;
	__u8 ttl;
	__u8 pad;
};

// The addresses of vipbench_gen6, which takes everything else from
// `struct gen_cfg` (src_base: the source's last 32 bits). Mirrored by
// `Gen6Addrs` in src/bpf.rs.
struct gen6_cfg {
	__u8 src_prefix[12]; // first 96 bits of every source address
	__u8 dst[16];
};

enum gen_stat {
	GEN_SENT = 0,
	GEN_SENT_EST,
	GEN_BAD_TEMPLATE,
	GEN_STAT_COUNT,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_cfg);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen6_cfg);
} cfg6 SEC(".maps");

// When the next paced frame is due (per CPU, ktime ns).
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pace SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GEN_STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void bump(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (v)
		*v += 1;
}

static __always_inline __u16 fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

// Pacing happens here, frame by frame, because every test-run call has a
// large fixed cost: calls are long, and frames not yet due are dropped
// (recycled) without being counted or sent. Returns XDP_TX when the frame
// is due.
static __always_inline int paced(struct gen_cfg *c)
{
	__u32 zero = 0;
	__u64 *next, now;

	if (!c->interval_ns)
		return XDP_TX;
	next = bpf_map_lookup_elem(&pace, &zero);
	now = bpf_ktime_get_ns();
	if (!next)
		return XDP_ABORTED;
	if (now < *next)
		return XDP_DROP;
	// More than CATCH_UP_FRAMES behind (a new run, or preempted): restart
	// the schedule rather than catch up with a burst. A millisecond's
	// worth at 2 Mpps would be 2000 frames back to back, far more than the
	// DUT's 256-frame veth ring holds: the burst, not the DUT, would decide
	// the loss-free rate.
	*next = (now - *next > CATCH_UP_FRAMES * c->interval_ns ? now : *next) + c->interval_ns;
	return XDP_TX;
}

// Writes the timestamp area at `off` (zeros when not stamping: a recycled
// page may hold an earlier run's stamp, which the checksum must not miss)
// and returns its sum.
static __always_inline __u32 stamp_at(void *data, void *data_end, __u32 off, struct gen_cfg *c)
{
	__u32 magic = c->stamp ? bpf_htonl(STAMP_MAGIC) : 0, sum = 0;
	__u64 now = c->stamp ? bpf_ktime_get_ns() : 0;
	__u16 *stamp = data + off;
	int i;

	if (data + off + 12 > data_end)
		return 0;
	__builtin_memcpy(data + off, &magic, 4);
	__builtin_memcpy(data + off + 4, &now, 8);
#pragma unroll
	for (i = 0; i < 6; i++)
		sum += stamp[i];
	return sum;
}

SEC("xdp")
int vipbench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 zero = 0, sum = 0, addr, idx;
	__u16 *words = (__u16 *)ip;
	__u8 *l4 = data + L4_OFF;
	struct gen_cfg *c;
	__u64 *seq, n;
	__u16 port;
	int est = 0, due, i;

	c = bpf_map_lookup_elem(&cfg, &zero);
	seq = bpf_map_lookup_elem(&stats, &zero);
	if (!c || !seq || c->flows == 0 || c->ports_per_ip == 0)
		return XDP_ABORTED;
	if (data + L4_OFF + 20 > data_end) {
		bump(GEN_BAD_TEMPLATE);
		return XDP_DROP;
	}
	due = paced(c);
	if (due != XDP_TX)
		return due;
	// The per-CPU sent counter doubles as the sequence number.
	n = *seq;
	if (c->est_flows && c->est_every && n % c->est_every == 0) {
		est = 1;
		idx = (__u32)((n / c->est_every) % c->est_flows);
		addr = c->est_base;
	} else {
		idx = (__u32)(n % c->flows);
		addr = c->src_base;
	}
	addr += idx / c->ports_per_ip;
	port = (__u16)(c->port_base + idx % c->ports_per_ip);

	__builtin_memcpy(eth->h_dest, c->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, c->src_mac, ETH_ALEN);
	ip->saddr = bpf_htonl(addr);
	ip->daddr = bpf_htonl(c->dst_ip);
	ip->ttl = c->ttl;
	ip->check = 0;
#pragma unroll
	for (i = 0; i < 10; i++)
		sum += words[i];
	ip->check = ~fold(sum);

	if (ip->protocol == IPPROTO_TCP) {
		__u16 *w = (__u16 *)l4;
		__u16 flags = c->tmpl_flags;

		// The template's source address and port are zero, so the
		// checksum only gains the new values (RFC 1624).
		sum = (__u16)~c->tmpl_csum;
		sum += (bpf_htonl(addr) >> 16) + (bpf_htonl(addr) & 0xffff);
		sum += bpf_htons(port);
		if (est) {
			// Data offset 5, flags: ACK instead of the template's.
			flags = bpf_htons(0x5010);
			sum += (__u16)~c->tmpl_flags;
			sum += flags;
		}
		w[0] = bpf_htons(port);
		w[1] = bpf_htons(c->dst_port);
		w[6] = flags;
		w[8] = ~fold(sum);
	} else {
		__u16 *w = (__u16 *)l4;
		__u16 csum;

		// As for TCP: the template's checksum covers a zero source
		// address, port and timestamp, so only the new values are added.
		sum = (__u16)~c->tmpl_csum;
		sum += (bpf_htonl(addr) >> 16) + (bpf_htonl(addr) & 0xffff);
		sum += bpf_htons(port);
		w[0] = bpf_htons(port);
		w[1] = bpf_htons(c->dst_port);
		sum += stamp_at(data, data_end, PAYLOAD_OFF, c);
		csum = ~fold(sum);
		w[3] = csum ? csum : 0xffff; // zero would mean "no checksum"
	}

	*seq = n + 1;
	if (est)
		bump(GEN_SENT_EST);
	return XDP_TX;
}

// IPv6 UDP: a second program, so the IPv4 one pays nothing for it. Flows
// vary the source address's last 32 bits and the source port as in IPv4;
// frames too short for the timestamp (under 74 bytes) go without it.
SEC("xdp")
int vipbench_gen6(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	__u16 *w = data + L4_OFF6, port, len, csum;
	__u32 zero = 0, sum, addr, idx;
	struct gen6_cfg *a;
	struct gen_cfg *c;
	__u64 *seq, n;
	int due;

	c = bpf_map_lookup_elem(&cfg, &zero);
	a = bpf_map_lookup_elem(&cfg6, &zero);
	seq = bpf_map_lookup_elem(&stats, &zero);
	if (!c || !a || !seq || c->flows == 0 || c->ports_per_ip == 0)
		return XDP_ABORTED;
	if (data + PAYLOAD_OFF6 > data_end) {
		bump(GEN_BAD_TEMPLATE);
		return XDP_DROP;
	}
	due = paced(c);
	if (due != XDP_TX)
		return due;
	n = *seq;
	idx = (__u32)(n % c->flows);
	addr = bpf_htonl(c->src_base + idx / c->ports_per_ip);
	port = bpf_htons((__u16)(c->port_base + idx % c->ports_per_ip));
	len = bpf_htons((__u16)(data_end - data - L4_OFF6));

	__builtin_memcpy(eth->h_dest, c->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, c->src_mac, ETH_ALEN);
	*(__u32 *)ip6 = bpf_htonl(6 << 28); // version 6, class and flow label 0
	ip6->payload_len = len;
	ip6->nexthdr = IPPROTO_UDP;
	ip6->hop_limit = c->ttl;
	__builtin_memcpy(&ip6->saddr, a->src_prefix, 12);
	__builtin_memcpy((__u8 *)&ip6->saddr + 12, &addr, 4);
	__builtin_memcpy(&ip6->daddr, a->dst, 16);

	// The template's checksum covers the source prefix (added when the
	// generator is configured) and a zero rest of the source address, port
	// and timestamp (IPv6 has no header checksum): only those are added.
	sum = (__u16)~c->tmpl_csum;
	sum += (addr >> 16) + (addr & 0xffff) + port;
	w[0] = port;
	w[1] = bpf_htons(c->dst_port);
	w[2] = len;
	sum += stamp_at(data, data_end, PAYLOAD_OFF6, c);
	csum = ~fold(sum);
	w[3] = csum ? csum : 0xffff; // zero is not allowed over IPv6

	*seq = n + 1;
	return XDP_TX;
}

char _license[] SEC("license") = "Dual MIT/GPL";
