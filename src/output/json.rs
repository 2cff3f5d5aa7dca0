//! `-o json`: one JSON object per event, one per line, written and flushed as
//! each event arrives. Keys in SPEC.md's order; strings escaped by serde_json.

use super::{Func, Output};
use crate::decode::Fields;
use crate::event::Event;
use anyhow::Result;
use serde::Serialize;
use std::io::Write;

#[derive(Serialize)]
struct JsonEvent<'a> {
    packet_id: String,
    timestamp: u64,
    processor_id: u32,
    module: &'a str,
    function: &'a str,
    is_return: bool,
}

pub struct Json<W: Write> {
    out: W,
    count: u64,
}

impl<W: Write> Json<W> {
    pub fn new(out: W) -> Self {
        Json { out, count: 0 }
    }
}

impl<'t, W: Write> Output<'t> for Json<W> {
    fn on_event(&mut self, e: &Event, func: Func<'t>, fields: Fields) -> Result<()> {
        let line = JsonEvent {
            packet_id: format!("{:#x}", e.packet_id),
            timestamp: e.tstamp,
            processor_id: e.processor_id,
            module: func.module,
            function: func.name,
            is_return: e.is_return != 0,
        };
        let mut text = serde_json::to_string(&line)?;
        // Extra fields follow the fixed keys, in order, as strings.
        text.pop();
        for (k, v) in &fields {
            text.push(',');
            text.push_str(&serde_json::to_string(k)?);
            text.push(':');
            text.push_str(&serde_json::to_string(v)?);
        }
        text.push_str("}\n");
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        self.count += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }

    fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_escaped_object_per_line_in_spec_order() {
        let mut buf = Vec::new();
        let mut out = Json::new(&mut buf);
        let e = Event {
            packet_id: 0xffff888001234500,
            tstamp: 96976848684329,
            faddr: 0,
            retval: 0,
            processor_id: 1,
            is_return: 0,
            _pad: [0; 3],
            data: [0; 64],
        };
        let f = Func {
            name: "weird\"name",
            module: "vmlinux",
        };
        out.on_event(&e, f, Fields::new()).unwrap();
        out.on_event(&e, f, vec![("reason", "NOT\"SPECIFIED".into())])
            .unwrap();
        let text = String::from_utf8(buf).unwrap();
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            r#"{"packet_id":"0xffff888001234500","timestamp":96976848684329,"processor_id":1,"module":"vmlinux","function":"weird\"name","is_return":false}"#
        );
        assert_eq!(
            text.lines().nth(1).unwrap(),
            r#"{"packet_id":"0xffff888001234500","timestamp":96976848684329,"processor_id":1,"module":"vmlinux","function":"weird\"name","is_return":false,"reason":"NOT\"SPECIFIED"}"#
        );
    }
}
