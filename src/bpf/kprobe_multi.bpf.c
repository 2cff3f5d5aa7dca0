// SPDX-License-Identifier: GPL-2.0
/* kprobe-multi backend: each program is attached with one multi-kprobe link
 * (fprobe) to every function whose skb is at its position. */
#define IPFT_KPROBE_SEC "kprobe.multi"
#define IPFT_KPROBE_NAME(pos) ipft_kprobe_multi_##pos
#define IPFT_KPROBE_GRAPH_NAME(pos) ipft_kprobe_multi_g_##pos
#define IPFT_KRETPROBE_SEC "kretprobe.multi"
#define IPFT_KRETPROBE_NAME ipft_kretprobe_multi
#include "kprobe.bpf.h"
