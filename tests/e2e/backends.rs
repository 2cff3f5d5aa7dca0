//! The attaches of every skb function (one per backend the kernel has), the
//! listing, and the tracepoint backend: what each kernel offers and how
//! automatic choice and the kernel's refusals are reported.

use super::common::{count, function, json_events, read};
use super::{assert_three_pings, by_packet, guest, journeys, Kernel};
use std::collections::BTreeSet;

pub fn check_listing(kernel: Kernel) {
    let dir = guest(kernel);
    assert_eq!(
        read(&dir, "list.rc").trim(),
        "0",
        "{}",
        read(&dir, "list.err")
    );
    let list = read(&dir, "list.out");
    let rows: Vec<Vec<&str>> = list
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    eprintln!("{}: ipft -l lists {} functions", kernel.label(), rows.len());
    assert!(rows.len() >= 1000, "only {} functions", rows.len());
    let row = |name: &str| {
        rows.iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("{name} not listed"))
            .clone()
    };
    assert_eq!(row("ip_rcv")[3], "0");
    assert_eq!(
        row("__skb_flow_dissect")[3],
        "1",
        "const struct sk_buff * counts"
    );
    assert_eq!(row("ip_finish_output2")[3], "2");
    assert!(row("ip_rcv")[2].starts_with("0xffffffff"));
    let names: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "listing sorted by name");

    let veth = read(&dir, "list_veth.out");
    let veth_rows: Vec<Vec<&str>> = veth
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    if kernel.has_modules() {
        eprintln!(
            "{}: veth module functions: {}",
            kernel.label(),
            veth_rows.len()
        );
        assert!(veth_rows
            .iter()
            .any(|r| r[0] == "veth_xmit" && r[1] == "veth"));
        assert!(veth_rows.iter().all(|r| r[1] == "veth"));
        assert!(rows.iter().any(|r| r[0] == "veth_xmit" && r[1] == "veth"));
    } else {
        // veth is built in: no module of that name, its functions are vmlinux's.
        assert!(veth_rows.is_empty());
        assert!(rows
            .iter()
            .any(|r| r[0] == "veth_xmit" && r[1] == "vmlinux"));
    }
}

/// Every skb function attached with `backend`, then `ping -c 3`.
pub fn check_full_trace_with(kernel: Kernel, scenario: &str) {
    let dir = guest(kernel);
    let events = json_events(&dir, scenario);
    let err = read(&dir, &format!("{scenario}.err"));
    let timings = err
        .lines()
        .filter(|l| l.starts_with("startup:") || l.ends_with("(wall)"));
    for line in timings {
        eprintln!("{}: {line}", kernel.label());
    }
    assert_three_pings(&events);
    // Detached in the foreground (stderr is not a terminal), to the end.
    assert!(
        err.lines()
            .any(|l| l.starts_with("detach: ") && l.ends_with("s (wall)")),
        "{err}"
    );
    assert_eq!(read(&dir, &format!("{scenario}.rc")).trim(), "0", "{err}");
    let functions: BTreeSet<&str> = events.iter().map(function).collect();
    eprintln!(
        "{}: full attach saw {} events in {} functions",
        kernel.label(),
        events.len(),
        functions.len()
    );
    assert!(err.contains("0 lost"), "{err}");
}

pub fn check_full_trace(kernel: Kernel) {
    check_full_trace_with(kernel, "full");
    // kprobe expedites RCU grace periods while detaching only, and puts the
    // system's setting back.
    let dir = guest(kernel);
    let err = read(&dir, "full.err");
    if kernel.is_realtime() {
        // rcu_normal = 1 overrides rcu_expedited: said, not claimed.
        assert!(
            err.contains("not expedited") && err.contains("rcu_normal is 1"),
            "{err}"
        );
    } else {
        assert!(
            err.contains("detach: expedited RCU grace periods")
                && !err.contains("attach: expedited"),
            "{err}"
        );
    }
    assert_eq!(read(&dir, "rcu_expedited.before").trim(), "0");
    assert_eq!(read(&dir, "rcu_expedited.tracing").trim(), "0");
    assert_eq!(read(&dir, "rcu_expedited.after").trim(), "0");
}

pub fn check_kprobe_multi(kernel: Kernel) {
    let dir = guest(kernel);
    let list_err = read(&dir, "list.err");
    if kernel.has_kprobe_multi() {
        check_full_trace_with(kernel, "multi");
        assert!(
            list_err.contains("backend: kprobe-multi"),
            "auto choice: {list_err}"
        );
    } else {
        let err = read(&dir, "multi.err");
        assert_ne!(read(&dir, "multi.rc").trim(), "0");
        // -v adds libbpf's log; ipft's own error is one line.
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("ipft: ")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(
            errors[0].contains("CONFIG_FPROBE") && errors[0].contains("-b kprobe"),
            "{err}"
        );
        // Every function: ftrace would take minutes to detach, kprobe is
        // taken instead; a few functions (flood_64, -r) stay with ftrace.
        assert!(
            list_err.contains("backend: kprobe (detaches faster)")
                && list_err.contains("; not ftrace: detaching "),
            "auto choice: {list_err}"
        );
        assert!(list_err.contains("not backend kprobe-multi"), "{list_err}");
        let narrow = read(&dir, "flood_64.err");
        assert!(
            narrow.contains("backend: ftrace (fastest this kernel supports)"),
            "auto choice: {narrow}"
        );
    }
}

pub fn check_ftrace(kernel: Kernel) {
    check_full_trace_with(kernel, "ftrace");
}

pub fn check_tracepoint(kernel: Kernel) {
    let dir = guest(kernel);
    let events = json_events(&dir, "tracepoint");
    assert!(events.iter().all(|e| e["module"] == "tracepoint"));
    assert_eq!(
        count(&events, "net_dev_queue"),
        6,
        "3 requests and 3 replies queued"
    );
    assert_eq!(count(&events, "net_dev_start_xmit"), 6);
    let drops = json_events(&dir, "tpdrop");
    let netfilter_drops = drops
        .iter()
        .filter(|e| function(e) == "kfree_skb" && e["reason"] == "NETFILTER_DROP")
        .count();
    assert_eq!(netfilter_drops, 2, "{drops:?}");
    // The same two drops, by function: Linux 6.11 made kfree_skb_reason an
    // inline wrapper of sk_skb_reason_drop(sk, skb, reason).
    let (drop_fn, gone) = if kernel.is_6_12() {
        ("sk_skb_reason_drop", "kfree_skb_reason")
    } else {
        ("kfree_skb_reason", "sk_skb_reason_drop")
    };
    let events = json_events(&dir, "fndrop");
    let packets = by_packet(&events);
    assert_eq!(
        journeys(&packets, &["nf_hook_slow", drop_fn]),
        2,
        "{events:?}"
    );
    assert_eq!(count(&events, drop_fn), 2, "{events:?}");
    assert_eq!(count(&events, gone), 0, "{events:?}");
}
