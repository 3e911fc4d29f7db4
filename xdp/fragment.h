/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The first fragment of a UDP datagram to a validate or route frontend.
 *
 * Its UDP header states the length of the whole datagram, more than the
 * fragment carries (parse_udphdr() finds it L4_PAYLOAD_CUT). It is judged by
 * that stated length (the validate window) and by its own bytes (matches,
 * tag). A rule whose bytes lie beyond the fragment cannot be read: the
 * datagram is dropped as PORTMUX_DROP_BEYOND_FIRST_FRAGMENT, since letting
 * it through would skip the rule. Later fragments carry no UDP header; the
 * parser passes them untouched and the kernel reassembles the datagram with
 * the first fragment's rewritten port (the incremental checksum update is
 * right for the whole datagram).
 */
#ifndef PORTMUX_FRAGMENT_H
#define PORTMUX_FRAGMENT_H

#include "parsing.h"
#include "payload.h"
#include "portmux_shared.h"

#define IPV4_MORE_FRAGMENTS 0x2000

/*
 * One step along an IPv6 extension header chain: 1 when *nexthdr is a
 * fragment header, 0 after moving *pos past another extension header, -1
 * at the upper-layer header or the frame's end.
 */
static __always_inline int ipv6_fragment_step(void **pos, __u8 *nexthdr, void *data_end)
{
	struct ipv6_ext_hdr *ext = *pos;

	if (*nexthdr == IPPROTO_FRAGMENT)
		return 1;
	if ((void *)(ext + 1) > data_end)
		return -1;
	if (*nexthdr == IPPROTO_HOPOPTS || *nexthdr == IPPROTO_ROUTING ||
	    *nexthdr == IPPROTO_DSTOPTS)
		*pos += (ext->hdrlen + 1) * 8;
	else if (*nexthdr == IPPROTO_AH)
		*pos += (ext->hdrlen + 2) * 4;
	else
		return -1;
	*nexthdr = ext->nexthdr;
	return 0;
}

_Static_assert(PARSE_MAX_IPV6_EXT_HEADERS == 4, "ipv6_chain_has_fragment takes four steps");

/*
 * Whether the IPv6 header chain holds a fragment header within the
 * extension headers parse_ipv6hdr() walks. Four steps written out: clang
 * does not unroll a loop of them here.
 */
static __always_inline bool ipv6_chain_has_fragment(const struct l4_packet *pkt)
{
	struct ipv6hdr *ip6 = pkt->ip6;
	void *pos;
	__u8 nexthdr;
	int step;

	/* Not NULL when ip4 is, but the verifier cannot know that. */
	if (!ip6)
		return false;
	pos = ip6 + 1;
	nexthdr = ip6->nexthdr;
	step = ipv6_fragment_step(&pos, &nexthdr, pkt->data_end);
	if (step == 0)
		step = ipv6_fragment_step(&pos, &nexthdr, pkt->data_end);
	if (step == 0)
		step = ipv6_fragment_step(&pos, &nexthdr, pkt->data_end);
	if (step == 0)
		step = ipv6_fragment_step(&pos, &nexthdr, pkt->data_end);
	return step > 0 || (step == 0 && nexthdr == IPPROTO_FRAGMENT);
}

/*
 * For the first fragment of a UDP datagram (the parser lets no later one
 * through), whose UDP length the parser found beyond the fragment: fills
 * *payload with the datagram's payload, as the UDP header states it, and
 * returns how many payload bytes this fragment carries. -1 for any other
 * packet.
 */
static __always_inline int locate_first_fragment(const struct l4_packet *pkt,
						 struct l4_payload *payload)
{
	if (pkt->l4_proto != IPPROTO_UDP || pkt->payload_fit != L4_PAYLOAD_CUT)
		return -1;
	if (pkt->ip4) {
		if (!(pkt->ip4->frag_off & bpf_htons(IPV4_MORE_FRAGMENTS)))
			return -1;
	} else if (!ipv6_chain_has_fragment(pkt)) {
		return -1;
	}
	payload->length = pkt->payload_len;
	payload->frame_offset = pkt->payload_offset;
	return pkt->l4_len - sizeof(struct udphdr);
}

/* Bytes [offset, offset + length) lie in the datagram but past `present`. */
static __always_inline bool beyond_fragment(__u32 offset, __u32 length, __u32 present,
					    const struct l4_payload *payload)
{
	return offset + length > present && offset + length <= payload->length;
}

/*
 * Whether a match or the tag of the frontend lies beyond the `present`
 * payload bytes of a first fragment. Rules that end past the whole datagram
 * are left to the usual checks, which fail them as for an unfragmented one.
 */
static __always_inline bool fragment_hides_rules(const struct portmux_frontend *fe,
						 const struct l4_payload *payload, __u32 present)
{
	if (fe->flags & PORTMUX_F_VALIDATE) {
#pragma unroll
		for (int i = 0; i < PORTMUX_MAX_MATCHES; i++) {
			if (i >= fe->validation.match_count)
				break;
			if (beyond_fragment(fe->validation.matches[i].offset,
					    fe->validation.matches[i].length, present, payload))
				return true;
		}
	}
	if (fe->flags & PORTMUX_F_ROUTE)
		return beyond_fragment(fe->route.tag_offset, fe->route.tag_length, present, payload);
	return false;
}

#endif /* PORTMUX_FRAGMENT_H */
