/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Backend choice and the destination-port rewrite. */
#ifndef PORTMUX_BALANCER_H
#define PORTMUX_BALANCER_H

#include "csum.h"
#include "maps.h"
#include "parsing.h"

/* The next backend of a frontend in round-robin order on this CPU. */
static __always_inline int pick_round_robin(const struct portmux_backend_set *set,
					    __be16 *backend)
{
	__u32 slot = set->cursor_slot;
	__u32 *cursor, idx;

	cursor = bpf_map_lookup_elem(&rr_cursors, &slot);
	if (!cursor || set->count == 0)
		return -1;

	idx = *cursor;
	/* A reload may have shrunk the set under an old cursor. */
	if (idx >= set->count || idx >= PORTMUX_MAX_BACKENDS)
		idx = 0;
	*backend = set->ports[idx];
	*cursor = idx + 1 < set->count ? idx + 1 : 0;
	return 0;
}

static __always_inline void udp_rewrite_dport(struct udphdr *udp, __be16 port)
{
	udp->check = udp_csum_replace16(udp->check, udp->dest, port);
	udp->dest = port;
}

/* Balances one UDP datagram; returns the XDP action. */
static __always_inline int balance_udp(struct l4_packet *pkt)
{
	struct udphdr *udp = pkt->l4;
	struct portmux_frontend_key key = {
		.port = udp->dest,
		.protocol = PORTMUX_PROTO_UDP,
	};
	struct portmux_backend_set *set;
	__be16 backend;

	set = bpf_map_lookup_elem(&frontends, &key);
	if (!set)
		return XDP_PASS;
	if (pick_round_robin(set, &backend) < 0)
		return XDP_PASS;
	udp_rewrite_dport(udp, backend);
	return XDP_PASS;
}

#endif /* PORTMUX_BALANCER_H */
