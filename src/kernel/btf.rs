//! BTF function prototypes: which kernel functions take a `struct sk_buff *`,
//! and at which parameter position.
//!
//! Reads /sys/kernel/btf/vmlinux and every module's split BTF on top of it.
//! Only looks at types; whether a function can be attached is decided by
//! discovery with kallsyms and tracefs.

use super::VMLINUX;
use anyhow::{Context, Result};
use btf_rs::{Btf, BtfType, Type};
use std::collections::HashMap;
use std::path::Path;

/// Why a function with an skb parameter cannot be traced by any backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// `...` parameters: the argument layout is not known.
    Variadic,
    /// A struct or union passed by value at or before the skb shifts
    /// registers in ways the BTF alone does not pin down.
    StructByValue,
}

/// A function whose BTF prototype has a `struct sk_buff *` parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkbFunc {
    pub name: String,
    pub module: String,
    /// Index of the first `struct sk_buff *` parameter.
    pub skb_pos: usize,
    pub nr_params: usize,
    pub unsupported: Option<Unsupported>,
}

/// Reads vmlinux BTF and the split BTF of every loaded module under `dir`
/// (normally /sys/kernel/btf).
pub fn read_skb_funcs(dir: &Path) -> Result<Vec<SkbFunc>> {
    let vmlinux_path = dir.join(VMLINUX);
    let vmlinux = Btf::from_file(&vmlinux_path).with_context(|| {
        format!(
            "cannot read kernel BTF {}; ipft needs a kernel built with CONFIG_DEBUG_INFO_BTF=y",
            vmlinux_path.display()
        )
    })?;
    let mut funcs = skb_funcs(&vmlinux, VMLINUX)?;

    let mut modules: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != VMLINUX)
        .collect();
    modules.sort();
    for module in modules {
        let path = dir.join(&module);
        let btf = Btf::from_split_file(&path, &vmlinux)
            .with_context(|| format!("cannot read module BTF {}", path.display()))?;
        funcs.extend(skb_funcs(&btf, &module)?);
    }
    Ok(funcs)
}

/// Functions with an skb parameter defined in `btf` itself (for split BTF,
/// only the module's own types, not its base's).
pub fn skb_funcs(btf: &Btf, module: &str) -> Result<Vec<SkbFunc>> {
    let section = btf.split().unwrap_or_else(|| btf.base());
    let (first, last) = section.type_id_range();
    let mut skb_ptr_cache: HashMap<u32, bool> = HashMap::new();
    let mut out = Vec::new();
    for id in first..=last {
        let Ok(Type::Func(func)) = btf.resolve_type_by_id(id) else {
            continue;
        };
        let Ok(Type::FuncProto(proto)) = btf.resolve_chained_type(&func) else {
            continue;
        };
        let params = &proto.parameters;
        let mut skb_pos = None;
        for (i, p) in params.iter().enumerate() {
            if p.is_variadic() {
                continue;
            }
            let tid = p.get_type_id().unwrap_or(0);
            let is_skb = *skb_ptr_cache
                .entry(tid)
                .or_insert_with(|| is_skb_ptr(btf, tid));
            if is_skb {
                skb_pos = Some(i);
                break;
            }
        }
        let Some(skb_pos) = skb_pos else { continue };
        let unsupported = if params.iter().any(|p| p.is_variadic()) {
            Some(Unsupported::Variadic)
        } else if params[..=skb_pos]
            .iter()
            .any(|p| is_by_value_aggregate(btf, p.get_type_id().unwrap_or(0)))
        {
            Some(Unsupported::StructByValue)
        } else {
            None
        };
        out.push(SkbFunc {
            name: btf.resolve_name(&func)?,
            module: module.to_string(),
            skb_pos,
            nr_params: params.len(),
            unsupported,
        });
    }
    Ok(out)
}

/// Follows typedefs and qualifiers (const, volatile, restrict, type tags).
fn strip(btf: &Btf, mut t: Type) -> Type {
    for _ in 0..32 {
        t = match &t {
            Type::Typedef(x) => btf.resolve_chained_type(x),
            Type::Const(x) | Type::Volatile(x) | Type::Restrict(x) => btf.resolve_chained_type(x),
            Type::TypeTag(x) => btf.resolve_chained_type(x),
            _ => return t,
        }
        .unwrap_or(Type::Void);
    }
    t
}

fn resolve(btf: &Btf, id: u32) -> Type {
    if id == 0 {
        return Type::Void;
    }
    btf.resolve_type_by_id(id).unwrap_or(Type::Void)
}

/// `struct sk_buff *`, possibly const/volatile and behind typedefs.
fn is_skb_ptr(btf: &Btf, id: u32) -> bool {
    let Type::Ptr(ptr) = strip(btf, resolve(btf, id)) else {
        return false;
    };
    let Ok(pointee) = btf.resolve_chained_type(&ptr) else {
        return false;
    };
    match strip(btf, pointee) {
        Type::Struct(s) => btf.resolve_name(&s).is_ok_and(|n| n == "sk_buff"),
        Type::Fwd(f) => btf.resolve_name(&f).is_ok_and(|n| n == "sk_buff"),
        _ => false,
    }
}

fn is_by_value_aggregate(btf: &Btf, id: u32) -> bool {
    matches!(
        strip(btf, resolve(btf, id)),
        Type::Struct(_) | Type::Union(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's own kernel BTF: real prototypes, read unprivileged.
    fn host_funcs() -> Vec<SkbFunc> {
        let btf = Btf::from_file("/sys/kernel/btf/vmlinux").expect("host kernel BTF");
        skb_funcs(&btf, VMLINUX).unwrap()
    }

    fn find<'a>(funcs: &'a [SkbFunc], name: &str) -> &'a SkbFunc {
        funcs
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} not found"))
    }

    #[test]
    fn finds_skb_functions_in_host_btf() {
        let funcs = host_funcs();
        assert!(funcs.len() > 1000, "only {} skb functions", funcs.len());

        let ip_rcv = find(&funcs, "ip_rcv");
        assert_eq!((ip_rcv.skb_pos, ip_rcv.unsupported), (0, None));

        // int ip_finish_output2(struct net *net, struct sock *sk, struct sk_buff *skb)
        assert_eq!(find(&funcs, "ip_finish_output2").skb_pos, 2);

        // bool __skb_flow_dissect(const struct net *net, const struct sk_buff *skb, ...)
        let dissect = find(&funcs, "__skb_flow_dissect");
        assert_eq!(dissect.skb_pos, 1, "const struct sk_buff * must count");

        // Functions with no sk_buff parameter are not listed.
        assert!(!funcs.iter().any(|f| f.name == "schedule"));
        assert!(funcs.iter().all(|f| f.module == VMLINUX));
    }

    #[test]
    fn counts_const_skb_functions() {
        // ipftrace2 missed every `const struct sk_buff *` function; count them
        // on the host so a regression in stripping qualifiers shows.
        let btf = Btf::from_file("/sys/kernel/btf/vmlinux").unwrap();
        let funcs = skb_funcs(&btf, VMLINUX).unwrap();
        let positions_above_zero = funcs.iter().filter(|f| f.skb_pos > 0).count();
        assert!(positions_above_zero > 100, "{positions_above_zero}");
        assert!(funcs
            .iter()
            .any(|f| f.name == "skb_checksum_help" && f.skb_pos == 0));
    }
}
