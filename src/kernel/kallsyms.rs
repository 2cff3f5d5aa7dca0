//! /proc/kallsyms: the address of every text symbol, with its module.
//!
//! Names may occur several times (static functions of the same name in
//! different files); this keeps every copy so discovery can decide.

use super::VMLINUX;
use std::collections::HashMap;

/// One text symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub addr: u64,
    pub module: String,
}

/// One line of kallsyms text: `ffffffff81000000 T name\t[module]`.
pub struct Line<'a> {
    addr: &'a str,
    /// The symbol type letter (t, T: text; w, W: weak; d, D: data ...).
    pub kind: &'a str,
    pub name: &'a str,
    /// Without brackets; None for vmlinux.
    pub module: Option<&'a str>,
}

impl Line<'_> {
    /// The address; parsed on demand, as most lines are skipped by name.
    pub fn addr(&self) -> Option<u64> {
        u64::from_str_radix(self.addr, 16).ok()
    }
}

/// The well-formed lines of kallsyms text.
pub fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    text.lines().filter_map(|line| {
        let mut it = line.split_whitespace();
        let (addr, kind, name) = (it.next()?, it.next()?, it.next()?);
        let module = it
            .next()
            .map(|m| m.trim_start_matches('[').trim_end_matches(']'));
        Some(Line {
            addr,
            kind,
            name,
            module,
        })
    })
}

/// Text symbols by name, every copy kept in file order.
#[derive(Default, Debug)]
pub struct Kallsyms {
    by_name: HashMap<String, Vec<Symbol>>,
}

impl Kallsyms {
    /// The text of /proc/kallsyms (to parse with [`Kallsyms::parse_wanted`]).
    pub fn read_text() -> std::io::Result<String> {
        std::fs::read_to_string("/proc/kallsyms")
    }

    /// Parses kallsyms text: `ffffffff81000000 T name\t[module]`.
    #[cfg(test)]
    pub fn parse(text: &str) -> Self {
        Self::parse_wanted(text, |_| true)
    }

    /// Parses only the text symbols whose name `wanted` accepts: keeping the
    /// ~2,000 skb functions instead of 100,000+ symbols saves most of the time.
    pub fn parse_wanted(text: &str, wanted: impl Fn(&str) -> bool) -> Self {
        let mut by_name: HashMap<String, Vec<Symbol>> = HashMap::new();
        for line in lines(text) {
            if !matches!(line.kind, "t" | "T") || !wanted(line.name) {
                continue;
            }
            let Some(addr) = line.addr() else {
                continue;
            };
            by_name
                .entry(line.name.to_string())
                .or_default()
                .push(Symbol {
                    addr,
                    module: line.module.unwrap_or(VMLINUX).to_string(),
                });
        }
        Kallsyms { by_name }
    }

    /// Every copy of `name` that lives in `module`.
    pub fn lookup<'a>(&'a self, name: &str, module: &'a str) -> impl Iterator<Item = u64> + 'a {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .filter(move |s| s.module == module)
            .map(|s| s.addr)
    }

    /// True when every address is zero: kptr_restrict hides them from us.
    pub fn addresses_hidden(&self) -> bool {
        !self.by_name.is_empty() && self.by_name.values().flatten().all(|s| s.addr == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "\
ffffffff81a00000 T ip_rcv
ffffffff81a00100 t dup_fn
ffffffff81b00100 t dup_fn
ffffffff81c00000 D some_data
ffffffffc0001000 t veth_xmit\t[veth]
ffffffffc0002000 t dup_fn\t[veth]
";

    #[test]
    fn parses_text_symbols_with_modules_and_duplicates() {
        let k = Kallsyms::parse(FIXTURE);
        assert_eq!(
            k.lookup("ip_rcv", "vmlinux").collect::<Vec<_>>(),
            [0xffffffff81a00000]
        );
        assert_eq!(
            k.lookup("veth_xmit", "veth").collect::<Vec<_>>(),
            [0xffffffffc0001000]
        );
        assert_eq!(k.lookup("dup_fn", "vmlinux").count(), 2);
        assert_eq!(k.lookup("dup_fn", "veth").count(), 1);
        assert_eq!(k.lookup("some_data", "vmlinux").count(), 0);
        assert!(!k.addresses_hidden());
    }

    #[test]
    fn keeps_only_wanted_names() {
        let k = Kallsyms::parse_wanted(FIXTURE, |name| name == "dup_fn");
        assert_eq!(k.lookup("dup_fn", "vmlinux").count(), 2);
        assert_eq!(k.lookup("dup_fn", "veth").count(), 1);
        assert_eq!(k.lookup("ip_rcv", "vmlinux").count(), 0);
        let hidden = Kallsyms::parse_wanted("0000000000000000 T ip_rcv\n", |_| true);
        assert!(hidden.addresses_hidden());
    }
}
