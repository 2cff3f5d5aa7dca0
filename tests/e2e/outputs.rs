//! Checks of tests/e2e/outputs.sh: the outputs made for viewers, read by
//! readers that are not ipft's. The Perfetto traces are decoded by
//! Perfetto's own Python protobuf bindings (tests/e2e/perfetto_check.py,
//! PyPI package `perfetto`, which scripts/deps.sh installs).

use super::common::read;
use super::Kernel;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// What perfetto_check.py makes of a trace.
fn decode_perfetto(file: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/perfetto_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}: {} (needs `python3 -m pip install perfetto`, see scripts/deps.sh)",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("perfetto_check.py prints JSON")
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

pub fn check_perfetto(kernel: Kernel, dir: &Path) {
    let backends: &[&str] = if kernel.has_kprobe_multi() {
        &["ftrace", "kprobe", "kprobe-multi"]
    } else {
        &["ftrace", "kprobe"]
    };
    for backend in backends {
        let name = format!("perfetto_{backend}");
        let err = read(dir, &format!("{name}.err"));
        assert_eq!(read(dir, &format!("{name}.rc")).trim(), "0", "{err}");
        let trace = decode_perfetto(&dir.join(format!("{name}.pftrace")));
        // Timestamps stay in the kernel's clock, declared and convertible.
        assert_eq!(trace["clock"], 3, "{backend}: CLOCK_MONOTONIC");
        assert_eq!(trace["snapshot"].as_object().unwrap().len(), 3, "{backend}");

        // One track per packet (and CPU it ran on), under its CPU's track.
        let tracks: HashMap<u64, &Value> = trace["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (u(&t["uuid"]), t))
            .collect();
        let mut packet_tracks = 0;
        for t in tracks.values() {
            let name = t["name"].as_str().unwrap();
            if t["parent"].is_null() {
                assert!(name.starts_with("CPU "), "{backend}: top track {name}");
                continue;
            }
            let parent = tracks[&u(&t["parent"])]["name"].as_str().unwrap();
            assert!(
                parent.starts_with("CPU "),
                "{backend}: {name} under {parent}"
            );
            assert!(name.starts_with("packet 0x"), "{backend}: {name}");
            packet_tracks += 1;
        }
        // Requests and replies at least (the kernel's own packets may add).
        assert!(
            packet_tracks >= 4,
            "{backend}: {packet_tracks} packet tracks"
        );

        // Calls are slices, nested as their depth says, with durations and
        // return values; the module is the category.
        let slices = trace["slices"].as_array().unwrap();
        let within = |inner: &Value, outer: &Value| {
            inner["track"] == outer["track"]
                && u(&inner["ts"]) >= u(&outer["ts"])
                && u(&inner["ts"]) + u(&inner["dur"]) <= u(&outer["ts"]) + u(&outer["dur"])
                && u(&inner["depth"]) == u(&outer["depth"]) + 1
        };
        for s in slices {
            assert_eq!(s["categories"][0], "vmlinux", "{backend}: {s}");
            let depth = u(&s["depth"]);
            if depth > 0 {
                assert!(
                    slices.iter().any(|p| within(s, p)),
                    "{backend}: {s} is not inside a call of depth {}",
                    depth - 1
                );
            }
        }
        let ip_rcv: Vec<&Value> = slices.iter().filter(|s| s["name"] == "ip_rcv").collect();
        assert_eq!(
            ip_rcv.len(),
            4,
            "{backend}: 2 requests and 2 replies received"
        );
        for s in &ip_rcv {
            assert!(u(&s["dur"]) > 0, "{backend}: {s}");
            assert_eq!(s["args"]["retval"], 0, "{backend}: NET_RX_SUCCESS: {s}");
            assert!(
                slices
                    .iter()
                    .any(|c| c["name"] == "ip_local_deliver" && within(c, s)),
                "{backend}: ip_rcv without ip_local_deliver inside: {s}"
            );
        }
        // Packet tracks say what the packet is.
        let pings = tracks
            .values()
            .filter(|t| {
                let name = t["name"].as_str().unwrap();
                name.contains(": ICMP 127.0.0.1 > 127.0.0.1 echo")
            })
            .count();
        assert!(pings >= 4, "{backend}: {pings} tracks named as pings");
        // Instants: each packet's verdict, and returns whose entry was not seen.
        let mut verdicts = 0;
        for i in trace["instants"].as_array().unwrap() {
            if i["name"].as_str().unwrap().starts_with("verdict: ") {
                assert!(i["args"]["verdict"].is_string(), "{backend}: {i}");
                verdicts += 1;
            } else {
                assert_eq!(i["args"]["return"], "entry not seen", "{backend}: {i}");
            }
        }
        assert!(verdicts >= 4, "{backend}: {verdicts} verdicts");
        assert!(err.contains("events received"), "{backend}: {err}");
    }
}
