/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * portmux data path. The XDP program rewrites the destination port of
 * packets addressed to a frontend so the kernel delivers them to a
 * backend socket; every other frame passes byte for byte unchanged. The
 * TC egress program gives replies the frontend port back. ICMP errors about
 * balanced datagrams get their quoted port translated both ways (icmp.h).
 */
#include "balancer.h"
#include "reply.h"

/*
 * Built twice (xdp/CMakeLists.txt): the default object for kernels from 5.15,
 * and with PORTMUX_FRAGS a frags-aware one for frames larger than a page
 * (jumbo MTU), which reads payload bytes with bpf_xdp_load_bytes (5.18).
 */
#ifdef PORTMUX_FRAGS
SEC("xdp.frags")
#else
SEC("xdp")
#endif
int portmux_xdp(struct xdp_md *ctx)
{
	return balance_frame(ctx);
}

SEC("tc")
int portmux_tc_egress(struct __sk_buff *skb)
{
	return translate_reply(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
