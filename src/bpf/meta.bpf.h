/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Packet metadata (IPFT_SEC_META): which namespace and device the packet is
 * in at this function, its mark and length, and what its headers say
 * (addresses, IP id or flow label, ports, TCP flags and sequence, ICMP type,
 * code, echo id and sequence), parsed from the network header.
 *
 * Read only for events that are emitted, never to decide selection. A part
 * that cannot be read is left out of `known`, never guessed: before the stack
 * sets the network header (network_header 0 or ~0) only the skb's own fields
 * are known. Header bytes are read within the linear data only.
 * Included by body.bpf.h; ipft_skb_netns comes from select.bpf.h.
 */
#ifndef IPFT_META_BPF_H
#define IPFT_META_BPF_H

#define IPFT_ETH_P_IP 0x0800
#define IPFT_ETH_P_IPV6 0x86dd
#define IPFT_IPPROTO_ICMP 1
#define IPFT_IPPROTO_TCP 6
#define IPFT_IPPROTO_UDP 17
#define IPFT_IPPROTO_ICMPV6 58
#define IPFT_IPPROTO_SCTP 132
#define IPFT_IPPROTO_UDPLITE 136

/* The first bytes of an IPv4 or IPv6 header, and of what follows it. */
#define IPFT_NET_READ 40
#define IPFT_L4_READ 16

static __always_inline __u16 ipft_be16(const __u8 *p)
{
	return (__u16)p[0] << 8 | p[1];
}

static __always_inline __u32 ipft_be32(const __u8 *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

/* Fills the L4 part from `l4` (IPFT_L4_READ bytes after the IP header). */
static __always_inline void ipft_meta_l4(struct ipft_meta *m, const __u8 *l4)
{
	switch (m->l4_proto) {
	case IPFT_IPPROTO_TCP:
		m->tcp_seq = ipft_be32(l4 + 4);
		m->tcp_flags = l4[13];
		m->known |= IPFT_META_TCP;
		/* fall through: ports */
	case IPFT_IPPROTO_UDP:
	case IPFT_IPPROTO_UDPLITE:
	case IPFT_IPPROTO_SCTP:
		m->sport = ipft_be16(l4);
		m->dport = ipft_be16(l4 + 2);
		m->known |= IPFT_META_PORTS;
		break;
	case IPFT_IPPROTO_ICMP:
	case IPFT_IPPROTO_ICMPV6:
		m->icmp_type = l4[0];
		m->icmp_code = l4[1];
		m->known |= IPFT_META_ICMP;
		/* Echo request/reply: ICMP 8/0, ICMPv6 128/129. */
		if ((m->l4_proto == IPFT_IPPROTO_ICMP && (l4[0] == 8 || l4[0] == 0)) ||
		    (m->l4_proto == IPFT_IPPROTO_ICMPV6 && (l4[0] == 128 || l4[0] == 129))) {
			m->icmp_id = ipft_be16(l4 + 4);
			m->icmp_seq = ipft_be16(l4 + 6);
			m->known |= IPFT_META_ECHO;
		}
		break;
	}
}

/* Parses the IP header at head + net (and its L4 header when it is in the
 * linear data and this is a first or only fragment). `avail`: linear bytes
 * from the network header on. */
static __always_inline void ipft_meta_headers(struct ipft_meta *m, __u64 head, __u32 net,
					      __u32 avail)
{
	__u8 ip[IPFT_NET_READ] = {};
	__u8 l4[IPFT_L4_READ] = {};
	__u32 hlen;

	if (avail < 20 || bpf_probe_read_kernel(ip, avail < IPFT_NET_READ ? 20 : IPFT_NET_READ,
						(void *)(head + net)))
		return;
	if ((ip[0] >> 4) == 4 && (ip[0] & 0xf) >= 5) {
		hlen = (ip[0] & 0xf) * 4;
		m->ip_len = ipft_be16(ip + 2);
		m->ip_id = ipft_be16(ip + 4);
		m->l4_proto = ip[9];
		__builtin_memcpy(m->saddr, ip + 12, 4);
		__builtin_memcpy(m->daddr, ip + 16, 4);
		m->known |= IPFT_META_IPV4;
		/* Later fragments carry no L4 header. */
		if (ipft_be16(ip + 6) & 0x1fff)
			return;
	} else if ((ip[0] >> 4) == 6 && avail >= 40) {
		hlen = 40;
		m->ip_len = ipft_be16(ip + 4) + 40;
		m->ip_id = ipft_be32(ip) & 0xfffff;
		m->l4_proto = ip[6];
		__builtin_memcpy(m->saddr, ip + 8, 16);
		__builtin_memcpy(m->daddr, ip + 24, 16);
		m->known |= IPFT_META_IPV6;
	} else {
		return;
	}
	if (hlen + IPFT_L4_READ > avail ||
	    bpf_probe_read_kernel(l4, sizeof(l4), (void *)(head + net + hlen)))
		return;
	ipft_meta_l4(m, l4);
}

static __noinline void ipft_read_meta(struct sk_buff *skb, struct ipft_meta *m)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	__u64 head = (__u64)BPF_CORE_READ(skb, head);
	__u16 net = BPF_CORE_READ(skb, network_header);
	__u32 tail = BPF_CORE_READ(skb, tail);
	__u16 proto;

	__builtin_memset(m, 0, sizeof(*m));
	m->netns = ipft_skb_netns(skb);
	if (m->netns)
		m->known |= IPFT_META_NETNS;
	m->mark = BPF_CORE_READ(skb, mark);
	m->len = BPF_CORE_READ(skb, len);
	proto = BPF_CORE_READ(skb, protocol);
	m->protocol = proto;
	if (dev) {
		m->ifindex = BPF_CORE_READ(dev, ifindex);
		BPF_CORE_READ_STR_INTO(&m->ifname, dev, name);
		m->known |= IPFT_META_DEV;
	}
	/* Headers are parsed when the network header is set and the protocol,
	 * if already known, is IP (ARP and others have no addresses here). */
	if (!head || net == 0 || net == IPFT_NO_HEADER || net >= tail)
		return;
	if (proto && proto != bpf_htons(IPFT_ETH_P_IP) && proto != bpf_htons(IPFT_ETH_P_IPV6))
		return;
	ipft_meta_headers(m, head, net, tail - net);
}

#endif
