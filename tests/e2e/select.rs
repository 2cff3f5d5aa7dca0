//! Checks of tests/e2e/select.sh: packet selection (pcap-filter expressions,
//! namespace and device filters) and tracking (stable packet ids, following a
//! packet through NAT, namespaces and clones), on real packets in the guests.

use super::common::{count, function, json_events, read};
use super::{by_packet, Kernel};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn functions<'a>(events: &'a [&'a Value]) -> Vec<&'a str> {
    events.iter().map(|e| function(e)).collect()
}

fn has(events: &[Value], name: &str) -> bool {
    count(events, name) > 0
}

/// Backends of the function tracer on `kernel`.
fn backends(kernel: Kernel) -> &'static [&'static str] {
    if kernel.has_kprobe_multi() {
        &["kprobe", "kprobe-multi", "ftrace", "tracepoint"]
    } else {
        &["kprobe", "ftrace", "tracepoint"]
    }
}

pub fn check_expression_selects(kernel: Kernel, dir: &Path) {
    for backend in backends(kernel) {
        let events = json_events(dir, &format!("expr_{backend}"));
        assert!(!events.is_empty(), "{backend}: no events");
        if *backend == "tracepoint" {
            // 3 requests and 3 replies queued, nothing else.
            assert_eq!(count(&events, "net_dev_queue"), 6, "{backend}");
        } else {
            assert_eq!(count(&events, "icmp_echo"), 3, "{backend}: 3 requests");
            assert_eq!(
                count(&events, "icmp_rcv"),
                6,
                "{backend}: requests and replies"
            );
            for udp in ["udp_rcv", "__udp4_lib_rcv", "udp_send_skb"] {
                assert_eq!(count(&events, udp), 0, "{backend}: UDP selected in {udp}");
            }
        }
        // Ids are small numbers given out in order; the skb is its own field.
        let packets = by_packet(&events);
        assert!(packets.len() >= 6, "{backend}: {} packets", packets.len());
        for e in &events {
            let id = e["packet_id"].as_str().unwrap();
            let id = u64::from_str_radix(id.trim_start_matches("0x"), 16).unwrap();
            assert!((1..1 << 32).contains(&id), "{backend}: packet id {id:#x}");
            assert!(e["skb"].as_str().unwrap().starts_with("0xff"), "{e}");
        }
        let err = read(dir, &format!("expr_{backend}.err"));
        assert!(err.contains("packets tracked"), "{backend}: {err}");
    }
}

pub fn check_tracking_across_namespaces(dir: &Path) {
    // Marked only in netns a: without tracking, the packet is lost at the
    // veth, where the mark is cleared; the id is the skb address.
    let untracked = json_events(dir, "mark_notrack");
    assert!(has(&untracked, "veth_xmit"), "{untracked:?}");
    assert!(!has(&untracked, "icmp_echo"), "mark survived the veth?");
    for e in &untracked {
        assert_eq!(e["packet_id"], e["skb"], "--no-track ids are skb addresses");
    }
    // Tracked: the same requests are followed into netns b to the reply.
    let tracked = json_events(dir, "mark_track");
    assert_eq!(count(&tracked, "icmp_echo"), 3);
    let packets = by_packet(&tracked);
    let through = packets
        .iter()
        .filter(|p| {
            let f = functions(p);
            let pos = |n: &str| f.iter().position(|x| *x == n);
            matches!((pos("ip_output"), pos("veth_xmit"), pos("icmp_echo")), (Some(a), Some(b), Some(c)) if a < b && b < c)
        })
        .count();
    assert_eq!(through, 3, "requests followed from ip_output to icmp_echo");
}

pub fn check_graph_across_veth(kernel: Kernel, dir: &Path) {
    let backends: &[&str] = if kernel.has_kprobe_multi() {
        &["ftrace", "kprobe", "kprobe-multi"]
    } else {
        &["ftrace", "kprobe"]
    };
    for backend in backends {
        let events = json_events(dir, &format!("graph_veth_{backend}"));
        // Every call of the send path entered in netns a returns, with its
        // duration, although the mark was cleared inside it.
        for f in [
            "ip_output",
            "__dev_queue_xmit",
            "dev_hard_start_xmit",
            "veth_xmit",
        ] {
            let entries = events
                .iter()
                .filter(|e| function(e) == f && e["is_return"] == false)
                .count();
            let returns: Vec<&Value> = events
                .iter()
                .filter(|e| function(e) == f && e["is_return"] == true)
                .collect();
            assert!(entries >= 3, "{backend}: {f} entered {entries} times");
            assert_eq!(returns.len(), entries, "{backend}: {f} returns");
            assert!(
                returns.iter().all(|e| e["duration_ns"].as_u64().is_some()),
                "{backend}: {f} returns without a duration"
            );
        }
    }
}

pub fn check_dnat_followed(dir: &Path) {
    let events = json_events(dir, "dnat");
    let packets = by_packet(&events);
    // Selected as a ping to 10.0.0.99, rewritten to 10.0.0.2 by netfilter in
    // netns a, then the same id goes over the veth to the reply's creation.
    let followed: Vec<Vec<&str>> = packets
        .iter()
        .map(|p| functions(p))
        .filter(|f| {
            let pos = |n: &str| f.iter().position(|x| *x == n);
            matches!((pos("nf_hook_slow"), pos("veth_xmit"), pos("icmp_echo"), pos("icmp_reply")),
                (Some(a), Some(b), Some(c), Some(d)) if a < b && b < c && c < d)
        })
        .collect();
    assert_eq!(
        followed.len(),
        3,
        "requests to 10.0.0.99 followed through DNAT into netns b ({}): {packets:?}",
        read(dir, "dnat.tool").trim()
    );
    let ping = read(dir, "dnat.ping");
    assert!(ping.contains("3 received"), "{ping}");
    // The aggregate output of the same packets: one block per packet id.
    let agg = super::common::parse_aggregate(&read(dir, "dnat_agg.out"));
    let blocks = agg
        .iter()
        .filter(|p| {
            p.iter().any(|(_, _, f)| f == "nf_nat_manip_pkt")
                && p.iter().any(|(_, _, f)| f == "icmp_echo")
        })
        .count();
    assert_eq!(blocks, 3, "{agg:?}");
}

pub fn check_namespace_and_device_filters(dir: &Path) {
    let ub = json_events(dir, "ifname_ub");
    assert!(has(&ub, "udp_rcv"), "UDP arrives on ub");
    assert!(!has(&ub, "icmp_echo"), "pings arrive on vb, not ub");
    let vb = json_events(dir, "ifname_vb");
    assert!(has(&vb, "icmp_echo"), "pings arrive on vb");
    assert!(!has(&vb, "udp_rcv"), "UDP arrives on ub, not vb");
    let err = read(dir, "ifname_vb.err");
    assert!(err.contains("Trace ready!"), "netns by inode number: {err}");
    // AND: UDP on vb is nothing.
    let none = json_events(dir, "ifname_vb_udp");
    assert!(none.is_empty(), "{none:?}");
    // The whole namespace: both devices, nothing sent from netns a before it
    // reaches b (no udp_send_skb, which runs in a).
    let netns_b = json_events(dir, "netns_b");
    assert!(has(&netns_b, "udp_rcv") && has(&netns_b, "icmp_echo"));
    assert!(!has(&netns_b, "udp_send_skb"), "netns a's sending selected");
}

pub fn check_link_and_network_layer_expressions(dir: &Path) {
    // Link-layer fields exist only where the MAC header is set: on receive,
    // and on send from the device queue on; never at ip_output.
    let l2 = json_events(dir, "l2");
    assert!(has(&l2, "ip_rcv") && has(&l2, "veth_xmit"), "{l2:?}");
    assert!(
        !has(&l2, "ip_output"),
        "L2 test matched before the MAC header"
    );
    let err = read(dir, "l2.err");
    assert!(err.contains("Ethernet header"), "the user is told: {err}");
    // Network-layer fields match before and after.
    let l3 = json_events(dir, "l3");
    assert!(has(&l3, "ip_output") && has(&l3, "ip_rcv"), "{l3:?}");
    let arp = json_events(dir, "arp");
    let names: BTreeSet<&str> = arp.iter().map(function).collect();
    assert!(names.contains("arp_rcv"), "ARP selected: {names:?}");
    assert!(
        !names.contains("icmp_rcv"),
        "pings selected by 'arp': {names:?}"
    );
}

pub fn check_clone_keeps_id(dir: &Path) {
    // tcpdump captured during the expression scenario.
    let events = json_events(dir, "expr_kprobe");
    let packets = by_packet(&events);
    // tcpdump on vb (netns b): each reply sent there is cloned for the
    // capture (dev_queue_xmit_nit -> tpacket_rcv); the clone has its own skb
    // but the reply's id, which goes on to netns a's icmp_rcv.
    let cloned = packets
        .iter()
        .filter(|p| {
            let f = functions(p);
            f.contains(&"tpacket_rcv") && f.contains(&"icmp_rcv") && !f.contains(&"icmp_echo")
        })
        .filter(|p| {
            let skb_of = |name: &str| {
                p.iter()
                    .find(|e| function(e) == name)
                    .map(|e| e["skb"].as_str().unwrap())
            };
            skb_of("tpacket_rcv") != skb_of("icmp_rcv")
        })
        .count();
    assert_eq!(
        cloned,
        3,
        "{:?}",
        packets.iter().map(|p| functions(p)).collect::<Vec<_>>()
    );
}

pub fn check_tracked_flood(dir: &Path) {
    let summary: Value =
        serde_json::from_str(&read(dir, "track_flood.summary")).expect("flood summary");
    eprintln!("tracked flood: {summary}");
    let ids = summary["ids"].as_u64().unwrap();
    let skbs = summary["skbs"].as_u64().unwrap();
    let ping = read(dir, "track_flood.ping");
    let summary_line = ping
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .expect("ping's summary line");
    let counted = |what: &str| -> u64 {
        summary_line
            .split(',')
            .find_map(|part| part.trim().strip_suffix(what)?.parse().ok())
            .unwrap_or_else(|| panic!("no '{what}' in {summary_line}"))
    };
    let (sent, received) = (counted(" packets transmitted"), counted(" received"));
    assert!(received >= 7_600, "{summary_line}");
    // The kernel side gave every request and every reply its own id (its
    // count does not depend on events lost on the way to user space)...
    let err = read(dir, "track_flood.err");
    let stats: Value = err
        .lines()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary: {err}"))["tracking"]
        .clone();
    assert_eq!(stats["packets"], sent + received, "{stats}");
    assert_eq!(stats["map_full"], 0, "{stats}");
    assert!(stats["still_tracked"].as_u64().unwrap() < 100, "{stats}");
    // ...and no id holds two packets (two receives), although the kernel
    // reused a few skbs for all of them.
    assert_eq!(summary["ids_with_several_receives"], 0, "{summary}");
    assert!(
        ids > 1000 && skbs * 10 < ids,
        "skb memory is reused: {summary}"
    );
    // One entry cannot hold a request and its reply at once: counted.
    let full = read(dir, "track_full.err");
    assert!(
        full.contains("tracking map was full (raise --track-max)"),
        "{full}"
    );
}

pub fn check_bad_selectors(dir: &Path) {
    for (name, words) in [
        ("bad_expr", &["host 10.0.0.2 and", "syntax"][..]),
        ("bad_netns", &["/run/netns/nosuch"][..]),
        ("bad_ifname", &["nosuch0", "no such device"][..]),
        ("no_selector", &["expression", "--mark"][..]),
    ] {
        assert_eq!(read(dir, &format!("{name}.rc")).trim(), "2", "{name}");
        let err = read(dir, &format!("{name}.err"));
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        for w in words {
            assert!(err.contains(w), "{name}: {err}");
        }
    }
}
