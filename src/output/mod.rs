//! Outputs: where traced events go. `aggregate` keeps them and prints one
//! listing per packet at exit; `json` streams one object per event.
//!
//! Outputs receive events already resolved to their function; they never
//! look at the kernel.

pub mod aggregate;
pub mod json;

use crate::decode::Fields;
use crate::discovery::Target;
use crate::event::Event;
use anyhow::Result;

/// The function an event was recorded in.
#[derive(Clone, Copy, Debug)]
pub struct Func<'t> {
    pub name: &'t str,
    pub module: &'t str,
}

impl<'t> Func<'t> {
    pub fn of(target: Option<&'t Target>) -> Self {
        match target {
            Some(t) => Func {
                name: &t.name,
                module: &t.module,
            },
            None => Func {
                name: "(unknown)",
                module: "(unknown)",
            },
        }
    }
}

pub trait Output<'t> {
    /// One event, in arrival order, with its extra fields.
    fn on_event(&mut self, event: &Event, func: Func<'t>, fields: Fields) -> Result<()>;
    /// Tracing is over: write what is left.
    fn finish(&mut self) -> Result<()>;
    /// Events seen so far.
    fn count(&self) -> u64;
}
