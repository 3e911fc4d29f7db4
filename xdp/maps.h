/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The maps of the data path; the loader pins them under /sys/fs/bpf/portmux/IFACE/. */
#ifndef PORTMUX_MAPS_H
#define PORTMUX_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "portmux_shared.h"

/*
 * Frontend -> backends. Not preallocated: an update then swaps in a new
 * element under RCU, so a reader sees the old backend set or the new one,
 * never a torn mix.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PORTMUX_MAX_FRONTENDS);
	__type(key, struct portmux_frontend_key);
	__type(value, struct portmux_backend_set);
} frontends SEC(".maps");

/* Round-robin position per frontend slot, one copy per CPU: no shared writes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PORTMUX_MAX_FRONTENDS);
	__type(key, __u32);
	__type(value, __u32);
} rr_cursors SEC(".maps");

#endif /* PORTMUX_MAPS_H */
