//! What build.rs generates from the clap definition (man page, completions,
//! extension files) matches what the binary does, and `--version` names the
//! commit. Needs no root.

use std::path::Path;
use std::process::Command;

fn ipft(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ipft"))
        .args(args)
        .output()
        .expect("run ipft");
    assert!(out.status.success(), "ipft {args:?} failed");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A file build.rs wrote to OUT_DIR.
fn generated(name: &str) -> String {
    let path = Path::new(env!("OUT_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The man page source with roff's escaped hyphens made plain and font
/// changes (bold, italic, roman) removed.
fn man_source() -> String {
    let mut text = generated("ipft.1").replace("\\-", "-");
    for font in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        text = text.replace(font, "");
    }
    text
}

/// Every option named in `text` (`-m`, `--mark`, ...), in order of appearance.
fn options_in(text: &str) -> Vec<String> {
    let mut found: Vec<String> = vec![];
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
        let name = word.trim_start_matches('-');
        let dashes = word.len() - name.len();
        let is_option = (dashes == 1 && name.len() == 1 || dashes == 2 && name.len() > 1)
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && !name.ends_with('-');
        if is_option && !found.iter().any(|f| f == word) {
            found.push(word.to_string());
        }
    }
    found
}

/// Whether `text` has `option` as a whole word (`--track` is not in
/// `--track-max`).
fn has_option(text: &str, option: &str) -> bool {
    options_in(text).iter().any(|o| o == option)
}

#[test]
fn option_scanner_sees_whole_options_only() {
    let text = "-m, --mark <NUM>  (skb->mark & mask) --track-max; see -e x.lua, pcap-filter";
    assert_eq!(options_in(text), ["-m", "--mark", "--track-max", "-e"]);
    assert!(!has_option(text, "--track"));
}

#[test]
fn man_page_lists_every_option_of_help() {
    let help = ipft(&["--help"]);
    let man = man_source();
    let options = options_in(&help);
    // The scanner really sees the options (and not, say, nothing at all).
    for sure in ["-m", "--mark", "--backend", "--gen", "--help", "--version"] {
        assert!(
            options.iter().any(|o| o == sure),
            "{sure} not seen in --help"
        );
    }
    let missing: Vec<&String> = options.iter().filter(|o| !has_option(&man, o)).collect();
    assert!(missing.is_empty(), "the man page lacks {missing:?}");
}

#[test]
fn man_page_has_possible_values_examples_and_exit_status() {
    let man = man_source();
    for value in [
        "kprobe-multi",
        "tracepoint",
        "function_graph",
        "json",
        "perfetto",
        "pcapng",
        "bpf-module-skeleton",
    ] {
        assert!(man.contains(value), "man page lacks the value {value}");
    }
    for example in [
        "sudo ipft 'host 10.0.0.2 and icmp'",
        "sudo ipft --filter-netns /run/netns/b --filter-ifname vb",
        "sudo ipft -m 0xdeadbeef",
        "sudo ipft -b kprobe-multi -m 0xdeadbeef",
        "sudo ipft -t function_graph -b ftrace icmp",
        "sudo ipft -o json -m 0xdeadbeef > events.json",
        "sudo ipft -t function_graph -o perfetto -w trace.pftrace icmp",
        "sudo ipft -o pcapng -w trace.pcapng icmp",
        "ipft --gen bpf-module-skeleton > ext.c",
    ] {
        let example = example.replace('\'', "\\*(Aq");
        assert!(man.contains(&example), "man page lacks {example:?}");
    }
    let status = &man[man
        .find(".SH \"EXIT STATUS\"")
        .expect("EXIT STATUS section")..];
    for code in [".TP\n0\n", ".TP\n1\n", ".TP\n2\n"] {
        assert!(status.contains(code), "EXIT STATUS lacks {code:?}");
    }
    assert!(status.contains("Bad command-line value"));
}

/// groff renders the page without a warning (lintian checks the same).
#[test]
fn man_page_renders_cleanly() {
    let page = Path::new(env!("OUT_DIR")).join("ipft.1");
    let out = Command::new("man")
        .args(["--warnings", "-E", "UTF-8", "-l"])
        .arg(&page)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .output()
        .expect("man (package man-db, installed by scripts/deps.sh)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("EXIT STATUS"), "{text}");
    assert!(text.contains("--filter-ifname"), "{text}");
}

#[test]
fn completions_offer_the_backends() {
    let values = ["kprobe", "kprobe-multi", "ftrace", "tracepoint"];
    for (file, option) in [
        ("ipft.bash", "--backend"),
        ("_ipft", "--backend"),
        ("ipft.fish", "-l backend"),
    ] {
        let text = generated(file);
        assert!(text.contains(option), "{file} lacks {option}");
        for v in values {
            assert!(text.contains(v), "{file} lacks {v}");
        }
    }
    // Bash: the --backend case completes exactly the backends.
    let bash = generated("ipft.bash");
    let case = &bash[bash.find("--backend)").expect("a --backend case")..];
    let words = case
        .lines()
        .find(|l| l.contains("compgen -W"))
        .expect("compgen -W for --backend");
    let mut offered: Vec<&str> = words
        .split('"')
        .nth(1)
        .expect("quoted word list")
        .split_whitespace()
        .collect();
    offered.sort();
    let mut expected = values.to_vec();
    expected.sort();
    assert_eq!(offered, expected);
}

/// The zsh and fish completions parse, and fish completes `--backend`
/// from the generated file (zsh and fish: scripts/deps.sh).
#[test]
fn completions_parse_in_their_shells() {
    let dir = Path::new(env!("OUT_DIR"));
    let shell = |program: &str, args: &[&str]| {
        // fish keeps state under $XDG_CONFIG_HOME and $XDG_DATA_HOME: not in ~.
        let home = tempfile::tempdir().unwrap();
        let out = Command::new(program)
            .args(args)
            .env("XDG_CONFIG_HOME", home.path())
            .env("XDG_DATA_HOME", home.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} (scripts/deps.sh installs it): {e}"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.is_empty(),
            "{program} {args:?}: {err}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let zsh = dir.join("_ipft");
    shell("zsh", &["-n", zsh.to_str().unwrap()]);
    let fish = dir.join("ipft.fish");
    let fish = fish.to_str().unwrap();
    shell("fish", &["--no-execute", fish]);
    let script = format!("source {fish}; complete -C 'ipft --backend '");
    let offered = shell("fish", &["-c", &script]);
    let mut offered: Vec<&str> = offered
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    offered.sort();
    assert_eq!(offered, ["ftrace", "kprobe", "kprobe-multi", "tracepoint"]);
}

#[test]
fn extension_files_are_gen_output() {
    assert_eq!(
        generated("skeleton.c"),
        ipft(&["--gen", "bpf-module-skeleton"])
    );
    assert_eq!(generated("ipft.h"), ipft(&["--gen", "bpf-module-header"]));
}

#[test]
fn version_names_the_commit() {
    let version = ipft(&["--version"]);
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let commit = commit.unwrap_or_else(|| "unknown".into());
    assert_eq!(
        version.trim_end(),
        format!("ipft {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}
