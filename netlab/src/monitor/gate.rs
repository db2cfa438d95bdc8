//! Who listens to the event stream, and the gate the programs read.
//!
//! A BPF ring buffer has one consumer position, so two readers would each
//! see part of the stream: one `netlab monitor` per lab at a time. The
//! monitor holds an exclusive `flock` on the lab's pin directory for as
//! long as it runs, and sets `TRACE_EVENTS` in `switch_config` (the
//! programs emit nothing without it). A second monitor finds the lock
//! taken and says so.
//!
//! A monitor that exits clears the gate. One killed with SIGKILL cannot:
//! the kernel releases its lock but the gate stays set, so the programs
//! keep writing into a ring buffer nobody reads (it fills, and further
//! events are only counted as lost, a map lookup and a failed reserve per
//! event). [`clear_if_orphaned`] repairs that: the daemon calls it on every
//! loop, the next monitor starts by taking the lock anyway.

use std::{fs::File, path::Path};

use anyhow::{Context as _, bail};
use netlab_common::switch::TRACE_EVENTS;
use nix::fcntl::{Flock, FlockArg};

use crate::datapath::ebpf;

/// The running monitor's claim; clears the gate when dropped.
pub struct Listening {
    lab: String,
    _lock: Flock<File>,
}

fn lock(dir: &Path) -> anyhow::Result<Option<Flock<File>>> {
    let file = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e).with_context(|| format!("cannot lock {}", dir.display())),
    }
}

impl Listening {
    /// Claims the lab's event stream. `before_gate` runs once the claim is
    /// held and before the programs start emitting (the monitor drains
    /// what an earlier reader left in the ring buffer there).
    pub fn claim(
        lab: &str,
        dir: &Path,
        before_gate: impl FnOnce() -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        // The daemon's orphan check holds the lock for an instant: try a
        // few times before concluding that another monitor holds it.
        let mut claimed = lock(dir)?;
        for _ in 0..10 {
            if claimed.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            claimed = lock(dir)?;
        }
        let Some(lock) = claimed else {
            bail!(
                "another `netlab monitor` is reading lab {lab}'s events: a BPF ring buffer has \
                 one reader, so only one monitor runs per lab; stop that one first"
            );
        };
        before_gate()?;
        ebpf::set_trace_bit(lab, TRACE_EVENTS, true)
            .with_context(|| format!("cannot switch lab {lab}'s events on"))?;
        Ok(Self {
            lab: lab.to_string(),
            _lock: lock,
        })
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if !ebpf::pin_dir(&self.lab).exists() {
            return; // the lab went down while we listened
        }
        if let Err(e) = ebpf::set_trace_bit(&self.lab, TRACE_EVENTS, false) {
            eprintln!(
                "netlab: warning: could not switch lab {}'s events off: {e}",
                self.lab
            );
        }
    }
}

/// Clears the gate when it is set but no monitor holds the lock (the last
/// one was killed). Returns whether it did.
pub fn clear_if_orphaned(lab: &str, dir: &Path) -> anyhow::Result<bool> {
    if ebpf::config(lab)?.trace & TRACE_EVENTS == 0 {
        return Ok(false);
    }
    // Held only for the check (a monitor starting meanwhile retries).
    let Some(_lock) = lock(dir)? else {
        return Ok(false);
    };
    ebpf::set_trace_bit(lab, TRACE_EVENTS, false)?;
    Ok(true)
}

/// Whether a monitor listens (the gate is set).
pub fn is_open(lab: &str) -> bool {
    ebpf::config(lab).is_ok_and(|c| c.trace & TRACE_EVENTS != 0)
}
