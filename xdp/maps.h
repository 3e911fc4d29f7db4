/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The maps of the data path; the loader pins them under /sys/fs/bpf/portmux/IFACE/. */
#ifndef PORTMUX_MAPS_H
#define PORTMUX_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "portmux_shared.h"

/*
 * Frontend -> backends and policy. Not preallocated: an update then swaps
 * in a new element under RCU, so a reader sees the old frontend or the new
 * one, never a torn mix (what a reload relies on).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PORTMUX_MAX_FRONTENDS);
	__type(key, struct portmux_frontend_key);
	__type(value, struct portmux_frontend);
} frontends SEC(".maps");

/* Round-robin cursor and counters per frontend slot, one copy per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PORTMUX_DEFAULT_STATE_SLOTS);
	__type(key, __u32);
	__type(value, struct portmux_frontend_state);
} frontend_state SEC(".maps");

/* (client, frontend port) -> backend: TCP connections and UDP flow affinity. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PORTMUX_DEFAULT_FLOW_TABLE_SIZE);
	__type(key, struct portmux_flow_key);
	__type(value, struct portmux_flow);
} flows SEC(".maps");

/* (client, backend port) -> frontend port: what the TC egress program restores. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PORTMUX_DEFAULT_FLOW_TABLE_SIZE);
	__type(key, struct portmux_flow_key);
	__type(value, struct portmux_reply);
} replies SEC(".maps");

/*
 * The backend of each recent TCP SYN, by hash of its flow key; overwritten
 * in place, never allocated (xdp/tcp_affinity.h).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PORTMUX_SYN_SLOTS);
	__type(key, __u32);
	__type(value, struct portmux_syn_slot);
} syn_slots SEC(".maps");

/*
 * What each (protocol, port) is to portmux: nothing (most traffic, which
 * then costs one array lookup after the parse), a frontend, a backend.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PORTMUX_PORT_ENTRIES);
	__type(key, __u32);
	__type(value, struct portmux_port);
} ports SEC(".maps");

/* (frontend, payload tag) -> backend, for frontends with a route block. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PORTMUX_MAX_FRONTENDS);
	__type(key, struct portmux_route_key);
	__type(value, struct portmux_route_target);
} routes SEC(".maps");

/*
 * One entry: the layout version of the portmux that attached (the data
 * path never reads it; the loader checks it before touching other pins).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct portmux_meta);
} meta SEC(".maps");

#endif /* PORTMUX_MAPS_H */
