//! kprobe-multi backend: one multi-kprobe (fprobe) link per skb position,
//! covering every function whose skb is at that position, attached by
//! address so static functions sharing a name stay apart. Attaching and
//! detaching a link costs about as much as one kprobe, whatever its size.
//!
//! Needs CONFIG_FPROBE (Linux 5.18+). The kernel accepts or refuses a link
//! as a whole; when it refuses, the batch is split in halves to find and skip
//! the functions it will not take.

use super::{Attached, Backend};
use crate::cli::BackendKind;
use crate::discovery::Target;
use anyhow::{anyhow, Context, Result};
use libbpf_rs::{AsRawLibbpf, Link, Object, Program};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub struct KprobeMulti {
    /// Also a return link per position (function_graph).
    pub graph: bool,
}

const POSITIONS: usize = 5;

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

    fn check(&self, _tracefs: &Path, sample: &Target) -> Result<()> {
        super::try_on(
            self,
            sample,
            "multi-kprobe links",
            "they need CONFIG_FPROBE=y (Linux 5.18+); use -b kprobe",
        )
    }

    fn attach(&self, obj: &Object, targets: &[Target], stop: &AtomicBool) -> Result<Attached> {
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
            let entry = if self.graph {
                "ipft_kprobe_multi_g_"
            } else {
                "ipft_kprobe_multi_"
            };
            let prog = find_prog(obj, &format!("{entry}{pos}"))?;
            let batch: Vec<&Target> = targets.iter().filter(|t| t.skb_pos == pos).collect();
            let mut ok_addrs = Vec::new();
            attach_batch(&prog, &batch, &mut attached, &mut ok_addrs)?;
            if self.graph && !ok_addrs.is_empty() {
                let ret = find_prog(obj, "ipft_kretprobe_multi")?;
                let link = attach_addrs(&ret, &ok_addrs, true)
                    .context("attaching the return probes of function_graph")?;
                attached.links.push(super::Attachment::Link(link));
            }
            bar.inc(batch.len() as u64);
        }
        bar.finish_and_clear();
        attached.elapsed = start.elapsed();
        Ok(attached)
    }
}

fn find_prog<'o>(obj: &'o Object, name: &str) -> Result<Program<'o>> {
    obj.progs()
        .find(|p| p.name() == name)
        .with_context(|| format!("BPF program {name} missing from ipft's object"))
}

/// Attaches `batch` with one link, or splits it when the kernel refuses;
/// adds the addresses it attached to `ok_addrs`.
fn attach_batch(
    prog: &Program,
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
            out.links.push(super::Attachment::Link(link));
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

fn attach_addrs(prog: &Program, addrs: &[u64], retprobe: bool) -> Result<Link> {
    let opts = libbpf_sys::bpf_kprobe_multi_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_kprobe_multi_opts>() as _,
        addrs: addrs.as_ptr() as *const _,
        cnt: addrs.len() as _,
        retprobe,
        ..Default::default()
    };
    // SAFETY: prog is loaded; opts points at `addrs`, alive for the call.
    let ptr = unsafe {
        libbpf_sys::bpf_program__attach_kprobe_multi_opts(
            prog.as_libbpf_object().as_ptr(),
            std::ptr::null(),
            &opts,
        )
    };
    let ptr = NonNull::new(ptr).ok_or_else(|| anyhow!(std::io::Error::last_os_error()))?;
    // SAFETY: a valid link from libbpf, now owned by us.
    Ok(unsafe { Link::from_ptr(ptr) })
}
