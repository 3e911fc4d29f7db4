/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TCP affinity that does not hang on evictable state. The backends are
 * sockets on this host, so the kernel's socket table knows which backend
 * port holds a connection; the flow table is only a cache in front of it.
 *
 * - A SYN records its backend in `syn_slots` (one 8-byte store into an
 *   array, no allocation) and nothing in `flows`: a flood of spoofed SYNs
 *   overwrites slots of other SYNs, never the entries of established
 *   connections. A SYN that finds its own slot within the retransmission
 *   window is a retransmission and keeps the backend.
 * - A segment without a `flows` entry (the ACK completing a handshake, or a
 *   connection whose entry was evicted or deleted) takes the backend its
 *   SYN's slot names, else the one whose socket table holds the connection
 *   (bpf_skc_lookup_tcp over the frontend's backend ports): a connection or
 *   request socket there owns it; a listener only says that no connection
 *   is there, unless the segment is the ACK of a handshake the listener
 *   answered with a syncookie, which bpf_tcp_check_syncookie recognises.
 *   The caller then records the connection in `flows`.
 * - A SYN reads nothing in `flows` either: with a million flows in the
 *   table that lookup made a SYN cost 1.5-2x as much. A flow entry left by an older connection on the same
 *   addresses and ports would send the new connection's segments to the old
 *   backend: the new connection's SYN-ACK retires it at TC egress
 *   (retire_stale_flow()), before the client can send the ACK that follows.
 */
#ifndef PORTMUX_TCP_AFFINITY_H
#define PORTMUX_TCP_AFFINITY_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "flow.h"
#include "maps.h"
#include "parsing.h"
#include "verifier.h"

/* include/net/tcp_states.h; not part of the UAPI headers. */
#define PORTMUX_TCP_LISTEN 10

/* A SYN whose slot is younger than this many stamps (45 x 67 ms = 3 s) is a retransmission. */
#define SYN_RETRANSMIT_STAMPS 45
/* A flow entry younger than this is its connection's own: see retire_stale_flow(). */
#define SYN_RETRANSMIT_WINDOW_NS (3ULL * 1000000000ULL)

/*
 * What the functions below need of a segment. The key is the one the flow
 * table uses; the rest is copied out of the packet only on the paths that
 * need it (global functions cannot take packet pointers).
 */
struct tcp_affinity_query {
	struct portmux_flow_key key;  /* request_flow_key() of the segment */
	__be32 host_addr[4];          /* its destination address (IPv4 in [0]) */
	struct tcphdr tcp;            /* its TCP header, options left out */
	__u32 hash;                   /* set by the functions below: flow_hash(key) */
	__u64 now_ns;                 /* flow_clock_ns() */
	__u32 slot_index;             /* set with hash: key's SYN slot */
	__u32 fingerprint;            /* set with hash */
};

union syn_slot_word {
	struct portmux_syn_slot slot;
	__u64 word;
};

static __always_inline __u8 syn_stamp(__u64 now_ns)
{
	return (__u8)(now_ns >> PORTMUX_SYN_STAMP_SHIFT);
}

/*
 * The index of backend `port`, looked for at `hint` first (where it was
 * when recorded; a reload may have moved it), or -1 when it has left.
 */
static __always_inline int backend_index_of(const struct portmux_frontend *fe, __be16 port,
					    __u32 hint)
{
	__u32 count = fe->backend_count;

	if (hint < count && hint < PORTMUX_MAX_BACKENDS &&
	    fe->backends[verifier_bound(hint, PORTMUX_MAX_BACKENDS - 1)] == port)
		return hint;
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < PORTMUX_MAX_BACKENDS; i++) {
		if (i >= count)
			break;
		if (fe->backends[i] == port)
			return i;
	}
	return -1;
}

/*
 * Sets the query's slot and fingerprint; returns the backend index its slot
 * names, or -1 unless the slot is this key's and its backend is still in
 * the frontend. *retransmission: the SYN was less than 3 s ago.
 */
static __always_inline int syn_slot_backend(const struct portmux_frontend *fe,
					    struct tcp_affinity_query *query,
					    bool *retransmission)
{
	union syn_slot_word seen;
	__u32 hash = flow_hash(&query->key);
	__u32 index = hash & (PORTMUX_SYN_SLOTS - 1);
	__u64 *slot;

	query->hash = hash;
	query->slot_index = index;
	query->fingerprint = flow_hash_seeded(&query->key, PORTMUX_SYN_FINGERPRINT_SEED) | 1;
	slot = bpf_map_lookup_elem(&syn_slots, &index);
	if (!slot)
		return -1;
	/* One load, as it was written with one store: never a torn mix. */
	seen.word = *(volatile __u64 *)slot;
	if (seen.slot.fingerprint != query->fingerprint)
		return -1;
	*retransmission = (__u8)(syn_stamp(query->now_ns) - seen.slot.stamp) < SYN_RETRANSMIT_STAMPS;
	return backend_index_of(fe, seen.slot.backend_port, seen.slot.backend_index);
}

/*
 * For a SYN: the backend of the SYN it repeats (same flow key, less than
 * 3 s ago), or -1. Sets the query's slot for syn_slot_record().
 */
static __always_inline int tcp_syn_retransmission_backend(const struct portmux_frontend *fe,
							  struct tcp_affinity_query *query)
{
	bool retransmission = false;
	int choice;

	choice = syn_slot_backend(fe, query, &retransmission);
	return retransmission ? choice : -1;
}

/* Records that the SYN of the query went to backend_index (after tcp_syn_retransmission_backend). */
static __always_inline void syn_slot_record(const struct portmux_frontend *fe,
					    const struct tcp_affinity_query *query,
					    int backend_index)
{
	__u32 index = query->slot_index;
	__u64 *slot = bpf_map_lookup_elem(&syn_slots, &index);
	union syn_slot_word fresh = {
		.slot = {
			.fingerprint = query->fingerprint,
			.backend_port = fe->backends[verifier_bound(backend_index,
								    PORTMUX_MAX_BACKENDS - 1)],
			.backend_index = (__u8)backend_index,
			.stamp = syn_stamp(query->now_ns),
		},
	};

	if (slot)
		*(volatile __u64 *)slot = fresh.word;
}

/* The IPv4 or IPv6 header bpf_tcp_check_syncookie reads: version and addresses. */
union tcp_cookie_ip_header {
	struct iphdr ip4;
	struct ipv6hdr ip6;
};

/*
 * The index of the backend whose socket table holds the query's
 * connection, or -1: one lookup per backend port, in order.
 */
static __always_inline int tcp_socket_backend(struct xdp_md *ctx,
					      const struct portmux_frontend *fe,
					      struct tcp_affinity_query *query)
{
	struct bpf_sock_tuple tuple = {};
	union tcp_cookie_ip_header ip = {};
	bool ipv6 = query->key.family == 6;
	bool cookie_ack = query->tcp.ack && !query->tcp.syn && !query->tcp.rst;
	__u32 count = fe->backend_count;

	if (ipv6) {
		__builtin_memcpy(tuple.ipv6.saddr, query->key.client_addr, 16);
		__builtin_memcpy(tuple.ipv6.daddr, query->host_addr, 16);
		tuple.ipv6.sport = query->key.client_port;
		ip.ip6.version = 6;
		__builtin_memcpy(&ip.ip6.saddr, query->key.client_addr, 16);
		__builtin_memcpy(&ip.ip6.daddr, query->host_addr, 16);
	} else {
		tuple.ipv4.saddr = query->key.client_addr[0];
		tuple.ipv4.daddr = query->host_addr[0];
		tuple.ipv4.sport = query->key.client_port;
		ip.ip4.version = 4;
		ip.ip4.ihl = 5;
		ip.ip4.saddr = query->key.client_addr[0];
		ip.ip4.daddr = query->host_addr[0];
	}
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < PORTMUX_MAX_BACKENDS; i++) {
		struct bpf_sock *sk;
		__be16 port;
		bool owns = false;

		if (i >= count)
			break;
		port = fe->backends[i];
		if (ipv6) {
			tuple.ipv6.dport = port;
			sk = bpf_skc_lookup_tcp(ctx, &tuple, sizeof(tuple.ipv6), BPF_F_CURRENT_NETNS, 0);
		} else {
			tuple.ipv4.dport = port;
			sk = bpf_skc_lookup_tcp(ctx, &tuple, sizeof(tuple.ipv4), BPF_F_CURRENT_NETNS, 0);
		}
		if (!sk)
			continue;
		if (sk->state != PORTMUX_TCP_LISTEN) {
			/* Established, closing, time-wait, or a request socket of a handshake. */
			owns = true;
		} else if (cookie_ack) {
			/* The cookie hashes the backend's port: check it as the backend saw it. */
			query->tcp.dest = port;
			owns = bpf_tcp_check_syncookie(sk, &ip, ipv6 ? sizeof(ip.ip6) : sizeof(ip.ip4),
						       &query->tcp, sizeof(query->tcp)) == 0;
		}
		bpf_sk_release(sk);
		if (owns)
			return i;
	}
	return -1;
}

/*
 * For a segment the flow table does not know, or an ICMP error about such a
 * connection's reply: the backend its SYN's slot names (whatever its age: a
 * slot keeps the last SYN of its flow key, and another key's SYN only
 * overwrites it), else the one whose socket table holds the connection; -1
 * when none does (query->hash is set either way). A global function: the
 * verifier checks it once, not once per caller and parse.
 */
__noinline int tcp_connection_backend(struct xdp_md *ctx, const struct portmux_frontend *fe,
				      struct tcp_affinity_query *query)
{
	bool retransmission = false;
	int choice;

	if (!ctx || !fe || !query)
		return -1;
	choice = syn_slot_backend(fe, query, &retransmission);
	if (choice >= 0)
		return choice;
	return tcp_socket_backend(ctx, fe, query);
}

/* Copies what the functions above need of the segment, beside its key, into the query. */
static __always_inline void tcp_query_copy_segment(struct tcp_affinity_query *query,
						   const struct l4_packet *pkt)
{
	struct iphdr *ip4 = pkt->ip4;
	struct ipv6hdr *ip6 = pkt->ip6;

	/* Test the very pointers used below: the compiler may otherwise test a
	 * copy whose relation to them the verifier does not know. */
	asm volatile("" : "+r"(ip4), "+r"(ip6));
	if (ip4)
		query->host_addr[0] = ip4->daddr;
	else if (ip6)
		__builtin_memcpy(query->host_addr, &ip6->daddr, sizeof(query->host_addr));
	__builtin_memcpy(&query->tcp, pkt->l4, sizeof(query->tcp));
}

/*
 * TC egress, for a SYN-ACK that backend port `backend` sends on behalf of
 * frontend port `frontend` (reply_key: the reply's key, reply_key_for_reply()).
 * The SYN-ACK proves where the connection's SYN went, so a flow entry of the
 * same addresses and ports that names another backend belongs to an older
 * connection, and goes: the client's ACK, which it sends only once this
 * SYN-ACK reached it, then finds the backend by the SYN's slot or the socket
 * table. An entry younger than the retransmission window is the
 * connection's own: the SYN-ACK answers a duplicate of its SYN that found
 * its slot overwritten and was balanced afresh. The client, connected,
 * answers it with an ACK that follows the entry; the entry stays, and the
 * slot names the entry's backend again, so a segment that finds the entry
 * evicted later is not sent to the backend that took the duplicate.
 */
static __always_inline void retire_stale_flow(const struct portmux_flow_key *reply_key,
					      __be16 frontend, __be16 backend)
{
	struct portmux_flow_key key = *reply_key;
	struct portmux_flow *flow;
	union syn_slot_word restored;
	__u64 now;
	__u64 *slot;
	__u32 index;

	key.service_port = frontend;
	flow = bpf_map_lookup_elem(&flows, &key);
	if (!flow || flow->backend_port == backend)
		return;
	now = bpf_ktime_get_coarse_ns();
	if (now - flow->created_ns >= SYN_RETRANSMIT_WINDOW_NS) {
		bpf_map_delete_elem(&flows, &key);
		return;
	}
	index = flow_hash(&key) & (PORTMUX_SYN_SLOTS - 1);
	restored.slot.fingerprint = flow_hash_seeded(&key, PORTMUX_SYN_FINGERPRINT_SEED) | 1;
	restored.slot.backend_port = flow->backend_port;
	restored.slot.backend_index = (__u8)flow->backend_index;
	restored.slot.stamp = syn_stamp(flow->created_ns);
	slot = bpf_map_lookup_elem(&syn_slots, &index);
	if (slot)
		*(volatile __u64 *)slot = restored.word;
}

#endif /* PORTMUX_TCP_AFFINITY_H */
