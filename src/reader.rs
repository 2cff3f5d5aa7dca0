//! Drains the kernel's event buffer (BPF ring buffer, or perf buffer on
//! kernels older than 5.8) and counts events that were lost on the way.
//! Decodes raw bytes into [`Event`]s; no formatting here.
//!
//! The buffer is drained on a thread of its own, which does nothing else:
//! while the caller formats and writes one batch, the next is already being
//! taken out of the kernel's buffer, so a slow output (a terminal, a pipe,
//! JSON) does not make the kernel drop events. Batches wait in a bounded
//! queue ([`QUEUED_BATCHES`]): when the output falls that far behind, the
//! drainer waits and the kernel's buffer takes the overflow (counted lost),
//! instead of ipft's memory growing without bound.

use crate::event::Event;
use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags, Object, PerfBufferBuilder, RingBufferBuilder};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Batches (each at most one buffer's worth of events) waiting for the
/// output before the drainer stops taking more.
const QUEUED_BATCHES: usize = 16;

/// How long the drainer waits in the kernel for events before it looks at
/// the stop flag: bounds the delay between Ctrl-C and the last batch.
const DRAIN_POLL: Duration = Duration::from_millis(50);

pub struct Reader<'o> {
    obj: &'o Object,
    batches: Receiver<Vec<Event>>,
    stop: Arc<AtomicBool>,
    drainer: Option<JoinHandle<Result<()>>>,
    /// Records too short to be events, and perf buffer losses.
    reader_lost: Arc<AtomicU64>,
}

/// What the buffer's callbacks fill and the drainer sends on.
type Pending = Arc<Mutex<Vec<Event>>>;

impl<'o> Reader<'o> {
    /// `use_ringbuf` must match what [`crate::backend::load`] chose.
    pub fn new(obj: &'o Object, page_count: u32, use_ringbuf: bool) -> Result<Self> {
        let pending: Pending = Arc::default();
        let reader_lost = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, batches) = sync_channel(QUEUED_BATCHES);
        let on_record = {
            let (p, l) = (pending.clone(), reader_lost.clone());
            move |bytes: &[u8]| match Event::from_bytes(bytes) {
                Some(e) => p.lock().unwrap().push(e),
                None => {
                    l.fetch_add(1, Ordering::Relaxed);
                }
            }
        };
        let drainer = if use_ringbuf {
            let map = obj_map(obj, "ipft_events_rb")?;
            let mut b = RingBufferBuilder::new();
            b.add(&map, move |bytes: &[u8]| {
                on_record(bytes);
                0
            })?;
            let rb = b.build()?;
            let stop = stop.clone();
            std::thread::spawn(move || {
                drain_until(&stop, &pending, &tx, |t| rb.poll(t), || rb.consume())
            })
        } else {
            let map = obj_map(obj, "ipft_events_perf")?;
            let l = reader_lost.clone();
            let pb = PerfBufferBuilder::new(&map)
                .pages(page_count as usize)
                .sample_cb(move |_cpu, bytes: &[u8]| on_record(bytes))
                .lost_cb(move |_cpu, n| {
                    l.fetch_add(n, Ordering::Relaxed);
                })
                .build()?;
            let stop = stop.clone();
            std::thread::spawn(move || {
                drain_until(&stop, &pending, &tx, |t| pb.poll(t), || pb.consume())
            })
        };
        Ok(Reader {
            obj,
            batches,
            stop,
            drainer: Some(drainer),
            reader_lost,
        })
    }

    /// Waits up to `timeout` for events and returns those that arrived.
    pub fn poll(&mut self, timeout: Duration) -> Result<Vec<Event>> {
        let mut events = match self.batches.recv_timeout(timeout) {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) => return Ok(Vec::new()),
            // The drainer stopped on an error: say which.
            Err(RecvTimeoutError::Disconnected) => {
                self.join()?;
                std::thread::sleep(timeout);
                return Ok(Vec::new());
            }
        };
        while let Ok(more) = self.batches.try_recv() {
            events.extend(more);
        }
        Ok(events)
    }

    /// Stops the drainer and returns every event still buffered, in the
    /// queue and in the kernel.
    pub fn drain(&mut self) -> Result<Vec<Event>> {
        self.stop.store(true, Ordering::SeqCst);
        let mut events = Vec::new();
        // Until the drainer has sent its last batch and gone.
        while let Ok(batch) = self.batches.recv() {
            events.extend(batch);
        }
        self.join()?;
        Ok(events)
    }

    /// Waits for the drainer to end; its error, if it had one.
    fn join(&mut self) -> Result<()> {
        match self.drainer.take() {
            Some(drainer) => drainer
                .join()
                .map_err(|_| anyhow::anyhow!("the event reader thread panicked"))?,
            None => Ok(()),
        }
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
        Ok((per_cpu, self.reader_lost.load(Ordering::Relaxed)))
    }
}

impl Drop for Reader<'_> {
    /// On an early return (an output error): the drainer stops too.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The drainer's loop: wait for events, take them all, send them as one
/// batch; after `stop`, one last take. Returns when the receiver is gone
/// too.
fn drain_until(
    stop: &AtomicBool,
    pending: &Pending,
    tx: &SyncSender<Vec<Event>>,
    poll: impl Fn(Duration) -> libbpf_rs::Result<()>,
    consume: impl Fn() -> libbpf_rs::Result<()>,
) -> Result<()> {
    let send = || {
        let batch = std::mem::take(&mut *pending.lock().unwrap());
        // A receiver that is gone wants nothing more.
        batch.is_empty() || tx.send(batch).is_ok()
    };
    while !stop.load(Ordering::SeqCst) {
        // EINTR from a signal is not an error.
        if let Err(e) = poll(DRAIN_POLL) {
            if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                return Err(e).context("reading events");
            }
        }
        // A poll only reads buffers the kernel woke us for. With
        // --perf-wakeup-events N it wakes us every N events, and a buffer
        // that fills before the Nth never wakes us at all (found by the
        // flood test: 121 events read, 659,879 lost), so also take whatever
        // is there each time the poll returns.
        consume().context("reading events")?;
        if !send() {
            return Ok(());
        }
    }
    consume().context("reading events")?;
    send();
    Ok(())
}

fn obj_map<'o>(obj: &'o Object, name: &str) -> Result<libbpf_rs::Map<'o>> {
    obj.maps()
        .find(|m| m.name() == name)
        .with_context(|| format!("BPF map {name} missing from ipft's object"))
}
