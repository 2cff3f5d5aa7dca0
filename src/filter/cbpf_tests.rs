//! Unit tests of the classic-to-eBPF translation: the shape of what it
//! emits and what it refuses. What the translations compute is tested on the
//! kernel against libpcap (kernel_tests.rs).

use super::*;

const RET_K: u16 = 0x06;
const RET_A: u16 = 0x16;
const LDH_ABS: u16 = 0x28;
const LDB_IND: u16 = 0x50;
const LDX_MSH: u16 = 0xb1;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const JA: u16 = 0x05;
const ST: u16 = 0x02;
const LD_MEM: u16 = 0x60;
const DIV_X: u16 = 0x3c;

fn c(code: u16, jt: u8, jf: u8, k: u32) -> CbpfInsn {
    CbpfInsn::new(code, jt, jf, k)
}

fn helper_calls(insns: &[bpf_insn]) -> usize {
    insns
        .iter()
        .filter(|i| i.code == ebpf::JMP | ebpf::CALL && i.imm == ebpf::HELPER_PROBE_READ_KERNEL)
        .count()
}

/// Every jump lands inside the program, forward; the program ends in exit.
fn assert_well_formed(insns: &[bpf_insn]) {
    for (at, i) in insns.iter().enumerate() {
        let class = i.code & 0x07;
        let op = i.code & 0xf0;
        if (class == ebpf::JMP || class == ebpf::JMP32) && op != ebpf::CALL && op != ebpf::EXIT {
            let target = at as i64 + 1 + i.off as i64;
            assert!(i.off >= 0, "backward jump at {at}");
            assert!(
                target < insns.len() as i64,
                "jump at {at} leaves the program"
            );
        }
    }
    assert_eq!(insns.last().unwrap().code, ebpf::JMP | ebpf::EXIT);
}

#[test]
fn filter_return_constant_needs_no_packet_read() {
    let out = translate(&[c(RET_K, 0, 0, 262_144)]).unwrap();
    assert_well_formed(&out);
    assert_eq!(helper_calls(&out), 0);
    let ret = &out[out.len() - 2];
    assert_eq!(
        (ret.code, ret.dst_reg(), ret.imm),
        (ebpf::ALU | ebpf::MOV, 0, 262_144)
    );
    assert_eq!(reject_all().len(), out.len());
}

#[test]
fn filter_ethertype_test_reads_window_once_and_swaps_bytes() {
    // ldh [12]; jeq #0x800, 0, 1; ret #1; ret #0
    let prog = [
        c(LDH_ABS, 0, 0, 12),
        c(JEQ_K, 0, 1, 0x800),
        c(RET_K, 0, 0, 1),
        c(RET_K, 0, 0, 0),
    ];
    let out = translate(&prog).unwrap();
    assert_well_formed(&out);
    // The window read, and the read of a load beyond the window.
    assert_eq!(helper_calls(&out), 2);
    assert!(out
        .iter()
        .any(|i| i.code == ebpf::ALU | ebpf::END | ebpf::TO_BE && i.imm == 16));
    // One comparison of A, unsigned 32-bit, inverted to fall through on match.
    let cmp: Vec<_> = out
        .iter()
        .filter(|i| i.code == ebpf::JMP32 | ebpf::JNE)
        .collect();
    assert_eq!(cmp.len(), 1);
    assert_eq!((cmp[0].dst_reg(), cmp[0].imm), (A, 0x800));
    // The window is as long as the furthest load needs (bytes 12-13: 16
    // bytes), zeroed, below the fixed slots.
    let zeroing = out
        .iter()
        .filter(|i| i.code == ebpf::STX | ebpf::MEM | ebpf::DW && i.off <= READ_SLOT - 8)
        .count();
    assert_eq!(zeroing, 2);
    // Out of bounds: the shared "return 0".
    assert_eq!(out[out.len() - 2].imm, 0);
}

#[test]
fn filter_indexed_loads_and_scratch_memory() {
    // ldxb 4*([14]&0xf); ldb [x+14]; st M[3]; ld M[3]; jset #2, 0, 1; ret a; ret #0
    let prog = [
        c(LDX_MSH, 0, 0, 14),
        c(LDB_IND, 0, 0, 14),
        c(ST, 0, 0, 3),
        c(LD_MEM, 0, 0, 3),
        c(JSET_K, 0, 1, 2),
        c(RET_A, 0, 0, 0),
        c(RET_K, 0, 0, 0),
    ];
    let out = translate(&prog).unwrap();
    assert_well_formed(&out);
    assert_eq!(helper_calls(&out), 3);
    // M[0..=3] zeroed: two 8-byte stores right below the fixed slots.
    assert!(out
        .iter()
        .any(|i| i.code == ebpf::STX | ebpf::MEM | ebpf::DW && i.off == READ_SLOT - 16));
    // jset has no inverse: a jump to "true" and one to "false".
    assert_eq!(
        out.iter()
            .filter(|i| i.code == ebpf::JMP32 | ebpf::JSET)
            .count(),
        1
    );
}

#[test]
fn filter_division_by_x_checks_for_zero() {
    let prog = [c(DIV_X, 0, 0, 0), c(RET_A, 0, 0, 0)];
    let out = translate(&prog).unwrap();
    assert_well_formed(&out);
    let check = out
        .iter()
        .position(|i| i.code == ebpf::JMP32 | ebpf::JEQ)
        .unwrap();
    assert_eq!((out[check].dst_reg(), out[check].imm), (XR, 0));
    assert_eq!(out[check + 1].code, ebpf::ALU | ebpf::DIV | ebpf::X);
}

#[test]
fn filter_unreachable_instructions_are_dropped() {
    // The verifier refuses unreachable code: ret #7 must not be emitted.
    let prog = [c(JA, 0, 0, 1), c(RET_K, 0, 0, 7), c(RET_K, 0, 0, 9)];
    let out = translate(&prog).unwrap();
    assert_well_formed(&out);
    assert!(!out.iter().any(|i| i.imm == 7));
    assert!(out.iter().any(|i| i.imm == 9));
}

#[test]
fn filter_refusals_say_what_and_why() {
    let cases: Vec<(Vec<CbpfInsn>, TranslateError)> = vec![
        (vec![], TranslateError::Empty),
        (
            vec![c(RET_K, 0, 0, 0); MAX_CBPF_INSNS + 1],
            TranslateError::TooLong {
                len: MAX_CBPF_INSNS + 1,
                max: MAX_CBPF_INSNS,
            },
        ),
        (
            vec![c(RET_K, 0, 0, 0), c(JA, 0, 0, 0xffff_fffe)],
            TranslateError::BackwardJump { at: 1 },
        ),
        (
            vec![c(JEQ_K, 5, 0, 1), c(RET_K, 0, 0, 0)],
            TranslateError::JumpOutOfRange { at: 0, target: 6 },
        ),
        (
            vec![c(LDH_ABS, 0, 0, 0xffff_f000), c(RET_A, 0, 0, 0)],
            TranslateError::Ancillary {
                at: 0,
                offset: 0xffff_f000,
            },
        ),
        (
            vec![c(0x0e, 0, 0, 0)],
            TranslateError::UnknownOpcode { at: 0, code: 0x0e },
        ),
        (
            vec![c(0x34, 0, 0, 0), c(RET_A, 0, 0, 0)],
            TranslateError::DivisionByZero { at: 0 },
        ),
        (
            vec![c(ST, 0, 0, 16), c(RET_A, 0, 0, 0)],
            TranslateError::ScratchOutOfRange { at: 0, index: 16 },
        ),
        (vec![c(LDH_ABS, 0, 0, 12)], TranslateError::FallsOffEnd),
    ];
    for (prog, expected) in cases {
        assert_eq!(translate(&prog).unwrap_err(), expected);
    }
    let text = TranslateError::BackwardJump { at: 20 }.to_string();
    assert!(text.contains("protochain") && text.contains("20"), "{text}");
}
