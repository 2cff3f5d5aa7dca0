//! `-o aggregate`: keeps every event and, at exit, prints one block per
//! packet (in order of its first event) with its events in timestamp order.
//!
//! A packet is identified by its packet id. While tracking, ids are never
//! reused in a run. With --no-track the id is the skb address, and the
//! kernel reuses skb memory: an skb's life ends when its memory is given back
//! (`kfree_skbmem`, or `napi_skb_cache_put` for the NAPI cache), so events
//! after such a call start a new packet even though the address is the same.
//!
//! Each packet starts with a line naming it (addresses, ports, ICMP id and
//! sequence: src/packet.rs) and where it was first seen; each event line
//! marks what changed since the packet's previous event (namespace, device,
//! NAT, length); a verdict line ends it (src/verdict.rs).
//!
//! With function_graph, the function column shows `name() {` on entry and
//! `}` on return, indented two spaces per call depth, and each closing line
//! says the call's duration and, where BTF says it returns an integer, its
//! return value.
//!
//! An event's kernel stack (drop functions, --stack) follows its line, one
//! frame a line, indented.

use super::{format_duration, Func, Output, SKB_MEMORY_FREED};
use crate::decode::Fields;
use crate::event::Event;
use crate::graph::{CallStacks, Step};
use crate::packet;
use crate::stack::Symbols;
use crate::verdict::Verdict;
use anyhow::Result;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::Arc;

/// One kept event.
type Recorded<'t> = (Event, Func<'t>, Fields);

/// Events kept for the listing at exit (about 180 bytes each, so under 100 MB): memory stays
/// bounded under a flood; what is not kept is counted and reported.
pub const MAX_KEPT_EVENTS: usize = 500_000;

/// Events are kept in chunks of this many, so that keeping more never
/// copies what is kept (a large reallocation would stall the reader while
/// the kernel's buffer fills).
const CHUNK: usize = 16384;

pub struct Aggregate<'t, W: Write> {
    out: W,
    chunks: Vec<Vec<Recorded<'t>>>,
    kept: usize,
    /// All kept events, gathered at finish.
    events: Vec<Recorded<'t>>,
    graph: bool,
    /// Ids are skb addresses (--no-track): split packets where memory is freed.
    split_at_free: bool,
    /// Events seen after MAX_KEPT_EVENTS were kept.
    not_kept: u64,
    /// Verdicts per packet id, in the order that id's packets ended.
    verdicts: HashMap<u64, VecDeque<Verdict>>,
    symbols: Arc<Symbols>,
}

impl<'t, W: Write> Aggregate<'t, W> {
    /// `graph`: print calls and returns as a call graph (function_graph);
    /// `ids_are_skbs`: packet ids are skb addresses, which the kernel reuses.
    pub fn new(out: W, graph: bool, ids_are_skbs: bool) -> Self {
        Aggregate {
            out,
            chunks: Vec::new(),
            kept: 0,
            events: Vec::new(),
            graph,
            split_at_free: ids_are_skbs,
            not_kept: 0,
            verdicts: HashMap::new(),
            symbols: Arc::new(Symbols::kernel()),
        }
    }

    /// Symbolizes stacks with `symbols`.
    pub fn with_symbols(mut self, symbols: Arc<Symbols>) -> Self {
        self.symbols = symbols;
        self
    }

    /// Splits the events into packets: by skb address, then at every point
    /// where the skb's memory was freed. Packets come in order of their first
    /// event, events in timestamp order.
    fn packets(&mut self) -> Vec<&[Recorded<'t>]> {
        self.events.sort_by_key(|(e, _, _)| (e.packet_id, e.tstamp));
        let mut packets: Vec<&[Recorded<'t>]> = Vec::new();
        let mut rest = &self.events[..];
        while !rest.is_empty() {
            let id = rest[0].0.packet_id;
            let mut end = rest
                .iter()
                .position(|(e, _, _)| e.packet_id != id)
                .unwrap_or(rest.len());
            let freed = rest[..end]
                .iter()
                .position(|(_, f, _)| SKB_MEMORY_FREED.contains(&f.name));
            if let Some(freed) = freed.filter(|_| self.split_at_free) {
                end = freed + 1;
                // Returns right after the free close the calls that freed it.
                while end < rest.len() && rest[end].0.packet_id == id && rest[end].0.is_return != 0
                {
                    end += 1;
                }
            }
            let (packet, tail) = rest.split_at(end);
            packets.push(packet);
            rest = tail;
        }
        packets.sort_by_key(|p| p[0].0.tstamp);
        packets
    }
}

pub fn header() -> String {
    format!(
        "{:<20} {:>3} {:>24} {:>32}",
        "Timestamp", "CPU", "Module", "Function"
    )
}

/// One event line; extra fields follow as `( key: value ... )`.
pub fn line(e: &Event, f: Func, fields: &Fields) -> String {
    let line = format!(
        "{:<20} {:03} {:>24} {:>32}",
        e.tstamp, e.processor_id, f.module, f.name
    );
    with_fields(line, fields)
}

/// One event line of the call graph: `call` is the indented function column.
fn graph_line(e: &Event, f: Func, call: &str, fields: &Fields) -> String {
    let line = format!(
        "{:<20} {:03} {:>24} {call}",
        e.tstamp, e.processor_id, f.module
    );
    with_fields(line, fields)
}

/// The function column of each event of one packet, as a call graph.
fn graph_calls(packet: &[Recorded]) -> Vec<String> {
    let mut stacks = CallStacks::default();
    let steps: Vec<Step> = packet
        .iter()
        .map(|(e, f, _)| stacks.step(e, f.id))
        .collect();
    let returned: HashSet<usize> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Return { entry, .. } => Some(*entry),
            _ => None,
        })
        .collect();
    let indent = |depth: usize| "  ".repeat(depth);
    packet
        .iter()
        .zip(&steps)
        .enumerate()
        .map(|(i, ((e, f, _), step))| {
            let ret = f
                .ret
                .map(|t| format!(", ret {}", t.format(e.retval)))
                .unwrap_or_default();
            match *step {
                Step::Entry { depth } if returned.contains(&i) => {
                    format!("{}{}() {{", indent(depth), f.name)
                }
                Step::Entry { depth } => {
                    format!("{}{}() {{ /* return not seen */", indent(depth), f.name)
                }
                Step::Return {
                    depth, duration_ns, ..
                } => format!(
                    "{}}} /* {} {}{ret} */",
                    indent(depth),
                    f.name,
                    format_duration(duration_ns)
                ),
                Step::UnmatchedReturn { depth } => {
                    format!(
                        "{}}} /* {} returned, entry not seen{ret} */",
                        indent(depth),
                        f.name
                    )
                }
            }
        })
        .collect()
}

/// The frames of `e`'s stack, if it has one, a line each under its event.
fn stack_lines(text: &mut String, e: &Event, symbols: &Symbols) {
    let frames = e.stack.as_deref().and_then(|s| symbols.frames(s));
    for frame in frames.into_iter().flatten() {
        text.push_str(STACK_INDENT);
        text.push_str(&frame);
        text.push('\n');
    }
}

/// Indentation of stack frames under their event line.
pub const STACK_INDENT: &str = "        ";

fn with_fields(mut line: String, fields: &Fields) -> String {
    if !fields.is_empty() {
        line.push_str(" ( ");
        for (k, v) in fields {
            line.push_str(&format!("{k}: {v} "));
        }
        line.push(')');
    }
    line
}

impl<'t, W: Write> Output<'t> for Aggregate<'t, W> {
    fn on_event(&mut self, e: &Event, func: Func<'t>, fields: Fields) -> Result<()> {
        if self.kept < MAX_KEPT_EVENTS {
            if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                self.chunks.push(Vec::with_capacity(CHUNK));
            }
            self.chunks
                .last_mut()
                .unwrap()
                .push((e.clone(), func, fields));
            self.kept += 1;
        } else {
            self.not_kept += 1;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        // Chunk by chunk, so memory never holds two copies of everything.
        let mut events = Vec::with_capacity(self.kept);
        for chunk in std::mem::take(&mut self.chunks) {
            events.extend(chunk);
        }
        self.events = events;
        let mut text = String::new();
        text.push_str(&header());
        text.push('\n');
        let graph = self.graph;
        let mut verdicts = std::mem::take(&mut self.verdicts);
        let symbols = self.symbols.clone();
        for packet in self.packets() {
            text.push_str("===\n");
            if let Some(name) = packet_line(packet) {
                text.push_str(&name);
                text.push('\n');
            }
            let marks = change_marks(packet);
            if graph {
                for (((e, f, fields), call), mut marks) in
                    packet.iter().zip(graph_calls(packet)).zip(marks)
                {
                    marks.extend(fields.iter().cloned());
                    text.push_str(&graph_line(e, *f, &call, &marks));
                    text.push('\n');
                    stack_lines(&mut text, e, &symbols);
                }
            } else {
                for ((e, f, fields), mut marks) in packet.iter().zip(marks) {
                    marks.extend(fields.iter().cloned());
                    text.push_str(&line(e, *f, &marks));
                    text.push('\n');
                    stack_lines(&mut text, e, &symbols);
                }
            }
            let id = packet[0].0.packet_id;
            if let Some(v) = verdicts.get_mut(&id).and_then(|q| q.pop_front()) {
                text.push_str(&format!("verdict: {}\n", v.describe()));
            }
        }
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        if self.not_kept > 0 {
            eprintln!(
                "aggregate output kept the first {MAX_KEPT_EVENTS} events; {} later events were not kept (use -o json to stream every event)",
                self.not_kept
            );
        }
        Ok(())
    }

    fn count(&self) -> u64 {
        self.kept as u64 + self.not_kept
    }

    fn on_verdict(&mut self, packet_id: u64, verdict: &Verdict) -> Result<()> {
        self.verdicts
            .entry(packet_id)
            .or_default()
            .push_back(verdict.clone());
        Ok(())
    }
}

/// `packet 0x3: ICMP 10.0.0.1 > 10.0.0.2 echo request id 7 seq 1, len 84
/// (netns 4026531840 dev va)`, from the first event whose headers were read.
fn packet_line(packet: &[Recorded]) -> Option<String> {
    let (e, _, _) = packet.first()?;
    let first = packet.iter().find_map(|(e, _, _)| e.meta.as_deref());
    let named = packet
        .iter()
        .find_map(|(e, _, _)| e.meta.as_deref().and_then(packet::describe));
    let place = first.map(packet::place).filter(|p| !p.is_empty());
    if named.is_none() && place.is_none() {
        return None;
    }
    let mut s = format!(
        "packet {:#x}: {}",
        e.packet_id,
        named.unwrap_or_else(|| "headers not seen".into())
    );
    if let Some(p) = place {
        s.push_str(&format!(" ({p})"));
    }
    Some(s)
}

/// For each event of a packet, what changed since its previous event with
/// metadata, as fields.
fn change_marks(packet: &[Recorded]) -> Vec<Fields> {
    let mut prev: Option<&crate::event::Meta> = None;
    packet
        .iter()
        .map(|(e, _, _)| {
            let Some(m) = e.meta.as_deref() else {
                return Fields::new();
            };
            let marks = prev
                .map(|p| {
                    packet::changes(p, m)
                        .into_iter()
                        .map(|(k, v)| (k.into(), v))
                        .collect()
                })
                .unwrap_or_default();
            prev = Some(m);
            marks
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(packet_id: u64, tstamp: u64, cpu: u32) -> Event {
        Event {
            packet_id,
            skb: packet_id,
            tstamp,
            faddr: 0,
            retval: 0,
            processor_id: cpu,
            is_return: 0,
            ..Event::default()
        }
    }

    fn f(name: &'static str) -> Func<'static> {
        Func {
            name,
            module: "vmlinux",
            id: name.len() as u64,
            ret: None,
        }
    }

    fn render(events: &[(Event, Func<'static>)]) -> String {
        let mut buf = Vec::new();
        let mut out = Aggregate::new(&mut buf, false, true);
        for (e, func) in events {
            out.on_event(e, *func, Fields::new()).unwrap();
        }
        out.finish().unwrap();
        drop(out);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn matches_spec_format() {
        let text = render(&[(ev(1, 96976848684329, 0), f("nf_checksum"))]);
        assert_eq!(
            text,
            "Timestamp            CPU                   Module                         Function\n\
             ===\n\
             96976848684329       000                  vmlinux                      nf_checksum\n"
        );
    }

    #[test]
    fn orders_packets_by_first_event_and_events_by_time() {
        let text = render(&[
            (ev(0xb, 30, 1), f("b_second")),
            (ev(0xa, 20, 0), f("a_second")),
            (ev(0xb, 5, 1), f("b_first")),
            (ev(0xa, 10, 0), f("a_first")),
        ]);
        let names: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().last().unwrap())
            .collect();
        assert_eq!(
            names,
            ["===", "b_first", "b_second", "===", "a_first", "a_second"]
        );
    }

    #[test]
    fn graph_shows_nesting_durations_and_return_values() {
        let mut ip_rcv = f("ip_rcv");
        ip_rcv.ret = Some(crate::kernel::btf::IntType {
            size: 4,
            signed: true,
        });
        let deliver = f("ip_local_deliver_x");
        let ret = |mut e: Event, v: u64| {
            e.is_return = 1;
            e.retval = v;
            e
        };
        let mut buf = Vec::new();
        let mut out = Aggregate::new(&mut buf, true, true);
        for (e, func) in [
            (ev(1, 1000, 0), ip_rcv),
            (ev(1, 2000, 0), deliver),
            (ret(ev(1, 2500, 0), 0), deliver),
            (ret(ev(1, 4215, 0), 0xffff_ffea), ip_rcv),
            (ev(1, 5000, 0), deliver),
        ] {
            out.on_event(&e, func, Fields::new()).unwrap();
        }
        out.finish().unwrap();
        drop(out);
        let text = String::from_utf8(buf).unwrap();
        let calls: Vec<&str> = text.lines().skip(2).map(|l| l[49..].trim_end()).collect();
        assert_eq!(
            calls,
            [
                " ip_rcv() {",
                "   ip_local_deliver_x() {",
                "   } /* ip_local_deliver_x 0.500 us */",
                " } /* ip_rcv 3.215 us, ret -22 */",
                " ip_local_deliver_x() { /* return not seen */",
            ],
            "{text}"
        );
    }

    #[test]
    fn extra_fields_end_the_line() {
        let fields = vec![("reason".into(), "NETFILTER_DROP".to_string())];
        let l = line(&ev(1, 5, 0), f("kfree_skb"), &fields);
        assert!(l.ends_with("kfree_skb ( reason: NETFILTER_DROP )"), "{l}");
    }

    #[test]
    fn stack_frames_follow_their_event_indented() {
        let symbols = Symbols::from_text(
            "ffffffff81a2b3c0 T nf_hook_slow\nffffffff81b00000 T kfree_skb_reason\nffffffffc0001000 t veth_xmit\t[veth]\n",
        );
        let mut dropped = ev(1, 2, 0);
        dropped.stack = Some(Box::new(crate::event::Stack::Frames {
            at: 0xffffffff81b00000,
            ips: vec![0xffffffff81b00005, 0xffffffff81a2b41a, 0xffffffffc0001010],
        }));
        let mut lost = ev(1, 3, 0);
        lost.stack = Some(Box::new(crate::event::Stack::Lost(-14)));
        let mut buf = Vec::new();
        let mut out = Aggregate::new(&mut buf, false, false).with_symbols(Arc::new(symbols));
        for (e, func) in [
            (ev(1, 1, 0), f("ip_rcv")),
            (dropped, f("kfree_skb_reason")),
            (lost, f("kfree_skb_reason")),
        ] {
            out.on_event(&e, func, Fields::new()).unwrap();
        }
        out.finish().unwrap();
        drop(out);
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().skip(2).collect();
        assert!(lines[0].ends_with(" ip_rcv"), "{text}");
        assert!(lines[1].ends_with(" kfree_skb_reason"), "{text}");
        assert_eq!(
            &lines[2..5],
            [
                "        kfree_skb_reason+0x5",
                "        nf_hook_slow+0x5a",
                "        veth_xmit+0x10 [veth]"
            ],
            "{text}"
        );
        // A lost stack prints nothing.
        assert!(lines[5].ends_with(" kfree_skb_reason"), "{text}");
        assert_eq!(lines.len(), 6, "{text}");
    }

    #[test]
    fn never_truncates_long_names() {
        let long = "a_function_name_that_is_much_longer_than_thirty_two_characters";
        let text = render(&[(ev(1, 1, 0), f(long))]);
        assert!(text.contains(long));
    }

    #[test]
    fn reused_skb_address_after_free_is_a_new_packet() {
        let text = render(&[
            (ev(0xa, 1, 0), f("ip_rcv")),
            (ev(0xa, 2, 0), f("kfree_skbmem")),
            (ev(0xa, 3, 0), f("ip_output")),
        ]);
        assert_eq!(text.matches("===").count(), 2, "{text}");
    }
}
