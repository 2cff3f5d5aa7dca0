/* Keeps only events of packets of 90 bytes or more: module() returning
 * non-zero drops the event. */
#include "ipft.h"

struct event {
	unsigned int len;
} __ipft_event_struct;

struct sk_buff {
	unsigned int len;
} __attribute__((preserve_access_index));

__hidden int module(void *ctx, struct sk_buff *skb, __u8 data[64])
{
	struct event *ev = (struct event *)data;

	ev->len = BPF_CORE_READ(skb, len);
	return ev->len < 90;
}
