//! Kernel stacks as people read them: every return address of an event's
//! stack (src/event.rs, [`Stack`]) turned into `function+0x1a`, with
//! ` [module]` for module code, from the text symbols of /proc/kallsyms
//! (vmlinux, modules, and the BPF programs the kernel lists as `[bpf]`).
//!
//! The symbols are start-up's own read of /proc/kallsyms
//! (src/session.rs), parsed on a thread while attaching
//! ([`Symbols::preload`]): reading kallsyms a second time took seconds
//! under emulation, and Ctrl-C waited for it before the results came.
//! That read predates ipft's programs, so their frames cannot be named;
//! they are not the packet's path anyway, and a stack is printed from the
//! frame of the function it was taken at (an fentry program's stack starts
//! in the program and its trampoline, a kprobe's at the function itself).
//! Tracepoint stacks start after the kernel's glue that runs the program
//! (`bpf_trace_run4`). Lines are split by [`kallsyms::lines`].
//! Parsing and lookup are pure: tests feed kallsyms text.

use crate::event::Stack;
use crate::kernel::{kallsyms, VMLINUX};
use std::sync::{Mutex, OnceLock};

/// Module of BPF programs and trampolines in /proc/kallsyms.
const BPF_MODULE: &str = "bpf";

/// The kernel's functions that run BPF programs on a raw tracepoint.
const GLUE: &[&str] = &["bpf_trace_run", "__bpf_trace_"];

/// One text symbol.
#[derive(Debug)]
struct Sym {
    addr: u64,
    name: Box<str>,
    /// Index into `Table::modules`; None for vmlinux.
    module: Option<u32>,
}

/// Text symbols sorted by address.
#[derive(Debug, Default)]
struct Table {
    syms: Vec<Sym>,
    modules: Vec<Box<str>>,
}

impl Table {
    /// Parses kallsyms text: `ffffffff81000000 T name\t[module]`; keeps text
    /// symbols (t, T, and weak w, W) with a non-zero address.
    fn parse(text: &str) -> Table {
        let mut table = Table::default();
        let mut module_ids: std::collections::HashMap<&str, u32> = Default::default();
        for line in kallsyms::lines(text) {
            if !matches!(line.kind, "t" | "T" | "w" | "W") {
                continue;
            }
            let Some(addr) = line.addr().filter(|&a| a != 0) else {
                continue;
            };
            let name = line.name;
            let module = line.module.filter(|m| *m != VMLINUX).map(|m| {
                *module_ids.entry(m).or_insert_with(|| {
                    table.modules.push(m.into());
                    table.modules.len() as u32 - 1
                })
            });
            table.syms.push(Sym {
                addr,
                name: name.into(),
                module,
            });
        }
        table.syms.sort_by_key(|s| s.addr);
        table
    }

    /// The symbol `addr` is in: the nearest at or below it.
    fn lookup(&self, addr: u64) -> Option<&Sym> {
        let i = self.syms.partition_point(|s| s.addr <= addr);
        i.checked_sub(1).map(|i| &self.syms[i])
    }

    fn module(&self, s: &Sym) -> Option<&str> {
        s.module.map(|m| &*self.modules[m as usize])
    }

    /// `name+0x1a`, `name+0x1a [module]`, or the bare address when no
    /// symbol precedes it.
    fn format(&self, addr: u64) -> String {
        match self.lookup(addr) {
            Some(s) => match self.module(s) {
                Some(m) => format!("{}+{:#x} [{m}]", s.name, addr - s.addr),
                None => format!("{}+{:#x}", s.name, addr - s.addr),
            },
            None => format!("{addr:#x}"),
        }
    }

    /// Where the packet's path starts in `ips`, a stack taken at `at`: the
    /// frame of the function at `at` itself (a function backend); else
    /// after the glue that ran a tracepoint's program; else after leading
    /// `[bpf]` frames.
    fn start_of(&self, at: u64, ips: &[u64]) -> usize {
        let function = self.lookup(at).map(|s| s.addr);
        let in_function = |ip: u64| self.lookup(ip).map(|s| s.addr) == function;
        if function.is_some() {
            if let Some(i) = ips.iter().position(|&ip| in_function(ip)) {
                return i;
            }
        }
        let glue = |ip: u64| {
            self.lookup(ip)
                .is_some_and(|s| GLUE.iter().any(|g| s.name.starts_with(g)))
        };
        if let Some(first) = ips.iter().position(|&ip| glue(ip)) {
            return first + ips[first..].iter().take_while(|&&ip| glue(ip)).count();
        }
        ips.iter()
            .position(|&ip| {
                self.lookup(ip)
                    .is_none_or(|s| self.module(s) != Some(BPF_MODULE))
            })
            .unwrap_or(ips.len())
    }
}

/// Symbolizes stacks, from kallsyms text parsed on first use.
#[derive(Debug, Default)]
pub struct Symbols {
    table: OnceLock<Table>,
    /// The text to parse; None: read /proc/kallsyms when first needed.
    text: Mutex<Option<String>>,
}

impl Symbols {
    /// Symbols of the running kernel, read when first needed.
    pub fn kernel() -> Symbols {
        Symbols::default()
    }

    /// Symbols from /proc/kallsyms text read earlier (start-up's), parsed
    /// when first needed.
    pub fn from_kallsyms(text: String) -> Symbols {
        Symbols {
            table: OnceLock::new(),
            text: Mutex::new(Some(text)),
        }
    }

    /// Symbols from kallsyms text, parsed now (tests).
    #[cfg(test)]
    pub fn from_text(text: &str) -> Symbols {
        let table = OnceLock::new();
        let _ = table.set(Table::parse(text));
        Symbols {
            table,
            text: Mutex::new(None),
        }
    }

    fn table(&self) -> &Table {
        self.table.get_or_init(|| {
            let text = self.text.lock().ok().and_then(|mut t| t.take());
            // Unreadable: frames show as bare addresses, which is still right.
            let text = text
                .unwrap_or_else(|| std::fs::read_to_string("/proc/kallsyms").unwrap_or_default());
            Table::parse(&text)
        })
    }

    /// Parses the symbols now (on a thread of the caller's choice), so that
    /// the first stack does not stall the reader.
    pub fn preload(&self) {
        self.table();
    }

    /// The frames of `stack`, innermost first, from the function it was
    /// taken at on (ipft's own frames before it are left out); None when
    /// the stack was lost (nothing to print).
    pub fn frames(&self, stack: &Stack) -> Option<Vec<String>> {
        let Stack::Frames { at, ips } = stack else {
            return None;
        };
        let table = self.table();
        let start = table.start_of(*at, ips);
        Some(ips[start..].iter().map(|&ip| table.format(ip)).collect())
    }
}

/// Stacks seen in a run, for the report at exit.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StackCounts {
    /// Events that carried a stack.
    pub captured: u64,
    /// Events whose stack the kernel could not take (bpf_get_stack failed):
    /// counted, never printed.
    pub lost: u64,
}

impl StackCounts {
    pub fn add(&mut self, stack: Option<&Stack>) {
        match stack {
            Some(Stack::Frames { .. }) => self.captured += 1,
            Some(Stack::Lost(_)) => self.lost += 1,
            None => {}
        }
    }

    /// One line for stderr; None when no event asked for a stack.
    pub fn summary(&self) -> Option<String> {
        (self.captured + self.lost > 0).then(|| {
            format!(
                "{} stacks captured, {} lost (the kernel could not take them)",
                self.captured, self.lost
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Abridged from a Debian 6.1 guest: vmlinux, veth and nf_tables
    /// modules, ipft's own program and trampoline, data symbols, a weak
    /// function, hidden addresses.
    const KALLSYMS: &str = "\
ffffffff81000000 T _stext
ffffffff81200000 T bpf_trace_run4
ffffffff81a2b3c0 T nf_hook_slow
ffffffff81a2b4a0 t nf_hook_slow_list
ffffffff81a40000 T ip_local_deliver
ffffffff81a40100 t ip_local_deliver_finish
ffffffff81a50000 W arch_weak_fn
ffffffff81b00000 T kfree_skb_reason
ffffffff81c00000 D init_net
ffffffff82000000 T _etext
ffffffffc0001000 t veth_xmit\t[veth]
ffffffffc0001400 t veth_forward_skb\t[veth]
ffffffffc0200000 t nft_do_chain\t[nf_tables]
ffffffffc0300000 t bpf_prog_6deef7357e7b4530_ipft_fentry_0\t[bpf]
ffffffffc0301000 t bpf_trampoline_6442455040\t[bpf]
0000000000000000 T hidden_fn
";

    const KFREE_SKB_REASON: u64 = 0xffffffff81b00000;

    fn frames(at: u64, ips: &[u64]) -> Vec<String> {
        let stack = Stack::Frames {
            at,
            ips: ips.to_vec(),
        };
        Symbols::from_text(KALLSYMS).frames(&stack).unwrap()
    }

    #[test]
    fn frames_name_function_offset_and_module() {
        let ips = [
            0xffffffff81b00005,
            0xffffffff81a2b41a,
            0xffffffffc020003c,
            0xffffffff81a40120,
            0xffffffffc0001400,
            0xffffffff81a50010,
        ];
        assert_eq!(
            frames(KFREE_SKB_REASON, &ips),
            [
                "kfree_skb_reason+0x5",
                "nf_hook_slow+0x5a",
                "nft_do_chain+0x3c [nf_tables]",
                "ip_local_deliver_finish+0x20",
                "veth_forward_skb+0x0 [veth]",
                "arch_weak_fn+0x10",
            ]
        );
    }

    #[test]
    fn stacks_start_at_the_function_they_were_taken_at() {
        // fentry (IBT: reported at the function + 4): ipft's program and
        // trampoline come first, unknown to start-up's symbols (here a
        // stale [bpf] name and a module's range) and left out.
        let ips = [
            0xffffffffc0300080,
            0xffffffffc0201010,
            0xffffffff81b00009,
            0xffffffff81a2b41a,
        ];
        assert_eq!(
            frames(KFREE_SKB_REASON + 4, &ips),
            ["kfree_skb_reason+0x9", "nf_hook_slow+0x5a"]
        );
        // A BPF frame deeper down (a program calling into the kernel) stays.
        assert_eq!(
            frames(KFREE_SKB_REASON, &[0xffffffff81b00009, 0xffffffffc0300080])[1],
            "bpf_prog_6deef7357e7b4530_ipft_fentry_0+0x80 [bpf]"
        );
        // Tracepoints (reported at their id): after the glue that ran the
        // program, whatever came before it.
        assert_eq!(
            frames(
                42,
                &[0xffffffffc0300080, 0xffffffff812000fc, 0xffffffff81b00090]
            ),
            ["kfree_skb_reason+0x90"]
        );
        // Neither found: leading [bpf] frames are left out.
        assert_eq!(
            frames(42, &[0xffffffffc0301010, 0xffffffff81a2b41a]),
            ["nf_hook_slow+0x5a"]
        );
    }

    #[test]
    fn unknown_addresses_and_lost_stacks() {
        let s = Symbols::from_text(KALLSYMS);
        // Below every symbol: the address itself; data symbols are not
        // functions (the nearest text symbol is taken).
        assert_eq!(
            frames(42, &[0x1234, 0xffffffff81c00010]),
            ["0x1234", "kfree_skb_reason+0x100010"]
        );
        assert_eq!(s.frames(&Stack::Lost(-14)), None);
        let empty = Stack::Frames {
            at: KFREE_SKB_REASON,
            ips: vec![],
        };
        assert_eq!(s.frames(&empty).unwrap(), [] as [String; 0]);
    }

    #[test]
    fn counts_captured_and_lost() {
        let mut c = StackCounts::default();
        assert_eq!(c.summary(), None);
        c.add(None);
        c.add(Some(&Stack::Frames {
            at: 0,
            ips: vec![1],
        }));
        c.add(Some(&Stack::Lost(-14)));
        c.add(Some(&Stack::Lost(-14)));
        assert_eq!(
            c,
            StackCounts {
                captured: 1,
                lost: 2
            }
        );
        assert!(c
            .summary()
            .unwrap()
            .starts_with("1 stacks captured, 2 lost"));
    }
}
