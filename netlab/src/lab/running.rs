//! The running lab that `attach`, `detach`, `publish` and the CNI plugin
//! act on.

use super::result::LabError;
use crate::hostns;
use crate::state::{LabLock, LabState};

/// Refuses to act on a root-mode lab from another namespace than its host's.
pub(super) fn require_host(state: &LabState) -> Result<(), LabError> {
    match &state.host {
        Some(host) => Ok(hostns::require_here(&state.lab, host)?),
        None => Ok(()),
    }
}

pub(crate) fn running(lock: &LabLock, lab: &str) -> Result<LabState, LabError> {
    match lock.load()? {
        Some(s) if s.complete => {
            require_host(&s)?;
            Ok(s)
        }
        Some(_) => Err(LabError::HalfBuilt(lab.into())),
        None => Err(LabError::NotUp(lab.into())),
    }
}
