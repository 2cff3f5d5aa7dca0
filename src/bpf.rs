//! The BPF objects built from src/bpf by build.rs and embedded in the binary,
//! and the load-time configuration they read from .rodata.

/// kprobe backend: ipft_kprobe_0 .. ipft_kprobe_4, one per skb position.
pub static KPROBE_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kprobe.bpf.o"));

/// kprobe-multi backend: ipft_kprobe_multi_0 .. ipft_kprobe_multi_4.
pub static KPROBE_MULTI_OBJ: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kprobe_multi.bpf.o"));

/// ftrace backend: ipft_fentry_0 .. ipft_fentry_11.
pub static FTRACE_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ftrace.bpf.o"));

/// tracepoint backend: ipft_raw_tp_0 .. ipft_raw_tp_5.
pub static TRACEPOINT_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tracepoint.bpf.o"));

/// Mirror of `struct ipft_config` in src/bpf/body.bpf.h.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BpfConfig {
    pub mark: u32,
    pub mask: u32,
    pub use_ringbuf: u32,
    pub sample_period: u32,
    pub wakeup_events: u32,
    /// IPFT_SELECT_* bits of src/bpf/select.bpf.h.
    pub select: u32,
    pub netns: u32,
    pub ifindex: u32,
    pub track: u32,
    /// fentry programs remember calls for fexit (function_graph).
    pub graph: u32,
    /// Add packet metadata to entry events (IPFT_SEC_META).
    pub meta: u32,
    /// An extension is linked: add its data (IPFT_SEC_DATA).
    pub ext: u32,
    /// Packet bytes per entry event (IPFT_SEC_PACKET); 0: none.
    pub snaplen: u32,
}

/// Selector bits of `BpfConfig::select` (src/bpf/select.bpf.h).
pub const SELECT_MARK: u32 = 1 << 0;
pub const SELECT_NETNS: u32 = 1 << 1;
pub const SELECT_IFINDEX: u32 = 1 << 2;
pub const SELECT_PCAP: u32 = 1 << 3;

impl BpfConfig {
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: repr(C) struct of u32s, no padding.
        unsafe {
            std::slice::from_raw_parts(
                (self as *const Self).cast::<u8>(),
                std::mem::size_of::<Self>(),
            )
        }
    }
}
