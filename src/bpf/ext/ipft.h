/*
 * ipft extension header (`ipft --gen bpf-module-header`).
 *
 * An extension is BPF C providing
 *
 *     __hidden int module(void *ctx, struct sk_buff *skb, __u8 data[64]);
 *
 * which fills up to 64 bytes of `data` and returns 0 to keep the event
 * (non-zero drops it). The layout of `data` is declared as a global
 * `struct ... __ipft_event_struct;`; ipft prints each member by name:
 * integers in decimal, bool as true/false, char as a character, pointers in
 * hex, and with __ipft_fmt_hex, __ipft_fmt_enum(ref) or
 * __ipft_fmt_enum_flags(ref) (ref: a variable declared with __ipft_ref(name)
 * whose type is the enum). Compatible with ipftrace2 extensions.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define __ipft_sec_skip __attribute__((section("__ipft_skip")))
#define __ipft_ref(name) name __ipft_sec_skip
#define __ipft_event_struct __ipft_event_struct __ipft_sec_skip
#define __ipft_fmt_hex __attribute__((btf_decl_tag("ipft:fmt:hex")))
#define __ipft_fmt_enum(ref) __attribute__((btf_decl_tag("ipft:fmt:enum:" #ref)))
#define __ipft_fmt_enum_flags(ref) __attribute__((btf_decl_tag("ipft:fmt:enum_flags:" #ref)))
