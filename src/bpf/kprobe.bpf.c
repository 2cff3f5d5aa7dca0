// SPDX-License-Identifier: GPL-2.0
/* kprobe backend: each program is attached by address to every function
 * whose skb is at its position, one kprobe per function. */
#define IPFT_KPROBE_SEC "kprobe"
#define IPFT_KPROBE_NAME(pos) ipft_kprobe_##pos
#define IPFT_KPROBE_GRAPH_NAME(pos) ipft_kprobe_g_##pos
#define IPFT_KRETPROBE_SEC "kretprobe"
#define IPFT_KRETPROBE_NAME ipft_kretprobe
#include "kprobe.bpf.h"
