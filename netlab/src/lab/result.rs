//! What the lab operations return: their error, and what `up` and `down`
//! did.

use super::hooks::FAIL_AT_ENV;
use crate::config::ConfigError;
use crate::datapath::kernel;
use crate::hostns::HostnsError;
use crate::netns::NetnsError;
use crate::plan::{LabPlan, Problem};
use crate::state::{Owned, StateError};
use crate::sysctl::SysctlError;
use crate::topology::TopologyError;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Hostns(#[from] HostnsError),
    #[error(transparent)]
    Topology(#[from] TopologyError),
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    #[error(transparent)]
    Kernel(#[from] kernel::KernelError),
    #[error("eBPF datapath: {0}")]
    Ebpf(String),
    #[error("lab {lab} cannot be created:\n  {}", .problems.join("\n  "))]
    Conflict { lab: String, problems: Vec<String> },
    #[error(
        "lab {0} is half built (an earlier `up` was interrupted); run `netlab down --lab {0}` first"
    )]
    HalfBuilt(String),
    #[error("lab {0} is not up")]
    NotUp(String),
    #[error(
        "lab {lab} lost parts that cannot be rebuilt in place:\n  {}\nrun `netlab down --lab {lab}` and `netlab up` to rebuild it",
        .missing.join("\n  ")
    )]
    CannotRepair { lab: String, missing: Vec<String> },
    #[error(
        "repairing lab {lab} failed: {source}\n`netlab down --lab {lab}` and `netlab up` rebuild it"
    )]
    RepairFailed {
        lab: String,
        #[source]
        source: Box<LabError>,
    },
    #[error("lab {lab}: {what} refused, nothing changed:\n  {}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    PublishRefused {
        lab: String,
        /// "publish" or "unpublish".
        what: &'static str,
        problems: Vec<Problem>,
    },
    #[error("namespace {namespace} is not an endpoint of lab {lab}")]
    NoSuchEndpoint { lab: String, namespace: String },
    #[error("injected failure after step `{0}` ({FAIL_AT_ENV})")]
    Injected(String),
    #[error("{failure}\nrollback was incomplete, `netlab down --lab {lab}` will retry: {rollback}")]
    RollbackFailed {
        lab: String,
        failure: Box<LabError>,
        rollback: Box<LabError>,
    },
    #[error("could not remove everything:\n  {}", .0.join("\n  "))]
    Teardown(Vec<String>),
}

pub(crate) fn ebpf_err(e: crate::bpf::Error) -> LabError {
    // Keep the whole chain: the verifier tail and the hint live in sources.
    LabError::Ebpf(format!("{:#}", anyhow::Error::new(e)))
}

/// What `up` did.
#[derive(Debug)]
pub enum UpOutcome {
    Created(LabPlan),
    /// The lab was already up; nothing changed. Holds the running plan.
    AlreadyUp(LabPlan),
    /// The lab was up but had lost parts; `up` rebuilt them (repair.rs).
    Repaired {
        plan: LabPlan,
        repaired: Vec<String>,
    },
}

/// What `down` did.
#[derive(Debug)]
pub enum DownOutcome {
    /// These objects were removed (in this order).
    Removed(Vec<Owned>),
    NothingThere,
}
