//! What the daemon serves: how the loop runs, and what it needs from the
//! running lab (checked before a background daemon is spawned).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::{Context, bail};

use crate::{
    datapath::ebpf,
    plan::{DatapathKind, NatPlan, PortRole},
    state,
};

/// The sweep interval of a daemon started by `netlab up` (and the default
/// of `netlab daemon --interval`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// How the loop runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Time between expiry sweeps (the shortest; see [`super::next_sweep_delay`]).
    pub interval: Duration,
    /// Serve Prometheus metrics there (`crate::metrics`), already checked
    /// against the address policy.
    pub metrics: Option<SocketAddr>,
}

/// What the loop needs from the running lab.
pub struct Target {
    pub pin_dir: PathBuf,
    pub host_netns: Option<String>,
    pub nat: NatPlan,
    pub gateway_mac: [u8; 6],
    pub host_access: ebpf::HostAccess,
}

/// The running lab the daemon serves: up, on the eBPF datapath, with an
/// uplink and a gateway port; the error says which is missing.
pub fn target(lab: &str) -> anyhow::Result<Target> {
    let st = state::peek(lab)?
        .with_context(|| format!("lab {lab} is not up; start it with `netlab up`"))?;
    if st.plan.datapath != DatapathKind::Ebpf {
        bail!("lab {lab} runs the kernel datapath; the daemon serves the eBPF datapath only");
    }
    let plan = st.plan.switch_plan();
    let nat = plan
        .nat
        .clone()
        .with_context(|| format!("lab {lab} has no uplink to masquerade through"))?;
    let gateway_mac = plan
        .ports
        .iter()
        .find(|p| p.role == PortRole::Gateway)
        .map(|p| p.mac)
        .context("the lab has no gateway port")?;
    Ok(Target {
        pin_dir: ebpf::pin_dir(lab),
        host_access: ebpf::HostAccess::of(&plan),
        host_netns: plan.host_netns,
        nat,
        gateway_mac,
    })
}
