//! `-o aggregate`: keeps every event and, at exit, prints one block per
//! packet (in order of its first event) with its events in timestamp order.
//!
//! A packet is identified by its skb address, and the kernel reuses skb
//! memory. An skb's life ends when its memory is given back
//! (`kfree_skbmem`, or `napi_skb_cache_put` for the NAPI cache), so events
//! after such a call start a new packet even though the address is the same.

use super::{Func, Output};
use crate::decode::Fields;
use crate::event::Event;
use anyhow::Result;
use std::io::Write;

/// Functions after which an skb address belongs to no packet any more.
const SKB_MEMORY_FREED: &[&str] = &["kfree_skbmem", "napi_skb_cache_put"];

/// One kept event.
type Recorded<'t> = (Event, Func<'t>, Fields);

pub struct Aggregate<'t, W: Write> {
    out: W,
    events: Vec<Recorded<'t>>,
}

impl<'t, W: Write> Aggregate<'t, W> {
    pub fn new(out: W) -> Self {
        Aggregate {
            out,
            events: Vec::new(),
        }
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
            if let Some(freed) = rest[..end]
                .iter()
                .position(|(_, f, _)| SKB_MEMORY_FREED.contains(&f.name))
            {
                end = freed + 1;
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
    let mut line = format!(
        "{:<20} {:03} {:>24} {:>32}",
        e.tstamp, e.processor_id, f.module, f.name
    );
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
        self.events.push((*e, func, fields));
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        let mut text = String::new();
        text.push_str(&header());
        text.push('\n');
        for packet in self.packets() {
            text.push_str("===\n");
            for (e, f, fields) in packet {
                text.push_str(&line(e, *f, fields));
                text.push('\n');
            }
        }
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        Ok(())
    }

    fn count(&self) -> u64 {
        self.events.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(packet_id: u64, tstamp: u64, cpu: u32) -> Event {
        Event {
            packet_id,
            tstamp,
            faddr: 0,
            retval: 0,
            processor_id: cpu,
            is_return: 0,
            _pad: [0; 3],
            data: [0; 64],
        }
    }

    fn f(name: &'static str) -> Func<'static> {
        Func {
            name,
            module: "vmlinux",
        }
    }

    fn render(events: &[(Event, Func<'static>)]) -> String {
        let mut buf = Vec::new();
        let mut out = Aggregate::new(&mut buf);
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
    fn extra_fields_end_the_line() {
        let fields = vec![("reason", "NETFILTER_DROP".to_string())];
        let l = line(&ev(1, 5, 0), f("kfree_skb"), &fields);
        assert!(l.ends_with("kfree_skb ( reason: NETFILTER_DROP )"), "{l}");
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
