//! Writes traces from made-up events and reads them back: with prost (the
//! same message definitions) for the logic, and with Perfetto's own Python
//! bindings (tests/e2e/perfetto_check.py) for the field numbers, where
//! installed.

use super::*;
use crate::kernel::btf::IntType;
use prost::Message;
use std::collections::BTreeMap;

const INT: Option<IntType> = Some(IntType {
    size: 4,
    signed: true,
});

fn func(name: &'static str, id: u64) -> Func<'static> {
    Func {
        name,
        module: "vmlinux",
        id,
        ret: INT,
    }
}

fn ev(packet_id: u64, cpu: u32, tstamp: u64, is_return: bool, retval: u64) -> Event {
    Event {
        packet_id,
        processor_id: cpu,
        tstamp,
        is_return: is_return as u8,
        retval,
        ..Event::default()
    }
}

type Args = BTreeMap<String, String>;
/// (track name, function, begin, duration, depth, args)
type Slice = (String, String, u64, u64, usize, Args);

/// What a reader makes of a trace.
#[derive(Debug, Default)]
struct Decoded {
    packets: Vec<TracePacket>,
    /// uuid -> (name, parent uuid)
    tracks: BTreeMap<u64, (String, Option<u64>)>,
    slices: Vec<Slice>,
    /// (track name, function, time, args)
    instants: Vec<(String, String, u64, BTreeMap<String, String>)>,
    /// Interned names per packet that defined any.
    interned_packets: usize,
}

fn value(v: &AnnotationValue) -> String {
    match v {
        AnnotationValue::Bool(b) => b.to_string(),
        AnnotationValue::Uint(u) => u.to_string(),
        AnnotationValue::Int(i) => i.to_string(),
        AnnotationValue::String(s) => s.clone(),
    }
}

fn decode(bytes: &[u8]) -> Decoded {
    let trace = Trace::decode(bytes).expect("a valid Trace");
    let mut d = Decoded::default();
    let (mut names, mut keys) = (HashMap::new(), HashMap::new());
    type Open = (String, u64, usize, BTreeMap<String, String>);
    let mut stacks: HashMap<u64, Vec<Open>> = HashMap::new();
    for p in &trace.packet {
        if let Some(i) = &p.interned_data {
            d.interned_packets += 1;
            for n in &i.event_names {
                names.insert(n.iid.unwrap(), n.name.clone().unwrap());
            }
            for n in &i.debug_annotation_names {
                keys.insert(n.iid.unwrap(), n.name.clone().unwrap());
            }
        }
        match &p.data {
            Some(Data::TrackDescriptor(t)) => {
                d.tracks
                    .insert(t.uuid.unwrap(), (t.name.clone().unwrap(), t.parent_uuid));
            }
            Some(Data::TrackEvent(t)) => {
                let track = t.track_uuid.unwrap();
                let track_name = d.tracks[&track].0.clone();
                let args: BTreeMap<String, String> = t
                    .debug_annotations
                    .iter()
                    .map(|a| {
                        let k = match a.name.as_ref().unwrap() {
                            AnnotationName::NameIid(i) => keys[i].clone(),
                            AnnotationName::Name(n) => n.clone(),
                        };
                        (k, value(a.value.as_ref().unwrap()))
                    })
                    .collect();
                let name = t.name.as_ref().map(|n| match n {
                    EventName::NameIid(i) => names[i].clone(),
                    EventName::Name(n) => n.clone(),
                });
                let ts = p.timestamp.unwrap();
                let stack = stacks.entry(track).or_default();
                match t.r#type.unwrap() {
                    TYPE_SLICE_BEGIN => stack.push((name.unwrap(), ts, stack.len(), args)),
                    TYPE_SLICE_END => {
                        let (name, begin, depth, mut a) = stack.pop().expect("an open slice");
                        a.extend(args);
                        d.slices
                            .push((track_name, name, begin, ts - begin, depth, a));
                    }
                    TYPE_INSTANT => d.instants.push((track_name, name.unwrap(), ts, args)),
                    t => panic!("type {t}"),
                }
            }
            _ => {}
        }
        d.packets.push(p.clone());
    }
    d
}

fn write(graph: bool, events: &[(Event, Func<'static>, Fields)]) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut out = Perfetto::new(&mut buf, graph).unwrap();
    for (e, f, fields) in events {
        Output::on_event(&mut out, e, *f, fields.clone()).unwrap();
    }
    out.finish().unwrap();
    assert_eq!(out.count(), events.len() as u64);
    drop(out);
    buf
}

#[test]
fn starts_with_a_clock_snapshot_and_declares_the_monotonic_clock() {
    let d = decode(&write(false, &[]));
    let Some(Data::ClockSnapshot(s)) = &d.packets[0].data else {
        panic!("{:?}", d.packets[0]);
    };
    let ids: Vec<u32> = s.clocks.iter().map(|c| c.clock_id.unwrap()).collect();
    assert_eq!(ids, [CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME]);
    assert!(s.clocks.iter().all(|c| c.timestamp.unwrap() > 0));
    let start = &d.packets[1];
    assert_eq!(start.sequence_flags, Some(SEQ_INCREMENTAL_STATE_CLEARED));
    assert_eq!(
        start
            .trace_packet_defaults
            .as_ref()
            .unwrap()
            .timestamp_clock_id,
        Some(CLOCK_MONOTONIC)
    );
}

/// Calls of two packets on two CPUs: one track per (CPU, packet) under its
/// CPU's track; slices nested as the graph pairs them.
fn graph_events() -> Vec<(Event, Func<'static>, Fields)> {
    let (rcv, deliver, kfree) = (
        func("ip_rcv", 1),
        func("ip_local_deliver", 2),
        func("kfree", 3),
    );
    let len = |n: &str| vec![("len".into(), n.to_string())];
    vec![
        (ev(1, 0, 100, false, 0), rcv, len("84")),
        (ev(1, 0, 110, false, 0), deliver, vec![]),
        (ev(2, 1, 115, false, 0), rcv, vec![]),
        (ev(1, 0, 150, true, 0), deliver, vec![]),
        (ev(1, 0, 200, true, u32::MAX as u64), rcv, len("84")),
        (ev(2, 1, 300, true, 1), rcv, vec![]),
        // A return whose entry was not seen.
        (ev(2, 1, 310, true, 7), kfree, vec![]),
    ]
}

#[test]
fn graph_calls_become_nested_slices_on_per_packet_tracks() {
    let d = decode(&write(true, &graph_events()));
    let names: BTreeMap<&str, Option<&str>> = d
        .tracks
        .values()
        .map(|(n, p)| (n.as_str(), p.map(|p| d.tracks[&p].0.as_str())))
        .collect();
    assert_eq!(
        names,
        BTreeMap::from([
            ("CPU 0", None),
            ("CPU 1", None),
            ("packet 0x1", Some("CPU 0")),
            ("packet 0x2", Some("CPU 1")),
        ])
    );
    let args = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        d.slices,
        [
            (
                "packet 0x1".into(),
                "ip_local_deliver".into(),
                110,
                40,
                1,
                args(&[("retval", "0")])
            ),
            (
                "packet 0x1".into(),
                "ip_rcv".into(),
                100,
                100,
                0,
                args(&[("len", "84"), ("retval", "-1"), ("return.len", "84")])
            ),
            (
                "packet 0x2".into(),
                "ip_rcv".into(),
                115,
                185,
                0,
                args(&[("retval", "1")])
            ),
        ]
    );
    assert_eq!(
        d.instants,
        [(
            "packet 0x2".into(),
            "kfree".into(),
            310,
            args(&[("retval", "7"), ("return", "entry not seen")])
        )]
    );
}

#[test]
fn slice_durations_equal_the_json_output() {
    let events = graph_events();
    let mut json = Vec::new();
    let mut j = crate::output::json::Json::new(&mut json, true);
    for (e, f, fields) in &events {
        Output::on_event(&mut j, e, *f, fields.clone()).unwrap();
    }
    Output::finish(&mut j).unwrap();
    drop(j);
    let mut from_json: Vec<(String, String, u64)> = String::from_utf8(json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("duration_ns").is_some())
        .map(|v| {
            let track = format!("packet {}", v["packet_id"].as_str().unwrap());
            let f = v["function"].as_str().unwrap().to_string();
            (track, f, v["duration_ns"].as_u64().unwrap())
        })
        .collect();
    let mut from_perfetto: Vec<(String, String, u64)> = decode(&write(true, &events))
        .slices
        .into_iter()
        .map(|(t, f, _, dur, _, _)| (t, f, dur))
        .collect();
    from_json.sort();
    from_perfetto.sort();
    assert_eq!(from_json, from_perfetto);
}

#[test]
fn calls_closed_over_end_with_the_outer_return() {
    let (a, b, c) = (func("a", 1), func("b", 2), func("c", 3));
    let d = decode(&write(
        true,
        &[
            (ev(1, 0, 10, false, 0), a, vec![]),
            (ev(1, 0, 20, false, 0), b, vec![]),
            (ev(1, 0, 30, false, 0), c, vec![]),
            // b's and c's returns were lost: they end with a.
            (ev(1, 0, 50, true, 3), a, vec![]),
            (ev(1, 0, 60, false, 0), b, vec![]),
        ],
    ));
    let got: Vec<(&str, u64, u64, usize, Option<&String>)> = d
        .slices
        .iter()
        .map(|(_, n, ts, dur, depth, args)| (n.as_str(), *ts, *dur, *depth, args.get("retval")))
        .collect();
    let three = "3".to_string();
    assert_eq!(
        got,
        [
            ("c", 30, 20, 2, None),
            ("b", 20, 30, 1, None),
            ("a", 10, 40, 0, Some(&three))
        ]
    );
}

#[test]
fn function_events_are_instants_with_their_fields_and_names_interned() {
    let f = Func {
        name: "kfree_skb",
        module: "tracepoint",
        id: 9,
        ret: None,
    };
    let reason = || vec![("reason".into(), "NETFILTER_DROP".to_string())];
    let events: Vec<_> = (0..3)
        .map(|i| (ev(5, 2, 1000 + i, false, 0), f, reason()))
        .collect();
    let d = decode(&write(false, &events));
    assert!(d.slices.is_empty());
    assert_eq!(d.instants.len(), 3);
    for (track, name, _, args) in &d.instants {
        assert_eq!((track.as_str(), name.as_str()), ("packet 0x5", "kfree_skb"));
        assert_eq!(args["reason"], "NETFILTER_DROP");
    }
    // Name, category and key are sent with the first event only.
    assert_eq!(d.interned_packets, 1);
    let Some(Data::TrackEvent(t)) = &d.packets.last().unwrap().data else {
        panic!()
    };
    assert_eq!(t.category_iids, [1]);
}

#[test]
fn memory_stays_bounded_over_many_packets() {
    let mut out = Perfetto::new(std::io::sink(), true).unwrap();
    let f = func("ip_rcv", 1);
    for id in 0..(MAX_TRACKS as u64 + 100) {
        // Entries whose returns never come.
        Output::on_event(&mut out, &ev(id, 0, id, false, 0), f, vec![]).unwrap();
    }
    assert!(out.tracks.len() <= MAX_TRACKS);
    assert!(out.open.len() <= MAX_TRACKS);
    assert!(out.last.len() <= MAX_TRACKS);
    let mut interned = Vec::new();
    let mut names = Interner::default();
    for i in 0..MAX_INTERNED + 10 {
        names.iid(&format!("f{i}"), &mut interned);
    }
    assert_eq!(names.iid("another", &mut interned), None);
    assert_eq!(names.iid("f3", &mut interned), Some(4));
    assert_eq!(interned.len(), MAX_INTERNED);
}

/// Perfetto's own bindings read the same trace the same way (skipped,
/// saying so, where the `perfetto` Python package is not installed).
#[test]
fn perfettos_python_bindings_read_the_trace() {
    let probe = std::process::Command::new("python3")
        .args([
            "-c",
            "import perfetto.protos.perfetto.trace.perfetto_trace_pb2",
        ])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!("skipped: python3 -m pip install perfetto (scripts/deps.sh does)");
        return;
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), write(true, &graph_events())).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/perfetto_check.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["clock"], CLOCK_MONOTONIC);
    assert_eq!(v["snapshot"].as_object().unwrap().len(), 3);
    assert_eq!(v["tracks"].as_array().unwrap().len(), 4);
    let slices: Vec<(String, u64, u64, u64)> = v["slices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["ts"].as_u64().unwrap(),
                s["dur"].as_u64().unwrap(),
                s["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        slices,
        [
            ("ip_local_deliver".to_string(), 110, 40, 1),
            ("ip_rcv".to_string(), 100, 100, 0),
            ("ip_rcv".to_string(), 115, 185, 0)
        ]
    );
    let rcv = &v["slices"][1];
    assert_eq!(rcv["categories"][0], "vmlinux");
    assert_eq!(rcv["args"]["retval"], -1);
    assert_eq!(rcv["args"]["len"], "84");
    assert_eq!(v["instants"][0]["args"]["return"], "entry not seen");
    assert!(v["open"].as_array().unwrap().is_empty());
}

#[test]
fn packet_tracks_are_named_by_what_the_packet_is() {
    use crate::event::{Meta, META_DEV, META_ECHO, META_ICMP, META_IPV4, META_NETNS};
    let mut m = Meta {
        known: META_NETNS | META_DEV | META_IPV4 | META_ICMP | META_ECHO,
        netns: 4026531840,
        ip_len: 84,
        l4_proto: 1,
        icmp_type: 8,
        icmp_id: 7,
        icmp_seq: 1,
        ..Meta::default()
    };
    m.ifname[..2].copy_from_slice(b"va");
    m.saddr[..4].copy_from_slice(&[10, 0, 0, 1]);
    m.daddr[..4].copy_from_slice(&[10, 0, 0, 2]);
    let mut e = ev(1, 0, 10, false, 0);
    e.meta = Some(Box::new(m));
    let d = decode(&write(false, &[(e, func("ip_rcv", 1), vec![])]));
    let names: Vec<&str> = d.tracks.values().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"packet 0x1: ICMP 10.0.0.1 > 10.0.0.2 echo request id 7 seq 1, len 84"),
        "{names:?}"
    );
    assert_eq!(d.instants[0].3["place"], "netns 4026531840 dev va");
}

#[test]
fn a_verdict_is_an_instant_at_the_packets_last_event() {
    use crate::verdict::{Kind, Verdict};
    let mut buf = Vec::new();
    let mut out = Perfetto::new(&mut buf, false).unwrap();
    let f = func("kfree_skb_reason", 1);
    Output::on_event(&mut out, &ev(3, 1, 500, false, 0), f, vec![]).unwrap();
    let v = Verdict {
        kind: Kind::Dropped,
        function: "kfree_skb_reason".into(),
        reason: Some("NETFILTER_DROP".into()),
        netns: None,
        ifname: None,
        event: 0,
        stack: None,
    };
    out.on_verdict(3, &v).unwrap();
    // Once per packet: a second verdict for it has no event to go with.
    out.on_verdict(3, &v).unwrap();
    out.finish().unwrap();
    assert!(out.last.is_empty());
    drop(out);
    let d = decode(&buf);
    assert_eq!(d.instants.len(), 2);
    let (track, name, ts, args) = &d.instants[1];
    assert_eq!(
        (track.as_str(), name.as_str(), *ts),
        ("packet 0x3", "verdict: dropped", 500)
    );
    assert_eq!(args["reason"], "NETFILTER_DROP");
    assert_eq!(
        args["verdict"],
        "dropped at kfree_skb_reason (NETFILTER_DROP)"
    );
}
