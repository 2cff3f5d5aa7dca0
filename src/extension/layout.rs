//! Decodes the 64 bytes an extension fills, using the layout it declares in
//! BTF: the members of the global `__ipft_event_struct`, printed by name in
//! declaration order, with `ipft:fmt:*` decl tags choosing the format.
//!
//! Unsupported member types and bitfields are refused when the extension is
//! loaded, naming the member, never at print time.

use crate::kernel::btf::{resolve, strip};
use anyhow::{bail, Context, Result};
use btf_rs::{Btf, BtfType, Type};
use std::collections::BTreeMap;

const EVENT_STRUCT: &str = "__ipft_event_struct";
const TAG_PREFIX: &str = "ipft:fmt:";

/// How one member is printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Int {
        size: usize,
        signed: bool,
    },
    Bool {
        size: usize,
    },
    Char,
    Pointer,
    Hex {
        size: usize,
    },
    /// Enumerator names by value.
    Enum {
        size: usize,
        names: BTreeMap<u64, String>,
    },
    /// Flag names by bit value, joined with `|`.
    EnumFlags {
        size: usize,
        names: BTreeMap<u64, String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: &'static str,
    pub offset: usize,
    pub format: Format,
}

/// The members of an extension's `__ipft_event_struct`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub members: Vec<Member>,
}

impl Layout {
    /// Reads the layout from a BPF object file's BTF.
    pub fn from_object(object: &[u8]) -> Result<Layout> {
        let btf = object_btf(object)?;
        Self::from_btf(&btf)
    }

    pub fn from_btf(btf: &Btf) -> Result<Layout> {
        let var = find_var(btf, EVENT_STRUCT).context("the extension declares no `struct ... __ipft_event_struct;` (see ipft --gen bpf-module-skeleton)")?;
        let struct_id = var
            .get_type_id()
            .context("__ipft_event_struct has no type")?;
        let Type::Struct(st) = strip(btf, resolve(btf, struct_id)) else {
            bail!("__ipft_event_struct must be a struct");
        };
        let tags = member_tags(btf, struct_id);
        let mut members = Vec::new();
        for (i, m) in st.members.iter().enumerate() {
            let name = btf.resolve_name(m).unwrap_or_default();
            if m.bitfield_size().is_some_and(|b| b != 0) || m.bit_offset() % 8 != 0 {
                bail!("extension member `{name}` is a bitfield; ipft cannot print bitfields");
            }
            let offset = (m.bit_offset() / 8) as usize;
            let ty = strip(btf, resolve(btf, m.get_type_id().unwrap_or(0)));
            let format = member_format(btf, &name, &ty, tags.get(&(i as u32)))?;
            if offset + format.size() > crate::event::DATA_LEN {
                bail!("extension member `{name}` ends past the 64 bytes of event data");
            }
            members.push(Member {
                name: Box::leak(name.into_boxed_str()),
                offset,
                format,
            });
        }
        Ok(Layout { members })
    }

    /// (name, value) of every member, in declaration order.
    pub fn decode(&self, data: &[u8]) -> Vec<(&'static str, String)> {
        self.members
            .iter()
            .map(|m| {
                (
                    m.name,
                    m.format.show(&data[m.offset..m.offset + m.format.size()]),
                )
            })
            .collect()
    }
}

impl Format {
    fn size(&self) -> usize {
        match self {
            Format::Int { size, .. }
            | Format::Bool { size }
            | Format::Hex { size }
            | Format::Enum { size, .. }
            | Format::EnumFlags { size, .. } => *size,
            Format::Char => 1,
            Format::Pointer => 8,
        }
    }

    fn show(&self, bytes: &[u8]) -> String {
        let mut raw = [0u8; 8];
        raw[..bytes.len()].copy_from_slice(bytes);
        let value = u64::from_le_bytes(raw);
        match self {
            Format::Int { size, signed: true } => {
                let shift = 64 - 8 * *size as u32;
                (((value << shift) as i64) >> shift).to_string()
            }
            Format::Int { .. } => value.to_string(),
            Format::Bool { .. } => (value != 0).to_string(),
            Format::Char => (bytes[0] as char).to_string(),
            Format::Pointer | Format::Hex { .. } => format!("{value:#x}"),
            Format::Enum { names, .. } => names
                .get(&value)
                .cloned()
                .unwrap_or_else(|| value.to_string()),
            Format::EnumFlags { names, .. } => {
                let mut set: Vec<&str> = names
                    .iter()
                    .filter(|(bit, _)| **bit != 0 && value & **bit == **bit)
                    .map(|(_, n)| n.as_str())
                    .collect();
                let known = names.keys().fold(0, |acc, b| acc | b);
                let rest = format!("{:#x}", value & !known);
                if value & !known != 0 {
                    set.push(&rest);
                }
                if set.is_empty() {
                    // No flag set: the enumerator for zero, if any, else 0.
                    return names.get(&0).cloned().unwrap_or_else(|| "0".into());
                }
                set.join("|")
            }
        }
    }
}

/// The `.BTF` section of a BPF object file.
pub fn object_btf(object: &[u8]) -> Result<Btf> {
    use object::{Object, ObjectSection};
    // The ELF reader wants its input 8-byte aligned; embedded bytes are not.
    let mut aligned = vec![0u64; object.len().div_ceil(8)];
    // SAFETY: `aligned` holds at least object.len() bytes; u64 has no invalid bytes.
    let data = unsafe {
        let bytes = std::slice::from_raw_parts_mut(aligned.as_mut_ptr().cast::<u8>(), object.len());
        bytes.copy_from_slice(object);
        &*bytes
    };
    let file = object::File::parse(data).context("the extension is not an ELF object")?;
    let section = file
        .section_by_name(".BTF")
        .context("the extension object has no BTF; compile it with -g")?;
    let bytes = section.data().context("cannot read the extension's BTF")?;
    Btf::from_bytes(bytes).map_err(|e| anyhow::anyhow!("cannot parse the extension's BTF: {e}"))
}

/// Decl tags on the members of struct `struct_id`: member index -> tag.
fn member_tags(btf: &Btf, struct_id: u32) -> BTreeMap<u32, String> {
    let (first, last) = btf.base().type_id_range();
    let mut tags = BTreeMap::new();
    for id in first..=last {
        if let Ok(Type::DeclTag(tag)) = btf.resolve_type_by_id(id) {
            if tag.get_type_id() == Some(struct_id) {
                if let (Some(idx), Ok(text)) = (tag.component_index(), btf.resolve_name(&tag)) {
                    if let Some(fmt) = text.strip_prefix(TAG_PREFIX) {
                        tags.insert(idx, fmt.to_string());
                    }
                }
            }
        }
    }
    tags
}

fn member_format(btf: &Btf, name: &str, ty: &Type, tag: Option<&String>) -> Result<Format> {
    let size = match ty {
        Type::Int(i) => i.size(),
        Type::Enum(e) => e.size(),
        Type::Enum64(e) => e.size(),
        Type::Ptr(_) => 8,
        other => bail!(
            "extension member `{name}` has type {} that ipft cannot print; use integers, bool, char, enums or pointers",
            other.name()
        ),
    };
    if let Some(tag) = tag {
        if tag == "hex" {
            return Ok(Format::Hex { size });
        }
        let (flags, reference) = if let Some(r) = tag.strip_prefix("enum_flags:") {
            (true, r)
        } else if let Some(r) = tag.strip_prefix("enum:") {
            (false, r)
        } else {
            bail!("extension member `{name}` has unknown format tag `ipft:fmt:{tag}`");
        };
        let names = enum_names(btf, reference)
            .with_context(|| format!("extension member `{name}`: format ipft:fmt:{tag}"))?;
        return Ok(if flags {
            Format::EnumFlags { size, names }
        } else {
            Format::Enum { size, names }
        });
    }
    Ok(match ty {
        Type::Int(i) if i.is_bool() => Format::Bool { size },
        Type::Int(i)
            if i.is_char() || (size == 1 && btf.resolve_name(i).is_ok_and(|n| n == "char")) =>
        {
            Format::Char
        }
        Type::Int(i) => Format::Int {
            size,
            signed: i.is_signed(),
        },
        Type::Enum(e) => Format::Int {
            size,
            signed: e.is_signed(),
        },
        Type::Enum64(e) => Format::Int {
            size,
            signed: e.is_signed(),
        },
        _ => Format::Pointer,
    })
}

/// The global variable `name`.
fn find_var(btf: &Btf, name: &str) -> Option<btf_rs::Var> {
    btf.resolve_types_by_name(name)
        .unwrap_or_default()
        .into_iter()
        .find_map(|t| match t {
            Type::Var(v) => Some(v),
            _ => None,
        })
}

/// Enumerators of the enum type of variable `reference` (`__ipft_ref(name)`).
fn enum_names(btf: &Btf, reference: &str) -> Result<BTreeMap<u64, String>> {
    let var = find_var(btf, reference).with_context(|| {
        format!("no variable `{reference}`; declare it with __ipft_ref({reference})")
    })?;
    let mut names = BTreeMap::new();
    match strip(btf, resolve(btf, var.get_type_id().unwrap_or(0))) {
        Type::Enum(e) => {
            for m in &e.members {
                names.insert(m.val() as u64, btf.resolve_name(m)?);
            }
        }
        Type::Enum64(e) => {
            for m in &e.members {
                names.insert(m.val(), btf.resolve_name(m)?);
            }
        }
        _ => bail!("variable `{reference}` is not of an enum type"),
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles an extension source with ipft's own compile step (clang).
    fn compile(source: &str) -> Result<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ext.c");
        std::fs::write(&path, source).unwrap();
        super::super::compile::compile(&path, dir.path())
    }

    const MODULE: &str = "struct sk_buff;\n__hidden int module(void *ctx, struct sk_buff *skb, __u8 data[64]) { return 0; }\n";

    fn layout(event: &str) -> Result<Layout> {
        let source = format!("#include \"ipft.h\"\n{event}\n{MODULE}");
        Layout::from_object(&compile(&source)?)
    }

    #[test]
    fn decodes_every_supported_type() {
        let l = layout(
            r#"
enum color { RED = 1, GREEN = 2 };
enum gso { tcpv4 = 1 << 0, dodgy = 1 << 1, tcp_ecn = 1 << 2 };
enum color __ipft_ref(color_ref);
enum gso __ipft_ref(gso_ref);
struct event {
	__u8 u8v;
	__s8 s8v;
	__u16 u16v;
	__s16 s16v;
	__u32 u32v;
	__s32 s32v;
	__u64 u64v;
	__s64 s64v;
	_Bool flag;
	char ch;
	void *ptr;
	__u32 hexv __ipft_fmt_hex;
	__u32 colorv __ipft_fmt_enum(color_ref);
	__u32 gsov __ipft_fmt_enum_flags(gso_ref);
} __ipft_event_struct;
"#,
        )
        .unwrap();
        let names: Vec<&str> = l.members.iter().map(|m| m.name).collect();
        assert_eq!(
            names,
            [
                "u8v", "s8v", "u16v", "s16v", "u32v", "s32v", "u64v", "s64v", "flag", "ch", "ptr",
                "hexv", "colorv", "gsov"
            ]
        );
        let mut data = [0u8; 64];
        let mut put = |name: &str, bytes: &[u8]| {
            let m = l.members.iter().find(|m| m.name == name).unwrap();
            data[m.offset..m.offset + bytes.len()].copy_from_slice(bytes);
        };
        put("u8v", &[200]);
        put("s8v", &[0xff]);
        put("u16v", &65535u16.to_le_bytes());
        put("s16v", &(-2i16).to_le_bytes());
        put("u32v", &4_000_000_000u32.to_le_bytes());
        put("s32v", &(-22i32).to_le_bytes());
        put("u64v", &u64::MAX.to_le_bytes());
        put("s64v", &(-5i64).to_le_bytes());
        put("flag", &[1]);
        put("ch", b"x");
        put("ptr", &0xffff_8880_1234_5678u64.to_le_bytes());
        put("hexv", &0xbeefu32.to_le_bytes());
        put("colorv", &2u32.to_le_bytes());
        put("gsov", &5u32.to_le_bytes());
        let decoded: Vec<(&str, String)> = l.decode(&data);
        let values: Vec<&str> = decoded.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            [
                "200",
                "-1",
                "65535",
                "-2",
                "4000000000",
                "-22",
                "18446744073709551615",
                "-5",
                "true",
                "x",
                "0xffff888012345678",
                "0xbeef",
                "GREEN",
                "tcpv4|tcp_ecn",
            ]
        );
    }

    #[test]
    fn refuses_what_it_cannot_print() {
        let e = layout(
            "struct inner { int a; };\nstruct event { struct inner nested; } __ipft_event_struct;",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("`nested`"), "{e:#}");
        let e = layout("struct event { unsigned int a : 3; } __ipft_event_struct;").unwrap_err();
        assert!(format!("{e:#}").contains("`a` is a bitfield"), "{e:#}");
        let e = layout("struct event { unsigned int a; } not_the_event;").unwrap_err();
        assert!(format!("{e:#}").contains("__ipft_event_struct"), "{e:#}");
        let e = layout("struct event { __u32 a __ipft_fmt_enum(nope); } __ipft_event_struct;")
            .unwrap_err();
        assert!(format!("{e:#}").contains("nope"), "{e:#}");
    }

    #[test]
    fn compile_errors_name_the_file() {
        let e = compile("this is not C;").unwrap_err();
        assert!(format!("{e:#}").contains("failed to compile"), "{e:#}");
    }
}
