/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The stream half of portmux: an sk_skb stream verdict program for TCP
 * frontends routed by their first bytes. User space accepts the client,
 * peeks at its first bytes, connects to the backend it picks and puts both
 * sockets in `stream_sockets`; from then on this program sends every skb
 * received on one socket to the other's send path, and no byte of the
 * stream is copied to user space.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "portmux_shared.h"

/* The spliced sockets, keyed by socket cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, PORTMUX_STREAM_MAX_SOCKETS);
	__type(key, __u64);
	__type(value, __u32);
} stream_sockets SEC(".maps");

/* Each spliced socket's peer and next notification, keyed by cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PORTMUX_STREAM_MAX_SOCKETS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct portmux_stream_peer);
} stream_peers SEC(".maps");

/* Each spliced socket's byte counts, keyed by socket cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PORTMUX_STREAM_MAX_SOCKETS);
	__type(key, __u64);
	__type(value, struct portmux_stream_socket);
} stream_sockets_state SEC(".maps");

/* Bytes each way per (frontend, backend), for stats. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PORTMUX_STREAM_MAX_ROUTES);
	__type(key, struct portmux_stream_route_key);
	__type(value, struct portmux_stream_bytes);
} stream_bytes SEC(".maps");

/* Connection counters, written by user space only (the program never
 * touches them); here so they live and are pinned with the object. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PORTMUX_STREAM_MAX_ROUTES);
	__type(key, struct portmux_stream_route_key);
	__type(value, struct portmux_stream_connections);
} stream_connections SEC(".maps");

/* Cookies of sockets whose redirected bytes reached their notify_at. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} stream_events SEC(".maps");

SEC("sk_skb/stream_verdict")
int portmux_stream_verdict(struct __sk_buff *skb)
{
	struct portmux_stream_socket *self;
	struct portmux_stream_peer *peer;
	struct portmux_stream_bytes *bytes;
	__u64 cookie, peer_cookie, redirected;
	__u32 len = skb->len;

	/*
	 * The end of the stream reaches this program as an skb without data.
	 * Redirected, it would put a broken-pipe error on the peer and stop it
	 * sending; the FIN itself is propagated by user space.
	 */
	if (len == 0)
		return SK_DROP;

	cookie = bpf_get_socket_cookie(skb);
	self = bpf_map_lookup_elem(&stream_sockets_state, &cookie);
	peer = bpf_map_lookup_elem(&stream_peers, &cookie);
	if (!self || !peer)
		return SK_DROP; /* not a socket portmux spliced: cannot happen */

	peer_cookie = peer->peer_cookie;
	/*
	 * Held: no peer yet, user space holds this socket back (its peer reads
	 * too slowly), or bytes passed earlier still wait for user space to
	 * forward them, which a redirect now would overtake. SK_PASS leaves
	 * the data in this socket, charged to its receive buffer, so TCP's
	 * window holds the sender back. Holding never moves the socket between
	 * maps: a socket leaving the verdict map while data arrives loses the
	 * skb the kernel is handing to the program at that moment.
	 */
	if (peer_cookie == 0 || peer->hold || self->passed_bytes != peer->released ||
	    bpf_sk_redirect_hash(skb, &stream_sockets, &peer_cookie, 0) != SK_PASS) {
		__sync_fetch_and_add(&self->passed_bytes, len);
		return SK_PASS;
	}
	redirected = __sync_fetch_and_add(&self->redirected_bytes, len) + len;
	if (redirected >= peer->notify_at &&
	    bpf_ringbuf_output(&stream_events, &cookie, sizeof(cookie), 0) == 0)
		peer->notify_at = ~0ULL; /* once; user space sets the next mark */
	bytes = bpf_map_lookup_elem(&stream_bytes, &self->route);
	if (bytes) {
		if (self->to_backend)
			__sync_fetch_and_add(&bytes->to_backend, len);
		else
			__sync_fetch_and_add(&bytes->to_client, len);
	}
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
