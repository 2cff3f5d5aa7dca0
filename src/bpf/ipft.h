/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one event layout shared by every BPF program of ipft and mirrored by
 * src/event.rs (a unit test checks that both agree on size and offsets).
 */
#ifndef IPFT_H
#define IPFT_H

#define IPFT_DATA_LEN 64

struct ipft_event {
	__u64 packet_id;    /* tracking id; the skb address with --no-track */
	__u64 skb;          /* skb address */
	__u64 tstamp;       /* bpf_ktime_get_ns() */
	__u64 faddr;        /* traced function's address as the kernel reports it */
	__u64 retval;       /* return value (returns of the graph tracer) */
	__u32 processor_id; /* CPU */
	__u8 is_return;
	__u8 _pad[3];
	__u8 data[IPFT_DATA_LEN]; /* extension data */
};

#endif
