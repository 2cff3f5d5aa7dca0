//! Command-line behaviour that needs no kernel: help, and every bad input
//! giving one clear line on stderr and a non-zero exit.

use std::process::{Command, Output};

fn ipft(args: &[&str]) -> Output {
    ipft_env(args, &[])
}

/// Runs ipft with extra environment.
fn ipft_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipft"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run ipft")
}

/// Asserts a failure with exactly one line on stderr containing every `needle`.
fn assert_one_line_error(args: &[&str], needles: &[&str]) {
    assert_one_line_failure(&ipft(args), &format!("{args:?}"), needles);
}

/// Asserts that `out` (of the run described by `what`) failed with exactly
/// one line on stderr containing every `needle`.
fn assert_one_line_failure(out: &Output, what: &str, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} succeeded: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{what} stderr:\n{err}");
    for n in needles {
        assert!(err.contains(n), "{what}: {err:?} lacks {n:?}");
    }
}

#[test]
fn help_exits_zero() {
    for flag in ["-h", "--help"] {
        let out = ipft(&[flag]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        for opt in [
            "--mark",
            "--mask",
            "--backend",
            "--tracer",
            "--output",
            "--write",
            "--snaplen",
            "--regex",
            "--module-regex",
            "--stack",
            "--list",
            "--extension",
            "--script",
            "--gen",
            "--verbose",
            "--perf-page-count",
            "--perf-sample-period",
            "--perf-wakeup-events",
            "--no-set-rlimit",
            "--enable-probe-server",
            "--probe-server-port",
        ] {
            assert!(text.contains(opt), "help lacks {opt}");
        }
    }
}

#[test]
fn bad_mark_is_named() {
    assert_one_line_error(&["-m", "deadbeef"], &["'deadbeef'", "--mark", "0x"]);
    assert_one_line_error(&["-m", "0x1ffffffff"], &["--mark"]);
    assert_one_line_error(&["-m", "1", "--mask", "nope"], &["'nope'", "--mask"]);
}

#[test]
fn binary_outputs_need_a_file() {
    for format in ["perfetto", "pcapng"] {
        let out = ipft(&["-m", "1", "-o", format]);
        assert_eq!(out.status.code(), Some(2));
        let flag = format!("-o {format}");
        assert_one_line_failure(&out, &flag, &[&flag, "binary", "-w FILE", "-w -"]);
    }
}

#[test]
fn binary_outputs_refuse_a_terminal() {
    // `script` (util-linux) runs ipft with a pseudo-terminal as stdout.
    for format in ["perfetto", "pcapng"] {
        let bin = env!("CARGO_BIN_EXE_ipft");
        let out = Command::new("script")
            .args(["-qec", &format!("{bin} -m 1 -o {format} -w -"), "/dev/null"])
            .output()
            .expect("script (util-linux)");
        // script passes the exit status through; ipft's stderr reaches the
        // terminal, so it comes back on script's stdout.
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert_eq!(text.trim_end().lines().count(), 1, "{text}");
        assert!(text.contains("stdout is a terminal"), "{text}");
        assert!(text.contains(&format!("-o {format}")), "{text}");
    }
}

#[test]
fn snaplen_is_checked() {
    let pcapng = ["-m", "1", "-o", "pcapng", "-w", "/dev/null"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        pcapng.iter().chain(extra).copied().collect()
    };
    assert_one_line_error(
        &with(&["--snaplen", "257"]),
        &["--snaplen 257", "at most 256"],
    );
    assert_one_line_error(&with(&["--snaplen", "0"]), &["--snaplen 0", "1 to 256"]);
    assert_one_line_error(&with(&["--snaplen", "many"]), &["'many'", "--snaplen"]);
    assert_one_line_error(
        &["-m", "1", "-o", "json", "--snaplen", "64"],
        &["--snaplen", "-o pcapng only", "-o json"],
    );
    for args in [with(&["--snaplen", "300"]), with(&["--snaplen", "0"])] {
        assert_eq!(ipft(&args).status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn bad_regex_is_named() {
    assert_one_line_error(
        &["-m", "1", "-r", "ip_("],
        &["'ip_('", "--regex", "regular expression"],
    );
    assert_one_line_error(&["-l", "--module-regex", "[veth"], &["--module-regex"]);
    assert_one_line_error(
        &["-m", "1", "--stack", "nf_("],
        &["'nf_('", "--stack", "regular expression"],
    );
    let out = ipft(&["-m", "1", "--stack", "nf_("]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unknown_choices_are_named() {
    assert_one_line_error(
        &["-m", "1", "-b", "uprobe"],
        &["'uprobe'", "--backend", "kprobe"],
    );
    assert_one_line_error(&["-m", "1", "-t", "graph"], &["'graph'", "function_graph"]);
    assert_one_line_error(&["-m", "1", "-o", "xml"], &["'xml'", "json"]);
    assert_one_line_error(
        &["--gen", "bpf-module"],
        &["'bpf-module'", "bpf-module-skeleton"],
    );
}

#[test]
fn page_count_must_be_power_of_two() {
    assert_one_line_error(
        &["-m", "1", "--perf-page-count", "3"],
        &["power of two", "'3'"],
    );
    assert_one_line_error(
        &["-m", "1", "--perf-wakeup-events", "0"],
        &["--perf-wakeup-events"],
    );
    assert_one_line_error(&["-m", "1", "--probe-server-port", "70000"], &["70000"]);
}

#[test]
fn not_root_is_refused_clearly() {
    let bin = env!("CARGO_BIN_EXE_ipft");
    let out = if unsafe { libc_geteuid() } == 0 {
        // Drop to nobody to see what an unprivileged user sees.
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                bin,
                "-m",
                "1",
            ])
            .output()
            .expect("setpriv (util-linux)")
    } else {
        Command::new(bin).args(["-m", "1"]).output().unwrap()
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("must run as root"), "{err}");
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn gen_prints_header_and_skeleton() {
    let header = ipft(&["--gen", "bpf-module-header"]);
    assert!(header.status.success());
    let header = String::from_utf8_lossy(&header.stdout);
    for macro_name in [
        "__ipft_event_struct",
        "__ipft_ref(name)",
        "__ipft_fmt_hex",
        "__ipft_fmt_enum(ref)",
        "__ipft_fmt_enum_flags(ref)",
    ] {
        assert!(header.contains(macro_name), "header lacks {macro_name}");
    }
    let skeleton = ipft(&["--gen", "bpf-module-skeleton"]);
    assert!(skeleton.status.success());
    let skeleton = String::from_utf8_lossy(&skeleton.stdout);
    assert!(skeleton.contains("__hidden int module(void *ctx, struct sk_buff *skb, __u8 data[64])"));
    assert!(skeleton.contains("} __ipft_event_struct;"));
    // Self-contained: the header is inlined, not included.
    assert!(!skeleton.contains("#include \"ipft.h\""));
}

#[test]
fn two_extensions_are_refused() {
    assert_one_line_error(
        &["-m", "1", "-e", "a.c", "-s", "b.lua"],
        &["-e/--extension", "-s/--script"],
    );
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn missing_kernel_btf_is_explained() {
    let out = ipft_env(&["-l"], &[("IPFT_BTF_DIR", "/nonexistent/btf")]);
    assert_one_line_failure(
        &out,
        "-l with IPFT_BTF_DIR=/nonexistent/btf",
        &["/nonexistent/btf/vmlinux", "CONFIG_DEBUG_INFO_BTF"],
    );
    // A directory whose vmlinux is not BTF.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vmlinux"), b"not BTF").unwrap();
    let out = ipft_env(&["-l"], &[("IPFT_BTF_DIR", dir.path().to_str().unwrap())]);
    assert_one_line_failure(
        &out,
        "-l with a non-BTF vmlinux",
        &["cannot read kernel BTF"],
    );
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn missing_tracefs_is_explained() {
    let out = ipft_env(&["-l"], &[("IPFT_TRACEFS", "/nonexistent/tracing")]);
    assert_one_line_failure(
        &out,
        "-l with IPFT_TRACEFS=/nonexistent/tracing",
        &["tracefs not found at /nonexistent/tracing"],
    );
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn unsupported_backend_names_the_missing_feature() {
    // The host kernel has no kprobes (and a guest checks kprobe-multi on Debian).
    if std::path::Path::new("/sys/kernel/tracing/kprobe_events").exists() {
        return;
    }
    assert_one_line_error(
        &["-m", "1", "-b", "kprobe"],
        &["backend kprobe", "CONFIG_KPROBES"],
    );
}

/// Asserts exit status 2 (a bad command-line value) with one line naming
/// every `needle`.
fn assert_bad_value(args: &[&str], needles: &[&str]) {
    let out = ipft(args);
    assert_one_line_failure(&out, &format!("{args:?}"), needles);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn bad_selectors_exit_2() {
    assert_bad_value(&[], &["nothing selects packets", "--mark", "expression"]);
    assert_bad_value(&["-b", "tracepoint"], &["nothing selects packets"]);
    assert_bad_value(
        &["host", "10.0.0.2", "and"],
        &[
            "invalid filter expression 'host 10.0.0.2 and'",
            "syntax error",
        ],
    );
    assert_bad_value(
        &["ip", "protochain", "6"],
        &["filter expression 'ip protochain 6' cannot be run by ipft"],
    );
    assert_bad_value(
        &["--filter-netns", "/nonexistent/ns"],
        &["--filter-netns /nonexistent/ns", "no such file"],
    );
    assert_bad_value(
        &["--filter-netns", "/etc/hostname"],
        &["not a namespace file"],
    );
    assert_bad_value(
        &["--filter-netns", "4"],
        &["no network namespace with inode 4"],
    );
    assert_bad_value(
        &["--filter-ifname", "nosuch0"],
        &["--filter-ifname nosuch0", "no such device"],
    );
    assert_bad_value(&["--track-timeout", "0"], &["--track-timeout"]);
}
