//! Which packets start a trace: the selectors of the command line (mark,
//! pcap-filter expression, network namespace, device) resolved once into
//! what the BPF programs compare (src/bpf/select.bpf.h). Every selector given
//! must match; namespaces and devices are resolved here, before anything is
//! attached, so a bad one is a one-line error.

use crate::bpf::{SELECT_IFINDEX, SELECT_MARK, SELECT_NETNS, SELECT_PCAP};
use crate::cli::Cli;
use crate::filter::{self, PacketFilter};
use anyhow::{anyhow, bail, Context, Result};
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A selector the user gave that cannot be used: exit status 2, like any
/// other bad command-line value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadSelector(pub String);

pub struct Selection {
    /// (mark, mask)
    pub mark: Option<(u32, u32)>,
    /// Network namespace inode.
    pub netns: Option<u32>,
    /// Device index, in `netns`.
    pub ifindex: Option<u32>,
    pub pcap: Option<PacketFilter>,
}

impl Selection {
    /// Resolves the selectors of `cli`; none at all is an error saying which
    /// to use.
    pub fn from_cli(cli: &Cli) -> Result<Selection> {
        let expression = cli.expression.join(" ");
        if cli.mark.is_none()
            && expression.trim().is_empty()
            && cli.filter_netns.is_none()
            && cli.filter_ifname.is_none()
        {
            return Err(BadSelector(
                "nothing selects packets: give a pcap-filter expression (e.g. ipft 'host 10.0.0.2 and icmp'), -m/--mark, --filter-netns or --filter-ifname; -l lists functions".into(),
            )
            .into());
        }
        let netns_path = match &cli.filter_netns {
            Some(spec) => Some(netns_path(spec)?),
            None => None,
        };
        let mut netns = match &netns_path {
            Some(p) => Some(namespace_inode(p)?),
            None => None,
        };
        let ifindex = match &cli.filter_ifname {
            Some(name) => {
                let in_ns = netns_path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("/proc/self/ns/net"));
                if netns.is_none() {
                    // An index means something only in its own namespace.
                    netns = Some(namespace_inode(&in_ns)?);
                }
                Some(ifindex_in(&in_ns, name)?)
            }
            None => None,
        };
        let pcap = if expression.trim().is_empty() {
            None
        } else {
            Some(filter::compile(&expression).map_err(|e| BadSelector(e.to_string()))?)
        };
        Ok(Selection {
            mark: cli.mark.map(|m| (m, cli.mask)),
            netns,
            ifindex,
            pcap,
        })
    }

    /// IPFT_SELECT_* bits of the selectors given.
    pub fn bits(&self) -> u32 {
        let mut bits = 0;
        if self.mark.is_some() {
            bits |= SELECT_MARK;
        }
        if self.netns.is_some() {
            bits |= SELECT_NETNS;
        }
        if self.ifindex.is_some() {
            bits |= SELECT_IFINDEX;
        }
        if self.pcap.is_some() {
            bits |= SELECT_PCAP;
        }
        bits
    }
}

/// The namespace file `spec` names: a path, or an inode number found among
/// the named namespaces (/run/netns) and those of running processes.
fn netns_path(spec: &str) -> Result<PathBuf> {
    if let Ok(inode) = spec.parse::<u64>() {
        return find_namespace(inode).ok_or_else(|| {
            BadSelector(format!(
                "--filter-netns {spec}: no network namespace with inode {spec} (neither in /run/netns nor used by a process); give /proc/PID/ns/net or /run/netns/NAME"
            ))
            .into()
        });
    }
    let path = PathBuf::from(spec);
    if !path.exists() {
        return Err(BadSelector(format!(
            "--filter-netns {spec}: no such file; give an inode number, /proc/PID/ns/net or /run/netns/NAME"
        ))
        .into());
    }
    Ok(path)
}

fn find_namespace(inode: u64) -> Option<PathBuf> {
    let named = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path());
    let procs = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .map(|e| e.path().join("ns/net"));
    named
        .chain(procs)
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.ino() == inode))
}

/// NSFS_MAGIC: the file system of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// The inode of the network namespace file `path` (what the kernel calls
/// the namespace's `ns.inum`).
fn namespace_inode(path: &Path) -> Result<u32> {
    let bad = |why: String| -> anyhow::Error {
        BadSelector(format!("--filter-netns {}: {why}", path.display())).into()
    };
    let file = std::fs::File::open(path).map_err(|e| bad(format!("cannot open it ({e})")))?;
    // SAFETY: valid descriptor and a zeroed statfs to fill.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) } != 0 || fs.f_type as i64 != NSFS_MAGIC {
        return Err(bad(
            "not a namespace file; give /proc/PID/ns/net or /run/netns/NAME".into(),
        ));
    }
    let inode = file.metadata()?.ino();
    u32::try_from(inode).map_err(|_| bad(format!("inode {inode} does not fit 32 bits")))
}

/// The index of device `name` in the network namespace `netns`, looked up
/// from a thread that enters it (ipft itself stays where it is).
fn ifindex_in(netns: &Path, name: &str) -> Result<u32> {
    let cname = CString::new(name).map_err(|_| anyhow!("--filter-ifname: NUL in the name"))?;
    let own = |p: &Path| std::fs::metadata(p).map(|m| m.ino()).ok();
    let index = if own(netns).is_some() && own(netns) == own(Path::new("/proc/self/ns/net")) {
        // SAFETY: a valid C string.
        unsafe { libc::if_nametoindex(cname.as_ptr()) }
    } else {
        ifindex_elsewhere(netns, name, &cname)?
    };
    if index == 0 {
        return Err(BadSelector(format!(
            "--filter-ifname {name}: no such device in the network namespace {} (see ip link)",
            netns.display()
        ))
        .into());
    }
    Ok(index)
}

fn ifindex_elsewhere(netns: &Path, name: &str, cname: &CString) -> Result<u32> {
    let file = std::fs::File::open(netns)
        .with_context(|| format!("cannot open the network namespace {}", netns.display()))?;
    std::thread::scope(|s| {
        s.spawn(|| -> Result<u32> {
            // SAFETY: a namespace descriptor; affects this thread only.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!(
                    "cannot enter the network namespace {} to find {name}: {}",
                    netns.display(),
                    std::io::Error::last_os_error()
                );
            }
            // SAFETY: a valid C string.
            Ok(unsafe { libc::if_nametoindex(cname.as_ptr()) })
        })
        .join()
        .expect("namespace lookup thread")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespace_and_loopback_resolve() {
        let me = Path::new("/proc/self/ns/net");
        let inode = namespace_inode(me).unwrap();
        assert_eq!(inode as u64, std::fs::metadata(me).unwrap().ino());
        assert_eq!(ifindex_in(me, "lo").unwrap(), 1);
        let e = ifindex_in(me, "no-such-dev0").unwrap_err().to_string();
        assert!(e.contains("no such device"), "{e}");
    }

    #[test]
    fn bad_namespaces_are_named() {
        let e = netns_path("/nonexistent/ns").unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/ns") && e.contains("no such file"),
            "{e}"
        );
        let e = namespace_inode(Path::new("/etc/hostname"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a namespace file"), "{e}");
        let e = netns_path("4").unwrap_err().to_string();
        assert!(e.contains("no network namespace with inode 4"), "{e}");
    }
}
