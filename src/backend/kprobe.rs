//! kprobe backend: one program per skb position (registers di, si, dx, cx,
//! r8), each loaded once and attached by address to every function whose skb
//! is at that position. Attaching by address, not name, keeps static
//! functions that share a name apart.

use super::clone::{owned, parallel_map};
use super::{Attached, Attachment, Backend, Programs};
use crate::cli::BackendKind;
use crate::discovery::Target;
use anyhow::{bail, Context, Result};
use libbpf_rs::OpenObject;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::AtomicBool;

pub struct Kprobe {
    /// Also a kretprobe per function (function_graph).
    pub graph: bool,
}

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

    fn requirement(&self, tracefs: &Path) -> Result<()> {
        let events = tracefs.join("kprobe_events");
        if !events.exists() {
            bail!(
                "backend kprobe: this kernel has no kprobes ({} missing); it needs CONFIG_KPROBES=y and CONFIG_KPROBE_EVENTS=y",
                events.display()
            );
        }
        Ok(())
    }

    fn prepare(&self, open: &mut OpenObject, targets: &[Target]) -> Result<()> {
        load_used_programs(open, targets, self.graph, &KPROBE_PROGRAMS);
        Ok(())
    }

    fn expedite_rcu(&self) -> bool {
        // Each kprobe's removal waits for RCU grace periods under a global
        // mutex: 1,472 kprobes detached in ~26 s instead of ~33 s.
        true
    }

    fn attach(&self, progs: &Programs, targets: &[Target], stop: &AtomicBool) -> Result<Attached> {
        let start = std::time::Instant::now();
        // function_graph entries also remember the call for the kretprobe.
        let entry = if self.graph {
            KPROBE_PROGRAMS.graph_entry
        } else {
            KPROBE_PROGRAMS.entry
        };
        // (Only the positions of some target are loaded.)
        let prog_fds: Vec<Option<RawFd>> = (0..POSITIONS)
            .map(|pos| {
                let used = targets.iter().any(|t| t.skb_pos == pos);
                used.then(|| progs.fd(&format!("{entry}{pos}"))).transpose()
            })
            .collect::<Result<_>>()?;
        let ret_fd = if self.graph {
            progs.fd(KPROBE_PROGRAMS.ret)?
        } else {
            -1
        };
        let pmu = KprobePmu::read()?;
        let bar = crate::progress::attach_bar(targets.len() as u64);
        let results = parallel_map(targets, ATTACH_THREADS, stop, &bar, |t| {
            let prog = prog_fds[t.skb_pos].context("no program for the skb's position")?;
            let entry = pmu.attach(prog, t.addr, false)?;
            if !self.graph {
                return Ok(Attachment::Fd(entry));
            }
            let ret = pmu.attach(ret_fd, t.addr, true)?;
            Ok(Attachment::Pair(entry, ret))
        });
        bar.finish_and_clear();
        Ok(Attached::from_results(targets, results, start))
    }
}

/// The programs of a kprobe-family object (src/bpf/kprobe.bpf.h), by name:
/// `{entry}{pos}` per skb position, `{graph_entry}{pos}` for function_graph,
/// and one return program.
pub(super) struct ProgramNames {
    pub entry: &'static str,
    pub graph_entry: &'static str,
    pub ret: &'static str,
}

const KPROBE_PROGRAMS: ProgramNames = ProgramNames {
    entry: "ipft_kprobe_",
    graph_entry: "ipft_kprobe_g_",
    ret: "ipft_kretprobe",
};

/// Loads only the programs that `targets` and the tracer use: the entry
/// programs of the skb positions some target has (the function_graph
/// variants with `graph`) and the return program with `graph`. The kernel
/// verifies every program loaded, about 1,500 instructions each: under
/// emulation seconds apiece, and all eleven were loaded for any target set.
pub(super) fn load_used_programs(
    open: &mut OpenObject,
    targets: &[Target],
    graph: bool,
    names: &ProgramNames,
) {
    let used = |pos: &str| {
        pos.parse::<usize>()
            .is_ok_and(|pos| targets.iter().any(|t| t.skb_pos == pos))
    };
    for mut prog in open.progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        let load = if name == names.ret {
            graph && !targets.is_empty()
        } else if let Some(pos) = name.strip_prefix(names.graph_entry) {
            graph && used(pos)
        } else if let Some(pos) = name.strip_prefix(names.entry) {
            !graph && used(pos)
        } else {
            true
        };
        if !load {
            prog.set_autoload(false);
        }
    }
}

/// Kprobes register under one kernel mutex; each attach also spends some time
/// in perf and BPF setup outside it, which a few threads could overlap. On
/// the 6.1 test guests this measured no faster than one thread.
const ATTACH_THREADS: usize = 4;

/// perf_event_open flag (linux/perf_event.h), not in the libc crate.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// The kernel's kprobe PMU (perf event source), which creates kprobes by
/// address without going through tracefs.
pub struct KprobePmu {
    pmu_type: u32,
    retprobe_config: u64,
}

impl KprobePmu {
    pub fn read() -> Result<Self> {
        let dir = Path::new("/sys/bus/event_source/devices/kprobe");
        let pmu_type = std::fs::read_to_string(dir.join("type"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .with_context(|| {
                format!(
                    "cannot read {}: this kernel has no kprobe PMU (Linux 4.17+ with CONFIG_KPROBE_EVENTS)",
                    dir.join("type").display()
                )
            })?;
        // "config:0": the bit that makes a kretprobe.
        let bit = std::fs::read_to_string(dir.join("format/retprobe"))
            .ok()
            .and_then(|f| f.trim().strip_prefix("config:")?.parse::<u32>().ok())
            .unwrap_or(0);
        Ok(KprobePmu {
            pmu_type,
            retprobe_config: 1 << bit,
        })
    }

    /// A kprobe (or kretprobe) at an absolute kernel address running
    /// `prog_fd`. Plain syscalls, so it is safe on several threads.
    pub fn attach(&self, prog_fd: RawFd, addr: u64, retprobe: bool) -> Result<OwnedFd> {
        // SAFETY: zero is a valid perf_event_attr to start from.
        let mut attr: libbpf_sys::perf_event_attr = unsafe { std::mem::zeroed() };
        attr.type_ = self.pmu_type;
        attr.size = std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32;
        attr.config = if retprobe { self.retprobe_config } else { 0 };
        // No function name: kprobe_addr (config2) is the address.
        attr.__bindgen_anon_3.kprobe_func = 0;
        attr.__bindgen_anon_4.kprobe_addr = addr;
        attr.__bindgen_anon_1.sample_period = 1;
        attr.__bindgen_anon_2.wakeup_events = 1;
        // SAFETY: valid attr; pid -1 with cpu 0 is how kprobe events are opened.
        let perf = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const _,
                -1,
                0,
                -1,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if perf < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: a fresh descriptor we own.
        let perf = unsafe { OwnedFd::from_raw_fd(perf as RawFd) };
        // SAFETY: valid descriptors; NULL opts is allowed.
        let link = owned(unsafe {
            libbpf_sys::bpf_link_create(
                prog_fd,
                perf.as_raw_fd(),
                libbpf_sys::BPF_PERF_EVENT,
                std::ptr::null(),
            )
        })?;
        // The link holds the perf event; closing ours leaves it attached
        // until the link is closed.
        drop(perf);
        Ok(link)
    }
}
