//! `-o pcapng -w FILE`: the packet bytes captured at each event (src/bpf/capture.bpf.h,
//! `--snaplen`), as a pcap-ng capture that Wireshark and tshark read, written
//! frame by frame as events arrive (through the `pcap-file` crate's writer).
//!
//! Frames: one Enhanced Packet Block per event that carries packet bytes, in
//! arrival order, so that the packet list reads as the journey. Its comment
//! says where the frame was taken: `ip_rcv: packet 0x3, cpu 1, netns
//! 4026532362, dev vb`, then the event's fields (`reason: NETFILTER_DROP`,
//! extension fields) and, on the frame of the event that ended the packet,
//! its verdict. Events without bytes (function_graph returns, which never
//! carry any, and functions that see the packet before it has a network
//! header) are no frame: they are counted and said at exit ([`Output::summary`]).
//!
//! Interfaces: one Interface Description Block per (network namespace,
//! device, link type) seen, named after the device (`if_name`), the
//! namespace as `if_description`; link type ETHERNET when the bytes start at
//! the MAC header, RAW (LINKTYPE_RAW, IPv4 or IPv6) when they start at the
//! network header (before the MAC header is set on the way out, or on a
//! device without Ethernet header). Timestamps are the kernel's monotonic
//! ones converted to wall-clock time (clock.rs), in nanoseconds
//! (`if_tsresol` 9).
//!
//! Memory stays bounded: frames are written at once (the last one is held
//! until the next event or the end of the read, so that a verdict can join
//! its comment) and flushed after each read of the buffer, and past
//! [`MAX_INTERFACES`] interfaces a new section starts, which describes the
//! interfaces it uses afresh (the writer keeps the current section's only).

use super::clock::WallClock;
use super::{Func, Output};
use crate::decode::Fields;
use crate::event::{Event, Link, Meta, META_DEV, META_NETNS};
use crate::verdict::{Kind, Verdict};
use anyhow::Result;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::time::Duration;

/// Interfaces described in one section, at most.
const MAX_INTERFACES: usize = 4096;
/// `if_tsresol` for nanoseconds: 10^-9 s (pcap-file writes timestamps in ns).
const TSRESOL_NS: u8 = 9;
/// `if_name` of frames taken where the packet has no device yet.
const NO_DEVICE: &str = "(no device)";

/// What one interface block stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Interface {
    netns: Option<u32>,
    ifname: Option<[u8; 16]>,
    link: Link,
}

impl Interface {
    fn of(meta: Option<&Meta>, link: Link) -> Self {
        Interface {
            netns: meta.filter(|m| m.has(META_NETNS)).map(|m| m.netns),
            ifname: meta.filter(|m| m.has(META_DEV)).map(|m| m.ifname),
            link,
        }
    }

    fn block(&self, snaplen: u32) -> InterfaceDescriptionBlock<'static> {
        let name = self
            .ifname
            .map(|raw| {
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                String::from_utf8_lossy(&raw[..end]).into_owned()
            })
            .unwrap_or_else(|| NO_DEVICE.to_string());
        let netns = match self.netns {
            Some(n) => format!("netns {n}"),
            None => "netns unknown".to_string(),
        };
        let (linktype, start) = match self.link {
            Link::Ethernet => (DataLink::ETHERNET, "the MAC header"),
            Link::RawIp => (DataLink::RAW, "the network header (no MAC header set)"),
        };
        InterfaceDescriptionBlock {
            linktype,
            snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(name.into()),
                InterfaceDescriptionOption::IfDescription(netns.into()),
                InterfaceDescriptionOption::IfTsResol(TSRESOL_NS),
                InterfaceDescriptionOption::Comment(
                    format!("ipft: packet bytes from {start}").into(),
                ),
            ],
        }
    }
}

/// A frame written, held until the next event.
struct Held {
    packet_id: u64,
    frame: EnhancedPacketBlock<'static>,
}

pub struct Pcapng<W: Write> {
    writer: PcapNgWriter<BufWriter<W>>,
    wall: WallClock,
    snaplen: u32,
    /// Interface ids of the current section.
    interfaces: HashMap<Interface, u32>,
    held: Option<Held>,
    count: u64,
    frames: u64,
    without_bytes: u64,
}

impl<W: Write> Pcapng<W> {
    /// Starts the capture on `out` (its section header is written at once);
    /// `snaplen`: the most bytes a frame has, as the BPF side was told.
    pub fn new(out: W, snaplen: u32, wall: WallClock) -> Result<Self> {
        let writer = PcapNgWriter::with_section_header(
            BufWriter::with_capacity(64 * 1024, out),
            section_header(),
        )?;
        Ok(Pcapng {
            writer,
            wall,
            snaplen,
            interfaces: HashMap::new(),
            held: None,
            count: 0,
            frames: 0,
            without_bytes: 0,
        })
    }

    /// The id of `iface` in the current section, describing it first if new.
    fn interface_id(&mut self, iface: Interface) -> Result<u32> {
        if let Some(&id) = self.interfaces.get(&iface) {
            return Ok(id);
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            self.writer.write_pcapng_block(section_header())?;
            self.interfaces.clear();
        }
        let id = self.interfaces.len() as u32;
        self.writer.write_pcapng_block(iface.block(self.snaplen))?;
        self.interfaces.insert(iface, id);
        Ok(id)
    }

    fn write_held(&mut self) -> Result<()> {
        if let Some(held) = self.held.take() {
            self.writer.write_pcapng_block(held.frame)?;
            self.frames += 1;
        }
        Ok(())
    }
}

/// Little-endian (x86's own order), naming the program that wrote it.
fn section_header() -> SectionHeaderBlock<'static> {
    SectionHeaderBlock {
        endianness: Endianness::Little,
        options: vec![SectionHeaderOption::UserApplication(
            format!("ipft {}", crate::VERSION).into(),
        )],
        ..Default::default()
    }
}

/// `ip_rcv: packet 0x3, cpu 1, netns 4026532362, dev vb`, then the fields
/// (`, reason: NETFILTER_DROP`); the module in brackets when it is not the
/// core kernel (`veth_xmit [veth]: ...`), as in stack frames.
fn comment(e: &Event, func: Func, fields: &Fields) -> String {
    let mut s = func.name.to_string();
    if func.module != "vmlinux" {
        s.push_str(&format!(" [{}]", func.module));
    }
    s.push_str(&format!(
        ": packet {:#x}, cpu {}",
        e.packet_id, e.processor_id
    ));
    if let Some(m) = e.meta.as_deref() {
        if m.has(META_NETNS) {
            s.push_str(&format!(", netns {}", m.netns));
        }
        if let Some(dev) = m.ifname() {
            s.push_str(&format!(", dev {dev}"));
        }
    }
    for (k, v) in fields {
        s.push_str(&format!(", {k}: {v}"));
    }
    s
}

impl<'t, W: Write> Output<'t> for Pcapng<W> {
    fn on_event(&mut self, e: &Event, func: Func<'t>, fields: Fields) -> Result<()> {
        self.count += 1;
        self.write_held()?;
        let Some(captured) = e.packet.as_deref() else {
            self.without_bytes += 1;
            return Ok(());
        };
        let interface_id = self.interface_id(Interface::of(e.meta.as_deref(), captured.link))?;
        let frame = EnhancedPacketBlock {
            interface_id,
            timestamp: Duration::from_nanos(self.wall.wall_ns(e.tstamp)),
            original_len: captured.orig_len.max(captured.bytes.len() as u32),
            data: Cow::Owned(captured.bytes.clone()),
            options: vec![EnhancedPacketOption::Comment(
                comment(e, func, &fields).into(),
            )],
        };
        self.held = Some(Held {
            packet_id: e.packet_id,
            frame,
        });
        Ok(())
    }

    /// Joins the comment of the frame of the event that ended the packet
    /// (`...; verdict: consumed after icmp_rcv in netns 4026532362 dev vb`):
    /// such a verdict comes right after that event, whose frame is still
    /// held. Packets in flight at exit, and packets whose ending event
    /// carried no bytes, have no verdict in the capture.
    fn on_verdict(&mut self, packet_id: u64, verdict: &Verdict) -> Result<()> {
        if verdict.kind == Kind::InFlight {
            return Ok(());
        }
        if let Some(held) = self.held.as_mut().filter(|h| h.packet_id == packet_id) {
            for opt in &mut held.frame.options {
                if let EnhancedPacketOption::Comment(c) = opt {
                    c.to_mut()
                        .push_str(&format!("; verdict: {}", verdict.describe()));
                }
            }
        }
        Ok(())
    }

    /// After each read of the buffer: the frames so far reach the file or
    /// pipe (a Wireshark reading `-w -` live sees them). The held frame
    /// goes too: its verdict, if any, came right after its event, in the
    /// same read.
    fn flush(&mut self) -> Result<()> {
        self.write_held()?;
        self.writer.get_mut().flush()?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        Output::flush(self)
    }

    fn count(&self) -> u64 {
        self.count
    }

    fn summary(&self) -> Option<String> {
        let mut line = format!("{} frames written", self.frames);
        if self.without_bytes > 0 {
            line.push_str(&format!(
                "; {} events without packet bytes are not in the capture (function_graph returns, or no network header yet)",
                self.without_bytes
            ));
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests;
