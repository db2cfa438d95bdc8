//! Ctrl-C during a bench: the handler only sets a flag; the bench checks it
//! between (and during) measurements and unwinds normally, so every lab
//! guard runs and every lab is brought down.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether Ctrl-C was pressed since the handler was installed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// `Err` if Ctrl-C was pressed: use with `?` at every step.
pub fn check() -> anyhow::Result<()> {
    if requested() {
        anyhow::bail!("interrupted (Ctrl-C)");
    }
    Ok(())
}

/// The installed SIGINT handler; the previous one comes back on drop.
pub struct SigintGuard {
    previous: SigAction,
}

pub fn install() -> anyhow::Result<SigintGuard> {
    REQUESTED.store(false, Ordering::SeqCst);
    let action = SigAction::new(
        SigHandler::Handler(on_sigint),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    let previous =
        unsafe { sigaction(Signal::SIGINT, &action) }.context("installing the SIGINT handler")?;
    Ok(SigintGuard { previous })
}

impl Drop for SigintGuard {
    fn drop(&mut self) {
        // SAFETY: restores the handler that was in place before install().
        let _ = unsafe { sigaction(Signal::SIGINT, &self.previous) };
    }
}
