// SPDX-License-Identifier: GPL-2.0
/*
 * tracepoint backend: raw tracepoint programs, one per position of the skb
 * among the tracepoint's arguments. A raw tracepoint does not say which
 * tracepoint fired, so each tracepoint gets its own copy of the program
 * with IPFT_TP_ID_MAGIC replaced by the tracepoint's id (src/backend/clone.rs).
 */
/* Tracepoints pass drop reasons themselves (ipft_raw_tp_kfree_skb). */
#define IPFT_ARG(ctx, n) 0

#include "body.bpf.h"

/* ld_imm64 of this value is patched in every copy; keep in sync with
 * TP_ID_MAGIC in src/backend/tracepoint.rs. */
#define IPFT_TP_ID_MAGIC 0x1badc0de5eed1e55ULL

static __always_inline __u64 ipft_tp_id(void)
{
	__u64 id;

	asm volatile("%0 = 0x1badc0de5eed1e55 ll" : "=r"(id));
	return id;
}

#define IPFT_RAW_TP(pos)                                                                  \
	SEC("raw_tp")                                                                     \
	int ipft_raw_tp_##pos(struct bpf_raw_tracepoint_args *ctx)                        \
	{                                                                                 \
		ipft_trace(ctx, (struct sk_buff *)ctx->args[pos], pos, ipft_tp_id(), -1);           \
		return 0;                                                                 \
	}

IPFT_RAW_TP(0)
IPFT_RAW_TP(1)
IPFT_RAW_TP(2)
IPFT_RAW_TP(3)
IPFT_RAW_TP(4)
IPFT_RAW_TP(5)

/* skb:kfree_skb(skb, location, reason): also records why the kernel dropped
 * the packet (enum skb_drop_reason). */
SEC("raw_tp")
int ipft_raw_tp_kfree_skb(struct bpf_raw_tracepoint_args *ctx)
{
	ipft_trace(ctx, (struct sk_buff *)ctx->args[0], 0, ipft_tp_id(), (__u32)ctx->args[2]);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
