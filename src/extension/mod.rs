//! Extensions (SPEC.md, "Extensions"): user BPF code that adds up to 64
//! bytes of data to every event, and the decoding of those bytes for output.
//!
//! `.c` files are compiled ([`compile`]), `.o` files used as they are, and
//! `.lua` scripts ([`lua`]) carry their BPF object in `program`. The object
//! is linked into ipft's own BPF object ([`link`]); its data is decoded from
//! the BTF layout it declares ([`layout`]) or by the Lua script's `decode`.

pub mod compile;
pub mod layout;
pub mod link;
pub mod lua;
pub mod templates;

use crate::decode::Fields;
use anyhow::{bail, Context, Result};
use layout::Layout;
use lua::LuaExtension;
use std::path::Path;

/// The module linked when the user gives no extension: adds nothing.
static NULL_MODULE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/null_module.bpf.o"));

enum Decoder {
    Nothing,
    Layout(Layout),
    Lua(LuaExtension),
}

pub struct Extension {
    /// BPF object defining `module()`.
    module: Vec<u8>,
    decoder: Decoder,
}

impl Extension {
    /// No extension: the null module, no fields.
    pub fn none() -> Self {
        Extension {
            module: NULL_MODULE.to_vec(),
            decoder: Decoder::Nothing,
        }
    }

    /// True for [`Extension::none`]: events need no data section.
    pub fn is_none(&self) -> bool {
        matches!(self.decoder, Decoder::Nothing)
    }

    /// Loads `path` by its kind: `.c`, `.o` or `.lua`.
    pub fn load(path: &Path) -> Result<Self> {
        if !path.is_file() {
            bail!("extension {}: no such file", path.display());
        }
        let kind = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let (module, decoder) = match kind {
            "c" => {
                let work = private_dir()?;
                let object = compile::compile(path, work.path())?;
                let layout = bpf_layout(path, &object)?;
                (object, Decoder::Layout(layout))
            }
            "o" => {
                let object = std::fs::read(path)
                    .with_context(|| format!("cannot read extension {}", path.display()))?;
                let layout = bpf_layout(path, &object)?;
                (object, Decoder::Layout(layout))
            }
            "lua" => {
                let (lua, object) = LuaExtension::load(path)?;
                check_module(path, &object)?;
                (object, Decoder::Lua(lua))
            }
            _ => bail!(
                "extension {}: unknown kind; use a .c (BPF C), .o (BPF object) or .lua (Lua script) file",
                path.display()
            ),
        };
        Ok(Extension { module, decoder })
    }

    /// ipft's BPF object `main` with this extension's module linked in.
    pub fn link(&self, main: &[u8]) -> Result<Vec<u8>> {
        let work = private_dir()?;
        link::link(main, &self.module, work.path())
    }

    /// The extension's fields for one event's data.
    pub fn decode(&self, data: &[u8]) -> Result<Fields> {
        Ok(match &self.decoder {
            Decoder::Nothing => Fields::new(),
            Decoder::Layout(l) => l
                .decode(data)
                .into_iter()
                .map(|(k, v)| (k.into(), v))
                .collect(),
            Decoder::Lua(lua) => lua
                .decode(data)?
                .into_iter()
                .map(|(k, v)| (k.into(), v))
                .collect(),
        })
    }

    /// Tracing is over (Lua's `fini()`).
    pub fn finish(&self) -> Result<()> {
        match &self.decoder {
            Decoder::Lua(lua) => lua.fini(),
            _ => Ok(()),
        }
    }
}

/// A private temporary directory, removed when dropped.
fn private_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("ipft-")
        .tempdir()
        .context("cannot create a temporary directory")
}

fn bpf_layout(path: &Path, object: &[u8]) -> Result<Layout> {
    check_module(path, object)?;
    Layout::from_object(object).with_context(|| format!("extension {}", path.display()))
}

/// The object must define `module()`, or linking leaves the call unresolved.
fn check_module(path: &Path, object: &[u8]) -> Result<()> {
    let btf =
        layout::object_btf(object).with_context(|| format!("extension {}", path.display()))?;
    let defines = btf
        .resolve_types_by_name("module")
        .unwrap_or_default()
        .iter()
        .any(|t| matches!(t, btf_rs::Type::Func(_)));
    if !defines {
        bail!(
            "extension {}: defines no `module` function; it must define `__hidden int module(void *ctx, struct sk_buff *skb, __u8 data[64])`",
            path.display()
        );
    }
    Ok(())
}
