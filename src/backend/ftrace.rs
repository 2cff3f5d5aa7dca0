//! ftrace backend: fentry programs through BPF trampolines, reading the skb
//! from the argument array (positions 0..12).
//!
//! An fentry program is bound to one function when it is loaded. libbpf
//! loads one program per skb position (bound to a first function); every
//! target then gets a copy of that program's final instructions bound to it,
//! loaded and attached on several threads (see [`super::clone`]).
//!
//! fentry binds by BTF id, which the kernel resolves by name: static
//! functions sharing a name cannot be told apart, so they are refused here
//! (the kprobe backends attach them by address).

use super::clone::{owned, parallel_map, ProgTemplate};
use super::{Attached, Attachment, Backend, Programs};
use crate::cli::BackendKind;
use crate::discovery::Target;
use crate::kernel::VMLINUX;
use anyhow::{bail, Context, Result};
use libbpf_rs::OpenObject;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

pub struct Ftrace {
    /// Also an fexit program per function (function_graph).
    pub graph: bool,
}

/// The BPF trampoline passes up to 12 arguments (x86_64, Linux 6.1).
const POSITIONS: usize = 12;

/// (position, is fexit) of one of the object's programs.
fn prog_role(name: &str) -> Option<(usize, bool)> {
    let (fexit, pos) = if let Some(pos) = name.strip_prefix("ipft_fentry_") {
        (false, pos)
    } else {
        (true, name.strip_prefix("ipft_fexit_")?)
    };
    Some((pos.parse().ok()?, fexit))
}

impl Backend for Ftrace {
    fn kind(&self) -> BackendKind {
        BackendKind::Ftrace
    }

    fn max_positions(&self) -> usize {
        POSITIONS
    }

    fn object_bytes(&self) -> &'static [u8] {
        crate::bpf::FTRACE_OBJ
    }

    /// Binds each position's program to its first target; positions
    /// without targets are not loaded.
    fn prepare(&self, open: &mut OpenObject, targets: &[Target]) -> Result<()> {
        for mut prog in open.progs_mut() {
            let first = prog_role(&prog.name().to_string_lossy())
                .filter(|&(_, fexit)| self.graph || !fexit)
                .and_then(|(pos, _)| targets.iter().find(|t| t.skb_pos == pos));
            match first {
                Some(t) => prog.set_attach_target(0, Some(t.name.clone()))?,
                None => prog.set_autoload(false),
            }
        }
        Ok(())
    }

    fn check(&self, _tracefs: &Path, sample: &Target) -> Result<()> {
        super::try_trivial(
            self.kind(),
            "fentry programs",
            "they need BPF trampolines (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS, Linux 5.5+) and no lockdown; use -b kprobe",
            || {
                let module_btf = module_btf_fds(std::slice::from_ref(sample))?;
                let btf_obj = module_btf.get(&sample.module).map(|fd| fd.as_raw_fd());
                let prog = ProgTemplate::trivial(
                    libbpf_sys::BPF_PROG_TYPE_TRACING,
                    libbpf_sys::BPF_TRACE_FENTRY,
                )
                .load(None, sample.btf_id, btf_obj)?;
                attach_tracing(prog.as_raw_fd(), libbpf_sys::BPF_TRACE_FENTRY)
            },
        )
    }

    fn remembers_calls(&self) -> bool {
        self.graph
    }

    fn attach(&self, progs: &Programs, targets: &[Target], stop: &AtomicBool) -> Result<Attached> {
        let start = Instant::now();
        // (position, is fexit) -> the program libbpf loaded for it.
        let mut templates: HashMap<(usize, bool), ProgTemplate> = HashMap::new();
        for prog in progs.obj().progs() {
            if let Some(role) = prog_role(&prog.name().to_string_lossy()) {
                if (self.graph || !role.1) && targets.iter().any(|t| t.skb_pos == role.0) {
                    templates.insert(role, progs.template(&prog));
                }
            }
        }
        let module_btf = module_btf_fds(targets)?;
        let mut copies: HashMap<(&str, &str), usize> = HashMap::new();
        for t in targets {
            *copies.entry((&t.name, &t.module)).or_default() += 1;
        }

        let bar = crate::progress::attach_bar(targets.len() as u64);
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
        let results = parallel_map(targets, threads, stop, &bar, |t| -> Result<Attachment> {
            if copies[&(t.name.as_str(), t.module.as_str())] > 1 {
                bail!(
                    "several functions are named {}; fentry cannot tell them apart (-b kprobe can)",
                    t.name
                );
            }
            let btf_obj = if t.module == VMLINUX {
                None
            } else {
                let fd = module_btf
                    .get(&t.module)
                    .with_context(|| format!("no BTF loaded for module {}", t.module))?;
                Some(fd.as_raw_fd())
            };
            let attach = |fexit: bool| -> Result<OwnedFd> {
                let template = templates
                    .get(&(t.skb_pos, fexit))
                    .with_context(|| format!("no program for skb position {}", t.skb_pos))?;
                let prog = template.load(None, t.btf_id, btf_obj)?;
                attach_tracing(prog.as_raw_fd(), template.attach_type())
            };
            let entry = attach(false)?;
            if !self.graph {
                return Ok(Attachment::Fd(entry));
            }
            Ok(Attachment::Pair(entry, attach(true)?))
        });
        bar.finish_and_clear();

        Ok(Attached::from_results(targets, results, start))
    }
}

/// Creates the BPF link that attaches a loaded tracing program to the
/// function it was loaded for.
fn attach_tracing(prog_fd: RawFd, attach_type: libbpf_sys::bpf_attach_type) -> Result<OwnedFd> {
    // SAFETY: plain syscall wrapper; NULL opts is allowed.
    let fd = unsafe { libbpf_sys::bpf_link_create(prog_fd, 0, attach_type, std::ptr::null()) };
    if fd == -ENOTSUPP {
        bail!("ENOTSUPP: this kernel's BPF trampoline cannot take this function (e.g. more than 6 arguments on Linux 6.1); -b kprobe can");
    }
    owned(fd)
}

/// The kernel-internal "not supported" errno that BPF returns (not in libc).
const ENOTSUPP: i32 = 524;

/// File descriptors of the kernel's BTF objects of the modules `targets`
/// live in: fentry on a module function names the module's BTF.
fn module_btf_fds(targets: &[Target]) -> Result<HashMap<String, OwnedFd>> {
    let wanted: Vec<&str> = targets
        .iter()
        .map(|t| t.module.as_str())
        .filter(|m| *m != VMLINUX)
        .collect();
    let mut fds = HashMap::new();
    if wanted.is_empty() {
        return Ok(fds);
    }
    let mut id = 0u32;
    // SAFETY (all calls below): plain syscall wrappers with valid pointers.
    while unsafe { libbpf_sys::bpf_btf_get_next_id(id, &mut id) } == 0 {
        let Ok(fd) = owned(unsafe { libbpf_sys::bpf_btf_get_fd_by_id(id) }) else {
            continue;
        };
        let mut name = [0u8; 64];
        let mut info = libbpf_sys::bpf_btf_info {
            name: name.as_mut_ptr() as u64,
            name_len: name.len() as u32,
            ..Default::default()
        };
        let mut len = std::mem::size_of::<libbpf_sys::bpf_btf_info>() as u32;
        if unsafe { libbpf_sys::bpf_btf_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) } != 0 {
            continue;
        }
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let name = String::from_utf8_lossy(&name[..end]).into_owned();
        if info.kernel_btf != 0 && wanted.contains(&name.as_str()) {
            fds.insert(name, fd);
        }
    }
    Ok(fds)
}
