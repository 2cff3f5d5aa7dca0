/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel types ipft's BPF programs touch, declared with
 * preserve_access_index so that libbpf relocates every field access against
 * the running kernel's BTF (CO-RE). A full vmlinux.h is not needed: CO-RE
 * matches fields by name, not by position.
 */
#ifndef IPFT_KERNEL_TYPES_H
#define IPFT_KERNEL_TYPES_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4,
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
};

enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};

enum {
	BPF_F_CURRENT_CPU = 0xffffffffULL,
};

/* x86_64 register frame: kprobe programs read it directly, so the layout is
 * the real one, not only the names. */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct bpf_raw_tracepoint_args {
	__u64 args[0];
};

enum {
	BPF_NOEXIST = 1,
};

/* Helpers whose presence is checked at load time (CO-RE enum relocation). */
enum bpf_func_id {
	BPF_FUNC_get_func_arg = 183,
};

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	possible_net_t nd_net;
	char name[16];
	int ifindex;
	unsigned short type; /* ARPHRD_* */
} __attribute__((preserve_access_index));

struct sock_common {
	possible_net_t skc_net;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

typedef struct {
	int counter;
} atomic_t;

struct skb_shared_info {
	atomic_t dataref;
} __attribute__((preserve_access_index));

/* 64-bit kernels keep tail and end as offsets from head
 * (NET_SKBUFF_DATA_USES_OFFSET). */
struct sk_buff {
	unsigned int len;
	__u32 mark;
	unsigned char *head;
	unsigned char *data;
	unsigned int tail;
	unsigned int end;
	__u16 mac_header;
	__u16 network_header;
	__be16 protocol;
	struct net_device *dev;
	struct sock *sk;
} __attribute__((preserve_access_index));

#define __VMLINUX_H__ /* tells bpf_tracing.h to use the kernel's pt_regs names */

#endif
