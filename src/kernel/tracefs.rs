//! tracefs: where it is mounted, and `available_filter_functions`, the
//! functions ftrace (and so kprobes on function entry and fentry) can attach to.

use super::VMLINUX;
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

const CANDIDATES: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Where to look for tracefs instead (tests, unusual mounts).
pub const TRACEFS_ENV: &str = "IPFT_TRACEFS";

/// Finds tracefs, mounting it on /sys/kernel/tracing when no candidate has it.
pub fn find_or_mount() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(TRACEFS_ENV) {
        let dir = PathBuf::from(dir);
        if !is_tracefs(&dir) {
            bail!(
                "tracefs not found at {} (from ${TRACEFS_ENV}); point it at a mounted tracefs or unset it",
                dir.display()
            );
        }
        return Ok(dir);
    }
    if let Some(dir) = CANDIDATES.iter().map(Path::new).find(|d| is_tracefs(d)) {
        return Ok(dir.to_path_buf());
    }
    let target = Path::new(CANDIDATES[0]);
    let ok = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    } == 0;
    if ok && is_tracefs(target) {
        return Ok(target.to_path_buf());
    }
    bail!(
        "tracefs not found at {} and mounting it failed ({}); mount it with `mount -t tracefs none /sys/kernel/tracing`",
        CANDIDATES.join(" or "),
        std::io::Error::last_os_error()
    )
}

fn is_tracefs(dir: &Path) -> bool {
    dir.join("available_filter_functions").exists()
}

/// The (name, module) pairs listed in available_filter_functions.
#[derive(Default, Debug)]
pub struct FilterFunctions {
    set: HashSet<(String, String)>,
}

impl FilterFunctions {
    pub fn read(tracefs: &Path) -> Result<Self> {
        let path = tracefs.join("available_filter_functions");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Ok(Self::parse(&text))
    }

    /// Parses lines `name` or `name [module]`.
    pub fn parse(text: &str) -> Self {
        let set = text
            .lines()
            .filter_map(|line| {
                let mut it = line.split_whitespace();
                let name = it.next()?;
                let module = it
                    .next()
                    .map(|m| m.trim_start_matches('[').trim_end_matches(']'))
                    .unwrap_or(VMLINUX);
                Some((name.to_string(), module.to_string()))
            })
            .collect();
        FilterFunctions { set }
    }

    pub fn contains(&self, name: &str, module: &str) -> bool {
        self.set.contains(&(name.to_string(), module.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_modules() {
        let f = FilterFunctions::parse("ip_rcv\nveth_xmit [veth]\n__skb_flow_dissect\n");
        assert!(f.contains("ip_rcv", "vmlinux"));
        assert!(f.contains("veth_xmit", "veth"));
        assert!(!f.contains("veth_xmit", "vmlinux"));
        assert_eq!(f.set.len(), 3);
    }
}
