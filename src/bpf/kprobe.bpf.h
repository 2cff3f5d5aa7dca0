/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entry programs of the kprobe-family backends: one per skb parameter
 * position. x86_64 passes the first integer parameters in di, si, dx, cx, r8,
 * which is all a kprobe can read. The including file defines IPFT_KPROBE_SEC
 * (section) and IPFT_KPROBE_NAME(pos) (program name).
 */
#include "body.bpf.h"

#define IPFT_KPROBE(pos, reg)                                                               \
	SEC(IPFT_KPROBE_SEC)                                                                \
	int IPFT_KPROBE_NAME(pos)(struct pt_regs *ctx)                                      \
	{                                                                                   \
		return ipft_trace(ctx, (struct sk_buff *)ctx->reg, bpf_get_func_ip(ctx), false, 0); \
	}

IPFT_KPROBE(0, di)
IPFT_KPROBE(1, si)
IPFT_KPROBE(2, dx)
IPFT_KPROBE(3, cx)
IPFT_KPROBE(4, r8)

char LICENSE[] SEC("license") = "GPL";
