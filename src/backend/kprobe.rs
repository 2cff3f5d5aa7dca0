//! kprobe backend: one program per skb position (registers di, si, dx, cx,
//! r8), each loaded once and attached by address to every function whose skb
//! is at that position. Attaching by address, not name, keeps static
//! functions that share a name apart.

use super::{attach_each, Attached, Backend};
use crate::cli::BackendKind;
use crate::discovery::Target;
use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::{Link, Object, Program};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::AtomicBool;

pub struct Kprobe;

/// x86_64 passes the first five integer parameters in registers kprobes read.
const POSITIONS: usize = 5;

impl Backend for Kprobe {
    fn kind(&self) -> BackendKind {
        BackendKind::Kprobe
    }

    fn max_positions(&self) -> usize {
        POSITIONS
    }

    fn object_bytes(&self) -> &'static [u8] {
        crate::bpf::KPROBE_OBJ
    }

    fn check(&self, tracefs: &Path, _sample: &Target) -> Result<()> {
        let events = tracefs.join("kprobe_events");
        if !events.exists() {
            bail!(
                "backend kprobe: this kernel has no kprobes ({} missing); it needs CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y",
                events.display()
            );
        }
        Ok(())
    }

    fn attach(&self, obj: &Object, targets: &[Target], stop: &AtomicBool) -> Result<Attached> {
        let progs: Vec<Program> = (0..POSITIONS)
            .map(|pos| {
                let name = format!("ipft_kprobe_{pos}");
                obj.progs()
                    .find(|p| p.name() == name.as_str())
                    .with_context(|| format!("BPF program {name} missing from ipft's object"))
            })
            .collect::<Result<_>>()?;
        Ok(attach_each(targets, stop, |t| {
            attach_kprobe_at(&progs[t.skb_pos], t.addr, false)
        }))
    }
}

/// Attaches `prog` as a kprobe (or kretprobe) at an absolute kernel address.
/// libbpf-rs only attaches by name; libbpf itself takes a NULL name with the
/// address as offset, which the kernel's kprobe PMU reads as an address.
pub fn attach_kprobe_at(prog: &Program, addr: u64, retprobe: bool) -> Result<Link> {
    let opts = libbpf_sys::bpf_kprobe_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_kprobe_opts>() as _,
        offset: addr as _,
        retprobe,
        ..Default::default()
    };
    use libbpf_rs::AsRawLibbpf;
    // SAFETY: prog is a loaded program; opts is a valid, sized options struct.
    let ptr = unsafe {
        libbpf_sys::bpf_program__attach_kprobe_opts(
            prog.as_libbpf_object().as_ptr(),
            std::ptr::null(),
            &opts,
        )
    };
    // libbpf returns NULL (and sets errno) on error.
    let ptr = NonNull::new(ptr).ok_or_else(|| anyhow!("{}", std::io::Error::last_os_error()))?;
    // SAFETY: the pointer came from libbpf and is a valid link we now own.
    Ok(unsafe { Link::from_ptr(ptr) })
}
