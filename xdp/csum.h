/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Incremental Internet checksum update (RFC 1624, eqn. 3):
 *   HC' = ~(~HC + ~m + m')
 * The one's complement sum is byte-order independent, so the fields are
 * used exactly as they sit on the wire.
 */
#ifndef PORTMUX_CSUM_H
#define PORTMUX_CSUM_H

#include <linux/types.h>

static __always_inline __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* The checksum after one 16-bit field of the covered data changed. */
static __always_inline __u16 csum_replace16(__u16 check, __u16 old_field,
					    __u16 new_field)
{
	__u32 sum = (__u16)~check + (__u16)~old_field + (__u32)new_field;

	return (__u16)~csum_fold32(sum);
}

/*
 * UDP flavour: a zero IPv4 checksum means "none" and stays zero, and a
 * computed zero is sent as 0xffff (RFC 768).
 */
static __always_inline __u16 udp_csum_replace16(__u16 check, __u16 old_field,
						__u16 new_field)
{
	__u16 updated;

	if (check == 0)
		return 0;
	updated = csum_replace16(check, old_field, new_field);
	return updated ? updated : 0xffff;
}

#endif /* PORTMUX_CSUM_H */
