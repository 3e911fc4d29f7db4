/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow keys: who the client is, as seen by either direction of a flow. */
#ifndef PORTMUX_FLOW_H
#define PORTMUX_FLOW_H

#include "parsing.h"
#include "portmux_shared.h"

/* Source and destination ports sit at the same offsets in UDP and TCP. */
struct l4_ports {
	__be16 source;
	__be16 dest;
};

static __always_inline struct l4_ports *l4_ports(const struct l4_packet *pkt)
{
	return pkt->l4;
}

/*
 * Fills the address part of a flow key with the packet's source (the
 * client of a request) or destination (the client of a reply).
 */
static __always_inline void flow_key_set_client(struct portmux_flow_key *key,
						const struct l4_packet *pkt,
						bool client_is_source)
{
	if (pkt->ip4) {
		key->client_addr[0] = client_is_source ? pkt->ip4->saddr : pkt->ip4->daddr;
		key->family = 4;
	} else if (pkt->ip6) {
		__builtin_memcpy(key->client_addr,
				 client_is_source ? &pkt->ip6->saddr : &pkt->ip6->daddr,
				 sizeof(key->client_addr));
		key->family = 6;
	}
	key->protocol = pkt->l4_proto;
}

/* Key of `flows` for a request: (client, frontend port). */
static __always_inline void request_flow_key(struct portmux_flow_key *key,
					     const struct l4_packet *pkt)
{
	flow_key_set_client(key, pkt, true);
	key->client_port = l4_ports(pkt)->source;
	key->service_port = l4_ports(pkt)->dest;
}

/* Key of `direct_clients` for a request of `flow` sent on to `backend`. */
static __always_inline void direct_client_key(struct portmux_flow_key *key,
					      const struct portmux_flow_key *flow,
					      __be16 backend)
{
	*key = *flow;
	key->service_port = backend;
}

/*
 * Key of a packet seen from its destination's side: (client = destination,
 * server port = source). For a reply leaving a backend, its key in
 * `direct_clients`; for a reply leaving a frontend port, its flow key.
 */
static __always_inline void reply_key_for_reply(struct portmux_flow_key *key,
						const struct l4_packet *pkt)
{
	flow_key_set_client(key, pkt, false);
	key->client_port = l4_ports(pkt)->dest;
	key->service_port = l4_ports(pkt)->source;
}

/*
 * A well-mixed 32-bit hash of a flow key (murmur3 mixing per word, then its
 * finalizer). Two seeds give two independent hashes of one key.
 */
static __always_inline __u32 flow_hash_seeded(const struct portmux_flow_key *key, __u32 seed)
{
	const __u32 *words = (const __u32 *)key;
	__u32 hash = seed;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*key) / sizeof(__u32)); i++) {
		__u32 k = words[i] * 0xcc9e2d51;

		k = (k << 15) | (k >> 17);
		hash ^= k * 0x1b873593;
		hash = ((hash << 13) | (hash >> 19)) * 5 + 0xe6546b64;
	}
	hash ^= hash >> 16;
	hash *= 0x85ebca6b;
	hash ^= hash >> 13;
	hash *= 0xc2b2ae35;
	hash ^= hash >> 16;
	return hash;
}

/* The hash a TCP segment of an unknown connection is balanced by. */
static __always_inline __u32 flow_hash(const struct portmux_flow_key *key)
{
	return flow_hash_seeded(key, PORTMUX_FLOW_HASH_SEED);
}

#endif /* PORTMUX_FLOW_H */
