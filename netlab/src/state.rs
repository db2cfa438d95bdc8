//! What a lab owns, on disk: `/run/netlab/<lab>.json`, guarded by an flock
//! on `/run/netlab/<lab>.lock`.
//!
//! Every object is recorded *before* it is created, so after a crash (even
//! SIGKILL half way through `up`) `down` knows everything that may exist and
//! removes it; removing something that is not there is not an error. /run is
//! a tmpfs: after a reboot, the lab (namespaces, links) is gone and so is
//! its record.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::hostns::HostNamespace;
use crate::plan::LabPlan;

pub const STATE_DIR: &str = "/run/netlab";
/// Bumped when the file format changes incompatibly.
pub const STATE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is unreadable ({message}); inspect or delete it by hand")]
    Corrupt { path: String, message: String },
    #[error(
        "lab {lab} is busy: another netlab{} is changing it; try again when it has finished",
        .holder.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Busy { lab: String, holder: Option<u32> },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StateError {
    let context = context.into();
    move |source| StateError::Io { context, source }
}

/// One thing the lab created and `down` must remove.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owned {
    /// A named network namespace (and with it every device inside).
    Namespace { name: String },
    /// A link outside the lab's own namespaces (root mode host side;
    /// `netns: None` is the recorded host namespace, [`LabState::host`]).
    Link { netns: Option<String>, name: String },
    /// A sysctl changed from `old_value`; `down` writes `old_value` back.
    Sysctl {
        netns: Option<String>,
        key: String,
        old_value: String,
    },
    /// The iptables `nat` table, which did not exist in `netns` before the
    /// MASQUERADE rule made it (iptables-nft creates it on first use);
    /// `down` deletes it again if it holds no rules. `ipv6`: ip6tables'
    /// (absent in state files written before IPv6: iptables').
    NatTable {
        netns: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        ipv6: bool,
    },
    /// `iptables -t nat -A POSTROUTING -s SUBNET -j MASQUERADE` in `netns`;
    /// `ip6tables` when SUBNET is the lab's IPv6 prefix.
    Masquerade {
        netns: Option<String>,
        subnet: String,
    },
    /// The eBPF datapath's pins (`datapath::ebpf::uninstall(lab)`).
    EbpfDatapath { netns: Option<String> },
    /// One iptables rule of a published port on the kernel datapath
    /// (`publish::portmap`); removed with `iptables -D` and the same args.
    IptablesRule {
        netns: Option<String>,
        table: String,
        chain: String,
        args: Vec<String>,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabState {
    pub version: u32,
    pub lab: String,
    /// False while `up` runs (or after it died): the lab is half built.
    pub complete: bool,
    pub plan: LabPlan,
    /// In creation order; `down` removes them in reverse.
    pub objects: Vec<Owned>,
    /// Root mode: the namespace `up` ran in, whose devices and sysctls the
    /// records with `netns: None` name. Recorded before anything is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostNamespace>,
}

impl LabState {
    pub fn new(plan: LabPlan) -> Self {
        Self {
            version: STATE_VERSION,
            lab: plan.name.clone(),
            complete: false,
            plan,
            objects: Vec::new(),
            host: None,
        }
    }
}

/// State and lock files: root's to write, whatever umask netlab runs
/// under. `down` removes what the state file lists, so a file others could
/// write would let them have root delete their choice of namespaces.
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// Creates [`STATE_DIR`] (mode 0755, whatever the umask).
pub fn create_state_dir() -> Result<(), StateError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(STATE_DIR)
        .map_err(io(format!("cannot create {STATE_DIR}")))
}

pub fn state_path(lab: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(format!("{lab}.json"))
}

fn lock_path(lab: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(format!("{lab}.lock"))
}

/// Names of the labs that have a state file.
pub fn labs() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(STATE_DIR) else {
        return Vec::new();
    };
    let mut v: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    v.sort();
    v
}

/// Reads a lab's state without taking the lock (for status/check, which
/// change nothing).
pub fn peek(lab: &str) -> Result<Option<LabState>, StateError> {
    read(lab)
}

fn read(lab: &str) -> Result<Option<LabState>, StateError> {
    let path = state_path(lab);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(format!("cannot read {}", path.display()))(e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StateError::Corrupt {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// Exclusive right to change one lab. Released on drop (or process death:
/// flocks die with their file descriptions). A lab without a state file
/// also loses its lock file on drop, so /run/netlab only lists live labs.
pub struct LabLock {
    lab: String,
    lock: Flock<File>,
}

/// True when `file` is still the one at `path` (it was not unlinked by a
/// previous holder while we waited for it).
fn still_linked(file: &File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

impl LabLock {
    /// Takes the lab's lock, waiting (with a message) if another netlab holds it.
    pub fn acquire(lab: &str) -> Result<Self, StateError> {
        Self::take(lab, true)
    }

    /// Takes the lab's lock if nobody holds it; otherwise fails at once
    /// with [`StateError::Busy`] (naming the holder's pid). `up` uses this:
    /// a second `up` of the same lab says the lab is busy instead of
    /// queueing behind the first.
    pub fn try_acquire(lab: &str) -> Result<Self, StateError> {
        Self::take(lab, false)
    }

    fn take(lab: &str, wait: bool) -> Result<Self, StateError> {
        create_state_dir()?;
        let path = lock_path(lab);
        let mut told = false;
        loop {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .mode(FILE_MODE)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io(format!("cannot open {}", path.display())))?;
            let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(l) => l,
                Err(_) if !wait => {
                    return Err(StateError::Busy {
                        lab: lab.to_string(),
                        holder: std::fs::read_to_string(&path)
                            .ok()
                            .and_then(|t| t.trim().parse().ok()),
                    });
                }
                Err((file, _)) => {
                    if !told {
                        eprintln!("netlab: waiting for another netlab working on lab {lab}");
                        told = true;
                    }
                    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| StateError::Io {
                        context: format!("cannot lock {}", path.display()),
                        source: e.into(),
                    })?
                }
            };
            // The previous holder may have removed the lock file: then this
            // lock guards nothing; start over with a fresh file.
            if still_linked(&lock, &path) {
                // Who holds it, for the "busy" message of others.
                let _ = lock
                    .set_len(0)
                    .and_then(|_| (&*lock).write_all(std::process::id().to_string().as_bytes()));
                return Ok(Self {
                    lab: lab.to_string(),
                    lock,
                });
            }
        }
    }

    pub fn load(&self) -> Result<Option<LabState>, StateError> {
        read(&self.lab)
    }

    /// Writes the state atomically (temp file + fsync + rename), so a crash
    /// leaves either the old or the new record, never half of one.
    pub fn save(&self, state: &LabState) -> Result<(), StateError> {
        let path = state_path(&self.lab);
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(state).expect("state serializes");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&tmp)
            .map_err(io(format!("cannot write {}", tmp.display())))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(io(format!("cannot write {}", tmp.display())))?;
        std::fs::rename(&tmp, &path).map_err(io(format!("cannot replace {}", path.display())))
    }

    /// Forgets the lab (after `down` removed everything). The lock file
    /// goes when the lock is dropped.
    pub fn remove(&self) -> Result<(), StateError> {
        let path = state_path(&self.lab);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("cannot remove {}", path.display()))(e)),
        }
    }
}

impl Drop for LabLock {
    fn drop(&mut self) {
        // Still holding the lock here (the flock is released when the
        // field drops, after this): nobody can be creating the state file.
        if !state_path(&self.lab).exists() {
            let _ = std::fs::remove_file(lock_path(&self.lab));
        }
        let _ = &self.lock;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LabConfig;

    #[test]
    fn state_round_trips() {
        let plan = LabConfig::default().resolve().unwrap();
        let mut s = LabState::new(plan);
        s.objects.push(Owned::Namespace { name: "ns1".into() });
        s.objects.push(Owned::Sysctl {
            netns: None,
            key: "net.ipv4.ip_forward".into(),
            old_value: "0".into(),
        });
        s.objects.push(Owned::Masquerade {
            netns: Some("netlab-host".into()),
            subnet: "192.168.28.0/24".into(),
        });
        s.objects.push(Owned::NatTable {
            netns: None,
            ipv6: true,
        });
        let text = serde_json::to_string(&s).unwrap();
        let back: LabState = serde_json::from_str(&text).unwrap();
        assert_eq!(back.objects, s.objects);
        assert_eq!(back.plan, s.plan);
    }

    #[test]
    fn records_written_before_ipv6_load() {
        // The nat table record had no `ipv6`: it was iptables'.
        let old: Owned = serde_json::from_str(r#"{"kind":"nat_table","netns":"h"}"#).unwrap();
        assert_eq!(
            old,
            Owned::NatTable {
                netns: Some("h".into()),
                ipv6: false
            }
        );
        let text = serde_json::to_string(&old).unwrap();
        assert!(!text.contains("ipv6"), "{text}");
    }
}
