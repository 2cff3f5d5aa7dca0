/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracking: once a packet is selected, every later function that sees it
 * emits an event under the same packet id, whatever its mark, headers,
 * namespace or device are now (NAT, veth crossings, encapsulation).
 *
 * A packet is known by its data buffer (skb->head): clones share it, so they
 * keep the packet's id. Some functions change that (src/track.rs says which
 * and attaches them even when -r leaves them out; ipft_funcs maps their
 * addresses to what they do):
 * - pskb_expand_head gives the skb a new buffer: the entry is also keyed by
 *   the skb's address, and the next function that sees the skb with another
 *   head moves it under the new head;
 * - skb_free_head frees the buffer: the entry leaves the head key and stays
 *   keyed by the skb's address, so the skb's last functions (kfree_skbmem)
 *   are still shown;
 * - kfree_skbmem, napi_skb_cache_put free the skb itself: the entry goes;
 * - kfree_skb_partial, and on the tracepoint backend consume_skb and
 *   kfree_skb: the skb's journey ends (the buffer too if this was its last
 *   user).
 * Ids come from one counter, so no two packets of a run share one, even when
 * the kernel reuses skb or buffer memory. Entries carry when they were last
 * seen; user space expires stale ones and counts them.
 * Included by body.bpf.h after ipft_config.
 */
#ifndef IPFT_TRACK_BPF_H
#define IPFT_TRACK_BPF_H

/* Mirrored by TrackAction in src/track.rs. */
#define IPFT_TRACK_NEW_HEAD (1 << 0)   /* pskb_expand_head */
#define IPFT_TRACK_FREE_HEAD (1 << 1)  /* skb_free_head */
#define IPFT_TRACK_FREE_SKB (1 << 2)   /* kfree_skbmem, napi_skb_cache_put */
#define IPFT_TRACK_END (1 << 3)        /* kfree_skb_partial; consume_skb, kfree_skb tracepoints */
#define IPFT_TRACK_SILENT (1 << 8)     /* attached for tracking only: emit nothing */
#define IPFT_TRACK_ACTIONS (IPFT_TRACK_NEW_HEAD | IPFT_TRACK_FREE_HEAD | IPFT_TRACK_FREE_SKB | IPFT_TRACK_END)
/* Where memory goes away: no entry is made for a packet first seen there. */
#define IPFT_TRACK_ENDS (IPFT_TRACK_FREE_HEAD | IPFT_TRACK_FREE_SKB | IPFT_TRACK_END)

#define IPFT_SKB_DATAREF_MASK 0xffff

struct ipft_tracked {
	__u64 id;
	__u64 last_seen; /* bpf_ktime_get_ns() */
	__u64 head;      /* the buffer this entry was made for */
};

/* Keyed by skb->head, or by the skb's address (see above). Sized by user
 * space (--track-max); a full map is counted, never silently overwritten. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct ipft_tracked);
} ipft_tracked SEC(".maps");

/* Function address -> IPFT_TRACK_* of the functions that change what a
 * packet is keyed by, and IPFT_FUNC_* (body.bpf.h) of the functions whose
 * events carry more (drop reason, stack). Sized by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u32);
} ipft_funcs SEC(".maps");

/* [0]: the last packet id given out. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ipft_ids SEC(".maps");

/* Per CPU: [0] packets not tracked because the map was full. Mirrored by
 * TrackStats in src/track.rs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ipft_track_full SEC(".maps");

static __always_inline __u32 ipft_func_flags(__u64 faddr)
{
	__u32 *flags = bpf_map_lookup_elem(&ipft_funcs, &faddr);

	return flags ? *flags : 0;
}

static __always_inline __u64 ipft_new_id(void)
{
	__u32 zero = 0;
	__u64 *last = bpf_map_lookup_elem(&ipft_ids, &zero);

	return last ? __sync_fetch_and_add(last, 1) + 1 : 0;
}

static __always_inline void ipft_track_insert(__u64 key, __u64 id, __u64 head, __u64 now)
{
	struct ipft_tracked t = { .id = id, .last_seen = now, .head = head };

	if (bpf_map_update_elem(&ipft_tracked, &key, &t, BPF_ANY)) {
		__u32 zero = 0;
		__u64 *full = bpf_map_lookup_elem(&ipft_track_full, &zero);

		if (full)
			*full += 1;
	}
}

/* The packet id of a tracked skb, 0 if it is not tracked. Moves an entry
 * under the skb's new head after pskb_expand_head. */
static __always_inline __u64 ipft_track_lookup(struct sk_buff *skb, __u64 head, __u64 now)
{
	__u64 addr = (__u64)skb;
	struct ipft_tracked *t = bpf_map_lookup_elem(&ipft_tracked, &head);
	__u64 id;

	if (t) {
		t->last_seen = now;
		return t->id;
	}
	t = bpf_map_lookup_elem(&ipft_tracked, &addr);
	if (!t)
		return 0;
	id = t->id;
	t->last_seen = now;
	if (t->head != head) {
		/* The skb has a new buffer: follow it there. */
		bpf_map_delete_elem(&ipft_tracked, &addr);
		ipft_track_insert(head, id, head, now);
	}
	return id;
}

/* What a tracking function does to a tracked packet; true when the packet
 * ends here (the last of its memory goes). */
static __always_inline bool ipft_track_apply(struct sk_buff *skb, __u64 head, __u64 id,
					     __u32 action, __u64 now)
{
	__u64 addr = (__u64)skb;
	bool ended = false;

	if (action & IPFT_TRACK_NEW_HEAD)
		ipft_track_insert(addr, id, head, now);
	if (action & IPFT_TRACK_FREE_HEAD) {
		bpf_map_delete_elem(&ipft_tracked, &head);
		ipft_track_insert(addr, id, head, now);
	}
	/* The skb's own entry exists only once its buffer is gone (or being
	 * replaced): freeing the skb then ends the packet. */
	if (action & IPFT_TRACK_FREE_SKB)
		ended = !bpf_map_delete_elem(&ipft_tracked, &addr);
	if (action & IPFT_TRACK_END) {
		__u32 end = BPF_CORE_READ(skb, end);
		struct skb_shared_info *shinfo = (struct skb_shared_info *)(head + end);
		int dataref = BPF_CORE_READ(shinfo, dataref.counter);

		/* The buffer goes with this skb only if no clone still uses it. */
		if ((dataref & IPFT_SKB_DATAREF_MASK) <= 1) {
			bpf_map_delete_elem(&ipft_tracked, &head);
			ended = true;
		}
		bpf_map_delete_elem(&ipft_tracked, &addr);
	}
	return ended;
}

#endif
