// SPDX-License-Identifier: GPL-2.0
/* The extension module used when the user gives none: adds no data and
 * keeps every event. */
#include "ext/ipft.h"

struct sk_buff;

__hidden int module(void *ctx, struct sk_buff *skb, __u8 data[64])
{
	return 0;
}

