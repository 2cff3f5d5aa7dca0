/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Packet bytes (IPFT_SEC_PACKET): the first snaplen bytes of the packet at
 * this function, from the MAC header where the skb has an Ethernet one, else
 * from the network header (raw IP), as the pcap filter sees it
 * (select.bpf.h). Only linear data is copied; `orig_len` says how long the
 * packet is from the same start. Included by body.bpf.h.
 */
#ifndef IPFT_CAPTURE_BPF_H
#define IPFT_CAPTURE_BPF_H

#define IPFT_CAPTURE_MAX (sizeof(struct ipft_packet) + IPFT_SNAPLEN_MAX)

/* Writes the section at `out`; returns its size (8-aligned). */
static __noinline __u64 ipft_capture(struct sk_buff *skb, struct ipft_packet *p)
{
	__u8 *out = (__u8 *)p;
	__u64 head = (__u64)BPF_CORE_READ(skb, head);
	__u64 data = (__u64)BPF_CORE_READ(skb, data);
	__u32 tail = BPF_CORE_READ(skb, tail), len = BPF_CORE_READ(skb, len);
	__u16 mac = BPF_CORE_READ(skb, mac_header), net = BPF_CORE_READ(skb, network_header);
	__s64 end = (__s64)(data - head) + len;
	/* 64-bit on purpose: a 32-bit length lives in a 64-bit register whose
	 * upper half the verifier does not know, and clang compares a
	 * zero-extended copy but passes the register itself as the size. */
	__u64 start, n, orig;

	p->len = 0;
	p->link = 0;
	p->_pad = 0;
	p->orig_len = 0;
	if (!head)
		return sizeof(*p);
	if (mac != IPFT_NO_HEADER && mac + IPFT_ETH_HLEN <= tail &&
	    (net == 0 || net >= mac + IPFT_ETH_HLEN) && end > mac) {
		struct net_device *dev = BPF_CORE_READ(skb, dev);
		__u16 type = dev ? BPF_CORE_READ(dev, type) : IPFT_ARPHRD_ETHER;

		if (type != IPFT_ARPHRD_ETHER && type != IPFT_ARPHRD_LOOPBACK)
			goto l3;
		start = mac;
		p->link = IPFT_LINK_ETHERNET;
	} else {
l3:
		if (net == 0 || net == IPFT_NO_HEADER || net >= tail || end <= net)
			return sizeof(*p);
		start = net;
		p->link = IPFT_LINK_RAW_IP;
	}
	orig = end - start;
	p->orig_len = orig;
	n = tail - start; /* more than 0: tail is past either header */
	if (n > orig)
		n = orig;
	if (n > ipft_config.snaplen)
		n = ipft_config.snaplen;
	/* The verifier must see the bound on the register passed as the size:
	 * the barrier keeps clang from folding this clamp into those above. */
	barrier_var(n);
	if (n > IPFT_SNAPLEN_MAX)
		n = IPFT_SNAPLEN_MAX;
	if (n == 0 || bpf_probe_read_kernel(out + sizeof(*p), n, (void *)(head + start))) {
		p->link = 0;
		return sizeof(*p);
	}
	p->len = n;
	return sizeof(*p) + ((n + 7) & ~7U);
}

#endif
