/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The balancer: for a packet addressed to a frontend, apply its payload
 * rules, choose a backend (round robin, flow table, or payload tag) and
 * rewrite the destination port with an incremental checksum fix.
 *
 * balance() is four stages, run in this order on one struct frontend_ctx:
 *
 *   find_frontend()   the frontend the destination port names, and its
 *                     per-CPU state; anything else passes untouched
 *   judge_payload()   the frontend's payload rules (validate, and what a
 *                     route or validate block needs of a first fragment)
 *   choose_backend()  round robin, flow table, client affinity or tag
 *   forward()         the destination port rewritten, the backend counted
 *
 * One return convention for every stage: STAGE_CONTINUE hands the packet to
 * the next stage; any other value is the packet's final XDP action, and a
 * stage that ends a packet with a drop has already counted it under its
 * reason (count_drop()). bench/bpf/ablation.bpf.c times the stages one by
 * one by calling them.
 */
#ifndef PORTMUX_BALANCER_H
#define PORTMUX_BALANCER_H

#include "csum.h"
#include "flow.h"
#include "fragment.h"
#include "icmp.h"
#include "maps.h"
#include "parsing.h"
#include "payload.h"
#include "tcp_affinity.h"
#include "verifier.h"

/* UDP flows refresh their idle clock at most this often: fewer shared writes. */
#define FLOW_REFRESH_NS (1000000000ULL)

/*
 * A choice is a backend index (>= 0) or a drop reason encoded as
 * -1 - reason, so one int carries both.
 */
#define CHOICE_DROP(reason) (-1 - (reason))

/*
 * No backend serves the packet's address family (every one that is not
 * drained is down): the packet passes unrewritten, so the kernel answers
 * as for a closed port (ICMP port unreachable, RST), counted as no_backend.
 */
#define CHOICE_UNREACHABLE CHOICE_DROP(PORTMUX_DROP_REASONS)

static __always_inline __u32 choice_drop_reason(int choice)
{
	return (__u32)(-1 - choice);
}

/* A stage's verdict that is no XDP action (all of which are >= 0). */
#define STAGE_CONTINUE (-1)

/* What the stages of balance() found so far. */
struct frontend_ctx {
	struct xdp_md *xdp;
	struct portmux_frontend *frontend;     /* find_frontend() */
	struct portmux_frontend_state *state;  /* find_frontend() */
	struct l4_packet *pkt;
	struct l4_payload payload;             /* judge_payload() */
	__u32 backend;                         /* choose_backend(): an index below backend_count */
};

/*
 * PORTMUX_FAMILY_V4 or _V6. Derived where needed rather than stored in
 * frontend_ctx: a constant kept on the stack from the parse on would split
 * every verifier state after it in two.
 */
static __always_inline __u32 packet_family(const struct l4_packet *pkt)
{
	return pkt->ip6 ? PORTMUX_FAMILY_V6 : PORTMUX_FAMILY_V4;
}

static __always_inline bool backend_down(const struct portmux_frontend *fe, __u32 family,
					 int index)
{
	return (fe->down_mask[verifier_bound(family, PORTMUX_FAMILIES - 1)] >>
		verifier_bound(index, PORTMUX_MAX_BACKENDS - 1)) & 1;
}

/* Why a family's order is empty: only drains (drop) or dead sockets (pass). */
static __always_inline int empty_order_choice(const struct portmux_frontend *fe, __u32 family)
{
	if (fe->down_mask[verifier_bound(family, PORTMUX_FAMILIES - 1)])
		return CHOICE_UNREACHABLE;
	return CHOICE_DROP(PORTMUX_DROP_NO_BACKEND);
}

/* The next backend of `family` in round-robin order on this CPU. */
static __always_inline int round_robin_next(const struct portmux_frontend *fe,
					    struct portmux_frontend_state *state, __u32 family)
{
	__u32 length;
	__u32 pos = state->rr_cursor;

	family = verifier_bound(family, PORTMUX_FAMILIES - 1);
	length = fe->rr_length[family];
	if (length == 0 || length > PORTMUX_RR_SLOTS)
		return empty_order_choice(fe, family);
	/* A reload may have shortened the order under an old cursor. */
	if (pos >= length)
		pos = 0;
	state->rr_cursor = pos + 1 < length ? pos + 1 : 0;
	return fe->rr_order[family][verifier_bound(pos, PORTMUX_RR_SLOTS - 1)];
}

/* The next backend of the packet's family in round-robin order on this CPU. */
static __always_inline int pick_round_robin(const struct frontend_ctx *ctx)
{
	return round_robin_next(ctx->frontend, ctx->state, packet_family(ctx->pkt));
}

/* A stable backend of `family` for a flow the table does not know. */
static __always_inline int hashed_backend(const struct portmux_frontend *fe, __u32 family,
					  __u32 hash)
{
	__u32 length;

	family = verifier_bound(family, PORTMUX_FAMILIES - 1);
	length = fe->rr_length[family];
	if (length == 0 || length > PORTMUX_RR_SLOTS)
		return empty_order_choice(fe, family);
	return fe->rr_order[family][verifier_bound(hash % length, PORTMUX_RR_SLOTS - 1)];
}

/*
 * The backend index a known flow maps to under the current config, or -1
 * when its backend has left the config. Drained backends stay in
 * backends[], so their flows carry on.
 */
static __always_inline int resolve_flow(const struct portmux_frontend *fe,
					struct portmux_flow *flow)
{
	if (flow->generation == fe->generation)
		return flow->backend_index < PORTMUX_MAX_BACKENDS ? flow->backend_index : -1;
#pragma unroll
	for (__u32 i = 0; i < PORTMUX_MAX_BACKENDS; i++) {
		if (i >= fe->backend_count)
			break;
		if (fe->backends[i] == flow->backend_port) {
			flow->backend_index = i;
			flow->generation = fe->generation;
			return i;
		}
	}
	return -1;
}

static __always_inline __be16 backend_port(const struct portmux_frontend *fe, int index)
{
	return fe->backends[verifier_bound(index, PORTMUX_MAX_BACKENDS - 1)];
}

/*
 * A balanced connection or flow from a client port that earlier talked to
 * `backend` directly: its replies must be translated again, so the
 * exception goes (looked up first: the common case has none, and a delete
 * takes the LRU's lock).
 */
static __always_inline void retire_direct_client(const struct portmux_flow_key *flow_key,
						 __be16 backend)
{
	struct portmux_flow_key key;

	direct_client_key(&key, flow_key, backend);
	if (is_direct_client(&key))
		bpf_map_delete_elem(&direct_clients, &key);
}

/*
 * Flow ages need seconds, not nanoseconds: the coarse clock (jiffies
 * resolution) costs a fraction of bpf_ktime_get_ns().
 */
static __always_inline __u64 flow_clock_ns(void)
{
	return bpf_ktime_get_coarse_ns();
}

static __always_inline void store_flow(const struct portmux_frontend *fe,
				       const struct portmux_flow_key *key, int index,
				       __u64 now)
{
	struct portmux_flow flow = {
		.backend_port = backend_port(fe, index),
		.backend_index = index,
		.generation = fe->generation,
		.created_ns = now,
		.last_seen_ns = now,
	};

	bpf_map_update_elem(&flows, key, &flow, BPF_ANY);
}

/*
 * The backend of the live `flows` entry `key`, when the backend takes new
 * connections; the entry's idle clock is refreshed at most once a second.
 * -1 when there is none, it has idled out, or its backend is gone or down.
 */
static __always_inline int live_flow_backend(const struct portmux_frontend *fe, __u32 family,
					     const struct portmux_flow_key *key, __u64 now)
{
	struct portmux_flow *entry = bpf_map_lookup_elem(&flows, key);
	__u64 idle_ns = (__u64)fe->flow_idle_seconds * 1000000000ULL;
	int choice;

	if (!entry || (idle_ns && now - entry->last_seen_ns >= idle_ns))
		return -1;
	choice = resolve_flow(fe, entry);
	if (choice < 0 || backend_down(fe, family, choice))
		return -1;
	if (now - entry->last_seen_ns > FLOW_REFRESH_NS)
		entry->last_seen_ns = now;
	return choice;
}

/*
 * "affinity": "client": the backend the client address is on (its entry in
 * `flows` has client port 0), as live_flow_backend() finds it; -1 otherwise.
 */
static __always_inline int client_backend(const struct portmux_frontend *fe, __u32 family,
					  const struct portmux_flow_key *key, __u64 now)
{
	struct portmux_flow_key client = *key;

	client.client_port = 0;
	return live_flow_backend(fe, family, &client, now);
}

/* Puts the client address on backend `index` (client affinity). */
static __always_inline void client_record(const struct portmux_frontend *fe,
					  const struct portmux_flow_key *key, int index, __u64 now)
{
	struct portmux_flow_key client = *key;

	client.client_port = 0;
	store_flow(fe, &client, index, now);
}

/*
 * A SYN takes the next backend, or the one its slot names when it is a
 * retransmission (xdp/tcp_affinity.h). It creates no flow: the segment
 * that completes the handshake does.
 */
static __always_inline int choose_tcp_syn(const struct portmux_frontend *fe,
					  struct portmux_frontend_state *state, __u32 family,
					  struct tcp_affinity_query *query)
{
	int choice = tcp_syn_retransmission_backend(fe, query);
	bool by_client = fe->flags & PORTMUX_F_CLIENT_AFFINITY;

	if (choice < 0 || backend_down(fe, family, choice)) {
		choice = by_client ? client_backend(fe, family, &query->key, query->now_ns) : -1;
		if (choice < 0) {
			choice = round_robin_next(fe, state, family);
			if (choice < 0)
				return choice;
			if (by_client)
				client_record(fe, &query->key, choice, query->now_ns);
		}
		syn_slot_record(fe, query, choice);
	}
	retire_direct_client(&query->key, backend_port(fe, choice));
	return choice;
}

/*
 * TCP: a SYN opens a connection (choose_tcp_syn); every later segment
 * follows the flow table, and one the table does not know (the handshake's
 * last ACK, or an evicted entry) finds its backend by its SYN's slot or in
 * the kernel's socket table, and is recorded. A segment no backend holds
 * goes to a hashed backend, which answers with a reset.
 *
 * A global function: the verifier checks it once, from its arguments,
 * rather than once for every way of parsing a frame that reaches it.
 */
__noinline int choose_tcp_backend(struct xdp_md *xdp, const struct portmux_frontend *fe,
				  struct portmux_frontend_state *state,
				  struct tcp_affinity_query *query)
{
	__u32 family;
	struct portmux_flow *flow;
	int choice;

	if (!xdp || !fe || !state || !query)
		return CHOICE_DROP(PORTMUX_DROP_NO_BACKEND);
	family = query->key.family == 6 ? PORTMUX_FAMILY_V6 : PORTMUX_FAMILY_V4;
	/* A SYN reads no flow entry: with a million flows in the table that
	 * lookup made a SYN cost 1.5-2x as much (docs/benchmarks.md). An older
	 * connection's entry on the same addresses and ports is retired by the
	 * new connection's SYN-ACK, at TC egress (retire_stale_flow()). */
	if (query->tcp.syn && !query->tcp.ack) {
		query->now_ns = flow_clock_ns();
		return choose_tcp_syn(fe, state, family, query);
	}
	/* The established path reads no clock. */
	flow = bpf_map_lookup_elem(&flows, &query->key);
	if (flow) {
		choice = resolve_flow(fe, flow);
		/* An established connection stays even on a backend gone down:
		 * its socket may outlive the listener. */
		if (choice >= 0) {
			/* A client with a connection open is active: keep its address's entry. */
			if (fe->flags & PORTMUX_F_CLIENT_AFFINITY)
				client_backend(fe, family, &query->key, flow_clock_ns());
			return choice;
		}
	}
	query->now_ns = flow_clock_ns();
	choice = tcp_connection_backend(xdp, fe, query);
	if (choice >= 0) {
		store_flow(fe, &query->key, choice, query->now_ns);
		return choice;
	}
	return hashed_backend(fe, family, query->hash);
}

static __always_inline int choose_tcp(const struct frontend_ctx *ctx)
{
	struct tcp_affinity_query query = {};

	request_flow_key(&query.key, ctx->pkt);
	tcp_query_copy_segment(&query, ctx->pkt);
	return choose_tcp_backend(ctx->xdp, ctx->frontend, ctx->state, &query);
}

/*
 * UDP with flow affinity: a client (address and port) sticks to its backend
 * until it idles out. With client affinity the entry is the client
 * address's (client port 0), shared by all its ports. A global function,
 * verified once rather than for every way of parsing a frame.
 */
__noinline int choose_udp_affinity_backend(const struct portmux_frontend *fe,
					   struct portmux_frontend_state *state,
					   const struct portmux_flow_key *key)
{
	struct portmux_flow_key affinity_key;
	__u32 family;
	__u64 now;
	int choice;

	if (!fe || !state || !key)
		return CHOICE_DROP(PORTMUX_DROP_NO_BACKEND);
	family = key->family == 6 ? PORTMUX_FAMILY_V6 : PORTMUX_FAMILY_V4;
	now = flow_clock_ns();
	affinity_key = *key;
	if (fe->flags & PORTMUX_F_CLIENT_AFFINITY)
		affinity_key.client_port = 0;
	/* A client of a backend gone down moves to a live one. */
	choice = live_flow_backend(fe, family, &affinity_key, now);
	if (choice >= 0)
		return choice;
	choice = round_robin_next(fe, state, family);
	if (choice >= 0) {
		store_flow(fe, &affinity_key, choice, now);
		if (!(fe->flags & PORTMUX_F_NO_REPLIES))
			retire_direct_client(key, backend_port(fe, choice));
	}
	return choice;
}

static __always_inline int choose_udp_flow(const struct frontend_ctx *ctx)
{
	struct portmux_flow_key key = {};

	request_flow_key(&key, ctx->pkt);
	return choose_udp_affinity_backend(ctx->frontend, ctx->state, &key);
}

_Static_assert(PORTMUX_MAX_TAG_LEN == 16, "the tag mask below shifts by 4");

/* UDP routed by a payload tag; unknown tags drop or fall back to round robin. */
static __always_inline int choose_by_tag(const struct frontend_ctx *ctx,
					 const struct l4_payload *payload)
{
	const struct portmux_frontend *fe = ctx->frontend;
	/* Routes of this very config buffer: written before the flip to it,
	 * removed only after a grace period once no ports entry points here. */
	struct portmux_route_key key = { .config = fe->config_index };
	struct portmux_route_target *target;

	__u32 length = fe->route.tag_length;

	if (!read_payload_window(ctx->xdp, payload, fe->route.tag_offset, length, key.tag))
		return CHOICE_DROP(PORTMUX_DROP_TOO_SHORT);
	/* Route keys hold the tag right-aligned, zero before it: clear the
	 * window bytes in front of the tag without a branch per byte. */
#pragma unroll
	for (__u32 i = 0; i < PORTMUX_MAX_TAG_LEN; i++)
		key.tag[i] &= (__u8)-(__u8)((i + length) >> 4);
	target = bpf_map_lookup_elem(&routes, &key);
	if (target) {
		/* Resolved by backend identity, as flows are. */
		if (target->backend_index >= PORTMUX_MAX_BACKENDS ||
		    target->backend_index >= fe->backend_count ||
		    fe->backends[verifier_bound(target->backend_index, PORTMUX_MAX_BACKENDS - 1)] !=
			    target->backend_port)
			return CHOICE_DROP(PORTMUX_DROP_NO_BACKEND);
		if (backend_down(fe, packet_family(ctx->pkt), target->backend_index))
			return CHOICE_UNREACHABLE;
		return target->backend_index;
	}
	if (fe->flags & PORTMUX_F_ROUTE_UNKNOWN_RR)
		return pick_round_robin(ctx);
	return CHOICE_DROP(PORTMUX_DROP_UNKNOWN_TAG);
}

/* UDP per packet: round robin, or the tag when the frontend routes. */
static __always_inline int choose_udp_packet(const struct frontend_ctx *ctx,
					     const struct l4_payload *payload)
{
	if (ctx->frontend->flags & PORTMUX_F_ROUTE)
		return choose_by_tag(ctx, payload);
	return pick_round_robin(ctx);
}

static __always_inline void rewrite_dest_port(struct l4_packet *pkt, __be16 port)
{
	if (pkt->l4_proto == IPPROTO_UDP) {
		struct udphdr *udp = pkt->l4;

		udp->check = udp_csum_replace16(udp->check, udp->dest, port);
		udp->dest = port;
	} else {
		struct tcphdr *tcp = pkt->l4;

		tcp->check = csum_replace16(tcp->check, tcp->dest, port);
		tcp->dest = port;
	}
}

static __always_inline int count_drop(struct portmux_frontend_state *state, __u32 reason)
{
	if (reason >= PORTMUX_DROP_REASONS)
		reason = PORTMUX_DROP_NO_BACKEND;
	state->drops[verifier_bound(reason, 7)]++;
	return XDP_DROP;
}

/*
 * A client that talks to a backend port directly (a health check, say, or
 * an admin) must get the backend's replies unchanged: it becomes an
 * exception to reply translation. Every packet it sends refreshes the
 * exception (a lookup marks it recently used in the LRU) or puts back one
 * the LRU evicted. Nothing for a backend whose replies are not translated.
 */
static __always_inline void note_direct_client(const struct l4_packet *pkt,
					       const struct portmux_port *port)
{
	struct portmux_flow_key key = {};
	struct portmux_direct_client seen = { .seen = 1 };
	__u32 *port_seen;

	if (!reply_port_of(port))
		return;
	request_flow_key(&key, pkt);
	/* The port's flag first: TC looks for the exception only once it is set. */
	port_seen = direct_port_word(&key);
	if (port_seen && !*port_seen)
		*port_seen = 1;
	if (!is_direct_client(&key))
		bpf_map_update_elem(&direct_clients, &key, &seen, BPF_ANY);
}

/* The `ports` entry of the packet's destination; NULL only on a map error. */
static __always_inline struct portmux_port *destination_port(const struct l4_packet *pkt)
{
	return port_entry(pkt->l4_proto, l4_ports(pkt)->dest);
}

/*
 * Stage 1: the frontend of the packet's destination port, and its per-CPU
 * state. A port that is nobody's passes the packet untouched (one array
 * lookup); a backend port passes it after noting a direct client.
 */
static __always_inline int find_frontend(struct frontend_ctx *ctx)
{
	struct l4_packet *pkt = ctx->pkt;
	struct portmux_port *port;
	__u32 slot;

	port = destination_port(pkt);
	if (!port || !port->flags)
		return XDP_PASS;
	if (!(port->flags & PORTMUX_PORT_FRONTEND)) {
		note_direct_client(pkt, port);
		return XDP_PASS;
	}
	ctx->frontend = frontend_config(port, pkt->l4_proto, l4_ports(pkt)->dest);
	if (!ctx->frontend)
		return XDP_PASS; /* caught mid-reload: treated as not ours */
	slot = ctx->frontend->slot;
	ctx->state = bpf_map_lookup_elem(&frontend_state, &slot);
	if (!ctx->state)
		return XDP_PASS;
	ctx->state->received++;
	return STAGE_CONTINUE;
}

/*
 * Stage 2: the frontend's payload rules. A payload the parser could not
 * place fails a validate or route frontend as too short, unless it is a
 * first fragment, judged by its UDP length and its own bytes.
 */
static __always_inline int judge_payload(struct frontend_ctx *ctx)
{
	const struct portmux_frontend *fe = ctx->frontend;
	bool placed = payload_of(ctx->pkt, &ctx->payload);

	if (!placed) {
		int present = locate_first_fragment(ctx->pkt, &ctx->payload);

		if (present >= 0) {
			if (fragment_hides_rules(fe, &ctx->payload, present))
				return count_drop(ctx->state, PORTMUX_DROP_BEYOND_FIRST_FRAGMENT);
			placed = true;
		}
	}
	if (!placed && (fe->flags & (PORTMUX_F_VALIDATE | PORTMUX_F_ROUTE)))
		return count_drop(ctx->state, PORTMUX_DROP_TOO_SHORT);
	/* TCP segments without payload (SYN, pure ACK, FIN) are never judged. */
	if ((fe->flags & PORTMUX_F_VALIDATE) &&
	    (ctx->pkt->l4_proto == IPPROTO_UDP || ctx->payload.length > 0)) {
		int reason = validate_payload(ctx->xdp, &fe->validation, &ctx->payload);

		if (reason >= 0)
			return count_drop(ctx->state, reason);
	}
	return STAGE_CONTINUE;
}

/*
 * Stage 3: the backend, by the frontend's protocol and affinity. No backend
 * for the packet's family (all down) passes it unrewritten, counted as
 * no_backend, so the kernel answers as for a closed port.
 */
static __always_inline int choose_backend(struct frontend_ctx *ctx)
{
	int choice;

	if (ctx->pkt->l4_proto == IPPROTO_TCP)
		choice = choose_tcp(ctx);
	else if (ctx->frontend->flags & (PORTMUX_F_FLOW_AFFINITY | PORTMUX_F_CLIENT_AFFINITY))
		choice = choose_udp_flow(ctx);
	else
		choice = choose_udp_packet(ctx, &ctx->payload);

	if (choice == CHOICE_UNREACHABLE) {
		ctx->state->drops[PORTMUX_DROP_NO_BACKEND]++;
		return XDP_PASS;
	}
	if (choice < 0)
		return count_drop(ctx->state, choice_drop_reason(choice));
	if (choice >= ctx->frontend->backend_count || choice >= PORTMUX_MAX_BACKENDS)
		return count_drop(ctx->state, PORTMUX_DROP_NO_BACKEND);
	ctx->backend = choice;
	return STAGE_CONTINUE;
}

/* Stage 4: the destination port becomes the backend's; the backend is counted. */
static __always_inline int forward(struct frontend_ctx *ctx)
{
	const struct portmux_frontend *fe = ctx->frontend;
	__u32 backend = verifier_bound(ctx->backend, PORTMUX_MAX_BACKENDS - 1);
	__u32 counter;

	rewrite_dest_port(ctx->pkt, fe->backends[backend]);
	/* The backend's own counter slot: it keeps it while it stays in the config. */
	counter = fe->counter_slots[backend] & (PORTMUX_COUNTER_SLOTS - 1);
	ctx->state->backends[counter].packets++;
	ctx->state->backends[counter].bytes += ctx->pkt->data_end - (void *)(long)ctx->xdp->data;
	return XDP_PASS;
}

/*
 * Balances one UDP or TCP packet; returns the XDP action. The frame has
 * passed parse_l4(); balance_frame() below is the whole program.
 */
static __always_inline int balance(struct xdp_md *xdp, struct l4_packet *pkt)
{
	struct frontend_ctx ctx = { .xdp = xdp, .pkt = pkt };
	int verdict;

	verdict = find_frontend(&ctx);
	if (verdict != STAGE_CONTINUE)
		return verdict;
	verdict = judge_payload(&ctx);
	if (verdict != STAGE_CONTINUE)
		return verdict;
	verdict = choose_backend(&ctx);
	if (verdict != STAGE_CONTINUE)
		return verdict;
	return forward(&ctx);
}

/* balance_parsed_frame()'s answer for a frame that is not UDP or TCP (no XDP action). */
#define PARSED_NOT_UDP_OR_TCP -1

/*
 * Everything after the surely_not_ours() check: the full parse and the
 * balancer. A global BPF function (not static, not inlined), so the verifier
 * checks it once on its own, from its signature, rather than once for every
 * state the check above can leave behind (which took it past 1M steps).
 * Returns an XDP action, or PARSED_NOT_UDP_OR_TCP.
 */
__attribute__((noinline)) int balance_parsed_frame(struct xdp_md *xdp)
{
	void *data = (void *)(long)xdp->data;
	void *data_end = (void *)(long)xdp->data_end;
	struct l4_packet pkt;

	if (parse_l4(data, data_end, &pkt) < 0)
		return PARSED_NOT_UDP_OR_TCP;
	return balance(xdp, &pkt);
}

/*
 * The XDP program. A frame that surely_not_ours() recognises (most traffic)
 * costs a few loads and one array lookup; every other one is parsed in full
 * and balanced.
 */
static __always_inline int balance_frame(struct xdp_md *xdp)
{
	int verdict;

	if (surely_not_ours((void *)(long)xdp->data, (void *)(long)xdp->data_end, PORTS_BY_DEST))
		return XDP_PASS;
	verdict = balance_parsed_frame(xdp);
	/* Not UDP or TCP: maybe an ICMP error about a reply. Looked for here,
	 * not inside balance_parsed_frame(), whose stack frame would then count
	 * toward the ICMP path's (the verifier allows 512 bytes over the frames
	 * of one call chain, and that path reaches the socket-table lookup). */
	if (verdict == PARSED_NOT_UDP_OR_TCP)
		return translate_icmp_error_inbound(xdp);
	return verdict;
}

#endif /* PORTMUX_BALANCER_H */
