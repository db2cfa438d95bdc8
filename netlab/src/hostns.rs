//! The host side of a root-mode lab: the network namespace netlab was
//! started in (on a machine, its root namespace; in a container or under
//! `ip netns exec`, that namespace), not PID 1's.
//!
//! `up` records its identity (device and inode of the nsfs file, as
//! `stat /proc/self/ns/net` shows them) in the state file, with the
//! `ip netns` name that reaches it if it has one. Every later command
//! compares: run in the same namespace, it works there; run elsewhere, it
//! enters the recorded namespace through its `ip netns` name when it still
//! leads there, and otherwise refuses — acting on the devices of another
//! namespace (the user's own `eth0`, say) would be wrong.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use crate::netns;

/// A network namespace as the kernel names it: nsfs device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsId {
    pub dev: u64,
    pub ino: u64,
}

impl NetnsId {
    /// The namespace a file (`/proc/.../ns/net`, `/run/netns/NAME`) names.
    pub fn of_path(path: &Path) -> std::io::Result<Self> {
        let m = std::fs::metadata(path)?;
        Ok(Self {
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    /// The calling thread's namespace (threads may differ: `setns`).
    pub fn of_thread() -> std::io::Result<Self> {
        Self::of_path(Path::new(crate::netns::THREAD_NETNS))
    }
}

impl std::fmt::Display for NetnsId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "net:[{}]", self.ino)
    }
}

/// The recorded host namespace of a root-mode lab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostNamespace {
    pub id: NetnsId,
    /// An `ip netns` name (`/run/netns/NAME`) that led to it at `up`.
    pub name: Option<String>,
}

impl std::fmt::Display for HostNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => write!(f, "network namespace {n} ({})", self.id),
            None => write!(f, "network namespace {}", self.id),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HostnsError {
    #[error("cannot identify this thread's network namespace: {0}")]
    Identify(#[source] std::io::Error),
    #[error(
        "lab {lab} lives in {host} (mode = \"root\": the namespace `netlab up` ran in), but this \
         netlab runs in network namespace {here}; {hint}"
    )]
    Elsewhere {
        lab: String,
        host: HostNamespace,
        here: NetnsId,
        hint: String,
    },
    #[error("cannot enter {host}, the host side of lab {lab}: {reason}")]
    Enter {
        lab: String,
        host: HostNamespace,
        reason: String,
    },
}

/// The namespace the calling thread is in, with its `ip netns` name if one
/// leads there (the first in name order).
pub fn current() -> Result<HostNamespace, HostnsError> {
    let id = NetnsId::of_thread().map_err(HostnsError::Identify)?;
    let name = netns::list()
        .into_iter()
        .find(|n| NetnsId::of_path(&netns::path(n)).is_ok_and(|i| i == id));
    Ok(HostNamespace { id, name })
}

/// Where a command stands relative to a lab's recorded host namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// The calling thread is in it.
    Here,
    /// Elsewhere, but `/run/netns/NAME` still leads to it.
    Reachable(String),
    /// Its `ip netns` name is gone or leads elsewhere now: the namespace
    /// was deleted (and its devices with it), or is out of reach.
    Gone,
}

/// Compares the calling thread's namespace with `host`. `Err` when the
/// thread is elsewhere and the host namespace has no name to find it by.
pub fn place(lab: &str, host: &HostNamespace) -> Result<Placement, HostnsError> {
    let here = NetnsId::of_thread().map_err(HostnsError::Identify)?;
    if here == host.id {
        return Ok(Placement::Here);
    }
    match &host.name {
        Some(name) => Ok(match NetnsId::of_path(&netns::path(name)) {
            Ok(id) if id == host.id => Placement::Reachable(name.clone()),
            _ => Placement::Gone,
        }),
        None => Err(HostnsError::Elsewhere {
            lab: lab.into(),
            host: host.clone(),
            here,
            hint: "it has no `ip netns` name to enter it by: run netlab from that namespace \
                   (on a machine, its root namespace: e.g. `nsenter -t 1 -n netlab ...`)"
                .into(),
        }),
    }
}

/// Makes the calling thread work in `host`: nothing when it is there,
/// `setns` into it through its `ip netns` name when it is reachable.
/// Returns the placement found; `Gone` changes nothing (only `down` can do
/// anything useful then: clean up what did not die with the namespace).
///
/// Call it on the main thread before any other thread starts: threads and
/// child processes started later inherit the namespace, and
/// `/proc/self/ns/net` (which `check`-style comparisons read) follows it.
pub fn enter(lab: &str, host: &HostNamespace) -> Result<Placement, HostnsError> {
    let placement = place(lab, host)?;
    if let Placement::Reachable(name) = &placement {
        let cannot = |reason: String| HostnsError::Enter {
            lab: lab.into(),
            host: host.clone(),
            reason,
        };
        let fd = netns::open(name).map_err(|e| cannot(e.to_string()))?;
        nix::sched::setns(fd, CloneFlags::CLONE_NEWNET).map_err(|e| cannot(e.to_string()))?;
        log::info!("lab {lab}: working in its host side, {host}");
    }
    Ok(placement)
}

/// Refuses unless the calling thread is in `host` (for the lab functions,
/// which act on the devices of the thread's namespace).
pub fn require_here(lab: &str, host: &HostNamespace) -> Result<(), HostnsError> {
    match place(lab, host)? {
        Placement::Here => Ok(()),
        other => Err(HostnsError::Elsewhere {
            lab: lab.into(),
            host: host.clone(),
            here: NetnsId::of_thread().map_err(HostnsError::Identify)?,
            hint: match other {
                Placement::Reachable(name) => {
                    format!("run it as `ip netns exec {name} netlab ...`")
                }
                _ => "that namespace is gone".into(),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_namespace_is_here() {
        let me = current().unwrap();
        assert_eq!(place("t", &me).unwrap(), Placement::Here);
        require_here("t", &me).unwrap();
    }

    #[test]
    fn an_unnamed_other_namespace_is_refused_with_its_identity() {
        let me = current().unwrap();
        let other = HostNamespace {
            id: NetnsId {
                dev: me.id.dev,
                ino: me.id.ino ^ 1,
            },
            name: None,
        };
        let e = place("lab1", &other).unwrap_err().to_string();
        assert!(
            e.contains("lab lab1 lives in network namespace net:["),
            "{e}"
        );
        assert!(e.contains(&me.id.to_string()), "{e}");
    }

    #[test]
    fn a_name_that_no_longer_leads_there_is_gone() {
        let me = current().unwrap();
        let other = HostNamespace {
            id: NetnsId {
                dev: me.id.dev,
                ino: me.id.ino ^ 1,
            },
            name: Some("netlab-unit-no-such-namespace".into()),
        };
        assert_eq!(place("t", &other).unwrap(), Placement::Gone);
        assert!(require_here("t", &other).is_err());
    }
}
