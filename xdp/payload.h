/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Payload inspection: the length window and byte matches of a validate
 * block, and the tag that picks a backend. Bytes are copied out with
 * bpf_xdp_load_bytes (kernel 5.18+) at offsets bounded by
 * PORTMUX_MAX_PAYLOAD_OFFSET, and compared without a branch per byte:
 * byte loops with an exit per byte multiply the verifier's states.
 */
#ifndef PORTMUX_PAYLOAD_H
#define PORTMUX_PAYLOAD_H

#include "parsing.h"
#include "portmux_shared.h"
#include "verifier.h"

/* read_payload_bytes() serves both matches and tags. */
_Static_assert(PORTMUX_MAX_MATCH_LEN == PORTMUX_MAX_TAG_LEN, "one copy buffer size");

struct l4_payload {
	__u32 frame_offset; /* where the payload starts, from the frame start */
	__u32 length;       /* as the transport and IP headers state it */
};

/* Finds the UDP or TCP payload; -1 for headers that contradict each other. */
static __always_inline int locate_payload(const struct l4_packet *pkt, void *data,
					  struct l4_payload *payload)
{
	__u32 hdr_len;

	payload->length = 0;
	if (pkt->l4_proto == IPPROTO_UDP) {
		struct udphdr *udp = pkt->l4;
		__u32 udp_len = bpf_ntohs(udp->len);

		if (udp_len < sizeof(*udp) || udp_len > pkt->l4_len)
			return -1;
		hdr_len = sizeof(*udp);
		payload->length = udp_len - hdr_len;
	} else {
		hdr_len = ((struct tcphdr *)pkt->l4)->doff * 4;
		if (hdr_len < sizeof(struct tcphdr) || hdr_len > pkt->l4_len)
			return -1;
		payload->length = pkt->l4_len - hdr_len;
	}
	payload->frame_offset = (pkt->l4 - data) + hdr_len;
	return 0;
}

/*
 * Copies `length` payload bytes at `offset` into out[]; false when the
 * payload does not hold them.
 */
static __always_inline bool read_payload_bytes(struct xdp_md *xdp,
					       const struct l4_payload *payload,
					       __u32 offset, __u32 length, __u8 *out)
{
	if (offset > PORTMUX_MAX_PAYLOAD_OFFSET || length == 0 ||
	    length > PORTMUX_MAX_TAG_LEN || offset + length > payload->length)
		return false;
	length = verifier_bound(length - 1, PORTMUX_MAX_TAG_LEN - 1) + 1;
	return bpf_xdp_load_bytes(xdp, payload->frame_offset + offset, out, length) == 0;
}

/*
 * The loader zeroes value and mask past the match length, so all
 * PORTMUX_MAX_MATCH_LEN bytes can be compared without looking at it.
 */
static __always_inline bool payload_matches(struct xdp_md *xdp,
					    const struct l4_payload *payload,
					    const struct portmux_byte_match *match)
{
	__u8 bytes[PORTMUX_MAX_MATCH_LEN] = {};
	__u8 difference = 0;

	if (!read_payload_bytes(xdp, payload, match->offset, match->length, bytes))
		return false;
#pragma unroll
	for (int i = 0; i < PORTMUX_MAX_MATCH_LEN; i++)
		difference |= (bytes[i] & match->mask[i]) ^ match->value[i];
	return difference == 0;
}

/* Returns the drop reason for a payload that breaks a rule, or -1. */
static __always_inline int validate_payload(struct xdp_md *xdp,
					    const struct portmux_validation *rules,
					    const struct l4_payload *payload)
{
	if (payload->length < rules->min_payload)
		return PORTMUX_DROP_TOO_SHORT;
	if (payload->length > rules->max_payload)
		return PORTMUX_DROP_TOO_LONG;
#pragma unroll
	for (int i = 0; i < PORTMUX_MAX_MATCHES; i++) {
		if (i >= rules->match_count)
			break;
		if (!payload_matches(xdp, payload, &rules->matches[i]))
			return PORTMUX_DROP_MAGIC_MISMATCH;
	}
	return -1;
}

#endif /* PORTMUX_PAYLOAD_H */
