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

/* The packet a remembered call belongs to. */
struct ipft_call {
	__u64 skb;
	__u64 id;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ipft_call_key);
	__type(value, struct ipft_call);
} ipft_calls SEC(".maps");

#define IPFT_KPROBE_GRAPH(pos, reg)                                                         \
	SEC(IPFT_KPROBE_SEC)                                                                \
	int IPFT_KPROBE_GRAPH_NAME(pos)(struct pt_regs *ctx)                                \
	{                                                                                   \
		struct sk_buff *skb = (struct sk_buff *)ctx->reg;                           \
		__u64 func = bpf_get_func_ip(ctx);                                          \
		struct ipft_call_key key = { bpf_get_current_pid_tgid(), ctx->sp, func };   \
		struct ipft_call call = { (__u64)skb, 0 };                                  \
		call.id = ipft_trace(ctx, skb, func, false, 0);                             \
		if (call.id)                                                                \
			bpf_map_update_elem(&ipft_calls, &key, &call, BPF_ANY);             \
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
	struct ipft_call *call = bpf_map_lookup_elem(&ipft_calls, &key);
	struct ipft_call found;

	if (!call)
		return 0;
	found = *call;
	bpf_map_delete_elem(&ipft_calls, &key);
	/* Not selected again: the call belonged to a traced packet, whose skb
	 * may be gone by now (only its address is reported). */
	ipft_emit(ctx, (struct sk_buff *)found.skb, found.id, func, true, ctx->ax);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
