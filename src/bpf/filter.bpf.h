/* SPDX-License-Identifier: GPL-2.0 */
/* Placeholders of the pcap-filter subprograms (temporary: replaced by the
 * filter branch's version). */
#ifndef IPFT_FILTER_BPF_H
#define IPFT_FILTER_BPF_H

static __noinline int ipft_filter_l2(__u64 data, __u32 caplen, __u32 wirelen)
{
	__u64 magic;

	asm volatile("%0 = 0x1f11e72c0de00002 ll" : "=r"(magic));
	return magic == data + caplen + wirelen;
}

static __noinline int ipft_filter_l3(__u64 data, __u32 caplen, __u32 wirelen)
{
	__u64 magic;

	asm volatile("%0 = 0x1f11e72c0de00003 ll" : "=r"(magic));
	return magic == data + caplen + wirelen;
}

#endif
