//! The eBPF datapath: loads the programs, pins maps and tcx links under
//! `/sys/fs/bpf/netlab/<lab>/`, fills the maps from a [`SwitchPlan`].
//!
//! Placeholder signatures; implemented by the switch work.

use super::{PortPlan, SwitchPlan};

/// Installs (or, when pins already exist, re-adopts) the datapath. Must run
/// on a thread inside `plan.host_netns`.
pub fn install(_plan: &SwitchPlan) -> anyhow::Result<()> {
    anyhow::bail!("the eBPF datapath is not implemented yet; use --datapath kernel")
}

/// Adds one endpoint port to a running lab (`netlab attach`).
pub fn add_port(_lab: &str, _port: &PortPlan) -> anyhow::Result<()> {
    anyhow::bail!("the eBPF datapath is not implemented yet")
}

/// Removes one endpoint port from a running lab (`netlab detach`).
pub fn remove_port(_lab: &str, _port: &PortPlan) -> anyhow::Result<()> {
    anyhow::bail!("the eBPF datapath is not implemented yet")
}

/// Removes every pinned object of the lab. Succeeds when nothing is there.
pub fn uninstall(_lab: &str) -> anyhow::Result<()> {
    Ok(())
}
