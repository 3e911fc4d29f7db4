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

/*
 * How the payload a transport header states fits the IP payload it sits in
 * (parse_udphdr(), parse_tcphdr()).
 */
#define L4_PAYLOAD_WHOLE 0     /* inside the IP payload */
#define L4_PAYLOAD_CUT 1       /* a UDP length beyond the IP payload: a first
				* fragment's (xdp/fragment.h), or a cut datagram */
#define L4_PAYLOAD_MALFORMED 2 /* a UDP length below its header, a TCP data
				* offset below 5 words or beyond the IP payload */

/* The transport header located by parse_l4(), and what it sits on. */
struct l4_packet {
	/* Exactly one is set. Two typed pointers, not one pointer and a
	 * protocol number, so the verifier keeps the bounds of each path. */
	struct iphdr *ip4;
	struct ipv6hdr *ip6;
	void *l4;            /* struct udphdr or struct tcphdr */
	void *data_end;
	__u32 l4_len;        /* transport header + payload, per the IP header */
	/* The payload as the transport header states it: where it starts, from
	 * the frame start, and its length (UDP: the length field's, which a
	 * first fragment does not hold whole; TCP: the IP payload past the data
	 * offset). Only L4_PAYLOAD_WHOLE and _CUT set them. */
	__u32 payload_offset;
	__u32 payload_len;
	__u8 payload_fit;    /* L4_PAYLOAD_* */
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

/*
 * The bytes the IP header gives what follows its own headers, from `l4` on
 * (negative when the header chain runs past that length).
 */
static __always_inline __s64 ip_payload_len(const struct l4_packet *pkt, void *l4)
{
	if (pkt->ip4)
		return (__s64)bpf_ntohs(pkt->ip4->tot_len) - (l4 - (void *)pkt->ip4);
	if (pkt->ip6)
		return (__s64)bpf_ntohs(pkt->ip6->payload_len) - (l4 - (void *)(pkt->ip6 + 1));
	return -1;
}

/*
 * The UDP header at the cursor: handed back in *udphdr, and the cursor moved
 * past it, once it lies in the frame and inside the `ip_len` bytes of IP
 * payload. Returns how the payload its length field states fits those bytes
 * (L4_PAYLOAD_*), with that length in *payload_len; -1 without a header.
 */
static __always_inline int parse_udphdr(struct hdr_cursor *nh, void *data_end, __s64 ip_len,
					struct udphdr **udphdr, __u32 *payload_len)
{
	struct udphdr *udp = nh->pos;
	__u32 udp_len;

	if ((void *)(udp + 1) > data_end || ip_len < (__s64)sizeof(*udp))
		return -1;
	nh->pos = udp + 1;
	*udphdr = udp;
	udp_len = bpf_ntohs(udp->len);
	if (udp_len < sizeof(*udp))
		return L4_PAYLOAD_MALFORMED;
	*payload_len = udp_len - sizeof(*udp);
	return udp_len > ip_len ? L4_PAYLOAD_CUT : L4_PAYLOAD_WHOLE;
}

/*
 * The TCP header at the cursor: handed back in *tcphdr once its fixed part
 * lies in the frame and inside the `ip_len` bytes of IP payload; the cursor
 * moves past its options (which this parser does not read, so they need not
 * lie in the frame). Returns how its data offset fits those bytes
 * (L4_PAYLOAD_*), with the payload's length in *payload_len; -1 without a
 * header.
 */
static __always_inline int parse_tcphdr(struct hdr_cursor *nh, void *data_end, __s64 ip_len,
					struct tcphdr **tcphdr, __u32 *payload_len)
{
	struct tcphdr *tcp = nh->pos;
	__u32 hdr_len;

	if ((void *)(tcp + 1) > data_end || ip_len < (__s64)sizeof(*tcp))
		return -1;
	*tcphdr = tcp;
	hdr_len = tcp->doff * 4;
	if (hdr_len < sizeof(*tcp) || hdr_len > ip_len) {
		nh->pos = tcp + 1;
		return L4_PAYLOAD_MALFORMED;
	}
	nh->pos += hdr_len;
	*payload_len = ip_len - hdr_len;
	return L4_PAYLOAD_WHOLE;
}

/*
 * Locates the transport header of an Ethernet frame. Returns 0 with
 * *pkt filled when a full UDP or TCP header is present, -1 otherwise.
 */
static __always_inline int parse_l4(void *data, void *data_end,
				    struct l4_packet *pkt)
{
	struct hdr_cursor nh = { .pos = data };
	int l3_proto, l4_proto, fit;
	__s64 ip_len;

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

	if (l4_proto != IPPROTO_UDP && l4_proto != IPPROTO_TCP)
		return -1; /* (also when the IP header was not there to parse) */
	pkt->l4 = nh.pos;
	pkt->data_end = data_end;
	pkt->payload_len = 0;
	ip_len = ip_payload_len(pkt, nh.pos);
	if (l4_proto == IPPROTO_UDP) {
		struct udphdr *udp;

		fit = parse_udphdr(&nh, data_end, ip_len, &udp, &pkt->payload_len);
	} else {
		struct tcphdr *tcp;

		fit = parse_tcphdr(&nh, data_end, ip_len, &tcp, &pkt->payload_len);
	}
	if (fit < 0)
		return -1;
	pkt->l4_proto = l4_proto;
	pkt->l4_len = ip_len;
	pkt->payload_fit = fit;
	pkt->payload_offset = nh.pos - data;
	return 0;
}

#endif /* PORTMUX_PARSING_H */
