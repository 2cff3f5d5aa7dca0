//! Kernel tests of packet selection: the host kernel's verifier accepts the
//! spliced translations, and the kernel runs them on synthetic packets with
//! the same verdicts as libpcap's own matcher (pcap_offline_filter) on the
//! same bytes. The harness is src/bpf/filter_test.bpf.c, a raw tracepoint
//! program (those load even on locked-down kernels) run with
//! BPF_PROG_TEST_RUN; the packet is in an array map, kernel memory that
//! bpf_probe_read_kernel reads as it reads an skb's data.

use super::cbpf::CbpfInsn;
use super::pcap::{Libpcap, DLT_EN10MB, DLT_RAW};
use super::splice::splice;
use super::{compile, PacketFilter};
use anyhow::{bail, Context, Result};
use libbpf_rs::{AsRawLibbpf, MapCore, Object, ObjectBuilder};
use libbpf_sys::bpf_insn;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

static FILTER_TEST_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/filter_test.bpf.o"));

const FRAME_MAX: usize = 512;

/// Mirror of `struct ipft_test_frame` in src/bpf/filter_test.bpf.c.
#[repr(C)]
struct TestFrame {
    layer: u32,
    caplen: u32,
    wirelen: u32,
    bad_address: u32,
    bytes: [u8; FRAME_MAX],
}

/// The harness object loaded by libbpf, and its program's final instructions.
struct Harness {
    object: Object,
    insns: Vec<bpf_insn>,
}

impl Harness {
    fn load() -> Result<Self> {
        let object = ObjectBuilder::default()
            .open_memory(FILTER_TEST_OBJ)?
            .load()
            .context("loading the filter test harness")?;
        let prog = object
            .progs()
            .find(|p| p.name() == "ipft_filter_test")
            .context("no ipft_filter_test program")?;
        let ptr = prog.as_libbpf_object().as_ptr();
        // SAFETY: a loaded program; libbpf keeps its instructions until the
        // object is closed; copied here.
        let insns = unsafe {
            let p = libbpf_sys::bpf_program__insns(ptr);
            let n = libbpf_sys::bpf_program__insn_cnt(ptr) as usize;
            std::slice::from_raw_parts(p, n).to_vec()
        };
        Ok(Harness { object, insns })
    }

    /// Loads a copy of the harness with `insns`: the program and how many
    /// instructions the verifier processed; the verifier's log on refusal.
    fn load_copy(&self, insns: &[bpf_insn]) -> Result<(OwnedFd, u64)> {
        let (fd, stats) = load_raw_tp(insns, 4); // BPF_LOG_STATS
        if fd >= 0 {
            // SAFETY: a fresh descriptor we now own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let processed = stats
                .split_once("processed ")
                .and_then(|(_, rest)| rest.split(' ').next()?.parse().ok())
                .unwrap_or(0);
            return Ok((fd, processed));
        }
        let (fd, log) = load_raw_tp(insns, 1);
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        bail!(
            "the verifier refused the spliced harness: {}\n{}",
            std::io::Error::from_raw_os_error(-fd),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    /// Runs program `prog` on `packet` (`caplen` of its bytes captured, the
    /// packet `wirelen` long) through the filter for `layer` (2 or 3).
    fn run(
        &self,
        prog: &OwnedFd,
        layer: u32,
        packet: &[u8],
        caplen: usize,
        wirelen: usize,
    ) -> Result<i32> {
        self.run_at(prog, layer, packet, caplen, wirelen, 0)
    }

    /// As [`Harness::run`], the filter given `bad_address` (when not 0)
    /// instead of the packet's address.
    fn run_at(
        &self,
        prog: &OwnedFd,
        layer: u32,
        packet: &[u8],
        caplen: usize,
        wirelen: usize,
        bad_address: u32,
    ) -> Result<i32> {
        let mut frame = TestFrame {
            layer,
            caplen: caplen as u32,
            wirelen: wirelen as u32,
            bad_address,
            bytes: [0; FRAME_MAX],
        };
        frame.bytes[..packet.len()].copy_from_slice(packet);
        let map = self
            .object
            .maps()
            .find(|m| m.name() == "ipft_test_frames")
            .context("no ipft_test_frames map")?;
        let key = 0u32;
        // SAFETY: key and value of the map's sizes.
        let rc = unsafe {
            libbpf_sys::bpf_map_update_elem(
                map.as_fd().as_raw_fd(),
                (&key as *const u32).cast(),
                (&frame as *const TestFrame).cast(),
                0,
            )
        };
        if rc != 0 {
            bail!(
                "updating the frame map: {}",
                std::io::Error::from_raw_os_error(-rc)
            );
        }
        let ctx = [0u64; 1];
        let mut opts = libbpf_sys::bpf_test_run_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
            ctx_in: ctx.as_ptr().cast(),
            ctx_size_in: std::mem::size_of_val(&ctx) as u32,
            ..Default::default()
        };
        // SAFETY: valid program fd and options.
        let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(prog.as_raw_fd(), &mut opts) };
        if rc != 0 {
            bail!(
                "BPF_PROG_TEST_RUN: {}",
                std::io::Error::from_raw_os_error(-rc)
            );
        }
        Ok(opts.retval as i32)
    }
}

/// bpf_prog_load of a raw tracepoint program: fd or -errno, and the log.
fn load_raw_tp(insns: &[bpf_insn], log_level: u32) -> (i32, String) {
    let mut log = vec![0u8; 1 << 22];
    let mut opts = libbpf_sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as _,
        log_buf: log.as_mut_ptr().cast(),
        log_size: log.len() as _,
        log_level,
        ..Default::default()
    };
    // SAFETY: valid name, license, instructions, options and log buffer.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_RAW_TRACEPOINT,
            c"ipft_filter_test".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    (fd, String::from_utf8_lossy(&log[..end]).into_owned())
}

/// A test packet: its bytes from the Ethernet header, and where the network
/// header starts (None: no IP).
struct Packet {
    name: String,
    bytes: Vec<u8>,
    l3_at: usize,
}

const MAC_A: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const MAC_B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
const IP_A: [u8; 4] = [10, 0, 0, 1];
const IP_B: [u8; 4] = [10, 0, 0, 2];
const IP6_A: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const IP6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn ethernet(ethertype: u16, vlan: Option<u16>, payload: &[u8]) -> (Vec<u8>, usize) {
    let mut f = Vec::new();
    f.extend(MAC_B);
    f.extend(MAC_A);
    if let Some(id) = vlan {
        f.extend(0x8100u16.to_be_bytes());
        f.extend(id.to_be_bytes());
    }
    f.extend(ethertype.to_be_bytes());
    let l3_at = f.len();
    f.extend(payload);
    (f, l3_at)
}

/// IPv4 header (with `options` words of options) and payload.
fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], options: usize, payload: &[u8]) -> Vec<u8> {
    let header = 20 + 4 * options;
    let mut p = vec![0x40 | (header / 4) as u8, 0];
    p.extend(((header + payload.len()) as u16).to_be_bytes());
    p.extend([0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0]);
    p.extend(src);
    p.extend(dst);
    p.extend(std::iter::repeat_n(1u8, 4 * options)); // NOPs
    p.extend(payload);
    p
}

/// TTLs of 63 and 65 make `ip[8] - 64` and `ip[8] - 63` zero or not.
fn with_ttl(mut ipv4: Vec<u8>, ttl: u8) -> Vec<u8> {
    ipv4[8] = ttl;
    ipv4
}

fn ipv6(next: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend((payload.len() as u16).to_be_bytes());
    p.extend([next, 64]);
    p.extend(src);
    p.extend(dst);
    p.extend(payload);
    p
}

fn tcp(sport: u16, dport: u16, flags: u8, data: usize) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(sport.to_be_bytes());
    t.extend(dport.to_be_bytes());
    t.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend(std::iter::repeat_n(0x5a, data));
    t
}

fn udp(sport: u16, dport: u16, data: usize) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend(((8 + data) as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend(std::iter::repeat_n(0xa5, data));
    u
}

fn icmp(kind: u8, data: usize) -> Vec<u8> {
    let mut i = vec![kind, 0, 0, 0, 0, 1, 0, 1];
    i.extend(std::iter::repeat_n(0x42, data));
    i
}

fn arp() -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend(MAC_A);
    a.extend(IP_A);
    a.extend([0; 6]);
    a.extend(IP_B);
    a
}

fn packets() -> Vec<Packet> {
    let ip = |payload: Vec<u8>| ethernet(0x0800, None, &payload);
    let ip6 = |payload: Vec<u8>| ethernet(0x86dd, None, &payload);
    let cases: Vec<(&str, (Vec<u8>, usize))> = vec![
        (
            "icmp echo 10.0.0.1>10.0.0.2",
            ip(ipv4(1, IP_A, IP_B, 0, &icmp(8, 56))),
        ),
        (
            "icmp reply 10.0.0.2>10.0.0.1 ttl 65",
            ip(with_ttl(ipv4(1, IP_B, IP_A, 0, &icmp(0, 56)), 65)),
        ),
        (
            "icmp echo 10.0.0.1>10.0.0.3",
            ip(ipv4(1, IP_A, [10, 0, 0, 3], 0, &icmp(8, 8))),
        ),
        (
            "tcp syn :443",
            ip(ipv4(6, IP_A, IP_B, 0, &tcp(40000, 443, 0x02, 0))),
        ),
        (
            "tcp ack 443: 260 bytes",
            ip(ipv4(6, IP_B, IP_A, 0, &tcp(443, 40000, 0x10, 200))),
        ),
        (
            "tcp syn :80 ip options",
            ip(ipv4(6, IP_A, IP_B, 2, &tcp(1234, 80, 0x02, 0))),
        ),
        (
            "tcp :443 ip options 300 bytes",
            ip(ipv4(6, IP_A, IP_B, 10, &tcp(1234, 443, 0x18, 200))),
        ),
        ("udp :53", ip(ipv4(17, IP_A, IP_B, 0, &udp(5353, 53, 30)))),
        (
            "udp 53: big ttl 63",
            ip(with_ttl(ipv4(17, IP_B, IP_A, 0, &udp(53, 5353, 400)), 63)),
        ),
        ("ip fragment", {
            let mut p = ipv4(17, IP_A, IP_B, 0, &udp(5353, 53, 8));
            p[6] = 0x20; // more fragments, offset 0x100
            p[7] = 0x20;
            ip(p)
        }),
        (
            "ipv6 tcp syn :443",
            ip6(ipv6(6, IP6_A, IP6_B, &tcp(40000, 443, 0x02, 0))),
        ),
        (
            "ipv6 tcp 200 bytes",
            ip6(ipv6(6, IP6_B, IP6_A, &tcp(22, 40000, 0x18, 200))),
        ),
        (
            "ipv6 icmpv6 echo",
            ip6(ipv6(58, IP6_A, IP6_B, &icmp(128, 16))),
        ),
        (
            "ipv6 udp :53",
            ip6(ipv6(17, IP6_A, IP6_B, &udp(5353, 53, 20))),
        ),
        ("arp request", ethernet(0x0806, None, &arp())),
        (
            "vlan 10 icmp",
            ethernet(0x0800, Some(10), &ipv4(1, IP_A, IP_B, 0, &icmp(8, 56))),
        ),
        (
            "vlan 20 tcp :443",
            ethernet(
                0x0800,
                Some(20),
                &ipv4(6, IP_A, IP_B, 0, &tcp(1, 443, 2, 0)),
            ),
        ),
        (
            "vlan 10 ipv6 tcp",
            ethernet(0x86dd, Some(10), &ipv6(6, IP6_A, IP6_B, &tcp(1, 443, 2, 0))),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, (bytes, l3_at))| Packet {
            name: name.into(),
            bytes,
            l3_at,
        })
        .collect()
}

/// Every packet whole, and cut short: captured bytes fewer than the wire
/// length (as when the skb's linear data ends early), down to nothing.
fn captures(packets: &[Packet]) -> Vec<(String, Vec<u8>, usize, usize)> {
    let mut out = Vec::new();
    for p in packets {
        out.push((p.name.clone(), p.bytes.clone(), p.bytes.len(), p.l3_at));
        for cut in [0, 10, 14, 20, 30, 40, 60, 130] {
            if cut < p.bytes.len() {
                out.push((
                    format!("{} cut at {cut}", p.name),
                    p.bytes.clone(),
                    cut,
                    p.l3_at,
                ));
            }
        }
    }
    out
}

const EXPRESSIONS: &[&str] = &[
    "host 10.0.0.2 and icmp",
    "tcp port 443",
    "udp and dst port 53",
    "ip6 and tcp",
    "arp",
    "vlan 10 and ip",
    "ether proto 0x0800",
    "tcp[tcpflags] & tcp-syn != 0",
    "len > 100",
    "icmp[icmptype] = icmp-echo",
    "icmp6 and ip6[40] = 128",
    "ether host 00:11:22:33:44:55",
    "net 10.0.0.0/30 and not icmp",
    "ip6 host 2001:db8::2",
    "portrange 400-500 or port 22",
    "tcp[100] = 0x5a",
    "udp[300:2] = 0xa5a5",
    "ip[150] = 0x5a",
    "less 80",
    "ip[2:2] % (ip[8] - 64) = 0",
    "ip[2:2] / (ip[8] - 63) > 10",
    "(ip[0] << (ip[9] + 20)) != 0",
    "ip[6:2] & 0x1fff != 0",
    "vlan and tcp port 443",
    "not ip and not ip6",
    "ip and ip[0] & 0xf > 5",
    "(tcp port 80 or tcp port 443 or udp port 53 or icmp or icmp6 or arp) \
     and not (host 192.168.1.1 or net 172.16.0.0/12 or ip6 net fe80::/10)",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn and dst portrange 1-1024",
];

/// Layer (2 or 3), bytes, caplen, wirelen, libpcap's program for that layer.
type Layer<'a> = (u32, &'a [u8], usize, usize, Option<&'a [CbpfInsn]>);

/// The filter's verdict on every layer, compared with libpcap's.
#[test]
#[ignore = "needs root: loads BPF into the host kernel"]
fn filter_kernel_verdicts_match_libpcap() {
    let libpcap = Libpcap::get().expect("libpcap for the tests (apt-get install libpcap0.8)");
    let harness = Harness::load().unwrap();
    let captures = captures(&packets());
    let (mut compared, mut matched) = (0, 0);
    let mut mismatches = Vec::new();
    for expression in EXPRESSIONS {
        let filter = compile(expression).unwrap_or_else(|e| panic!("{e}"));
        let insns = splice(&harness.insns, &filter).unwrap();
        let (prog, processed) = harness
            .load_copy(&insns)
            .unwrap_or_else(|e| panic!("'{expression}': {e:#}"));
        let reference = |linktype| libpcap.compile(expression, linktype).ok();
        let (l2_ref, l3_ref) = (reference(DLT_EN10MB).unwrap(), reference(DLT_RAW));
        assert_eq!(l3_ref.is_none(), filter.l3_note.is_some(), "{expression}");
        let mut expression_matches = 0;
        for (name, bytes, caplen, l3_at) in &captures {
            let wirelen = bytes.len();
            // The frame from its Ethernet header, and from its network header.
            let l2: Layer = (2, bytes, *caplen, wirelen, Some(&l2_ref));
            let l3: Layer = (
                3,
                &bytes[*l3_at..],
                caplen.saturating_sub(*l3_at),
                wirelen - l3_at,
                l3_ref.as_deref(),
            );
            for (layer, packet, caplen, wirelen, classic) in [l2, l3] {
                let kernel = harness.run(&prog, layer, packet, caplen, wirelen).unwrap();
                // No raw-IP program: the l3 filter must select nothing.
                let expected = classic
                    .map(|c| libpcap.offline_filter(c, &packet[..caplen], wirelen as u32) != 0)
                    .unwrap_or(false);
                compared += 1;
                matched += expected as usize;
                expression_matches += expected as usize;
                if (kernel != 0) != expected {
                    mismatches.push(format!(
                        "'{expression}' l{layer} on {name}: kernel {kernel}, libpcap {expected}"
                    ));
                }
            }
        }
        assert!(
            expression_matches > 0,
            "'{expression}' matched no test packet"
        );
        print_counts(expression, &filter, processed);
    }
    eprintln!(
        "{} expressions x {} captures x 2 layers: {compared} verdicts compared, {matched} matches",
        EXPRESSIONS.len(),
        captures.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

fn print_counts(expression: &str, filter: &PacketFilter, processed: u64) {
    eprintln!(
        "{:>5} {:>5} {:>7}  eBPF instructions (l2, l3), verifier steps for '{expression}'",
        filter.l2.len(),
        filter.l3.len(),
        processed
    );
}

/// A placeholder that was never spliced selects nothing.
#[test]
#[ignore = "needs root: loads BPF into the host kernel"]
fn filter_unspliced_placeholder_selects_nothing() {
    let harness = Harness::load().unwrap();
    let (prog, _) = harness.load_copy(&harness.insns).unwrap();
    let packet = ethernet(0x0800, None, &ipv4(1, IP_A, IP_B, 0, &icmp(8, 56))).0;
    for layer in [2, 3] {
        let verdict = harness
            .run(&prog, layer, &packet, packet.len(), packet.len())
            .unwrap();
        assert_eq!(verdict, 0, "layer {layer}");
    }
}

/// A packet whose bytes cannot be read (bpf_probe_read_kernel fails): loads
/// end the run with "no match", as out-of-bounds loads do in classic BPF;
/// tests of the length alone still work.
#[test]
#[ignore = "needs root: loads BPF into the host kernel"]
fn filter_unreadable_packet_fails_loads_only() {
    let harness = Harness::load().unwrap();
    let packet = ethernet(0x0800, None, &ipv4(6, IP_A, IP_B, 0, &tcp(1, 443, 2, 200))).0;
    // A user-space address: bpf_probe_read_kernel refuses it.
    let unreadable = 0x1000;
    for (expression, expected) in [
        ("ip", 0),
        ("tcp[100] = 0x5a", 0),
        ("len > 100", 1),
        ("less 100", 0),
    ] {
        let filter = compile(expression).unwrap();
        let (prog, _) = harness
            .load_copy(&splice(&harness.insns, &filter).unwrap())
            .unwrap();
        let readable = harness
            .run(&prog, 2, &packet, packet.len(), packet.len())
            .unwrap();
        assert_eq!(
            readable != 0,
            !expression.starts_with("less"),
            "{expression}"
        );
        let verdict = harness
            .run_at(&prog, 2, &packet, packet.len(), packet.len(), unreadable)
            .unwrap();
        assert_eq!(verdict, expected, "'{expression}' on an unreadable packet");
    }
}
