//! `-o perfetto -w FILE`: a Perfetto trace (the protobuf `TracePacket`
//! stream that ui.perfetto.dev and trace_processor open, not the legacy JSON),
//! written packet by packet as events arrive.
//!
//! Tracks: one per CPU ("CPU 1"), and under it one per packet seen on that
//! CPU, named by its id and, when its headers were read, what it is
//! ("packet 0x1: ICMP 10.0.0.1 > 10.0.0.2 echo request id 7 seq 1, len 84",
//! from its first event on that CPU). function_graph pairs calls per packet and CPU
//! (graph.rs), so on such a track the slices always nest; a packet that
//! moves to another CPU gets a track under that CPU too, with the same name.
//! CPU rather than network namespace: a packet's calls nest per CPU, never
//! per namespace (a call that crosses a veth returns in the namespace it
//! started in, and the namespace of an event is only its `place`).
//!
//! Events: with function_graph an entry opens a slice (`TYPE_SLICE_BEGIN`) and
//! its return closes it (`TYPE_SLICE_END`), so the slice lasts what JSON's
//! `duration_ns` says; the return value is the `retval` argument (set on the
//! end event, which Perfetto adds to the slice's arguments). Calls closed over
//! by an outer return (their own return was not seen) end with it; a return
//! whose entry was not seen is an instant. With the function tracer every
//! event is an instant (`TYPE_INSTANT`). A packet's verdict (dropped,
//! delivered, transmitted, consumed, in flight: src/verdict.rs) is an instant
//! `verdict: KIND` at its last event, with the verdict in words and the drop
//! reason as arguments. Extra fields (the drop reason,
//! extension fields) become debug annotations: string arguments named by
//! their key, prefixed `return.` on a slice's end; where the packet is
//! (namespace, device) is the `place` argument. The module is the event's
//! category. Function names, modules and argument names are interned.
//!
//! Clock: event timestamps are `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) and are
//! written unchanged; the sequence declares MONOTONIC its default clock
//! (`TracePacketDefaults`) and the trace starts with a `ClockSnapshot` of
//! REALTIME, MONOTONIC and BOOTTIME, from which Perfetto converts them to
//! its BOOTTIME trace clock (and shows wall-clock time).
//!
//! Memory stays bounded however long the run: each packet is encoded and
//! written at once (through a buffered writer), the tracks already described
//! and the open calls are forgotten past [`MAX_TRACKS`] (a forgotten track
//! is described again, with the same uuid, when it shows up again), and
//! interning stops at [`MAX_INTERNED`] strings (later ones are written inline).

mod proto;

use super::{Func, Output};
use crate::decode::Fields;
use crate::event::Event;
use crate::graph::{CallStacks, Step};
use crate::packet;
use crate::verdict::Verdict;
use anyhow::Result;
use proto::*;
use std::collections::{HashMap, HashSet};
use std::io::{BufWriter, Write};

/// Every packet of ipft's trace belongs to this one sequence (interned
/// strings and the default clock are per sequence).
const SEQUENCE: u32 = 1;
/// Described tracks and tracks with open calls remembered, at most.
const MAX_TRACKS: usize = 65536;
/// Interned strings per kind, at most.
const MAX_INTERNED: usize = 16384;

/// The name of a packet's track, from its first event on a CPU: its id and,
/// when the event carries its headers, what it is (src/packet.rs):
/// `packet 0x1: ICMP 10.0.0.1 > 10.0.0.2 echo request id 7 seq 1, len 84`.
fn packet_track_name(e: &Event) -> String {
    match e.meta.as_deref().and_then(packet::describe) {
        Some(what) => format!("packet {:#x}: {what}", e.packet_id),
        None => format!("packet {:#x}", e.packet_id),
    }
}

/// Where the packet is at this event (`netns 4026531840 dev vb`), as the
/// `place` argument.
fn place(e: &Event) -> Option<(String, AnnotationValue)> {
    let place = packet::place(e.meta.as_deref()?);
    (!place.is_empty()).then(|| ("place".to_string(), AnnotationValue::String(place)))
}

pub struct Perfetto<W: Write> {
    out: BufWriter<W>,
    count: u64,
    /// Open calls, when tracing with function_graph.
    graph: Option<CallStacks>,
    /// Slices open (begun, not ended) per packet track.
    open: HashMap<u64, usize>,
    /// CPU and time of each packet's last event, until its verdict.
    last: HashMap<u64, (u32, u64)>,
    cpus: HashSet<u32>,
    tracks: HashSet<u64>,
    names: Interner,
    categories: Interner,
    keys: Interner,
    buf: Vec<u8>,
}

impl<W: Write> Perfetto<W> {
    /// Starts the trace on `out` (the clock snapshot and the sequence's
    /// defaults are written at once). `graph`: calls become slices.
    pub fn new(out: W, graph: bool) -> Result<Self> {
        let mut p = Perfetto {
            out: BufWriter::with_capacity(64 * 1024, out),
            count: 0,
            graph: graph.then(CallStacks::default),
            open: HashMap::new(),
            last: HashMap::new(),
            cpus: HashSet::new(),
            tracks: HashSet::new(),
            names: Interner::default(),
            categories: Interner::default(),
            keys: Interner::default(),
            buf: Vec::new(),
        };
        let clocks = [CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME]
            .into_iter()
            .map(|id| Clock {
                clock_id: Some(id),
                timestamp: Some(clock_now(id)),
            })
            .collect();
        p.write(TracePacket {
            data: Some(Data::ClockSnapshot(ClockSnapshot { clocks })),
            ..Default::default()
        })?;
        p.write(TracePacket {
            trusted_packet_sequence_id: Some(SEQUENCE),
            sequence_flags: Some(SEQ_INCREMENTAL_STATE_CLEARED),
            trace_packet_defaults: Some(TracePacketDefaults {
                timestamp_clock_id: Some(CLOCK_MONOTONIC),
            }),
            ..Default::default()
        })?;
        Ok(p)
    }

    fn write(&mut self, packet: TracePacket) -> Result<()> {
        self.buf.clear();
        // Field 1 of `Trace` (repeated TracePacket), one packet at a time.
        prost::encoding::message::encode(1, &packet, &mut self.buf);
        self.out.write_all(&self.buf)?;
        Ok(())
    }

    /// A packet of the sequence at `tstamp` (in the sequence's clock).
    fn packet(tstamp: u64, interned: InternedData, data: Data) -> TracePacket {
        TracePacket {
            timestamp: Some(tstamp),
            trusted_packet_sequence_id: Some(SEQUENCE),
            sequence_flags: Some(SEQ_NEEDS_INCREMENTAL_STATE),
            interned_data: (!interned.is_empty()).then_some(interned),
            data: Some(data),
            ..Default::default()
        }
    }

    /// The uuid of `e`'s packet track, describing it (and its CPU's track)
    /// the first time.
    fn track(&mut self, e: &Event) -> Result<u64> {
        let cpu_uuid = mix(u64::from(e.processor_id) ^ 0xc9c9_c9c9_0000_0000);
        if self.cpus.insert(e.processor_id) {
            let d = TrackDescriptor {
                uuid: Some(cpu_uuid),
                name: Some(format!("CPU {}", e.processor_id)),
                child_ordering: Some(CHILD_ORDERING_CHRONOLOGICAL),
                ..Default::default()
            };
            let p = Self::packet(e.tstamp, InternedData::default(), Data::TrackDescriptor(d));
            self.write(p)?;
        }
        let uuid = mix(mix(e.packet_id) ^ u64::from(e.processor_id));
        if !self.tracks.contains(&uuid) {
            if self.tracks.len() >= MAX_TRACKS {
                self.tracks.clear();
            }
            self.tracks.insert(uuid);
            let d = TrackDescriptor {
                uuid: Some(uuid),
                parent_uuid: Some(cpu_uuid),
                name: Some(packet_track_name(e)),
                ..Default::default()
            };
            let p = Self::packet(e.tstamp, InternedData::default(), Data::TrackDescriptor(d));
            self.write(p)?;
        }
        Ok(uuid)
    }

    /// An event that has a name: a slice's start or an instant.
    fn named(
        &mut self,
        e: &Event,
        func: Func,
        kind: i32,
        track: u64,
        args: Vec<(String, AnnotationValue)>,
    ) -> Result<()> {
        let mut interned = InternedData::default();
        let name = match self.names.iid(func.name, &mut interned.event_names) {
            Some(iid) => EventName::NameIid(iid),
            None => EventName::Name(func.name.to_string()),
        };
        // A category iid that is not interned cannot be written inline in
        // the same field: then the event goes without one.
        let category = self
            .categories
            .iid(func.module, &mut interned.event_categories);
        let debug_annotations = self.annotations(args, &mut interned);
        let event = TrackEvent {
            category_iids: category.into_iter().collect(),
            debug_annotations,
            r#type: Some(kind),
            track_uuid: Some(track),
            name: Some(name),
        };
        self.write(Self::packet(e.tstamp, interned, Data::TrackEvent(event)))
    }

    /// Ends the innermost open slice of `track`.
    fn end(&mut self, e: &Event, track: u64, args: Vec<(String, AnnotationValue)>) -> Result<()> {
        let mut interned = InternedData::default();
        let debug_annotations = self.annotations(args, &mut interned);
        let event = TrackEvent {
            debug_annotations,
            r#type: Some(TYPE_SLICE_END),
            track_uuid: Some(track),
            ..Default::default()
        };
        self.write(Self::packet(e.tstamp, interned, Data::TrackEvent(event)))
    }

    fn annotations(
        &mut self,
        args: Vec<(String, AnnotationValue)>,
        interned: &mut InternedData,
    ) -> Vec<DebugAnnotation> {
        args.into_iter()
            .map(|(key, value)| {
                let name = match self.keys.iid(&key, &mut interned.debug_annotation_names) {
                    Some(iid) => AnnotationName::NameIid(iid),
                    None => AnnotationName::Name(key),
                };
                DebugAnnotation {
                    name: Some(name),
                    value: Some(value),
                }
            })
            .collect()
    }

    /// Remembers that `n` slices are open on `track`.
    fn set_open(&mut self, track: u64, n: usize) {
        if n == 0 {
            self.open.remove(&track);
            return;
        }
        if self.open.len() >= MAX_TRACKS && !self.open.contains_key(&track) {
            self.open.clear();
        }
        self.open.insert(track, n);
    }
}

/// The return value as its type says (signed or not), as an argument.
fn retval(e: &Event, func: Func) -> Option<(String, AnnotationValue)> {
    let text = func.ret?.format(e.retval);
    let value = match (text.parse::<i64>(), text.parse::<u64>()) {
        (Ok(v), _) => AnnotationValue::Int(v),
        (_, Ok(v)) => AnnotationValue::Uint(v),
        _ => AnnotationValue::String(text),
    };
    Some(("retval".to_string(), value))
}

fn string_args(
    fields: Fields,
    prefix: &str,
) -> impl Iterator<Item = (String, AnnotationValue)> + '_ {
    fields
        .into_iter()
        .map(move |(k, v)| (format!("{prefix}{k}"), AnnotationValue::String(v)))
}

impl<'t, W: Write> Output<'t> for Perfetto<W> {
    fn on_event(&mut self, e: &Event, func: Func<'t>, fields: Fields) -> Result<()> {
        let track = self.track(e)?;
        if self.last.len() >= MAX_TRACKS && !self.last.contains_key(&e.packet_id) {
            self.last.clear();
        }
        self.last.insert(e.packet_id, (e.processor_id, e.tstamp));
        let step = self.graph.as_mut().map(|g| g.step(e, func.id));
        match step {
            None => {
                let args = place(e)
                    .into_iter()
                    .chain(string_args(fields, ""))
                    .collect();
                self.named(e, func, TYPE_INSTANT, track, args)?;
            }
            Some(Step::Entry { depth }) => {
                let args = place(e)
                    .into_iter()
                    .chain(string_args(fields, ""))
                    .collect();
                self.named(e, func, TYPE_SLICE_BEGIN, track, args)?;
                self.set_open(track, depth + 1);
            }
            Some(Step::Return { depth, .. }) => {
                // Calls entered after this one and never returned end here
                // too, innermost first; this call's end carries its result.
                let open = self.open.get(&track).copied().unwrap_or(depth + 1);
                for _ in depth + 1..open {
                    self.end(e, track, Vec::new())?;
                }
                let args = retval(e, func)
                    .into_iter()
                    .chain(string_args(fields, "return."))
                    .collect();
                self.end(e, track, args)?;
                self.set_open(track, depth);
            }
            Some(Step::UnmatchedReturn { .. }) => {
                let note = (
                    "return".to_string(),
                    AnnotationValue::String("entry not seen".into()),
                );
                let args = std::iter::once(note)
                    .chain(place(e))
                    .chain(retval(e, func))
                    .chain(string_args(fields, ""))
                    .collect();
                self.named(e, func, TYPE_INSTANT, track, args)?;
            }
        }
        self.count += 1;
        Ok(())
    }

    /// An instant on the packet's track at its last event: `verdict:
    /// dropped`, with the verdict in words and the drop reason as arguments.
    fn on_verdict(&mut self, packet_id: u64, verdict: &Verdict) -> Result<()> {
        let Some((cpu, tstamp)) = self.last.remove(&packet_id) else {
            return Ok(());
        };
        let e = Event {
            packet_id,
            processor_id: cpu,
            tstamp,
            ..Event::default()
        };
        let track = self.track(&e)?;
        let name = format!("verdict: {}", verdict.kind.name());
        let func = Func {
            name: &name,
            module: "ipft",
            id: 0,
            ret: None,
        };
        let args = std::iter::once(("verdict".to_string(), verdict.describe()))
            .chain(verdict.reason.clone().map(|r| ("reason".to_string(), r)))
            .map(|(k, v)| (k, AnnotationValue::String(v)))
            .collect();
        self.named(&e, func, TYPE_INSTANT, track, args)
    }

    fn finish(&mut self) -> Result<()> {
        // Calls still open stay open: Perfetto shows them as not ended.
        self.out.flush()?;
        Ok(())
    }

    fn count(&self) -> u64 {
        self.count
    }
}

/// Strings sent once and referred to by number afterwards.
#[derive(Default)]
struct Interner {
    iids: HashMap<String, u64>,
}

impl Interner {
    /// The iid of `s`, added to `new` the first time it is seen; None once
    /// [`MAX_INTERNED`] strings are interned (write it inline then).
    fn iid(&mut self, s: &str, new: &mut Vec<InternedString>) -> Option<u64> {
        if let Some(&iid) = self.iids.get(s) {
            return Some(iid);
        }
        if self.iids.len() >= MAX_INTERNED {
            return None;
        }
        let iid = self.iids.len() as u64 + 1;
        self.iids.insert(s.to_string(), iid);
        new.push(InternedString {
            iid: Some(iid),
            name: Some(s.to_string()),
        });
        Some(iid)
    }
}

/// splitmix64's finalizer: track uuids from CPU numbers and packet ids.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The current time of one of Perfetto's builtin clocks, in ns.
fn clock_now(id: u32) -> u64 {
    super::clock::now(match id {
        CLOCK_REALTIME => libc::CLOCK_REALTIME,
        CLOCK_MONOTONIC => libc::CLOCK_MONOTONIC,
        _ => libc::CLOCK_BOOTTIME,
    })
}

#[cfg(test)]
mod tests;
