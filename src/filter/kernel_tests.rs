//! Kernel tests of packet selection: the host kernel's verifier accepts the
//! spliced translations, and the kernel runs them on synthetic packets with
//! the same verdicts as libpcap's own matcher (pcap_offline_filter) on the
//! same bytes. The harness is src/bpf/filter_test.bpf.c, a raw tracepoint
//! program (those load even on locked-down kernels) run with
//! BPF_PROG_TEST_RUN; the packet is in an array map, kernel memory that
//! bpf_probe_read_kernel reads as it reads an skb's data.

use super::cbpf::{self, CbpfInsn};
use super::pcap::{Libpcap, DLT_EN10MB, DLT_RAW};
use super::splice::splice;
use super::test_packets::{captures, ethernet, icmp, ipv4, packets, tcp, IP_A, IP_B};
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
    result: i32,
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
    /// packet `wirelen` long) through the filter for `layer` (2 or 3): what
    /// the filter returned (classic BPF's return value; 0: no match).
    fn run(
        &self,
        prog: &OwnedFd,
        layer: u32,
        packet: &[u8],
        caplen: usize,
        wirelen: usize,
    ) -> Result<u32> {
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
    ) -> Result<u32> {
        let mut frame = TestFrame {
            layer,
            caplen: caplen as u32,
            wirelen: wirelen as u32,
            bad_address,
            result: -1,
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
        // SAFETY: key and value of the map's sizes.
        let rc = unsafe {
            libbpf_sys::bpf_map_lookup_elem(
                map.as_fd().as_raw_fd(),
                (&key as *const u32).cast(),
                (&mut frame as *mut TestFrame).cast(),
            )
        };
        if rc != 0 {
            bail!(
                "reading the frame map: {}",
                std::io::Error::from_raw_os_error(-rc)
            );
        }
        if opts.retval != (frame.result != 0) as u32 {
            bail!(
                "harness returned {} for filter result {}",
                opts.retval,
                frame.result
            );
        }
        Ok(frame.result as u32)
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
                    .map(|c| libpcap.offline_filter(c, &packet[..caplen], wirelen as u32))
                    .unwrap_or(0);
                compared += 1;
                matched += (expected != 0) as usize;
                expression_matches += (expected != 0) as usize;
                if kernel != expected {
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
        ("ip", false),
        ("tcp[100] = 0x5a", false),
        ("len > 100", true),
        ("less 100", false),
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
        assert_eq!(
            verdict != 0,
            expected,
            "'{expression}' on an unreadable packet"
        );
    }
}

/// Hand-written classic programs for what libpcap's compiler rarely emits:
/// every ALU operation with K and X, scratch memory, indexed loads beyond
/// the window, X + k past 2^32, shifts of 32 or more, division by a zero X,
/// unsigned comparisons above 2^31, jumps on X. The kernel's return values
/// must equal pcap_offline_filter's exactly.
#[test]
#[ignore = "needs root: loads BPF into the host kernel"]
fn filter_kernel_runs_hand_written_programs_as_libpcap_does() {
    let c = CbpfInsn::new;
    let programs: Vec<(&str, Vec<CbpfInsn>)> = vec![
        (
            "alu with constants on len",
            vec![
                c(0x80, 0, 0, 0),
                c(0x02, 0, 0, 0),
                c(0x61, 0, 0, 0),
                c(0x87, 0, 0, 0),
                c(0x84, 0, 0, 0),
                c(0xa4, 0, 0, 0x5a5a),
                c(0x74, 0, 0, 3),
                c(0x64, 0, 0, 1),
                c(0x94, 0, 0, 7777),
                c(0x44, 0, 0, 0x100),
                c(0x54, 0, 0, 0xfff),
                c(0x14, 0, 0, 1),
                c(0x24, 0, 0, 3),
                c(0x34, 0, 0, 2),
                c(0x04, 0, 0, 5),
                c(0x16, 0, 0, 0),
            ],
        ),
        (
            "alu with x from the ip header length",
            vec![
                c(0xb1, 0, 0, 14),
                c(0x40, 0, 0, 14),
                c(0x0c, 0, 0, 0),
                c(0x14, 0, 0, 1),
                c(0x2c, 0, 0, 0),
                c(0x3c, 0, 0, 0),
                c(0x9c, 0, 0, 0),
                c(0xac, 0, 0, 0),
                c(0x4c, 0, 0, 0),
                c(0x5c, 0, 0, 0),
                c(0x6c, 0, 0, 0),
                c(0x7c, 0, 0, 0),
                c(0x1c, 0, 0, 0),
                c(0x03, 0, 0, 15),
                c(0x02, 0, 0, 14),
                c(0x61, 0, 0, 14),
                c(0x60, 0, 0, 15),
                c(0x1c, 0, 0, 0),
                c(0x16, 0, 0, 0),
            ],
        ),
        (
            "jumps on x and k",
            vec![
                c(0x30, 0, 0, 23),
                c(0x01, 0, 0, 6),
                c(0x1d, 0, 2, 0),
                c(0x28, 0, 0, 36),
                c(0x05, 0, 0, 3),
                c(0x3d, 1, 0, 0),
                c(0x06, 0, 0, 0x10),
                c(0x4d, 1, 2, 0),
                c(0x25, 1, 0, 400),
                c(0x06, 0, 0, 0x20),
                c(0x16, 0, 0, 0),
            ],
        ),
        (
            "word at x + 100 = 300",
            vec![c(0x01, 0, 0, 200), c(0x40, 0, 0, 100), c(0x16, 0, 0, 0)],
        ),
        (
            "half word at x + 50 = 150",
            vec![c(0x01, 0, 0, 100), c(0x48, 0, 0, 50), c(0x16, 0, 0, 0)],
        ),
        (
            "x + k past 2^32",
            vec![
                c(0x01, 0, 0, 0xffff_fff0),
                c(0x50, 0, 0, 0x20),
                c(0x16, 0, 0, 0),
            ],
        ),
        (
            "jge, jset, jgt x on the source address",
            vec![
                c(0x20, 0, 0, 26),
                c(0x35, 0, 1, 0x0a00_0000),
                c(0x45, 1, 0, 1),
                c(0x06, 0, 0, 0),
                c(0x01, 0, 0, 0x0a00_0001),
                c(0x2d, 0, 1, 0),
                c(0x06, 0, 0, 2),
                c(0x06, 0, 0, 3),
            ],
        ),
        (
            "unsigned above 2^31, wrapping add",
            vec![
                c(0x20, 0, 0, 30),
                c(0x25, 0, 1, 0x9000_0000),
                c(0x06, 0, 0, 1),
                c(0x00, 0, 0, 0xffff_fff0),
                c(0x04, 0, 0, 0x20),
                c(0x16, 0, 0, 0),
            ],
        ),
        (
            "shift by x of 32 or more",
            vec![
                c(0x30, 0, 0, 23),
                c(0x07, 0, 0, 0),
                c(0x00, 0, 0, 0x4500_0001),
                c(0x6c, 0, 0, 0),
                c(0x02, 0, 0, 1),
                c(0x00, 0, 0, 0x8000_0000),
                c(0x7c, 0, 0, 0),
                c(0x61, 0, 0, 1),
                c(0x0c, 0, 0, 0),
                c(0x16, 0, 0, 0),
            ],
        ),
    ];
    let libpcap = Libpcap::get().expect("libpcap for the tests (apt-get install libpcap0.8)");
    let harness = Harness::load().unwrap();
    let captures = captures(&packets());
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (name, program) in &programs {
        let filter = PacketFilter {
            expression: name.to_string(),
            l2: cbpf::translate(program).unwrap_or_else(|e| panic!("{name}: {e}")),
            l3: cbpf::reject_all(),
            l3_note: None,
        };
        let (prog, _) = harness
            .load_copy(&splice(&harness.insns, &filter).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let mut distinct = std::collections::BTreeSet::new();
        for (capture, bytes, caplen, _) in &captures {
            let kernel = harness.run(&prog, 2, bytes, *caplen, bytes.len()).unwrap();
            let expected = libpcap.offline_filter(program, &bytes[..*caplen], bytes.len() as u32);
            compared += 1;
            distinct.insert(expected);
            if kernel != expected {
                mismatches.push(format!(
                    "{name} on {capture}: kernel {kernel:#x}, libpcap {expected:#x}"
                ));
            }
        }
        eprintln!("{name}: {} distinct results", distinct.len());
    }
    eprintln!(
        "{} programs x {} captures: {compared} results compared",
        programs.len(),
        captures.len()
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
