//! tracepoint backend: raw tracepoint programs on every tracepoint whose
//! arguments carry a `struct sk_buff *` (netif_receive_skb, net_dev_queue,
//! kfree_skb, ...), found from the kernel's `btf_trace_*` BTF types.
//!
//! Beyond ipftrace2: it needs neither kprobes nor BPF trampolines, so it works
//! on kernels that lack them or refuse them (lockdown), like the 6.18 kernel
//! of the development machines. It sees fewer places than function tracing,
//! the ones the kernel's developers chose to expose.
//!
//! A raw tracepoint program cannot tell which tracepoint fired, so each
//! tracepoint gets its own copy of the program for its skb position, with
//! the tracepoint's id patched in (see [`super::clone`]).

use super::clone::{owned, parallel_map, ProgTemplate};
use super::{Attached, Attachment, Backend, Programs};
use crate::cli::BackendKind;
use crate::discovery::{Discovery, KernelFacts, NameFilter, Target};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

pub struct Tracepoint;

/// Programs exist for the skb at argument 0..6.
const POSITIONS: usize = 6;

/// The constant each copy replaces with its tracepoint's id; the same as
/// IPFT_TP_ID_MAGIC in src/bpf/tracepoint.bpf.c.
const TP_ID_MAGIC: u64 = 0x1bad_c0de_5eed_1e55;

fn prog_name(pos: usize) -> String {
    format!("ipft_raw_tp_{pos}")
}

/// Tracepoint whose own program also records the drop reason.
pub const KFREE_SKB: &str = "kfree_skb";
const KFREE_SKB_PROG: &str = "ipft_raw_tp_kfree_skb";
/// Key of the kfree_skb template (no position has this index).
const KFREE_SKB_KEY: usize = usize::MAX;

impl Backend for Tracepoint {
    fn kind(&self) -> BackendKind {
        BackendKind::Tracepoint
    }

    fn max_positions(&self) -> usize {
        POSITIONS
    }

    fn object_bytes(&self) -> &'static [u8] {
        crate::bpf::TRACEPOINT_OBJ
    }

    fn discover(&self, facts: &KernelFacts, filter: &NameFilter) -> Discovery {
        crate::discovery::discover_tracepoints(facts, POSITIONS, filter)
    }

    fn check(&self, _tracefs: &Path, sample: &Target) -> Result<()> {
        super::try_trivial(
            self.kind(),
            "raw tracepoint programs",
            "they need CONFIG_BPF_EVENTS",
            || {
                let prog = ProgTemplate::trivial(libbpf_sys::BPF_PROG_TYPE_RAW_TRACEPOINT, 0)
                    .load(None, 0, None)?;
                let name = CString::new(sample.name.as_str())?;
                // SAFETY: valid tracepoint name and program fd.
                owned(unsafe {
                    libbpf_sys::bpf_raw_tracepoint_open(name.as_ptr(), prog.as_raw_fd())
                })
            },
        )
    }

    fn attach(&self, progs: &Programs, targets: &[Target], stop: &AtomicBool) -> Result<Attached> {
        let start = Instant::now();
        let templates: HashMap<usize, ProgTemplate> = progs
            .obj()
            .progs()
            .filter_map(|p| {
                let key = if *p.name() == *KFREE_SKB_PROG {
                    KFREE_SKB_KEY
                } else {
                    (0..POSITIONS).find(|&pos| *p.name() == *prog_name(pos))?
                };
                Some((key, progs.template(&p)))
            })
            .collect();
        let bar = crate::progress::attach_bar(targets.len() as u64);
        let results = parallel_map(targets, 2, stop, &bar, |t| -> Result<Attachment> {
            let key = if t.name == KFREE_SKB && t.skb_pos == 0 {
                KFREE_SKB_KEY
            } else {
                t.skb_pos
            };
            let template = templates
                .get(&key)
                .with_context(|| format!("no program for skb argument {}", t.skb_pos))?;
            let insns = template.patched(TP_ID_MAGIC, t.addr)?;
            let prog = template.load(Some(&insns), 0, None)?;
            let name = CString::new(t.name.as_str())?;
            // SAFETY: valid tracepoint name and program fd.
            owned(unsafe { libbpf_sys::bpf_raw_tracepoint_open(name.as_ptr(), prog.as_raw_fd()) })
                .map(Attachment::Fd)
        });
        bar.finish_and_clear();
        Ok(Attached::from_results(targets, results, start))
    }
}
