//! How long detaching will take, estimated before anything is attached, so
//! that a detach of minutes is announced at start with the faster choice
//! instead of discovered after Ctrl-C.
//!
//! The kernel removes probes one by one and waits for grace periods under a
//! global mutex, so the cost is per probe and depends on the backend and on
//! the kernel's RCU: on real-time kernels (`/sys/kernel/rcu_normal` = 1)
//! expedited grace periods are never used and each kprobe's removal waits
//! for normal ones. The costs below were measured in the test guests (qemu
//! software emulation, README "Backends"), where they are the largest a
//! user meets; the estimate is an upper bound on real hardware.

use super::Backend;
use crate::cli::BackendKind;
use crate::discovery::Target;
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

/// What the kernel's RCU does while probes are removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelRcu {
    /// PREEMPT_RT (`/sys/kernel/realtime` = 1).
    pub realtime: bool,
    /// `/sys/kernel/rcu_normal` = 1: expedited grace periods are not used
    /// (the default on real-time kernels), whatever rcu_expedited says.
    pub rcu_normal: bool,
}

impl KernelRcu {
    /// Reads the running kernel's switches from `sys_kernel`
    /// (`/sys/kernel`); a missing file means off.
    pub fn read(sys_kernel: &Path) -> Self {
        let on = |name: &str| {
            std::fs::read_to_string(sys_kernel.join(name)).is_ok_and(|v| v.trim() == "1")
        };
        KernelRcu {
            realtime: on("realtime"),
            rcu_normal: on("rcu_normal"),
        }
    }
}

/// What is about to be attached.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub backend: BackendKind,
    pub functions: usize,
    /// skb positions with functions (kprobe-multi: one link each).
    pub positions: usize,
    /// function_graph: a return probe per function (per link) as well.
    pub graph: bool,
    /// ipft expedites RCU grace periods while detaching (kprobe backend,
    /// unless --no-rcu-expedite).
    pub expedite: bool,
}

impl Plan {
    /// Attaching `targets` with `backend`.
    pub fn new(backend: BackendKind, targets: &[Target], graph: bool, expedite: bool) -> Self {
        let positions: HashSet<usize> = targets.iter().map(|t| t.skb_pos).collect();
        Plan {
            backend,
            functions: targets.len(),
            positions: positions.len(),
            graph,
            expedite,
        }
    }
}

/// Seconds per kprobe removed, with expedited grace periods: 1,472 kprobes
/// in 25.8-26.1 s (custom 6.1 guest).
const KPROBE_EXPEDITED_S: f64 = 0.018;
/// Without them: 33.1-33.4 s for the same 1,472.
const KPROBE_S: f64 = 0.023;
/// With rcu_normal (Debian 6.12-rt guest): 55 kprobes in 40 s.
const KPROBE_RCU_NORMAL_S: f64 = 0.73;
/// Seconds per fentry/fexit program removed (one trampoline update and an
/// RCU-tasks grace period each): 0.12 s on 6.1, 0.155-0.177 s on 6.12.
const FENTRY_S: f64 = 0.15;
/// On real-time kernels (bench/run.sh, 2026-11-28): 24 in 13.0 s on 6.1-rt,
/// 25 in 11.2 s on 6.12-rt.
const FENTRY_REALTIME_S: f64 = 0.5;
/// Seconds per multi-kprobe link: a whole link goes at once (0.73-1.16 s
/// for five links on 6.12, 2.4 s on 6.12-rt).
const KPROBE_MULTI_LINK_S: f64 = 0.5;

/// Seconds per raw tracepoint link: 23 in 0.14 s (6.1-rt), 34 in 0.18 s
/// (6.12-rt).
const TRACEPOINT_S: f64 = 0.005;

/// Above this, ipft says so before attaching.
pub const ANNOUNCE_ABOVE: Duration = Duration::from_secs(60);

/// The expected wall time of detaching `plan` from a kernel with `rcu`.
pub fn estimate(plan: &Plan, rcu: &KernelRcu) -> Duration {
    let probes = plan.functions as f64 * if plan.graph { 2.0 } else { 1.0 };
    let seconds = match plan.backend {
        BackendKind::Kprobe if rcu.rcu_normal => probes * KPROBE_RCU_NORMAL_S,
        BackendKind::Kprobe if plan.expedite => probes * KPROBE_EXPEDITED_S,
        BackendKind::Kprobe => probes * KPROBE_S,
        BackendKind::Ftrace if rcu.realtime || rcu.rcu_normal => probes * FENTRY_REALTIME_S,
        BackendKind::Ftrace => probes * FENTRY_S,
        BackendKind::KprobeMulti => {
            let links = plan.positions * if plan.graph { 2 } else { 1 };
            links as f64 * KPROBE_MULTI_LINK_S
        }
        BackendKind::Tracepoint => probes * TRACEPOINT_S,
    };
    Duration::from_secs_f64(seconds)
}

/// The line said at start when detaching `plan` will take over a minute:
/// how long, why, and what is faster.
pub fn announcement(plan: &Plan, rcu: &KernelRcu) -> Option<String> {
    let estimate = estimate(plan, rcu);
    if estimate <= ANNOUNCE_ABOVE {
        return None;
    }
    let why = match plan.backend {
        BackendKind::Kprobe if rcu.rcu_normal => {
            "each kprobe waits for normal RCU grace periods: rcu_normal is 1, as on real-time kernels"
        }
        BackendKind::Kprobe => "each kprobe waits for RCU grace periods",
        _ => "each fentry program waits for an RCU-tasks grace period",
    };
    let faster = if plan.backend == BackendKind::KprobeMulti {
        "narrow the functions with -r"
    } else {
        "-b kprobe-multi removes them all at once (CONFIG_FPROBE), or narrow the functions with -r"
    };
    Some(format!(
        "note: detaching {} {} functions will take about {} after tracing stops ({why}); {faster}",
        plan.functions,
        plan.backend.name(),
        human(estimate),
    ))
}

/// Says before attaching to `targets` when detaching will take over a
/// minute (and, with `verbose`, the estimate whatever it is).
pub fn announce(
    backend: &dyn Backend,
    targets: &[Target],
    graph: bool,
    expedite: bool,
    verbose: bool,
) {
    let rcu = KernelRcu::read(Path::new("/sys/kernel"));
    let plan = Plan::new(backend.kind(), targets, graph, expedite);
    if verbose {
        eprintln!(
            "detach: estimated {:.1}s for {} functions (real-time kernel: {}, rcu_normal: {})",
            estimate(&plan, &rcu).as_secs_f64(),
            plan.functions,
            rcu.realtime,
            rcu.rcu_normal
        );
    }
    if let Some(line) = announcement(&plan, &rcu) {
        eprintln!("{line}");
    }
}

/// "40 s", "3 minutes", "1 hour 5 minutes".
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=90 => format!("{s} s"),
        91..=5399 => format!("{} minutes", (s + 30) / 60),
        _ => format!("{} hours {} minutes", s / 3600, (s % 3600 + 30) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(backend: BackendKind, functions: usize) -> Plan {
        Plan {
            backend,
            functions,
            positions: 5,
            graph: false,
            expedite: backend == BackendKind::Kprobe,
        }
    }

    const RT: KernelRcu = KernelRcu {
        realtime: true,
        rcu_normal: true,
    };

    #[test]
    fn measured_detaches_are_reproduced() {
        let plain = KernelRcu::default();
        let secs = |p: &Plan, rcu: &KernelRcu| estimate(p, rcu).as_secs_f64();
        // 1,472 kprobes, expedited: 26 s measured.
        assert!((secs(&plan(BackendKind::Kprobe, 1472), &plain) - 26.0).abs() < 2.0);
        // 55 kprobes on 6.12-rt: 40 s measured.
        assert!((secs(&plan(BackendKind::Kprobe, 55), &RT) - 40.0).abs() < 2.0);
        // 1,383 fentry programs on 6.1: 164-215 s measured.
        let ftrace = secs(&plan(BackendKind::Ftrace, 1383), &plain);
        assert!((164.0..=215.0).contains(&ftrace), "{ftrace}");
        // fentry on real-time kernels: 13.0 s for 24 (6.1-rt), 11.2 s for 25
        // (6.12-rt) measured.
        assert!((secs(&plan(BackendKind::Ftrace, 24), &RT) - 13.0).abs() < 2.0);
        assert!((secs(&plan(BackendKind::Ftrace, 25), &RT) - 11.2).abs() < 2.0);
        // kprobe-multi: a few seconds, whatever the count.
        assert!(secs(&plan(BackendKind::KprobeMulti, 1736), &RT) < 5.0);
        // 34 tracepoints on 6.12-rt: 0.18 s measured.
        assert!((secs(&plan(BackendKind::Tracepoint, 34), &RT) - 0.18).abs() < 0.05);
    }

    #[test]
    fn function_graph_doubles_the_probes() {
        let mut p = plan(BackendKind::Ftrace, 100);
        let single = estimate(&p, &KernelRcu::default());
        p.graph = true;
        assert_eq!(estimate(&p, &KernelRcu::default()), single * 2);
    }

    #[test]
    fn long_detaches_are_announced_with_the_faster_choice() {
        let plain = KernelRcu::default();
        // 100 kprobes: over a minute only where rcu_normal is 1.
        assert!(announcement(&plan(BackendKind::Kprobe, 100), &RT).is_some());
        assert_eq!(announcement(&plan(BackendKind::Kprobe, 100), &plain), None);
        let line = announcement(&plan(BackendKind::Kprobe, 1736), &RT).unwrap();
        assert!(
            line.starts_with("note: detaching 1736 kprobe functions will take about 21 minutes"),
            "{line}"
        );
        assert!(
            line.contains("rcu_normal is 1") && line.contains("-b kprobe-multi"),
            "{line}"
        );
        let line = announcement(&plan(BackendKind::Ftrace, 1383), &plain).unwrap();
        assert!(
            line.contains("about 3 minutes") && line.contains("RCU-tasks"),
            "{line}"
        );
        assert_eq!(
            announcement(&plan(BackendKind::KprobeMulti, 5000), &RT),
            None
        );
    }

    #[test]
    fn reads_the_kernel_switches() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(KernelRcu::read(dir.path()), KernelRcu::default());
        std::fs::write(dir.path().join("realtime"), "1\n").unwrap();
        std::fs::write(dir.path().join("rcu_normal"), "1\n").unwrap();
        assert_eq!(KernelRcu::read(dir.path()), RT);
    }
}
