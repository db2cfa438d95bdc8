//! Who listens to the event stream, and the gate the programs read.
//!
//! A BPF ring buffer has one consumer position, so two readers would each
//! see part of the stream: one reader per lab at a time, `netlab monitor`
//! (which sets `TRACE_EVENTS` in `switch_config`: the programs' events) or
//! `netlab trace` (`TRACE_FRAMES`: the port program's frame events). The
//! reader holds an exclusive `flock` on the lab's pin directory for as
//! long as it runs, and sets its bit (the programs emit nothing without
//! it). A second reader finds the lock taken and says so.
//!
//! A reader that exits clears its bit. One killed with SIGKILL cannot:
//! the kernel releases its lock but the gate stays set, so the programs
//! keep writing into a ring buffer nobody reads (it fills, and further
//! events are only counted as lost, a map lookup and a failed reserve per
//! event). [`clear_if_orphaned`] repairs that: the daemon calls it on every
//! loop, the next monitor starts by taking the lock anyway.

use std::{fs::File, path::Path};

use anyhow::{Context as _, bail};
use netlab_common::switch::{TRACE_EVENTS, TRACE_FRAMES};
use nix::fcntl::{Flock, FlockArg};

use crate::datapath::ebpf;

/// The running reader's claim; clears its bit when dropped.
pub struct Listening {
    lab: String,
    bit: u32,
    _lock: Flock<File>,
}

/// The gate bits a reader may hold, each cleared when orphaned.
const GATES: u32 = TRACE_EVENTS | TRACE_FRAMES;

fn lock(dir: &Path) -> anyhow::Result<Option<Flock<File>>> {
    let file = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(e).with_context(|| format!("cannot lock {}", dir.display())),
    }
}

impl Listening {
    /// Claims the lab's event stream and opens the gate `bit`
    /// (`TRACE_EVENTS` or `TRACE_FRAMES`). `before_gate` runs once the
    /// claim is held and before the programs start emitting (the reader
    /// drains what an earlier reader left in the ring buffer there).
    pub fn claim(
        lab: &str,
        dir: &Path,
        bit: u32,
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
                "another `netlab monitor` or `netlab trace` is reading lab {lab}'s events: a BPF \
                 ring buffer has one reader, so only one of them runs per lab; stop that one first"
            );
        };
        before_gate()?;
        ebpf::set_trace_bit(lab, bit, true)
            .with_context(|| format!("cannot switch lab {lab}'s events on"))?;
        Ok(Self {
            lab: lab.to_string(),
            bit,
            _lock: lock,
        })
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        if !ebpf::pin_dir(&self.lab).exists() {
            return; // the lab went down while we listened
        }
        if let Err(e) = ebpf::set_trace_bit(&self.lab, self.bit, false) {
            eprintln!(
                "netlab: warning: could not switch lab {}'s events off: {e}",
                self.lab
            );
        }
    }
}

/// Clears the gates when one is set but no reader holds the lock (the
/// last one was killed). Returns whether it did.
pub fn clear_if_orphaned(lab: &str, dir: &Path) -> anyhow::Result<bool> {
    if ebpf::config(lab)?.trace & GATES == 0 {
        return Ok(false);
    }
    // Held only for the check (a reader starting meanwhile retries).
    let Some(_lock) = lock(dir)? else {
        return Ok(false);
    };
    ebpf::set_trace_bit(lab, GATES, false)?;
    Ok(true)
}

/// Whether a monitor listens (the gate is set).
pub fn is_open(lab: &str) -> bool {
    ebpf::config(lab).is_ok_and(|c| c.trace & TRACE_EVENTS != 0)
}
