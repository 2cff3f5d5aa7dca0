//! Parses and checks the aggregate output of function_graph: nesting,
//! pairing of every `{` with its `}`, positive durations that cover the
//! children's.

use std::collections::HashMap;

/// One call of the aggregate call graph.
pub struct Call {
    pub name: String,
    pub depth: usize,
    pub duration_ns: u64,
}

/// Checks the call graph of one aggregate output and returns its completed
/// calls with their children (by index).
pub fn check_graph_text(text: &str) -> Vec<(Call, Vec<usize>)> {
    let mut calls: Vec<(Call, Vec<usize>)> = Vec::new();
    // Depth is per packet and CPU (a packet's copy may be handled on
    // another CPU while calls are open on the first): one stack per CPU.
    let mut stacks: HashMap<String, Vec<(String, usize, Vec<usize>)>> = HashMap::new();
    for line in text.lines().skip(1) {
        if line == "===" {
            stacks.clear();
            continue;
        }
        if line.starts_with("packet ") || line.starts_with("verdict: ") || line.starts_with(' ') {
            continue;
        }
        // Changes and extra fields follow as " ( key: value ... )".
        let func = line[49..].split(" ( ").next().unwrap();
        assert!(func.starts_with(' '), "{line:?}");
        let open = stacks.entry(line[21..24].to_string()).or_default();
        let body = &func[1..];
        let depth = (body.len() - body.trim_start().len()) / 2;
        let body = body.trim_start();
        if let Some(name) = body.strip_suffix("() {") {
            assert!(depth <= open.len(), "depth jumps at {line:?}");
            open.truncate(depth);
            open.push((name.to_string(), depth, Vec::new()));
        } else if body.starts_with("} /* ") && !body.contains("entry not seen") {
            // "} /* name 3.215 us[, ret N] */"
            let inner = body.trim_start_matches("} /* ").trim_end_matches(" */");
            let mut words = inner.split_whitespace();
            let name = words.next().unwrap().to_string();
            let us: f64 = words.next().unwrap().parse().unwrap();
            assert_eq!(open.len(), depth + 1, "return at wrong depth: {line:?}");
            let (open_name, _, children) = open.pop().unwrap();
            assert_eq!(open_name, name, "{line:?}");
            let duration_ns = (us * 1000.0).round() as u64;
            assert!(duration_ns > 0, "zero duration: {line:?}");
            calls.push((
                Call {
                    name,
                    depth,
                    duration_ns,
                },
                children,
            ));
            let index = calls.len() - 1;
            if let Some(parent) = open.last_mut() {
                parent.2.push(index);
            }
        }
    }
    for (call, children) in &calls {
        for &c in children {
            assert!(
                call.duration_ns >= calls[c].0.duration_ns,
                "{} ({} ns) shorter than its child {} ({} ns)",
                call.name,
                call.duration_ns,
                calls[c].0.name,
                calls[c].0.duration_ns
            );
            assert_eq!(calls[c].0.depth, call.depth + 1);
        }
    }
    calls
}

/// True when `name`'s call contains `inner` somewhere below it.
pub fn contains_call(calls: &[(Call, Vec<usize>)], i: usize, inner: &str) -> bool {
    calls[i]
        .1
        .iter()
        .any(|&c| calls[c].0.name == inner || contains_call(calls, c, inner))
}
