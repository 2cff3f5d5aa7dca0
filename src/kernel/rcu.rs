//! Expedited RCU grace periods while ipft detaches kprobes.
//!
//! Removing a kprobe makes the kernel wait, under a global mutex, for RCU
//! grace periods (`tracepoint_synchronize_unregister`, `unregister_kprobe`);
//! traced in the custom 6.1 guest, these waits are most of the detach time.
//! `/sys/kernel/rcu_expedited` makes every `synchronize_rcu()` an expedited
//! grace period (IPIs instead of waiting for each CPU's next quiescent
//! state). Measured on 1,472 kprobes (custom 6.1 guest, TCG, three runs
//! each, interleaved): detach 25.8-26.1 s instead of 33.1-33.4 s; attach
//! did not change, so only detach uses it. Backends choose
//! ([`crate::backend::Backend::expedite_rcu`]): removing fentry trampolines
//! waits on RCU-tasks grace periods instead, and there it made detach slower.
//!
//! ipft sets it only while it detaches, never while tracing (expedited grace
//! periods interrupt every CPU, which would disturb the system being
//! observed), and puts the previous value back, also when a second Ctrl-C
//! exits at once. `--no-rcu-expedite` leaves it alone.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The kernel's switch.
pub const RCU_EXPEDITED: &str = "/sys/kernel/rcu_expedited";

/// The switch ipft turned on and must turn off again: what both the guard's
/// Drop and the signal path undo.
static TURNED_ON: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Expedited grace periods until dropped.
#[derive(Debug)]
pub struct Expedited(());

impl Expedited {
    /// Turns on expedited grace periods if they are off. None when they were
    /// already on (nothing to undo); an error names the switch that cannot be
    /// read or written, for `-v`.
    pub fn begin(path: &Path) -> Result<Option<Expedited>, String> {
        let current = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if current.trim() != "0" {
            return Ok(None);
        }
        // rcu_normal overrides it (real-time kernels set it at boot).
        let normal = path.with_file_name("rcu_normal");
        if std::fs::read_to_string(&normal).is_ok_and(|v| v.trim() == "1") {
            return Err(format!(
                "{} is 1 (as on real-time kernels), which the kernel obeys over rcu_expedited",
                normal.display()
            ));
        }
        std::fs::write(path, "1").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        *TURNED_ON.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.to_path_buf());
        Ok(Some(Expedited(())))
    }
}

impl Drop for Expedited {
    fn drop(&mut self) {
        turn_off(&mut TURNED_ON.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

fn turn_off(turned_on: &mut Option<PathBuf>) {
    if let Some(path) = turned_on.take() {
        let _ = std::fs::write(path, "0");
    }
}

/// Puts the switch back if ipft turned it on; for exits that skip `Drop`
/// (a signal handler: it must not wait on the lock).
pub fn restore() {
    if let Ok(mut turned_on) = TURNED_ON.try_lock() {
        turn_off(&mut turned_on);
    }
}

/// Expedites grace periods while detaching, for the scope of the returned
/// guard, when `enabled`; with `verbose`, says what it did.
pub fn expedite_detach(enabled: bool, verbose: bool) -> Option<Expedited> {
    if !enabled {
        return None;
    }
    match Expedited::begin(Path::new(RCU_EXPEDITED)) {
        Ok(guard) => {
            if verbose && guard.is_some() {
                eprintln!("detach: expedited RCU grace periods ({RCU_EXPEDITED} = 1 until done)");
            }
            guard
        }
        Err(why) => {
            if verbose {
                eprintln!("detach: RCU grace periods not expedited: {why}");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The switch ipft turned on is process-wide: one test at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// A stand-in switch holding `value`, for one test at a time.
    fn switch(
        value: &str,
    ) -> (
        std::sync::MutexGuard<'static, ()>,
        tempfile::TempDir,
        PathBuf,
    ) {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rcu_expedited");
        std::fs::write(&path, value).unwrap();
        (serial, dir, path)
    }

    fn value(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn rcu_normal_is_said_and_left_alone() {
        let (_serial, dir, path) = switch("0\n");
        std::fs::write(dir.path().join("rcu_normal"), "1\n").unwrap();
        let err = Expedited::begin(&path).unwrap_err();
        assert!(err.contains("rcu_normal is 1"), "{err}");
        assert_eq!(value(&path), "0\n", "rcu_expedited not written");
    }

    #[test]
    fn turns_on_and_restores() {
        let (_serial, _dir, path) = switch("0\n");
        let guard = Expedited::begin(&path).unwrap();
        assert!(guard.is_some());
        assert_eq!(value(&path), "1");
        drop(guard);
        assert_eq!(value(&path), "0");
    }

    #[test]
    fn leaves_a_switch_already_on() {
        let (_serial, _dir, path) = switch("1\n");
        assert!(Expedited::begin(&path).unwrap().is_none());
        assert_eq!(value(&path), "1\n");
    }

    #[test]
    fn signal_path_restores() {
        let (_serial, _dir, path) = switch("0");
        let guard = Expedited::begin(&path).unwrap().unwrap();
        restore();
        assert_eq!(value(&path), "0");
        std::mem::forget(guard);
    }

    #[test]
    fn missing_switch_is_reported() {
        let err = Expedited::begin(Path::new("/nonexistent/rcu_expedited"))
            .err()
            .unwrap();
        assert!(err.contains("/nonexistent/rcu_expedited"), "{err}");
    }
}
