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

/* Runs the pcap filter on the packet's bytes: from the MAC header where the
 * skb has an Ethernet one, else from the network header (the raw-IP
 * program), else no match. Bytes past the linear data are never read. */
static __always_inline bool ipft_select_pcap(struct sk_buff *skb)
{
	__u64 head = (__u64)BPF_CORE_READ(skb, head);
	__u64 data = (__u64)BPF_CORE_READ(skb, data);
	__u32 tail = BPF_CORE_READ(skb, tail);
	__u32 len = BPF_CORE_READ(skb, len);
	__u16 mac = BPF_CORE_READ(skb, mac_header);
	__u16 net = BPF_CORE_READ(skb, network_header);
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	__u16 type = dev ? BPF_CORE_READ(dev, type) : IPFT_ARPHRD_ETHER;
	__s64 end = (__s64)(data - head) + len; /* packet end, from head */
	bool ether = type == IPFT_ARPHRD_ETHER || type == IPFT_ARPHRD_LOOPBACK;

	if (!head)
		return false;
	/* A MAC header counts when it is set and an Ethernet header fits before
	 * the network header (tunnels set both to the same offset). */
	if (ether && mac != IPFT_NO_HEADER && mac + IPFT_ETH_HLEN <= tail &&
	    (net == 0 || net >= mac + IPFT_ETH_HLEN) && end > mac)
		return ipft_filter_l2(head + mac, tail - mac, end - mac);
	/* network_header is 0 until the stack sets it. */
	if (net != 0 && net != IPFT_NO_HEADER && net < tail && end > net)
		return ipft_filter_l3(head + net, tail - net, end - net);
	return false;
}

/* True when `skb` matches every selector given. */
static __always_inline bool ipft_select(struct sk_buff *skb)
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
	if ((sel & IPFT_SELECT_PCAP) && !ipft_select_pcap(skb))
		return false;
	return true;
}

#endif
