/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one event layout shared by every BPF program of ipft and mirrored by
 * src/event.rs (unit tests check that both agree on sizes and offsets).
 *
 * A record is a 40-byte header followed by the sections its `sections` bits
 * name, in bit order, each starting 8-byte aligned. What is not asked for is
 * not sent: with no metadata and no extension a function event is the header
 * alone.
 *
 *   IPFT_SEC_VALUE   u64: the return value (IPFT_EV_RETURN) or the drop
 *                    reason (enum skb_drop_reason) of a drop function
 *   IPFT_SEC_META    struct ipft_meta: who and where the packet is
 *   IPFT_SEC_DATA    IPFT_DATA_LEN bytes of extension data
 *   IPFT_SEC_PACKET  struct ipft_packet, then `len` packet bytes (padded to 8)
 *   IPFT_SEC_STACK   struct ipft_stack, then `len` bytes of return addresses
 */
#ifndef IPFT_H
#define IPFT_H

#define IPFT_DATA_LEN 64
#define IPFT_STACK_MAX 32     /* frames */
#define IPFT_SNAPLEN_MAX 256  /* packet bytes per event */
#define IPFT_EVENT_MAX 1024   /* bytes of the largest record */

/* ipft_event.sections */
#define IPFT_SEC_VALUE (1 << 0)
#define IPFT_SEC_META (1 << 1)
#define IPFT_SEC_DATA (1 << 2)
#define IPFT_SEC_PACKET (1 << 3)
#define IPFT_SEC_STACK (1 << 4)

/* ipft_event.flags */
#define IPFT_EV_RETURN (1 << 0) /* a return (function_graph) */
#define IPFT_EV_END (1 << 1)    /* the packet's journey ends here (tracking) */

struct ipft_event {
	__u64 packet_id;    /* tracking id; the skb address with --no-track */
	__u64 skb;          /* skb address */
	__u64 tstamp;       /* bpf_ktime_get_ns() */
	__u64 faddr;        /* traced function's address as the kernel reports it */
	__u32 processor_id; /* CPU */
	__u16 size;         /* bytes of the record, sections included */
	__u8 flags;         /* IPFT_EV_* */
	__u8 sections;      /* IPFT_SEC_* */
};

/* ipft_meta.known: which parts of the metadata were read. */
#define IPFT_META_DEV (1 << 0)    /* ifindex, ifname */
#define IPFT_META_IPV4 (1 << 1)   /* an IPv4 header: addresses (4 bytes), ip_id, ip_len */
#define IPFT_META_IPV6 (1 << 2)   /* an IPv6 header: addresses, flow label in ip_id, ip_len */
#define IPFT_META_PORTS (1 << 3)  /* TCP or UDP ports */
#define IPFT_META_TCP (1 << 4)    /* tcp_flags, tcp_seq */
#define IPFT_META_ICMP (1 << 5)   /* ICMP or ICMPv6 type and code */
#define IPFT_META_ECHO (1 << 6)   /* echo request/reply id and sequence */
#define IPFT_META_NETNS (1 << 7)  /* netns */

struct ipft_meta {
	__u32 netns;        /* network namespace inode (device's, else socket's) */
	__u32 ifindex;
	__u32 mark;
	__u32 len;          /* skb->len */
	char ifname[16];
	__u16 known;        /* IPFT_META_* */
	__u16 protocol;     /* skb->protocol (network order) */
	__u16 ip_len;       /* IP total length (IPv6: payload + 40) */
	__u8 l4_proto;      /* IP protocol / IPv6 next header */
	__u8 tcp_flags;
	__u32 ip_id;        /* IPv4 id, IPv6 flow label */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;        /* host order */
	__u16 dport;
	__u32 tcp_seq;
	__u8 icmp_type;
	__u8 icmp_code;
	__u16 icmp_id;      /* host order */
	__u16 icmp_seq;
	__u8 _pad[6];     /* to 8-byte alignment */
};

/* Link type of captured bytes. */
#define IPFT_LINK_ETHERNET 1
#define IPFT_LINK_RAW_IP 2

struct ipft_packet {
	__u16 len;      /* captured bytes following */
	__u8 link;      /* IPFT_LINK_* */
	__u8 _pad;
	__u32 orig_len; /* bytes from the capture start to the packet's end */
};

struct ipft_stack {
	__u32 len;      /* bytes of return addresses following (8 each) */
	__s32 error;    /* bpf_get_stack's error when len is 0 */
};

#endif
