//! Checks of tests/e2e/outputs.sh: the outputs made for viewers, read by
//! readers that are not ipft's. The Perfetto traces are decoded by
//! Perfetto's own Python protobuf bindings (tests/e2e/perfetto_check.py,
//! PyPI package `perfetto`, which scripts/deps.sh installs); the pcap-ng
//! captures are dissected by tshark (Debian package `tshark`, also installed
//! by scripts/deps.sh).

use super::common::{json_events, read};
use super::Kernel;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
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

/// One frame of a pcap-ng capture as tshark dissects it.
#[derive(Debug)]
struct Frame {
    /// Wall-clock time, ns since the epoch.
    time_ns: u128,
    /// `eth:ethertype:ip:icmp:data` or `raw:ip:icmp:data`.
    protocols: String,
    ifname: String,
    ifdescr: String,
    src: String,
    dst: String,
    icmp: Option<(u64, u64)>,
    comment: String,
}

impl Frame {
    /// The function named at the start of the comment (`veth_xmit [veth]: ...`).
    fn function(&self) -> &str {
        self.comment.split([':', ' ']).next().unwrap()
    }

    /// The packet id the comment names (`...: packet 0x3, cpu 1, ...`).
    fn packet(&self) -> &str {
        let rest = &self.comment[self.comment.find(": packet ").expect(&self.comment) + 9..];
        rest.split(',').next().unwrap()
    }
}

/// tshark's dissection of `file`, one [`Frame`] per frame.
fn tshark(file: &Path) -> Vec<Frame> {
    let fields = [
        "frame.time_epoch",
        "frame.protocols",
        "frame.interface_name",
        "frame.interface_description",
        "ip.src",
        "ip.dst",
        "icmp.type",
        "icmp.seq",
        "frame.comment",
    ];
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=/t"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark (apt-get install tshark, see scripts/deps.sh)");
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), fields.len(), "{line}");
            let (secs, frac) = f[0].split_once('.').expect(f[0]);
            assert_eq!(frac.len(), 9, "nanosecond timestamps: {line}");
            let num = |s: &str| s.parse::<u64>().ok();
            Frame {
                time_ns: secs.parse::<u128>().unwrap() * 1_000_000_000
                    + frac.parse::<u128>().unwrap(),
                protocols: f[1].into(),
                ifname: f[2].into(),
                ifdescr: f[3].into(),
                src: f[4].into(),
                dst: f[5].into(),
                icmp: num(f[6]).zip(num(f[7])),
                comment: f[8].into(),
            }
        })
        .collect()
}

/// The number before `what` on a line of ipft's stderr.
fn number_before(err: &str, what: &str) -> Option<u64> {
    err.lines()
        .find_map(|l| l.split_once(what))
        .map(|(n, _)| n.trim().rsplit(' ').next().unwrap().parse().unwrap())
}

/// Every frame is one of the pings, dissected as IPv4 ICMP with the
/// addresses of its direction (echo request a -> b, reply b -> a); returns
/// (type, seq) -> the functions of its frames, in capture order.
fn pings(frames: &[Frame], what: &str) -> BTreeMap<(u64, u64), Vec<String>> {
    let mut journeys: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    for f in frames {
        assert!(f.protocols.contains(":ip:icmp"), "{what}: {f:?}");
        let (t, seq) = f.icmp.unwrap_or_else(|| panic!("{what}: no ICMP: {f:?}"));
        let (src, dst) = match t {
            8 => ("10.0.0.1", "10.0.0.2"),
            0 => ("10.0.0.2", "10.0.0.1"),
            _ => panic!("{what}: ICMP type {t}: {f:?}"),
        };
        assert_eq!(
            (f.src.as_str(), f.dst.as_str()),
            (src, dst),
            "{what}: {f:?}"
        );
        journeys
            .entry((t, seq))
            .or_default()
            .push(f.function().into());
    }
    let kinds: BTreeSet<u64> = journeys.keys().map(|k| k.0).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([0, 8]),
        "{what}: requests and replies"
    );
    assert_eq!(journeys.len(), 4, "{what}: 2 pings: {:?}", journeys.keys());
    journeys
}

/// Whether `seq` has `sub`'s items in the same order (others between).
fn in_order(seq: &[String], sub: &[&str]) -> bool {
    let mut it = seq.iter();
    sub.iter().all(|s| it.any(|x| x == s))
}

/// The functions of outputs.sh's PCAP_FUNCS that an echo request goes
/// through, in order (the reply: all but icmp_reply).
const REQUEST_PATH: [&str; 11] = [
    "__ip_local_out",
    "ip_output",
    "ip_finish_output2",
    "__dev_queue_xmit",
    "dev_hard_start_xmit",
    "veth_xmit",
    "__netif_receive_skb",
    "ip_rcv",
    "ip_local_deliver",
    "icmp_rcv",
    "icmp_reply",
];

/// Every ping's frames name the functions of its path in order.
fn check_paths(journeys: &BTreeMap<(u64, u64), Vec<String>>, what: &str) {
    for ((t, seq), functions) in journeys {
        let expected = if *t == 8 {
            &REQUEST_PATH[..]
        } else {
            &REQUEST_PATH[..REQUEST_PATH.len() - 1]
        };
        assert!(
            in_order(functions, expected),
            "{what}: type {t} seq {seq}: {functions:?} lacks {expected:?} in order"
        );
    }
}

pub fn check_pcapng(dir: &Path) {
    let ns = |n: &str| format!("netns {}", read(dir, &format!("netns_{n}.inode")).trim());
    let (ns_a, ns_b) = (ns("a"), ns("b"));

    // kprobe, function tracer: every event has bytes, so a frame each.
    let err = read(dir, "pcapng_kprobe.err");
    assert_eq!(read(dir, "pcapng_kprobe.rc").trim(), "0", "{err}");
    let frames = tshark(&dir.join("pcapng_kprobe.pcapng"));
    let written = number_before(&err, " frames written").expect(&err);
    let received = number_before(&err, " events received").expect(&err);
    assert!(!err.contains("without packet bytes"), "{err}");
    assert!(err.contains("events received, 0 lost"), "{err}");
    assert_eq!(frames.len() as u64, written, "{err}");
    assert_eq!(written, received, "one frame per event: {err}");
    // The JSON instance beside it saw the same events.
    let events = json_events(dir, "pcapng_json");
    assert_eq!(frames.len(), events.len(), "frames and JSON events");

    let journeys = pings(&frames, "kprobe");
    check_paths(&journeys, "kprobe");
    // The same journeys, in the same order, as the JSON instance saw them.
    let mut json_journeys: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    let mut ping_of: HashMap<&str, (u64, u64)> = HashMap::new();
    for e in &events {
        let m = &e["meta"];
        if let (Some(t), Some(seq)) = (m["icmp_type"].as_u64(), m["icmp_seq"].as_u64()) {
            ping_of.insert(e["packet_id"].as_str().unwrap(), (t, seq));
        }
    }
    for e in &events {
        let key = ping_of[e["packet_id"].as_str().unwrap()];
        json_journeys
            .entry(key)
            .or_default()
            .push(e["function"].as_str().unwrap().into());
    }
    assert_eq!(journeys, json_journeys, "frame comments against JSON");

    for f in &frames {
        // Before the MAC header is set the bytes are raw IP, and still
        // dissect as IP; from the device on they are Ethernet frames.
        match f.function() {
            "__ip_local_out" | "ip_output" => {
                assert!(f.protocols.starts_with("raw:ip:icmp"), "{f:?}")
            }
            "veth_xmit" | "__netif_receive_skb" | "ip_rcv" | "icmp_rcv" => {
                assert!(f.protocols.starts_with("eth:ethertype:ip:icmp"), "{f:?}")
            }
            _ => {}
        }
        // Interfaces: the device and its namespace; the comment says the same.
        let (t, _) = f.icmp.unwrap();
        let sent_in = if t == 8 { &ns_a } else { &ns_b };
        let received_in = if t == 8 { &ns_b } else { &ns_a };
        let (dev, netns) = match f.function() {
            "veth_xmit" => (Some(if t == 8 { "va" } else { "vb" }), sent_in),
            "ip_rcv" | "icmp_rcv" => (Some(if t == 8 { "vb" } else { "va" }), received_in),
            "__ip_local_out" | "ip_output" => (None, sent_in),
            _ => continue,
        };
        assert_eq!(&f.ifdescr, netns, "{f:?}");
        assert!(f.comment.contains(&format!(", {netns}")), "{f:?}");
        if let Some(dev) = dev {
            assert_eq!(f.ifname, dev, "{f:?}");
            assert!(f.comment.contains(&format!(", dev {dev}")), "{f:?}");
        }
        assert!(f.comment.contains(", cpu "), "{f:?}");
    }

    // Timestamps: wall-clock time of the run (the guest's clock is the
    // host's), nanoseconds, and the capture as long as the JSON run's.
    let written_at = std::fs::metadata(dir.join("pcapng_kprobe.pcapng"))
        .and_then(|m| m.modified())
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    for f in &frames {
        let skew = f.time_ns.abs_diff(written_at);
        assert!(
            skew < 600_000_000_000,
            "{f:?} is {skew} ns from the file's time"
        );
    }
    assert!(
        frames.iter().any(|f| f.time_ns % 1000 != 0),
        "ns resolution"
    );
    let span = |times: &[u128]| times.iter().max().unwrap() - times.iter().min().unwrap();
    let frame_span = span(&frames.iter().map(|f| f.time_ns).collect::<Vec<_>>());
    let json_span = span(
        &events
            .iter()
            .map(|e| e["timestamp"].as_u64().unwrap() as u128)
            .collect::<Vec<_>>(),
    );
    // (Under emulation one instance's probe may run milliseconds after the
    // other's; a unit mistake would be off a thousandfold.)
    assert!(
        frame_span.abs_diff(json_span) < json_span / 10,
        "capture spans {frame_span} ns, JSON {json_span} ns"
    );
    // Frames of one packet, on one CPU, in time order.
    let mut last: HashMap<&str, u128> = HashMap::new();
    for f in &frames {
        let prev = last.insert(f.packet(), f.time_ns).unwrap_or(0);
        assert!(
            f.time_ns >= prev,
            "{f:?} before the packet's previous frame"
        );
    }

    // -w - into a pipe, function_graph: returns are no frames, and said so.
    let err = read(dir, "pcapng_pipe.err");
    assert_eq!(read(dir, "pcapng_pipe.rc").trim(), "0", "{err}");
    let frames = tshark(&dir.join("pcapng_pipe.pcapng"));
    let written = number_before(&err, " frames written").expect(&err);
    let without = number_before(&err, " events without packet bytes").expect(&err);
    let received = number_before(&err, " events received").expect(&err);
    assert_eq!(frames.len() as u64, written, "{err}");
    assert_eq!(written + without, received, "{err}");
    assert!(without >= written, "a return for every call: {err}");
    check_paths(&pings(&frames, "pipe"), "pipe");
}
