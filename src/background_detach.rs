//! Detaching out of the way, so that the shell prompt comes back at once.
//!
//! Removing probes can take minutes (RCU grace periods per probe, README
//! "Backends"). On a terminal, once the results are printed and the kill
//! switch is set, ipft forks: the child keeps the link file descriptors and
//! removes them in its own session, without a terminal, ignoring the
//! terminal's signals, while the parent exits at once. The parent's copies
//! of the descriptors close without detaching anything: the kernel detaches
//! a link on its last close, and the child still holds every one.
//!
//! A lock file says that such a detach is still running: an exclusive flock
//! held by the detaching process until it exits, with its pid and the number
//! of links it removes written inside. A new ipft waits for the lock before
//! loading or attaching anything: attaching while the kernel removes
//! thousands of probes waits on the same kernel mutexes, and the detach may
//! have set `/sys/kernel/rcu_expedited` (src/kernel/rcu.rs), which two ipfts
//! at once would put back wrongly.

use crate::backend::{self, Attachment};
use crate::kernel::rcu;
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the lock lives: /run (root's tmpfs, emptied at boot, so a lock file
/// never outlives the probes it speaks of), else /tmp.
const LOCK_DIRS: [&str; 2] = ["/run", "/tmp"];
const LOCK_NAME: &str = "ipft-detach.lock";

/// Names another lock file: tests that hold or watch the lock without
/// holding back every other ipft of the machine.
pub const LOCK_ENV: &str = "IPFT_DETACH_LOCK";

/// The lock file of this machine: in the first of `LOCK_DIRS` ipft can
/// write, unless [`LOCK_ENV`] names one.
pub fn lock_path() -> PathBuf {
    match std::env::var_os(LOCK_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => lock_path_among(&LOCK_DIRS.map(Path::new)),
    }
}

fn lock_path_among(dirs: &[&Path]) -> PathBuf {
    let writable = |dir: &&&Path| {
        CString::new(dir.as_os_str().as_bytes())
            // SAFETY: a NUL-terminated path.
            .is_ok_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0)
    };
    let dir = dirs.iter().find(writable).or(dirs.last());
    dir.map_or_else(|| PathBuf::from(LOCK_NAME), |d| d.join(LOCK_NAME))
}

/// Who holds the lock: the detaching process and how many links it removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub links: usize,
}

/// The open lock file. The flock belongs to the open file description, so
/// a forked child holding the same description keeps the lock after the
/// parent closes its copy.
pub struct DetachLock {
    file: File,
}

impl DetachLock {
    /// Opens (creating) the lock file. Refuses a symbolic link or a file of
    /// another user: in /tmp anyone could plant one, to make ipft write
    /// elsewhere or wait for ever.
    pub fn open(path: &Path) -> std::io::Result<DetachLock> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        // SAFETY: no preconditions.
        let me = unsafe { libc::geteuid() };
        let owner = file.metadata()?.uid();
        if owner != me {
            return Err(std::io::Error::other(format!(
                "{} belongs to uid {owner}, not {me}",
                path.display()
            )));
        }
        Ok(DetachLock { file })
    }

    /// Takes the lock if it is free; false when another holds it.
    pub fn try_lock(&self) -> std::io::Result<bool> {
        self.try_flock(libc::LOCK_EX)
    }

    /// Takes the lock, waiting as long as another holds it.
    pub fn lock(&self) -> std::io::Result<()> {
        self.flock(libc::LOCK_EX)
    }

    /// Shares the lock if no detach holds it: ipft instances starting at the
    /// same moment check it side by side without seeing each other as a
    /// detach (an exclusive check did: an e2e instance waited for nothing).
    pub fn try_share(&self) -> std::io::Result<bool> {
        self.try_flock(libc::LOCK_SH)
    }

    /// Shares the lock, waiting as long as a detach holds it.
    pub fn share(&self) -> std::io::Result<()> {
        self.flock(libc::LOCK_SH)
    }

    fn try_flock(&self, operation: libc::c_int) -> std::io::Result<bool> {
        // SAFETY: an open descriptor.
        if unsafe { libc::flock(self.file.as_raw_fd(), operation | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(false);
        }
        Err(e)
    }

    fn flock(&self, operation: libc::c_int) -> std::io::Result<()> {
        loop {
            // SAFETY: an open descriptor.
            if unsafe { libc::flock(self.file.as_raw_fd(), operation) } == 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Writes who holds the lock, replacing what an earlier holder wrote.
    pub fn record(&self, holder: Holder) -> std::io::Result<()> {
        let mut file = &self.file;
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(format!("{} {}\n", holder.pid, holder.links).as_bytes())
    }

    /// What the holder wrote; None while the file is empty (the holder has
    /// the lock but has not written yet) or unreadable.
    pub fn holder(&self) -> Option<Holder> {
        let mut file = &self.file;
        let mut text = String::new();
        file.seek(SeekFrom::Start(0)).ok()?;
        file.read_to_string(&mut text).ok()?;
        let mut words = text.split_whitespace();
        Some(Holder {
            pid: words.next()?.parse().ok()?,
            links: words.next()?.parse().ok()?,
        })
    }
}

/// Waits until no other process holds the lock at `path`. `on_wait` is
/// called once, with the holder, if it has to wait. Returns whether it
/// waited; the lock is released again before returning (ipft does not hold
/// it while tracing). A lock file that cannot be opened holds nobody back.
fn wait_free(path: &Path, on_wait: impl FnOnce(Option<Holder>)) -> std::io::Result<bool> {
    let Ok(lock) = DetachLock::open(path) else {
        return Ok(false);
    };
    if lock.try_share()? {
        return Ok(false);
    }
    // The holder writes right after taking the lock: give it a moment.
    let mut holder = lock.holder();
    for _ in 0..10 {
        if holder.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        holder = lock.holder();
    }
    on_wait(holder);
    lock.share()?;
    Ok(true)
}

/// At start-up, before anything is loaded or attached: waits until an
/// earlier ipft has finished detaching in the background, saying so on
/// stderr. SIGINT or SIGTERM while waiting exits (130 for Ctrl-C) with
/// nothing attached.
pub fn wait_for_earlier() -> anyhow::Result<()> {
    let path = lock_path();
    let _exit_on_signal = ExitOnSignal::install();
    wait_free(&path, |holder| match holder {
        Some(h) => eprintln!(
            "note: an earlier ipft (pid {}) is still detaching {} probes; waiting for it (Ctrl-C to give up)",
            h.pid, h.links
        ),
        None => eprintln!(
            "note: an earlier ipft is still detaching its probes; waiting for it (Ctrl-C to give up)"
        ),
    })
    .map_err(|e| anyhow::anyhow!("cannot wait for {}: {e}", path.display()))?;
    Ok(())
}

/// Exits with 128 + the signal's number on SIGINT/SIGTERM until dropped;
/// ipft's own handler (installed later, for tracing) would only ask the
/// tracing loop to stop.
struct ExitOnSignal {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

extern "C" fn exit_now(signal: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(128 + signal) }
}

impl ExitOnSignal {
    fn install() -> ExitOnSignal {
        let handler: extern "C" fn(libc::c_int) = exit_now;
        let previous = [libc::SIGINT, libc::SIGTERM]
            .into_iter()
            .map(|signal| (signal, set_action(signal, handler as libc::sighandler_t)))
            .collect();
        ExitOnSignal { previous }
    }
}

impl Drop for ExitOnSignal {
    fn drop(&mut self) {
        for (signal, action) in &self.previous {
            // SAFETY: an action sigaction returned.
            unsafe { libc::sigaction(*signal, action, std::ptr::null_mut()) };
        }
    }
}

/// Sets `signal`'s handler (or SIG_IGN/SIG_DFL); returns the previous action.
fn set_action(signal: libc::c_int, handler: libc::sighandler_t) -> libc::sigaction {
    // SAFETY: zeroed sigaction structs are valid; plain sigaction calls.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        let mut previous: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, &action, &mut previous);
        previous
    }
}

/// Signals that would stop the detaching process: Ctrl-C and the like on
/// the terminal it left, the hang-up when that terminal closes, SIGTERM
/// (its probes would stay until it is gone anyway).
const IGNORED_WHILE_DETACHING: [libc::c_int; 4] =
    [libc::SIGINT, libc::SIGHUP, libc::SIGTERM, libc::SIGTSTP];

/// Forks a process that detaches `links` (expediting RCU grace periods when
/// `expedite`, as the foreground detach does) holding the lock at
/// `lock_path`; returns its pid. The caller has printed everything and set
/// the kill switch. On failure the links come back, to detach here.
///
/// Fork safety: the child has only this thread. What it uses is malloc
/// (glibc makes it safe across fork), new threads, the lock file and the
/// link descriptors, and `rcu`'s switch. The other threads ipft may still
/// have hold none of it: the symbols preload only parses text, the probe
/// server waits in accept(), the tracking expiry has been joined, the
/// progress bars draw from this thread. The Ctrl-C handler's thread takes
/// `rcu`'s lock only on a second signal, and signals are ignored from before
/// the fork. The child prints nothing (its stderr is /dev/null), so no
/// stdio lock matters either.
pub fn start(
    links: Vec<Attachment>,
    expedite: bool,
    lock_path: &Path,
) -> Result<u32, (Vec<Attachment>, std::io::Error)> {
    // Taken before forking so that it is held before the prompt comes back:
    // a new ipft started at once must find it. None when another detach
    // holds it (the child takes it after) or the file cannot be used.
    let lock = DetachLock::open(lock_path).ok();
    let held = lock.as_ref().is_some_and(|l| l.try_lock().unwrap_or(false));
    let previous: Vec<_> = IGNORED_WHILE_DETACHING
        .iter()
        .map(|&s| (s, set_action(s, libc::SIG_IGN)))
        .collect();
    // (Not Drop: the parent's descriptors stay open until it exits, which
    // is what the child waits for.)
    let parent_gone = ParentGone::new();
    // SAFETY: see above for what the child relies on.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        if let Some(p) = parent_gone {
            p.wait();
        }
        child(links, lock, held, expedite);
    }
    let failed = (pid < 0).then(std::io::Error::last_os_error);
    for (signal, action) in &previous {
        // SAFETY: an action sigaction returned.
        unsafe { libc::sigaction(*signal, action, std::ptr::null_mut()) };
    }
    if let Some(e) = failed {
        return Err((links, e));
    }
    if let (Some(lock), true) = (&lock, held) {
        let _ = lock.record(Holder {
            pid: pid as u32,
            links: links.len(),
        });
    }
    // The child holds every link: closing these copies at exit detaches
    // nothing, and dropping them here would only cost time.
    std::mem::forget(links);
    Ok(pid as u32)
}

/// A pipe whose write end only the parent keeps: the child reads EOF when
/// the parent has exited. The child starts detaching then, not before:
/// removing probes (expedited RCU grace periods, IPIs to every CPU) took
/// the vCPUs of a 2-CPU guest from the parent's last steps, and the prompt
/// waited for it. The kill switch is set, so the wait costs the probes
/// nothing but their entry.
struct ParentGone {
    read: libc::c_int,
    write: libc::c_int,
}

impl ParentGone {
    fn new() -> Option<ParentGone> {
        let mut fds = [0; 2];
        // SAFETY: a valid array of two descriptors.
        (unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == 0).then_some(ParentGone {
            read: fds[0],
            write: fds[1],
        })
    }

    /// In the child: until the parent has exited, at most a few seconds
    /// (the probes stay until the detach anyway).
    fn wait(self) {
        // SAFETY: plain calls on descriptors this process owns.
        unsafe {
            libc::close(self.write);
            let mut poll = libc::pollfd {
                fd: self.read,
                events: libc::POLLIN,
                revents: 0,
            };
            libc::poll(&mut poll, 1, 5000);
            libc::close(self.read);
        }
    }
}

/// The detaching process: never returns.
fn child(links: Vec<Attachment>, lock: Option<DetachLock>, held: bool, expedite: bool) -> ! {
    // SAFETY: plain calls on this process; the path is NUL-terminated.
    unsafe {
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }
    for &signal in &IGNORED_WHILE_DETACHING {
        set_action(signal, libc::SIG_IGN);
    }
    match lock {
        // Another ipft's detach holds it: this one does not wait to detach,
        // but takes the lock once that one is done, so that a new ipft
        // waits for both.
        Some(lock) if !held => {
            let n = links.len();
            std::thread::spawn(move || {
                if lock.lock().is_ok() {
                    let _ = lock.record(Holder {
                        pid: std::process::id(),
                        links: n,
                    });
                }
                // Held until the process exits.
                loop {
                    std::thread::park();
                }
            });
        }
        // Held (or unusable): open until the process exits.
        lock => std::mem::forget(lock),
    }
    let expedited = rcu::expedite_detach(expedite, false);
    backend::detach(links);
    drop(expedited);
    // Nothing buffered of the parent's is written again, no destructor runs:
    // the kernel closes the rest (programs, maps, the lock) at exit.
    // SAFETY: ends this process.
    unsafe { libc::_exit(0) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn temp_lock() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_NAME);
        (dir, path)
    }

    #[test]
    fn holder_is_written_and_read_back() {
        let (_dir, path) = temp_lock();
        let lock = DetachLock::open(&path).unwrap();
        assert!(lock.try_lock().unwrap());
        assert_eq!(lock.holder(), None, "nothing written yet");
        lock.record(Holder {
            pid: 123456,
            links: 1472,
        })
        .unwrap();
        // A shorter record replaces the longer one entirely.
        lock.record(Holder { pid: 7, links: 3 }).unwrap();
        let other = DetachLock::open(&path).unwrap();
        assert_eq!(other.holder(), Some(Holder { pid: 7, links: 3 }));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "7 3\n");
    }

    #[test]
    fn starting_instances_share_the_check_and_a_detach_excludes_them() {
        let (_dir, path) = temp_lock();
        let (a, b, detach) = (
            DetachLock::open(&path).unwrap(),
            DetachLock::open(&path).unwrap(),
            DetachLock::open(&path).unwrap(),
        );
        // Two ipft starting at once: neither sees a detach.
        assert!(a.try_share().unwrap());
        assert!(b.try_share().unwrap());
        assert!(!wait_free(&path, |_| panic!("waited for a checker")).unwrap());
        drop((a, b));
        assert!(detach.try_lock().unwrap());
        let starting = DetachLock::open(&path).unwrap();
        assert!(!starting.try_share().unwrap(), "a detach holds it");
    }

    #[test]
    fn a_held_lock_is_refused_to_another_opening() {
        let (_dir, path) = temp_lock();
        let first = DetachLock::open(&path).unwrap();
        assert!(first.try_lock().unwrap());
        let second = DetachLock::open(&path).unwrap();
        assert!(!second.try_lock().unwrap());
        drop(first);
        assert!(second.try_lock().unwrap());
    }

    #[test]
    fn a_free_lock_does_not_wait() {
        let (_dir, path) = temp_lock();
        let waited = wait_free(&path, |_| panic!("nobody holds it")).unwrap();
        assert!(!waited);
        // Released again: a detach can take it.
        assert!(DetachLock::open(&path).unwrap().try_lock().unwrap());
    }

    #[test]
    fn waiting_returns_once_released() {
        let (_dir, path) = temp_lock();
        let held = DetachLock::open(&path).unwrap();
        assert!(held.try_lock().unwrap());
        held.record(Holder { pid: 42, links: 9 }).unwrap();
        let (seen_tx, seen) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let waiter = std::thread::spawn({
            let path = path.clone();
            move || {
                let waited = wait_free(&path, |h| seen_tx.send(h).unwrap()).unwrap();
                done_tx.send(waited).unwrap();
            }
        });
        let holder = seen.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(holder, Some(Holder { pid: 42, links: 9 }));
        assert!(
            done.recv_timeout(Duration::from_millis(300)).is_err(),
            "returned while the lock was held"
        );
        drop(held);
        assert!(done.recv_timeout(Duration::from_secs(5)).unwrap());
        waiter.join().unwrap();
    }

    #[test]
    fn an_unreadable_holder_is_none() {
        let (_dir, path) = temp_lock();
        std::fs::write(&path, "not a pid\n").unwrap();
        assert_eq!(DetachLock::open(&path).unwrap().holder(), None);
    }

    #[test]
    fn a_symbolic_link_is_refused() {
        let (dir, path) = temp_lock();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "kept").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(DetachLock::open(&path).is_err());
        assert!(!wait_free(&path, |_| panic!("no lock to wait on")).unwrap());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept");
    }

    #[test]
    fn lock_goes_to_the_first_writable_folder() {
        let (dir, _) = temp_lock();
        let missing = Path::new("/nonexistent-ipft-folder");
        assert_eq!(
            lock_path_among(&[missing, dir.path()]),
            dir.path().join(LOCK_NAME)
        );
        assert_eq!(
            lock_path_among(&[dir.path(), missing]),
            dir.path().join(LOCK_NAME)
        );
    }

    #[test]
    fn the_detaching_child_holds_the_lock_and_exits() {
        let (_dir, path) = temp_lock();
        // A descriptor standing for a link: the child closes its copy.
        let link = Attachment::Fd(File::open("/dev/null").unwrap().into());
        let pid = start(vec![link], false, &path).map_err(|(_, e)| e).unwrap();
        let lock = DetachLock::open(&path).unwrap();
        assert_eq!(lock.holder(), Some(Holder { pid, links: 1 }));
        let mut status = 0;
        // SAFETY: waits for this test's own child.
        let waited = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
        assert_eq!(waited, pid as i32);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        assert!(lock.try_lock().unwrap(), "released when the child exited");
    }
}
