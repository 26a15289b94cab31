// SPDX-License-Identifier: (MIT OR Apache-2.0)
//
// vipbench ceiling: native XDP redirect of everything from the DUT's
// ingress interface to its egress interface through a devmap. No parsing,
// no rewriting: the fastest forwarding this machine can do.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} egress SEC(".maps");

SEC("xdp")
int vipbench_ceiling(struct xdp_md *ctx)
{
	return bpf_redirect_map(&egress, 0, XDP_DROP);
}

char _license[] SEC("license") = "Dual MIT/GPL";
