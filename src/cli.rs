//! The command line (SPEC.md, "Command line") and its validation.
//!
//! Every string is parsed here, once: marks become numbers, regexes are
//! compiled, enumerated options become enums. Nothing downstream re-parses
//! user input. Errors name the bad value and say what to do.

use clap::{Parser, ValueEnum};
use regex::Regex;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "ipft",
    version = crate::VERSION,
    about = "Trace the journey of packets through the Linux kernel",
    after_help = "Examples:\n  sudo ipft 'host 10.0.0.2 and icmp'     # then ping 10.0.0.2, Ctrl-C ipft\n  sudo ipft -b kprobe tcp port 443\n  sudo ipft -m 0xdeadbeef                # packets marked by iptables/nft\n  sudo ipft --filter-netns /run/netns/b --filter-ifname vb"
)]
pub struct Cli {
    /// pcap-filter expression selecting the packets to trace, in tcpdump syntax
    /// (words are joined with spaces); needs libpcap at run time
    #[arg(value_name = "EXPRESSION")]
    pub expression: Vec<String>,

    /// Trace packets whose skb->mark matches (decimal, 0x hex or 0 octal)
    #[arg(short = 'm', long, value_name = "NUM", value_parser = parse_u32)]
    pub mark: Option<u32>,

    /// Compare only these bits of the mark: (skb->mark & mask) == (mark & mask)
    #[arg(long, value_name = "NUM", value_parser = parse_u32, default_value = "0xffffffff")]
    pub mask: u32,

    /// Trace packets in this network namespace: an inode number, or a path
    /// such as /proc/PID/ns/net or /run/netns/NAME
    #[arg(long, value_name = "NETNS")]
    pub filter_netns: Option<String>,

    /// Trace packets on this device (resolved in --filter-netns, else in
    /// ipft's own namespace)
    #[arg(long, value_name = "NAME")]
    pub filter_ifname: Option<String>,

    /// Do not follow selected packets: every event must match the selectors
    /// itself, and the packet id is the skb's address (ipftrace2's behaviour)
    #[arg(long)]
    pub no_track: bool,

    /// Do not read packet metadata (addresses, ports, namespace, device):
    /// smaller events, and no packet line or verdict details
    #[arg(long)]
    pub no_meta: bool,

    /// Packets tracked at once, at most (more are counted and reported)
    #[arg(long, value_name = "N", value_parser = parse_positive, default_value = "65536")]
    pub track_max: u32,

    /// Forget a tracked packet not seen for this many seconds (counted and
    /// reported)
    #[arg(long, value_name = "SECONDS", value_parser = parse_positive, default_value = "10")]
    pub track_timeout: u32,

    /// How to attach (default: the best the kernel supports)
    #[arg(short = 'b', long, value_enum, value_name = "BACKEND")]
    pub backend: Option<BackendKind>,

    /// What to record
    #[arg(
        short = 't',
        long,
        value_enum,
        value_name = "TRACER",
        default_value = "function"
    )]
    pub tracer: TracerKind,

    /// Output format
    #[arg(
        short = 'o',
        long,
        value_enum,
        value_name = "FORMAT",
        default_value = "aggregate"
    )]
    pub output: OutputKind,

    /// Write the output to FILE instead of stdout ("-": stdout); needed by
    /// -o perfetto and -o pcapng, which are binary
    #[arg(short = 'w', long, value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Packet bytes captured per event for -o pcapng, from the MAC header
    /// where the packet has one, else from the network header (default 128,
    /// at most 256)
    #[arg(long, value_name = "N", value_parser = parse_u32)]
    pub snaplen: Option<u32>,

    /// Trace only functions whose name matches RE (unanchored)
    #[arg(short = 'r', long, value_name = "RE", value_parser = parse_regex)]
    pub regex: Option<Regex>,

    /// Trace only functions whose module matches RE ("vmlinux" for the core kernel)
    #[arg(long, value_name = "RE", value_parser = parse_regex)]
    pub module_regex: Option<Regex>,

    /// Capture the kernel stack at the traced functions whose name matches RE
    /// (the skb drop functions always have theirs)
    #[arg(long, value_name = "RE", value_parser = parse_regex)]
    pub stack: Option<Regex>,

    /// List the functions that would be traced and exit
    #[arg(short = 'l', long)]
    pub list: bool,

    /// Extension: .c (compiled with clang), .o (BPF object with BTF) or .lua
    #[arg(short = 'e', long, value_name = "PATH")]
    pub extension: Option<PathBuf>,

    /// Lua extension (same as -e x.lua)
    #[arg(short = 's', long, value_name = "PATH")]
    pub script: Option<PathBuf>,

    /// Print an extension template to stdout and exit
    #[arg(long, value_enum, value_name = "TARGET")]
    pub gen: Option<GenTarget>,

    /// Debug messages, libbpf logs, attach statistics
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Event buffer size per CPU, in pages of 4 KiB (a power of two)
    #[arg(long, value_name = "N", value_parser = parse_page_count, default_value = "64")]
    pub perf_page_count: u32,

    /// Sample period of the event output
    #[arg(long, value_name = "N", value_parser = parse_positive, default_value = "1")]
    pub perf_sample_period: u32,

    /// Wake the reader every N events
    #[arg(long, value_name = "N", value_parser = parse_positive, default_value = "1")]
    pub perf_wakeup_events: u32,

    /// Do not raise RLIMIT_MEMLOCK / RLIMIT_NOFILE
    #[arg(long)]
    pub no_set_rlimit: bool,

    /// Do not expedite RCU grace periods while detaching kprobes
    /// (ipft sets /sys/kernel/rcu_expedited for that moment only)
    #[arg(long)]
    pub no_rcu_expedite: bool,

    /// Detach in the foreground even on a terminal: exit only once every
    /// probe is removed (without a terminal ipft always does)
    #[arg(long)]
    pub wait_detach: bool,

    /// Once tracing is live, accept TCP connections on 127.0.0.1 (readiness probe)
    #[arg(long)]
    pub enable_probe_server: bool,

    /// Port of the probe server
    #[arg(long, value_name = "N", default_value = "13720")]
    pub probe_server_port: u16,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    Kprobe,
    Ftrace,
    #[value(name = "kprobe-multi")]
    KprobeMulti,
    Tracepoint,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Kprobe => "kprobe",
            BackendKind::Ftrace => "ftrace",
            BackendKind::KprobeMulti => "kprobe-multi",
            BackendKind::Tracepoint => "tracepoint",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum TracerKind {
    Function,
    #[value(name = "function_graph")]
    FunctionGraph,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputKind {
    Aggregate,
    Json,
    // Perfetto trace (protobuf), for ui.perfetto.dev
    Perfetto,
    // pcap-ng capture of the packet at every event, for Wireshark
    Pcapng,
}

impl OutputKind {
    pub fn name(self) -> &'static str {
        match self {
            OutputKind::Aggregate => "aggregate",
            OutputKind::Json => "json",
            OutputKind::Perfetto => "perfetto",
            OutputKind::Pcapng => "pcapng",
        }
    }

    /// Binary formats: never to a terminal.
    pub fn is_binary(self) -> bool {
        matches!(self, OutputKind::Perfetto | OutputKind::Pcapng)
    }
}

/// Packet bytes per event of -o pcapng when --snaplen is not given.
pub const DEFAULT_SNAPLEN: u32 = 128;

impl Cli {
    /// Combinations of options that cannot work, refused like a bad value.
    /// `snaplen_max`: the most packet bytes one event carries
    /// (src/event.rs; this file is also compiled by build.rs, which has no
    /// event layout).
    pub fn check(&self, snaplen_max: u32) -> Result<(), String> {
        if self.gen.is_some() || self.list {
            return Ok(());
        }
        let output = self.output.name();
        if self.output.is_binary() {
            if self.write.is_none() {
                return Err(format!(
                    "-o {output} writes binary data: name a file with -w FILE (or -w - for stdout)"
                ));
            }
            if self.write_file().is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                return Err(format!(
                    "-o {output} writes binary data and stdout is a terminal: -w FILE, or pipe it (-w - | tshark -r -)"
                ));
            }
        }
        match self.snaplen {
            Some(_) if self.output != OutputKind::Pcapng => Err(format!(
                "--snaplen is for -o pcapng only (-o {output} shows no packet bytes)"
            )),
            Some(0) => Err(format!(
                "--snaplen 0 captures no packet bytes: give 1 to {snaplen_max} (default {DEFAULT_SNAPLEN})"
            )),
            Some(n) if n > snaplen_max => Err(format!(
                "--snaplen {n}: an event carries at most {snaplen_max} packet bytes; give 1 to {snaplen_max}"
            )),
            _ => Ok(()),
        }
    }

    /// Packet bytes to capture per event: only -o pcapng shows them, so the
    /// other outputs ask the BPF side for none (their events stay small).
    pub fn snaplen(&self) -> u32 {
        match self.output {
            OutputKind::Pcapng => self.snaplen.unwrap_or(DEFAULT_SNAPLEN),
            _ => 0,
        }
    }

    /// Where the output goes: None for stdout (no -w, or -w -).
    pub fn write_file(&self) -> Option<&std::path::Path> {
        self.write.as_deref().filter(|p| p.as_os_str() != "-")
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum GenTarget {
    #[value(name = "bpf-module-skeleton")]
    BpfModuleSkeleton,
    #[value(name = "bpf-module-header")]
    BpfModuleHeader,
}

/// Parses a 32-bit number the way C's strtoul(s, 0) does: `0x` hex, leading
/// `0` octal, decimal otherwise.
pub fn parse_u32(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if t.len() > 1 && t.starts_with('0') {
        (&t[1..], 8)
    } else {
        (t, 10)
    };
    u32::from_str_radix(digits, radix).map_err(|_| {
        "not a 32-bit number; use decimal (3735928559), 0x hex (0xdeadbeef) or 0 octal (0755)"
            .to_string()
    })
}

fn parse_regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| {
        // regex's message spans several lines; keep the last, which says what is wrong.
        let why = e.to_string();
        let why = why.lines().last().unwrap_or("invalid").trim().to_string();
        format!("not a valid regular expression ({why})")
    })
}

fn parse_positive(s: &str) -> Result<u32, String> {
    match parse_u32(s) {
        Ok(0) | Err(_) => Err("must be a number of 1 or more".into()),
        Ok(n) => Ok(n),
    }
}

fn parse_page_count(s: &str) -> Result<u32, String> {
    let n = parse_positive(s)?;
    if !n.is_power_of_two() {
        return Err(format!(
            "must be a power of two (e.g. {})",
            n.next_power_of_two()
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_parse_in_three_bases() {
        assert_eq!(parse_u32("3735928559"), Ok(0xdeadbeef));
        assert_eq!(parse_u32("0xdeadbeef"), Ok(0xdeadbeef));
        assert_eq!(parse_u32("0XFF"), Ok(255));
        assert_eq!(parse_u32("0755"), Ok(0o755));
        assert_eq!(parse_u32("0"), Ok(0));
        assert!(parse_u32("0x1ffffffff").is_err());
        assert!(parse_u32("abc").is_err());
        assert!(parse_u32("09").is_err());
        assert!(parse_u32("").is_err());
    }

    #[test]
    fn page_count_must_be_power_of_two() {
        assert_eq!(parse_page_count("64"), Ok(64));
        assert!(parse_page_count("3").unwrap_err().contains("power of two"));
        assert!(parse_page_count("0").is_err());
    }

    #[test]
    fn bad_regex_is_one_line() {
        let e = parse_regex("ip_(").unwrap_err();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains("regular expression"));
    }
}
