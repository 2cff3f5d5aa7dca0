//! What the BPF programs do at each traced function beyond emitting its
//! event: the map `ipft_funcs` (function address -> flags), filled here.
//!
//! Flags merge two sources: the tracking actions of [`track::Plan`]
//! (bits 0-3 and 8, src/bpf/track.bpf.h) and the flags of src/bpf/body.bpf.h:
//! read a drop reason ([`DROP`]) and capture the kernel stack ([`STACK`]).
//! The kernel's skb drop functions get both (the one of this kernel:
//! `sk_skb_reason_drop` 6.11+, `kfree_skb_reason` 5.17-6.10, plain `kfree_skb`
//! before, which has no reason); on the tracepoint backend the `kfree_skb`
//! tracepoint passes its reason itself and gets the stack. Functions matching
//! `--stack` get the stack. A drop is what users look for, so the drop
//! function is attached, and shown, even when -r leaves it out.
//!
//! Pure over its inputs (targets, the tracking plan, the regex); only
//! [`Funcs::install`] touches the kernel.

use crate::discovery::{Target, TRACEPOINT_MODULE};
use crate::track::{self, Plan};
use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags, Object};
use regex::Regex;
use std::collections::BTreeMap;

/// IPFT_FUNC_DROP of src/bpf/body.bpf.h: the argument after the skb is the
/// drop reason.
pub const DROP: u32 = 1 << 9;
/// IPFT_FUNC_STACK: capture the kernel stack into the event.
pub const STACK: u32 = 1 << 10;

/// The skb drop functions, newest kernels first: the first one the kernel
/// has is the one it drops through (6.11 made `kfree_skb_reason` an inline
/// wrapper of `sk_skb_reason_drop`, 5.17 did the same to `kfree_skb`).
const DROP_FUNCTIONS: &[(&str, u32)] = &[
    ("sk_skb_reason_drop", DROP | STACK),
    ("kfree_skb_reason", DROP | STACK),
    ("kfree_skb", STACK),
];

/// The tracepoint backend's drops: the tracepoint passes the reason itself.
const DROP_TRACEPOINTS: &[(&str, u32)] = &[("kfree_skb", STACK)];

/// The flags of every function that has some, and what that adds to the
/// attach run.
#[derive(Debug, Default)]
pub struct Funcs {
    /// Drop functions that -r/--module-regex left out and no tracking
    /// function stands for: attached too, and shown.
    pub extra: Vec<Target>,
    /// The drop functions of this kernel (name, and whether -r left it out).
    pub drops: Vec<(String, bool)>,
    /// Traced functions whose stack --stack asks for.
    pub stacks: usize,
    /// Address as the programs report it -> flags.
    entries: BTreeMap<u64, u32>,
}

impl Funcs {
    /// `chosen`: the targets the user's filters selected; `all`: every
    /// target the backend could attach; `plan`: tracking's actions and
    /// extra targets (default with --no-track); `stack`: --stack.
    pub fn new(chosen: &[Target], all: &[Target], plan: &Plan, stack: Option<&Regex>) -> Funcs {
        let mut funcs = Funcs::default();
        for &(addr, action) in &plan.actions {
            *funcs.entries.entry(addr).or_default() |= action;
        }
        let tracepoints = all.iter().any(|t| t.module == TRACEPOINT_MODULE);
        let table = if tracepoints {
            DROP_TRACEPOINTS
        } else {
            DROP_FUNCTIONS
        };
        if let Some(&(name, flags)) = table
            .iter()
            .find(|(name, _)| all.iter().any(|t| t.name == *name))
        {
            for t in all.iter().filter(|t| t.name == name) {
                let left_out = !chosen.iter().any(|c| c.addr == t.addr);
                // A tracking function -r left out is attached silently:
                // this one is shown.
                let tracked = plan.extra.iter().any(|e| e.addr == t.addr);
                if left_out && !tracked {
                    funcs.extra.push(t.clone());
                }
                for addr in addresses(t) {
                    let e = funcs.entries.entry(addr).or_default();
                    *e = (*e & !track::SILENT) | flags;
                }
                funcs.drops.push((name.to_string(), left_out));
            }
        }
        if let Some(re) = stack {
            for t in chosen.iter().filter(|t| re.is_match(&t.name)) {
                funcs.stacks += 1;
                for addr in addresses(t) {
                    *funcs.entries.entry(addr).or_default() |= STACK;
                }
            }
        }
        funcs
    }

    /// Entries of ipft_funcs (to size the map).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The flags of the function reported at `addr` (tests, -v).
    #[cfg(test)]
    fn flags(&self, addr: u64) -> u32 {
        self.entries.get(&addr).copied().unwrap_or(0)
    }

    /// One line for -v.
    pub fn summary(&self) -> String {
        let drops = match &self.drops[..] {
            [] => "drops: no skb drop function to attach to here".to_string(),
            d => {
                let names: Vec<String> = d
                    .iter()
                    .map(|(name, left_out)| {
                        if *left_out {
                            format!("{name} (attached although -r/--module-regex leaves it out)")
                        } else {
                            name.clone()
                        }
                    })
                    .collect();
                format!("drops: reason and stack at {}", names.join(", "))
            }
        };
        format!("{drops}; stack also at {} functions (--stack)", self.stacks)
    }

    /// Fills the loaded object's ipft_funcs (sized by [`Funcs::len`]).
    pub fn install(&self, obj: &Object) -> Result<()> {
        let map = obj
            .maps()
            .find(|m| m.name() == "ipft_funcs")
            .context("BPF map ipft_funcs missing from ipft's object")?;
        for (addr, flags) in &self.entries {
            map.update(&addr.to_ne_bytes(), &flags.to_ne_bytes(), MapFlags::ANY)
                .context("filling the function flags map")?;
        }
        Ok(())
    }
}

/// The addresses the programs may report for `t`: kprobes the function's
/// own, fentry the instruction after its endbr on IBT kernels; a
/// tracepoint's id.
fn addresses(t: &Target) -> Vec<u64> {
    if t.module == TRACEPOINT_MODULE {
        vec![t.addr]
    } else {
        vec![t.addr, t.addr + 4]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::{END, FREE_SKB, SILENT};

    fn target(name: &str, addr: u64, module: &str) -> Target {
        Target::fixture(name, addr, module)
    }

    fn kernel_6_1() -> Vec<Target> {
        vec![
            target("ip_rcv", 0x1000, "vmlinux"),
            target("kfree_skbmem", 0x2000, "vmlinux"),
            target("kfree_skb_reason", 0x3000, "vmlinux"),
            target("ip_local_deliver", 0x4000, "vmlinux"),
            target("veth_xmit", 0xc000, "veth"),
        ]
    }

    #[test]
    fn drop_function_left_out_by_regex_is_attached_and_shown() {
        let all = kernel_6_1();
        let chosen = vec![all[0].clone()];
        let plan = Plan::new(&chosen, &all);
        let funcs = Funcs::new(&chosen, &all, &plan, None);
        let extra: Vec<&str> = funcs.extra.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(extra, ["kfree_skb_reason"]);
        assert_eq!(funcs.drops, [("kfree_skb_reason".to_string(), true)]);
        assert_eq!(funcs.flags(0x3000), DROP | STACK);
        assert_eq!(funcs.flags(0x3004), DROP | STACK);
        // Tracking's actions are kept.
        assert_eq!(funcs.flags(0x2000), FREE_SKB | SILENT);
        assert_eq!(funcs.flags(0x1000), 0);
        assert!(funcs
            .summary()
            .contains("kfree_skb_reason (attached although"));
    }

    #[test]
    fn chosen_drop_function_is_not_added_twice() {
        let all = kernel_6_1();
        let plan = Plan::new(&all, &all);
        let funcs = Funcs::new(&all, &all, &plan, None);
        assert!(funcs.extra.is_empty());
        assert_eq!(funcs.drops, [("kfree_skb_reason".to_string(), false)]);
        assert_eq!(funcs.flags(0x2000), FREE_SKB);
    }

    #[test]
    fn newest_drop_function_wins() {
        // 6.11+: kfree_skb_reason may remain as an out-of-line copy of the
        // inline wrapper; tracing both would show every drop twice.
        let mut all = kernel_6_1();
        all.push(target("sk_skb_reason_drop", 0x5000, "vmlinux"));
        all.push(target("kfree_skb", 0x6000, "vmlinux"));
        let funcs = Funcs::new(&[], &all, &Plan::default(), None);
        assert_eq!(funcs.drops, [("sk_skb_reason_drop".to_string(), true)]);
        assert_eq!(funcs.flags(0x5000), DROP | STACK);
        assert_eq!(funcs.flags(0x3000), 0);
        // Before 5.17: kfree_skb(skb), no reason to read.
        let old = vec![target("kfree_skb", 0x6000, "vmlinux")];
        let funcs = Funcs::new(&old, &old, &Plan::default(), None);
        assert_eq!(funcs.flags(0x6000), STACK);
        assert!(funcs.extra.is_empty());
    }

    #[test]
    fn stack_regex_marks_traced_functions_only() {
        let all = kernel_6_1();
        let chosen = vec![all[0].clone(), all[3].clone(), all[4].clone()];
        let re = Regex::new("^(ip_|veth_)").unwrap();
        let funcs = Funcs::new(&chosen, &all, &Plan::default(), Some(&re));
        assert_eq!(funcs.stacks, 3);
        for addr in [0x1000, 0x1004, 0x4000, 0x4004, 0xc000, 0xc004] {
            assert_eq!(funcs.flags(addr), STACK, "{addr:#x}");
        }
        // 3 functions and the drop function, two addresses each.
        assert_eq!(funcs.len(), 8);
    }

    #[test]
    fn tracepoint_drop_is_shown_with_its_stack() {
        let all = vec![
            target("net_dev_queue", 7, TRACEPOINT_MODULE),
            target("consume_skb", 8, TRACEPOINT_MODULE),
            target("kfree_skb", 9, TRACEPOINT_MODULE),
        ];
        let chosen = vec![all[0].clone()];
        let plan = Plan::new(&chosen, &all);
        let funcs = Funcs::new(&chosen, &all, &plan, None);
        // Tracking attaches kfree_skb already (silently): no second copy,
        // but it is shown now.
        assert!(funcs.extra.is_empty());
        assert_eq!(funcs.flags(9), END | STACK);
        assert_eq!(funcs.flags(8), END | SILENT);
        assert_eq!(funcs.len(), 2);
    }
}
