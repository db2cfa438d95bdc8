//! The container's network namespace, named by a path (`CNI_NETNS`), not by
//! a name under /run/netns as the lab's own namespaces are: runtimes put
//! theirs anywhere (`/run/netns/netns-…`, `/proc/PID/ns/net`).

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::CloneFlags;

use super::error::{CniError, code};
use crate::topology::{Netlink, TopologyError};

/// Opens the namespace at `path`; a path that is missing or is not a
/// network namespace is code 3 (the container is unknown).
pub fn open(path: &str) -> Result<OwnedFd, CniError> {
    let unknown = |why: String| {
        CniError::new(
            code::UNKNOWN_CONTAINER,
            "the container's network namespace does not exist",
            format!("CNI_NETNS {path:?}: {why}"),
        )
    };
    let file = File::open(path).map_err(|e| unknown(e.to_string()))?;
    // A namespace file answers NS_GET_NSTYPE; anything else does not.
    let nstype = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&file), NS_GET_NSTYPE) };
    if nstype != libc::CLONE_NEWNET {
        return Err(unknown("not a network namespace".into()));
    }
    Ok(file.into())
}

/// `NS_GET_NSTYPE` from linux/nsfs.h: _IO(0xb7, 0x3).
const NS_GET_NSTYPE: libc::Ioctl = (0xb7 << 8) | 0x3;

/// Whether `path` still names a network namespace.
pub fn exists(path: &str) -> bool {
    open(path).is_ok()
}

/// Runs `f` with a netlink session inside the namespace `fd`, on a thread
/// of its own (setns moves only the calling thread; the thread ends with
/// `f`, so none stays in the container's namespace).
pub fn with_netlink_in<T, F>(fd: &OwnedFd, label: &str, f: F) -> Result<T, TopologyError>
where
    T: Send,
    F: FnOnce(&Netlink) -> Result<T, TopologyError> + Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
                TopologyError::Io {
                    context: format!("cannot enter network namespace {label}"),
                    source: e.into(),
                }
            })?;
            f(&Netlink::new(label)?)
        })
        .join()
        .unwrap_or_else(|_| {
            Err(TopologyError::Io {
                context: format!("the thread working in {label} panicked"),
                source: std::io::Error::other("panic"),
            })
        })
    })
}
