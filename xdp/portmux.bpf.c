/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * portmux XDP entry point: rewrites the destination port of datagrams
 * addressed to a frontend so the kernel delivers them to a backend
 * socket. Every other frame passes byte for byte unchanged.
 */
#include "balancer.h"

SEC("xdp")
int portmux_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct l4_packet pkt;

	if (parse_l4(data, data_end, &pkt) < 0)
		return XDP_PASS;
	if (pkt.l4_proto == IPPROTO_UDP)
		return balance_udp(&pkt);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
