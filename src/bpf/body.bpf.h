/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The body every backend's entry program shares: is the packet tracked, or
 * does it match the selectors (select.bpf.h, track.bpf.h); fill one
 * ipft_event, let the extension module add its data, and deliver it to user
 * space, counting every event that could not be delivered.
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
	__u32 select;         /* IPFT_SELECT_* (select.bpf.h) */
	__u32 netns;          /* namespace inode, with IPFT_SELECT_NETNS */
	__u32 ifindex;        /* with IPFT_SELECT_IFINDEX */
	__u32 track;          /* follow selected packets (track.bpf.h) */
	__u32 graph;          /* fentry programs remember calls for fexit */
};

const volatile struct ipft_config ipft_config = {
	.mark = 0,
	.mask = 0xffffffff,
	.use_ringbuf = 1,
	.sample_period = 1,
	.wakeup_events = 1,
	.select = 0,
	.netns = 0,
	.ifindex = 0,
	.track = 1,
	.graph = 0,
};

#include "select.bpf.h"
#include "track.bpf.h"

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

/* Emits one event for `skb` as packet `id`. Returns 1 when an event was
 * emitted (the extension module may drop it), else 0. */
static __always_inline int ipft_emit(void *ctx, struct sk_buff *skb, __u64 id, __u64 faddr,
				     bool is_return, __u64 retval)
{
	struct ipft_event ev;

	__builtin_memset(&ev, 0, sizeof(ev));
	ev.packet_id = id;
	ev.skb = (__u64)skb;
	ev.tstamp = bpf_ktime_get_ns();
	ev.faddr = faddr;
	ev.retval = retval;
	ev.processor_id = bpf_get_smp_processor_id();
	ev.is_return = is_return;

	if (module(ctx, skb, ev.data))
		return 0;

	return ipft_submit(ctx, &ev);
}

/* Emits the event of an entry (function or tracepoint) when `skb` is
 * tracked or selected; returns the packet id it was emitted under, 0 when
 * none was. Tracking actions (track.bpf.h) apply after the event. Returns
 * are emitted by calls.bpf.h, never from here: they never start tracking. */
static __always_inline __u64 ipft_trace(void *ctx, struct sk_buff *skb, __u64 faddr,
					__u64 retval)
{
	__u64 head, id, now;
	__u32 action;

	if (!skb)
		return 0;
	if (!ipft_config.track) {
		/* ipftrace2's way: every event must match; the skb is the id. */
		if (!ipft_select(skb))
			return 0;
		id = (__u64)skb;
		return ipft_emit(ctx, skb, id, faddr, false, retval) ? id : 0;
	}
	head = (__u64)BPF_CORE_READ(skb, head);
	now = bpf_ktime_get_ns();
	id = ipft_track_lookup(skb, head, now);
	if (!id) {
		if (!ipft_select(skb))
			return 0;
		id = ipft_new_id();
		action = ipft_track_action(faddr);
		/* A packet first selected where it is being freed is shown,
		 * but no entry is made for memory that is going away. */
		if (!(action & (IPFT_TRACK_FREE_HEAD | IPFT_TRACK_FREE_SKB | IPFT_TRACK_END)))
			ipft_track_insert(head, id, head, now);
	} else {
		action = ipft_track_action(faddr);
	}
	if (!(action & IPFT_TRACK_SILENT))
		ipft_emit(ctx, skb, id, faddr, false, retval);
	if (action)
		ipft_track_apply(skb, head, id, action, now);
	/* Tracking-only functions are not shown, nor their returns. */
	return action & IPFT_TRACK_SILENT ? 0 : id;
}

#endif
