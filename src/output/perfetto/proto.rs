//! The few Perfetto trace messages ipft writes, as prost messages with the
//! field numbers of Perfetto's own `.proto` files (protos/perfetto/trace/
//! trace_packet.proto, clock_snapshot.proto, interned_data/interned_data.proto
//! and track_event/{track_descriptor,track_event,debug_annotation}.proto).
//! Only the fields ipft sets are declared: readers skip nothing they need.
//!
//! Why derived by hand rather than generated: `perfetto_protos` compiles all
//! of Perfetto's protos (hundreds of files, rust-protobuf and a bundled
//! protoc) at build time, and `prost-build` needs `protoc` on the build
//! machine; ipft needs ten small messages. prost's derive does the encoding
//! (and the decoding the unit tests use); the end-to-end test decodes the
//! files with Perfetto's own Python bindings, which checks these numbers.
//!
//! Nothing here knows about ipft's events: see the parent module.

use prost::{Message, Oneof};

/// A trace file: `repeated TracePacket packet = 1`. ipft streams the packets
/// one by one (see [`super::write_packet`]); this whole-trace form is for
/// decoding in tests.
#[cfg(test)]
#[derive(Clone, PartialEq, Message)]
pub struct Trace {
    #[prost(message, repeated, tag = "1")]
    pub packet: Vec<TracePacket>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TracePacket {
    #[prost(uint64, optional, tag = "8")]
    pub timestamp: Option<u64>,
    /// `oneof optional_trusted_packet_sequence_id` in Perfetto: one field,
    /// the same on the wire as an optional one.
    #[prost(uint32, optional, tag = "10")]
    pub trusted_packet_sequence_id: Option<u32>,
    #[prost(message, optional, tag = "12")]
    pub interned_data: Option<InternedData>,
    /// [`SEQ_INCREMENTAL_STATE_CLEARED`], [`SEQ_NEEDS_INCREMENTAL_STATE`].
    #[prost(uint32, optional, tag = "13")]
    pub sequence_flags: Option<u32>,
    #[prost(message, optional, tag = "59")]
    pub trace_packet_defaults: Option<TracePacketDefaults>,
    #[prost(oneof = "Data", tags = "6, 11, 60")]
    pub data: Option<Data>,
}

pub const SEQ_INCREMENTAL_STATE_CLEARED: u32 = 1;
pub const SEQ_NEEDS_INCREMENTAL_STATE: u32 = 2;

/// `oneof data` of TracePacket (the three members ipft writes).
#[derive(Clone, PartialEq, Oneof)]
pub enum Data {
    #[prost(message, tag = "6")]
    ClockSnapshot(ClockSnapshot),
    #[prost(message, tag = "11")]
    TrackEvent(TrackEvent),
    #[prost(message, tag = "60")]
    TrackDescriptor(TrackDescriptor),
}

#[derive(Clone, PartialEq, Message)]
pub struct TracePacketDefaults {
    #[prost(uint32, optional, tag = "58")]
    pub timestamp_clock_id: Option<u32>,
}

/// BuiltinClock values (protos/perfetto/common/builtin_clock.proto).
pub const CLOCK_REALTIME: u32 = 1;
pub const CLOCK_MONOTONIC: u32 = 3;
pub const CLOCK_BOOTTIME: u32 = 6;

#[derive(Clone, PartialEq, Message)]
pub struct ClockSnapshot {
    #[prost(message, repeated, tag = "1")]
    pub clocks: Vec<Clock>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Clock {
    #[prost(uint32, optional, tag = "1")]
    pub clock_id: Option<u32>,
    #[prost(uint64, optional, tag = "2")]
    pub timestamp: Option<u64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TrackDescriptor {
    #[prost(uint64, optional, tag = "1")]
    pub uuid: Option<u64>,
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    #[prost(uint64, optional, tag = "5")]
    pub parent_uuid: Option<u64>,
    /// [`CHILD_ORDERING_CHRONOLOGICAL`].
    #[prost(int32, optional, tag = "11")]
    pub child_ordering: Option<i32>,
}

/// TrackDescriptor.ChildTracksOrdering: children in order of their first event.
pub const CHILD_ORDERING_CHRONOLOGICAL: i32 = 2;

#[derive(Clone, PartialEq, Message)]
pub struct TrackEvent {
    /// proto2 `repeated uint64`, not packed (Perfetto's own decoder reads it
    /// one field at a time).
    #[prost(uint64, repeated, packed = "false", tag = "3")]
    pub category_iids: Vec<u64>,
    #[prost(message, repeated, tag = "4")]
    pub debug_annotations: Vec<DebugAnnotation>,
    /// [`TYPE_SLICE_BEGIN`], [`TYPE_SLICE_END`], [`TYPE_INSTANT`].
    #[prost(int32, optional, tag = "9")]
    pub r#type: Option<i32>,
    #[prost(uint64, optional, tag = "11")]
    pub track_uuid: Option<u64>,
    #[prost(oneof = "EventName", tags = "10, 23")]
    pub name: Option<EventName>,
}

pub const TYPE_SLICE_BEGIN: i32 = 1;
pub const TYPE_SLICE_END: i32 = 2;
pub const TYPE_INSTANT: i32 = 3;

/// `oneof name_field` of TrackEvent and of DebugAnnotation (the same two
/// shapes, with other field numbers: see [`AnnotationName`]).
#[derive(Clone, PartialEq, Oneof)]
pub enum EventName {
    #[prost(uint64, tag = "10")]
    NameIid(u64),
    #[prost(string, tag = "23")]
    Name(String),
}

#[derive(Clone, PartialEq, Message)]
pub struct DebugAnnotation {
    #[prost(oneof = "AnnotationName", tags = "1, 10")]
    pub name: Option<AnnotationName>,
    #[prost(oneof = "AnnotationValue", tags = "2, 3, 4, 6")]
    pub value: Option<AnnotationValue>,
}

#[derive(Clone, PartialEq, Oneof)]
pub enum AnnotationName {
    #[prost(uint64, tag = "1")]
    NameIid(u64),
    #[prost(string, tag = "10")]
    Name(String),
}

#[derive(Clone, PartialEq, Oneof)]
pub enum AnnotationValue {
    #[prost(bool, tag = "2")]
    Bool(bool),
    #[prost(uint64, tag = "3")]
    Uint(u64),
    #[prost(int64, tag = "4")]
    Int(i64),
    #[prost(string, tag = "6")]
    String(String),
}

/// Strings sent once per sequence and referred to by iid afterwards.
#[derive(Clone, PartialEq, Message)]
pub struct InternedData {
    #[prost(message, repeated, tag = "1")]
    pub event_categories: Vec<InternedString>,
    #[prost(message, repeated, tag = "2")]
    pub event_names: Vec<InternedString>,
    #[prost(message, repeated, tag = "3")]
    pub debug_annotation_names: Vec<InternedString>,
}

impl InternedData {
    pub fn is_empty(&self) -> bool {
        self.event_categories.is_empty()
            && self.event_names.is_empty()
            && self.debug_annotation_names.is_empty()
    }
}

/// EventCategory, EventName and DebugAnnotationName: all `{iid = 1; name = 2}`.
#[derive(Clone, PartialEq, Message)]
pub struct InternedString {
    #[prost(uint64, optional, tag = "1")]
    pub iid: Option<u64>,
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
}
