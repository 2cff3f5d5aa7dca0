//! The function_graph tracer's logic: pairs each return with its entry and
//! gives every event its call depth and every completed call its duration.
//!
//! Depth is kept per packet and per CPU, so calls of different packets
//! interleaved on one CPU never mix, and it never goes below zero. A return
//! pops back to its own entry (entries whose returns were never seen in
//! between are closed over); a return with no entry is reported as such.
//! Pure logic over event sequences, tested without a kernel.

use crate::event::Event;
use std::collections::HashMap;

/// What the graph says about one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A call at this depth.
    Entry { depth: usize },
    /// The return of the call entered at this depth, `duration_ns` later;
    /// `entry` is the index (in step order) of that call's entry.
    Return {
        depth: usize,
        duration_ns: u64,
        entry: usize,
    },
    /// A return whose entry was not seen (tracing started inside the call,
    /// or the mark was set during it); shown at the current depth.
    UnmatchedReturn { depth: usize },
}

struct Open {
    func: u64,
    tstamp: u64,
    /// Index of the entry event in the caller's sequence.
    index: usize,
}

/// Calls kept open per (packet, CPU): deeper ones drop the outermost.
const MAX_DEPTH: usize = 256;
/// (packet, CPU) pairs with open calls: past this, all are forgotten. Keeps
/// memory bounded when returns are never seen (streaming output).
const MAX_OPEN_STACKS: usize = 65536;

/// Call stacks per (packet, CPU).
#[derive(Default)]
pub struct CallStacks {
    stacks: HashMap<(u64, u32), Vec<Open>>,
    next_index: usize,
}

impl CallStacks {
    /// Takes the next event; `func` identifies its function (the same value
    /// for an entry and its return).
    pub fn step(&mut self, e: &Event, func: u64) -> Step {
        let index = self.next_index;
        self.next_index += 1;
        let key = (e.packet_id, e.processor_id);
        if self.stacks.len() >= MAX_OPEN_STACKS && !self.stacks.contains_key(&key) {
            self.stacks.clear();
        }
        let stack = self.stacks.entry(key).or_default();
        if e.is_return == 0 {
            if stack.len() >= MAX_DEPTH {
                stack.remove(0);
            }
            let depth = stack.len();
            stack.push(Open {
                func,
                tstamp: e.tstamp,
                index,
            });
            return Step::Entry { depth };
        }
        let step = match stack.iter().rposition(|o| o.func == func) {
            Some(depth) => {
                let open = &stack[depth];
                let step = Step::Return {
                    depth,
                    duration_ns: e.tstamp.saturating_sub(open.tstamp),
                    entry: open.index,
                };
                stack.truncate(depth);
                step
            }
            None => Step::UnmatchedReturn { depth: stack.len() },
        };
        if stack.is_empty() {
            self.stacks.remove(&key);
        }
        step
    }

    /// Open calls across all packets.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.stacks.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(packet_id: u64, cpu: u32, tstamp: u64, is_return: bool) -> Event {
        Event {
            packet_id,
            processor_id: cpu,
            tstamp,
            is_return: is_return as u8,
            ..Event::default()
        }
    }

    #[test]
    fn nested_calls_get_depths_and_durations() {
        let mut g = CallStacks::default();
        assert_eq!(g.step(&ev(1, 0, 10, false), 0xa), Step::Entry { depth: 0 });
        assert_eq!(g.step(&ev(1, 0, 12, false), 0xb), Step::Entry { depth: 1 });
        assert_eq!(
            g.step(&ev(1, 0, 15, true), 0xb),
            Step::Return {
                depth: 1,
                duration_ns: 3,
                entry: 1
            }
        );
        assert_eq!(
            g.step(&ev(1, 0, 20, true), 0xa),
            Step::Return {
                depth: 0,
                duration_ns: 10,
                entry: 0
            }
        );
        assert_eq!(g.len(), 0);
    }

    #[test]
    fn interleaved_packets_on_one_cpu_do_not_mix() {
        let mut g = CallStacks::default();
        assert_eq!(g.step(&ev(1, 0, 1, false), 0xa), Step::Entry { depth: 0 });
        // Packet 2's call runs inside packet 1's on the same CPU.
        assert_eq!(g.step(&ev(2, 0, 2, false), 0xa), Step::Entry { depth: 0 });
        assert_eq!(
            g.step(&ev(2, 0, 3, true), 0xa),
            Step::Return {
                depth: 0,
                duration_ns: 1,
                entry: 1
            }
        );
        assert_eq!(
            g.step(&ev(1, 0, 9, true), 0xa),
            Step::Return {
                depth: 0,
                duration_ns: 8,
                entry: 0
            }
        );
        // Same packet on another CPU: its own stack.
        assert_eq!(g.step(&ev(1, 1, 10, false), 0xc), Step::Entry { depth: 0 });
    }

    #[test]
    fn truncated_sequences_are_reported_not_dropped() {
        let mut g = CallStacks::default();
        // A return whose entry was missed: depth stays at zero.
        assert_eq!(
            g.step(&ev(1, 0, 1, true), 0xa),
            Step::UnmatchedReturn { depth: 0 }
        );
        // An entry whose return never comes (tracing stopped).
        assert_eq!(g.step(&ev(1, 0, 2, false), 0xb), Step::Entry { depth: 0 });
        assert_eq!(g.step(&ev(1, 0, 3, false), 0xc), Step::Entry { depth: 1 });
        // 0xb returns without 0xc's return: 0xc is closed over.
        assert_eq!(
            g.step(&ev(1, 0, 5, true), 0xb),
            Step::Return {
                depth: 0,
                duration_ns: 3,
                entry: 1
            }
        );
        assert_eq!(g.step(&ev(1, 0, 6, false), 0xd), Step::Entry { depth: 0 });
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn memory_stays_bounded_without_returns() {
        let mut g = CallStacks::default();
        for i in 0..1000 {
            g.step(&ev(1, 0, i, false), i);
        }
        assert_eq!(g.len(), MAX_DEPTH);
        for p in 0..(MAX_OPEN_STACKS as u64 + 10) {
            g.step(&ev(100 + p, 0, 1, false), 1);
        }
        assert!(g.len() <= MAX_OPEN_STACKS);
    }

    #[test]
    fn recursion_pairs_innermost_first() {
        let mut g = CallStacks::default();
        g.step(&ev(1, 0, 1, false), 0xa);
        g.step(&ev(1, 0, 2, false), 0xa);
        assert_eq!(
            g.step(&ev(1, 0, 4, true), 0xa),
            Step::Return {
                depth: 1,
                duration_ns: 2,
                entry: 1
            }
        );
        assert_eq!(
            g.step(&ev(1, 0, 7, true), 0xa),
            Step::Return {
                depth: 0,
                duration_ns: 6,
                entry: 0
            }
        );
    }
}
