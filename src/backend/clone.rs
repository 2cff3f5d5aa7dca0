//! Copies of a loaded BPF program, one per attach target.
//!
//! fentry programs are bound at load time to one kernel function, and a raw
//! tracepoint program cannot tell which tracepoint fired: both backends need
//! one program per target. Opening and relocating the object for each of
//! 1,500 functions would take minutes, so libbpf loads each program once and
//! this module loads copies of its final instructions (CO-RE relocated, map
//! fds embedded) with only the attach target, or a patched constant, changed.
//! Loading and attaching copies runs on several threads.

use anyhow::{bail, Result};
use libbpf_rs::{AsRawLibbpf, Program};
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A loaded program's instructions and type, ready to be loaded again.
#[derive(Clone)]
pub struct ProgTemplate {
    name: CString,
    prog_type: libbpf_sys::bpf_prog_type,
    attach_type: libbpf_sys::bpf_attach_type,
    insns: Vec<libbpf_sys::bpf_insn>,
}

// SAFETY: plain data (instructions and ids); no pointers into libbpf.
unsafe impl Send for ProgTemplate {}
unsafe impl Sync for ProgTemplate {}

/// Opcode of the first half of a 64-bit immediate load (BPF_LD | BPF_IMM | BPF_DW).
const LD_IMM64: u8 = 0x18;

impl ProgTemplate {
    /// Takes the final instructions of `prog`, which libbpf has loaded.
    pub fn from_loaded(prog: &Program) -> Self {
        let ptr = prog.as_libbpf_object().as_ptr();
        // SAFETY: prog is a loaded program; libbpf keeps its final
        // instructions until the object is closed; we copy them.
        let insns = unsafe {
            let p = libbpf_sys::bpf_program__insns(ptr);
            let n = libbpf_sys::bpf_program__insn_cnt(ptr) as usize;
            std::slice::from_raw_parts(p, n).to_vec()
        };
        // SAFETY: valid program pointer.
        let (prog_type, attach_type) = unsafe {
            (
                libbpf_sys::bpf_program__type(ptr),
                libbpf_sys::bpf_program__expected_attach_type(ptr),
            )
        };
        let name = CString::new(prog.name().as_encoded_bytes()).unwrap_or_default();
        ProgTemplate {
            name,
            prog_type,
            attach_type,
            insns,
        }
    }

    /// A program that does nothing (`r0 = 0; exit`): enough to learn whether
    /// the kernel takes a program type and attachment, at no verifier cost.
    pub fn trivial(
        prog_type: libbpf_sys::bpf_prog_type,
        attach_type: libbpf_sys::bpf_attach_type,
    ) -> Self {
        const MOV64_IMM: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
        const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
        let insn = |code| libbpf_sys::bpf_insn {
            code,
            ..Default::default()
        };
        ProgTemplate {
            name: c"ipft_check".into(),
            prog_type,
            attach_type,
            insns: vec![insn(MOV64_IMM), insn(EXIT)],
        }
    }

    /// The same program with the pcap filter spliced into its placeholders.
    pub fn spliced(self, filter: &crate::filter::PacketFilter) -> Result<Self> {
        let insns = crate::filter::splice::splice(&self.insns, filter)?;
        Ok(ProgTemplate { insns, ..self })
    }

    /// fentry, fexit, raw tracepoint...: how a copy is attached.
    pub fn attach_type(&self) -> libbpf_sys::bpf_attach_type {
        self.attach_type
    }

    /// Replaces every 64-bit immediate `magic` with `value` in a copy.
    pub fn patched(&self, magic: u64, value: u64) -> Result<Vec<libbpf_sys::bpf_insn>> {
        let mut insns = self.insns.clone();
        let mut found = 0;
        for i in 0..insns.len().saturating_sub(1) {
            let imm = |insn: &libbpf_sys::bpf_insn| insn.imm as u32 as u64;
            if insns[i].code == LD_IMM64 && (imm(&insns[i]) | imm(&insns[i + 1]) << 32) == magic {
                insns[i].imm = value as u32 as i32;
                insns[i + 1].imm = (value >> 32) as u32 as i32;
                found += 1;
            }
        }
        if found == 0 {
            bail!(
                "program {:?} has no constant {magic:#x} to patch",
                self.name
            );
        }
        Ok(insns)
    }

    /// Loads a copy bound to BTF function `attach_btf_id` (in the module BTF
    /// `attach_btf_obj_fd`, or vmlinux), optionally with other instructions.
    pub fn load(
        &self,
        insns: Option<&[libbpf_sys::bpf_insn]>,
        attach_btf_id: u32,
        attach_btf_obj_fd: Option<RawFd>,
    ) -> Result<OwnedFd> {
        let insns = insns.unwrap_or(&self.insns);
        let mut opts = libbpf_sys::bpf_prog_load_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
            expected_attach_type: self.attach_type,
            attach_btf_id,
            attach_btf_obj_fd: attach_btf_obj_fd.unwrap_or(0) as _,
            ..Default::default()
        };
        // SAFETY: valid name, license, instruction slice and options.
        let fd = unsafe {
            libbpf_sys::bpf_prog_load(
                self.prog_type,
                self.name.as_ptr(),
                c"GPL".as_ptr(),
                insns.as_ptr(),
                insns.len() as _,
                &mut opts,
            )
        };
        owned(fd)
    }
}

/// libbpf's low-level calls return a file descriptor or -errno.
pub fn owned(fd: i32) -> Result<OwnedFd> {
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd).into());
    }
    // SAFETY: a fresh descriptor we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Runs `work` over `items` on `threads` threads, keeping input order in
/// the results, and stops handing out work when `stop` is set.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    stop: &std::sync::atomic::AtomicBool,
    progress: &indicatif::ProgressBar,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let slots: Vec<std::sync::Mutex<&mut Option<R>>> =
        results.iter_mut().map(std::sync::Mutex::new).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = work(item);
                **slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                progress.inc(1);
            });
        }
    });
    drop(slots);
    results
}
