//! Links ipft's BPF object with an extension module using libbpf's static
//! linker: the main object calls `module()`, the module defines it.

use anyhow::{Context, Result};
use std::path::Path;

/// Returns the linked object; `work` is a private directory for the output.
pub fn link(main: &[u8], module: &[u8], work: &Path) -> Result<Vec<u8>> {
    let out = work.join("linked.bpf.o");
    let mut linker = libbpf_rs::Linker::new(&out).context("cannot start libbpf's linker")?;
    linker.add_buf(main).context("linking ipft's BPF object")?;
    linker.add_buf(module).map_err(|e| {
        anyhow::anyhow!("the extension cannot be linked with ipft's BPF programs ({e}); it must define `__hidden int module(void *ctx, struct sk_buff *skb, __u8 data[64])`")
    })?;
    linker.link().map_err(|e| {
        anyhow::anyhow!("the extension cannot be linked with ipft's BPF programs ({e}); it must define `__hidden int module(void *ctx, struct sk_buff *skb, __u8 data[64])`")
    })?;
    std::fs::read(&out).with_context(|| format!("cannot read {}", out.display()))
}
