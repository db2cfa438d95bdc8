//! Lab lifecycle: `up`, `down`, `attach`, `detach`, `publish`.
//!
//! `up` validates the plan against the running system, takes the lab lock,
//! and then records every object in the state file *before* creating it, so
//! that whatever happens next (an error, SIGKILL) `down` can remove it. On
//! an error `up` rolls back what it recorded and leaves nothing behind.
//!
//! One file per idea: [`build`] (the steps and their records), [`hooks`]
//! (the test hooks between the steps), [`environment`] (checks against the
//! running system), [`teardown`], [`endpoints`] (attach, detach),
//! [`repair`] (`up` on a lab that lost parts), [`publish`] (published
//! ports on a running lab), [`running`] (the running lab the commands act
//! on), [`result`] (errors, outcomes).

pub mod build;
pub mod endpoints;
pub mod environment;
pub mod hooks;
pub mod ipv6;
pub mod publish;
pub mod repair;
pub mod result;
pub mod running;
pub mod teardown;

pub use endpoints::{attach, detach};
pub use environment::check_environment;
pub use hooks::{FAIL_AT_ENV, PAUSE_AT_ENV, STEPS};
pub use result::{DownOutcome, LabError, UpOutcome};

use build::Builder;
use running::require_host;
use teardown::teardown;

use crate::hostns::{self, Placement};
use crate::plan::LabPlan;
use crate::state::{LabLock, LabState};

/// Builds the lab `plan` describes. A lab already up is left as is.
pub fn up(plan: &LabPlan) -> Result<UpOutcome, LabError> {
    // Not waiting: a second `up` of the same lab reports it busy.
    let lock = LabLock::try_acquire(&plan.name)?;
    if let Some(state) = lock.load()? {
        require_host(&state)?;
        return if state.complete {
            // Already up: repair what was removed by hand, if anything.
            repair::repair(lock, state)
        } else {
            Err(LabError::HalfBuilt(plan.name.clone()))
        };
    }
    check_environment(plan, &[])?;
    let mut state = LabState::new(plan.clone());
    if plan.sandbox().is_none() {
        // Root mode: the host side is this thread's namespace; later
        // commands find (or refuse) it by this record.
        state.host = Some(hostns::current()?);
    }
    let mut b = Builder { lock, state };
    b.lock.save(&b.state)?;
    match b.build() {
        Ok(()) => {
            b.state.complete = true;
            b.lock.save(&b.state)?;
            Ok(UpOutcome::Created(b.state.plan))
        }
        Err(failure) => match teardown(&b.lock, &mut b.state, false) {
            Ok(_) => {
                b.lock.remove()?;
                Err(failure)
            }
            Err(rollback) => Err(LabError::RollbackFailed {
                lab: plan.name.clone(),
                failure: Box::new(failure),
                rollback: Box::new(rollback),
            }),
        },
    }
}

/// Removes everything the lab's state file records, then the state file.
pub fn down(lab: &str) -> Result<DownOutcome, LabError> {
    let lock = LabLock::acquire(lab)?;
    // The control loop goes first, so it never sweeps maps being removed.
    if let Err(e) = crate::daemon::stop(lab) {
        log::warn!("stopping the daemon of lab {lab}: {e:#}");
    }
    let Some(mut state) = lock.load()? else {
        return Ok(DownOutcome::NothingThere);
    };
    let host_gone = match &state.host {
        None => false,
        Some(host) => match hostns::place(lab, host)? {
            Placement::Here => false,
            Placement::Gone => {
                log::warn!(
                    "lab {lab}: its host side, {host}, is gone (and its devices with it); \
                     removing what is left"
                );
                true
            }
            Placement::Reachable(_) => {
                hostns::require_here(lab, host)?;
                false
            }
        },
    };
    let removed = teardown(&lock, &mut state, host_gone)?;
    lock.remove()?;
    Ok(DownOutcome::Removed(removed))
}
