//! `-o json`: one JSON object per event, one per line, written as each event
//! arrives and flushed once per batch the reader takes from the kernel's
//! buffer (so a pipe sees events within the reader's 100 ms poll), and one `{"packet_id":..,"verdict":{..}}` line when a
//! packet ends. Keys in SPEC.md's order, then `meta` (src/packet.rs) and
//! extra fields; strings escaped by serde_json. schema/ipft.schema.json
//! describes every line.
//! An event's kernel stack (drop functions, --stack) is `"stack"`, its frames
//! innermost first (`["kfree_skb_reason+0x5", "nft_do_chain+0x3c [nf_tables]"]`);
//! a stack the kernel could not take is left out (and counted at exit).

use super::{Func, Output};
use crate::decode::Fields;
use crate::event::Event;
use crate::graph::{CallStacks, Step};
use crate::stack::Symbols;
use crate::verdict::Verdict;
use anyhow::Result;
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::sync::Arc;

#[derive(Serialize)]
struct JsonEvent<'a> {
    packet_id: String,
    skb: String,
    timestamp: u64,
    processor_id: u32,
    module: &'a str,
    function: &'a str,
    is_return: bool,
}

pub struct Json<W: Write> {
    out: BufWriter<W>,
    count: u64,
    /// Open calls, when tracing with function_graph.
    graph: Option<CallStacks>,
    symbols: Arc<Symbols>,
}

impl<W: Write> Json<W> {
    /// `graph`: pair returns with entries and add `duration_ns` and `retval`.
    pub fn new(out: W, graph: bool) -> Self {
        Json {
            out: BufWriter::with_capacity(64 * 1024, out),
            count: 0,
            graph: graph.then(CallStacks::default),
            symbols: Arc::new(Symbols::kernel()),
        }
    }

    /// Symbolizes stacks with `symbols`.
    pub fn with_symbols(mut self, symbols: Arc<Symbols>) -> Self {
        self.symbols = symbols;
        self
    }
}

impl<'t, W: Write> Output<'t> for Json<W> {
    fn on_event(&mut self, e: &Event, func: Func<'t>, fields: Fields) -> Result<()> {
        let line = JsonEvent {
            packet_id: format!("{:#x}", e.packet_id),
            skb: format!("{:#x}", e.skb),
            timestamp: e.tstamp,
            processor_id: e.processor_id,
            module: func.module,
            function: func.name,
            is_return: e.is_return != 0,
        };
        let mut text = serde_json::to_string(&line)?;
        text.pop();
        if let Some(stacks) = &mut self.graph {
            let step = stacks.step(e, func.id);
            if let Step::Return { duration_ns, .. } = step {
                text.push_str(&format!(",\"duration_ns\":{duration_ns}"));
            }
            if e.is_return != 0 {
                if let Some(t) = func.ret {
                    text.push_str(&format!(",\"retval\":{}", t.format(e.retval)));
                }
            }
        }
        if let Some(m) = &e.meta {
            text.push_str(",\"meta\":");
            text.push_str(&crate::packet::to_json(m).to_string());
        }
        // Extra fields follow the fixed keys, in order, as strings.
        for (k, v) in &fields {
            text.push(',');
            text.push_str(&serde_json::to_string(k)?);
            text.push(':');
            text.push_str(&serde_json::to_string(v)?);
        }
        if let Some(frames) = e.stack.as_deref().and_then(|s| self.symbols.frames(s)) {
            text.push_str(",\"stack\":");
            text.push_str(&serde_json::to_string(&frames)?);
        }
        text.push_str("}\n");
        self.out.write_all(text.as_bytes())?;
        self.count += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }

    fn count(&self) -> u64 {
        self.count
    }

    fn on_verdict(&mut self, packet_id: u64, verdict: &Verdict) -> Result<()> {
        let mut v = serde_json::to_value(verdict)?;
        if let Some(frames) = verdict.stack.as_ref().and_then(|s| self.symbols.frames(s)) {
            v["stack"] = serde_json::json!(frames);
        }
        let line = serde_json::json!({
            "packet_id": format!("{packet_id:#x}"),
            "verdict": v,
        });
        writeln!(self.out, "{line}")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_returns_carry_duration_and_return_value() {
        let mut buf = Vec::new();
        let mut out = Json::new(&mut buf, true);
        let mut e = Event::default();
        let f = Func {
            name: "ip_rcv",
            module: "vmlinux",
            id: 7,
            ret: Some(crate::kernel::btf::IntType {
                size: 4,
                signed: true,
            }),
        };
        e.tstamp = 100;
        out.on_event(&e, f, Fields::new()).unwrap();
        e.tstamp = 350;
        e.is_return = 1;
        e.retval = u32::MAX as u64;
        out.on_event(&e, f, Fields::new()).unwrap();
        Output::flush(&mut out).unwrap();
        drop(out);
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with(r#""is_return":false}"#), "{}", lines[0]);
        assert!(
            lines[1].ends_with(r#""is_return":true,"duration_ns":250,"retval":-1}"#),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn stacks_are_symbolized_frames_and_lost_ones_left_out() {
        let symbols = Symbols::from_text(
            "ffffffff81a2b3c0 T nf_hook_slow\nffffffff81b00000 T kfree_skb_reason\nffffffffc0001000 t veth_xmit\t[veth]\n",
        );
        let mut buf = Vec::new();
        let mut out = Json::new(&mut buf, false).with_symbols(Arc::new(symbols));
        let f = Func {
            name: "kfree_skb_reason",
            module: "vmlinux",
            id: 1,
            ret: None,
        };
        let mut e = Event {
            stack: Some(Box::new(crate::event::Stack::Frames {
                at: 0xffffffff81b00000,
                ips: vec![0xffffffff81b00005, 0xffffffff81a2b41a, 0xffffffffc0001010],
            })),
            ..Event::default()
        };
        out.on_event(&e, f, vec![("reason".into(), "NETFILTER_DROP".into())])
            .unwrap();
        e.stack = Some(Box::new(crate::event::Stack::Lost(-14)));
        out.on_event(&e, f, Fields::new()).unwrap();
        Output::flush(&mut out).unwrap();
        drop(out);
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with(
                r#""reason":"NETFILTER_DROP","stack":["kfree_skb_reason+0x5","nf_hook_slow+0x5a","veth_xmit+0x10 [veth]"]}"#
            ),
            "{}",
            lines[0]
        );
        assert!(lines[1].ends_with(r#""is_return":false}"#), "{}", lines[1]);
    }

    #[test]
    fn a_batch_is_written_at_once_when_flushed() {
        let mut buf = Vec::new();
        let mut out = Json::new(&mut buf, false);
        let f = Func {
            name: "ip_rcv",
            module: "vmlinux",
            id: 1,
            ret: None,
        };
        for _ in 0..3 {
            out.on_event(&Event::default(), f, Fields::new()).unwrap();
        }
        assert!(
            out.out.get_ref().is_empty(),
            "written before the batch ended"
        );
        Output::flush(&mut out).unwrap();
        assert_eq!(out.out.get_ref().iter().filter(|&&b| b == b'\n').count(), 3);
    }

    #[test]
    fn writes_one_escaped_object_per_line_in_spec_order() {
        let mut buf = Vec::new();
        let mut out = Json::new(&mut buf, false);
        let e = Event {
            packet_id: 7,
            skb: 0xffff888001234500,
            tstamp: 96976848684329,
            faddr: 0,
            retval: 0,
            processor_id: 1,
            is_return: 0,
            ..Event::default()
        };
        let f = Func {
            name: "weird\"name",
            module: "vmlinux",
            id: 1,
            ret: None,
        };
        out.on_event(&e, f, Fields::new()).unwrap();
        out.on_event(&e, f, vec![("reason".into(), "NOT\"SPECIFIED".into())])
            .unwrap();
        Output::flush(&mut out).unwrap();
        drop(out);
        let text = String::from_utf8(buf).unwrap();
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            r#"{"packet_id":"0x7","skb":"0xffff888001234500","timestamp":96976848684329,"processor_id":1,"module":"vmlinux","function":"weird\"name","is_return":false}"#
        );
        assert_eq!(
            text.lines().nth(1).unwrap(),
            r#"{"packet_id":"0x7","skb":"0xffff888001234500","timestamp":96976848684329,"processor_id":1,"module":"vmlinux","function":"weird\"name","is_return":false,"reason":"NOT\"SPECIFIED"}"#
        );
    }
}
