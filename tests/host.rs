//! The tracepoint backend on the machine's own kernel (the development and CI
//! host allows tracepoint BPF programs only): real marked pings between two
//! network namespaces, run by tests/host/tracepoint.sh. Needs root.

mod common;

use common::{count, function, json_events, parse_aggregate, read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Runs `tests/host/<script>` into target/<out> and returns that folder.
fn run_script(script: &str, out: &str) -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = repo.join("target").join(out);
    let status = Command::new("bash")
        .arg(repo.join("tests/host").join(script))
        .arg(&out)
        .arg(env!("CARGO_BIN_EXE_ipft"))
        .status()
        .unwrap_or_else(|e| panic!("run tests/host/{script}: {e}"));
    assert!(
        status.success() && out.join("done").exists(),
        "{script} failed (root needed); see {}",
        out.join("script.log").display()
    );
    out
}

/// The tracepoint scenarios, run once.
fn results() -> PathBuf {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| run_script("tracepoint.sh", "host-tracepoint"))
        .clone()
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn veth_ping_is_seen_at_transmit_tracepoints() {
    let dir = results();
    let events = json_events(&dir, "veth");
    assert!(events.iter().all(|e| e["module"] == "tracepoint"));
    // 3 requests a -> b and 3 replies b -> a, each queued and sent once.
    assert_eq!(count(&events, "net_dev_queue"), 6);
    assert_eq!(count(&events, "net_dev_start_xmit"), 6);
    let agg = parse_aggregate(&read(&dir, "veth_agg.out"));
    let queued = agg
        .iter()
        .flatten()
        .filter(|(_, m, f)| m == "tracepoint" && f == "net_dev_queue")
        .count();
    assert_eq!(queued, 6);
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn loopback_ping_is_seen_at_receive_tracepoints() {
    let dir = results();
    let events = json_events(&dir, "loopback");
    // Over loopback the mark survives: requests and replies are received.
    assert_eq!(count(&events, "netif_receive_skb"), 6, "{events:?}");
    assert_eq!(count(&events, "net_dev_queue"), 6);
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn netfilter_drop_shows_kfree_skb_with_reason() {
    let dir = results();
    let err = read(&dir, "drop.err");
    assert!(
        err.contains("backend: tracepoint"),
        "automatic choice: {err}"
    );
    let events = json_events(&dir, "drop");
    let drops: Vec<_> = events
        .iter()
        .filter(|e| function(e) == "kfree_skb" && e["reason"] == "NETFILTER_DROP")
        .collect();
    assert_eq!(drops.len(), 2, "{events:?}");
}

/// The extension scenarios, run once.
fn extension_results() -> PathBuf {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| run_script("extension.sh", "host-extension"))
        .clone()
}

/// Values of extension field `key` over all events of a JSON scenario.
fn field_values(events: &[serde_json::Value], key: &str) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            e[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in {e}"))
                .to_string()
        })
        .collect()
}

/// skb->len of a `ping` echo (56 bytes of data) as it moves through the
/// stack: 98 with the Ethernet header, 84 from IP, 64 from ICMP, 56 data.
const PING_LENGTHS: [&str; 4] = ["98", "84", "64", "56"];

fn assert_ping_lengths(lens: &[String]) {
    assert!(lens.iter().any(|l| l == "98"), "{lens:?}");
    assert!(
        lens.iter().all(|l| PING_LENGTHS.contains(&l.as_str())),
        "{lens:?}"
    );
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn generated_skeleton_prints_packet_length() {
    let dir = extension_results();
    assert_eq!(
        read(&dir, "skel.rc").trim(),
        "0",
        "{}",
        read(&dir, "skel.err")
    );
    let text = read(&dir, "skel.out");
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("tracepoint")).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            PING_LENGTHS
                .iter()
                .any(|l| line.ends_with(&format!(" len: {l} )"))),
            "{line}"
        );
    }
    assert_ping_lengths(&field_values(&json_events(&dir, "skel_json"), "len"));
    // The same skeleton compiled outside ipft, as a .o.
    assert_ping_lengths(&field_values(&json_events(&dir, "object"), "len"));
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn lua_extension_decodes_the_same_field() {
    let dir = extension_results();
    let events = json_events(&dir, "lua");
    assert_ping_lengths(&field_values(&events, "len"));
    assert!(field_values(&events, "lua").iter().all(|v| v == "yes"));
    assert!(read(&dir, "lua.err").contains(&format!("lua fini after {} events", events.len())));
    let agg = read(&dir, "lua_script.out");
    assert!(agg.contains("( len: 98 lua: yes )"), "{agg}");
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn filtering_extension_removes_small_packets() {
    let dir = extension_results();
    let lens = field_values(&json_events(&dir, "filter"), "len");
    assert!(!lens.is_empty());
    assert!(
        lens.iter().all(|l| l == "98"),
        "events of packets under 90 bytes kept: {lens:?}"
    );
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn ipftrace2_gso_extension_decodes_flags() {
    let dir = extension_results();
    let types = field_values(&json_events(&dir, "gso"), "gso_type");
    assert!(types.iter().any(|t| t == "tcpv4"), "{types:?}");
    assert!(
        types
            .iter()
            .all(|t| t == "tcpv4" || t == "0" || t.contains('|')),
        "{types:?}"
    );
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn broken_extensions_fail_clearly() {
    let dir = extension_results();
    let cases = [
        ("syntax_error", "failed to compile"),
        ("no_module", "defines no `module` function"),
        ("no_event_struct", "__ipft_event_struct"),
        ("missing", "no such file"),
    ];
    for (name, message) in cases {
        assert_ne!(read(&dir, &format!("{name}.rc")).trim(), "0", "{name}");
        let err = read(&dir, &format!("{name}.err"));
        let last = err.trim_end().lines().last().unwrap_or_default();
        assert!(
            last.starts_with("ipft: ") && last.contains(message),
            "{name}: {err}"
        );
        assert!(!err.contains("Trace ready!"), "{name} attached: {err}");
    }
    // clang's own diagnostics are shown.
    assert!(read(&dir, "syntax_error.err").contains("error:"));
    let left = programs_left();
    assert!(left.is_empty(), "programs left: {left:?}");
}

/// ipft's programs still loaded once the kernel has had time to free them:
/// closing a link detaches at once, but the kernel frees the program after
/// an RCU grace period, so a check right after exit can still see it.
fn programs_left() -> Vec<String> {
    for _ in 0..50 {
        if ipft_programs().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ipft_programs()
}

/// Names of the ipft BPF programs loaded in the kernel right now.
fn ipft_programs() -> Vec<String> {
    let mut id = 0u32;
    let mut left = Vec::new();
    // SAFETY (all calls): plain BPF syscall wrappers with valid pointers.
    while unsafe { libbpf_sys::bpf_prog_get_next_id(id, &mut id) } == 0 {
        let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
        if fd < 0 {
            continue;
        }
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut info = libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        use std::os::fd::AsRawFd;
        if unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) } == 0
        {
            let name: Vec<u8> = info
                .name
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            let name = String::from_utf8_lossy(&name).into_owned();
            if name.starts_with("ipft_") {
                left.push(name);
            }
        }
    }
    left
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn no_program_is_left_after_exit() {
    let _ = results();
    let left = programs_left();
    assert!(left.is_empty(), "BPF programs left: {left:?}");
}

/// Starts ipft with stderr going to a file; returns the child and the file.
fn spawn_ipft(args: &[&str], name: &str) -> (std::process::Child, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/host-misc");
    std::fs::create_dir_all(&dir).unwrap();
    let err = dir.join(format!("{name}.err"));
    let child = Command::new(env!("CARGO_BIN_EXE_ipft"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    (child, err)
}

fn wait_ready(err: &std::path::Path) {
    for _ in 0..300 {
        if std::fs::read_to_string(err)
            .unwrap_or_default()
            .contains("Trace ready!")
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "ipft never got ready: {}",
        std::fs::read_to_string(err).unwrap_or_default()
    );
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn sigkill_leaves_nothing_attached() {
    let (mut child, err) = spawn_ipft(&["-b", "tracepoint", "-m", "1"], "sigkill");
    wait_ready(&err);
    assert!(
        !ipft_programs().is_empty(),
        "ipft's programs should be loaded while tracing"
    );
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    // The kernel releases fd-based links as the process's files close.
    let left = programs_left();
    assert!(left.is_empty(), "programs left after SIGKILL: {left:?}");
}

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn probe_server_accepts_only_once_ready() {
    let args = |port: &'static str| {
        [
            "-b",
            "tracepoint",
            "-m",
            "1",
            "--enable-probe-server",
            "--probe-server-port",
            port,
        ]
    };
    let (child, err) = spawn_ipft(&args("13791"), "probe");
    let mut connected = false;
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", 13791)).is_ok() {
            connected = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&err).unwrap();
    assert!(connected, "probe server never accepted: {text}");
    assert!(
        text.contains("Trace ready!"),
        "accepted before Trace ready!: {text}"
    );
    unsafe { libc_kill(child.id() as i32, 2) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());

    // A port in use is a clear error, before anything is attached.
    let busy = std::net::TcpListener::bind("127.0.0.1:13792").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ipft"))
        .args(args("13792"))
        .output()
        .unwrap();
    drop(busy);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("probe server") && err.contains("13792"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

/// A lock file of the test's own (ipft's `IPFT_DETACH_LOCK`), so that
/// holding it holds back no other test's ipft.
fn private_lock(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/host-misc");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.lock"));
    let _ = std::fs::remove_file(&path);
    path
}

/// Whether some process holds the flock on `path`.
fn lock_held(path: &std::path::Path) -> bool {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    // SAFETY: an open descriptor; the lock goes with the file.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
}

/// Whether process `pid` has exited (gone, or a zombie not yet reaped).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

fn poll_until(what: &str, limit: std::time::Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// On a terminal the prompt comes back at once after Ctrl-C: the results
/// are printed, then a background process detaches, holding the lock.
#[test]
#[ignore = "needs root; run with --include-ignored"]
fn on_a_terminal_ipft_exits_at_once_and_detaches_in_the_background() {
    let lock = private_lock("pty");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/host-misc");
    let out_path = dir.join("pty.out");
    // script(1) gives ipft a pseudo-terminal; the shell says its pid, then
    // becomes ipft.
    let command = format!(
        "echo ipft-pid $$; exec {} -b tracepoint -m 1 -v",
        env!("CARGO_BIN_EXE_ipft")
    );
    let mut script = Command::new("script")
        .args(["-qfc", &command, "/dev/null"])
        .env("IPFT_DETACH_LOCK", &lock)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .spawn()
        .expect("script (util-linux)");
    let text = || std::fs::read_to_string(&out_path).unwrap_or_default();
    poll_until("Trace ready!", std::time::Duration::from_secs(60), || {
        text().contains("Trace ready!")
    });
    let pid: u32 = text()
        .split("ipft-pid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {}", text()));
    let interrupted = std::time::Instant::now();
    // SAFETY: signals ipft's own process.
    unsafe { libc::kill(pid as i32, libc::SIGINT) };
    poll_until("ipft's exit", std::time::Duration::from_secs(30), || {
        exited(pid)
    });
    let took = interrupted.elapsed();
    eprintln!("SIGINT to ipft's exit on a terminal: {took:?}");
    assert!(script.wait().unwrap().success());
    let text = text();
    assert!(
        took < std::time::Duration::from_secs(1),
        "the prompt came back after {took:?}: {text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("detaching ") && l.contains("in the background (pid "))
        .unwrap_or_else(|| panic!("no background line: {text}"));
    // Results first: the summary is printed before the detach starts.
    let summary = text.find("events received, 0 lost").expect("summary");
    assert!(summary < text.find(line).unwrap(), "{text}");
    // The detach is not measured here: -v has no time for it.
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("detach: ") && l.trim_end().ends_with("(wall)")),
        "{text}"
    );
    let child: u32 = line
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line}"));
    let holder = std::fs::read_to_string(&lock).unwrap();
    assert!(holder.starts_with(&format!("{child} ")), "{holder}");
    poll_until(
        "the background detach",
        std::time::Duration::from_secs(120),
        || exited(child),
    );
    assert!(!lock_held(&lock), "lock still held after the detach");
    let left = programs_left();
    assert!(left.is_empty(), "programs left: {left:?}");
}

/// A new ipft waits, before attaching anything, while an earlier one
/// detaches (a held lock stands for it); Ctrl-C gives up with status 130.
#[test]
#[ignore = "needs root; run with --include-ignored"]
fn a_new_ipft_waits_for_an_earlier_detach() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let lock = private_lock("wait");
    let mut held = std::fs::File::create(&lock).unwrap();
    // SAFETY: an open descriptor.
    assert_eq!(
        unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    writeln!(held, "4242 7").unwrap();
    let spawn = |name: &str| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/host-misc");
        let err = dir.join(format!("{name}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_ipft"))
            .args(["-b", "tracepoint", "-m", "1"])
            .env("IPFT_DETACH_LOCK", &lock)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap();
        (child, err)
    };
    let waiting =
        "note: an earlier ipft (pid 4242) is still detaching 7 probes; waiting for it (Ctrl-C to give up)";
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();

    let (mut given_up, given_up_err) = spawn("wait-interrupted");
    poll_until(
        "the waiting line",
        std::time::Duration::from_secs(30),
        || read(&given_up_err).contains(waiting),
    );
    // SAFETY: signals the test's own child.
    unsafe { libc::kill(given_up.id() as i32, libc::SIGINT) };
    let status = given_up.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{}", read(&given_up_err));
    assert_eq!(read(&given_up_err).trim_end(), waiting);

    let (mut child, err) = spawn("wait-released");
    poll_until(
        "the waiting line",
        std::time::Duration::from_secs(30),
        || read(&err).contains(waiting),
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!read(&err).contains("Trace ready!"), "{}", read(&err));
    drop(held);
    wait_ready(&err);
    // SAFETY: signals the test's own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success(), "{}", read(&err));
    let text = read(&err);
    assert!(text.starts_with(waiting), "{text}");
    // stderr is a file: detached in the foreground, nothing in the background.
    assert!(text.contains("0 lost"), "{text}");
    assert!(!text.contains("in the background"), "{text}");
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
