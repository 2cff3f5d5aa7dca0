//! Classic BPF (what libpcap compiles a pcap-filter expression to) translated
//! to one eBPF subprogram with the calling convention of the placeholders in
//! src/bpf/filter.bpf.h: r1 the packet's kernel address, r2 the bytes
//! readable from there (caplen), r3 its length (wirelen); r0 the result,
//! non-zero on match. Pure: no kernel, no libpcap.
//!
//! Packet bytes are read with bpf_probe_read_kernel, never dereferenced: the
//! first 128 bytes (or caplen, if fewer) once per run into a stack window,
//! and a load beyond the window but within caplen with a read of its own. A
//! load beyond caplen, or whose read fails, ends the run with 0 (no match),
//! as classic BPF does for out-of-bounds loads; so does division or modulo by
//! a zero X. What cannot be translated faithfully (loops, Linux ancillary
//! loads, unknown opcodes, over-long programs) is refused, never replaced by
//! a match-all or match-none.
//!
//! The subprogram uses r6-r9 and a stack frame of 152 bytes (slots for the
//! arguments and one out-of-window read, the 128-byte window), plus the
//! scratch words M[] the program uses (at most 64 bytes): its callers' frames
//! and this one must fit the verifier's 512 bytes together.

use super::ebpf::{self, insn, FP};
use libbpf_sys::bpf_insn;

/// One classic BPF instruction, laid out as libpcap's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CbpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

impl CbpfInsn {
    pub const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Self {
        CbpfInsn { code, jt, jf, k }
    }
}

/// Longest classic program translated: the kernel's own limit for classic
/// BPF (BPF_MAXINSNS). libpcap's output for real expressions is far shorter.
pub const MAX_CBPF_INSNS: usize = 4096;

/// Bytes of the packet read once per run into the stack window.
pub const WINDOW: u32 = 128;

/// Why a classic program was not translated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("the classic BPF program is empty")]
    Empty,
    #[error("{len} classic BPF instructions, more than the {max} ipft translates")]
    TooLong { len: usize, max: usize },
    #[error(
        "instruction {at} jumps backwards (a loop, as libpcap makes for 'protochain'); \
         ipft's eBPF filters run straight through: use 'ip proto' / 'ip6 proto' instead"
    )]
    BackwardJump { at: usize },
    #[error("instruction {at} jumps to {target}, past the end of the program")]
    JumpOutOfRange { at: usize, target: u64 },
    #[error(
        "instruction {at} loads from offset {offset:#x}, a Linux ancillary field \
         (SKF_AD_*, SKF_NET_OFF, SKF_LL_OFF) that only socket filters have"
    )]
    Ancillary { at: usize, offset: u32 },
    #[error("instruction {at} has classic BPF opcode {code:#06x}, which ipft does not translate")]
    UnknownOpcode { at: usize, code: u16 },
    #[error("instruction {at} divides by the constant 0")]
    DivisionByZero { at: usize },
    #[error("instruction {at} uses scratch memory M[{index}]; classic BPF has M[0] to M[15]")]
    ScratchOutOfRange { at: usize, index: u32 },
    #[error("the last instruction does not return: execution would run off the end")]
    FallsOffEnd,
    #[error("the translation needs {len} eBPF instructions; a jump spans at most 32767")]
    TranslationTooLong { len: usize },
}

// Classic BPF encoding (linux/filter.h, pcap/bpf.h).
const C_LD: u16 = 0x00;
const C_LDX: u16 = 0x01;
const C_ST: u16 = 0x02;
const C_STX: u16 = 0x03;
const C_ALU: u16 = 0x04;
const C_JMP: u16 = 0x05;
const C_RET: u16 = 0x06;
const C_MISC: u16 = 0x07;
const C_W: u16 = 0x00;
const C_H: u16 = 0x08;
const C_B: u16 = 0x10;
const C_IMM: u16 = 0x00;
const C_ABS: u16 = 0x20;
const C_IND: u16 = 0x40;
const C_MEM: u16 = 0x60;
const C_LEN: u16 = 0x80;
const C_MSH: u16 = 0xa0;
const C_X: u16 = 0x08;
const C_RET_A: u16 = 0x10;
const C_TXA: u16 = 0x80;
/// Offsets at or above this (as i32, negative) are Linux's SKF_AD_OFF,
/// SKF_NET_OFF and SKF_LL_OFF ancillary areas.
const ANCILLARY_FROM: u32 = 0x8000_0000;
const SCRATCH_SLOTS: u32 = 16;

// Registers: classic A and X, and what every load needs, live in callee-saved
// registers so that helper calls (which clobber r0-r5) keep them.
const A: u8 = 6;
const XR: u8 = 7;
/// Bytes of the window actually read (0..=WINDOW).
const WINDOW_LEN: u8 = 8;
/// The packet's kernel address.
const DATA: u8 = 9;

// Stack frame, offsets from the frame pointer.
const CAPLEN_SLOT: i16 = -8;
const WIRELEN_SLOT: i16 = -16;
/// Where a load beyond the window reads its 1, 2 or 4 bytes.
const READ_SLOT: i16 = -24;

/// Where a jump goes before its address is known.
#[derive(Clone, Copy)]
enum Label {
    /// The translation of a classic instruction.
    Classic(usize),
    /// The shared "return 0" block at the end.
    Fail,
    /// A point inside one instruction's translation.
    Local(usize),
}

struct Emitter {
    out: Vec<bpf_insn>,
    classic_at: Vec<Option<usize>>,
    local_at: Vec<Option<usize>>,
    fixups: Vec<(usize, Label)>,
    fail_used: bool,
    scratch_base: i16,
    window_base: i16,
    /// Bytes of the packet read into the window: what the program's
    /// constant-offset loads need, at most WINDOW (the read and the zeroing
    /// before it cost on every packet a filter sees, mostly packets it
    /// rejects).
    window: u32,
}

impl Emitter {
    fn emit(&mut self, i: bpf_insn) {
        self.out.push(i);
    }

    fn new_local(&mut self) -> Label {
        self.local_at.push(None);
        Label::Local(self.local_at.len() - 1)
    }

    fn bind(&mut self, label: Label) {
        let here = Some(self.out.len());
        match label {
            Label::Classic(i) => self.classic_at[i] = here,
            Label::Local(i) => self.local_at[i] = here,
            Label::Fail => unreachable!("the fail block is bound by finish"),
        }
    }

    /// Emits a jump instruction whose offset is filled in by `finish`.
    fn jump_to(&mut self, jump: bpf_insn, target: Label) {
        if matches!(target, Label::Fail) {
            self.fail_used = true;
        }
        self.fixups.push((self.out.len(), target));
        self.out.push(jump);
    }

    fn finish(mut self) -> Result<Vec<bpf_insn>, TranslateError> {
        // Only when used: the verifier refuses unreachable instructions.
        let fail_at = self.out.len();
        if self.fail_used {
            self.emit(ebpf::alu32_imm(ebpf::MOV, 0, 0));
            self.emit(ebpf::exit());
        }
        let len = self.out.len();
        if len > i16::MAX as usize {
            return Err(TranslateError::TranslationTooLong { len });
        }
        for &(at, label) in &self.fixups {
            let target = match label {
                Label::Classic(i) => self.classic_at[i],
                Label::Local(i) => self.local_at[i],
                Label::Fail => Some(fail_at),
            }
            .expect("every jump target is emitted");
            self.out[at].off = (target as i64 - at as i64 - 1) as i16;
        }
        Ok(self.out)
    }
}

/// Translates a classic program into one complete eBPF subprogram.
pub fn translate(prog: &[CbpfInsn]) -> Result<Vec<bpf_insn>, TranslateError> {
    let reachable = check(prog)?;
    let scratch_slots = prog
        .iter()
        .filter(|i| is_scratch_access(i.code))
        .map(|i| i.k + 1)
        .max()
        .unwrap_or(0);
    let reads_packet = prog
        .iter()
        .zip(&reachable)
        .any(|(i, &r)| r && is_packet_load(i.code));
    let window = window_size(prog, &reachable);
    // M[] below the fixed slots, the window below M[], 8-byte aligned.
    let scratch_bytes = (scratch_slots as i16 * 4 + 7) / 8 * 8;
    let scratch_base = READ_SLOT - scratch_bytes;
    let mut e = Emitter {
        out: Vec::new(),
        classic_at: vec![None; prog.len()],
        local_at: Vec::new(),
        fixups: Vec::new(),
        fail_used: false,
        scratch_base,
        window_base: scratch_base - WINDOW as i16,
        window,
    };
    prologue(&mut e, scratch_bytes, reads_packet);
    for (at, (&ci, &live)) in prog.iter().zip(&reachable).enumerate() {
        if live {
            e.bind(Label::Classic(at));
            instruction(&mut e, at, ci);
        }
    }
    e.finish()
}

/// The window a program needs: up to the end of its furthest constant-offset
/// load, rounded up to 8 bytes; the whole WINDOW when it loads at X + k
/// (header lengths are only known at run time).
fn window_size(prog: &[CbpfInsn], reachable: &[bool]) -> u32 {
    let mut end = 0u64;
    for (i, _) in prog
        .iter()
        .zip(reachable)
        .filter(|(i, &r)| r && is_packet_load(i.code))
    {
        let bytes = match i.code & 0x18 {
            C_H => 2,
            C_B => 1,
            _ => 4,
        };
        let mode = i.code & 0xe0;
        if mode == C_IND {
            return WINDOW;
        }
        let bytes = if mode == C_MSH { 1 } else { bytes };
        end = end.max(i.k as u64 + bytes);
    }
    (end.div_ceil(8) * 8).min(WINDOW as u64) as u32
}

/// The subprogram that selects nothing: "return 0".
pub fn reject_all() -> Vec<bpf_insn> {
    translate(&[CbpfInsn::new(C_RET, 0, 0, 0)]).expect("a lone return translates")
}

fn is_scratch_access(code: u16) -> bool {
    matches!(code & 0x07, C_ST | C_STX)
        || (matches!(code & 0x07, C_LD | C_LDX) && code & 0xe0 == C_MEM)
}

fn is_packet_load(code: u16) -> bool {
    let mode = code & 0xe0;
    match code & 0x07 {
        C_LD => mode == C_ABS || mode == C_IND,
        C_LDX => mode == C_MSH,
        _ => false,
    }
}

/// Validates what the translation relies on (every jump forward and inside
/// the program, the last instruction a return, known opcodes, scratch
/// indices, no ancillary loads) and says which instructions are reachable.
fn check(prog: &[CbpfInsn]) -> Result<Vec<bool>, TranslateError> {
    if prog.is_empty() {
        return Err(TranslateError::Empty);
    }
    if prog.len() > MAX_CBPF_INSNS {
        return Err(TranslateError::TooLong {
            len: prog.len(),
            max: MAX_CBPF_INSNS,
        });
    }
    let n = prog.len() as u64;
    let mut reachable = vec![false; prog.len()];
    reachable[0] = true;
    for (at, i) in prog.iter().enumerate() {
        let next = at as u64 + 1;
        let successors: Vec<u64> = match i.code & 0x07 {
            C_RET => {
                if i.code != C_RET && i.code != C_RET | C_RET_A {
                    return Err(TranslateError::UnknownOpcode { at, code: i.code });
                }
                vec![]
            }
            C_JMP if i.code == C_JMP => {
                if i.k >= 0x8000_0000 {
                    return Err(TranslateError::BackwardJump { at });
                }
                vec![next + i.k as u64]
            }
            C_JMP => vec![next + i.jt as u64, next + i.jf as u64],
            _ => vec![next],
        };
        validate_opcode(at, i)?;
        for target in successors {
            if target >= n {
                return Err(if target == n && i.code & 0x07 != C_JMP {
                    TranslateError::FallsOffEnd
                } else {
                    TranslateError::JumpOutOfRange { at, target }
                });
            }
            if reachable[at] {
                reachable[target as usize] = true;
            }
        }
    }
    Ok(reachable)
}

fn validate_opcode(at: usize, i: &CbpfInsn) -> Result<(), TranslateError> {
    let unknown = Err(TranslateError::UnknownOpcode { at, code: i.code });
    let mode = i.code & 0xe0;
    let size = i.code & 0x18;
    let known = match i.code & 0x07 {
        C_LD => match mode {
            C_ABS | C_IND => matches!(size, C_W | C_H | C_B),
            C_IMM | C_MEM | C_LEN => size == C_W,
            _ => false,
        },
        C_LDX => match mode {
            C_IMM | C_MEM | C_LEN => size == C_W,
            C_MSH => size == C_B,
            _ => false,
        },
        C_ST | C_STX => i.code & !0x07 == 0,
        C_ALU => {
            let op = i.code & 0xf0;
            let src_bits_ok = i.code & 0x08 == 0 || op != ebpf::NEG as u16;
            op <= ebpf::XOR as u16 && src_bits_ok && i.code & !0xff == 0
        }
        C_JMP => {
            let op = i.code & 0xf0;
            op <= ebpf::JSET as u16 && i.code & !0xff == 0 && (op != 0 || i.code & C_X == 0)
        }
        C_RET => true,
        C_MISC => i.code == C_MISC || i.code == C_MISC | C_TXA,
        _ => false,
    };
    if !known {
        return unknown;
    }
    if is_scratch_access(i.code) && i.k >= SCRATCH_SLOTS {
        return Err(TranslateError::ScratchOutOfRange { at, index: i.k });
    }
    // libpcap never emits these; Linux gives them meanings (ancillary data,
    // network- and link-relative loads) that ipft's window does not have.
    if is_packet_load(i.code) && i.k >= ANCILLARY_FROM {
        return Err(TranslateError::Ancillary { at, offset: i.k });
    }
    let op = i.code & 0xf0;
    if i.code & 0x07 == C_ALU
        && i.code & C_X == 0
        && (op == ebpf::DIV as u16 || op == ebpf::MOD as u16)
        && i.k == 0
    {
        return Err(TranslateError::DivisionByZero { at });
    }
    Ok(())
}

/// Saves the arguments, zeroes A, X and the scratch memory used, and reads
/// the packet window once.
fn prologue(e: &mut Emitter, scratch_bytes: i16, reads_packet: bool) {
    // u32 arguments: the caller need not have zeroed the upper halves.
    e.emit(ebpf::alu32_reg(ebpf::MOV, 2, 2));
    e.emit(ebpf::alu32_reg(ebpf::MOV, 3, 3));
    e.emit(ebpf::store(ebpf::DW, FP, CAPLEN_SLOT, 2));
    e.emit(ebpf::store(ebpf::DW, FP, WIRELEN_SLOT, 3));
    e.emit(ebpf::alu64_reg(ebpf::MOV, DATA, 1));
    e.emit(ebpf::alu32_imm(ebpf::MOV, A, 0));
    e.emit(ebpf::alu32_imm(ebpf::MOV, XR, 0));
    for slot in (0..scratch_bytes).step_by(8) {
        e.emit(ebpf::store(ebpf::DW, FP, e.scratch_base + slot, A));
    }
    if !reads_packet {
        return;
    }
    for slot in (0..e.window as i16).step_by(8) {
        e.emit(ebpf::store(ebpf::DW, FP, e.window_base + slot, A));
    }
    // WINDOW_LEN = min(caplen, window): a size the verifier sees bounded.
    e.emit(ebpf::alu64_reg(ebpf::MOV, WINDOW_LEN, 2));
    e.emit(ebpf::jmp_imm(ebpf::JLE, WINDOW_LEN, e.window as i32, 1));
    e.emit(ebpf::alu64_imm(ebpf::MOV, WINDOW_LEN, e.window as i32));
    e.emit(ebpf::alu64_reg(ebpf::MOV, 1, FP));
    e.emit(ebpf::alu64_imm(ebpf::ADD, 1, e.window_base as i32));
    e.emit(ebpf::alu64_reg(ebpf::MOV, 2, WINDOW_LEN));
    e.emit(ebpf::alu64_reg(ebpf::MOV, 3, DATA));
    e.emit(ebpf::call_helper(ebpf::HELPER_PROBE_READ_KERNEL));
    // A failed read leaves an empty window: every load then tries its own
    // read, which fails (no match) unless that part of the packet is readable.
    e.emit(ebpf::jmp_imm(ebpf::JEQ, 0, 0, 1));
    e.emit(ebpf::alu64_imm(ebpf::MOV, WINDOW_LEN, 0));
}

fn instruction(e: &mut Emitter, at: usize, ci: CbpfInsn) {
    let k = ci.k;
    let mode = ci.code & 0xe0;
    let bytes = match ci.code & 0x18 {
        C_H => 2,
        C_B => 1,
        _ => 4,
    };
    match ci.code & 0x07 {
        C_LD | C_LDX => {
            let dst = if ci.code & 0x07 == C_LD { A } else { XR };
            match mode {
                C_IMM => e.emit(ebpf::alu32_imm(ebpf::MOV, dst, k as i32)),
                C_LEN => e.emit(ebpf::load(ebpf::W, dst, FP, WIRELEN_SLOT)),
                C_MEM => e.emit(ebpf::load(ebpf::W, dst, FP, scratch(e, k))),
                C_ABS => packet_load(e, dst, bytes, None, k),
                C_IND => packet_load(e, dst, bytes, Some(XR), k),
                C_MSH => {
                    packet_load(e, XR, 1, None, k);
                    e.emit(ebpf::alu32_imm(ebpf::AND, XR, 0xf));
                    e.emit(ebpf::alu32_imm(ebpf::LSH, XR, 2));
                }
                _ => unreachable!("validated"),
            }
        }
        C_ST => e.emit(ebpf::store(ebpf::W, FP, scratch(e, k), A)),
        C_STX => e.emit(ebpf::store(ebpf::W, FP, scratch(e, k), XR)),
        C_ALU => alu(e, ci),
        C_JMP => jump(e, at, ci),
        C_RET => {
            if ci.code & C_RET_A != 0 {
                e.emit(ebpf::alu32_reg(ebpf::MOV, 0, A));
            } else {
                e.emit(ebpf::alu32_imm(ebpf::MOV, 0, k as i32));
            }
            e.emit(ebpf::exit());
        }
        C_MISC => {
            if ci.code & C_TXA != 0 {
                e.emit(ebpf::alu32_reg(ebpf::MOV, A, XR));
            } else {
                e.emit(ebpf::alu32_reg(ebpf::MOV, XR, A));
            }
        }
        _ => unreachable!("validated"),
    }
}

fn scratch(e: &Emitter, index: u32) -> i16 {
    e.scratch_base + 4 * index as i16
}

/// `dst = ntoh(packet[base + k])` for `bytes` of 1, 2 or 4, where base is
/// X or 0. In the window when base + k + bytes <= WINDOW_LEN.
fn packet_load(e: &mut Emitter, dst: u8, bytes: u32, base: Option<u8>, k: u32) {
    let slow = e.new_local();
    let done = e.new_local();
    let size = match bytes {
        1 => ebpf::B,
        2 => ebpf::H,
        _ => ebpf::W,
    };
    match base {
        None => {
            let end = k as u64 + bytes as u64;
            if end <= e.window as u64 {
                e.jump_to(ebpf::jmp_imm(ebpf::JLT, WINDOW_LEN, end as i32, 0), slow);
                from_window(e, dst, FP, e.window_base + k as i16, bytes);
                e.jump_to(ebpf::ja(0), done);
            }
            e.bind(slow);
            // Offset in r1, for the read below (k < 2^31: `check` refused more).
            e.emit(ebpf::alu32_imm(ebpf::MOV, 1, k as i32));
        }
        Some(x) => {
            // r1 = X + k in 64 bits (k < 2^31): like libpcap's matcher, an
            // offset past 2^32 is out of bounds, not wrapped around.
            e.emit(ebpf::alu32_reg(ebpf::MOV, 1, x));
            e.emit(ebpf::alu64_imm(ebpf::ADD, 1, k as i32));
            e.jump_to(
                ebpf::jmp_imm(ebpf::JGT, 1, (e.window - bytes) as i32, 0),
                slow,
            );
            e.emit(ebpf::alu64_reg(ebpf::MOV, 2, 1));
            e.emit(ebpf::alu64_imm(ebpf::ADD, 2, bytes as i32));
            e.jump_to(ebpf::jmp_reg(ebpf::JGT, 2, WINDOW_LEN, 0), slow);
            // The verifier knows r1 <= WINDOW - bytes here: a bounded stack access.
            e.emit(ebpf::alu64_reg(ebpf::MOV, 2, FP));
            e.emit(ebpf::alu64_reg(ebpf::ADD, 2, 1));
            from_window(e, dst, 2, e.window_base, bytes);
            e.jump_to(ebpf::ja(0), done);
            e.bind(slow);
        }
    }
    // Beyond the window: within caplen, read these bytes alone.
    e.emit(ebpf::alu64_reg(ebpf::MOV, 2, 1));
    e.emit(ebpf::alu64_imm(ebpf::ADD, 2, bytes as i32));
    e.emit(ebpf::load(ebpf::DW, 3, FP, CAPLEN_SLOT));
    e.jump_to(ebpf::jmp_reg(ebpf::JGT, 2, 3, 0), Label::Fail);
    e.emit(ebpf::alu64_reg(ebpf::MOV, 3, DATA));
    e.emit(ebpf::alu64_reg(ebpf::ADD, 3, 1));
    e.emit(ebpf::alu64_reg(ebpf::MOV, 1, FP));
    e.emit(ebpf::alu64_imm(ebpf::ADD, 1, READ_SLOT as i32));
    e.emit(ebpf::alu64_imm(ebpf::MOV, 2, bytes as i32));
    e.emit(ebpf::call_helper(ebpf::HELPER_PROBE_READ_KERNEL));
    e.jump_to(ebpf::jmp_imm(ebpf::JNE, 0, 0, 0), Label::Fail);
    e.emit(ebpf::load(size, dst, FP, READ_SLOT));
    if bytes > 1 {
        e.emit(ebpf::to_host(dst, bytes as i32 * 8));
    }
    e.bind(done);
}

/// `dst` = the `bytes` at `base + off` in network order, assembled a byte at
/// a time: the verifier refuses misaligned stack loads, and packet fields are
/// rarely aligned in the window.
fn from_window(e: &mut Emitter, dst: u8, base: u8, off: i16, bytes: u32) {
    e.emit(ebpf::load(ebpf::B, dst, base, off));
    for i in 1..bytes as i16 {
        e.emit(ebpf::alu32_imm(ebpf::LSH, dst, 8));
        e.emit(ebpf::load(ebpf::B, 0, base, off + i));
        e.emit(ebpf::alu32_reg(ebpf::OR, dst, 0));
    }
}

fn alu(e: &mut Emitter, ci: CbpfInsn) {
    let op = (ci.code & 0xf0) as u8;
    let from_x = ci.code & C_X != 0;
    match op {
        ebpf::NEG => e.emit(insn(ebpf::ALU | ebpf::NEG, A, 0, 0, 0)),
        ebpf::DIV | ebpf::MOD if from_x => {
            // Classic BPF ends the run with 0 on division by zero; eBPF
            // would go on with 0 (div) or A (mod).
            e.jump_to(ebpf::jmp32_imm(ebpf::JEQ, XR, 0, 0), Label::Fail);
            e.emit(ebpf::alu32_reg(op, A, XR));
        }
        ebpf::LSH | ebpf::RSH if from_x => {
            // libpcap's matcher shifts by 32 or more to 0; eBPF masks the
            // shift count instead.
            let shift = e.new_local();
            let done = e.new_local();
            e.jump_to(ebpf::jmp32_imm(ebpf::JLT, XR, 32, 0), shift);
            e.emit(ebpf::alu32_imm(ebpf::MOV, A, 0));
            e.jump_to(ebpf::ja(0), done);
            e.bind(shift);
            e.emit(ebpf::alu32_reg(op, A, XR));
            e.bind(done);
        }
        ebpf::LSH | ebpf::RSH if ci.k >= 32 => e.emit(ebpf::alu32_imm(ebpf::MOV, A, 0)),
        _ if from_x => e.emit(ebpf::alu32_reg(op, A, XR)),
        _ => e.emit(ebpf::alu32_imm(op, A, ci.k as i32)),
    }
}

/// Classic jumps are relative and forward; `check` made sure of it.
fn jump(e: &mut Emitter, at: usize, ci: CbpfInsn) {
    let op = (ci.code & 0xf0) as u8;
    let next = at + 1;
    if op == ebpf::JA {
        if ci.k != 0 {
            e.jump_to(ebpf::ja(0), Label::Classic(next + ci.k as usize));
        }
        return;
    }
    let (jt, jf) = (ci.jt as usize, ci.jf as usize);
    // Unsigned 32-bit comparisons of A, as in classic BPF.
    let cond = |op: u8| {
        if ci.code & C_X != 0 {
            ebpf::jmp32_reg(op, A, XR, 0)
        } else {
            ebpf::jmp32_imm(op, A, ci.k, 0)
        }
    };
    let inverse = match op {
        ebpf::JEQ => Some(ebpf::JNE),
        ebpf::JGT => Some(ebpf::JLE),
        ebpf::JGE => Some(ebpf::JLT),
        _ => None,
    };
    if jt == jf {
        if jt != 0 {
            e.jump_to(ebpf::ja(0), Label::Classic(next + jt));
        }
    } else if jf == 0 {
        e.jump_to(cond(op), Label::Classic(next + jt));
    } else if let (0, Some(inverse)) = (jt, inverse) {
        e.jump_to(cond(inverse), Label::Classic(next + jf));
    } else {
        e.jump_to(cond(op), Label::Classic(next + jt));
        e.jump_to(ebpf::ja(0), Label::Classic(next + jf));
    }
}

#[cfg(test)]
#[path = "cbpf_tests.rs"]
mod tests;
