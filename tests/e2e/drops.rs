//! Checks of tests/e2e/drops.sh (and of the drop runs of guest.sh): packets
//! the kernel drops show the drop function, the reason the kernel gives and
//! the kernel stack where it happened, on every backend, whatever -r says.

use super::common::{function, json_events, json_verdicts, read};
use super::{by_packet, Kernel};
use serde_json::Value;
use std::path::Path;

/// The kernel's skb drop function: Linux 6.11 made kfree_skb_reason an
/// inline wrapper of sk_skb_reason_drop(sk, skb, reason).
fn drop_function(kernel: Kernel) -> &'static str {
    if kernel.is_6_12() {
        "sk_skb_reason_drop"
    } else {
        "kfree_skb_reason"
    }
}

/// The symbolized frames of an event's stack (empty without one).
fn frames(e: &Value) -> Vec<&str> {
    e["stack"]
        .as_array()
        .map(|a| a.iter().map(|f| f.as_str().expect("frame")).collect())
        .unwrap_or_default()
}

/// Whether some frame is in `func` (`func+0x...`).
fn in_stack(frames: &[&str], func: &str) -> bool {
    frames.iter().any(|f| f.starts_with(&format!("{func}+0x")))
}

/// The events of `function` dropped for `reason`.
fn drops<'a>(events: &'a [Value], function_name: &str, reason: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| function(e) == function_name && e["reason"] == reason)
        .collect()
}

/// "N stacks captured, M lost (...)" on stderr.
fn stacks_line(err: &str) -> (u64, u64) {
    let line = err
        .lines()
        .find(|l| l.contains(" stacks captured, "))
        .unwrap_or_else(|| panic!("no stack count in {err}"));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1])
}

/// The transport protocol of a dropped packet, from its metadata.
fn l4_proto(e: &Value) -> &str {
    e["meta"]["l4_proto"].as_str().unwrap_or("?")
}

/// `ping -c 2` through the DROP rule, 2 datagrams and a TCP SYN to closed
/// ports, with -r naming neither drop function: per backend, JSON (kprobe,
/// kprobe-multi) or aggregate (ftrace).
pub fn check_drops(kernel: Kernel, dir: &Path) {
    let drop_fn = drop_function(kernel);
    let mut backends = vec!["kprobe"];
    if kernel.has_kprobe_multi() {
        backends.push("kprobe-multi");
    }
    for backend in backends {
        let name = format!("drops_{backend}");
        let events = json_events(dir, &name);
        let err = read(dir, &format!("{name}.err"));
        assert!(
            err.contains(&format!(
                "drops: reason and stack at {drop_fn} (attached although"
            )),
            "{backend}: {err}"
        );
        let netfilter = drops(&events, drop_fn, "NETFILTER_DROP");
        assert_eq!(netfilter.len(), 2, "{backend}: {events:?}");
        for e in &netfilter {
            let f = frames(e);
            eprintln!(
                "{}: {backend}: NETFILTER_DROP at {drop_fn}: {f:?}",
                kernel.label()
            );
            assert!(
                f[0].starts_with(&format!("{drop_fn}+0x")),
                "{backend}: {f:?}"
            );
            assert!(in_stack(&f, "nf_hook_slow"), "{backend}: {f:?}");
        }
        // Selected in netns a (ip_output), followed into netns b to its drop.
        let packets = by_packet(&events);
        let followed = packets
            .iter()
            .filter(|p| {
                let f: Vec<&str> = p.iter().map(|e| function(e)).collect();
                let pos = |n: &str| f.iter().position(|x| *x == n);
                matches!((pos("ip_output"), pos("ip_rcv"), pos(drop_fn)),
                    (Some(a), Some(b), Some(c)) if a < b && b < c)
            })
            .count();
        assert_eq!(
            followed, 5,
            "{backend}: 2 pings, 2 datagrams and a SYN: {packets:?}"
        );
        let no_socket = drops(&events, drop_fn, "NO_SOCKET");
        let protos: Vec<&str> = no_socket.iter().map(|e| l4_proto(e)).collect();
        assert_eq!(protos, ["UDP", "UDP", "TCP"], "{backend}: {events:?}");
        for e in &no_socket {
            let caller = if l4_proto(e) == "TCP" {
                "tcp_v4_rcv"
            } else {
                "__udp4_lib_rcv"
            };
            assert!(in_stack(&frames(e), caller), "{backend}: {e}");
        }
        // The SYN's verdict: dropped where the kernel said, for its reason.
        let syn = no_socket.iter().find(|e| l4_proto(e) == "TCP").unwrap();
        assert!(
            syn["meta"]["tcp_flags"]
                .as_str()
                .unwrap_or("")
                .contains("SYN"),
            "{backend}: {syn}"
        );
        let verdicts = json_verdicts(dir, &name);
        let (_, verdict) = verdicts
            .iter()
            .find(|(id, _)| Some(id.as_str()) == syn["packet_id"].as_str())
            .unwrap_or_else(|| panic!("{backend}: no verdict for the SYN: {verdicts:?}"));
        assert_eq!(verdict["kind"], "dropped", "{backend}: {verdict}");
        assert_eq!(verdict["reason"], "NO_SOCKET", "{backend}: {verdict}");
        assert_eq!(verdict["function"], drop_fn, "{backend}: {verdict}");
        // --stack '^__udp4_lib_rcv$': its events carry the stack, ip_rcv's not.
        let udp: Vec<&Value> = events
            .iter()
            .filter(|e| function(e) == "__udp4_lib_rcv")
            .collect();
        assert_eq!(udp.len(), 2, "{backend}: {events:?}");
        for e in &udp {
            let f = frames(e);
            assert!(in_stack(&f, "ip_local_deliver_finish"), "{backend}: {f:?}");
        }
        assert!(
            events
                .iter()
                .filter(|e| function(e) == "ip_rcv")
                .all(|e| e.get("stack").is_none()),
            "{backend}: a stack at ip_rcv"
        );
        let with_stack = events.iter().filter(|e| e.get("stack").is_some()).count() as u64;
        assert_eq!(stacks_line(&err), (with_stack, 0), "{backend}: {err}");
        assert!(
            err.contains(&format!(
                "\"stacks\":{{\"captured\":{with_stack},\"lost\":0}}"
            )),
            "{backend}: {err}"
        );
    }
    check_aggregate_drops(kernel, dir);
}

/// The ftrace run's aggregate output: each drop line is followed by its
/// frames, indented.
fn check_aggregate_drops(kernel: Kernel, dir: &Path) {
    let drop_fn = drop_function(kernel);
    let name = "drops_ftrace";
    assert_eq!(
        read(dir, &format!("{name}.rc")).trim(),
        "0",
        "{}",
        read(dir, &format!("{name}.err"))
    );
    let text = read(dir, &format!("{name}.out"));
    let lines: Vec<&str> = text.lines().collect();
    for (reason, n) in [("NETFILTER_DROP", 2), ("NO_SOCKET", 3)] {
        let at: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains(&format!(" {drop_fn} ( reason: {reason} )")))
            .collect();
        assert_eq!(at.len(), n, "{reason}:\n{text}");
        for i in at {
            let frames: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.starts_with(' '))
                .map(|l| l.trim())
                .collect();
            let callers: &[&str] = if reason == "NO_SOCKET" {
                &["__udp4_lib_rcv", "tcp_v4_rcv"]
            } else {
                &["nf_hook_slow"]
            };
            assert!(
                callers.iter().any(|c| in_stack(&frames, c)),
                "{reason}: {frames:?}\n{text}"
            );
        }
    }
    // The blocks still parse as events (frames are skipped).
    let packets = super::common::parse_aggregate(&text);
    assert!(packets.len() >= 5, "{text}");
}

/// The drop runs of guest.sh: the tracepoint's drops and the drop function
/// named by -r carry their stacks too.
pub fn check_drop_stacks_everywhere(kernel: Kernel, dir: &Path) {
    let tp = json_events(dir, "tpdrop");
    let tp_drops = drops(&tp, "kfree_skb", "NETFILTER_DROP");
    assert_eq!(tp_drops.len(), 2, "{tp:?}");
    for e in tp_drops {
        let f = frames(e);
        eprintln!("{}: tracepoint: NETFILTER_DROP: {f:?}", kernel.label());
        assert!(in_stack(&f, "nf_hook_slow"), "{f:?}");
    }
    let drop_fn = drop_function(kernel);
    let fn_events = json_events(dir, "fndrop");
    let fn_drops = drops(&fn_events, drop_fn, "NETFILTER_DROP");
    assert_eq!(fn_drops.len(), 2, "{fn_events:?}");
    for e in fn_drops {
        assert!(in_stack(&frames(e), "nf_hook_slow"), "{e}");
    }
}
