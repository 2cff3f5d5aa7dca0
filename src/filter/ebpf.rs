//! eBPF instruction encoding for the packet filter: opcode constants and
//! builders for the few instruction shapes the translator emits and the
//! splicer inspects. Encoding only; no knowledge of classic BPF or programs.

use libbpf_sys::bpf_insn;

// Instruction classes.
pub const LD: u8 = 0x00;
pub const LDX: u8 = 0x01;
pub const STX: u8 = 0x03;
pub const ALU: u8 = 0x04;
pub const JMP: u8 = 0x05;
pub const JMP32: u8 = 0x06;
pub const ALU64: u8 = 0x07;

// Sizes (loads and stores).
pub const W: u8 = 0x00;
pub const H: u8 = 0x08;
pub const B: u8 = 0x10;
pub const DW: u8 = 0x18;

// Modes.
pub const IMM: u8 = 0x00;
pub const MEM: u8 = 0x60;

// Sources.
pub const K: u8 = 0x00;
pub const X: u8 = 0x08;

// ALU operations.
pub const ADD: u8 = 0x00;
#[allow(dead_code)] // the whole table of ALU operations
pub const SUB: u8 = 0x10;
#[allow(dead_code)]
pub const MUL: u8 = 0x20;
pub const DIV: u8 = 0x30;
pub const OR: u8 = 0x40;
pub const AND: u8 = 0x50;
pub const LSH: u8 = 0x60;
pub const RSH: u8 = 0x70;
pub const NEG: u8 = 0x80;
pub const MOD: u8 = 0x90;
pub const XOR: u8 = 0xa0;
pub const MOV: u8 = 0xb0;
/// Byte swap; with source bit TO_BE converts host (little-endian) to big-endian.
pub const END: u8 = 0xd0;
pub const TO_BE: u8 = 0x08;

// Jump operations.
pub const JA: u8 = 0x00;
pub const JEQ: u8 = 0x10;
pub const JGT: u8 = 0x20;
pub const JGE: u8 = 0x30;
pub const JSET: u8 = 0x40;
pub const JNE: u8 = 0x50;
pub const JLT: u8 = 0xa0;
pub const JLE: u8 = 0xb0;
pub const CALL: u8 = 0x80;
pub const EXIT: u8 = 0x90;

/// First half of a 64-bit immediate load.
pub const LD_IMM64: u8 = LD | IMM | DW;
/// `src_reg` of a call to another subprogram (imm: relative target).
pub const PSEUDO_CALL: u8 = 1;
/// `src_reg` of an ld_imm64 taking a subprogram's address (imm: relative target).
pub const PSEUDO_FUNC: u8 = 4;
/// bpf_probe_read_kernel's helper id.
pub const HELPER_PROBE_READ_KERNEL: i32 = 113;

/// Frame pointer (read-only).
pub const FP: u8 = 10;

pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> bpf_insn {
    bpf_insn {
        code,
        _bitfield_1: bpf_insn::new_bitfield_1(dst, src),
        off,
        imm,
        ..Default::default()
    }
}

/// 32-bit ALU with an immediate: `dst op= imm` (upper half zeroed).
pub fn alu32_imm(op: u8, dst: u8, imm: i32) -> bpf_insn {
    insn(ALU | op | K, dst, 0, 0, imm)
}

/// 32-bit ALU between registers: `dst op= src` (upper half zeroed).
pub fn alu32_reg(op: u8, dst: u8, src: u8) -> bpf_insn {
    insn(ALU | op | X, dst, src, 0, 0)
}

pub fn alu64_imm(op: u8, dst: u8, imm: i32) -> bpf_insn {
    insn(ALU64 | op | K, dst, 0, 0, imm)
}

pub fn alu64_reg(op: u8, dst: u8, src: u8) -> bpf_insn {
    insn(ALU64 | op | X, dst, src, 0, 0)
}

/// `dst = *(size *)(src + off)`, zero-extended.
pub fn load(size: u8, dst: u8, src: u8, off: i16) -> bpf_insn {
    insn(LDX | MEM | size, dst, src, off, 0)
}

/// `*(size *)(dst + off) = src`.
pub fn store(size: u8, dst: u8, off: i16, src: u8) -> bpf_insn {
    insn(STX | MEM | size, dst, src, off, 0)
}

/// Converts the low `bits` of `dst` from network to host order (x86 is
/// little-endian, so this swaps) and zeroes the rest.
pub fn to_host(dst: u8, bits: i32) -> bpf_insn {
    insn(ALU | END | TO_BE, dst, 0, 0, bits)
}

/// 64-bit conditional jump against an immediate (sign-extended).
pub fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> bpf_insn {
    insn(JMP | op | K, dst, 0, off, imm)
}

pub fn jmp_reg(op: u8, dst: u8, src: u8, off: i16) -> bpf_insn {
    insn(JMP | op | X, dst, src, off, 0)
}

/// Conditional jump on the low 32 bits, immediate taken as a u32.
pub fn jmp32_imm(op: u8, dst: u8, imm: u32, off: i16) -> bpf_insn {
    insn(JMP32 | op | K, dst, 0, off, imm as i32)
}

pub fn jmp32_reg(op: u8, dst: u8, src: u8, off: i16) -> bpf_insn {
    insn(JMP32 | op | X, dst, src, off, 0)
}

pub fn ja(off: i16) -> bpf_insn {
    insn(JMP | JA, 0, 0, off, 0)
}

pub fn call_helper(id: i32) -> bpf_insn {
    insn(JMP | CALL, 0, 0, 0, id)
}

pub fn exit() -> bpf_insn {
    insn(JMP | EXIT, 0, 0, 0, 0)
}

/// The two halves of `dst = imm64`.
#[cfg_attr(not(test), allow(dead_code))] // used by the tests
pub fn ld_imm64(dst: u8, imm: u64) -> [bpf_insn; 2] {
    [
        insn(LD_IMM64, dst, 0, 0, imm as u32 as i32),
        insn(0, 0, 0, 0, (imm >> 32) as u32 as i32),
    ]
}
