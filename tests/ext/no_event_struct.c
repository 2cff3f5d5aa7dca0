#include "ipft.h"
struct sk_buff;
__hidden int module(void *ctx, struct sk_buff *skb, __u8 data[64]) { return 0; }
