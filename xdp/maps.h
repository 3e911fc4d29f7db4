/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The maps of the data path; the loader pins them under /sys/fs/bpf/portmux/IFACE/. */
#ifndef PORTMUX_MAPS_H
#define PORTMUX_MAPS_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "portmux_shared.h"

/*
 * Frontend configs: two buffers per frontend slot (PORTMUX_CONFIG_BUFFERS),
 * reached through the frontend's `ports` entry. An array lookup costs a few
 * instructions where a hash lookup by (port, protocol) cost ~17 ns; a reload
 * writes the buffer no reader uses and then flips the `ports` entry.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PORTMUX_CONFIG_BUFFERS * PORTMUX_DEFAULT_STATE_SLOTS);
	__type(key, __u32);
	__type(value, struct portmux_frontend);
} frontend_configs SEC(".maps");

/*
 * Loader bookkeeping of the counters, one per frontend slot (see struct
 * portmux_counter_bases); no program reads it. Sized like frontend_state.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PORTMUX_DEFAULT_STATE_SLOTS);
	__type(key, __u32);
	__type(value, struct portmux_counter_bases);
} counter_bases SEC(".maps");

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

/*
 * The exceptions to reply translation: clients that talk to a backend port
 * directly (a health check, an admin's probe), by (client, client port,
 * backend port). TC egress gives every other packet from a backend port the
 * port in its `ports` entry; a direct client's replies keep the backend
 * port. Filled by XDP, which sees each packet such a client sends; an LRU,
 * sized like `flows` (docs/design.md, "Reply translation by backend port").
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PORTMUX_DEFAULT_FLOW_TABLE_SIZE);
	__type(key, struct portmux_flow_key);
	__type(value, struct portmux_direct_client);
} direct_clients SEC(".maps");

/*
 * Backend ports that have had a direct client since the attach, by `ports`
 * index (nonzero: yes). Only for them do TC egress, ICMP errors and a
 * balanced SYN look in `direct_clients`, a hash lookup (and a cache miss on
 * a new flow); replies from every other backend port are translated with
 * array lookups alone. Set by XDP before it records a direct client, never
 * cleared: an exception may outlive any one client.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PORTMUX_PORT_ENTRIES);
	__type(key, __u32);
	__type(value, __u32);
} direct_ports SEC(".maps");

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
 * surely_not_ours() passes by its clear bit in `port_bits`), a frontend, a
 * backend.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PORTMUX_PORT_ENTRIES);
	__type(key, __u32);
	__type(value, struct portmux_port);
} ports SEC(".maps");

/*
 * `port_bits` (struct portmux_port_bits): which `ports` entries are not
 * zero. Global data in a section of its own, so libbpf makes it a one-entry
 * array map of its own (".data.port_bits", pinned as port_bits) and the
 * programs address its bytes directly: no helper call, hence no key on the
 * stack and no register saved across a call on the path most traffic
 * takes (a lookup in `ports` cost that traffic 1.2-3.4 ns above the XDP_PASS
 * floor, depending on where the JIT placed the program; this 0.3-0.9 ns).
 */
struct portmux_port_bits port_bits SEC(".data.port_bits");

/*
 * (frontend config, payload tag) -> backend, for frontends with a route
 * block. Room for two full configs: a reload adds the new config buffer's
 * routes before it removes the old one's. Not preallocated: memory follows
 * the tags in use.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, PORTMUX_CONFIG_BUFFERS * PORTMUX_MAX_ROUTES);
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

/* Which port of a packet surely_not_ours() looks up: XDP the destination
 * (requests), TC egress the source (replies leave from a backend port). */
#define PORTS_BY_DEST 0
#define PORTS_BY_SOURCE 1

/* The common frame surely_not_ours() judges: Ethernet, then IPv4 without
 * options (version 4, IHL 5), then the ports at a fixed offset. Read as
 * whole 16-bit words (struct ethhdr is packed, so its fields would be read
 * a byte at a time; the frame's start is 2-byte aligned anyway). */
#define COMMON_ETH_PROTO 12     /* EtherType */
#define COMMON_IP_FIRST 14      /* version and IHL */
#define COMMON_IP_PROTO 23      /* IPv4 protocol */
#define COMMON_PORTS 34         /* source port, then destination port */
#define COMMON_HEAD_LEN 38
#define IPV4_NO_OPTIONS 0x45    /* the first byte of such an IPv4 header */

/*
 * True only for the common frame (Ethernet, IPv4 without options, UDP or
 * TCP) whose (protocol, port) has a clear bit in `port_bits`: nothing of
 * portmux's, so the frame passes untouched. Every offset is fixed, so one
 * bounds check covers all it reads; a frame it cannot judge this way (VLAN
 * tags, IP options, IPv6, other protocols, too short, a port whose bit is
 * set) gets false and is parsed in full. A later fragment's bytes where the
 * ports would be are harmless: a clear bit passes it (as parse_l4() would),
 * a set one has it parsed in full.
 */
static __always_inline bool surely_not_ours(void *data, void *data_end, int which_port)
{
	__u8 protocol;
	__u32 index;

	if (data + COMMON_HEAD_LEN > data_end ||
	    *(__be16 *)(data + COMMON_ETH_PROTO) != bpf_htons(ETH_P_IP) ||
	    *(__u8 *)(data + COMMON_IP_FIRST) != IPV4_NO_OPTIONS)
		return false;
	index = bpf_ntohs(*(__be16 *)(data + COMMON_PORTS + (which_port == PORTS_BY_SOURCE ? 0 : 2)));
	protocol = *(__u8 *)(data + COMMON_IP_PROTO);
	if (protocol == IPPROTO_TCP)
		index += PORTMUX_TCP_PORT_BASE;
	else if (protocol != IPPROTO_UDP)
		return false;
	index &= PORTMUX_PORT_ENTRIES - 1;
	return !(port_bits.bits[index / 8] & (1 << (index % 8)));
}

/* The index of (protocol, port in network order) in `ports` and `direct_ports`. */
static __always_inline __u32 port_index(__u8 protocol, __be16 port)
{
	__u32 index = bpf_ntohs(port);

	if (protocol == IPPROTO_TCP)
		index += PORTMUX_TCP_PORT_BASE;
	return index;
}

/* The `ports` entry of (protocol, port in network order); NULL only on a map error. */
static __always_inline struct portmux_port *port_entry(__u8 protocol, __be16 port)
{
	__u32 index = port_index(protocol, port);

	return bpf_map_lookup_elem(&ports, &index);
}

/*
 * The config of the frontend (protocol, port) whose `ports` entry is
 * `entry`, or NULL when the entry names no frontend or its config is not
 * this frontend's: a reload rewrites the entry in place, and a reader that
 * caught it mid-write, or a buffer since reused, finds another port or
 * protocol recorded there and treats the packet as not portmux's.
 */
static __always_inline struct portmux_frontend *
frontend_config(const struct portmux_port *entry, __u8 protocol, __be16 port)
{
	struct portmux_frontend *fe;
	__u32 index;

	if (!(entry->flags & PORTMUX_PORT_FRONTEND))
		return NULL;
	/* One 4-byte load: the loader flips this word in place. */
	index = *(volatile const __u32 *)&entry->config;
	fe = bpf_map_lookup_elem(&frontend_configs, &index);
	if (!fe || fe->port != port || fe->protocol != protocol)
		return NULL;
	return fe;
}

/*
 * The frontend port that replies from the port of `ports` entry `entry`
 * show (0: none, the port is no backend of a frontend that translates
 * replies). One 2-byte load: the loader rewrites the entry in place.
 */
static __always_inline __be16 reply_port_of(const struct portmux_port *entry)
{
	if (!(entry->flags & PORTMUX_PORT_BACKEND))
		return 0;
	return *(volatile const __be16 *)&entry->reply_port;
}

/* The `direct_ports` word of the backend port of `key`; NULL only on a map error. */
static __always_inline __u32 *direct_port_word(const struct portmux_flow_key *key)
{
	__u32 index = port_index(key->protocol, key->service_port);

	return bpf_map_lookup_elem(&direct_ports, &index);
}

/*
 * Whether `key` (client, client port, backend port) is a direct client's:
 * looked up in `direct_clients` only when the backend port ever had one.
 */
static __always_inline bool is_direct_client(const struct portmux_flow_key *key)
{
	__u32 *seen = direct_port_word(key);

	if (!seen || !*seen)
		return false;
	return bpf_map_lookup_elem(&direct_clients, key) != NULL;
}

#endif /* PORTMUX_MAPS_H */
