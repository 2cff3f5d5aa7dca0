//! Checks of tests/e2e/meta.sh (and of select.sh's DNAT run): the packet
//! metadata of every event, the verdict of every packet and the exit
//! summary, on real IPv4 and IPv6 pings through a veth pair; and every JSON
//! line of the run against schema/ipft.schema.json.

use super::common::{json_events, json_verdicts, read};
use super::{by_packet, repo};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn meta(e: &Value) -> Option<&Value> {
    e.get("meta")
}

fn inode(dir: &Path, ns: &str) -> u64 {
    read(dir, &format!("netns_{ns}.inode"))
        .trim()
        .parse()
        .unwrap()
}

/// The echo type of a packet (8/0 or 128/129), from any of its events.
fn echo_type(packet: &[&Value]) -> Option<u64> {
    packet
        .iter()
        .find_map(|e| meta(e)?.get("icmp_type")?.as_u64())
}

pub fn check_packet_metadata(dir: &Path) {
    let events = json_events(dir, "meta_json");
    let (ns_a, ns_b) = (inode(dir, "a"), inode(dir, "b"));
    let packets = by_packet(&events);
    let mut seqs: BTreeSet<(u64, u64)> = BTreeSet::new();
    for p in &packets {
        let Some(t) = echo_type(p) else { continue };
        let (src, dst, proto) = match t {
            8 => ("10.0.0.1", "10.0.0.2", "ICMP"),
            0 => ("10.0.0.2", "10.0.0.1", "ICMP"),
            128 => ("fd00::1", "fd00::2", "ICMPv6"),
            129 => ("fd00::2", "fd00::1", "ICMPv6"),
            _ => panic!("unexpected ICMP type {t}"),
        };
        let with_ip: Vec<&Value> = p
            .iter()
            .filter_map(|e| meta(e))
            .filter(|m| m.get("saddr").is_some())
            .collect();
        assert!(!with_ip.is_empty(), "type {t}: no headers read");
        for m in &with_ip {
            assert_eq!(m["saddr"], src, "{m}");
            assert_eq!(m["daddr"], dst, "{m}");
            assert_eq!(m["l4_proto"], proto, "{m}");
            assert_eq!(m["icmp_type"], t, "{m}");
        }
        let seq = with_ip[0]["icmp_seq"].as_u64().unwrap();
        assert!(
            with_ip
                .iter()
                .all(|m| m["icmp_seq"] == seq && m["icmp_id"] == with_ip[0]["icmp_id"]),
            "one packet, one echo id and sequence"
        );
        seqs.insert((t, seq));
        // Both namespaces and both devices, each where it should be.
        let places: BTreeSet<(u64, String)> = p
            .iter()
            .filter_map(|e| {
                let m = meta(e)?;
                Some((
                    m.get("netns")?.as_u64()?,
                    m.get("ifname")?.as_str()?.to_string(),
                ))
            })
            .collect();
        let (from, to) = if t == 8 || t == 128 {
            ((ns_a, "va"), (ns_b, "vb"))
        } else {
            ((ns_b, "vb"), (ns_a, "va"))
        };
        for (ns, dev) in [from, to] {
            assert!(
                places.contains(&(ns, dev.to_string())),
                "type {t}: never seen on {dev} in netns {ns}: {places:?}"
            );
        }
    }
    let expected: BTreeSet<(u64, u64)> = [0, 8, 128, 129]
        .iter()
        .flat_map(|&t| [(t, 1), (t, 2)])
        .collect();
    assert_eq!(
        seqs, expected,
        "2 IPv4 and 2 IPv6 echo requests and replies"
    );
}

/// Linux before 6.2 frees an answered ICMPv6 echo request with
/// kfree_skb_reason(NOT_SPECIFIED) at the end of icmpv6_rcv (6.2 made it a
/// consume): ipft reports what the kernel says, a drop, with that stack.
fn is_icmpv6_echo_quirk(v: &Value) -> bool {
    v["kind"] == "dropped"
        && v["reason"] == "NOT_SPECIFIED"
        && v["stack"].as_array().is_some_and(|s| {
            s.iter()
                .any(|f| f.as_str().unwrap().starts_with("icmpv6_rcv+"))
        })
}

pub fn check_verdicts_and_summary(dir: &Path) {
    let events = json_events(dir, "meta_json");
    let verdicts = json_verdicts(dir, "meta_json");
    let packets = by_packet(&events);
    assert_eq!(verdicts.len(), packets.len(), "one verdict per packet");
    let mut quirks = 0;
    for p in &packets {
        let id = p[0]["packet_id"].as_str().unwrap();
        let v = &verdicts.iter().find(|(v_id, _)| v_id == id).unwrap().1;
        let expected = match echo_type(p) {
            Some(128) if is_icmpv6_echo_quirk(v) => {
                quirks += 1;
                "dropped"
            }
            Some(8) | Some(128) => "consumed",
            Some(0) | Some(129) => "delivered",
            other => panic!("packet {id} of type {other:?}"),
        };
        assert_eq!(v["kind"], expected, "packet {id}: {v}");
    }
    assert!(
        quirks == 0 || quirks == 2,
        "both IPv6 requests or none: {quirks}"
    );
    let err = read(dir, "meta_json.err");
    let summary: Value = err
        .lines()
        .find(|l| l.starts_with('{') && l.contains("\"events_received\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .expect("JSON summary on stderr");
    let s = &summary["packets"];
    assert_eq!(s["packets"], 8, "{s}");
    assert_eq!(s["verdicts"]["consumed"], 4 - quirks, "{s}");
    assert_eq!(s["verdicts"]["delivered"], 4, "{s}");
    let line = if quirks == 0 {
        "8 packets: 4 consumed, 4 delivered".to_string()
    } else {
        assert_eq!(s["verdicts"]["dropped"], quirks, "{s}");
        "8 packets: 2 consumed, 4 delivered, 2 dropped\n  dropped 2 at kfree_skb_reason (NOT_SPECIFIED)".to_string()
    };
    assert!(err.contains(&line), "{line:?} not in {err}");
}

pub fn check_aggregate_names_and_marks(dir: &Path) {
    let text = read(dir, "meta_agg.out");
    let (ns_a, ns_b) = (inode(dir, "a"), inode(dir, "b"));
    for seq in [1, 2] {
        let name = "ICMP 10.0.0.1 > 10.0.0.2 echo request id ";
        assert!(
            text.lines().any(|l| l.starts_with("packet 0x")
                && l.contains(name)
                && l.contains(&format!(" seq {seq}, len 84"))),
            "no packet line for request {seq}:\n{text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with("packet 0x")
                && l.contains("ICMPv6 fd00::2 > fd00::1 echo reply id ")
                && l.contains(&format!(" seq {seq}, len 104"))),
            "no packet line for IPv6 reply {seq}:\n{text}"
        );
    }
    // The crossing is marked where it happens, once per packet that crosses.
    let crossings = text
        .lines()
        .filter(|l| l.contains(&format!("netns: {ns_a} > {ns_b}")) && l.contains("dev: va > vb"))
        .count();
    assert_eq!(crossings, 4, "requests crossing a -> b:\n{text}");
    // IPv6 echo requests end as drops on Linux before 6.2 (see above).
    let quirks = text.matches("verdict: dropped at ").count();
    assert!(quirks == 0 || quirks == 2, "{text}");
    assert_eq!(
        text.matches("verdict: consumed after ").count(),
        4 - quirks,
        "{text}"
    );
    assert_eq!(
        text.matches("verdict: delivered to a socket at ").count(),
        4,
        "{text}"
    );
}

pub fn check_dnat_shows_rewrite(dir: &Path) {
    let events = json_events(dir, "dnat");
    let rewritten = by_packet(&events).iter().any(|p| {
        let daddrs: Vec<&str> = p
            .iter()
            .filter_map(|e| meta(e)?.get("daddr")?.as_str())
            .collect();
        daddrs.first() == Some(&"10.0.0.99") && daddrs.contains(&"10.0.0.2")
    });
    assert!(rewritten, "no packet seen before and after DNAT");
    let text = read(dir, "dnat_agg.out");
    assert!(text.contains("daddr: 10.0.0.99 > 10.0.0.2"), "{text}");
}

pub fn check_json_schema(dir: &Path) {
    let out = std::process::Command::new("python3")
        .arg(repo().join("tests/e2e/validate_json.py"))
        .arg(repo().join("schema/ipft.schema.json"))
        .arg(dir)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
}
