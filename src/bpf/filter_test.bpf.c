// SPDX-License-Identifier: GPL-2.0
/*
 * Test harness for packet selection (src/filter/kernel_tests.rs, never
 * shipped in the binary): a raw tracepoint program that user space runs with
 * BPF_PROG_TEST_RUN after splicing a translated filter into it. The frame
 * lives in an array map (map memory is kernel memory, so the filter's
 * bpf_probe_read_kernel reads it as it reads an skb's data); the program
 * calls ipft_filter_l2 or ipft_filter_l3 as the map says and returns the
 * result.
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
	__u32 _pad;
	__u8 bytes[IPFT_TEST_FRAME_MAX];
};

struct {
	__uint(type, 2); /* BPF_MAP_TYPE_ARRAY, not in kernel_types.h */
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ipft_test_frame);
} ipft_test_frames SEC(".maps");

SEC("raw_tp")
int ipft_filter_test(void *ctx)
{
	struct ipft_test_frame *frame;
	__u32 key = 0;
	__u64 data;
	__u32 caplen;

	frame = bpf_map_lookup_elem(&ipft_test_frames, &key);
	if (!frame)
		return -1;
	/* The filters take a plain number, as the skb's data address is in
	 * ipft's programs: read the pointer back through a helper so the
	 * verifier sees a scalar, not a map value pointer. */
	if (bpf_probe_read_kernel(&data, sizeof(data), &frame))
		return -1;
	data += __builtin_offsetof(struct ipft_test_frame, bytes);
	caplen = frame->caplen;
	if (caplen > IPFT_TEST_FRAME_MAX)
		caplen = IPFT_TEST_FRAME_MAX;
	if (frame->layer == 2)
		return ipft_filter_l2(data, caplen, frame->wirelen) != 0;
	return ipft_filter_l3(data, caplen, frame->wirelen) != 0;
}

char LICENSE[] SEC("license") = "GPL";
