//! Build-time work, so that ipft ships as one binary and its documentation
//! never drifts from it:
//!
//! - compiles the BPF C programs in src/bpf with clang and leaves the
//!   objects in OUT_DIR, where src/bpf.rs embeds them;
//! - names the git commit being built (`IPFT_GIT_COMMIT`, shown by
//!   `ipft --version`);
//! - generates, from the very clap definition the binary parses with
//!   (src/cli.rs, included below), the man page and the bash, zsh and fish
//!   completions, and writes `--gen`'s extension header and skeleton
//!   (src/extension/templates.rs, included below). See [`write_assets`].

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

// The command line, the same source file as the binary's.
#[allow(dead_code)]
#[path = "src/cli.rs"]
mod cli;

// `--gen`'s output, the same source file as the binary's.
#[allow(dead_code)]
#[path = "src/extension/templates.rs"]
mod templates;

/// What `#[command(version = crate::VERSION)]` in src/cli.rs names here; the
/// commit is added by [`write_assets`] (the binary's is in src/main.rs).
const VERSION: &str = env!("CARGO_PKG_VERSION");

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
    compile_bpf(&out);
    let commit = git_commit();
    println!("cargo:rustc-env=IPFT_GIT_COMMIT={commit}");
    write_assets(&out, &format!("{VERSION} (commit {commit})"));
}

fn compile_bpf(out: &Path) {
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
        fs::copy(format!("{libbpf_include}/bpf/{header}"), out.join(header))
            .unwrap_or_else(|e| panic!("copying {header} from libbpf: {e}"));
    }
}

/// The short hash of the commit being built: `$IPFT_GIT_COMMIT` if set (for
/// builds from a source tarball), else `git rev-parse --short HEAD` when this
/// crate is the top of a git checkout, else "unknown". Asks cargo to rerun
/// when HEAD moves (HEAD itself, the branch it points to, packed refs).
fn git_commit() -> String {
    println!("cargo:rerun-if-env-changed=IPFT_GIT_COMMIT");
    if let Some(c) = env::var("IPFT_GIT_COMMIT").ok().filter(|c| !c.is_empty()) {
        return c;
    }
    let dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(&dir)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    // Not another repository that happens to contain this source tree.
    let top = git(&["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    let ours = match (top.and_then(|t| t.canonicalize().ok()), dir.canonicalize()) {
        (Some(t), Ok(d)) => t == d,
        _ => false,
    };
    let commit = ours
        .then(|| git(&["rev-parse", "--short", "HEAD"]))
        .flatten();
    let Some(commit) = commit else {
        return "unknown".into();
    };
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            // A missing path would make cargo rerun this script on every build.
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    commit
}

/// Generates the man page (`ipft.1`, and gzipped `ipft.1.gz`), completions
/// (`ipft.bash`, `_ipft`, `ipft.fish`) and the extension header and
/// skeleton (`ipft.h`, `skeleton.c`) into OUT_DIR, and copies them to
/// `assets/` beside the binary (`target/release/assets/`), where cargo-deb
/// (Cargo.toml, `[package.metadata.deb]`) and packagers pick them up.
fn write_assets(out: &Path, version: &str) {
    use clap::CommandFactory;
    use clap_complete::Shell;

    // clap takes a &'static str; this process ends soon.
    let version: &'static str = version.to_string().leak();
    let cmd = cli::Cli::command().version(version);
    let mut files: Vec<(&str, Vec<u8>)> = vec![];
    let man = man_page(cmd.clone(), version);
    files.push(("ipft.1.gz", gzip(&man)));
    files.push(("ipft.1", man));
    for (shell, name) in [
        (Shell::Bash, "ipft.bash"),
        (Shell::Zsh, "_ipft"),
        (Shell::Fish, "ipft.fish"),
    ] {
        let mut text = vec![];
        clap_complete::generate(shell, &mut cmd.clone(), "ipft", &mut text);
        files.push((name, text));
    }
    files.push((
        "ipft.h",
        templates::generate(cli::GenTarget::BpfModuleHeader).into_bytes(),
    ));
    files.push((
        "skeleton.c",
        templates::generate(cli::GenTarget::BpfModuleSkeleton).into_bytes(),
    ));

    // OUT_DIR is <target>/<profile>/build/ipft-<hash>/out.
    let assets = out
        .ancestors()
        .nth(3)
        .filter(|_| out.ancestors().nth(2).and_then(Path::file_name) == Some("build".as_ref()))
        .map(|profile| profile.join("assets"));
    if let Some(dir) = &assets {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    }
    for (name, data) in &files {
        write_if_changed(&out.join(name), data);
        if let Some(dir) = &assets {
            write_if_changed(&dir.join(name), data);
        }
    }
}

/// Writes `data` unless the file already holds it (builds of several
/// profiles or tools share assets/), through a rename so that no reader sees
/// half a file.
fn write_if_changed(path: &Path, data: &[u8]) {
    if fs::read(path).is_ok_and(|old| old == data) {
        return;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, data)
        .and_then(|()| fs::rename(&tmp, path))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// gzip with no name and no time stamp in the header (reproducible, as
/// Debian wants for man pages).
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::GzBuilder::new().write(vec![], flate2::Compression::best());
    gz.write_all(data).expect("gzip to memory");
    gz.finish().expect("gzip to memory")
}

/// Writes one piece of the man page.
type Render<'a> = &'a dyn Fn(&mut Vec<u8>) -> std::io::Result<()>;

/// The man page: clap's NAME, SYNOPSIS, DESCRIPTION and OPTIONS (so every
/// option of `--help` is there, with its possible values and default), then
/// the README's examples of each feature, exit status, environment, files.
fn man_page(cmd: clap::Command, version: &str) -> Vec<u8> {
    use roff::{bold, italic, roman, Roff};

    let after_help = cmd
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let man = clap_mangen::Man::new(cmd)
        .source(format!("ipft {version}"))
        .manual("ipft manual");

    let mut r = Roff::new();
    let para = |r: &mut Roff, text: &str| {
        r.control("PP", []).text([roman(text)]);
    };
    // Shell commands, one a line, indented and not filled.
    let example = |r: &mut Roff, lines: &[&str]| {
        r.control("PP", []).control("RS", ["4"]).control("nf", []);
        for line in lines {
            r.text([roman(*line)]);
        }
        r.control("fi", []).control("RE", []);
    };
    let sub = |r: &mut Roff, title: &str| {
        r.control("SS", [title]);
    };

    r.control("SH", ["EXAMPLES"]);
    let from_help: Vec<&str> = after_help
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_end().ends_with(':'))
        .map(str::trim)
        .collect();
    para(&mut r, "In short (as in --help):");
    example(&mut r, &from_help);

    sub(&mut r, "Selecting packets with a pcap-filter expression");
    para(&mut r, "The positional words form one pcap-filter(7) expression, joined with spaces as tcpdump(8) joins them. libpcap (package libpcap0.8) is loaded at run time, only when an expression is given.");
    example(
        &mut r,
        &[
            "sudo ipft 'host 10.0.0.2 and icmp'     # attach, wait for \"Trace ready!\"",
            "ping 10.0.0.2                          # in another shell",
            "# Ctrl-C in the first shell: ipft prints what it saw and detaches",
            "sudo ipft -b kprobe tcp port 443",
        ],
    );
    sub(&mut r, "Selecting by network namespace and device");
    para(&mut r, "--filter-netns takes an inode number, /proc/PID/ns/net or /run/netns/NAME; --filter-ifname names a device in that namespace (else in ipft's own). All selectors given must match.");
    example(
        &mut r,
        &["sudo ipft --filter-netns /run/netns/b --filter-ifname vb"],
    );
    sub(&mut r, "Selecting marked packets");
    para(&mut r, "Packets whose skb->mark matches, as set by iptables, nft, tc or SO_MARK; --mask compares only some bits.");
    example(
        &mut r,
        &[
            "sudo iptables -t raw -A OUTPUT -p icmp -j MARK --set-mark 0xdeadbeef",
            "sudo ipft -m 0xdeadbeef",
            "sudo ipft -m 0x100 --mask 0xf00",
        ],
    );
    para(&mut r, "Once selected, a packet is followed through NAT, namespace crossings and clones, whatever its mark or headers become; --no-track makes every event match the selectors by itself.");
    sub(&mut r, "Backends");
    para(&mut r, "Without -b, ipft uses the first of kprobe-multi, ftrace (fentry/fexit), kprobe and tracepoint that the kernel supports; -v says which and why the others were not used. The tracepoint backend also works on locked-down kernels.");
    example(
        &mut r,
        &[
            "sudo ipft -v -m 0xdeadbeef",
            "sudo ipft -b kprobe-multi -m 0xdeadbeef",
            "sudo ipft -b tracepoint icmp",
        ],
    );
    sub(&mut r, "Tracers");
    para(&mut r, "function (the default) records each function a packet went through; function_graph also records returns, with depth, durations and return values (not on the tracepoint backend).");
    example(&mut r, &["sudo ipft -t function_graph -b ftrace icmp"]);
    sub(&mut r, "Outputs and listing");
    para(&mut r, "aggregate (the default) prints each packet's journey at exit; json streams one object per event; perfetto streams a Perfetto trace (one track per packet under one per CPU, function_graph calls as slices) to open at ui.perfetto.dev; pcapng writes the first --snaplen bytes (default 128) of the packet at every event as a pcap-ng capture for Wireshark, each frame's comment naming the function, CPU, namespace and device. -w FILE writes any of them to FILE instead of stdout (-w - is stdout, never a terminal for the binary perfetto and pcapng); perfetto and pcapng need -w. -l lists the functions that would be traced; -r and --module-regex narrow them.");
    example(
        &mut r,
        &[
            "sudo ipft -o json -m 0xdeadbeef > events.json",
            "sudo ipft -t function_graph -o perfetto -w trace.pftrace icmp",
            "sudo ipft -o pcapng -w trace.pcapng icmp",
            "sudo ipft -o pcapng -w - icmp | tshark -r -",
            "sudo ipft -l -r '^ip_' --module-regex vmlinux",
        ],
    );
    sub(&mut r, "Extensions");
    para(&mut r, "An extension adds up to 64 bytes of data to every event: a .c file (compiled with $CC, default clang), a BPF object with BTF, or a Lua script. Start from the skeleton (also installed as /usr/share/ipft/skeleton.c), which records skb->len:");
    example(
        &mut r,
        &[
            "ipft --gen bpf-module-skeleton > ext.c",
            "sudo ipft -m 0xdeadbeef -e ext.c",
            "sudo ipft -m 0xdeadbeef -s decoder.lua",
        ],
    );

    r.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "Success: tracing stopped by Ctrl-C or SIGTERM and the results printed, or --list, --gen, --help, --version done."),
        ("1", "Run-time failure (kernel support, permissions, loading or attaching), with one line on stderr."),
        ("2", "Bad command-line value, including selectors that cannot be used (no selector, unknown namespace or device) and pcap-filter expressions libpcap rejects, with one line on stderr naming it; nothing was attached."),
        ("130", "Ctrl-C while waiting for an earlier ipft to finish detaching, or a second Ctrl-C; nothing is left attached."),
    ] {
        r.control("TP", []).text([bold(code)]).text([roman(meaning)]);
    }

    r.control("SH", ["ENVIRONMENT"]);
    for (var, meaning) in [
        (
            "IPFT_BTF_DIR",
            "Directory of kernel BTF instead of /sys/kernel/btf.",
        ),
        (
            "IPFT_TRACEFS",
            "tracefs instead of /sys/kernel/tracing (mounted there by ipft if needed).",
        ),
        (
            "IPFT_DETACH_LOCK",
            "The background detach's lock file instead of /run/ipft-detach.lock (tests).",
        ),
        (
            "CC, CFLAGS",
            "Compiler (default clang) and extra flags for .c extensions.",
        ),
    ] {
        r.control("TP", []).text([bold(var)]).text([roman(meaning)]);
    }

    r.control("SH", ["FILES"]);
    for (file, meaning) in [
        (
            "/usr/share/ipft/ipft.h",
            "The extension header (ipft --gen bpf-module-header).",
        ),
        (
            "/usr/share/ipft/skeleton.c",
            "A complete extension (ipft --gen bpf-module-skeleton).",
        ),
        (
            "/sys/kernel/btf/vmlinux",
            "Kernel BTF: ipft needs CONFIG_DEBUG_INFO_BTF.",
        ),
        (
            "/sys/kernel/rcu_expedited",
            "Set while kprobes detach, then put back (--no-rcu-expedite leaves it alone).",
        ),
        (
            "/run/ipft-detach.lock",
            "Held by an ipft detaching in the background (pid and probe count inside; /tmp/ipft-detach.lock where /run is read-only); a new ipft waits for it.",
        ),
    ] {
        r.control("TP", [])
            .text([bold(file)])
            .text([roman(meaning)]);
    }

    r.control("SH", ["SEE ALSO"]);
    r.text([
        italic("pcap-filter"),
        roman("(7), "),
        italic("tcpdump"),
        roman("(8), "),
        italic("ip-netns"),
        roman("(8), "),
        italic("iptables"),
        roman("(8), "),
        italic("nft"),
        roman("(8), "),
        italic("bpf"),
        roman("(2)"),
    ]);

    // Each piece starts with roff's preamble; keep only the first.
    let preamble = Roff::new().render();
    let mut page = vec![];
    let pieces: [Render; 7] = [
        &|w| man.render_title(w),
        &|w| man.render_name_section(w),
        &|w| man.render_synopsis_section(w),
        &|w| man.render_description_section(w),
        &|w| man.render_options_section(w),
        &|w| r.to_writer(w),
        &|w| man.render_version_section(w),
    ];
    for (i, render) in pieces.iter().enumerate() {
        let mut piece = vec![];
        render(&mut piece).expect("render man page");
        let skip = if i > 0 && piece.starts_with(preamble.as_bytes()) {
            preamble.len()
        } else {
            0
        };
        page.extend_from_slice(&piece[skip..]);
    }
    page
}
