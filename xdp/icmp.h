/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ICMP and ICMPv6 errors about balanced flows: destination or port
 * unreachable, fragmentation needed / packet too big, time exceeded.
 *
 * An error quotes the IP header and the first bytes of the transport header
 * of the datagram it is about. The kernel matches it to a socket by the
 * quoted ports, so the quoted port portmux rewrote must be rewritten back:
 *
 *  outbound (TC egress): this host reports a datagram the XDP program sent
 *    to a backend (a port unreachable when the backend has no socket). The
 *    quote shows client -> backend port; the client's socket was connected
 *    to the frontend port, so the quote leaves with the frontend port and
 *    a connected client sees ECONNREFUSED.
 *  inbound (XDP): the network reports a reply TC egress gave the frontend
 *    port (a router's fragmentation needed / packet too big). The quote
 *    shows frontend port -> client; it reaches the backend's socket with the
 *    backend port, so the backend's path-MTU discovery works.
 *
 * With the quoted port the quoted transport checksum is updated the same
 * incremental way the data path updated it (so the quote is again exactly
 * the datagram as it was sent or received on the other side of portmux),
 * and the ICMP checksum follows both changes. The ICMPv6 checksum covers a
 * pseudo-header too, but of the outer addresses and length, which stay.
 * Which backend an inbound error is for: see docs/design.md.
 */
#ifndef PORTMUX_ICMP_H
#define PORTMUX_ICMP_H

#include "csum.h"
#include "flow.h"
#include "maps.h"
#include "parsing.h"
#include "tcp_affinity.h"
#include "verifier.h"

/*
 * The error types handled. Spelled out here: <linux/icmp.h> pulls in libc
 * headers a BPF object cannot include.
 */
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3

/* ICMP and ICMPv6 errors share this header: type, code, checksum, then a
 * word that is unused or holds the next-hop MTU. */
struct icmp_error_hdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__be32 rest;
};

/* Transport bytes an error quotes at least (RFC 792, RFC 4443 quote more):
 * both ports, and for UDP its checksum. */
#define ICMP_QUOTED_L4_MIN 8
#define ICMP_QUOTED_UDP_CHECK 6
#define ICMP_QUOTED_TCP_CHECK 16
/* Enough of an error skb for Ethernet, two VLAN tags, the outer and the
 * quoted IPv6 headers with extension headers, and a quoted TCP header. */
#define ICMP_PULL_BYTES 320

/* An ICMP error and the datagram it quotes, located in one frame. */
struct icmp_error {
	__u16 *icmp_check;        /* the ICMP or ICMPv6 checksum */
	struct l4_packet quoted;  /* l4_len unset: a quote is cut short */
	__u32 quoted_check_offset; /* from quoted.l4; 0: checksum not quoted */
};

static __always_inline bool icmp_type_is_error(bool v6, __u8 type)
{
	if (v6)
		return type == ICMPV6_DEST_UNREACH || type == ICMPV6_PKT_TOOBIG ||
		       type == ICMPV6_TIME_EXCEED;
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED;
}

/*
 * Locating an error takes two stages: stage one walks the outer headers to
 * the quote, stage two walks the quote from the offset stage one returned.
 * In XDP each is a global function, verified once on its own (below): as one
 * inlined function the verifier walked every outer header chain times every
 * quoted one, for every way parse_l4() can fail, and gave up at a million
 * instructions.
 */
#define ICMP_QUOTE_V6 0x10000       /* stage one's result: the error is ICMPv6 */
#define ICMP_QUOTE_OFFSET_MASK 0x3ff /* and where the quote starts, from the frame start */

/* Stage one: the quote's frame offset, with ICMP_QUOTE_V6; -1 for anything but an error. */
static __always_inline int locate_icmp_quote(void *data, void *data_end)
{
	struct hdr_cursor nh = { .pos = data };
	struct icmp_error_hdr *icmp;
	int l3_proto;
	bool v6;

	l3_proto = parse_ethhdr(&nh, data_end);
	if (l3_proto == ETH_P_IP) {
		v6 = false;
		if (parse_ipv4hdr(&nh, data_end) != IPPROTO_ICMP)
			return -1;
	} else if (l3_proto == ETH_P_IPV6) {
		v6 = true;
		if (parse_ipv6hdr(&nh, data_end) != IPPROTO_ICMPV6)
			return -1;
	} else {
		return -1;
	}
	icmp = nh.pos;
	if ((void *)(icmp + 1) > data_end)
		return -1;
	if (!icmp_type_is_error(v6, icmp->type))
		return -1;
	if ((void *)(icmp + 1) - data > ICMP_QUOTE_OFFSET_MASK)
		return -1; /* past any header chain a real error has */
	return ((void *)(icmp + 1) - data) | (v6 ? ICMP_QUOTE_V6 : 0);
}

/* Stage two: the error stage one located; -1 unless it quotes UDP or TCP ports. */
static __always_inline int parse_icmp_quote(void *data, void *data_end, __u32 located,
					    struct icmp_error *err)
{
	__u32 offset = located & ICMP_QUOTE_OFFSET_MASK;
	struct hdr_cursor nh;
	struct icmp_error_hdr *icmp;
	int proto;

	if (offset < sizeof(*icmp))
		return -1;
	icmp = data + verifier_bound(offset - sizeof(*icmp), ICMP_QUOTE_OFFSET_MASK);
	if ((void *)(icmp + 1) > data_end)
		return -1;
	err->icmp_check = &icmp->checksum;
	nh.pos = icmp + 1;

	err->quoted.ip4 = NULL;
	err->quoted.ip6 = NULL;
	if (located & ICMP_QUOTE_V6) {
		err->quoted.ip6 = nh.pos;
		proto = parse_ipv6hdr(&nh, data_end);
	} else {
		err->quoted.ip4 = nh.pos;
		proto = parse_ipv4hdr(&nh, data_end);
	}
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return -1;
	if (nh.pos + ICMP_QUOTED_L4_MIN > data_end)
		return -1;
	err->quoted.l4 = nh.pos;
	err->quoted.data_end = data_end;
	err->quoted.l4_len = 0;
	err->quoted.l4_proto = proto;
	if (proto == IPPROTO_UDP)
		err->quoted_check_offset = ICMP_QUOTED_UDP_CHECK;
	else if (nh.pos + ICMP_QUOTED_TCP_CHECK + sizeof(__u16) <= data_end)
		err->quoted_check_offset = ICMP_QUOTED_TCP_CHECK;
	else
		err->quoted_check_offset = 0; /* a bare 8-byte TCP quote */
	return 0;
}

/* The quoted transport checksum once the quoted port changes from `from` to `to`. */
static __always_inline __u16 quoted_check_after(const struct icmp_error *err, __u16 check,
						__be16 from, __be16 to)
{
	if (err->quoted.l4_proto == IPPROTO_UDP)
		return udp_csum_replace16(check, from, to); /* 0 (none) stays 0 */
	return csum_replace16(check, from, to);
}

/*
 * Outbound: the frontend port a quoted client -> backend datagram was sent
 * to, by the same rule as the backend's replies: the backend port's reply
 * port, unless the client talks to it directly (then 0: no change). The
 * quote is a request, so its request key is the direct client's key.
 */
static __always_inline __be16 icmp_outbound_frontend(const struct icmp_error *err)
{
	struct portmux_flow_key key = {};
	struct portmux_port *port;
	__be16 frontend;

	port = port_entry(err->quoted.l4_proto, l4_ports(&err->quoted)->dest);
	if (!port)
		return 0;
	frontend = reply_port_of(port);
	if (!frontend)
		return 0;
	request_flow_key(&key, &err->quoted);
	return is_direct_client(&key) ? 0 : frontend;
}

/*
 * Inbound: the backend port that sent the quoted frontend -> client reply,
 * or 0 when the quote is not from a frontend or no backend can be told.
 * The flow table knows the backend of every TCP connection and of every
 * client of a UDP flow-affinity frontend: the reply's key (client, frontend
 * port) is the request's flow key. A TCP connection whose entry was evicted
 * is found as its segments find it (tcp_connection_backend(): its SYN's
 * slot, else the backend whose socket table holds the connection; a
 * listener does not count). A UDP frontend balanced per packet keeps no
 * such record (each datagram may go elsewhere): the error goes to the
 * first backend of the client's family in round-robin order. Path MTU is
 * kept per destination host-wide, so any backend socket that takes the
 * error teaches every backend the client's path MTU.
 */
static __always_inline __be16 icmp_inbound_backend(struct xdp_md *ctx, const struct icmp_error *err)
{
	struct tcp_affinity_query query = {};
	struct portmux_frontend *fe;
	struct portmux_port *port;
	struct portmux_flow *flow;
	__be16 frontend = l4_ports(&err->quoted)->source;
	__u32 family;
	int choice;

	port = port_entry(err->quoted.l4_proto, frontend);
	if (!port)
		return 0;
	fe = frontend_config(port, err->quoted.l4_proto, frontend);
	if (!fe)
		return 0;
	reply_key_for_reply(&query.key, &err->quoted);
	flow = bpf_map_lookup_elem(&flows, &query.key);
	if (flow)
		return flow->backend_port;
	if (err->quoted.l4_proto == IPPROTO_TCP) {
		/* The quoted reply's source is this host's address. */
		struct iphdr *ip4 = err->quoted.ip4;
		struct ipv6hdr *ip6 = err->quoted.ip6;

		asm volatile("" : "+r"(ip4), "+r"(ip6));
		if (ip4)
			query.host_addr[0] = ip4->saddr;
		else if (ip6)
			__builtin_memcpy(query.host_addr, &ip6->saddr, sizeof(query.host_addr));
		/* No flags: only a connection's own socket counts, never a listener. */
		choice = tcp_connection_backend(ctx, fe, &query);
		if (choice < 0 || choice >= fe->backend_count)
			return 0;
		return fe->backends[verifier_bound(choice, PORTMUX_MAX_BACKENDS - 1)];
	}
	family = err->quoted.ip6 ? PORTMUX_FAMILY_V6 : PORTMUX_FAMILY_V4;
	if (fe->rr_length[family] == 0)
		return 0;
	return fe->backends[verifier_bound(fe->rr_order[family][0], PORTMUX_MAX_BACKENDS - 1)];
}

/* XDP, stage one. */
__noinline int locate_icmp_quote_xdp(struct xdp_md *ctx)
{
	return locate_icmp_quote((void *)(long)ctx->data, (void *)(long)ctx->data_end);
}

/* XDP, stage two: an inbound error about a reply gets the backend port quoted. */
__noinline int translate_icmp_quote_inbound(struct xdp_md *ctx, __u32 located)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct icmp_error err;
	__be16 frontend, backend;
	__u16 *source, *quoted_check;
	__u16 icmp_check;

	if (parse_icmp_quote(data, data_end, located, &err) < 0)
		return 0;
	backend = icmp_inbound_backend(ctx, &err);
	if (!backend)
		return 0;
	source = &l4_ports(&err.quoted)->source;
	frontend = *source;
	icmp_check = csum_replace16(*err.icmp_check, frontend, backend);
	if (err.quoted_check_offset) {
		quoted_check = err.quoted.l4 + verifier_bound(err.quoted_check_offset, 31);
		if ((void *)(quoted_check + 1) > data_end)
			return 0;
		__u16 check = quoted_check_after(&err, *quoted_check, frontend, backend);

		icmp_check = csum_replace16(icmp_check, *quoted_check, check);
		*quoted_check = check;
	}
	*source = backend;
	*err.icmp_check = icmp_check;
	return 0;
}

/* XDP: a frame that is not UDP or TCP may be an error about a reply. XDP_PASS always. */
static __always_inline int translate_icmp_error_inbound(struct xdp_md *ctx)
{
	int located = locate_icmp_quote_xdp(ctx);

	if (located >= 0)
		translate_icmp_quote_inbound(ctx, located);
	return XDP_PASS;
}

/*
 * TC, stage one; pulls the headers into the linear area when they are not.
 * The TC side stays inlined: its program is small enough, and a global
 * function lives in .text, whose helper calls the loader's kernel check
 * (loader/bpf_helpers.cpp) probes as XDP's, which has no skb helpers.
 */
static __always_inline int locate_icmp_quote_skb(struct __sk_buff *skb)
{
	int located = locate_icmp_quote((void *)(long)skb->data, (void *)(long)skb->data_end);

	if (located < 0) {
		__u32 pull = skb->len < ICMP_PULL_BYTES ? skb->len : ICMP_PULL_BYTES;

		if (bpf_skb_pull_data(skb, pull) < 0)
			return -1;
		located = locate_icmp_quote((void *)(long)skb->data, (void *)(long)skb->data_end);
	}
	return located;
}

/*
 * TC, stage two: an error this host sends about a datagram portmux sent to
 * a backend gets the frontend port quoted. Writes go through the skb
 * helpers, which keep the skb's checksum state right; bpf_l4_csum_replace
 * takes each change into the ICMP checksum.
 */
static __always_inline int translate_icmp_quote_outbound(struct __sk_buff *skb, __u32 located)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct icmp_error err;
	__be16 frontend, backend;
	__u32 port_offset, check_offset, icmp_check_offset;
	__u16 old_check = 0, new_check = 0;
	bool has_check = false;

	if (parse_icmp_quote(data, data_end, located, &err) < 0)
		return 0;
	frontend = icmp_outbound_frontend(&err);
	if (!frontend)
		return 0;
	backend = l4_ports(&err.quoted)->dest;
	port_offset = err.quoted.l4 + offsetof(struct l4_ports, dest) - data;
	icmp_check_offset = (void *)err.icmp_check - data;
	check_offset = err.quoted.l4 + err.quoted_check_offset - data;
	if (err.quoted_check_offset) {
		__u16 *quoted_check = err.quoted.l4 + verifier_bound(err.quoted_check_offset, 31);

		if ((void *)(quoted_check + 1) > data_end)
			return 0;
		old_check = *quoted_check;
		new_check = quoted_check_after(&err, old_check, backend, frontend);
		has_check = true;
	}
	/* Packet pointers are invalid from here on. */
	if (bpf_skb_store_bytes(skb, port_offset, &frontend, sizeof(frontend), 0) < 0)
		return 0;
	bpf_l4_csum_replace(skb, icmp_check_offset, backend, frontend, sizeof(__be16));
	if (has_check) {
		bpf_skb_store_bytes(skb, check_offset, &new_check, sizeof(new_check), 0);
		bpf_l4_csum_replace(skb, icmp_check_offset, old_check, new_check, sizeof(__u16));
	}
	return 0;
}

/* TC egress: a packet that is not UDP or TCP may be an error about a request. */
static __always_inline void translate_icmp_error_outbound(struct __sk_buff *skb)
{
	int located = locate_icmp_quote_skb(skb);

	if (located >= 0)
		translate_icmp_quote_outbound(skb, located);
}

#endif /* PORTMUX_ICMP_H */
