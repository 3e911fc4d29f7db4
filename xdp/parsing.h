/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsers for the data path. Each parser checks one header
 * against data_end, advances the cursor past it and reports what comes
 * next; any failure means "not ours": the caller passes the frame on
 * untouched.
 */
#ifndef PORTMUX_PARSING_H
#define PORTMUX_PARSING_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define PARSE_MAX_VLAN_TAGS 2
#define PARSE_MAX_IPV6_EXT_HEADERS 4

#define IPV4_FRAG_OFFSET_MASK 0x1fff
#define IPV6_FRAG_OFFSET_MASK 0xfff8

struct hdr_cursor {
	void *pos;
};

struct vlan_tag {
	__be16 tci;
	__be16 encapsulated_proto;
};

/* The transport header located by parse_l4(), and what it sits on. */
struct l4_packet {
	/* Exactly one is set. Two typed pointers, not one pointer and a
	 * protocol number, so the verifier keeps the bounds of each path. */
	struct iphdr *ip4;
	struct ipv6hdr *ip6;
	void *l4;            /* struct udphdr or struct tcphdr */
	void *data_end;
	__u32 l4_len;        /* transport header + payload, per the IP header */
	__u8 l4_proto;       /* IPPROTO_UDP, IPPROTO_TCP, ... */
};

static __always_inline bool proto_is_vlan(__be16 h_proto)
{
	return h_proto == bpf_htons(ETH_P_8021Q) ||
	       h_proto == bpf_htons(ETH_P_8021AD);
}

/* Returns the EtherType after up to two VLAN tags, or -1. */
static __always_inline int parse_ethhdr(struct hdr_cursor *nh, void *data_end)
{
	struct ethhdr *eth = nh->pos;
	struct vlan_tag *tag;
	__be16 h_proto;

	if ((void *)(eth + 1) > data_end)
		return -1;
	nh->pos = eth + 1;
	h_proto = eth->h_proto;

#pragma unroll
	for (int i = 0; i < PARSE_MAX_VLAN_TAGS; i++) {
		if (!proto_is_vlan(h_proto))
			break;
		tag = nh->pos;
		if ((void *)(tag + 1) > data_end)
			return -1;
		h_proto = tag->encapsulated_proto;
		nh->pos = tag + 1;
	}
	if (proto_is_vlan(h_proto))
		return -1; /* deeper nesting than we parse */
	return bpf_ntohs(h_proto);
}

/*
 * Returns the IPv4 payload protocol, or -1 for a malformed header or a
 * non-first fragment (which carries no transport header, hence no port).
 */
static __always_inline int parse_ipv4hdr(struct hdr_cursor *nh, void *data_end)
{
	struct iphdr *iph = nh->pos;
	__u32 hdr_len;

	if ((void *)(iph + 1) > data_end)
		return -1;
	if (iph->version != 4 || iph->ihl < 5)
		return -1;
	hdr_len = iph->ihl * 4;
	if (nh->pos + hdr_len > data_end)
		return -1;
	if (iph->frag_off & bpf_htons(IPV4_FRAG_OFFSET_MASK))
		return -1;
	nh->pos += hdr_len;
	return iph->protocol;
}

struct ipv6_ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/*
 * Returns the IPv6 upper-layer protocol after skipping up to
 * PARSE_MAX_IPV6_EXT_HEADERS extension headers, or -1 when it cannot be
 * reached or the packet is a non-first fragment.
 */
static __always_inline int parse_ipv6hdr(struct hdr_cursor *nh, void *data_end)
{
	struct ipv6hdr *ip6h = nh->pos;
	__u8 nexthdr;

	if ((void *)(ip6h + 1) > data_end)
		return -1;
	if (ip6h->version != 6)
		return -1;
	nh->pos = ip6h + 1;
	nexthdr = ip6h->nexthdr;

#pragma unroll
	for (int i = 0; i < PARSE_MAX_IPV6_EXT_HEADERS; i++) {
		struct ipv6_ext_hdr *ext = nh->pos;
		struct ipv6_frag_hdr *frag = nh->pos;

		switch (nexthdr) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
			if ((void *)(ext + 1) > data_end)
				return -1;
			nexthdr = ext->nexthdr;
			nh->pos += (ext->hdrlen + 1) * 8;
			break;
		case IPPROTO_AH:
			if ((void *)(ext + 1) > data_end)
				return -1;
			nexthdr = ext->nexthdr;
			nh->pos += (ext->hdrlen + 2) * 4;
			break;
		case IPPROTO_FRAGMENT:
			if ((void *)(frag + 1) > data_end)
				return -1;
			if (frag->frag_off & bpf_htons(IPV6_FRAG_OFFSET_MASK))
				return -1;
			nexthdr = frag->nexthdr;
			nh->pos = frag + 1;
			break;
		default:
			return nexthdr;
		}
	}
	/*
	 * The loop has consumed up to PARSE_MAX_IPV6_EXT_HEADERS headers and
	 * left the protocol that follows the last one in nexthdr: that is the
	 * upper-layer header unless it is yet another extension header.
	 */
	switch (nexthdr) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
	case IPPROTO_AH:
	case IPPROTO_FRAGMENT:
		return -1; /* still inside extension headers: too deep to reach the ports */
	default:
		return nexthdr;
	}
}

/* Sets pkt->l4_len from the IP length fields; -1 when they are inconsistent. */
static __always_inline int l4_len_from_ip(struct l4_packet *pkt)
{
	__s64 len;

	if (pkt->ip4)
		len = (__s64)bpf_ntohs(pkt->ip4->tot_len) - (pkt->l4 - (void *)pkt->ip4);
	else if (pkt->ip6)
		len = (__s64)bpf_ntohs(pkt->ip6->payload_len) - (pkt->l4 - (void *)(pkt->ip6 + 1));
	else
		return -1;
	/* The transport header must lie inside what the IP header covers. */
	if (len < (pkt->l4_proto == IPPROTO_UDP ? (__s64)sizeof(struct udphdr)
						 : (__s64)sizeof(struct tcphdr)))
		return -1;
	pkt->l4_len = len;
	return 0;
}

/*
 * Locates the transport header of an Ethernet frame. Returns 0 with
 * *pkt filled when a full UDP or TCP header is present, -1 otherwise.
 */
static __always_inline int parse_l4(void *data, void *data_end,
				    struct l4_packet *pkt)
{
	struct hdr_cursor nh = { .pos = data };
	int l3_proto, l4_proto;

	l3_proto = parse_ethhdr(&nh, data_end);
	pkt->ip4 = NULL;
	pkt->ip6 = NULL;
	if (l3_proto == ETH_P_IP) {
		pkt->ip4 = nh.pos;
		l4_proto = parse_ipv4hdr(&nh, data_end);
	} else if (l3_proto == ETH_P_IPV6) {
		pkt->ip6 = nh.pos;
		l4_proto = parse_ipv6hdr(&nh, data_end);
	} else {
		return -1;
	}

	pkt->l4 = nh.pos;
	pkt->data_end = data_end;
	if (l4_proto == IPPROTO_UDP) {
		if (nh.pos + sizeof(struct udphdr) > data_end)
			return -1;
	} else if (l4_proto == IPPROTO_TCP) {
		if (nh.pos + sizeof(struct tcphdr) > data_end)
			return -1;
	} else {
		return -1;
	}
	pkt->l4_proto = l4_proto;
	return l4_len_from_ip(pkt);
}

#endif /* PORTMUX_PARSING_H */
