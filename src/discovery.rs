//! Function discovery: turns kernel facts (BTF prototypes, kallsyms,
//! available_filter_functions) into the list of functions to trace.
//!
//! Pure logic over its inputs: tests feed it fixtures. It decides nothing
//! about how to attach; a backend says how many skb positions it can read.

use crate::kernel::btf::{IntType, SkbFunc, SkbTracepoint, Unsupported};
use crate::kernel::kallsyms::Kallsyms;
use crate::kernel::tracefs::FilterFunctions;
use regex::Regex;
use std::collections::BTreeMap;

/// A function to trace: one copy of it in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub module: String,
    pub addr: u64,
    /// Index of the `struct sk_buff *` parameter.
    pub skb_pos: usize,
    /// BTF id of the function (fentry binds to it); 0 for tracepoints.
    pub btf_id: u32,
    /// The integer it returns, if any (printed by function_graph).
    pub ret: Option<IntType>,
}

#[cfg(test)]
impl Target {
    /// A target at skb position 0 with no BTF id, for unit tests.
    pub fn fixture(name: &str, addr: u64, module: &str) -> Target {
        Target {
            name: name.into(),
            module: module.into(),
            addr,
            skb_pos: 0,
            btf_id: 0,
            ret: None,
        }
    }
}

/// The user's name filters (-r, --module-regex).
#[derive(Default, Clone, Debug)]
pub struct NameFilter {
    pub regex: Option<Regex>,
    pub module_regex: Option<Regex>,
}

impl NameFilter {
    fn accepts(&self, name: &str, module: &str) -> bool {
        self.regex.as_ref().is_none_or(|r| r.is_match(name))
            && self
                .module_regex
                .as_ref()
                .is_none_or(|r| r.is_match(module))
    }
}

/// Why functions with an skb parameter were left out, for -v.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub variadic: usize,
    pub struct_by_value: usize,
    /// The skb parameter is beyond what the backend can read.
    pub beyond_positions: usize,
    /// Not in available_filter_functions (notrace, inlined everywhere, ...).
    pub not_traceable: usize,
    pub not_in_kallsyms: usize,
    /// Several BTF prototypes of one name disagree on the skb position.
    pub ambiguous: Vec<String>,
    pub filtered_out: usize,
}

#[derive(Debug, Default)]
pub struct Discovery {
    /// Sorted by name, module, address.
    pub targets: Vec<Target>,
    pub skipped: Skipped,
}

/// Module column of tracepoint targets.
pub const TRACEPOINT_MODULE: &str = "tracepoint";

/// Tracepoints with an skb argument, as targets: their `addr` is an id
/// (1, 2, ...) that the tracepoint backend's programs report instead of a
/// function address.
pub fn discover_tracepoints(
    facts: &KernelFacts,
    max_positions: usize,
    filter: &NameFilter,
) -> Discovery {
    let mut skipped = Skipped::default();
    let mut targets = Vec::new();
    for tp in &facts.tracepoints {
        if tp.skb_pos >= max_positions {
            skipped.beyond_positions += 1;
        } else if !filter.accepts(&tp.name, TRACEPOINT_MODULE) {
            skipped.filtered_out += 1;
        } else {
            targets.push(Target {
                name: tp.name.clone(),
                module: TRACEPOINT_MODULE.to_string(),
                addr: 0,
                skb_pos: tp.skb_pos,
                btf_id: 0,
                ret: None,
            });
        }
    }
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    targets.dedup_by(|a, b| a.name == b.name);
    for (i, t) in targets.iter_mut().enumerate() {
        t.addr = i as u64 + 1;
    }
    Discovery { targets, skipped }
}

/// Everything discovery reads from the kernel, read once.
#[derive(Default)]
pub struct KernelFacts {
    pub funcs: Vec<SkbFunc>,
    pub tracepoints: Vec<SkbTracepoint>,
    /// Names of kfree_skb's drop reasons.
    pub drop_reasons: std::collections::HashMap<u64, String>,
    pub kallsyms: Kallsyms,
    /// Every text symbol of the same read, for stacks.
    pub symbols: std::sync::Arc<crate::stack::Symbols>,
    pub filter_funcs: FilterFunctions,
    /// Why some facts are missing (e.g. tracefs refused to list functions).
    pub note: Option<String>,
}

/// Chooses the functions to trace.
///
/// A name that kallsyms lists several times in one module (static functions
/// of the same name) becomes one target per address, so each copy is traced
/// by its own address and none is confused with another.
pub fn discover(facts: &KernelFacts, max_positions: usize, filter: &NameFilter) -> Discovery {
    let (funcs, kallsyms, filter_funcs) = (&facts.funcs, &facts.kallsyms, &facts.filter_funcs);
    let mut skipped = Skipped::default();
    // (name, module) -> skb positions of every BTF prototype of that name
    let mut by_name: BTreeMap<(&str, &str), Vec<&SkbFunc>> = BTreeMap::new();
    for f in funcs {
        match f.unsupported {
            Some(Unsupported::Variadic) => skipped.variadic += 1,
            Some(Unsupported::StructByValue) => skipped.struct_by_value += 1,
            None => by_name
                .entry((f.name.as_str(), f.module.as_str()))
                .or_default()
                .push(f),
        }
    }

    let mut targets = Vec::new();
    for ((name, module), protos) in by_name {
        let (skb_pos, btf_id, ret) = (protos[0].skb_pos, protos[0].btf_id, protos[0].ret);
        if protos.iter().any(|f| f.skb_pos != skb_pos) {
            skipped.ambiguous.push(format!("{name} [{module}]"));
            continue;
        }
        if skb_pos >= max_positions {
            skipped.beyond_positions += 1;
            continue;
        }
        if !filter_funcs.contains(name, module) {
            skipped.not_traceable += 1;
            continue;
        }
        if !filter.accepts(name, module) {
            skipped.filtered_out += 1;
            continue;
        }
        let before = targets.len();
        targets.extend(kallsyms.lookup(name, module).map(|addr| Target {
            name: name.to_string(),
            module: module.to_string(),
            addr,
            skb_pos,
            btf_id,
            ret,
        }));
        if targets.len() == before {
            skipped.not_in_kallsyms += 1;
        }
    }
    targets.sort_by(|a, b| (&a.name, &a.module, a.addr).cmp(&(&b.name, &b.module, b.addr)));
    Discovery { targets, skipped }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn func(name: &str, module: &str, skb_pos: usize) -> SkbFunc {
        SkbFunc {
            btf_id: 1,
            name: name.into(),
            module: module.into(),
            skb_pos,
            nr_params: skb_pos + 1,
            unsupported: None,
            ret: None,
        }
    }

    fn fixture() -> KernelFacts {
        let mut funcs = vec![
            func("ip_rcv", "vmlinux", 0),
            func("ip_finish_output2", "vmlinux", 2),
            func("deep_param", "vmlinux", 7),
            func("notrace_fn", "vmlinux", 0),
            func("dup_static", "vmlinux", 1),
            func("two_protos", "vmlinux", 0),
            func("two_protos", "vmlinux", 1),
            func("veth_xmit", "veth", 0),
            func("gone", "vmlinux", 0),
        ];
        funcs.push(SkbFunc {
            unsupported: Some(Unsupported::Variadic),
            ..func("printk_skb", "vmlinux", 0)
        });
        let kallsyms = Kallsyms::parse(
            "ffffffff81000010 T ip_rcv\n\
             ffffffff81000020 T ip_finish_output2\n\
             ffffffff81000030 T deep_param\n\
             ffffffff81000040 t notrace_fn\n\
             ffffffff81000050 t dup_static\n\
             ffffffff81000060 t dup_static\n\
             ffffffff81000070 t two_protos\n\
             ffffffffc0000010 t veth_xmit\t[veth]\n",
        );
        let filter_funcs = FilterFunctions::parse(
            "ip_rcv\nip_finish_output2\ndeep_param\ndup_static\ndup_static\ntwo_protos\nveth_xmit [veth]\ngone\n",
        );
        KernelFacts {
            funcs,
            tracepoints: Vec::new(),
            drop_reasons: Default::default(),
            kallsyms,
            symbols: Default::default(),
            filter_funcs,
            note: None,
        }
    }

    fn names(d: &Discovery) -> Vec<(&str, u64)> {
        d.targets
            .iter()
            .map(|t| (t.name.as_str(), t.addr))
            .collect()
    }

    #[test]
    fn keeps_only_attachable_functions_within_positions() {
        let facts = fixture();
        let d = discover(&facts, 5, &NameFilter::default());
        assert_eq!(
            names(&d),
            [
                ("dup_static", 0xffffffff81000050),
                ("dup_static", 0xffffffff81000060),
                ("ip_finish_output2", 0xffffffff81000020),
                ("ip_rcv", 0xffffffff81000010),
                ("veth_xmit", 0xffffffffc0000010),
            ]
        );
        assert_eq!(d.skipped.beyond_positions, 1);
        assert_eq!(d.skipped.not_traceable, 1);
        assert_eq!(d.skipped.not_in_kallsyms, 1);
        assert_eq!(d.skipped.variadic, 1);
        assert_eq!(d.skipped.ambiguous, ["two_protos [vmlinux]"]);
        assert_eq!(d.targets[2].skb_pos, 2);

        // fentry reads 12 positions.
        let d = discover(&facts, 12, &NameFilter::default());
        assert!(d
            .targets
            .iter()
            .any(|t| t.name == "deep_param" && t.skb_pos == 7));
    }

    #[test]
    fn applies_name_and_module_regexes() {
        let facts = fixture();
        let filter = NameFilter {
            regex: Some(Regex::new("^ip_").unwrap()),
            module_regex: None,
        };
        let d = discover(&facts, 5, &filter);
        assert_eq!(names(&d).len(), 2);

        let filter = NameFilter {
            regex: None,
            module_regex: Some(Regex::new("^veth$").unwrap()),
        };
        let d = discover(&facts, 5, &filter);
        assert_eq!(names(&d), [("veth_xmit", 0xffffffffc0000010)]);
    }
}
