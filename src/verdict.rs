//! What became of each packet: dropped (where, why, in which namespace and
//! on which device), delivered to a socket, transmitted by a device,
//! consumed by the kernel, or still in flight when tracing stopped; and the
//! summary over all packets printed at exit.
//!
//! Pure logic over a packet's events in arrival order ([`Journey`]),
//! classified by function name and drop reason; [`Journeys`] keeps the open
//! ones (bounded) and hands out a verdict when a packet ends.

use crate::event::{Event, Meta, Stack};
use serde::Serialize;
use std::collections::HashMap;

/// Where a packet is handed to a socket.
const SOCKET_FUNCS: &[&str] = &[
    "sock_queue_rcv_skb_reason",
    "sock_queue_rcv_skb",
    "__sock_queue_rcv_skb",
    "__udp_enqueue_schedule_skb",
    "ping_queue_rcv_skb",
    "raw_rcv_skb",
    "tcp_queue_rcv",
    "tcp_add_backlog",
    "tcp_rcv_established",
    "tcp_data_queue",
    "tcp_rcv_state_process",
];

/// Where a device is given the packet to send.
const XMIT_FUNCS: &[&str] = &["dev_hard_start_xmit", "xmit_one"];

/// Where memory is given back: not where a packet's processing ended.
const MEMORY_FUNCS: &[&str] = &[
    "kfree_skbmem",
    "napi_skb_cache_put",
    "skb_release_data",
    "skb_release_head_state",
    "skb_release_all",
    "skb_free_head",
    "__kfree_skb",
    "consume_skb",
    "napi_consume_skb",
    "kfree_skb_partial",
    "skb_attempt_defer_free",
    // Drop functions and the kfree_skb tracepoint, when their reason says
    // the packet was consumed.
    "kfree_skb",
    "kfree_skb_reason",
    "sk_skb_reason_drop",
];

/// Drop reasons that are not drops.
const NOT_DROPS: &[&str] = &["SKB_CONSUMED", "NOT_DROPPED_YET"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Dropped,
    Delivered,
    Transmitted,
    Consumed,
    InFlight,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Dropped => "dropped",
            Kind::Delivered => "delivered",
            Kind::Transmitted => "transmitted",
            Kind::Consumed => "consumed",
            Kind::InFlight => "in_flight",
        }
    }
}

/// One packet's end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub kind: Kind,
    /// The dropping, delivering or transmitting function; for consumed and
    /// in-flight packets the last function that worked on it.
    pub function: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ifname: Option<String>,
    /// Index (in the packet's events) of the event the verdict is about.
    #[serde(skip)]
    pub event: usize,
    /// The kernel stack of that event (drops), for outputs to symbolize.
    #[serde(skip)]
    pub stack: Option<Stack>,
}

impl Verdict {
    /// `dropped at kfree_skb_reason (NETFILTER_DROP) in netns 4026532 dev vb`.
    pub fn describe(&self) -> String {
        let mut s = match self.kind {
            Kind::Dropped => format!("dropped at {}", self.function),
            Kind::Delivered => format!("delivered to a socket at {}", self.function),
            Kind::Transmitted => format!("transmitted at {}", self.function),
            Kind::Consumed => format!("consumed after {}", self.function),
            Kind::InFlight => format!("in flight (last seen at {})", self.function),
        };
        if let Some(r) = &self.reason {
            s.push_str(&format!(" ({r})"));
        }
        if let Some(n) = self.netns {
            s.push_str(&format!(" in netns {n}"));
        }
        if let Some(d) = &self.ifname {
            s.push_str(&format!(" dev {d}"));
        }
        s
    }
}

/// The notable steps of one packet so far.
#[derive(Clone, Debug, Default)]
pub struct Journey {
    events: usize,
    drop: Option<Step>,
    deliver: Option<Step>,
    xmit: Option<Step>,
    /// The last event that was not memory being given back.
    last_work: Option<Step>,
    /// The last event that was memory being given back.
    last: Option<Step>,
    /// Whether an event after the last transmit was on another device or
    /// namespace (veth: the packet went on in the peer).
    moved_after_xmit: bool,
}

#[derive(Clone, Debug)]
struct Step {
    index: usize,
    function: String,
    reason: Option<String>,
    netns: Option<u32>,
    ifname: Option<String>,
    stack: Option<Stack>,
}

fn step(index: usize, function: &str, reason: Option<String>, meta: Option<&Meta>) -> Step {
    Step {
        index,
        function: function.to_string(),
        reason,
        netns: meta
            .filter(|m| m.has(crate::event::META_NETNS))
            .map(|m| m.netns),
        ifname: meta.and_then(|m| m.ifname()).map(str::to_string),
        stack: None,
    }
}

impl Journey {
    /// Takes the packet's next event; `function` is its name, `reason` the
    /// drop reason's name if it carries one. Returns are not steps.
    pub fn see(&mut self, e: &Event, function: &str, reason: Option<String>) {
        let index = self.events;
        self.events += 1;
        if e.is_return != 0 {
            return;
        }
        let here = step(index, function, None, e.meta.as_deref());
        if let Some(x) = &self.xmit {
            if (here.ifname.is_some() && here.ifname != x.ifname)
                || (here.netns.is_some() && here.netns != x.netns)
            {
                self.moved_after_xmit = true;
            }
        }
        let dropped = match &reason {
            Some(r) => !NOT_DROPS.contains(&r.as_str()),
            None => false,
        };
        if dropped {
            self.drop = Some(Step {
                reason,
                stack: e.stack.as_deref().cloned(),
                ..here.clone()
            });
        } else if SOCKET_FUNCS.contains(&function) {
            self.deliver = Some(here.clone());
        } else if XMIT_FUNCS.contains(&function) {
            self.xmit = Some(here.clone());
            self.moved_after_xmit = false;
        }
        // last_step() prefers the last working function: the last event
        // overall matters only while every event was a free.
        if MEMORY_FUNCS.contains(&function) {
            self.last = Some(here);
        } else {
            self.last_work = Some(here);
        }
    }

    /// The verdict: `ended` says whether the packet's end was seen.
    pub fn verdict(&self, ended: bool) -> Verdict {
        // A copy handed to a socket first (a raw socket's clone; tcpdump's
        // does not count) means the packet arrived, whatever the kernel
        // then does with the original (ping_rcv drops it: NO_SOCKET).
        let delivered_first = match (&self.deliver, &self.drop) {
            (Some(s), Some(d)) => s.index < d.index,
            _ => false,
        };
        let (kind, s) = if let Some(d) = self.drop.as_ref().filter(|_| !delivered_first) {
            (Kind::Dropped, d)
        } else if let Some(s) = self.deliver.as_ref().filter(|_| delivered_first) {
            (Kind::Delivered, s)
        } else if !ended {
            (Kind::InFlight, self.last_step())
        } else {
            let delivered_last = match (&self.deliver, &self.xmit) {
                (Some(d), Some(x)) => d.index > x.index,
                (Some(_), None) => true,
                _ => false,
            };
            match (&self.deliver, &self.xmit) {
                (Some(d), _) if delivered_last => (Kind::Delivered, d),
                (_, Some(x)) if !self.moved_after_xmit => (Kind::Transmitted, x),
                _ => (Kind::Consumed, self.last_step()),
            }
        };
        Verdict {
            kind,
            function: s.function.clone(),
            reason: s.reason.clone(),
            netns: s.netns,
            ifname: s.ifname.clone(),
            event: s.index,
            stack: s.stack.clone(),
        }
    }

    /// Where the packet's processing was last seen: the last function that
    /// was not freeing memory, else (only frees were traced) the last one.
    fn last_step(&self) -> &Step {
        static NONE: std::sync::OnceLock<Step> = std::sync::OnceLock::new();
        self.last_work
            .as_ref()
            .or(self.last.as_ref())
            .unwrap_or_else(|| NONE.get_or_init(|| step(0, "(none)", None, None)))
    }
}

/// Open journeys by packet id, at most this many (the oldest are closed as
/// in flight past it, so memory stays bounded under a flood).
const MAX_OPEN: usize = 65536;

#[derive(Default)]
pub struct Journeys {
    open: HashMap<u64, Journey>,
    summary: Summary,
}

impl Journeys {
    /// Takes an event; returns the packet's verdict when this event ends it.
    pub fn see(
        &mut self,
        e: &Event,
        function: &str,
        reason: Option<String>,
        ends: bool,
    ) -> Option<Verdict> {
        // Returns of calls made before the packet ended (function_graph)
        // arrive after its verdict: they start nothing.
        if e.is_return != 0 && !self.open.contains_key(&e.packet_id) {
            return None;
        }
        if self.open.len() >= MAX_OPEN && !self.open.contains_key(&e.packet_id) {
            for (_, j) in self.open.drain() {
                self.summary.add(&j.verdict(false));
            }
        }
        let j = self.open.entry(e.packet_id).or_default();
        j.see(e, function, reason);
        if !ends {
            return None;
        }
        let v = self.open.remove(&e.packet_id)?.verdict(true);
        self.summary.add(&v);
        Some(v)
    }

    /// Tracing stopped: the verdicts of the packets still open.
    pub fn finish(&mut self) -> Vec<(u64, Verdict)> {
        let mut left: Vec<(u64, Verdict)> = self
            .open
            .drain()
            .map(|(id, j)| (id, j.verdict(false)))
            .collect();
        left.sort_by_key(|(id, _)| *id);
        for (_, v) in &left {
            self.summary.add(v);
        }
        left
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }
}

/// Counts over every packet's verdict.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub packets: u64,
    pub verdicts: std::collections::BTreeMap<&'static str, u64>,
    /// (function, reason) -> drops, most first when reported.
    #[serde(skip)]
    drops: HashMap<(String, String), u64>,
}

/// Drop locations listed in the summary.
const TOP_DROPS: usize = 5;

impl Summary {
    fn add(&mut self, v: &Verdict) {
        self.packets += 1;
        *self.verdicts.entry(v.kind.name()).or_default() += 1;
        if v.kind == Kind::Dropped {
            let reason = v.reason.clone().unwrap_or_else(|| "unknown".into());
            *self.drops.entry((v.function.clone(), reason)).or_default() += 1;
        }
    }

    /// The most frequent drop locations: (function, reason, count).
    pub fn top_drops(&self) -> Vec<(String, String, u64)> {
        let mut d: Vec<(String, String, u64)> = self
            .drops
            .iter()
            .map(|((f, r), n)| (f.clone(), r.clone(), *n))
            .collect();
        d.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
        d.truncate(TOP_DROPS);
        d
    }

    /// Lines for stderr.
    pub fn lines(&self) -> Vec<String> {
        let counts: Vec<String> = self
            .verdicts
            .iter()
            .map(|(k, n)| format!("{n} {}", k.replace('_', " ")))
            .collect();
        let mut out = vec![format!(
            "{} packets: {}",
            self.packets,
            if counts.is_empty() {
                "none".to_string()
            } else {
                counts.join(", ")
            }
        )];
        for (f, r, n) in self.top_drops() {
            out.push(format!("  dropped {n} at {f} ({r})"));
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        let drops: Vec<serde_json::Value> = self
            .top_drops()
            .into_iter()
            .map(|(f, r, n)| serde_json::json!({"function": f, "reason": r, "count": n}))
            .collect();
        serde_json::json!({
            "packets": self.packets,
            "verdicts": self.verdicts,
            "top_drops": drops,
        })
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
