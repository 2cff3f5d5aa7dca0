/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The body every backend's entry program shares: filter on skb->mark, fill
 * one ipft_event, let the extension module add its data, and deliver it to
 * user space, counting every event that could not be delivered.
 *
 * A backend's entry program only finds the skb (register, argument slot or
 * tracepoint field) and calls ipft_trace().
 */
#ifndef IPFT_BODY_BPF_H
#define IPFT_BODY_BPF_H

#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ipft.h"

/* Set by user space before load (the only variable in .rodata, so user space
 * finds it at offset 0); read-only afterwards so the verifier prunes the
 * transport that is not used. Mirrored by BpfConfig in src/bpf.rs. */
struct ipft_config {
	__u32 mark;
	__u32 mask;
	__u32 use_ringbuf;
	__u32 sample_period;  /* emit one matching event in this many (1: all) */
	__u32 wakeup_events;  /* wake the reader every this many events */
	__u32 _pad;
};

const volatile struct ipft_config ipft_config = {
	.mark = 0,
	.mask = 0xffffffff,
	.use_ringbuf = 1,
	.sample_period = 1,
	.wakeup_events = 1,
};

/* Per-CPU counters behind --perf-sample-period and --perf-wakeup-events. */
struct ipft_counters {
	__u64 matched;
	__u64 emitted;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ipft_counters);
} ipft_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 4096 * 2);
} ipft_events_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} ipft_events_perf SEC(".maps");

/* Events the kernel could not hand to user space (buffer full), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ipft_lost SEC(".maps");

/* The extension module (SPEC.md, "Extensions"): fills up to 64 bytes of
 * event data and returns non-zero to drop the event. Resolved when ipft
 * links this object with the user's extension, or with null_module.bpf.c. */
extern int module(void *ctx, struct sk_buff *skb, __u8 *data);

static __always_inline bool ipft_match(struct sk_buff *skb)
{
	__u32 mark = BPF_CORE_READ(skb, mark);

	return (mark & ipft_config.mask) == (ipft_config.mark & ipft_config.mask);
}

static __always_inline void ipft_count_lost(void)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&ipft_lost, &zero);

	if (lost)
		*lost += 1;
}

/* A subprogram, not inlined: besides keeping the entry programs small, its
 * prototype puts struct ipft_event into the object's BTF, where a unit test
 * compares it with the Rust mirror. */
static __noinline int ipft_submit(void *ctx, struct ipft_event *ev)
{
	__u32 zero = 0;
	struct ipft_counters *c = bpf_map_lookup_elem(&ipft_counters, &zero);
	__u64 flags = 0;
	long err;

	if (c && ipft_config.sample_period > 1 && c->matched++ % ipft_config.sample_period)
		return 0;
	/* Wake the reader only every wakeup_events events; it also polls. */
	if (c && ipft_config.wakeup_events > 1)
		flags = c->emitted++ % ipft_config.wakeup_events ? BPF_RB_NO_WAKEUP
								 : BPF_RB_FORCE_WAKEUP;
	if (ipft_config.use_ringbuf)
		err = bpf_ringbuf_output(&ipft_events_rb, ev, sizeof(*ev), flags);
	else
		err = bpf_perf_event_output(ctx, &ipft_events_perf, BPF_F_CURRENT_CPU, ev, sizeof(*ev));
	if (err)
		ipft_count_lost();
	return 1;
}

/* Emits one event for `skb` without looking at its mark. Returns 1 when an
 * event was emitted (the extension module may drop it), else 0. */
static __always_inline int ipft_emit(void *ctx, struct sk_buff *skb, __u64 faddr, bool is_return,
				     __u64 retval)
{
	struct ipft_event ev;

	__builtin_memset(&ev, 0, sizeof(ev));
	ev.packet_id = (__u64)skb;
	ev.tstamp = bpf_ktime_get_ns();
	ev.faddr = faddr;
	ev.retval = retval;
	ev.processor_id = bpf_get_smp_processor_id();
	ev.is_return = is_return;

	if (module(ctx, skb, ev.data))
		return 0;

	return ipft_submit(ctx, &ev);
}

/* Emits an event when `skb`'s mark matches. Returns 1 when it did. */
static __always_inline int ipft_trace(void *ctx, struct sk_buff *skb, __u64 faddr, bool is_return,
				      __u64 retval)
{
	if (!skb || !ipft_match(skb))
		return 0;
	return ipft_emit(ctx, skb, faddr, is_return, retval);
}

#endif
