//! The Debian package, end to end on this machine (root): `cargo deb` builds
//! it from the release build, lintian finds no error in it, `dpkg -i`
//! installs it, the installed binary, man page, bash completion and extension
//! files work, and `dpkg --purge` leaves nothing behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Runs `program args`, returning its output; panics if it cannot start.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(ROOT)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Runs `program args`, asserting success; returns stdout.
fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed(package: &str) -> bool {
    run("dpkg-query", &["-W", "-f=${Status}", package])
        .stdout
        .starts_with(b"install ok installed")
}

/// Purges the package when the test ends, passed or not.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        if installed("ipft") {
            let _ = run("dpkg", &["--purge", "ipft"]);
        }
    }
}

/// Builds the package with `cargo deb` and returns its path.
fn build_deb() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // cargo hands build.rs's IPFT_GIT_COMMIT to tests too; the nested build
    // would take it as a change and rebuild (twice: here and in the next run).
    let out = Command::new(&cargo)
        .arg("deb")
        .env_remove("IPFT_GIT_COMMIT")
        .current_dir(ROOT)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cargo} deb: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cargo deb failed (is cargo-deb installed? scripts/deps.sh installs it): {stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let deb = stdout
        .lines()
        .map(str::trim)
        .rfind(|l| l.ends_with(".deb"))
        .unwrap_or_else(|| panic!("cargo deb printed no .deb path: {stdout}"));
    PathBuf::from(ROOT).join(deb)
}

/// The bash completion of `ipft --backend `, from the installed package.
fn complete_backend() -> String {
    let script = r#"
        source /usr/share/bash-completion/bash_completion
        # bash-completion 2.12 renamed its loader.
        if declare -F _comp_load >/dev/null; then _comp_load ipft; else __load_completion ipft; fi
        spec=$(complete -p ipft) || exit 1
        echo "spec: $spec"
        func=$(sed -n 's/.*-F \([^ ]*\) .*/\1/p' <<<"$spec")
        COMP_WORDS=(ipft --backend "")
        COMP_CWORD=2
        COMP_LINE="ipft --backend "
        COMP_POINT=${#COMP_LINE}
        COMPREPLY=()
        "$func" ipft "" --backend
        printf 'reply: %s\n' "${COMPREPLY[@]}"
    "#;
    ok("bash", &["--norc", "--noprofile", "-c", script])
}

#[test]
#[ignore = "needs root: installs the package"]
fn deb_installs_works_and_purges_cleanly() {
    let deb = build_deb();
    let deb = deb.to_str().unwrap();
    println!("package: {deb}");

    // lintian: errors fail, warnings are shown.
    let lintian = run(
        "lintian",
        &["--fail-on", "error", "--tag-display-limit", "0", deb],
    );
    let report = String::from_utf8_lossy(&lintian.stdout);
    println!("lintian:\n{report}");
    assert!(
        lintian.status.success() && !report.lines().any(|l| l.starts_with("E:")),
        "lintian reports errors: {report}{}",
        String::from_utf8_lossy(&lintian.stderr)
    );

    // Run-time dependencies: exactly what the binary links, and the recommends.
    let depends = ok("dpkg-deb", &["-f", deb, "Depends"]);
    let depends: BTreeSet<String> = depends
        .split(',')
        .map(|d| d.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        ok("dpkg-deb", &["-f", deb, "Recommends"]).trim(),
        "clang, libpcap0.8"
    );

    // What the package holds, and which of those paths exist before.
    let _purge = Purge;
    if installed("ipft") {
        ok("dpkg", &["--purge", "ipft"]);
    }
    let tar = Command::new("sh")
        .args(["-c", "dpkg-deb --fsys-tarfile \"$1\" | tar -t", "sh", deb])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let contents: Vec<PathBuf> = String::from_utf8_lossy(&tar.stdout)
        .lines()
        .map(|l| Path::new("/").join(l.trim_start_matches("./").trim_end_matches('/')))
        .filter(|p| p != Path::new("/"))
        .collect();
    let existed: BTreeSet<&PathBuf> = contents.iter().filter(|p| p.exists()).collect();

    ok("dpkg", &["-i", deb]);
    let listed: BTreeSet<PathBuf> = ok("dpkg", &["-L", "ipft"])
        .lines()
        .map(PathBuf::from)
        .filter(|p| p != Path::new("/."))
        .collect();
    for path in [
        "/usr/bin/ipft",
        "/usr/share/man/man1/ipft.1.gz",
        "/usr/share/bash-completion/completions/ipft",
        "/usr/share/zsh/vendor-completions/_ipft",
        "/usr/share/fish/vendor_completions.d/ipft.fish",
        "/usr/share/ipft/ipft.h",
        "/usr/share/ipft/skeleton.c",
        "/usr/share/doc/ipft/copyright",
    ] {
        assert!(listed.contains(Path::new(path)), "dpkg -L lacks {path}");
        assert!(Path::new(path).is_file(), "{path} not installed");
    }

    // Every library the binary loads comes from a package it depends on.
    let ldd = ok("ldd", &["/usr/bin/ipft"]);
    for lib in ldd.lines().filter_map(|l| {
        let path = l.split("=>").nth(1)?.split_whitespace().next()?;
        path.starts_with('/').then(|| path.to_string())
    }) {
        // dpkg may know the file under /lib or /usr/lib (merged /usr).
        let alias = match lib.strip_prefix("/usr") {
            Some(short) => short.to_string(),
            None => format!("/usr{lib}"),
        };
        let owner = [&lib, &alias]
            .iter()
            .map(|path| run("dpkg", &["-S", path]))
            .find(|out| out.status.success())
            .unwrap_or_else(|| panic!("no package owns {lib}"));
        let owner = String::from_utf8_lossy(&owner.stdout);
        let owner = owner.split(':').next().unwrap().trim().to_string();
        assert!(
            depends.contains(&owner),
            "{lib} is from {owner}, not in Depends {depends:?}"
        );
    }

    // --version: the version and commit of this build.
    let version = ok("/usr/bin/ipft", &["--version"]);
    assert_eq!(
        version,
        ok(env!("CARGO_BIN_EXE_ipft"), &["--version"]),
        "installed ipft is not this build"
    );
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    if let Some(commit) = run("git", &["rev-parse", "--short", "HEAD"])
        .status
        .success()
        .then(|| ok("git", &["rev-parse", "--short", "HEAD"]))
    {
        assert!(version.contains(commit.trim()), "{version} lacks {commit}");
    }
    println!("installed: {}", version.trim());

    // man finds and renders the page.
    assert_eq!(
        ok("man", &["-w", "ipft"]).trim(),
        "/usr/share/man/man1/ipft.1.gz"
    );
    let page = ok("man", &["-P", "cat", "ipft"]);
    assert!(page.contains("EXIT STATUS"), "{page}");

    // bash completes --backend values.
    let completion = complete_backend();
    println!("{completion}");
    let offered: BTreeSet<&str> = completion
        .lines()
        .filter_map(|l| l.strip_prefix("reply: "))
        .collect();
    let expected: BTreeSet<&str> = ["kprobe", "kprobe-multi", "ftrace", "tracepoint"].into();
    assert_eq!(offered, expected, "{completion}");

    // fish loads the installed completion by itself and completes them too.
    // (fish keeps state under $XDG_CONFIG_HOME and $XDG_DATA_HOME: not in ~.)
    let home = tempfile::tempdir().unwrap();
    let fish = Command::new("fish")
        .args(["-c", "complete -C 'ipft --backend '"])
        .env("XDG_CONFIG_HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .output()
        .expect("fish (scripts/deps.sh installs it)");
    assert!(fish.status.success());
    let fish = String::from_utf8_lossy(&fish.stdout);
    let offered: BTreeSet<&str> = fish
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(offered, expected, "fish: {fish}");

    // The extension files are what the installed binary generates.
    for (target, file) in [
        ("bpf-module-skeleton", "/usr/share/ipft/skeleton.c"),
        ("bpf-module-header", "/usr/share/ipft/ipft.h"),
    ] {
        let installed_file = std::fs::read_to_string(file).unwrap();
        assert_eq!(
            ok("/usr/bin/ipft", &["--gen", target]),
            installed_file,
            "{file}"
        );
    }

    // Purge: every path the package created is gone again.
    ok("dpkg", &["--purge", "ipft"]);
    assert!(!installed("ipft"));
    let left: Vec<&PathBuf> = listed
        .iter()
        .chain(&contents)
        .filter(|p| !existed.contains(p) && p.symlink_metadata().is_ok())
        .collect();
    assert!(left.is_empty(), "left after dpkg --purge: {left:?}");
    println!(
        "purged: {} paths gone ({} directories existed before)",
        contents.len() - existed.len(),
        existed.len()
    );
}
