//! One run of ipft, start to end: validate the request against the kernel,
//! discover functions, then either list them or load, attach, read events
//! until Ctrl-C/SIGTERM, print, and detach (in a background process on a
//! terminal, see [`crate::background_detach`]).
//!
//! Owns the order of these steps and the messages on stderr; the steps
//! themselves live in their own modules.

use crate::backend::detach_estimate::{self, KernelRcu, ANNOUNCE_ABOVE};
use crate::backend::{self, Backend, LoadOptions};
use crate::background_detach;
use crate::cli::{BackendKind, Cli, OutputKind, TracerKind};
use crate::decode::Decoder;
use crate::discovery::{Discovery, KernelFacts, NameFilter, Target};
use crate::extension::{templates, Extension};
use crate::funcs::Funcs;
use crate::kernel::{btf, kallsyms::Kallsyms, rcu, tracefs};
use crate::output::{
    aggregate::Aggregate, clock::WallClock, json::Json, pcapng::Pcapng, perfetto::Perfetto, Output,
    SKB_MEMORY_FREED,
};
use crate::reader::Reader;
use crate::select::Selection;
use crate::stack::{StackCounts, Symbols};
use crate::track;
use crate::verdict::Journeys;
use anyhow::{bail, Context, Result};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(cli: Cli) -> Result<()> {
    if let Some(target) = cli.gen {
        print!("{}", templates::generate(target));
        return Ok(());
    }
    if cli.extension.is_some() && cli.script.is_some() {
        bail!("give one extension: -e/--extension or -s/--script, not both");
    }
    if unsafe { libc::geteuid() } != 0 {
        bail!("ipft must run as root (it reads kernel symbols and loads BPF programs); try `sudo ipft ...`");
    }
    set_libbpf_logging(cli.verbose);
    // Selectors are checked before anything is read or attached.
    let selection = if cli.list {
        None
    } else {
        Some(Selection::from_cli(&cli)?)
    };
    // An earlier ipft may still be detaching in the background: attaching
    // now would wait on the same kernel locks. Listing attaches nothing.
    if !cli.list {
        background_detach::wait_for_earlier()?;
    }
    let tracefs = tracefs::find_or_mount()?;
    let filter = NameFilter {
        regex: cli.regex.clone(),
        module_regex: cli.module_regex.clone(),
    };
    let started = Instant::now();
    let facts = read_kernel_facts(&tracefs)?;
    let facts_read = started.elapsed();
    let (backend, found, all) = choose_backend(&cli, &tracefs, &facts, &filter)?;
    if cli.verbose {
        eprintln!(
            "startup: kernel BTF, kallsyms and traceable functions read in {:.2}s; backend checked in {:.2}s",
            facts_read.as_secs_f64(),
            (started.elapsed() - facts_read).as_secs_f64()
        );
        report_discovery(&facts, &found, backend.max_positions());
    }
    let Some(selection) = selection else {
        return list(&found);
    };
    if found.targets.is_empty() {
        bail!("no function to trace: -r/--module-regex matched none of the kernel's skb functions (see ipft -l)");
    }
    // Compile and check the extension before attaching anything.
    let extension = match cli.extension.as_ref().or(cli.script.as_ref()) {
        Some(path) => Some(Extension::load(path)?),
        None => None,
    };
    if let Some(filter) = &selection.pcap {
        if cli.verbose {
            eprintln!(
                "selection: expression '{}', {} eBPF instructions on Ethernet frames, {} on raw IP",
                filter.expression,
                filter.l2.len(),
                filter.l3.len()
            );
        }
        if let Some(note) = &filter.l3_note {
            eprintln!("note: {note}");
        }
    }
    let plan = if cli.no_track {
        track::Plan::default()
    } else {
        track::Plan::new(&found.targets, &all.targets)
    };
    if cli.verbose && !cli.no_track {
        eprintln!(
            "tracking: {} functions change how packets are followed, {} attached for that only{}",
            plan.functions(),
            plan.extra.len(),
            if plan.missing.is_empty() {
                String::new()
            } else {
                format!("; not attachable here: {}", plan.missing.join(", "))
            }
        );
    }
    let funcs = Funcs::new(&found.targets, &all.targets, &plan, cli.stack.as_ref());
    if cli.verbose {
        eprintln!("{}", funcs.summary());
    }
    let mut targets = found.targets.clone();
    targets.extend(plan.extra.iter().cloned());
    targets.extend(funcs.extra.iter().cloned());
    // Opened before attaching: a bad path costs nothing.
    let sink = open_output(&cli)?;
    trace(
        &cli,
        sink,
        backend.as_ref(),
        &targets,
        &facts.drop_reasons,
        facts.symbols.clone(),
        extension.as_ref(),
        &selection,
        &funcs,
    )
}

fn set_libbpf_logging(verbose: bool) {
    if verbose {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, |_, msg| {
            eprint!("libbpf: {msg}")
        })));
    } else {
        libbpf_rs::set_print(None);
    }
}

fn read_kernel_facts(tracefs: &Path) -> Result<KernelFacts> {
    let btf_dir = std::env::var_os(btf::BTF_DIR_ENV).unwrap_or_else(|| "/sys/kernel/btf".into());
    // Three independent reads, each a large part of start-up under emulation
    // (the kernel formats kallsyms and the traceable functions on every
    // read): overlap them.
    let (types, kallsyms, filter_funcs) = std::thread::scope(|s| {
        let kallsyms = s.spawn(Kallsyms::read_text);
        let filter_funcs = s.spawn(|| tracefs::FilterFunctions::read(tracefs));
        let types = btf::read_skb_types(Path::new(&btf_dir));
        let kallsyms = kallsyms.join().expect("kallsyms reader thread");
        (
            types,
            kallsyms,
            filter_funcs.join().expect("tracefs reader thread"),
        )
    });
    let types = types?;
    let kallsyms = kallsyms.context("cannot read /proc/kallsyms")?;
    let skb_names: HashSet<&str> = types.funcs.iter().map(|f| f.name.as_str()).collect();
    let kallsyms_text = kallsyms;
    let kallsyms = Kallsyms::parse_wanted(&kallsyms_text, |name| skb_names.contains(name));
    if kallsyms.addresses_hidden() {
        bail!("/proc/kallsyms shows no addresses; run as root with kernel.kptr_restrict < 2");
    }
    // Locked-down kernels refuse to list traceable functions; tracepoints
    // may still work, so this is a note, not an error.
    let (filter_funcs, note) = match filter_funcs {
        Ok(f) => (f, None),
        Err(e) => (Default::default(), Some(format!("{e:#}"))),
    };
    Ok(KernelFacts {
        note,
        funcs: types.funcs,
        tracepoints: types.tracepoints,
        drop_reasons: types.drop_reasons,
        kallsyms,
        symbols: Arc::new(Symbols::from_kallsyms(kallsyms_text)),
        filter_funcs,
    })
}

/// The backend asked for, or the fastest one this kernel really supports,
/// with the functions it would trace and all it could (before -r and
/// --module-regex).
fn choose_backend(
    cli: &Cli,
    tracefs: &Path,
    facts: &KernelFacts,
    filter: &NameFilter,
) -> Result<(Box<dyn Backend>, Discovery, Discovery)> {
    let graph = cli.tracer == TracerKind::FunctionGraph;
    if let Some(kind) = cli.backend {
        return try_backend(kind, graph, tracefs, facts, filter);
    }
    let rcu = KernelRcu::read(Path::new("/sys/kernel"));
    let mut refused = Vec::new();
    let mut chosen: Option<(Box<dyn Backend>, Discovery, Discovery, Duration)> = None;
    let mut why = "fastest this kernel supports";
    for &kind in backend::AUTO_ORDER {
        // Tracepoints trace other places than functions: they are chosen
        // only when no function backend works, never to detach faster.
        if chosen.is_some() && kind == BackendKind::Tracepoint {
            break;
        }
        let (backend, found, all) = match try_backend(kind, graph, tracefs, facts, filter) {
            Ok(b) => b,
            Err(e) => {
                refused.push(format!("{e:#}"));
                continue;
            }
        };
        let detach = estimate_detach(cli, backend.as_ref(), &found.targets, &rcu);
        match &chosen {
            None => {
                let fine = detach <= ANNOUNCE_ABOVE;
                chosen = Some((backend, found, all, detach));
                if fine {
                    break;
                }
            }
            // The faster backend per packet would keep the machine waiting
            // minutes after Ctrl-C: a later one that detaches at least
            // twice as fast is taken instead.
            Some((first, .., first_detach)) if detach * 2 <= *first_detach => {
                refused.push(format!(
                    "{}: detaching {} functions would take about {:.0}s (this one: {:.0}s)",
                    first.kind().name(),
                    found.targets.len(),
                    first_detach.as_secs_f64(),
                    detach.as_secs_f64()
                ));
                chosen = Some((backend, found, all, detach));
                why = "detaches faster";
                break;
            }
            Some(_) => {}
        }
    }
    let Some((backend, found, all, _)) = chosen else {
        bail!("no backend works on this kernel: {}", refused.join("; "));
    };
    if cli.verbose {
        let not: String = refused.iter().map(|r| format!("; not {r}")).collect();
        eprintln!("backend: {} ({why}){not}", backend.kind().name());
    }
    Ok((backend, found, all))
}

/// `kind` if the running kernel can serve it, with the functions it would
/// trace (`found`, after the user's filters) and all it could (`all`).
fn try_backend(
    kind: BackendKind,
    graph: bool,
    tracefs: &Path,
    facts: &KernelFacts,
    filter: &NameFilter,
) -> Result<(Box<dyn Backend>, Discovery, Discovery)> {
    let backend = backend::create(kind, graph)?;
    let found = backend.discover(facts, filter);
    // Try the backend on a target even when the user's filters match none.
    let all = backend.discover(facts, &NameFilter::default());
    backend.requirement(tracefs)?;
    match all.targets.first() {
        Some(sample) => backend.check(tracefs, sample)?,
        None => bail!(
            "backend {}: the kernel offers nothing to attach to{}",
            kind.name(),
            facts
                .note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ),
    }
    Ok((backend, found, all))
}

/// How long detaching `targets` from `backend` would take here.
fn estimate_detach(
    cli: &Cli,
    backend: &dyn Backend,
    targets: &[Target],
    rcu: &KernelRcu,
) -> Duration {
    let plan = detach_estimate::Plan::new(
        backend.kind(),
        targets,
        cli.tracer == TracerKind::FunctionGraph,
        backend.expedite_rcu() && !cli.no_rcu_expedite,
    );
    detach_estimate::estimate(&plan, rcu)
}

fn report_discovery(facts: &KernelFacts, found: &Discovery, max_positions: usize) {
    let s = &found.skipped;
    eprintln!(
        "discovery: {} skb functions in BTF, {} targets; skipped: {} filtered by -r/--module-regex, {} not in available_filter_functions, {} not in kallsyms, {} skb beyond position {}, {} variadic, {} struct by value, {} ambiguous",
        facts.funcs.len(),
        found.targets.len(),
        s.filtered_out,
        s.not_traceable,
        s.not_in_kallsyms,
        s.beyond_positions,
        max_positions,
        s.variadic,
        s.struct_by_value,
        s.ambiguous.len()
    );
    for name in &s.ambiguous {
        eprintln!("discovery: skipped {name}: its BTF prototypes disagree on the skb position");
    }
}

fn list(found: &Discovery) -> Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(
        out,
        "{:<48} {:<20} {:<18} SkbPos",
        "Name", "Module", "Address"
    )?;
    for t in &found.targets {
        writeln!(
            out,
            "{:<48} {:<20} {:#018x} {}",
            t.name, t.module, t.addr, t.skb_pos
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Signals received: the first stops tracing, the second exits at once
/// (links are file descriptors, so exiting detaches everything).
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

fn install_signal_handler(stop: Arc<AtomicBool>) -> Result<()> {
    ctrlc::set_handler(move || {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) >= 1 {
            rcu::restore();
            std::process::exit(130);
        }
        stop.store(true, Ordering::SeqCst);
    })
    .context("cannot install the SIGINT/SIGTERM handler")
}

fn raise_rlimits(verbose: bool) {
    let raise = |resource, name: &str, to_max: bool| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: valid resource and pointer.
        unsafe { libc::getrlimit(resource, &mut lim) };
        let new = if to_max {
            libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            }
        } else {
            libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            }
        };
        // SAFETY: valid resource and pointer.
        if unsafe { libc::setrlimit(resource, &new) } != 0 && verbose {
            // Kernels 5.11+ account BPF memory without RLIMIT_MEMLOCK: not fatal.
            eprintln!(
                "rlimit: cannot raise {name}: {}",
                std::io::Error::last_os_error()
            );
        }
    };
    raise(libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK", true);
    // Each kprobe costs a perf event fd and a link fd.
    raise(libc::RLIMIT_NOFILE, "RLIMIT_NOFILE", false);
}

/// Where the output goes: the file of -w, else stdout.
fn open_output(cli: &Cli) -> Result<Box<dyn Write>> {
    Ok(match cli.write_file() {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("-w {}: cannot create the file", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    })
}

#[allow(clippy::too_many_arguments)]
fn trace<'t>(
    cli: &Cli,
    sink: Box<dyn Write>,
    backend: &dyn Backend,
    targets: &'t [Target],
    drop_reasons: &'t HashMap<u64, String>,
    symbols: Arc<Symbols>,
    extension: Option<&'t Extension>,
    selection: &Selection,
    funcs: &Funcs,
) -> Result<()> {
    if !cli.no_set_rlimit {
        raise_rlimits(cli.verbose);
    }
    // Fail on a busy port before spending minutes attaching.
    if cli.enable_probe_server {
        std::net::TcpListener::bind(("127.0.0.1", cli.probe_server_port)).with_context(|| {
            format!(
                "probe server: cannot listen on 127.0.0.1:{}; choose another --probe-server-port",
                cli.probe_server_port
            )
        })?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    install_signal_handler(stop.clone())?;

    let use_ringbuf = backend::kernel_has_ringbuf();
    let (mark, mask) = selection.mark.unwrap_or((0, 0));
    let opts = LoadOptions {
        mark,
        mask,
        select: selection.bits(),
        netns: selection.netns.unwrap_or(0),
        ifindex: selection.ifindex.unwrap_or(0),
        track: !cli.no_track,
        track_max: cli.track_max,
        funcs_max: funcs.len() as u32,
        meta: !cli.no_meta,
        snaplen: cli.snaplen(),
        page_count: cli.perf_page_count,
        sample_period: cli.perf_sample_period,
        wakeup_events: cli.perf_wakeup_events,
    };
    backend::detach_estimate::announce(
        backend,
        targets,
        cli.tracer == TracerKind::FunctionGraph,
        backend.expedite_rcu() && !cli.no_rcu_expedite,
        cli.verbose,
    );
    let none = Extension::none();
    let loading = Instant::now();
    let progs = backend::load(
        backend,
        targets,
        &opts,
        use_ringbuf,
        extension.unwrap_or(&none),
        selection.pcap.as_ref(),
    )?;
    let obj = progs.obj();
    funcs.install(obj)?;
    let mut reader = Reader::new(obj, cli.perf_page_count, use_ringbuf)?;
    if cli.verbose {
        eprintln!(
            "load: BPF object linked and loaded in {:.2}s",
            loading.elapsed().as_secs_f64()
        );
    }

    // Parsed while attaching, before the first stack (the drop function's)
    // needs it.
    std::thread::spawn({
        let symbols = symbols.clone();
        move || symbols.preload()
    });
    let attached = backend.attach(&progs, targets, &stop)?;
    if cli.verbose {
        eprintln!(
            "attach: backend {}, {} functions attached, {} refused by the kernel, in {:.2}s (wall)",
            backend.kind().name(),
            attached.attached,
            attached.refused.len(),
            attached.elapsed.as_secs_f64()
        );
        for (func, why) in &attached.refused {
            eprintln!("attach: refused {func}: {why}");
        }
    }
    if attached.interrupted {
        eprintln!("Interrupted while attaching; detaching.");
        detach(cli, backend, &progs, attached.links);
        return Ok(());
    }
    if attached.attached == 0 {
        let why = attached.refused.first().map(|(f, w)| format!("{f}: {w}"));
        bail!(
            "the kernel refused every function ({}); run with -v for details",
            why.unwrap_or_default()
        );
    }
    let expiry = if cli.no_track {
        None
    } else {
        Some(track::Expiry::start(
            obj,
            Duration::from_secs(cli.track_timeout.into()),
        )?)
    };
    eprintln!("Trace ready!");
    if cli.enable_probe_server {
        start_probe_server(cli.probe_server_port)?;
    }

    let graph = cli.tracer == TracerKind::FunctionGraph;
    let decoder = Decoder::new(targets, drop_reasons, extension);
    let mut out: Box<dyn Output<'t> + 't> = match cli.output {
        OutputKind::Aggregate => {
            Box::new(Aggregate::new(sink, graph, cli.no_track).with_symbols(symbols.clone()))
        }
        OutputKind::Json => Box::new(Json::new(sink, graph).with_symbols(symbols)),
        OutputKind::Perfetto => Box::new(Perfetto::new(sink, graph)?),
        OutputKind::Pcapng => Box::new(Pcapng::new(sink, cli.snaplen(), WallClock::now())?),
    };
    let stacks = Cell::new(StackCounts::default());
    let counter = crate::progress::event_counter();
    // Not over a stream of events on the terminal.
    let show_counter = cli.output == OutputKind::Aggregate || cli.write_file().is_some();
    let mut journeys = Journeys::default();
    let no_track = cli.no_track;
    let mut deliver =
        |events: Vec<crate::event::Event>, out: &mut Box<dyn Output<'t> + 't>| -> Result<()> {
            for e in &events {
                let mut counts = stacks.get();
                counts.add(e.stack.as_deref());
                stacks.set(counts);
                let (func, fields) = decoder.decode(e)?;
                // Tracking says where a packet ends; without it, where its
                // skb's memory goes (the address may be reused after).
                let ends = e.ended || (no_track && SKB_MEMORY_FREED.contains(&func.name));
                let reason = e.reason.map(|r| decoder.reason_name(r));
                let verdict = journeys.see(e, func.name, reason, ends);
                out.on_event(e, func, fields)?;
                if let Some(v) = verdict {
                    out.on_verdict(e.packet_id, &v)?;
                }
            }
            if !events.is_empty() {
                out.flush()?;
                if show_counter {
                    counter.set_position(out.count());
                }
            }
            Ok(())
        };
    while !stop.load(Ordering::SeqCst) {
        let events = reader.poll(Duration::from_millis(100))?;
        deliver(events, &mut out)?;
    }
    counter.finish_and_clear();
    // -v: where the time between the stop and the prompt goes.
    let stopped = Instant::now();
    let since_stop = |what: &str| {
        if cli.verbose {
            eprintln!(
                "stop: {what} {:.2}s after the stop",
                stopped.elapsed().as_secs_f64()
            );
        }
    };

    // Everything up to the stop is in the buffer: show it before detaching,
    // which can take minutes of kernel time (RCU grace periods per probe).
    deliver(reader.drain()?, &mut out)?;
    since_stop("buffer drained");
    for (id, v) in journeys.finish() {
        out.on_verdict(id, &v)?;
    }
    out.finish()?;
    if let Some(ext) = extension {
        ext.finish()?;
    }
    let (per_cpu, reader_lost) = reader.lost()?;
    let lost: u64 = per_cpu.iter().sum::<u64>() + reader_lost;
    let tracking = match expiry {
        Some(expiry) => {
            let expired = expiry.expired();
            drop(expiry);
            Some(track::Stats::read(obj, expired)?)
        }
        None => None,
    };

    since_stop("output written");
    let received = out.count();
    let left_out = out.summary();
    // Flushed and closed before a background detach forks: nothing of the
    // output is left in a buffer for two processes to write.
    drop(out);

    // Everything is printed before detaching: in the background the
    // process exits right after, and in the foreground the results should
    // not wait for minutes of kernel time.
    if cli.verbose {
        eprintln!("lost per CPU: {per_cpu:?}, lost by the reader: {reader_lost}");
        eprintln!("peak memory (RSS): {} KiB", peak_rss_kib());
    }
    if cli.output == OutputKind::Json {
        // Machine-readable summary, on stderr so stdout stays one event per line.
        let summary = serde_json::json!({
            "events_received": received,
            "events_lost": lost,
            "lost_per_cpu": per_cpu,
            "tracking": tracking,
            "packets": journeys.summary().to_json(),
            "stacks": stacks.get(),
        });
        eprintln!("{summary}");
    }
    for line in journeys.summary().lines() {
        eprintln!("{line}");
    }
    if let Some(line) = left_out {
        eprintln!("{line}");
    }
    if let Some(stats) = &tracking {
        eprintln!("{}", stats.summary(cli.track_timeout));
    }
    if let Some(line) = stacks.get().summary() {
        eprintln!("{line}");
    }
    if lost > 0 {
        eprintln!("{received} events received, {lost} events lost; raise --perf-page-count");
    } else {
        eprintln!("{received} events received, 0 lost");
    }

    since_stop("summary printed");
    match detach(cli, backend, &progs, attached.links) {
        Some(detach_time) if cli.verbose => {
            eprintln!("detach: {:.2}s (wall)", detach_time.as_secs_f64());
        }
        Some(_) => {}
        None => {
            since_stop("detach handed over");
            // Everything is printed and flushed, and the background process
            // holds the probes: exit now, without the destructors (freeing
            // the kernel's symbol tables and closing the BPF object took
            // tenths of a second under emulation, with the prompt waiting).
            std::process::exit(0);
        }
    }
    Ok(())
}

/// Set (to anything) in the environment, the programs keep working while
/// they are detached: for bench/kill_switch.sh, which measures what the
/// kill switch saves.
const KEEP_PROGRAMS_RUNNING: &str = "IPFT_BENCH_KEEP_PROGRAMS_RUNNING";

/// Detaches every link, with expedited RCU grace periods where they help
/// the backend (unless --no-rcu-expedite). On a terminal without
/// --wait-detach, in a background process (src/background_detach.rs), so
/// the prompt comes back at once: returns None. Else here, returning the
/// wall time.
fn detach(
    cli: &Cli,
    backend: &dyn Backend,
    progs: &backend::Programs,
    links: Vec<backend::Attachment>,
) -> Option<Duration> {
    // Programs first: the kernel may take minutes to remove every probe.
    // (bench/kill_switch.sh measures the machine without it.)
    if std::env::var_os(KEEP_PROGRAMS_RUNNING).is_none() {
        if let Err(e) = progs.stop() {
            eprintln!("warning: {e:#}; probes keep working until they are removed");
        }
    }
    let expedite = backend.expedite_rcu() && !cli.no_rcu_expedite;
    // Scripts read the exit as "everything is gone": they keep waiting.
    let mut links = links;
    if !links.is_empty() && !cli.wait_detach && std::io::stderr().is_terminal() {
        let count = links.len();
        match background_detach::start(links, expedite, &background_detach::lock_path()) {
            Ok(pid) => {
                eprintln!(
                    "detaching {count} {} probes in the background (pid {pid}); a new ipft waits for it",
                    backend.kind().name()
                );
                return None;
            }
            Err((back, e)) => {
                eprintln!("warning: cannot detach in the background ({e}); detaching here");
                links = back;
            }
        }
    }
    let _expedited = rcu::expedite_detach(expedite, cli.verbose);
    Some(backend::detach(links))
}

/// Peak resident memory of this process.
fn peak_rss_kib() -> i64 {
    // SAFETY: valid pointer to a zeroed rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss
}

/// Accepts and closes connections on 127.0.0.1:port, so scripts can wait
/// until tracing is live.
fn start_probe_server(port: u16) -> Result<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("probe server: cannot listen on 127.0.0.1:{port}"))?;
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    Ok(())
}
