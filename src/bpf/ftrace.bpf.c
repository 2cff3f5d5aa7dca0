// SPDX-License-Identifier: GPL-2.0
/*
 * ftrace backend: fentry programs, one per skb parameter position (fentry
 * reads the arguments as an array of u64, up to 12). Each is loaded once by
 * libbpf against a first target; user space then loads copies of its final
 * instructions for every other function at that position (src/backend/clone.rs).
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* Argument n of the traced function; 0 past its last argument.
 * bpf_get_func_arg is Linux 5.17+: on older kernels (fentry since 5.5) the
 * call is left out at load time, and drop reasons are not read. */
static __always_inline __u64 ipft_fentry_arg(void *ctx, int n)
{
	__u64 v = 0;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_func_arg))
		bpf_get_func_arg(ctx, n, &v);
	return v;
}

#define IPFT_ARG(ctx, n) ipft_fentry_arg(ctx, n)

#include "body.bpf.h"
#include "calls.bpf.h"

#define IPFT_FENTRY(pos)                                                                  \
	SEC("fentry")                                                                     \
	int ipft_fentry_##pos(__u64 *ctx)                                                 \
	{                                                                                 \
		struct sk_buff *skb = (struct sk_buff *)ctx[pos];                         \
		__u64 func = bpf_get_func_ip(ctx);                                        \
		__u64 id = ipft_trace(ctx, skb, pos, func, -1);                          \
		struct ipft_call_key key = { bpf_get_current_pid_tgid(), (__u64)skb, func }; \
		if (ipft_config.graph)                                                    \
			ipft_remember(&key, skb, id);                                     \
		return 0;                                                                 \
	}

IPFT_FENTRY(0)
IPFT_FENTRY(1)
IPFT_FENTRY(2)
IPFT_FENTRY(3)
IPFT_FENTRY(4)
IPFT_FENTRY(5)
IPFT_FENTRY(6)
IPFT_FENTRY(7)
IPFT_FENTRY(8)
IPFT_FENTRY(9)
IPFT_FENTRY(10)
IPFT_FENTRY(11)

/* function_graph: fexit programs still see the arguments, and the return
 * value through bpf_get_func_ret (Linux 5.17+). The call is found by the
 * skb it was made with (calls.bpf.h): by the time the function returns, its
 * packet may no longer be tracked (freed inside it). */
#define IPFT_FEXIT(pos)                                                                   \
	SEC("fexit")                                                                      \
	int ipft_fexit_##pos(__u64 *ctx)                                                  \
	{                                                                                 \
		__u64 ret = 0;                                                            \
		struct ipft_call_key key = { bpf_get_current_pid_tgid(), ctx[pos],        \
					     bpf_get_func_ip(ctx) };                      \
		bpf_get_func_ret(ctx, &ret);                                              \
		ipft_return(ctx, &key, ret);                                              \
		return 0;                                                                 \
	}

IPFT_FEXIT(0)
IPFT_FEXIT(1)
IPFT_FEXIT(2)
IPFT_FEXIT(3)
IPFT_FEXIT(4)
IPFT_FEXIT(5)
IPFT_FEXIT(6)
IPFT_FEXIT(7)
IPFT_FEXIT(8)
IPFT_FEXIT(9)
IPFT_FEXIT(10)
IPFT_FEXIT(11)

char LICENSE[] SEC("license") = "GPL";
