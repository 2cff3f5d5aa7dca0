//! The test kernels and their guests: which kernel image each test module
//! boots (by exact series, never by a prefix another series matches), and
//! the guests themselves. Every kernel the run needs boots at the first
//! check, one after the other, the next one as soon as the last has reached
//! its final detach (see [`guest`]); each check waits for its own kernel's
//! guest only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Condvar, Mutex, OnceLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Debian's linux-image-amd64 (6.1): kprobe, fentry, modules.
    Debian,
    /// Debian's linux-image-6.12.*+deb12-amd64-unsigned: adds kprobe-multi
    /// (CONFIG_FPROBE), IBT, modules.
    Debian612,
    /// ../shared/kernels/vmlinuz-6.1-ipft: adds kprobe-multi, no modules.
    Custom,
    /// linux-image-6.12.*+deb12-rt-amd64-unsigned: PREEMPT_RT, rcu_normal
    /// (each kprobe's removal waits for normal RCU grace periods: ~0.7 s).
    Debian612Rt,
}

impl Kernel {
    /// Every test kernel, in the order their guests boot: each next guest
    /// boots beside the last one's final detach, so the kernel whose fentry
    /// detach is shortest (custom 6.1: ~165 s; Debian 6.12: ~350 s) comes
    /// last, where nothing overlaps it.
    const ALL: [Kernel; 4] = [
        Kernel::Debian612Rt,
        Kernel::Debian612,
        Kernel::Debian,
        Kernel::Custom,
    ];

    /// The test module of its checks (per_kernel! in tests/e2e.rs).
    fn module(self) -> &'static str {
        match self {
            Kernel::Debian => "debian_6_1",
            Kernel::Debian612 => "debian_6_12",
            Kernel::Custom => "custom_6_1",
            Kernel::Debian612Rt => "debian_6_12_rt",
        }
    }

    /// Its folder under target/e2e (and its name in test.sh's summary).
    pub fn label(self) -> &'static str {
        match self {
            Kernel::Debian => "debian-6.1",
            Kernel::Debian612 => "debian-6.12",
            Kernel::Custom => "custom-6.1",
            Kernel::Debian612Rt => "debian-6.12-rt",
        }
    }

    /// Linux 6.11+: packets are dropped through sk_skb_reason_drop.
    pub fn is_6_12(self) -> bool {
        matches!(self, Kernel::Debian612 | Kernel::Debian612Rt)
    }

    /// PREEMPT_RT: guest.sh narrows the full kprobe and fentry attaches
    /// (detaching ~1,500 kprobes takes over 20 minutes there).
    pub fn is_realtime(self) -> bool {
        self == Kernel::Debian612Rt
    }

    /// veth, nf_tables ... are modules with BTF (Debian), not built in.
    pub fn has_modules(self) -> bool {
        self != Kernel::Custom
    }

    /// CONFIG_FPROBE: kprobe-multi links (and auto chooses them).
    pub fn has_kprobe_multi(self) -> bool {
        self != Kernel::Debian
    }

    fn image(self) -> PathBuf {
        let boot = |series: Series, hint: &str| {
            let names = std::fs::read_dir("/boot")
                .expect("/boot")
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned());
            let newest = newest_in_series(names, series)
                .unwrap_or_else(|| panic!("no /boot/{}*{}: {hint}", series.0, series.1));
            PathBuf::from("/boot").join(newest)
        };
        match self {
            Kernel::Debian => boot(
                DEBIAN_6_1,
                "apt-get install linux-image-amd64 (see scripts/deps.sh)",
            ),
            Kernel::Debian612 => boot(
                DEBIAN_6_12,
                "apt-get install linux-image-6.12.<newest>+deb12-amd64-unsigned (see scripts/deps.sh)",
            ),
            Kernel::Custom => repo().join("../shared/kernels/vmlinuz-6.1-ipft"),
            Kernel::Debian612Rt => boot(
                DEBIAN_6_12_RT,
                "apt-get install linux-image-6.12.<newest>+deb12-rt-amd64-unsigned (see scripts/deps.sh)",
            ),
        }
    }
}

/// A kernel series in /boot: file names `{prefix}{version}{suffix}`, where
/// the version is dot/dash-separated numbers only.
type Series = (&'static str, &'static str);
/// vmlinuz-6.1.0-56-amd64 (never vmlinuz-6.12..., which `6.1*` would match).
const DEBIAN_6_1: Series = ("vmlinuz-6.1.0-", "-amd64");
/// vmlinuz-6.12.117+deb12-amd64 (not the -cloud or -rt flavours).
const DEBIAN_6_12: Series = ("vmlinuz-6.12.", "+deb12-amd64");

/// vmlinuz-6.12.117+deb12-rt-amd64.
const DEBIAN_6_12_RT: Series = ("vmlinuz-6.12.", "+deb12-rt-amd64");

/// The newest file of `series`, comparing versions number by number.
fn newest_in_series(names: impl Iterator<Item = String>, series: Series) -> Option<String> {
    let version = |name: &str| -> Option<Vec<u64>> {
        let v = name.strip_prefix(series.0)?.strip_suffix(series.1)?;
        v.split(['.', '-']).map(|n| n.parse().ok()).collect()
    };
    names
        .filter_map(|n| Some((version(&n)?, n)))
        .max()
        .map(|(_, n)| n)
}

#[test]
fn kernel_series_are_exact() {
    let boot = || {
        [
            "vmlinuz-6.1.0-9-amd64",
            "vmlinuz-6.1.0-56-amd64",
            "vmlinuz-6.1.0-56-cloud-amd64",
            "vmlinuz-6.12.9+deb12-amd64",
            "vmlinuz-6.12.117+deb12-amd64",
            "vmlinuz-6.12.117+deb12-rt-amd64",
            "vmlinuz-6.12.117+deb12-cloud-amd64",
            "config-6.12.117+deb12-amd64",
        ]
        .map(String::from)
        .into_iter()
    };
    assert_eq!(
        newest_in_series(boot(), DEBIAN_6_1).as_deref(),
        Some("vmlinuz-6.1.0-56-amd64")
    );
    assert_eq!(
        newest_in_series(boot(), DEBIAN_6_12).as_deref(),
        Some("vmlinuz-6.12.117+deb12-amd64")
    );
    assert_eq!(
        newest_in_series(boot(), DEBIAN_6_12_RT).as_deref(),
        Some("vmlinuz-6.12.117+deb12-rt-amd64")
    );
    assert_eq!(
        newest_in_series(boot().filter(|n| !n.contains("6.1.")), DEBIAN_6_1),
        None,
        "a 6.12 kernel is never taken for 6.1"
    );
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Kernels whose checks this test run may run, from libtest's name filters
/// on the command line: a filter that names a kernel's module
/// (`custom_6_1`, `debian_6_12::check_drops`) selects that kernel, any
/// other filter (`check_drops`) or none selects them all; `--skip` with a
/// kernel's module (`--skip debian_6_12_rt::`) leaves it out.
fn wanted_kernels(mut args: impl Iterator<Item = String>) -> Vec<Kernel> {
    let (mut filters, mut skips) = (Vec::new(), Vec::new());
    while let Some(arg) = args.next() {
        if arg == "--skip" {
            skips.extend(args.next());
        } else if ["--logfile", "--format", "--color", "--test-threads"].contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            filters.push(arg);
        }
    }
    let selects = |filter: &str, k: Kernel| {
        let module = format!("{}::", k.module());
        filter.starts_with(&module) || module.contains(filter)
    };
    // A filter that names no kernel (or a skip that names none) is about
    // checks, not kernels.
    let names_one = |f: &str| Kernel::ALL.into_iter().any(|k| selects(f, k));
    Kernel::ALL
        .into_iter()
        .filter(|&k| filters.is_empty() || filters.iter().any(|f| selects(f, k) || !names_one(f)))
        .filter(|&k| !skips.iter().any(|s| names_one(s) && selects(s, k)))
        .collect()
}

#[test]
fn kernels_are_chosen_by_filters_and_skips() {
    let wanted = |args: &[&str]| wanted_kernels(args.iter().map(|a| a.to_string()));
    use Kernel::*;
    let all = Kernel::ALL.to_vec();
    assert_eq!(wanted(&["--include-ignored", "--test-threads=1"]), all);
    assert_eq!(wanted(&["check_drops"]), all);
    assert_eq!(wanted(&["debian_6_12::"]), vec![Debian612]);
    assert_eq!(wanted(&["custom_6_1::check_drops"]), vec![Custom]);
    // libtest matches substrings: "debian_6_1" runs 6.1's and 6.12's checks.
    assert_eq!(
        wanted(&["debian_6_1"]),
        vec![Debian612Rt, Debian612, Debian]
    );
    assert_eq!(
        wanted(&["--include-ignored", "--skip", "debian_6_12_rt::"]),
        vec![Debian612, Debian, Custom]
    );
    assert_eq!(wanted(&["--skip", "check_drops"]), all);
}

type Boots = (Mutex<HashMap<Kernel, Result<PathBuf, String>>>, Condvar);

/// Guests running and not yet quiet (see [`boot`]), against the number
/// allowed at once.
type Slots = (Mutex<usize>, Condvar);

/// The folder guest.sh wrote for `kernel`. The first call boots every
/// kernel the run needs, one after the other by default: side by side
/// (`IPFT_E2E_GUESTS=N`: N at once) they only pay on a machine with cores
/// to spare. On the 2-core test machines four guests at once each ran
/// over 3.5 times slower (ftrace and kprobe updates wait for every vCPU,
/// and vCPUs wait for the host's cores) and hit the hour's timeout.
/// A guest that has reached its last, long detach (minutes of RCU-tasks
/// grace periods, with the vCPUs mostly idle) says so (`quiet` in its
/// folder) and the next guest boots then, beside it. The real-time guest
/// takes no slot: it boots first, beside the others, since most of its
/// time is waiting for normal RCU grace periods (0.7 s per kprobe removed)
/// with idle vCPUs.
pub fn guest(kernel: Kernel) -> PathBuf {
    static BOOTS: OnceLock<&'static Boots> = OnceLock::new();
    let boots: &'static Boots = BOOTS.get_or_init(|| {
        let boots: &'static Boots = Box::leak(Box::default());
        snapshot_scripts();
        let mut wanted = wanted_kernels(std::env::args().skip(1));
        if !wanted.contains(&kernel) {
            wanted.push(kernel);
        }
        let at_once: usize = std::env::var("IPFT_E2E_GUESTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(1);
        let slots: &'static Slots = Box::leak(Box::default());
        // Boots the kernels in order, each once a slot is free.
        std::thread::spawn(move || {
            for k in wanted {
                let slotted = !k.is_realtime();
                if slotted {
                    let mut busy = slots.0.lock().unwrap();
                    while *busy >= at_once {
                        busy = slots.1.wait(busy).unwrap();
                    }
                    *busy += 1;
                }
                std::thread::spawn(move || {
                    let release = || {
                        if slotted {
                            *slots.0.lock().unwrap() -= 1;
                            slots.1.notify_all();
                        }
                    };
                    let result = match reuse(k) {
                        Some(dir) => {
                            release();
                            Ok(dir)
                        }
                        None => boot(k, release),
                    };
                    boots.0.lock().unwrap().insert(k, result);
                    boots.1.notify_all();
                });
            }
        });
        boots
    });
    let mut done = boots.0.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(result) = done.get(&kernel) {
            return result.clone().unwrap_or_else(|e| panic!("{e}"));
        }
        done = boots.1.wait(done).unwrap_or_else(|e| e.into_inner());
    }
}

/// Where the guests run the scripts from: a copy taken when the run starts,
/// because bash reads a script as it goes, and an edit to tests/e2e while
/// guests run (an hour) would have them run a mix of both versions.
fn scripts() -> PathBuf {
    repo().join("target/e2e/scripts")
}

/// Copies tests/e2e and tests/ext (guest.sh's extensions) to [`scripts`].
fn snapshot_scripts() {
    let to = scripts();
    let _ = std::fs::remove_dir_all(&to);
    for dir in ["e2e", "ext"] {
        let from = repo().join("tests").join(dir);
        std::fs::create_dir_all(to.join(dir)).expect("target/e2e/scripts");
        for entry in std::fs::read_dir(&from).expect("tests/ scripts") {
            let path = entry.expect("tests/ scripts").path();
            if path.is_file() {
                std::fs::copy(&path, to.join(dir).join(path.file_name().unwrap()))
                    .unwrap_or_else(|e| panic!("copying {}: {e}", path.display()));
            }
        }
    }
}

/// While developing the checks (`IPFT_E2E_REUSE=1`): the last guest run's
/// results, if it finished.
fn reuse(kernel: Kernel) -> Option<PathBuf> {
    let last = repo().join("target/e2e").join(kernel.label());
    (std::env::var_os("IPFT_E2E_REUSE").is_some() && last.join("done").exists()).then_some(last)
}

/// Boots `kernel`'s guest and waits for it; calls `release` once, when the
/// guest is quiet (`quiet` in its folder: guest.sh's last detach) or done.
fn boot(kernel: Kernel, release: impl FnOnce()) -> Result<PathBuf, String> {
    let out = repo().join("target/e2e").join(kernel.label());
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let image = kernel.image();
    let script = scripts().join("e2e/guest.sh");
    let ipft = env!("CARGO_BIN_EXE_ipft");
    let started = std::time::Instant::now();
    let vng_log = out.join("vng.log");
    let log_file =
        std::fs::File::create(&vng_log).map_err(|e| format!("{}: {e}", vng_log.display()))?;
    let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new("timeout")
        .arg("3600")
        .arg("vng")
        .arg("--run")
        .arg(&image)
        // --verbose: the kernel's console goes to vng.log, so a guest that
        // dies (an oops, a panic: vng exits 255) says why.
        .args([
            "--verbose",
            "--disable-kvm",
            "--force-9p",
            "--memory",
            "2G",
            "--cpus",
            "2",
        ])
        .arg("--rwdir")
        .arg(&out)
        .arg("--exec")
        .arg(format!(
            "bash {} {} {}",
            script.display(),
            out.display(),
            ipft
        ))
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot run vng (pip install virtme-ng): {e}"))?;
    let mut release = Some(release);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if release.is_some() && out.join("quiet").exists() {
            eprintln!(
                "{}: quiet after {:.0}s (its last detach): the next guest boots",
                kernel.label(),
                started.elapsed().as_secs_f64()
            );
            release.take().unwrap()();
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    if let Some(release) = release {
        release();
    }
    let log = std::fs::read_to_string(&vng_log).unwrap_or_default();
    let wall = started.elapsed().as_secs_f64();
    eprintln!("{}: guest ran for {wall:.0}s", kernel.label());
    // scripts/test.sh prints it in its per-kernel summary.
    let _ = std::fs::write(out.join("wall_s"), format!("{wall:.0}\n"));
    if let Ok(timings) = std::fs::read_to_string(out.join("timings")) {
        eprintln!("{}: seconds per scenario:\n{timings}", kernel.label());
    }
    if !out.join("done").exists() {
        let tail = console_tail(&log);
        let guest_log = std::fs::read_to_string(out.join("guest.log")).unwrap_or_default();
        let guest_tail: Vec<&str> = guest_log.lines().rev().take(30).collect();
        return Err(format!(
            "guest {} ({}) did not finish guest.sh (exit {:?}).\nkernel console (vng.log):\n{}\nguest.log (newest first):\n{}",
            kernel.label(),
            image.display(),
            status.and_then(|s| s.code()),
            tail,
            guest_tail.join("\n")
        ));
    }
    Ok(out)
}

/// What a dead guest's console says: from the kernel's first report of
/// trouble (an oops, a panic, a warning) on, else its last lines.
fn console_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let trouble = [
        "Kernel panic",
        "BUG:",
        "Oops",
        "general protection",
        "WARNING:",
    ];
    let start = lines
        .iter()
        .position(|l| trouble.iter().any(|t| l.contains(t)))
        .unwrap_or(lines.len().saturating_sub(30));
    lines[start..]
        .iter()
        .take(80)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}
