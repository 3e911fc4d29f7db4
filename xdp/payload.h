/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Payload inspection: the length window and byte matches of a validate
 * block, and the tag that picks a backend. Where the payload lies and how
 * long it is are the parsers' findings (xdp/parsing.h, xdp/fragment.h);
 * this file only reads bytes of it. Bytes are read as one fixed
 * 16-byte window that ends where the wanted bytes end (so the wanted bytes
 * are its last `length` bytes; the loader stores match values, masks and
 * route tags right-aligned the same way), and compared without a branch
 * per byte: byte loops with an exit per byte multiply the verifier's states.
 *
 * The default object (kernel 5.15) reads the window by direct packet access:
 * the linear part of the frame, offsets bounded by PORTMUX_MAX_PAYLOAD_OFFSET.
 * The frags-aware object (PORTMUX_FRAGS, xdp.frags, kernel 5.18) copies it
 * with bpf_xdp_load_bytes, which reads across fragments of a jumbo frame.
 */
#ifndef PORTMUX_PAYLOAD_H
#define PORTMUX_PAYLOAD_H

#include "parsing.h"
#include "portmux_shared.h"
#include "verifier.h"

/* read_payload_window() serves both matches and tags. */
_Static_assert(PORTMUX_MAX_MATCH_LEN == PORTMUX_MAX_TAG_LEN, "one copy buffer size");
#define PAYLOAD_WINDOW PORTMUX_MAX_TAG_LEN
/* Frame offsets a window may start at: the deepest headers parse_l4 takes
 * plus PORTMUX_MAX_PAYLOAD_OFFSET fit well below it. */
#define PAYLOAD_WINDOW_MAX_START 4095

/*
 * The payload this file reads bytes of, as the parser located it
 * (payload_of()) or, for a first fragment, as xdp/fragment.h does.
 */
struct l4_payload {
	__u32 frame_offset; /* where the payload starts, from the frame start */
	__u32 length;       /* as the transport and IP headers state it */
};

/*
 * The payload of a packet parse_l4() found whole inside its IP payload;
 * false for any other (a first fragment's, a malformed header's).
 */
static __always_inline bool payload_of(const struct l4_packet *pkt, struct l4_payload *payload)
{
	payload->frame_offset = pkt->payload_offset;
	payload->length = pkt->payload_len;
	return pkt->payload_fit == L4_PAYLOAD_WHOLE;
}

/*
 * Copies the PAYLOAD_WINDOW frame bytes that end with the `length` payload
 * bytes at `offset` into out[]: the wanted bytes are out[16 - length..15],
 * the bytes before them are whatever precedes them in the frame (headers
 * when the wanted bytes start near the payload's start; the payload always
 * starts past 16 bytes of headers). False when the payload, as the headers
 * state it, does not hold the wanted bytes or the frame does not carry them
 * where this object can read.
 */
static __always_inline bool read_payload_window(struct xdp_md *xdp,
						const struct l4_payload *payload,
						__u32 offset, __u32 length,
						__u8 out[PAYLOAD_WINDOW])
{
	__u32 start;

	if (offset > PORTMUX_MAX_PAYLOAD_OFFSET || length == 0 ||
	    length > PAYLOAD_WINDOW || offset + length > payload->length)
		return false;
	start = payload->frame_offset + offset + length - PAYLOAD_WINDOW;
	if (start > PAYLOAD_WINDOW_MAX_START)
		return false;
#ifdef PORTMUX_FRAGS
	return bpf_xdp_load_bytes(xdp, start, out, PAYLOAD_WINDOW) == 0;
#else
	{
		void *data = (void *)(long)xdp->data;
		void *data_end = (void *)(long)xdp->data_end;
		__u8 *window = data + verifier_bound(start, PAYLOAD_WINDOW_MAX_START);

		if ((void *)(window + PAYLOAD_WINDOW) > data_end)
			return false;
		__builtin_memcpy(out, window, PAYLOAD_WINDOW);
		return true;
	}
#endif
}

/*
 * The loader stores value and mask right-aligned and zero before the match,
 * so all PORTMUX_MAX_MATCH_LEN bytes of the window can be compared without
 * looking at the length.
 */
static __always_inline bool payload_matches(struct xdp_md *xdp,
					    const struct l4_payload *payload,
					    const struct portmux_byte_match *match)
{
	__u8 bytes[PORTMUX_MAX_MATCH_LEN];
	__u8 difference = 0;

	if (!read_payload_window(xdp, payload, match->offset, match->length, bytes))
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
