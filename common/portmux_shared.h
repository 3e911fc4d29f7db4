/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one contract between the BPF data path (xdp/) and the loader
 * (loader/): map keys, map values and limits. Every field has a fixed
 * width and every struct is laid out without implicit padding, so both
 * compilers agree byte for byte; loader/shared_layout.cpp static_asserts
 * the sizes and offsets.
 *
 * Ports are stored in network byte order so the data path compares and
 * writes them without a byte swap, and the incremental checksum update
 * works directly on the wire values.
 */
#ifndef PORTMUX_SHARED_H
#define PORTMUX_SHARED_H

#include <linux/types.h>

#define PORTMUX_MAX_BACKENDS 64
/* Frontend slots: one per (port, protocol) pair a config may name. */
#define PORTMUX_MAX_FRONTENDS 65536

#define PORTMUX_PROTO_TCP 6
#define PORTMUX_PROTO_UDP 17

/* Key of the `frontends` hash map. */
struct portmux_frontend_key {
	__be16 port;     /* destination port clients dial */
	__u8 protocol;   /* PORTMUX_PROTO_UDP or PORTMUX_PROTO_TCP */
	__u8 pad;        /* always zero: part of the hashed key */
};

/* Value of the `frontends` hash map: the backends of one frontend. */
struct portmux_backend_set {
	/*
	 * Index into the per-CPU `rr_cursors` array, unique per frontend
	 * and chosen by the loader, so round robin never writes to this
	 * shared entry (see docs/design.md).
	 */
	__u32 cursor_slot;
	__u16 count;     /* valid entries in ports[], 1..PORTMUX_MAX_BACKENDS */
	__u16 flags;     /* reserved, zero */
	__be16 ports[PORTMUX_MAX_BACKENDS];
};

#endif /* PORTMUX_SHARED_H */
