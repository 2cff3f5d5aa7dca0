//! Helpers shared by the kernel-facing tests: reading the files a scenario
//! wrote and parsing ipft's two output formats.
#![allow(dead_code)] // each test crate uses its own subset

use serde_json::Value;
use std::path::Path;

pub fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
}

/// JSON events of one scenario, after checking ipft exited 0.
pub fn json_events(dir: &Path, scenario: &str) -> Vec<Value> {
    assert_eq!(
        read(dir, &format!("{scenario}.rc")).trim(),
        "0",
        "ipft exit status in {scenario}; stderr: {}",
        read(dir, &format!("{scenario}.err"))
    );
    let text = read(dir, &format!("{scenario}.out"));
    if let Some(first) = text.lines().next() {
        assert_key_order(first);
    }
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

pub fn function(e: &Value) -> &str {
    e["function"].as_str().expect("function is a string")
}

pub fn count(events: &[Value], name: &str) -> usize {
    events.iter().filter(|e| function(e) == name).count()
}

/// Keys in SPEC.md's order, in the raw text (a parsed map forgets order).
pub fn assert_key_order(first_line: &str) {
    let keys = [
        "packet_id",
        "timestamp",
        "processor_id",
        "module",
        "function",
        "is_return",
    ];
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            first_line
                .find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} missing in {first_line}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "key order in {first_line}"
    );
}

/// Parses aggregate output into packets of (cpu, module, function).
pub fn parse_aggregate(text: &str) -> Vec<Vec<(String, String, String)>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["Timestamp", "CPU", "Module", "Function"]);
    let mut packets: Vec<Vec<(String, String, String)>> = Vec::new();
    let mut last_ts = 0u64;
    for line in lines {
        if line == "===" {
            packets.push(Vec::new());
            last_ts = 0;
            continue;
        }
        // The packet's name, its verdict, stack frames: not events.
        if line.starts_with("packet ") || line.starts_with("verdict: ") || line.starts_with(' ') {
            continue;
        }
        // Extra fields, if any, follow as " ( key: value ... )".
        let base = line.split(" ( ").next().unwrap();
        let cols: Vec<&str> = base.split_whitespace().collect();
        assert_eq!(cols.len(), 4, "line {line:?}");
        let ts: u64 = cols[0].parse().unwrap();
        assert!(ts >= last_ts, "events out of order at {line:?}");
        last_ts = ts;
        assert_eq!(cols[1].len(), 3, "CPU is three digits: {line:?}");
        packets.last_mut().expect("event before ===").push((
            cols[1].into(),
            cols[2].into(),
            cols[3].into(),
        ));
    }
    packets
}
