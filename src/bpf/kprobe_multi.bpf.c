// SPDX-License-Identifier: GPL-2.0
/* kprobe-multi backend: each program is attached with one multi-kprobe link
 * (fprobe) to every function whose skb is at its position. */
#define IPFT_KPROBE_SEC "kprobe.multi"
#define IPFT_KPROBE_NAME(pos) ipft_kprobe_multi_##pos
#include "kprobe.bpf.h"
