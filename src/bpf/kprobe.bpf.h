/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entry programs of the kprobe-family backends: one per skb parameter
 * position. x86_64 passes the first integer parameters in di, si, dx, cx, r8,
 * which is all a kprobe can read. The including file defines the sections
 * (IPFT_KPROBE_SEC, IPFT_KRETPROBE_SEC) and program names.
 */
#include "body.bpf.h"

#define IPFT_KPROBE(pos, reg)                                                               \
	SEC(IPFT_KPROBE_SEC)                                                                \
	int IPFT_KPROBE_NAME(pos)(struct pt_regs *ctx)                                      \
	{                                                                                   \
		ipft_trace(ctx, (struct sk_buff *)ctx->reg, bpf_get_func_ip(ctx), false, 0);    \
		return 0;                                                                   \
	}

IPFT_KPROBE(0, di)
IPFT_KPROBE(1, si)
IPFT_KPROBE(2, dx)
IPFT_KPROBE(3, cx)
IPFT_KPROBE(4, r8)

/*
 * function_graph: a return probe cannot read the skb any more, so the entry
 * program remembers each call of a marked packet, keyed by task, function
 * and stack pointer at entry (where the return address is). At return the
 * stack pointer is 8 bytes above it, which finds the call again, even when
 * the same function recurses for another packet. The function is part of
 * the key because a tail call (`jmp`) enters the next function with the
 * same stack pointer, and both return at once.
 */
struct ipft_call_key {
	__u64 pid_tgid;
	__u64 sp;
	__u64 func;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ipft_call_key);
	__type(value, __u64);
} ipft_calls SEC(".maps");

#define IPFT_KPROBE_GRAPH(pos, reg)                                                         \
	SEC(IPFT_KPROBE_SEC)                                                                \
	int IPFT_KPROBE_GRAPH_NAME(pos)(struct pt_regs *ctx)                                \
	{                                                                                   \
		struct sk_buff *skb = (struct sk_buff *)ctx->reg;                           \
		__u64 func = bpf_get_func_ip(ctx);                                          \
		struct ipft_call_key key = { bpf_get_current_pid_tgid(), ctx->sp, func };   \
		__u64 packet = (__u64)skb;                                                  \
		if (ipft_trace(ctx, skb, func, false, 0))                                   \
			bpf_map_update_elem(&ipft_calls, &key, &packet, BPF_ANY);           \
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
	__u64 func = bpf_get_func_ip(ctx);
	struct ipft_call_key key = { bpf_get_current_pid_tgid(), ctx->sp - 8, func };
	__u64 *packet = bpf_map_lookup_elem(&ipft_calls, &key);
	struct sk_buff *skb;

	if (!packet)
		return 0;
	skb = (struct sk_buff *)*packet;
	bpf_map_delete_elem(&ipft_calls, &key);
	/* The mark is not checked again: the call belonged to a marked packet. */
	ipft_emit(ctx, skb, func, true, ctx->ax);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
