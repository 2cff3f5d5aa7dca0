/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The body every backend's entry program shares: is the packet tracked, or
 * does it match the selectors (select.bpf.h, track.bpf.h); build one record
 * (ipft.h: a header and the sections asked for: drop reason, metadata,
 * extension data, packet bytes, stack) and deliver it to user space,
 * counting every record that could not be delivered.
 *
 * A backend's entry program only finds the skb (register, argument slot or
 * tracepoint field) and calls ipft_trace(). Before including this file, the
 * backend defines IPFT_ARG(ctx, n): its way to read argument n of the traced
 * function (the drop reason follows the skb in the drop functions).
 */
#ifndef IPFT_BODY_BPF_H
#define IPFT_BODY_BPF_H

#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
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
	__u32 meta;           /* add IPFT_SEC_META to entry events */
	__u32 ext;            /* an extension is linked: add IPFT_SEC_DATA */
	__u32 snaplen;        /* packet bytes per entry event (IPFT_SEC_PACKET), 0: none */
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
	.meta = 1,
	.ext = 0,
	.snaplen = 0,
};

/* The kill switch: set by user space when detaching begins (Ctrl-C,
 * SIGTERM, an error), so that every program returns at once while the kernel
 * takes the probes away one by one (seconds to minutes: RCU grace periods),
 * and the machine pays only the probes' own entry cost meanwhile. The only
 * variable in .bss; mirrored by Programs::stop in src/backend/mod.rs. */
volatile __u32 ipft_detaching = 0;

#include "select.bpf.h"
#include "track.bpf.h"
#include "meta.bpf.h"
#include "capture.bpf.h"

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

/* Records are built in per-CPU scratch space (they outgrow the 512-byte BPF
 * stack). A program can be interrupted by one that emits on the same CPU
 * (an IRQ's softirq runs the receive path under a fentry program of the
 * send path), so each nesting level has its own buffer. */
#define IPFT_NEST_MAX 4

struct ipft_scratch {
	__u8 buf[IPFT_EVENT_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IPFT_NEST_MAX);
	__type(key, __u32);
	__type(value, struct ipft_scratch);
} ipft_scratch SEC(".maps");

/* Per CPU: [0] records being built now (the nesting level). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} ipft_nest SEC(".maps");

static __always_inline void ipft_count_lost(void)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&ipft_lost, &zero);

	if (lost)
		*lost += 1;
}

/* A subprogram, not inlined: besides keeping the entry programs small, its
 * prototype puts struct ipft_event into the object's BTF, where a unit test
 * compares it with the Rust mirror (the sections' structs likewise: their
 * writers are subprograms too). */
static __noinline int ipft_submit(void *ctx, struct ipft_event *ev, __u64 size)
{
	__u32 zero = 0;
	struct ipft_counters *c = bpf_map_lookup_elem(&ipft_counters, &zero);
	__u64 flags = 0;
	long err;

	if (size < sizeof(*ev) || size > IPFT_EVENT_MAX)
		return 0;
	if (c && ipft_config.sample_period > 1 && c->matched++ % ipft_config.sample_period)
		return 0;
	/* Wake the reader only every wakeup_events events; it also polls. */
	if (c && ipft_config.wakeup_events > 1)
		flags = c->emitted++ % ipft_config.wakeup_events ? BPF_RB_NO_WAKEUP
								 : BPF_RB_FORCE_WAKEUP;
	if (ipft_config.use_ringbuf)
		err = bpf_ringbuf_output(&ipft_events_rb, ev, size, flags);
	else
		err = bpf_perf_event_output(ctx, &ipft_events_perf, BPF_F_CURRENT_CPU, ev, size);
	if (err)
		ipft_count_lost();
	return 1;
}

/* Writes the kernel stack of this call at `st`; returns the section's size. */
static __noinline __u64 ipft_stack(void *ctx, struct ipft_stack *st)
{
	long n = bpf_get_stack(ctx, (void *)(st + 1), IPFT_STACK_MAX * 8, 0);

	if (n <= 0) {
		st->len = 0;
		st->error = n;
		return sizeof(*st);
	}
	/* n is at most the buffer's size; the mask tells older verifiers. */
	n &= IPFT_STACK_MAX * 8 * 2 - 1;
	st->len = n;
	st->error = 0;
	return sizeof(*st) + n;
}

/* What one event carries besides the header. */
struct ipft_emit_args {
	__u64 value;    /* IPFT_SEC_VALUE, when has_value */
	bool has_value;
	bool stack;     /* add IPFT_SEC_STACK */
	__u8 flags;     /* IPFT_EV_* */
};

/* Emits one event for `skb` as packet `id`. Returns 1 when an event was
 * emitted (the extension module may drop it), else 0. Returns (function_graph)
 * carry no metadata and no packet bytes: their skb may be gone. */
static __always_inline int ipft_emit(void *ctx, struct sk_buff *skb, __u64 id, __u64 faddr,
				     struct ipft_emit_args *a)
{
	bool entry = !(a->flags & IPFT_EV_RETURN);
	struct ipft_event *ev;
	struct ipft_scratch *s;
	__u32 zero = 0, level;
	__u64 off = sizeof(*ev);
	__u32 *nest = bpf_map_lookup_elem(&ipft_nest, &zero);
	__u8 sections = 0;
	int ret = 0;

	if (!nest)
		return 0;
	level = *nest;
	if (level >= IPFT_NEST_MAX) {
		ipft_count_lost();
		return 0;
	}
	s = bpf_map_lookup_elem(&ipft_scratch, &level);
	if (!s)
		return 0;
	*nest = level + 1;

	ev = (struct ipft_event *)s->buf;
	ev->packet_id = id;
	ev->skb = (__u64)skb;
	ev->tstamp = bpf_ktime_get_ns();
	ev->faddr = faddr;
	ev->processor_id = bpf_get_smp_processor_id();
	ev->flags = a->flags;
	if (a->has_value) {
		*(__u64 *)(s->buf + off) = a->value;
		off += sizeof(__u64);
		sections |= IPFT_SEC_VALUE;
	}
	if (ipft_config.meta && entry) {
		ipft_read_meta(skb, (struct ipft_meta *)(s->buf + off));
		off += sizeof(struct ipft_meta);
		sections |= IPFT_SEC_META;
	}
	if (ipft_config.ext) {
		__builtin_memset(s->buf + off, 0, IPFT_DATA_LEN);
		if (module(ctx, skb, s->buf + off))
			goto out;
		off += IPFT_DATA_LEN;
		sections |= IPFT_SEC_DATA;
	}
	if (ipft_config.snaplen && entry && off <= IPFT_EVENT_MAX - IPFT_CAPTURE_MAX) {
		off += ipft_capture(skb, (struct ipft_packet *)(s->buf + off));
		sections |= IPFT_SEC_PACKET;
	}
	if (a->stack && off <= IPFT_EVENT_MAX - sizeof(struct ipft_stack) - IPFT_STACK_MAX * 8) {
		off += ipft_stack(ctx, (struct ipft_stack *)(s->buf + off));
		sections |= IPFT_SEC_STACK;
	}
	ev->size = off;
	ev->sections = sections;
	ret = ipft_submit(ctx, ev, off);
out:
	*nest = level;
	return ret;
}

/* Function flags (ipft_funcs), beside the tracking actions of track.bpf.h;
 * mirrored in src/funcs.rs. */
#define IPFT_FUNC_DROP (1 << 9)   /* the argument after the skb is a drop reason */
#define IPFT_FUNC_STACK (1 << 10) /* capture the kernel stack */

/* Emits the event of an entry (function or tracepoint) when `skb` is
 * tracked or selected; returns the packet id it was emitted under, 0 when
 * none was. `pos`: the skb's argument position; `tp_reason`: the drop reason
 * a tracepoint carries, negative when none. Tracking actions (track.bpf.h)
 * apply before the event, which says whether the packet ended. Returns are
 * emitted by calls.bpf.h, never from here: they never start tracking. */
static __always_inline __u64 ipft_trace(void *ctx, struct sk_buff *skb, int pos, __u64 faddr,
					__s64 tp_reason)
{
	struct ipft_emit_args a = {};
	struct ipft_skb_view *v = NULL;
	__u64 head = 0, id, now = 0;
	__u32 flags;

	if (ipft_detaching || !skb)
		return 0;
	if (!ipft_config.track) {
		/* ipftrace2's way: every event must match; the skb is the id. */
		if (!ipft_select(skb, NULL))
			return 0;
		id = (__u64)skb;
		flags = ipft_func_flags(faddr);
	} else {
		/* An expression needs the start of the skb, head included: one
		 * read serves both. */
		if (ipft_config.select & IPFT_SELECT_PCAP) {
			v = ipft_read_view(skb);
			if (!v)
				return 0;
			head = IPFT_SKB_FIELD(v, __u64, head);
		} else {
			head = (__u64)BPF_CORE_READ(skb, head);
		}
		now = bpf_ktime_get_ns();
		id = ipft_track_lookup(skb, head, now);
		if (!id) {
			if (!ipft_select(skb, v))
				return 0;
			id = ipft_new_id();
			flags = ipft_func_flags(faddr);
			/* A packet first selected where it is being freed is
			 * shown, but no entry is made for memory going away. */
			if (flags & IPFT_TRACK_ENDS)
				a.flags |= IPFT_EV_END;
			else
				ipft_track_insert(head, id, head, now);
		} else {
			flags = ipft_func_flags(faddr);
		}
		if ((flags & IPFT_TRACK_ACTIONS) && ipft_track_apply(skb, head, id, flags, now))
			a.flags |= IPFT_EV_END;
	}
	/* Tracking-only functions are not shown, nor their returns. */
	if (flags & IPFT_TRACK_SILENT)
		return 0;
	if (tp_reason >= 0) {
		a.value = tp_reason;
		a.has_value = true;
	} else if (flags & IPFT_FUNC_DROP) {
		a.value = IPFT_ARG(ctx, pos + 1);
		a.has_value = true;
	}
	a.stack = flags & IPFT_FUNC_STACK;
	/* 0 when not emitted: function_graph then shows no return either. */
	return ipft_emit(ctx, skb, id, faddr, &a) ? id : 0;
}

#endif
