/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entry programs of the kprobe-family backends: one per skb parameter
 * position. x86_64 passes the first integer parameters in di, si, dx, cx, r8,
 * which is all a kprobe can read. The including file defines the sections
 * (IPFT_KPROBE_SEC, IPFT_KRETPROBE_SEC) and program names.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

/* Argument n of the probed function (x86_64: di, si, dx, cx, r8, r9). */
static __always_inline __u64 ipft_kprobe_arg(struct pt_regs *ctx, int n)
{
	switch (n) {
	case 0: return ctx->di;
	case 1: return ctx->si;
	case 2: return ctx->dx;
	case 3: return ctx->cx;
	case 4: return ctx->r8;
	case 5: return ctx->r9;
	}
	return 0;
}

#define IPFT_ARG(ctx, n) ipft_kprobe_arg((struct pt_regs *)(ctx), n)

#include "body.bpf.h"
#include "calls.bpf.h"

#define IPFT_KPROBE(pos, reg)                                                               \
	SEC(IPFT_KPROBE_SEC)                                                                \
	int IPFT_KPROBE_NAME(pos)(struct pt_regs *ctx)                                      \
	{                                                                                   \
		ipft_trace(ctx, (struct sk_buff *)ctx->reg, pos, bpf_get_func_ip(ctx), -1);           \
		return 0;                                                                   \
	}

IPFT_KPROBE(0, di)
IPFT_KPROBE(1, si)
IPFT_KPROBE(2, dx)
IPFT_KPROBE(3, cx)
IPFT_KPROBE(4, r8)

/*
 * function_graph: a return probe cannot read the skb any more, so the entry
 * program remembers each call of a traced packet (calls.bpf.h), keyed by
 * task, function and stack pointer at entry (where the return address is).
 * At return the stack pointer is 8 bytes above it, which finds the call
 * again, even when the same function recurses for another packet. The
 * function is part of the key because a tail call (`jmp`) enters the next
 * function with the same stack pointer, and both return at once.
 */
#define IPFT_KPROBE_GRAPH(pos, reg)                                                         \
	SEC(IPFT_KPROBE_SEC)                                                                \
	int IPFT_KPROBE_GRAPH_NAME(pos)(struct pt_regs *ctx)                                \
	{                                                                                   \
		struct sk_buff *skb = (struct sk_buff *)ctx->reg;                           \
		__u64 func = bpf_get_func_ip(ctx);                                          \
		struct ipft_call_key key = { bpf_get_current_pid_tgid(), ctx->sp, func };   \
		ipft_remember(&key, skb, ipft_trace(ctx, skb, pos, func, -1));             \
		return 0;                                                                   \
	}

IPFT_KPROBE_GRAPH(0, di)
IPFT_KPROBE_GRAPH(1, si)
IPFT_KPROBE_GRAPH(2, dx)
IPFT_KPROBE_GRAPH(3, cx)
IPFT_KPROBE_GRAPH(4, r8)

SEC(IPFT_KRETPROBE_SEC)
int IPFT_KRETPROBE_NAME(struct pt_regs *ctx)
{
	struct ipft_call_key key = { bpf_get_current_pid_tgid(), ctx->sp - 8, bpf_get_func_ip(ctx) };

	ipft_return(ctx, &key, ctx->ax);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
