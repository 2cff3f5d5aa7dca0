// SPDX-License-Identifier: GPL-2.0
/*
 * kprobe backend: one program per skb parameter position (the x86_64
 * calling convention passes the first parameters in di, si, dx, cx, r8).
 * Each program is loaded once and attached to every function whose skb is at
 * its position.
 */
#include "body.bpf.h"

#define IPFT_KPROBE(pos, reg)                                                             \
	SEC("kprobe")                                                                     \
	int ipft_kprobe_##pos(struct pt_regs *ctx)                                        \
	{                                                                                 \
		return ipft_trace(ctx, (struct sk_buff *)ctx->reg, bpf_get_func_ip(ctx), false, 0); \
	}

IPFT_KPROBE(0, di)
IPFT_KPROBE(1, si)
IPFT_KPROBE(2, dx)
IPFT_KPROBE(3, cx)
IPFT_KPROBE(4, r8)

char LICENSE[] SEC("license") = "GPL";
