//! Writes captures of made-up events into memory and reads them back with
//! pcap-file's own reader: blocks, interfaces and link types, timestamps,
//! lengths, comments and verdicts. (tshark reads the guests' captures in
//! tests/e2e/outputs.rs.)

use super::*;
use crate::event::{Captured, META_ICMP};
use pcap_file::pcapng::{Block, PcapNgReader};

/// 2023-11-14 22:13:20 UTC, in ns: what CLOCK_MONOTONIC 0 is in these tests.
const BOOT: i64 = 1_700_000_000_000_000_000;

fn func(name: &'static str, module: &'static str) -> Func<'static> {
    Func {
        name,
        module,
        id: 1,
        ret: None,
    }
}

fn meta(netns: u32, dev: Option<&str>) -> Box<Meta> {
    let mut m = Meta {
        netns,
        known: META_NETNS | META_ICMP,
        ..Meta::default()
    };
    if let Some(dev) = dev {
        m.ifname[..dev.len()].copy_from_slice(dev.as_bytes());
        m.known |= META_DEV;
    }
    Box::new(m)
}

/// An IPv4 ICMP echo request 10.0.0.1 > 10.0.0.2 (84 bytes), as raw IP.
fn icmp_echo() -> Vec<u8> {
    let mut ip = vec![
        0x45, 0, 0, 84, 0, 1, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip.extend([8, 0, 0, 0, 0, 7, 0, 1]);
    ip.resize(84, 0xab);
    ip
}

/// The same packet behind an Ethernet header.
fn ethernet(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(ip);
    f
}

/// An entry event at `tstamp` with the first `snaplen` of `bytes`.
fn ev(
    packet_id: u64,
    cpu: u32,
    tstamp: u64,
    meta: Option<Box<Meta>>,
    link: Link,
    bytes: &[u8],
    snaplen: usize,
) -> Event {
    Event {
        packet_id,
        processor_id: cpu,
        tstamp,
        meta,
        packet: Some(Box::new(Captured {
            link,
            orig_len: bytes.len() as u32,
            bytes: bytes[..bytes.len().min(snaplen)].to_vec(),
        })),
        ..Event::default()
    }
}

fn writer() -> Pcapng<Vec<u8>> {
    Pcapng::new(Vec::new(), 64, WallClock::with_offset(BOOT)).unwrap()
}

/// The bytes written, once finished.
fn finish(mut out: Pcapng<Vec<u8>>) -> (Vec<u8>, Option<String>) {
    out.finish().unwrap();
    let summary = out.summary();
    let bytes = out.writer.into_inner().into_inner().unwrap();
    (bytes, summary)
}

/// (link type, if_name, if_description, if_tsresol) of an interface block.
type Iface = (DataLink, String, String, Option<u8>);
/// (interface id, timestamp in ns since the epoch, captured bytes, original
/// length, comment) of a frame.
type Frame = (u32, u128, Vec<u8>, u32, String);

/// Sections (their user application and interfaces) and frames, read back
/// by pcap-file's reader.
fn read_back(bytes: &[u8]) -> (Vec<(String, Vec<Iface>)>, Vec<Frame>) {
    let mut reader = PcapNgReader::new(bytes).expect("a pcap-ng section header");
    let mut sections = Vec::new();
    let mut frames = Vec::new();
    let first = reader.section().clone();
    let appl = |s: &SectionHeaderBlock| {
        s.options
            .iter()
            .find_map(|o| match o {
                SectionHeaderOption::UserApplication(a) => Some(a.to_string()),
                _ => None,
            })
            .unwrap_or_default()
    };
    sections.push((appl(&first), Vec::new()));
    while let Some(block) = reader.next_block() {
        match block.expect("a valid block") {
            Block::SectionHeader(s) => sections.push((appl(&s), Vec::new())),
            Block::InterfaceDescription(i) => {
                let (mut name, mut descr, mut tsresol) = (String::new(), String::new(), None);
                for o in &i.options {
                    match o {
                        InterfaceDescriptionOption::IfName(n) => name = n.to_string(),
                        InterfaceDescriptionOption::IfDescription(d) => descr = d.to_string(),
                        InterfaceDescriptionOption::IfTsResol(r) => tsresol = Some(*r),
                        _ => {}
                    }
                }
                assert_eq!(i.snaplen, 64);
                sections
                    .last_mut()
                    .unwrap()
                    .1
                    .push((i.linktype, name, descr, tsresol));
            }
            Block::EnhancedPacket(p) => {
                let comments: Vec<String> = p
                    .options
                    .iter()
                    .filter_map(|o| match o {
                        EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                        _ => None,
                    })
                    .collect();
                assert_eq!(comments.len(), 1, "one comment per frame");
                frames.push((
                    p.interface_id,
                    p.timestamp.as_nanos(),
                    p.data.to_vec(),
                    p.original_len,
                    comments[0].clone(),
                ));
            }
            other => panic!("unexpected block {other:?}"),
        }
    }
    (sections, frames)
}

#[test]
fn a_journey_reads_back_with_interfaces_timestamps_and_comments() {
    let ip = icmp_echo();
    let eth = ethernet(&ip);
    let mut out = writer();
    let ip_output = func("ip_output", "vmlinux");
    let veth = func("veth_xmit", "veth");
    let ip_rcv = func("ip_rcv", "vmlinux");
    // Before the MAC header is set: raw IP, no device yet.
    out.on_event(
        &ev(3, 0, 1_000, Some(meta(11, None)), Link::RawIp, &ip, 64),
        ip_output,
        vec![],
    )
    .unwrap();
    out.on_event(
        &ev(
            3,
            0,
            2_500,
            Some(meta(11, Some("va"))),
            Link::Ethernet,
            &eth,
            64,
        ),
        veth,
        vec![],
    )
    .unwrap();
    // A function_graph return carries no bytes: no frame.
    let ret = Event {
        packet_id: 3,
        tstamp: 2_600,
        is_return: 1,
        ..Event::default()
    };
    out.on_event(&ret, veth, vec![]).unwrap();
    let fields = vec![("len".into(), "98".to_string())];
    out.on_event(
        &ev(
            3,
            1,
            4_000,
            Some(meta(22, Some("vb"))),
            Link::Ethernet,
            &eth,
            64,
        ),
        ip_rcv,
        fields,
    )
    .unwrap();
    // The same device again: its interface is reused.
    out.on_event(
        &ev(
            4,
            1,
            5_000,
            Some(meta(22, Some("vb"))),
            Link::Ethernet,
            &eth,
            64,
        ),
        ip_rcv,
        vec![],
    )
    .unwrap();
    assert_eq!(out.count(), 5);
    let (bytes, summary) = finish(out);
    let (sections, frames) = read_back(&bytes);

    assert_eq!(sections.len(), 1);
    let (appl, ifaces) = &sections[0];
    assert!(appl.starts_with("ipft "), "{appl}");
    let iface =
        |link, name: &str, netns: &str| (link, name.to_string(), netns.to_string(), Some(9));
    assert_eq!(
        ifaces,
        &[
            iface(DataLink::RAW, "(no device)", "netns 11"),
            iface(DataLink::ETHERNET, "va", "netns 11"),
            iface(DataLink::ETHERNET, "vb", "netns 22"),
        ]
    );
    let ns = |t: u64| BOOT as u128 + t as u128;
    assert_eq!(
        frames,
        vec![
            (
                0,
                ns(1_000),
                ip[..64].to_vec(),
                84,
                "ip_output: packet 0x3, cpu 0, netns 11".into()
            ),
            (
                1,
                ns(2_500),
                eth[..64].to_vec(),
                98,
                "veth_xmit [veth]: packet 0x3, cpu 0, netns 11, dev va".into()
            ),
            (
                2,
                ns(4_000),
                eth[..64].to_vec(),
                98,
                "ip_rcv: packet 0x3, cpu 1, netns 22, dev vb, len: 98".into()
            ),
            (
                2,
                ns(5_000),
                eth[..64].to_vec(),
                98,
                "ip_rcv: packet 0x4, cpu 1, netns 22, dev vb".into()
            ),
        ]
    );
    assert_eq!(
        summary.unwrap(),
        "4 frames written; 1 events without packet bytes are not in the capture (function_graph returns, or no network header yet)"
    );
}

#[test]
fn a_verdict_joins_the_comment_of_the_frame_that_ended_the_packet() {
    let eth = ethernet(&icmp_echo());
    let mut out = writer();
    let consumed = Verdict {
        kind: Kind::Consumed,
        function: "icmp_rcv".into(),
        reason: None,
        netns: Some(22),
        ifname: Some("vb".into()),
        event: 0,
        stack: None,
    };
    out.on_event(
        &ev(
            3,
            0,
            10,
            Some(meta(22, Some("vb"))),
            Link::Ethernet,
            &eth,
            64,
        ),
        func("icmp_rcv", "vmlinux"),
        vec![],
    )
    .unwrap();
    out.on_event(
        &ev(
            3,
            0,
            20,
            Some(meta(22, Some("vb"))),
            Link::Ethernet,
            &eth,
            64,
        ),
        func("kfree_skbmem", "vmlinux"),
        vec![],
    )
    .unwrap();
    out.on_verdict(3, &consumed).unwrap();
    // Another packet's event, then a verdict for a packet whose last frame
    // is written already: it has nowhere to go.
    out.on_event(
        &ev(
            4,
            0,
            30,
            Some(meta(22, Some("vb"))),
            Link::Ethernet,
            &eth,
            64,
        ),
        func("ip_rcv", "vmlinux"),
        vec![],
    )
    .unwrap();
    out.on_verdict(3, &consumed).unwrap();
    // Packets still followed at exit: in flight, no verdict in the capture.
    let in_flight = Verdict {
        kind: Kind::InFlight,
        function: "ip_rcv".into(),
        ..consumed.clone()
    };
    out.on_verdict(4, &in_flight).unwrap();
    let (bytes, summary) = finish(out);
    let (_, frames) = read_back(&bytes);
    let comments: Vec<&str> = frames.iter().map(|f| f.4.as_str()).collect();
    assert_eq!(
        comments,
        [
            "icmp_rcv: packet 0x3, cpu 0, netns 22, dev vb",
            "kfree_skbmem: packet 0x3, cpu 0, netns 22, dev vb; verdict: consumed after icmp_rcv in netns 22 dev vb",
            "ip_rcv: packet 0x4, cpu 0, netns 22, dev vb",
        ]
    );
    assert_eq!(summary.unwrap(), "3 frames written");
}

#[test]
fn without_metadata_frames_go_to_one_interface_per_link_type() {
    let ip = icmp_echo();
    let mut out = writer();
    for (t, link, bytes) in [
        (1, Link::RawIp, ip.clone()),
        (2, Link::Ethernet, ethernet(&ip)),
        (3, Link::RawIp, ip.clone()),
    ] {
        out.on_event(
            &ev(9, 0, t, None, link, &bytes, 64),
            func("f", "vmlinux"),
            vec![],
        )
        .unwrap();
    }
    let (bytes, _) = finish(out);
    let (sections, frames) = read_back(&bytes);
    let names: Vec<(DataLink, &str, &str)> = sections[0]
        .1
        .iter()
        .map(|i| (i.0, i.1.as_str(), i.2.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (DataLink::RAW, "(no device)", "netns unknown"),
            (DataLink::ETHERNET, "(no device)", "netns unknown")
        ]
    );
    let ids: Vec<u32> = frames.iter().map(|f| f.0).collect();
    assert_eq!(ids, [0, 1, 0]);
    assert_eq!(frames[0].4, "f: packet 0x9, cpu 0");
}

#[test]
fn past_the_interface_limit_a_new_section_describes_its_own() {
    let eth = ethernet(&icmp_echo());
    let mut out = writer();
    // One more namespace than a section describes, then the first again.
    let netns: Vec<u32> = (0..=MAX_INTERFACES as u32).chain([0]).collect();
    for (i, &n) in netns.iter().enumerate() {
        let e = ev(
            1,
            0,
            i as u64,
            Some(meta(n, Some("lo"))),
            Link::Ethernet,
            &eth,
            64,
        );
        out.on_event(&e, func("ip_rcv", "vmlinux"), vec![]).unwrap();
    }
    let (bytes, _) = finish(out);
    let (sections, frames) = read_back(&bytes);
    assert_eq!(sections.len(), 2);
    assert_eq!(sections[0].1.len(), MAX_INTERFACES);
    // The second section: the namespace that did not fit, then the first again.
    let second: Vec<&str> = sections[1].1.iter().map(|i| i.2.as_str()).collect();
    assert_eq!(
        second,
        [format!("netns {MAX_INTERFACES}").as_str(), "netns 0"]
    );
    assert_eq!(frames.len(), netns.len());
    let ids: Vec<u32> = frames[MAX_INTERFACES - 1..].iter().map(|f| f.0).collect();
    assert_eq!(ids, [MAX_INTERFACES as u32 - 1, 0, 1]);
}

#[test]
fn each_read_of_the_buffer_reaches_the_file() {
    let eth = ethernet(&icmp_echo());
    let mut out = writer();
    let e = ev(
        1,
        0,
        10,
        Some(meta(22, Some("vb"))),
        Link::Ethernet,
        &eth,
        64,
    );
    out.on_event(&e, func("ip_rcv", "vmlinux"), vec![]).unwrap();
    let file = |out: &Pcapng<Vec<u8>>| out.writer.get_ref().get_ref().clone();
    // Held for its verdict, and buffered, until the read is over.
    assert!(file(&out).is_empty());
    Output::flush(&mut out).unwrap();
    assert_eq!(read_back(&file(&out)).1.len(), 1);
}
