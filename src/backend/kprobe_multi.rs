//! kprobe-multi backend: one multi-kprobe (fprobe) link per skb position,
//! covering every function whose skb is at that position, attached by
//! address so static functions sharing a name stay apart. Attaching and
//! detaching a link costs about as much as one kprobe, whatever its size.
//!
//! Needs CONFIG_FPROBE (Linux 5.18+). The kernel accepts or refuses a link
//! as a whole; when it refuses, the batch is split in halves to find and skip
//! the functions it will not take.

use super::clone::owned;
use super::kprobe::{load_used_programs, ProgramNames};
use super::{Attached, Backend, ProgTemplate, Programs};
use crate::cli::BackendKind;
use crate::discovery::Target;
use anyhow::{Context, Result};
use libbpf_rs::OpenObject;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub struct KprobeMulti {
    /// Also a return link per position (function_graph).
    pub graph: bool,
}

const POSITIONS: usize = 5;

const PROGRAMS: ProgramNames = ProgramNames {
    entry: "ipft_kprobe_multi_",
    graph_entry: "ipft_kprobe_multi_g_",
    ret: "ipft_kretprobe_multi",
};

impl Backend for KprobeMulti {
    fn kind(&self) -> BackendKind {
        BackendKind::KprobeMulti
    }

    fn max_positions(&self) -> usize {
        POSITIONS
    }

    fn object_bytes(&self) -> &'static [u8] {
        crate::bpf::KPROBE_MULTI_OBJ
    }

    fn prepare(&self, open: &mut OpenObject, targets: &[Target]) -> Result<()> {
        load_used_programs(open, targets, self.graph, &PROGRAMS);
        Ok(())
    }

    fn check(&self, _tracefs: &Path, sample: &Target) -> Result<()> {
        super::try_trivial(
            self.kind(),
            "multi-kprobe links",
            "they need CONFIG_FPROBE=y (Linux 5.18+); use -b kprobe",
            || {
                let prog = ProgTemplate::trivial(
                    libbpf_sys::BPF_PROG_TYPE_KPROBE,
                    libbpf_sys::BPF_TRACE_KPROBE_MULTI,
                )
                .load(None, 0, None)?;
                attach_addrs(prog.as_raw_fd(), &[sample.addr], false)
            },
        )
    }

    fn attach(&self, progs: &Programs, targets: &[Target], stop: &AtomicBool) -> Result<Attached> {
        let start = Instant::now();
        let bar = crate::progress::attach_bar(targets.len() as u64);
        let mut attached = Attached {
            links: Vec::new(),
            attached: 0,
            refused: Vec::new(),
            elapsed: Default::default(),
            interrupted: false,
        };
        for pos in 0..POSITIONS {
            if stop.load(Ordering::Relaxed) {
                attached.interrupted = true;
                break;
            }
            let batch: Vec<&Target> = targets.iter().filter(|t| t.skb_pos == pos).collect();
            if batch.is_empty() {
                continue; // (its program is not loaded)
            }
            let entry = if self.graph {
                PROGRAMS.graph_entry
            } else {
                PROGRAMS.entry
            };
            let prog = progs.fd(&format!("{entry}{pos}"))?;
            let mut ok_addrs = Vec::new();
            attach_batch(prog, &batch, &mut attached, &mut ok_addrs)?;
            if self.graph && !ok_addrs.is_empty() {
                let ret = progs.fd(PROGRAMS.ret)?;
                let link = attach_addrs(ret, &ok_addrs, true)
                    .context("attaching the return probes of function_graph")?;
                attached.links.push(super::Attachment::Fd(link));
            }
            bar.inc(batch.len() as u64);
        }
        bar.finish_and_clear();
        attached.elapsed = start.elapsed();
        Ok(attached)
    }
}

/// Attaches `batch` with one link, or splits it when the kernel refuses;
/// adds the addresses it attached to `ok_addrs`.
fn attach_batch(
    prog: RawFd,
    batch: &[&Target],
    out: &mut Attached,
    ok_addrs: &mut Vec<u64>,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let addrs: Vec<u64> = batch.iter().map(|t| t.addr).collect();
    match attach_addrs(prog, &addrs, false) {
        Ok(link) => {
            out.links.push(super::Attachment::Fd(link));
            out.attached += batch.len();
            ok_addrs.extend(addrs);
        }
        Err(e) if batch.len() == 1 => {
            let t = batch[0];
            out.refused
                .push((format!("{} [{}]", t.name, t.module), format!("{e:#}")));
        }
        Err(_) => {
            let (a, b) = batch.split_at(batch.len() / 2);
            attach_batch(prog, a, out, ok_addrs)?;
            attach_batch(prog, b, out, ok_addrs)?;
        }
    }
    Ok(())
}

/// One multi-kprobe link of program `prog` on every address in `addrs`.
fn attach_addrs(prog: RawFd, addrs: &[u64], retprobe: bool) -> Result<OwnedFd> {
    let mut opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        ..Default::default()
    };
    opts.__bindgen_anon_1.kprobe_multi.flags = if retprobe {
        libbpf_sys::BPF_F_KPROBE_MULTI_RETURN
    } else {
        0
    };
    opts.__bindgen_anon_1.kprobe_multi.cnt = addrs.len() as _;
    opts.__bindgen_anon_1.kprobe_multi.addrs = addrs.as_ptr() as *const _;
    // SAFETY: a loaded program; opts points at `addrs`, alive for the call.
    owned(unsafe {
        libbpf_sys::bpf_link_create(prog, 0, libbpf_sys::BPF_TRACE_KPROBE_MULTI, &opts)
    })
}
