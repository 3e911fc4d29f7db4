/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef PORTMUX_VERIFIER_H
#define PORTMUX_VERIFIER_H

#include <linux/types.h>

/*
 * Masks an index the compiler already knows to be in range, in a way it
 * cannot drop, so the verifier sees the bound on the register it indexes by.
 */
static __always_inline __u32 verifier_bound(__u32 index, __u32 mask)
{
	asm volatile("" : "+r"(index));
	return index & mask;
}

#endif /* PORTMUX_VERIFIER_H */
