//! The clocks behind event timestamps, for outputs that show wall-clock time.
//!
//! Events are stamped by `bpf_ktime_get_ns()`, which is CLOCK_MONOTONIC.
//! Perfetto's trace declares that clock and carries a snapshot of the
//! clocks read with [`now`], and Perfetto converts; pcap-ng has no such
//! declaration, so its frames are converted here with [`WallClock`].

/// The current time of `clock` (a `libc::CLOCK_*`), in ns.
pub fn now(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; the clocks used exist on every Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Converts CLOCK_MONOTONIC timestamps to CLOCK_REALTIME (ns since the Unix
/// epoch) with one offset taken when tracing starts: later steps of the wall
/// clock (NTP, `date -s`) are not followed, so the events of one run keep
/// exactly the spacing the kernel measured.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    /// REALTIME minus MONOTONIC, in ns.
    offset: i64,
}

impl WallClock {
    /// The offset between the two clocks now. MONOTONIC is read on both
    /// sides of REALTIME and averaged, so the offset is off by at most half
    /// the time between the reads (well under a microsecond).
    pub fn now() -> Self {
        let before = now(libc::CLOCK_MONOTONIC);
        let real = now(libc::CLOCK_REALTIME);
        let after = now(libc::CLOCK_MONOTONIC);
        let mono = before + (after - before) / 2;
        WallClock {
            offset: real as i64 - mono as i64,
        }
    }

    /// A clock `offset` ns ahead of CLOCK_MONOTONIC (for tests).
    #[cfg(test)]
    pub fn with_offset(offset: i64) -> Self {
        WallClock { offset }
    }

    /// The wall-clock time (ns since the epoch) of monotonic time `mono_ns`.
    pub fn wall_ns(&self, mono_ns: u64) -> u64 {
        (mono_ns as i64).saturating_add(self.offset).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_now_converts_to_realtime_now() {
        let wall = WallClock::now();
        let converted = wall.wall_ns(now(libc::CLOCK_MONOTONIC));
        let real = now(libc::CLOCK_REALTIME);
        // Both read within the same few microseconds (a loaded machine may
        // preempt between them: allow 50 ms).
        assert!(
            converted.abs_diff(real) < 50_000_000,
            "{converted} vs {real}"
        );
    }

    #[test]
    fn spacing_is_kept() {
        let wall = WallClock::with_offset(1_700_000_000_000_000_000);
        assert_eq!(wall.wall_ns(5), 1_700_000_000_000_000_005);
        assert_eq!(wall.wall_ns(1_005) - wall.wall_ns(5), 1_000);
    }
}
