/* SPDX-License-Identifier: GPL-2.0 */
/*
 * function_graph's memory of open calls: the entry program of a traced
 * packet's call remembers which packet (skb and id) it was, and the return
 * program finds it again. A return is then shown for every entry shown,
 * even when by the time the function returns the packet is no longer
 * tracked (freed inside the call) or its skb is gone. How a call is keyed
 * depends on what the return program can see (kprobe.bpf.h, ftrace.bpf.c).
 */
#ifndef IPFT_CALLS_BPF_H
#define IPFT_CALLS_BPF_H

struct ipft_call_key {
	__u64 pid_tgid;
	__u64 frame; /* kprobes: stack pointer at entry; fentry: the skb */
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

/* Emits the return of a remembered call and forgets it. */
static __always_inline void ipft_return(void *ctx, struct ipft_call_key *key, __u64 retval)
{
	struct ipft_call *call = bpf_map_lookup_elem(&ipft_calls, key);
	struct ipft_call found;
	struct ipft_emit_args a = { .value = retval, .has_value = true, .flags = IPFT_EV_RETURN };

	if (!call)
		return;
	found = *call;
	bpf_map_delete_elem(&ipft_calls, key);
	/* Not selected again: the call belonged to a traced packet, whose skb
	 * may be gone by now (only its address is reported). */
	ipft_emit(ctx, (struct sk_buff *)found.skb, found.id, key->func, &a);
}

/* Remembers the call `key` of `skb` when it was traced. */
static __always_inline void ipft_remember(struct ipft_call_key *key, struct sk_buff *skb, __u64 id)
{
	struct ipft_call call = { (__u64)skb, id };

	if (id)
		bpf_map_update_elem(&ipft_calls, key, &call, BPF_ANY);
}

#endif
