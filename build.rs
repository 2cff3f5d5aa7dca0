//! Compiles the BPF C programs in src/bpf with clang and leaves the objects in
//! OUT_DIR, where src/bpf.rs embeds them: ipft ships as one binary.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// Main objects (one per backend), the default extension module that is
/// linked into them when the user gives no extension, and the packet-filter
/// test harness (embedded by the tests only).
const PROGRAMS: &[&str] = &[
    "kprobe",
    "kprobe_multi",
    "ftrace",
    "tracepoint",
    "null_module",
    "filter_test",
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    // libbpf-sys installs libbpf's BPF-side headers (bpf_helpers.h, ...) here.
    let libbpf_include = env::var("DEP_BPF_INCLUDE").expect("DEP_BPF_INCLUDE from libbpf-sys");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-changed=src/bpf");

    for prog in PROGRAMS {
        let src = format!("src/bpf/{prog}.bpf.c");
        let obj = out.join(format!("{prog}.bpf.o"));
        let status = Command::new(&clang)
            .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"])
            .args(["-D__TARGET_ARCH_x86", "-Isrc/bpf", "-Isrc/bpf/ext"])
            .arg(format!("-I{libbpf_include}"))
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {clang} to build {src}: {e}; install clang"));
        assert!(status.success(), "{clang} failed to compile {src}");
    }

    // libbpf's BPF-side headers, embedded so that user extensions compile
    // with nothing but clang installed.
    for header in [
        "bpf_helpers.h",
        "bpf_helper_defs.h",
        "bpf_core_read.h",
        "bpf_tracing.h",
        "bpf_endian.h",
    ] {
        std::fs::copy(format!("{libbpf_include}/bpf/{header}"), out.join(header))
            .unwrap_or_else(|e| panic!("copying {header} from libbpf: {e}"));
    }
}
