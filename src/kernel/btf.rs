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
    /// BTF type id of the FUNC (in the module's split numbering for modules).
    pub btf_id: u32,
    pub name: String,
    pub module: String,
    /// Index of the first `struct sk_buff *` parameter.
    pub skb_pos: usize,
    pub nr_params: usize,
    pub unsupported: Option<Unsupported>,
    /// The integer the function returns, if it returns one.
    pub ret: Option<IntType>,
}

/// An integer (or enum) type: how to print a raw 64-bit return register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntType {
    pub size: u8,
    pub signed: bool,
}

impl IntType {
    /// The value of the low `size` bytes of `raw`, as this type.
    pub fn format(self, raw: u64) -> String {
        let bits = u32::from(self.size.clamp(1, 8)) * 8;
        let masked = if bits == 64 {
            raw
        } else {
            raw & ((1u64 << bits) - 1)
        };
        if self.signed && bits < 64 && masked >> (bits - 1) == 1 {
            (masked as i64 - (1i64 << bits)).to_string()
        } else if self.signed {
            (masked as i64).to_string()
        } else {
            masked.to_string()
        }
    }
}

/// A tracepoint whose arguments carry a `struct sk_buff *`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkbTracepoint {
    pub name: String,
    /// Index of the skb among the tracepoint's arguments (raw tracepoint
    /// args[], without the leading `void *__data` of the BTF prototype).
    pub skb_pos: usize,
}

/// What BTF says about skb functions and tracepoints.
#[derive(Default)]
pub struct SkbTypes {
    pub funcs: Vec<SkbFunc>,
    pub tracepoints: Vec<SkbTracepoint>,
    /// `enum skb_drop_reason`: value to name without the SKB_DROP_REASON_ prefix.
    pub drop_reasons: HashMap<u64, String>,
}

/// Names of `enum skb_drop_reason` (kfree_skb's reason), from BTF.
pub fn drop_reasons(btf: &Btf) -> HashMap<u64, String> {
    let mut names = HashMap::new();
    for t in btf
        .resolve_types_by_name("skb_drop_reason")
        .unwrap_or_default()
    {
        if let Type::Enum(e) = t {
            for m in &e.members {
                if let Ok(name) = btf.resolve_name(m) {
                    let short = name.strip_prefix("SKB_DROP_REASON_").unwrap_or(&name);
                    names.insert(m.val() as u64, short.to_string());
                }
            }
        }
    }
    names
}

/// Where to read kernel BTF from instead of /sys/kernel/btf (tests).
pub const BTF_DIR_ENV: &str = "IPFT_BTF_DIR";

/// Reads vmlinux BTF and the split BTF of every loaded module under `dir`
/// (normally /sys/kernel/btf).
pub fn read_skb_types(dir: &Path) -> Result<SkbTypes> {
    let vmlinux_path = dir.join(VMLINUX);
    let vmlinux = open_vmlinux(&vmlinux_path).with_context(|| {
        format!(
            "cannot read kernel BTF {}; ipft needs a kernel built with CONFIG_DEBUG_INFO_BTF=y",
            vmlinux_path.display()
        )
    })?;
    let mut types = SkbTypes {
        drop_reasons: drop_reasons(&vmlinux),
        ..Default::default()
    };
    scan(&vmlinux, VMLINUX, &mut types)?;

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
        scan(&btf, &module, &mut types)?;
    }
    Ok(types)
}

/// vmlinux BTF, memory-mapped: btf-rs then only indexes where each type
/// starts instead of decoding all of them up front (measured on the 6.18
/// host: 17 ms instead of 93 ms; start-up counts under emulation). Linux 6.1
/// cannot mmap /sys/kernel/btf/vmlinux, so the bytes go through a memfd;
/// if even that fails, btf-rs decodes the file as usual.
fn open_vmlinux(path: &Path) -> btf_rs::Result<Btf> {
    let mapped = || -> std::io::Result<Btf> {
        let bytes = std::fs::read(path)?;
        // SAFETY: a plain syscall with a NUL-terminated name.
        let fd = unsafe { libc::memfd_create(c"ipft-vmlinux-btf".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        std::io::Write::write_all(&mut file, &bytes)?;
        // btf-rs maps the path; the mapping outlives our descriptor.
        Btf::from_file_with_backend(format!("/proc/self/fd/{fd}"), btf_rs::Backend::Mmap)
            .map_err(std::io::Error::other)
    };
    mapped().or_else(|_| Btf::from_file(path))
}

/// Functions with an skb parameter and skb tracepoints defined in `btf`
/// itself (for split BTF, only the module's own types, not its base's).
fn scan(btf: &Btf, module: &str, types: &mut SkbTypes) -> Result<()> {
    let section = btf.split().unwrap_or_else(|| btf.base());
    let (first, last) = section.type_id_range();
    let mut skb_ptr_cache: HashMap<u32, bool> = HashMap::new();
    let out = &mut types.funcs;
    for id in first..=last {
        let func = match btf.resolve_type_by_id(id) {
            Ok(Type::Func(func)) => func,
            Ok(Type::Typedef(td)) => {
                if let Some(tp) = skb_tracepoint(btf, &td, &mut skb_ptr_cache) {
                    types.tracepoints.push(tp);
                }
                continue;
            }
            _ => continue,
        };
        let Ok(Type::FuncProto(proto)) = btf.resolve_chained_type(&func) else {
            continue;
        };
        let params = &proto.parameters;
        let skb_params: Vec<usize> = params
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_variadic())
            .filter(|(_, p)| {
                let tid = p.get_type_id().unwrap_or(0);
                *skb_ptr_cache
                    .entry(tid)
                    .or_insert_with(|| is_skb_ptr(btf, tid))
            })
            .map(|(i, _)| i)
            .take(2)
            .collect();
        let Some(&first) = skb_params.first() else {
            continue;
        };
        // __skb_clone(n, skb), __copy_skb_header(new, old): at entry the
        // first sk_buff is memory being filled, whose stale mark and head
        // would select or track a packet it is not; the source is traced.
        let skb_pos = match skb_params.get(1) {
            Some(&source)
                if btf
                    .resolve_name(&params[first])
                    .is_ok_and(|n| DESTINATION_NAMES.contains(&n.as_str())) =>
            {
                source
            }
            _ => first,
        };
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
        let ret = int_type(btf, proto.return_type_id());
        out.push(SkbFunc {
            ret,
            btf_id: id,
            name: btf.resolve_name(&func)?,
            module: module.to_string(),
            skb_pos,
            nr_params: params.len(),
            unsupported,
        });
    }
    Ok(())
}

/// Functions with an skb parameter defined in `btf` itself.
#[cfg(test)]
pub fn skb_funcs(btf: &Btf, module: &str) -> Result<Vec<SkbFunc>> {
    let mut types = SkbTypes::default();
    scan(btf, module, &mut types)?;
    Ok(types.funcs)
}

/// `typedef void (*btf_trace_<name>)(void *__data, args...)`: the kernel's
/// BTF description of tracepoint `<name>`'s raw arguments.
fn skb_tracepoint(
    btf: &Btf,
    td: &btf_rs::Typedef,
    cache: &mut HashMap<u32, bool>,
) -> Option<SkbTracepoint> {
    let name = btf.resolve_name(td).ok()?;
    let tp = name.strip_prefix("btf_trace_")?;
    let Type::Ptr(ptr) = btf.resolve_chained_type(td).ok()? else {
        return None;
    };
    let Type::FuncProto(proto) = btf.resolve_chained_type(&ptr).ok()? else {
        return None;
    };
    let pos = proto.parameters.iter().skip(1).position(|p| {
        let tid = p.get_type_id().unwrap_or(0);
        *cache.entry(tid).or_insert_with(|| is_skb_ptr(btf, tid))
    })?;
    Some(SkbTracepoint {
        name: tp.to_string(),
        skb_pos: pos,
    })
}

/// Follows typedefs and qualifiers (const, volatile, restrict, type tags).
pub(crate) fn strip(btf: &Btf, mut t: Type) -> Type {
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

pub(crate) fn resolve(btf: &Btf, id: u32) -> Type {
    if id == 0 {
        return Type::Void;
    }
    btf.resolve_type_by_id(id).unwrap_or(Type::Void)
}

/// Names of a first `struct sk_buff *` parameter that is the destination
/// of a copy (not yet a packet at entry) when a second one follows.
const DESTINATION_NAMES: &[&str] = &["n", "new"];

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

/// Integer, bool or enum behind `id`, after typedefs and qualifiers.
fn int_type(btf: &Btf, id: u32) -> Option<IntType> {
    match strip(btf, resolve(btf, id)) {
        Type::Int(i) => Some(IntType {
            size: i.size() as u8,
            signed: i.is_signed(),
        }),
        Type::Enum(e) => Some(IntType {
            size: e.size() as u8,
            signed: e.is_signed(),
        }),
        _ => None,
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

    #[test]
    fn mapped_vmlinux_reads_like_decoded() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        let decoded = Btf::from_file(path).unwrap();
        let mapped = open_vmlinux(path).unwrap();
        let (mut a, mut b) = (SkbTypes::default(), SkbTypes::default());
        scan(&decoded, VMLINUX, &mut a).unwrap();
        scan(&mapped, VMLINUX, &mut b).unwrap();
        assert!(a.funcs.len() > 1000);
        assert_eq!(a.funcs, b.funcs);
        assert_eq!(a.tracepoints, b.tracepoints);
        assert_eq!(drop_reasons(&decoded), drop_reasons(&mapped));
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
        let int = Some(IntType {
            size: 4,
            signed: true,
        });
        assert_eq!(ip_rcv.ret, int);
        assert_eq!(find(&funcs, "kfree_skbmem").ret, None, "returns void");

        // int ip_finish_output2(struct net *net, struct sock *sk, struct sk_buff *skb)
        assert_eq!(find(&funcs, "ip_finish_output2").skb_pos, 2);

        // bool __skb_flow_dissect(const struct net *net, const struct sk_buff *skb, ...)
        let dissect = find(&funcs, "__skb_flow_dissect");
        assert_eq!(dissect.skb_pos, 1, "const struct sk_buff * must count");

        // void skb_copy_header(struct sk_buff *new, const struct sk_buff *old):
        // the source is traced, not the skb being filled.
        assert_eq!(find(&funcs, "skb_copy_header").skb_pos, 1);
        for static_fn in ["__skb_clone", "__copy_skb_header"] {
            if let Some(f) = funcs.iter().find(|f| f.name == static_fn) {
                assert_eq!(f.skb_pos, 1, "{static_fn}");
            }
        }
        // int skb_try_coalesce(struct sk_buff *to, struct sk_buff *from, ...):
        // `to` is a live packet.
        if let Some(f) = funcs.iter().find(|f| f.name == "skb_try_coalesce") {
            assert_eq!(f.skb_pos, 0);
        }

        // Functions with no sk_buff parameter are not listed.
        assert!(!funcs.iter().any(|f| f.name == "schedule"));
        assert!(funcs.iter().all(|f| f.module == VMLINUX));
    }

    #[test]
    fn finds_skb_tracepoints_in_host_btf() {
        let btf = Btf::from_file("/sys/kernel/btf/vmlinux").unwrap();
        let mut types = SkbTypes::default();
        scan(&btf, VMLINUX, &mut types).unwrap();
        let tp = |name: &str| {
            types
                .tracepoints
                .iter()
                .find(|t| t.name == name)
                .unwrap_or_else(|| panic!("tracepoint {name} not found"))
                .skb_pos
        };
        // TP_PROTO(struct sk_buff *skb)
        assert_eq!(tp("netif_receive_skb"), 0);
        assert_eq!(tp("net_dev_queue"), 0);
        // TP_PROTO(struct sk_buff *skb, void *location, enum skb_drop_reason reason)
        assert_eq!(tp("kfree_skb"), 0);
        // TP_PROTO(const struct sk_buff *skb, const struct net_device *dev)
        assert_eq!(tp("net_dev_start_xmit"), 0);
        assert!(!types.tracepoints.iter().any(|t| t.name == "sched_switch"));

        let reasons = drop_reasons(&btf);
        assert!(
            reasons.values().any(|r| r == "NETFILTER_DROP"),
            "{reasons:?}"
        );
        assert_eq!(reasons.get(&2).map(String::as_str), Some("NOT_SPECIFIED"));
    }

    #[test]
    fn formats_return_values_by_type() {
        let int = IntType {
            size: 4,
            signed: true,
        };
        assert_eq!(int.format(0xffff_ffff_ffff_ffea), "-22");
        assert_eq!(
            int.format(0x0000_0000_ffff_ffea),
            "-22",
            "upper half ignored"
        );
        assert_eq!(int.format(1), "1");
        assert_eq!(
            IntType {
                size: 4,
                signed: false
            }
            .format(0xffff_ffff),
            "4294967295"
        );
        assert_eq!(
            IntType {
                size: 1,
                signed: false
            }
            .format(0x101),
            "1"
        );
        assert_eq!(
            IntType {
                size: 8,
                signed: true
            }
            .format(u64::MAX),
            "-1"
        );
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
