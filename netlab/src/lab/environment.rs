//! What `up` checks against the running system before it creates
//! anything.

use super::result::LabError;
use crate::netns;
use crate::plan::{DatapathKind, HostPlan, LabPlan};
use crate::state::Owned;
use crate::topology::with_netlink;

/// Checks the plan against the running system: namespace names taken by
/// something the lab does not own, the root-mode uplink, host-side names
/// already in use in the host namespace (root mode: the calling thread's),
/// iptables for the kernel datapath.
pub fn check_environment(plan: &LabPlan, owned: &[Owned]) -> Result<(), LabError> {
    let mut problems = Vec::new();
    let owns_ns = |n: &str| {
        owned
            .iter()
            .any(|o| matches!(o, Owned::Namespace { name } if name == n))
    };
    let fields: Vec<(String, String)> = match &plan.host {
        HostPlan::Sandbox(s) => vec![
            ("host.namespace".into(), s.namespace.clone()),
            (
                "host.internet_namespace".into(),
                s.internet_namespace.clone(),
            ),
        ],
        HostPlan::Root { .. } => vec![],
    }
    .into_iter()
    .chain(
        plan.endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("namespaces[{i}].name"), e.namespace.clone())),
    )
    .collect();
    for (field, name) in &fields {
        if netns::exists(name) && !owns_ns(name) {
            problems.push(format!(
                "{field} = {name:?}: network namespace {name} already exists and lab {} does not own it",
                plan.name
            ));
        }
    }
    if let HostPlan::Root { uplink } = &plan.host {
        let mut host_side: Vec<(String, &str)> = plan
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("namespaces[{i}].peer"), e.peer.as_str()))
            .collect();
        host_side.push(("gateway_device".into(), &plan.gateway_device));
        if plan.datapath == DatapathKind::Ebpf {
            host_side.push(("gateway_port".into(), &plan.gateway_port));
        }
        let found = with_netlink(None, |nl| {
            let up = nl.link_index(uplink)?.is_some();
            let mut taken = Vec::new();
            for (field, name) in &host_side {
                let owned_link = owned
                    .iter()
                    .any(|o| matches!(o, Owned::Link { name: n, .. } if n == name));
                if !owned_link && nl.link_index(name)?.is_some() {
                    taken.push(format!(
                        "{field} = {name:?}: this network namespace (the lab's host side) already has an interface {name}"
                    ));
                }
            }
            Ok((up, taken))
        })?;
        if !found.0 {
            problems.push(format!(
                "host.uplink = {uplink:?}: no such interface in this network namespace (mode = \"root\" uses the namespace netlab runs in)"
            ));
        }
        problems.extend(found.1);
    }
    if plan.datapath == DatapathKind::Kernel && which::which("iptables").is_err() {
        problems.push(
            "datapath = \"kernel\": iptables is not installed (the kernel datapath needs it)"
                .into(),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LabError::Conflict {
            lab: plan.name.clone(),
            problems,
        })
    }
}
