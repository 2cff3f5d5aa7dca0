//! Backends: how BPF programs get attached to the discovered functions.
//!
//! Every backend loads one BPF object (built from src/bpf) configured by
//! [`load`], knows how many skb parameter positions it can read, and attaches
//! its programs to the targets, returning file-descriptor based links so that
//! nothing stays attached when ipft exits, however it exits.

pub mod clone;
pub mod detach_estimate;
pub mod ftrace;
pub mod kprobe;
pub mod kprobe_multi;
pub mod tracepoint;

use crate::bpf::BpfConfig;
use crate::cli::BackendKind;
use crate::discovery::{Discovery, KernelFacts, NameFilter, Target};
use crate::extension::Extension;
use crate::filter::PacketFilter;
use anyhow::{bail, Context, Result};
use clone::ProgTemplate;
use libbpf_rs::{Link, MapCore, Object, ObjectBuilder, OpenObject};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// What the user asked of the BPF side.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    pub mark: u32,
    pub mask: u32,
    /// IPFT_SELECT_* bits: which selectors the programs check.
    pub select: u32,
    /// Network namespace inode (with SELECT_NETNS).
    pub netns: u32,
    /// Device index (with SELECT_IFINDEX).
    pub ifindex: u32,
    /// Follow selected packets (src/bpf/track.bpf.h).
    pub track: bool,
    /// Entries of the tracking map.
    pub track_max: u32,
    /// Entries of the function flags map (src/funcs.rs).
    pub funcs_max: u32,
    /// Add packet metadata to entry events.
    pub meta: bool,
    /// Packet bytes to capture per entry event (0: none).
    pub snaplen: u32,
    /// Event buffer pages per CPU.
    pub page_count: u32,
    /// Emit one matching event in this many.
    pub sample_period: u32,
    /// Wake the reader every this many events.
    pub wakeup_events: u32,
}

/// One attachment: a libbpf link, or the file descriptor of a link or raw
/// tracepoint made by a lower-level call. Dropping it detaches.
#[allow(dead_code)] // the fields are held only so that dropping them detaches
pub enum Attachment {
    Link(Link),
    Fd(OwnedFd),
    /// Entry and return probes of one function (function_graph).
    Pair(OwnedFd, OwnedFd),
}

/// Links of one attach run and what the kernel refused.
pub struct Attached {
    pub links: Vec<Attachment>,
    pub attached: usize,
    /// (function, reason) for every target the kernel refused.
    pub refused: Vec<(String, String)>,
    pub elapsed: Duration,
    /// Attach was cut short by a signal.
    pub interrupted: bool,
}

impl Attached {
    /// Gathers the per-target results of a parallel attach (None: not
    /// tried because a signal stopped the run).
    pub fn from_results(
        targets: &[Target],
        results: Vec<Option<Result<Attachment>>>,
        start: std::time::Instant,
    ) -> Self {
        let mut attached = Attached {
            links: Vec::with_capacity(targets.len()),
            attached: 0,
            refused: Vec::new(),
            elapsed: Duration::ZERO,
            interrupted: false,
        };
        for (t, r) in targets.iter().zip(results) {
            match r {
                Some(Ok(a)) => attached.links.push(a),
                Some(Err(e)) => attached
                    .refused
                    .push((format!("{} [{}]", t.name, t.module), format!("{e:#}"))),
                None => attached.interrupted = true,
            }
        }
        attached.attached = attached.links.len();
        attached.elapsed = start.elapsed();
        attached
    }
}

/// A way of attaching to kernel functions.
pub trait Backend {
    fn kind(&self) -> BackendKind;
    /// skb parameter positions its programs can read (0..max).
    fn max_positions(&self) -> usize;
    /// The embedded BPF object it loads.
    fn object_bytes(&self) -> &'static [u8];
    /// Adjusts the opened object before load (attach targets, autoload).
    fn prepare(&self, _open: &mut OpenObject, _targets: &[Target]) -> Result<()> {
        Ok(())
    }
    /// Attaches the loaded programs to every target, stopping early when
    /// `stop` becomes true.
    fn attach(&self, progs: &Programs, targets: &[Target], stop: &AtomicBool) -> Result<Attached>;
    /// Whether its entry programs must remember calls for their returns
    /// (fentry's function_graph; kprobes have their own entry programs).
    fn remembers_calls(&self) -> bool {
        false
    }
    /// Whether the running kernel can serve this backend, beyond
    /// [`Backend::requirement`] (checked first): a one-line error naming the
    /// missing kernel feature when it cannot. `sample` is a target to try
    /// attaching to, where trying is the only way to know.
    fn check(&self, _tracefs: &Path, _sample: &Target) -> Result<()> {
        Ok(())
    }
    /// A kernel feature the backend needs, checked without any target (so
    /// that a kernel lacking it is named even when nothing can be attached).
    fn requirement(&self, _tracefs: &Path) -> Result<()> {
        Ok(())
    }
    /// Whether expedited RCU grace periods (see [`crate::kernel::rcu`])
    /// shorten this backend's detach. Measured per backend: they do for
    /// kprobes; fentry trampolines wait on RCU-tasks grace periods, and
    /// there they made detach slower.
    fn expedite_rcu(&self) -> bool {
        false
    }
    /// The functions this backend would trace.
    fn discover(&self, facts: &KernelFacts, filter: &NameFilter) -> Discovery {
        crate::discovery::discover(facts, self.max_positions(), filter)
    }
}

/// Backends in the order automatic choice tries them: fastest attach first.
pub const AUTO_ORDER: &[BackendKind] = &[
    BackendKind::KprobeMulti,
    BackendKind::Ftrace,
    BackendKind::Kprobe,
    BackendKind::Tracepoint,
];

/// The backend for `kind`, or a one-line explanation of why it cannot serve
/// the tracer.
/// `graph`: the backend must also report returns (function_graph).
pub fn create(kind: BackendKind, graph: bool) -> Result<Box<dyn Backend>> {
    match kind {
        BackendKind::Kprobe => Ok(Box::new(kprobe::Kprobe { graph })),
        BackendKind::KprobeMulti => Ok(Box::new(kprobe_multi::KprobeMulti { graph })),
        BackendKind::Ftrace => Ok(Box::new(ftrace::Ftrace { graph })),
        BackendKind::Tracepoint if graph => bail!(
            "backend tracepoint cannot serve tracer function_graph: tracepoints have no returns; use -b ftrace, -b kprobe-multi or -b kprobe"
        ),
        BackendKind::Tracepoint => Ok(Box::new(tracepoint::Tracepoint)),
    }
}

/// True when the running kernel has BPF ring buffers (Linux 5.8+).
pub fn kernel_has_ringbuf() -> bool {
    // SAFETY: plain libbpf feature probe; NULL opts is allowed.
    unsafe {
        libbpf_sys::libbpf_probe_bpf_map_type(libbpf_sys::BPF_MAP_TYPE_RINGBUF, std::ptr::null())
            == 1
    }
}

/// The loaded object, and the programs backends attach: libbpf's own, or,
/// with a pcap-filter expression, copies with the translated filter spliced
/// in (src/filter/splice.rs). Backends take every program from here, so the
/// filter reaches every backend the same way.
pub struct Programs {
    obj: Object,
    /// Program name -> its final instructions with the filter spliced in.
    spliced: HashMap<String, ProgTemplate>,
    /// Program name -> the loaded spliced copy (kprobe programs, which are
    /// attached as they are; tracing and raw tracepoint programs are loaded
    /// per target from their template).
    copies: HashMap<String, OwnedFd>,
}

impl Programs {
    fn new(obj: Object, filter: Option<&PacketFilter>) -> Result<Self> {
        let mut progs = Programs {
            obj,
            spliced: HashMap::new(),
            copies: HashMap::new(),
        };
        let Some(filter) = filter else {
            return Ok(progs);
        };
        for prog in progs.obj.progs() {
            if prog.as_fd().as_raw_fd() < 0 {
                continue; // not loaded (autoload off)
            }
            let name = prog.name().to_string_lossy().into_owned();
            let template = ProgTemplate::from_loaded(&prog).spliced(filter)?;
            if prog.prog_type() == libbpf_rs::ProgramType::Kprobe {
                let fd = template.load(None, 0, None).map_err(|e| {
                    anyhow::anyhow!("the kernel refused program {name} with the filter expression spliced in: {e:#}")
                })?;
                progs.copies.insert(name.clone(), fd);
            }
            progs.spliced.insert(name, template);
        }
        Ok(progs)
    }

    pub fn obj(&self) -> &Object {
        &self.obj
    }

    /// Turns every program into a no-op (`ipft_detaching` in
    /// src/bpf/body.bpf.h), before detaching: probes still attached while
    /// the kernel removes them cost only their entry.
    pub fn stop(&self) -> Result<()> {
        let map = self
            .obj
            .maps()
            .find(|m| m.name().to_string_lossy().ends_with(".bss"))
            .context("ipft's BPF object has no .bss (kill switch)")?;
        let mut value = vec![0u8; map.value_size() as usize];
        value[..4].copy_from_slice(&1u32.to_ne_bytes());
        map.update(&0u32.to_ne_bytes(), &value, libbpf_rs::MapFlags::ANY)
            .context("setting the kill switch")?;
        Ok(())
    }

    /// The descriptor of the program to attach under `name`.
    pub fn fd(&self, name: &str) -> Result<RawFd> {
        if let Some(fd) = self.copies.get(name) {
            return Ok(fd.as_raw_fd());
        }
        self.obj
            .progs()
            .find(|p| p.name() == name)
            .map(|p| p.as_fd().as_raw_fd())
            .with_context(|| format!("BPF program {name} missing from ipft's object"))
    }

    /// The final instructions of the loaded program `prog`, to load copies of.
    pub fn template(&self, prog: &libbpf_rs::Program) -> ProgTemplate {
        let name = prog.name().to_string_lossy();
        match self.spliced.get(name.as_ref()) {
            Some(t) => t.clone(),
            None => ProgTemplate::from_loaded(prog),
        }
    }
}

/// Opens `bytes`, writes the configuration into .rodata, sizes the event
/// buffer and the tracking map, picks ring buffer or perf buffer, and loads
/// it into the kernel. `use_ringbuf` comes from [`kernel_has_ringbuf`]; the
/// reader must agree. The extension's module is linked into the object first;
/// the pcap filter, if any, is spliced into copies of the loaded programs.
pub fn load(
    backend: &dyn Backend,
    targets: &[Target],
    opts: &LoadOptions,
    use_ringbuf: bool,
    extension: &Extension,
    filter: Option<&PacketFilter>,
) -> Result<Programs> {
    let linked = extension.link(backend.object_bytes())?;
    let mut open = ObjectBuilder::default()
        .open_memory(&linked)
        .context("cannot open ipft's BPF object")?;
    configure(
        &mut open,
        opts,
        use_ringbuf,
        backend.remembers_calls(),
        !extension.is_none(),
    )?;
    backend.prepare(&mut open, targets)?;
    let obj = open.load().map_err(|e| {
        anyhow::anyhow!(
            "the kernel refused ipft's BPF programs: {e}; run with -v to see the verifier's log"
        )
    })?;
    Programs::new(obj, filter)
}

fn configure(
    open: &mut OpenObject,
    opts: &LoadOptions,
    use_ringbuf: bool,
    graph: bool,
    ext: bool,
) -> Result<()> {
    let config = BpfConfig {
        mark: opts.mark,
        mask: opts.mask,
        use_ringbuf: use_ringbuf as u32,
        sample_period: opts.sample_period,
        wakeup_events: opts.wakeup_events,
        select: opts.select,
        netns: opts.netns,
        ifindex: opts.ifindex,
        track: opts.track as u32,
        graph: graph as u32,
        meta: opts.meta as u32,
        ext: ext as u32,
        snaplen: opts.snaplen.min(crate::event::SNAPLEN_MAX as u32),
    };
    let ncpus = libbpf_rs::num_possible_cpus().unwrap_or(1) as u32;
    let page = page_size();
    let mut rodata_set = false;
    for mut map in open.maps_mut() {
        let name = map.name().to_string_lossy().into_owned();
        if name.ends_with(".rodata") {
            let value = map
                .initial_value_mut()
                .context("BPF .rodata has no initial value")?;
            let cfg = config.as_bytes();
            if value.len() < cfg.len() {
                bail!("BPF .rodata is smaller than struct ipft_config");
            }
            value[..cfg.len()].copy_from_slice(cfg);
            rodata_set = true;
        } else if name == "ipft_events_rb" {
            if use_ringbuf {
                // One ring shared by all CPUs: as much room as per-CPU buffers would have.
                let size = (opts.page_count as u64 * page * ncpus as u64).next_power_of_two();
                map.set_max_entries(size.min(1 << 30) as u32)?;
            } else {
                map.set_autocreate(false)?;
            }
        } else if name == "ipft_tracked" {
            map.set_max_entries(opts.track_max.max(1))?;
        } else if name == "ipft_funcs" {
            map.set_max_entries(opts.funcs_max.max(1))?;
        }
    }
    if !rodata_set {
        bail!("ipft's BPF object has no .rodata configuration");
    }
    Ok(())
}

pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).max(4096) as u64
}

/// Attaches a program that does nothing with `attach` (which loads and
/// attaches it to the sample target) and lets it go: the only sure way to
/// know the running kernel takes this kind of program, without the seconds
/// the verifier spends on ipft's own programs (they are loaded once, after).
/// Errors read "backend B: the kernel refuses `what` (why); `hint`".
pub fn try_trivial(
    backend: BackendKind,
    what: &str,
    hint: &str,
    attach: impl FnOnce() -> Result<OwnedFd>,
) -> Result<()> {
    attach().map(drop).map_err(|e| {
        anyhow::anyhow!(
            "backend {}: the kernel refuses {what} ({e:#}); {hint}",
            backend.name()
        )
    })
}

/// Threads that close links at once. Closing a kprobe waits for an RCU grace
/// period; waiters on several threads share grace periods, so closing in
/// parallel turns minutes of serial waiting into seconds.
const DETACH_THREADS: usize = 64;

/// Detaches every link (closing its file descriptors) and returns the wall
/// time it took.
pub fn detach(links: Vec<Attachment>) -> Duration {
    let start = std::time::Instant::now();
    let bar = crate::progress::detach_bar(links.len() as u64);
    let chunk = links.len().div_ceil(DETACH_THREADS).max(1);
    let mut links = links;
    std::thread::scope(|s| {
        while !links.is_empty() {
            let rest = links.split_off(links.len().saturating_sub(chunk));
            let bar = &bar;
            s.spawn(move || {
                for link in rest {
                    drop(link);
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    start.elapsed()
}
