//! The tracepoint backend on the machine's own kernel (the development and CI
//! host allows tracepoint BPF programs only): real marked pings between two
//! network namespaces, run by tests/host/tracepoint.sh. Needs root.

mod common;

use common::{count, function, json_events, parse_aggregate, read};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Runs the scenarios once and returns their output folder.
fn results() -> PathBuf {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let out = repo.join("target/host-tracepoint");
        let status = Command::new("bash")
            .arg(repo.join("tests/host/tracepoint.sh"))
            .arg(&out)
            .arg(env!("CARGO_BIN_EXE_ipft"))
            .status()
            .expect("run tests/host/tracepoint.sh");
        assert!(
            status.success() && out.join("done").exists(),
            "tracepoint.sh failed (root needed); see {}",
            out.join("script.log").display()
        );
        out
    })
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

#[test]
#[ignore = "needs root; run with --include-ignored"]
fn no_program_is_left_after_exit() {
    let _ = results();
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
    assert!(left.is_empty(), "BPF programs left: {left:?}");
}
