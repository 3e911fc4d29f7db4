/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Reply translation at TC egress: a packet leaving a backend port gets the
 * frontend port back as its source, so the client sees the port it dialled.
 * Which frontend port is the backend port's `ports` entry's; no per-client
 * state, except for the clients that talk to the backend port directly
 * (`direct_clients`), whose replies leave unchanged. This runs where XDP
 * cannot (egress) and where the skb says whether the checksum is partial,
 * so the fix-up goes through bpf_l4_csum_replace, which handles both cases.
 */
#ifndef PORTMUX_REPLY_H
#define PORTMUX_REPLY_H

#include <linux/pkt_cls.h>

#include "flow.h"
#include "icmp.h"
#include "maps.h"
#include "parsing.h"
#include "tcp_affinity.h"

/*
 * Every packet goes on to whatever else is attached at egress: on tcx,
 * TC_ACT_OK would end the chain and skip the clsact filters of other
 * programs on the interface; TC_ACT_UNSPEC (tcx's "next") passes the packet
 * when nothing follows, on tcx and clsact alike.
 */
#define REPLY_CONTINUE TC_ACT_UNSPEC

/* Enough for Ethernet, two VLAN tags, IPv6 with extension headers and TCP. */
#define REPLY_PULL_BYTES 192

static __always_inline int parse_skb(struct __sk_buff *skb, struct l4_packet *pkt)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	return parse_l4(data, data_end, pkt);
}

static __always_inline int translate_reply(struct __sk_buff *skb)
{
	struct portmux_flow_key key = {};
	struct portmux_port *port;
	struct l4_packet pkt;
	__u32 port_offset, csum_offset, csum_flags;
	__be16 backend, frontend;

	/* Not from a backend port (most of what leaves): one array lookup. */
	if (surely_not_ours((void *)(long)skb->data, (void *)(long)skb->data_end, PORTS_BY_SOURCE))
		return REPLY_CONTINUE;
	/* Fresh packet pointers below: the check above leaves a bounds range that
	 * differs with each way out of it, and the verifier would walk the rest
	 * once per range. */
	asm volatile("" ::: "memory");
	if (parse_skb(skb, &pkt) < 0) {
		/* Headers may sit beyond the linear area; pull them in once. */
		__u32 pull = skb->len < REPLY_PULL_BYTES ? skb->len : REPLY_PULL_BYTES;

		if (bpf_skb_pull_data(skb, pull) < 0 || parse_skb(skb, &pkt) < 0) {
			/* Not UDP or TCP: maybe an error about a balanced datagram. */
			translate_icmp_error_outbound(skb);
			return REPLY_CONTINUE;
		}
	}
	backend = l4_ports(&pkt)->source;
	port = port_entry(pkt.l4_proto, backend);
	if (!port)
		return REPLY_CONTINUE;
	frontend = reply_port_of(port);
	if (!frontend)
		return REPLY_CONTINUE;
	reply_key_for_reply(&key, &pkt);
	if (is_direct_client(&key))
		return REPLY_CONTINUE;
	if (pkt.l4_proto == IPPROTO_TCP) {
		struct tcphdr *tcp = pkt.l4;

		if (tcp->syn && tcp->ack)
			retire_stale_flow(&key, frontend, backend);
	}
	port_offset = pkt.l4 - (void *)(long)skb->data;
	if (pkt.l4_proto == IPPROTO_UDP) {
		csum_offset = port_offset + offsetof(struct udphdr, check);
		csum_flags = BPF_F_MARK_MANGLED_0;
	} else {
		csum_offset = port_offset + offsetof(struct tcphdr, check);
		csum_flags = 0;
	}
	if (bpf_l4_csum_replace(skb, csum_offset, backend, frontend,
				csum_flags | sizeof(__be16)) < 0)
		return REPLY_CONTINUE;
	bpf_skb_store_bytes(skb, port_offset + offsetof(struct udphdr, source),
			    &frontend, sizeof(frontend), 0);
	return REPLY_CONTINUE;
}

#endif /* PORTMUX_REPLY_H */
