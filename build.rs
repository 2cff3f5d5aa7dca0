//! Compiles the BPF C programs in src/bpf with clang and leaves the objects in
//! OUT_DIR, where src/bpf.rs embeds them: ipft ships as one binary.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const PROGRAMS: &[&str] = &["kprobe", "kprobe_multi", "ftrace", "tracepoint"];

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
            .args(["-D__TARGET_ARCH_x86", "-Isrc/bpf"])
            .arg(format!("-I{libbpf_include}"))
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {clang} to build {src}: {e}; install clang"));
        assert!(status.success(), "{clang} failed to compile {src}");
    }
}
