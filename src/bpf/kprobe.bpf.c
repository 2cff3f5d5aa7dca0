// SPDX-License-Identifier: GPL-2.0
/* kprobe backend: each program is attached by address to every function
 * whose skb is at its position, one kprobe per function. */
#define IPFT_KPROBE_SEC "kprobe"
#define IPFT_KPROBE_NAME(pos) ipft_kprobe_##pos
#include "kprobe.bpf.h"
