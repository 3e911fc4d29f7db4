/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Reference programs the benchmarks compare portmux against:
 *
 *   bench_pass  - returns XDP_PASS and touches nothing: the floor, i.e. the
 *                 cost of entering and leaving an XDP program.
 *   bench_drop  - returns XDP_DROP: the other trivial verdict.
 *   bench_tc_pass - a TC program that returns TC_ACT_UNSPEC and touches
 *                 nothing: the floor of a TC egress program (issue 12
 *                 compares portmux_tc_egress on a packet that is not a
 *                 reply with it).
 *   bench_demo  - the algorithm of the published Rust/aya "UDP load
 *                 balancer" demo, re-implemented in C: parse Ethernet, IPv4
 *                 (fixed 20-byte header) and UDP, look the destination port
 *                 up in a hash map of {ports[4], index}, write ports[index]
 *                 as the new destination port WITHOUT fixing the checksum,
 *                 and write the whole entry back with index + 1 (wrapping
 *                 at the end of the array or at a zero port) with a hash
 *                 map update on every packet. The demo's per-packet
 *                 aya-log calls are left out, which only makes it cheaper.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define DEMO_PORTS 4

/* Same layout as the demo's BackendPorts: [u16; 4] then a usize. */
struct demo_backends {
	__u16 ports[DEMO_PORTS]; /* host byte order, as the demo keeps them */
	__u64 index;
};

/* The demo: HashMap<u16, BackendPorts>, preallocated, keyed by the port in host order. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u16);
	__type(value, struct demo_backends);
} demo_backend_ports SEC(".maps");

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int bench_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("tc")
int bench_tc_pass(struct __sk_buff *skb)
{
	return TC_ACT_UNSPEC;
}

SEC("xdp")
int bench_demo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = data + sizeof(*eth) + sizeof(*ip);
	struct demo_backends *backends, next;
	__u16 port;

	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if ((void *)(udp + 1) > data_end)
		return XDP_PASS;

	port = bpf_ntohs(udp->dest);
	backends = bpf_map_lookup_elem(&demo_backend_ports, &port);
	if (!backends)
		return XDP_PASS;
	if (backends->index > DEMO_PORTS - 1)
		return XDP_ABORTED;
	udp->dest = bpf_htons(backends->ports[backends->index]);

	__builtin_memcpy(next.ports, backends->ports, sizeof(next.ports));
	next.index = backends->index + 1;
	if (next.index > DEMO_PORTS - 1 || next.ports[next.index & (DEMO_PORTS - 1)] == 0)
		next.index = 0;
	if (bpf_map_update_elem(&demo_backend_ports, &port, &next, BPF_ANY) != 0)
		return XDP_ABORTED;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
