/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * portmux's UDP path taken apart, to attribute its per-packet cost where
 * bpftool prog profile cannot (no hardware counters in a VM). Each program
 * runs one more of balance()'s stages (xdp/balancer.h) than the one before,
 * by calling them, with the data path's own map definitions (this object
 * gets its own copies of the maps; the benchmark programs them with
 * write_config):
 *
 *   abl_parse    parse_l4() only
 *   abl_lookup   + find_frontend(): the ports and frontend_configs lookups
 *                  and the per-CPU state lookup
 *   abl_rewrite  + choose_backend() and forward(): round robin, port rewrite
 *                  with checksum fix, counters (all but judge_payload(), which
 *                  a frontend without payload rules passes at once)
 *   abl_full     balance_frame() as portmux_xdp runs it (adds the early
 *                  not-ours check and judge_payload())
 *
 * Each returns XDP_DROP where a stage ends the packet, so no stage can be
 * optimised away as dead code.
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

/* parse_l4() and find_frontend(): STAGE_CONTINUE when both took the packet. */
static __always_inline int parse_and_find(struct xdp_md *ctx, struct l4_packet *pkt,
					  struct frontend_ctx *fctx)
{
	if (parse_l4((void *)(long)ctx->data, (void *)(long)ctx->data_end, pkt) < 0)
		return XDP_DROP;
	fctx->xdp = ctx;
	fctx->pkt = pkt;
	return find_frontend(fctx);
}

SEC("xdp")
int abl_lookup(struct xdp_md *ctx)
{
	struct l4_packet pkt;
	struct frontend_ctx fctx = {};

	return parse_and_find(ctx, &pkt, &fctx) == STAGE_CONTINUE ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int abl_rewrite(struct xdp_md *ctx)
{
	struct l4_packet pkt;
	struct frontend_ctx fctx = {};

	if (parse_and_find(ctx, &pkt, &fctx) != STAGE_CONTINUE ||
	    choose_backend(&fctx) != STAGE_CONTINUE)
		return XDP_DROP;
	return forward(&fctx);
}

SEC("xdp")
int abl_full(struct xdp_md *ctx)
{
	return balance_frame(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
