/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Packet selection: the two subprograms a pcap-filter expression runs in.
 *
 * Their bodies here are placeholders. Before a program is loaded, user space
 * (src/filter/splice.rs) finds each one by its magic constant in the
 * program's final instructions and replaces the whole subprogram with the
 * user's expression, compiled by libpcap and translated to eBPF
 * (src/filter/cbpf.rs). Calling convention, kept by the translation:
 *
 *   data     kernel address of the first byte the filter sees: the MAC
 *            header (l2, Ethernet frames) or the network header (l3, raw
 *            IPv4/IPv6); a plain number, read with bpf_probe_read_kernel
 *   caplen   bytes readable from data in the skb's linear data (never read
 *            past it)
 *   wirelen  the packet's length from data (pcap's "len")
 *   return   non-zero when the packet matches
 *
 * Callers pass run-time values (never constants the compiler could fold
 * into the subprogram, which would drop the argument registers the
 * translation reads), and call a filter only when the user gave an
 * expression (a .rodata flag): unspliced, a placeholder selects nothing.
 * The translation's stack frame is 152 to 216 bytes (src/filter/cbpf.rs).
 *
 * Why the bodies look the way they do: each must stay a separate subprogram
 * after clang -O2 (__noinline; a unique 64-bit constant loaded by
 * asm volatile, so no two are merged and the splicer can find each), its
 * call must not be folded away (the result depends on the arguments, as far
 * as clang can tell), and, should one ever run unspliced, it must select
 * nothing: the magic is never 0, so it returns 0. They are static: the
 * copies ipft loads carry no BTF func_info, which global functions need.
 *
 * Keep the constants in step with L2_MAGIC and L3_MAGIC in
 * src/filter/splice.rs.
 */
#ifndef IPFT_FILTER_BPF_H
#define IPFT_FILTER_BPF_H

#define IPFT_FILTER_L2_MAGIC 0x1f11e7c0de00a002ULL
#define IPFT_FILTER_L3_MAGIC 0x1f11e7c0de00a003ULL

static __noinline int ipft_filter_l2(__u64 data, __u32 caplen, __u32 wirelen)
{
	__u64 magic;

	asm volatile("%0 = 0x1f11e7c0de00a002 ll" : "=r"(magic));
	return magic == 0 ? (int)(data + caplen + wirelen) : 0;
}

static __noinline int ipft_filter_l3(__u64 data, __u32 caplen, __u32 wirelen)
{
	__u64 magic;

	asm volatile("%0 = 0x1f11e7c0de00a003 ll" : "=r"(magic));
	return magic == 0 ? (int)(data + caplen + wirelen) : 0;
}

#endif /* IPFT_FILTER_BPF_H */
