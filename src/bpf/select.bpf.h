/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Packet selection: does this skb start a trace? Every selector the user gave
 * (mark, network namespace, device, pcap-filter expression) must agree; the
 * ones not given are pruned by the verifier (ipft_config is read-only).
 * Included by body.bpf.h after ipft_config.
 */
#ifndef IPFT_SELECT_BPF_H
#define IPFT_SELECT_BPF_H

#include "filter.bpf.h"

#define IPFT_SELECT_MARK (1 << 0)
#define IPFT_SELECT_NETNS (1 << 1)
#define IPFT_SELECT_IFINDEX (1 << 2)
#define IPFT_SELECT_PCAP (1 << 3)

/* skb->mac_header when no MAC header was set. */
#define IPFT_NO_HEADER 0xffff
#define IPFT_ETH_HLEN 14
#define IPFT_ARPHRD_ETHER 1
#define IPFT_ARPHRD_LOOPBACK 772

/* The network namespace the packet is in: its device's, or before it has one
 * (locally generated, not routed yet) its socket's. 0 when neither is known. */
static __always_inline __u32 ipft_skb_netns(struct sk_buff *skb)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	struct sock *sk;

	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	sk = BPF_CORE_READ(skb, sk);
	if (sk)
		return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

/* A copy of the start of an sk_buff, up to and including `data`: one
 * kernel read instead of one per field, on every function call of every
 * packet the filter looks at. Fields are found in it by their CO-RE offsets. */
#define IPFT_SKB_VIEW 256

struct ipft_skb_view {
	__u8 bytes[IPFT_SKB_VIEW];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ipft_skb_view);
} ipft_skb_view SEC(".maps");

#define IPFT_SKB_FIELD(view, type, field) \
	(*(type *)((view)->bytes + bpf_core_field_offset(struct sk_buff, field)))

/* Copies the start of `skb` into this CPU's view; NULL when it cannot. */
static __always_inline struct ipft_skb_view *ipft_read_view(struct sk_buff *skb)
{
	__u32 zero = 0, size = bpf_core_field_offset(struct sk_buff, data) + sizeof(void *);
	struct ipft_skb_view *v = bpf_map_lookup_elem(&ipft_skb_view, &zero);

	if (!v || size > IPFT_SKB_VIEW || bpf_probe_read_kernel(v->bytes, size, skb))
		return NULL;
	return v;
}

/* Runs the pcap filter on the packet's bytes: from the MAC header where the
 * skb has an Ethernet one, else from the network header (the raw-IP
 * program), else no match. Bytes past the linear data are never read.
 * `v`: the skb's view, read by the caller (who takes skb->head from it). */
static __always_inline bool ipft_select_pcap(struct ipft_skb_view *v)
{
	__u64 head, data;
	__u32 tail, len;
	__u16 mac, net;
	__s64 end;

	head = IPFT_SKB_FIELD(v, __u64, head);
	data = IPFT_SKB_FIELD(v, __u64, data);
	tail = IPFT_SKB_FIELD(v, __u32, tail);
	len = IPFT_SKB_FIELD(v, __u32, len);
	mac = IPFT_SKB_FIELD(v, __u16, mac_header);
	net = IPFT_SKB_FIELD(v, __u16, network_header);
	end = (__s64)(data - head) + len; /* packet end, from head */
	if (!head)
		return false;
	/* A MAC header counts when it is set, an Ethernet header fits before the
	 * network header (tunnels set both to the same offset), and the device
	 * (if any yet) is Ethernet-like. A link header of exactly Ethernet's
	 * length in front of the network header is taken as Ethernet without
	 * reading the device's type: that read would be the most expensive step
	 * of every packet the expression does not select. */
	if (mac != IPFT_NO_HEADER && mac + IPFT_ETH_HLEN <= tail &&
	    (net == 0 || net >= mac + IPFT_ETH_HLEN) && end > mac) {
		struct net_device *dev = IPFT_SKB_FIELD(v, struct net_device *, dev);
		__u16 type = IPFT_ARPHRD_ETHER;

		if (dev && net != mac + IPFT_ETH_HLEN)
			type = BPF_CORE_READ(dev, type);
		if (type == IPFT_ARPHRD_ETHER || type == IPFT_ARPHRD_LOOPBACK)
			return ipft_filter_l2(head + mac, tail - mac, end - mac);
	}
	/* network_header is 0 until the stack sets it. */
	if (net != 0 && net != IPFT_NO_HEADER && net < tail && end > net)
		return ipft_filter_l3(head + net, tail - net, end - net);
	return false;
}

/* True when `skb` matches every selector given. `v`: its view when the
 * caller has read it already (tracking reads skb->head from it), else NULL. */
static __always_inline bool ipft_select(struct sk_buff *skb, struct ipft_skb_view *v)
{
	__u32 sel = ipft_config.select;

	if (sel & IPFT_SELECT_MARK) {
		__u32 mark = BPF_CORE_READ(skb, mark);

		if ((mark & ipft_config.mask) != (ipft_config.mark & ipft_config.mask))
			return false;
	}
	if ((sel & IPFT_SELECT_NETNS) && ipft_skb_netns(skb) != ipft_config.netns)
		return false;
	if (sel & IPFT_SELECT_IFINDEX) {
		struct net_device *dev = BPF_CORE_READ(skb, dev);

		if (!dev || BPF_CORE_READ(dev, ifindex) != ipft_config.ifindex)
			return false;
	}
	if (sel & IPFT_SELECT_PCAP) {
		if (!v)
			v = ipft_read_view(skb);
		if (!v || !ipft_select_pcap(v))
			return false;
	}
	return true;
}

#endif
