//! Drains the kernel's event buffer (BPF ring buffer, or perf buffer on
//! kernels older than 5.8) and counts events that were lost on the way.
//! Decodes raw bytes into [`Event`]s; no formatting here.

use crate::event::Event;
use anyhow::{Context, Result};
use libbpf_rs::{
    MapCore, MapFlags, Object, PerfBuffer, PerfBufferBuilder, RingBuffer, RingBufferBuilder,
};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

enum Buffer<'o> {
    Ring(RingBuffer<'o>),
    Perf(PerfBuffer<'o>),
}

pub struct Reader<'o> {
    buffer: Buffer<'o>,
    obj: &'o Object,
    pending: Rc<RefCell<Vec<Event>>>,
    /// Records too short to be events, and perf buffer losses.
    reader_lost: Rc<RefCell<u64>>,
}

impl<'o> Reader<'o> {
    /// `use_ringbuf` must match what [`crate::backend::load`] chose.
    pub fn new(obj: &'o Object, page_count: u32, use_ringbuf: bool) -> Result<Self> {
        let pending = Rc::new(RefCell::new(Vec::new()));
        let reader_lost = Rc::new(RefCell::new(0u64));
        let buffer = if use_ringbuf {
            let map = obj_map(obj, "ipft_events_rb")?;
            let mut b = RingBufferBuilder::new();
            let (p, l) = (pending.clone(), reader_lost.clone());
            b.add(&map, move |bytes: &[u8]| {
                match Event::from_bytes(bytes) {
                    Some(e) => p.borrow_mut().push(e),
                    None => *l.borrow_mut() += 1,
                }
                0
            })?;
            Buffer::Ring(b.build()?)
        } else {
            let map = obj_map(obj, "ipft_events_perf")?;
            let (p, l, l2) = (pending.clone(), reader_lost.clone(), reader_lost.clone());
            let perf = PerfBufferBuilder::new(&map)
                .pages(page_count as usize)
                .sample_cb(move |_cpu, bytes: &[u8]| match Event::from_bytes(bytes) {
                    Some(e) => p.borrow_mut().push(e),
                    None => *l.borrow_mut() += 1,
                })
                .lost_cb(move |_cpu, n| *l2.borrow_mut() += n)
                .build()?;
            Buffer::Perf(perf)
        };
        Ok(Reader {
            buffer,
            obj,
            pending,
            reader_lost,
        })
    }

    /// Waits up to `timeout` for events and returns those that arrived.
    pub fn poll(&self, timeout: Duration) -> Result<Vec<Event>> {
        let r = match &self.buffer {
            Buffer::Ring(rb) => rb.poll(timeout),
            Buffer::Perf(pb) => pb.poll(timeout),
        };
        // EINTR from a signal is how Ctrl-C wakes us: not an error.
        if let Err(e) = r {
            if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                return Err(e).context("reading events");
            }
        }
        // A poll only reads buffers the kernel woke us for. With
        // --perf-wakeup-events N it wakes us every N events, and a buffer
        // that fills before the Nth never wakes us at all (found by the
        // flood test: 121 events read, 659,879 lost), so also take whatever
        // is there each time the poll returns.
        self.drain()
    }

    /// Takes every event still buffered without waiting.
    pub fn drain(&self) -> Result<Vec<Event>> {
        match &self.buffer {
            Buffer::Ring(rb) => rb.consume()?,
            Buffer::Perf(pb) => pb.consume()?,
        }
        Ok(std::mem::take(&mut *self.pending.borrow_mut()))
    }

    /// Events lost per CPU in the kernel (buffer full), plus losses the
    /// reader saw, as (per_cpu, reader).
    pub fn lost(&self) -> Result<(Vec<u64>, u64)> {
        let map = obj_map(self.obj, "ipft_lost")?;
        let per_cpu = map
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)?
            .unwrap_or_default()
            .iter()
            .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap_or([0; 8])))
            .collect();
        Ok((per_cpu, *self.reader_lost.borrow()))
    }
}

fn obj_map<'o>(obj: &'o Object, name: &str) -> Result<libbpf_rs::Map<'o>> {
    obj.maps()
        .find(|m| m.name() == name)
        .with_context(|| format!("BPF map {name} missing from ipft's object"))
}
