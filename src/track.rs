//! Tracking, user-space side (the BPF side is src/bpf/track.bpf.h): which
//! kernel functions change how a packet is keyed and what each does, the
//! tracking-only attachments they need when -r leaves them out, expiry of
//! entries not seen for a while, and the counters reported at exit.

use crate::discovery::{Target, TRACEPOINT_MODULE};
use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags, MapHandle, Object};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// IPFT_TRACK_* of src/bpf/track.bpf.h.
pub const NEW_HEAD: u32 = 1 << 0;
pub const FREE_HEAD: u32 = 1 << 1;
pub const FREE_SKB: u32 = 1 << 2;
pub const END: u32 = 1 << 3;
pub const SILENT: u32 = 1 << 8;

/// Functions that give a packet a new buffer, free it, or free the skb.
const FUNCTIONS: &[(&str, u32)] = &[
    ("pskb_expand_head", NEW_HEAD),
    ("skb_free_head", FREE_HEAD),
    ("kfree_skbmem", FREE_SKB),
    ("napi_skb_cache_put", FREE_SKB),
    ("kfree_skb_partial", END),
];

/// The tracepoint backend sees only where skbs are freed.
const TRACEPOINTS: &[(&str, u32)] = &[("consume_skb", END), ("kfree_skb", END)];

/// What tracking adds to an attach run.
#[derive(Debug, Default)]
pub struct Plan {
    /// Tracking functions the user's -r/--module-regex left out: attached
    /// too, silently.
    pub extra: Vec<Target>,
    /// (address as the programs report it, IPFT_TRACK_*) for ipft_funcs
    /// (filled by src/funcs.rs with the other flags of these functions).
    pub actions: Vec<(u64, u32)>,
    /// Tracking functions this kernel does not let ipft attach to.
    pub missing: Vec<&'static str>,
    /// The backend sees tracepoints, not functions.
    tracepoints: bool,
}

impl Plan {
    /// `chosen`: the targets to trace; `all`: every target the backend
    /// could attach (to find the tracking functions -r left out).
    pub fn new(chosen: &[Target], all: &[Target]) -> Plan {
        let tracepoints = all.iter().any(|t| t.module == TRACEPOINT_MODULE);
        let table = if tracepoints { TRACEPOINTS } else { FUNCTIONS };
        let mut plan = Plan {
            tracepoints,
            ..Plan::default()
        };
        for &(name, action) in table {
            let found: Vec<&Target> = all.iter().filter(|t| t.name == name).collect();
            if found.is_empty() {
                plan.missing.push(name);
            }
            for t in found {
                let silent = if chosen.iter().any(|c| c.addr == t.addr) {
                    0
                } else {
                    plan.extra.push(t.clone());
                    SILENT
                };
                // kprobes report the function's address; fentry may report
                // the instruction after its endbr (IBT kernels).
                plan.actions.push((t.addr, action | silent));
                if !tracepoints {
                    plan.actions.push((t.addr + 4, action | silent));
                }
            }
        }
        plan
    }

    /// How many tracking functions this kernel offers (each may stand in
    /// `actions` under two addresses).
    pub fn functions(&self) -> usize {
        let table = if self.tracepoints {
            TRACEPOINTS
        } else {
            FUNCTIONS
        };
        table.len() - self.missing.len()
    }
}

fn map<'o>(obj: &'o Object, name: &str) -> Result<libbpf_rs::Map<'o>> {
    obj.maps()
        .find(|m| m.name() == name)
        .with_context(|| format!("BPF map {name} missing from ipft's object"))
}

/// Removes tracked packets not seen for `timeout` from the kernel's map,
/// every second, on its own thread, until dropped.
pub struct Expiry {
    stop: Arc<AtomicBool>,
    expired: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// struct ipft_tracked: id, last_seen, head.
const ENTRY_SIZE: usize = 24;

impl Expiry {
    pub fn start(obj: &Object, timeout: Duration) -> Result<Expiry> {
        let handle = MapHandle::try_from(&map(obj, "ipft_tracked")?)?;
        let stop = Arc::new(AtomicBool::new(false));
        let expired = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, expired) = (stop.clone(), expired.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // (Unparked by drop: the stop does not wait out a sleep.)
                    std::thread::park_timeout(Duration::from_millis(200));
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let n = expire(&handle, monotonic_ns(), timeout.as_nanos() as u64);
                    expired.fetch_add(n, Ordering::Relaxed);
                }
            })
        };
        Ok(Expiry {
            stop,
            expired,
            thread: Some(thread),
        })
    }

    /// Entries expired so far.
    pub fn expired(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }
}

impl Drop for Expiry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Deletes the entries last seen before `now - timeout`; returns how many.
fn expire(map: &MapHandle, now: u64, timeout: u64) -> u64 {
    let mut n = 0;
    let keys: Vec<Vec<u8>> = map.keys().collect();
    for key in keys {
        let Ok(Some(value)) = map.lookup(&key, MapFlags::ANY) else {
            continue;
        };
        if value.len() < ENTRY_SIZE {
            continue;
        }
        let last_seen = u64::from_ne_bytes(value[8..16].try_into().unwrap());
        if now.saturating_sub(last_seen) > timeout && map.delete(&key).is_ok() {
            n += 1;
        }
    }
    n
}

/// CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns().
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What tracking did in a run, for the report at exit.
#[derive(Debug, Default, serde::Serialize)]
pub struct Stats {
    /// Packet ids given out.
    pub packets: u64,
    /// Packets not tracked because the map was full.
    pub map_full: u64,
    /// Entries expired after the timeout.
    pub expired: u64,
    /// Entries left when tracing stopped.
    pub still_tracked: u64,
}

impl Stats {
    pub fn read(obj: &Object, expired: u64) -> Result<Stats> {
        let zero = 0u32.to_ne_bytes();
        let ids = map(obj, "ipft_ids")?
            .lookup(&zero, MapFlags::ANY)?
            .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap()))
            .unwrap_or(0);
        let full = map(obj, "ipft_track_full")?
            .lookup_percpu(&zero, MapFlags::ANY)?
            .unwrap_or_default()
            .iter()
            .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap()))
            .sum();
        let still = map(obj, "ipft_tracked")?.keys().count() as u64;
        Ok(Stats {
            packets: ids,
            map_full: full,
            expired,
            still_tracked: still,
        })
    }

    /// One line for stderr.
    pub fn summary(&self, timeout: u32) -> String {
        let mut line = format!("{} packets tracked", self.packets);
        if self.map_full > 0 {
            line.push_str(&format!(
                ", {} not tracked because the tracking map was full (raise --track-max)",
                self.map_full
            ));
        }
        if self.expired > 0 {
            line.push_str(&format!(
                ", {} forgotten after {timeout} s unseen (--track-timeout)",
                self.expired
            ));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, addr: u64, module: &str) -> Target {
        Target::fixture(name, addr, module)
    }

    #[test]
    fn left_out_functions_are_attached_silently() {
        let all = vec![
            target("ip_rcv", 0x1000, "vmlinux"),
            target("skb_free_head", 0x2000, "vmlinux"),
            target("kfree_skbmem", 0x3000, "vmlinux"),
            target("pskb_expand_head", 0x4000, "vmlinux"),
        ];
        let chosen = vec![all[0].clone(), all[2].clone()];
        let plan = Plan::new(&chosen, &all);
        let extra: Vec<&str> = plan.extra.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(extra, ["pskb_expand_head", "skb_free_head"]);
        assert!(plan.actions.contains(&(0x2000, FREE_HEAD | SILENT)));
        assert!(plan.actions.contains(&(0x2004, FREE_HEAD | SILENT)));
        assert!(plan.actions.contains(&(0x3000, FREE_SKB)));
        assert!(plan.actions.contains(&(0x4000, NEW_HEAD | SILENT)));
        assert_eq!(plan.missing, ["napi_skb_cache_put", "kfree_skb_partial"]);
        assert_eq!(plan.functions(), 3);
    }

    #[test]
    fn tracepoints_end_packets_where_skbs_are_freed() {
        let all = vec![
            target("net_dev_queue", 7, TRACEPOINT_MODULE),
            target("consume_skb", 8, TRACEPOINT_MODULE),
            target("kfree_skb", 9, TRACEPOINT_MODULE),
        ];
        let plan = Plan::new(&all, &all);
        assert!(plan.extra.is_empty());
        assert_eq!(plan.actions, [(8, END), (9, END)]);
        assert_eq!(plan.functions(), 2);
    }
}
