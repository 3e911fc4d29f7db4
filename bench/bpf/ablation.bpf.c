/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * portmux's UDP path taken apart, to attribute its per-packet cost where
 * bpftool prog profile cannot (no hardware counters in a VM). Each program
 * adds one stage of xdp/balancer.h to the one before, using the data path's
 * own inline functions and map definitions (this object gets its own copies
 * of the maps; the benchmark programs them with write_config):
 *
 *   abl_parse    parse_l4() only
 *   abl_lookup   + the ports and frontend_configs lookups and the per-CPU state lookup
 *   abl_rewrite  + round robin, port rewrite with checksum fix, counters
 *                  (everything but payload location and reply tracking)
 *   abl_full     balance() as portmux_xdp runs it (adds remember_reply)
 *
 * Each returns XDP_DROP where a stage fails, so no stage can be optimised
 * away as dead code.
 */
#include "balancer.h"

SEC("xdp")
int abl_parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct l4_packet pkt;

	if (parse_l4(data, data_end, &pkt) < 0)
		return XDP_DROP;
	return XDP_PASS;
}

static __always_inline int lookup_stage(struct xdp_md *ctx, struct l4_packet *pkt,
					struct frontend_ctx *fctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct portmux_port *port;
	__u32 slot;

	if (parse_l4(data, data_end, pkt) < 0)
		return -1;
	fctx->xdp = ctx;
	fctx->pkt = pkt;
	port = destination_port(pkt);
	if (!port)
		return -1;
	fctx->frontend = frontend_config(port, pkt->l4_proto, l4_ports(pkt)->dest);
	if (!fctx->frontend)
		return -1;
	slot = fctx->frontend->slot;
	fctx->state = bpf_map_lookup_elem(&frontend_state, &slot);
	if (!fctx->state)
		return -1;
	fctx->state->received++;
	return 0;
}

SEC("xdp")
int abl_lookup(struct xdp_md *ctx)
{
	struct l4_packet pkt;
	struct frontend_ctx fctx;

	return lookup_stage(ctx, &pkt, &fctx) < 0 ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int abl_rewrite(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	struct l4_packet pkt;
	struct frontend_ctx fctx;
	int choice;

	if (lookup_stage(ctx, &pkt, &fctx) < 0)
		return XDP_DROP;
	choice = pick_round_robin(&fctx);
	if (choice < 0 || choice >= fctx.frontend->backend_count || choice >= PORTMUX_MAX_BACKENDS)
		return XDP_DROP;
	rewrite_dest_port(&pkt, fctx.frontend->backends[choice]);
	fctx.state->backends[choice].packets++;
	fctx.state->backends[choice].bytes += pkt.data_end - data;
	return XDP_PASS;
}

SEC("xdp")
int abl_full(struct xdp_md *ctx)
{
	return balance_frame(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
