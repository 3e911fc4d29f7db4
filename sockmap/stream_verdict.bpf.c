/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The stream half of portmux: an sk_skb stream verdict program for TCP
 * frontends routed by their first bytes. User space accepts the client,
 * reads its first bytes, connects to the backend it picks, writes them to
 * it and puts both sockets in `stream_sockets`; from then on this program
 * sends every skb received on one socket to the other's send path, and no
 * further byte of the stream is copied to user space.
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

/*
 * The kernel's view of the skb, for its TCP sequence number: the first
 * field of the TCP control block in skb->cb (struct tcp_skb_cb); and of its
 * socket, for the sequence number up to which the socket's bytes were read.
 */
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;
struct sock;
struct sk_buff___portmux {
	struct sock *sk;
	char cb[48];
} __attribute__((preserve_access_index));
struct tcp_sock___portmux {
	__u32 copied_seq;
} __attribute__((preserve_access_index));

/* sk_skb's bpf_skb_adjust_room() removes at most this many bytes a call. */
#define TRIM_STEP 4095
/* Enough steps for any skb the receive path builds (17 frags of 32 KiB). */
#define TRIM_STEPS 160

/*
 * Bytes at the head of SKB that the program already handed on.
 *
 * TCP queues a segment whose head overlaps bytes already received (a
 * retransmission cut differently from the original, seq < rcv_nxt <
 * end_seq) whole, and leaves it to the reader to skip the overlap by
 * copied_seq. The verdict path (tcp_read_skb) hands every skb on whole,
 * so without this the overlap reaches the peer a second time: seen on
 * kernel 6.18 under load as one or two 64 KiB segments repeated in a
 * 1 GiB stream (docs/design.md, "Retransmitted overlaps").
 */
static __always_inline __u32 already_handed_on(struct __sk_buff *skb,
					       struct portmux_stream_socket *self,
					       __u32 len)
{
	struct sk_buff___portmux *kernel_skb = bpf_cast_to_kern_ctx(skb);
	__u32 seq, old = 0;
	__s32 before;

	if (bpf_probe_read_kernel(&seq, sizeof(seq), &kernel_skb->cb[0]) != 0)
		return 0;
	/*
	 * The first skb: the socket's bytes before it were read by user space
	 * (the client's first bytes, which the router writes to the backend
	 * itself), up to copied_seq, which the verdict path only moves past an
	 * skb after this program has judged it.
	 */
	if (!self->seq_known) {
		struct tcp_sock___portmux *tcp;
		__u32 copied;

		if (bpf_probe_read_kernel(&tcp, sizeof(tcp), &kernel_skb->sk) == 0 && tcp &&
		    bpf_probe_read_kernel(&copied, sizeof(copied), &tcp->copied_seq) == 0) {
			self->next_seq = copied;
			self->seq_known = 1;
		}
	}
	if (self->seq_known) {
		before = (__s32)(self->next_seq - seq);
		if (before > 0)
			old = (__u32)before;
	}
	/* The data (not a FIN) of this skb ends at seq + len. */
	if (!self->seq_known || (__s32)(seq + len - self->next_seq) > 0)
		self->next_seq = seq + len;
	self->seq_known = 1;
	return old;
}

/* Removes OLD bytes from the head of SKB; 0 if the kernel refused. */
static __always_inline int trim_head(struct __sk_buff *skb, __u32 old)
{
	for (int step = 0; step < TRIM_STEPS && old > 0; step++) {
		__u32 cut = old < TRIM_STEP ? old : TRIM_STEP;

		if (bpf_skb_adjust_room(skb, -(__s32)cut, 0, 0) != 0)
			return 0;
		old -= cut;
	}
	return old == 0;
}

SEC("sk_skb/stream_verdict")
int portmux_stream_verdict(struct __sk_buff *skb)
{
	struct portmux_stream_socket *self;
	struct portmux_stream_peer *peer;
	struct portmux_stream_bytes *bytes;
	__u64 cookie, peer_cookie, redirected;
	__u32 len = skb->len, old;

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

	bytes = bpf_map_lookup_elem(&stream_bytes, &self->route);
	old = already_handed_on(skb, self, len);
	if (old > 0) {
		if (bytes)
			__sync_fetch_and_add(&bytes->overlaps_trimmed, 1);
		if (old >= len || !trim_head(skb, old))
			return SK_DROP; /* no new byte; or (out of memory) it could
					 * not be cut, and a gap is no worse than a
					 * repeat: both break the stream */
		len = skb->len;
	}

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
	if (bytes) {
		if (self->to_backend)
			__sync_fetch_and_add(&bytes->to_backend, len);
		else
			__sync_fetch_and_add(&bytes->to_client, len);
	}
	return SK_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
