//! Puts a translated packet filter into a program before it is loaded: finds
//! the placeholder subprograms of src/bpf/filter.bpf.h in the program's final
//! instructions (as libbpf loaded them: subprograms appended, calls
//! relocated), replaces each placeholder's whole body with the translation,
//! and fixes every jump, call and subprogram address that crosses the
//! replaced region. One mechanism for every backend; it knows nothing of
//! classic BPF or libpcap.

use super::ebpf::{self, JA, JMP, JMP32, LD_IMM64, PSEUDO_CALL, PSEUDO_FUNC};
use super::PacketFilter;
use anyhow::{bail, ensure, Context, Result};
use libbpf_sys::bpf_insn;

/// The constants ipft_filter_l2 and ipft_filter_l3 load (filter.bpf.h).
pub const L2_MAGIC: u64 = 0x1f11_e7c0_de00_a002;
pub const L3_MAGIC: u64 = 0x1f11_e7c0_de00_a003;

/// Returns `insns` with every placeholder replaced by `filter`'s l2 or l3
/// translation; unchanged when the program calls no placeholder.
pub fn splice(insns: &[bpf_insn], filter: &PacketFilter) -> Result<Vec<bpf_insn>> {
    let mut out = insns.to_vec();
    for (magic, body, name) in [
        (L2_MAGIC, &filter.l2, "ipft_filter_l2"),
        (L3_MAGIC, &filter.l3, "ipft_filter_l3"),
    ] {
        ensure!(
            find_magic(body, magic).is_none(),
            "the translated filter for {name} contains its placeholder's constant"
        );
        // libbpf appends a subprogram once per program; a loop all the same,
        // so that a program with two copies is never half spliced.
        while let Some(at) = find_magic(&out, magic) {
            out = replace_subprogram(&out, at, body)
                .with_context(|| format!("splicing the packet filter into {name}"))?;
        }
    }
    Ok(out)
}

/// Index of the first `ld_imm64 rX, magic`.
fn find_magic(insns: &[bpf_insn], magic: u64) -> Option<usize> {
    let imm = |i: &bpf_insn| i.imm as u32 as u64;
    (0..insns.len().saturating_sub(1)).find(|&i| {
        insns[i].code == LD_IMM64
            && insns[i].src_reg() == 0
            && (imm(&insns[i]) | imm(&insns[i + 1]) << 32) == magic
    })
}

/// Where an instruction's relative target is kept.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reference {
    /// A jump within the subprogram, in `off`.
    Jump,
    /// A 32-bit jump (gotol), in `imm`.
    LongJump,
    /// A call to a subprogram, or a subprogram's address, in `imm`.
    Subprogram,
}

/// The instructions that refer to others, with their kind and target.
fn references(insns: &[bpf_insn]) -> Vec<(usize, Reference, i64)> {
    let mut refs = Vec::new();
    let mut i = 0;
    while i < insns.len() {
        let insn = &insns[i];
        let class = insn.code & 0x07;
        let op = insn.code & 0xf0;
        let from_imm = i as i64 + 1 + insn.imm as i64;
        if insn.code == LD_IMM64 {
            if insn.src_reg() == PSEUDO_FUNC {
                refs.push((i, Reference::Subprogram, from_imm));
            }
            i += 2;
            continue;
        }
        if class == JMP || class == JMP32 {
            match op {
                ebpf::CALL if insn.src_reg() == PSEUDO_CALL => {
                    refs.push((i, Reference::Subprogram, from_imm))
                }
                ebpf::CALL | ebpf::EXIT => {}
                JA if class == JMP32 => refs.push((i, Reference::LongJump, from_imm)),
                _ => refs.push((i, Reference::Jump, i as i64 + 1 + insn.off as i64)),
            }
        }
        i += 1;
    }
    refs
}

/// Replaces the subprogram holding instruction `magic_at` with `body`.
fn replace_subprogram(
    insns: &[bpf_insn],
    magic_at: usize,
    body: &[bpf_insn],
) -> Result<Vec<bpf_insn>> {
    let refs = references(insns);
    let subprogram_starts: Vec<usize> = refs
        .iter()
        .filter(|r| r.1 == Reference::Subprogram)
        .map(|r| r.2 as usize)
        .collect();
    let start = subprogram_starts
        .iter()
        .copied()
        .filter(|&s| s <= magic_at)
        .max()
        .filter(|&s| s > 0)
        .context("the placeholder is not a subprogram of its own (was it inlined?)")?;
    let end = subprogram_starts
        .iter()
        .copied()
        .filter(|&s| s > magic_at)
        .min()
        .unwrap_or(insns.len());
    let delta = body.len() as i64 - (end - start) as i64;
    let moved = |x: i64| if x >= end as i64 { x + delta } else { x };

    let mut out = Vec::with_capacity(insns.len() + body.len());
    out.extend_from_slice(&insns[..start]);
    out.extend_from_slice(body);
    out.extend_from_slice(&insns[end..]);
    for (at, kind, target) in refs {
        if (start..end).contains(&at) {
            continue; // replaced
        }
        let into_region = target > start as i64 && target < end as i64;
        if into_region || (target == start as i64 && kind != Reference::Subprogram) {
            bail!("instruction {at} refers to instruction {target}, inside the placeholder");
        }
        let new_at = moved(at as i64);
        let offset = moved(target) - new_at - 1;
        let insn = &mut out[new_at as usize];
        match kind {
            Reference::Jump => {
                insn.off = i16::try_from(offset)
                    .with_context(|| format!("jump at {at} no longer reaches {target}"))?;
            }
            Reference::LongJump | Reference::Subprogram => {
                insn.imm = i32::try_from(offset)
                    .with_context(|| format!("reference at {at} no longer reaches {target}"))?;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebpf::{alu64_imm, call_helper, exit, insn, jmp_imm, ld_imm64, MOV};

    fn call(off: i32) -> bpf_insn {
        insn(JMP | ebpf::CALL, 0, PSEUDO_CALL, 0, off)
    }

    fn filter(l2: Vec<bpf_insn>, l3: Vec<bpf_insn>) -> PacketFilter {
        PacketFilter {
            expression: "test".into(),
            l2,
            l3,
            l3_note: None,
        }
    }

    /// A placeholder subprogram as clang makes it: 6 instructions.
    fn placeholder(magic: u64) -> Vec<bpf_insn> {
        let [lo, hi] = ld_imm64(1, magic);
        vec![
            ebpf::alu64_imm(MOV, 0, 0),
            lo,
            hi,
            jmp_imm(ebpf::JEQ, 1, 0, 1),
            alu64_imm(MOV, 0, 0),
            exit(),
        ]
    }

    /// main (0..8), placeholder l2 (8..14), helper subprogram (14..), which
    /// calls the placeholder backwards.
    fn program() -> Vec<bpf_insn> {
        let [f_lo, f_hi] = ld_imm64(2, 0);
        let mut f_lo = f_lo;
        f_lo.set_src_reg(PSEUDO_FUNC);
        f_lo.imm = 14 - 3 - 1; // address of the helper subprogram
        let mut p = vec![
            alu64_imm(MOV, 1, 0),        // 0
            call(8 - 1 - 1),             // 1 -> 8
            jmp_imm(ebpf::JEQ, 0, 0, 4), // 2 -> 7
            f_lo,                        // 3, 4: -> 14
            f_hi,
            call(14 - 5 - 1), // 5 -> 14
            call_helper(113), // 6: not a reference
            exit(),           // 7
        ];
        p.extend(placeholder(L2_MAGIC)); // 8..14
        p.extend([
            alu64_imm(MOV, 1, 0),        // 14
            call(8 - 15 - 1),            // 15 -> 8
            jmp_imm(ebpf::JGT, 0, 3, 1), // 16 -> 18
            exit(),                      // 17
            exit(),                      // 18
        ]);
        p
    }

    fn targets(insns: &[bpf_insn]) -> Vec<(usize, i64)> {
        references(insns)
            .into_iter()
            .map(|(at, _, t)| (at, t))
            .collect()
    }

    fn body(len: usize) -> Vec<bpf_insn> {
        let mut b = vec![alu64_imm(MOV, 0, 7); len - 1];
        b.push(exit());
        b
    }

    #[test]
    fn shorter_body_moves_later_targets_back() {
        let out = splice(&program(), &filter(body(2), body(2))).unwrap();
        assert_eq!(out.len(), 19 - 6 + 2);
        // Placeholder now 8..10, helper at 10.
        assert_eq!(
            targets(&out),
            vec![(1, 8), (2, 7), (3, 10), (5, 10), (11, 8), (12, 14)]
        );
        assert_eq!(out[8].imm, 7);
        assert_eq!(out[6].imm, 113);
    }

    #[test]
    fn longer_body_moves_later_targets_on() {
        let out = splice(&program(), &filter(body(300), body(2))).unwrap();
        assert_eq!(out.len(), 19 - 6 + 300);
        let helper = 8 + 300;
        assert_eq!(
            targets(&out),
            vec![
                (1, 8),
                (2, 7),
                (3, helper as i64),
                (5, helper as i64),
                (helper + 1, 8),
                (helper + 2, helper as i64 + 4)
            ]
        );
    }

    #[test]
    fn placeholder_at_the_end_and_both_layers() {
        // 0 calls l2 (3..9), 1 calls l3 (9..15), the last subprogram.
        let mut p = vec![call(3 - 1), call(9 - 2), exit()];
        p.extend(placeholder(L2_MAGIC));
        p.extend(placeholder(L3_MAGIC));
        let out = splice(&p, &filter(body(4), body(10))).unwrap();
        assert_eq!(out.len(), 3 + 4 + 10);
        assert_eq!(targets(&out), vec![(0, 3), (1, 7)]);
        assert!(find_magic(&out, L2_MAGIC).is_none() && find_magic(&out, L3_MAGIC).is_none());
    }

    #[test]
    fn program_without_placeholder_is_unchanged() {
        let p = vec![alu64_imm(MOV, 0, 0), exit()];
        let out = splice(&p, &filter(body(3), body(3))).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].code, out[0].imm), (p[0].code, p[0].imm));
    }

    #[test]
    fn inlined_placeholder_is_refused() {
        let mut p = placeholder(L2_MAGIC);
        p.insert(0, alu64_imm(MOV, 1, 0));
        let err = splice(&p, &filter(body(2), body(2))).unwrap_err();
        assert!(
            format!("{err:#}").contains("not a subprogram of its own"),
            "{err:#}"
        );
    }

    #[test]
    fn jump_too_far_after_growth_is_refused() {
        // A jump over the whole placeholder (not legal BPF, but it shows
        // that offsets that no longer fit are an error, not a wrap-around).
        let mut p = vec![call(3), call(8), jmp_imm(ebpf::JEQ, 0, 0, 7), exit()];
        p.extend(placeholder(L2_MAGIC)); // 4..10
        p.push(exit()); // 10: a subprogram, called from 1
        let err = splice(&p, &filter(body(40_000), body(2))).unwrap_err();
        assert!(format!("{err:#}").contains("no longer reaches"), "{err:#}");
    }
}
