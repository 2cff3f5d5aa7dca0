//! Outputs: where traced events go. `aggregate` keeps them and prints one
//! listing per packet at exit; `json` streams one object per event;
//! `perfetto` streams a Perfetto trace (tracks, slices, instants); `pcapng`
//! streams the captured packet bytes as frames for Wireshark. clock.rs
//! converts event timestamps for the formats that show wall-clock time.
//!
//! Outputs receive events already resolved to their function; they never
//! look at the kernel.

pub mod aggregate;
pub mod clock;
pub mod json;
pub mod pcapng;
pub mod perfetto;

use crate::decode::Fields;
use crate::discovery::Target;
use crate::event::Event;
use crate::kernel::btf::IntType;
use crate::verdict::Verdict;
use anyhow::Result;

/// The function an event was recorded in.
#[derive(Clone, Copy, Debug)]
pub struct Func<'t> {
    pub name: &'t str,
    pub module: &'t str,
    /// Identifies the function: the same for a call's entry and return.
    pub id: u64,
    /// The integer it returns, if any.
    pub ret: Option<IntType>,
}

impl<'t> Func<'t> {
    /// The function of `target`, or an unknown one at `faddr`.
    pub fn of(target: Option<&'t Target>, faddr: u64) -> Self {
        match target {
            Some(t) => Func {
                name: &t.name,
                module: &t.module,
                id: t.addr,
                ret: t.ret,
            },
            None => Func {
                name: "(unknown)",
                module: "(unknown)",
                id: faddr,
                ret: None,
            },
        }
    }
}

/// Functions after which an skb address belongs to no packet any more: the
/// skb's memory was given back (to the slab, or to the NAPI cache).
pub const SKB_MEMORY_FREED: &[&str] = &["kfree_skbmem", "napi_skb_cache_put"];

/// "3.215 us": a call's duration as ftrace's function_graph shows it.
pub fn format_duration(ns: u64) -> String {
    format!("{}.{:03} us", ns / 1000, ns % 1000)
}

pub trait Output<'t> {
    /// One event, in arrival order, with its extra fields.
    fn on_event(&mut self, event: &Event, func: Func<'t>, fields: Fields) -> Result<()>;
    /// Packet `packet_id` ended (or tracing stopped with it in flight).
    fn on_verdict(&mut self, packet_id: u64, verdict: &Verdict) -> Result<()>;
    /// The events of one read of the buffer have all been given: make them
    /// visible to whoever reads the output (one write per batch, not per
    /// event: at high rates the writes were what the reader spent its time
    /// on, and the kernel's buffer overflowed meanwhile).
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    /// Tracing is over: write what is left.
    fn finish(&mut self) -> Result<()>;
    /// Events seen so far.
    fn count(&self) -> u64;
    /// A line for stderr at exit about what the output left out, if any.
    fn summary(&self) -> Option<String> {
        None
    }
}
