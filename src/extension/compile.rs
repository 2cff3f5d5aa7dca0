//! Compiles a `.c` extension to a BPF object: `$CC` (default clang)
//! `-target bpf -O2 -g` plus `$CFLAGS`, spawned without a shell, with ipft's
//! extension header, a minimal <linux/types.h> and libbpf's BPF headers on
//! the include path, so nothing but clang needs to be installed.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// Headers written to the private include directory: (relative path, text).
const HEADERS: &[(&str, &str)] = &[
    ("ipft.h", include_str!("../bpf/ext/ipft.h")),
    ("linux/types.h", include_str!("../bpf/ext/linux/types.h")),
    (
        "bpf/bpf_helpers.h",
        include_str!(concat!(env!("OUT_DIR"), "/bpf_helpers.h")),
    ),
    (
        "bpf/bpf_helper_defs.h",
        include_str!(concat!(env!("OUT_DIR"), "/bpf_helper_defs.h")),
    ),
    (
        "bpf/bpf_core_read.h",
        include_str!(concat!(env!("OUT_DIR"), "/bpf_core_read.h")),
    ),
    (
        "bpf/bpf_tracing.h",
        include_str!(concat!(env!("OUT_DIR"), "/bpf_tracing.h")),
    ),
    (
        "bpf/bpf_endian.h",
        include_str!(concat!(env!("OUT_DIR"), "/bpf_endian.h")),
    ),
];

/// Compiles `source` in the private directory `work` and returns the object.
pub fn compile(source: &Path, work: &Path) -> Result<Vec<u8>> {
    let include = work.join("include");
    for (rel, text) in HEADERS {
        let path = include.join(rel);
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, text)?;
    }
    let object = work.join("extension.o");
    let cc = std::env::var("CC").unwrap_or_else(|_| "clang".into());
    let cflags = std::env::var("CFLAGS").unwrap_or_default();
    let output = Command::new(&cc)
        .args(["-target", "bpf", "-O2", "-g", "-D__TARGET_ARCH_x86"])
        .arg("-I")
        .arg(&include)
        .args(cflags.split_whitespace())
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(&object)
        .output()
        .with_context(|| {
            format!(
                "cannot run the compiler `{cc}` for {}: install clang or set $CC",
                source.display()
            )
        })?;
    if !output.status.success() {
        // The compiler's own diagnostics first, then ipft's one-line error.
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        bail!(
            "extension {}: `{cc}` failed to compile it (its messages are above)",
            source.display()
        );
    }
    std::fs::read(&object).with_context(|| format!("cannot read {}", object.display()))
}
