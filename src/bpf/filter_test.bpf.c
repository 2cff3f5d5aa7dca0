// SPDX-License-Identifier: GPL-2.0
/*
 * Test harness for packet selection (src/filter/kernel_tests.rs, never
 * shipped in the binary): a raw tracepoint program that user space runs with
 * BPF_PROG_TEST_RUN after splicing a translated filter into it. The frame
 * lives in an array map (map memory is kernel memory, so the filter's
 * bpf_probe_read_kernel reads it as it reads an skb's data); the program
 * calls ipft_filter_l2 or ipft_filter_l3 as the map says, leaves what it
 * returned in the map and returns whether it matched.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include "filter.bpf.h"

#define IPFT_TEST_FRAME_MAX 512

/* Mirrored by TestFrame in src/filter/kernel_tests.rs. */
struct ipft_test_frame {
	__u32 layer; /* 2: ipft_filter_l2, 3: ipft_filter_l3 */
	__u32 caplen;
	__u32 wirelen;
	__u32 bad_address; /* non-zero: pass this unreadable address instead */
	__s32 result;      /* out: what the filter returned */
	__u8 bytes[IPFT_TEST_FRAME_MAX];
};

struct {
	__uint(type, 2); /* BPF_MAP_TYPE_ARRAY, not in kernel_types.h */
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ipft_test_frame);
} ipft_test_frames SEC(".maps");

/* Subprograms before and after the placeholders in the final instructions
 * (libbpf appends them in the order they are first called), so that the
 * splicer's offset fixing is proven by the kernel's verifier too. */
static __noinline __u32 ipft_test_caplen(struct ipft_test_frame *frame)
{
	return frame->caplen > IPFT_TEST_FRAME_MAX ? IPFT_TEST_FRAME_MAX : frame->caplen;
}

static __noinline int ipft_test_verdict(int filter_result)
{
	return filter_result != 0;
}

SEC("raw_tp")
int ipft_filter_test(void *ctx)
{
	struct ipft_test_frame *frame;
	__u32 key = 0;
	__u32 caplen;
	__u64 data;
	int result;

	frame = bpf_map_lookup_elem(&ipft_test_frames, &key);
	if (!frame)
		return -1;
	caplen = ipft_test_caplen(frame);
	/* The filters take a plain number, as the skb's data address is in
	 * ipft's programs: read the pointer back through a helper so the
	 * verifier sees a scalar, not a map value pointer. */
	if (bpf_probe_read_kernel(&data, sizeof(data), &frame))
		return -1;
	data += __builtin_offsetof(struct ipft_test_frame, bytes);
	if (frame->bad_address)
		data = frame->bad_address;
	if (frame->layer == 2)
		result = ipft_filter_l2(data, caplen, frame->wirelen);
	else
		result = ipft_filter_l3(data, caplen, frame->wirelen);
	frame->result = result;
	return ipft_test_verdict(result);
}

char LICENSE[] SEC("license") = "GPL";
