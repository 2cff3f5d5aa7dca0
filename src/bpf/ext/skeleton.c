#include "ipft.h"

/* The data this extension adds to each event: ipft prints every member. */
struct event {
	unsigned int len;
} __ipft_event_struct;

/*
 * Only the fields used here: CO-RE relocates them against the running
 * kernel's own struct sk_buff when ipft loads the extension.
 */
struct sk_buff {
	unsigned int len;
} __attribute__((preserve_access_index));

__hidden int module(void *ctx, struct sk_buff *skb, __u8 data[64])
{
	struct event *ev = (struct event *)data;

	ev->len = BPF_CORE_READ(skb, len);
	/* Return non-zero to drop the event. */
	return 0;
}
