//! What `up` checks against the running system before it creates
//! anything.

use super::result::LabError;
use crate::cidr::Ipv6Cidr;
use crate::datapath::kernel::Family;
use crate::netns;
use crate::plan::{DatapathKind, HostPlan, LabPlan};
use crate::state::Owned;
use crate::topology::with_netlink;

/// Checks the plan against the running system: namespace names taken by
/// something the lab does not own, the root-mode uplink, host-side names
/// already in use in the host namespace (root mode: the calling thread's),
/// iptables (and ip6tables, with IPv6) for the kernel datapath.
pub fn check_environment(plan: &LabPlan, owned: &[Owned]) -> Result<(), LabError> {
    let mut problems = namespaces_taken(plan, owned);
    if let HostPlan::Root { uplink } = &plan.host {
        problems.extend(root_host_side(plan, uplink, owned)?);
    }
    if plan.datapath == DatapathKind::Kernel {
        let mut needed = vec![Family::Ipv4];
        if plan.ipv6.is_some() {
            needed.push(Family::Ipv6);
        }
        for tool in needed.into_iter().map(Family::command) {
            if which::which(tool).is_err() {
                problems.push(format!(
                    "datapath = \"kernel\": {tool} is not installed (the kernel datapath needs it{})",
                    if tool == "ip6tables" { " for the lab's IPv6; subnet6 = \"none\" does without" } else { "" }
                ));
            }
        }
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

/// The lab's namespaces that exist already and are not the lab's own.
fn namespaces_taken(plan: &LabPlan, owned: &[Owned]) -> Vec<String> {
    let owns_ns = |n: &str| {
        owned
            .iter()
            .any(|o| matches!(o, Owned::Namespace { name } if name == n))
    };
    let sandbox = match &plan.host {
        HostPlan::Sandbox(s) => vec![
            ("host.namespace".to_string(), s.namespace.clone()),
            (
                "host.internet_namespace".to_string(),
                s.internet_namespace.clone(),
            ),
        ],
        HostPlan::Root { .. } => vec![],
    };
    let endpoints = plan
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| (format!("namespaces[{i}].name"), e.namespace.clone()));
    sandbox
        .into_iter()
        .chain(endpoints)
        .filter(|(_, name)| netns::exists(name) && !owns_ns(name))
        .map(|(field, name)| {
            format!(
                "{field} = {name:?}: network namespace {name} already exists and lab {} does not own it",
                plan.name
            )
        })
        .collect()
}

/// Root mode: the uplink must exist in this namespace, and the host-side
/// names the lab will create must not.
fn root_host_side(plan: &LabPlan, uplink: &str, owned: &[Owned]) -> Result<Vec<String>, LabError> {
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
    let (uplink_found, mut problems) = with_netlink(None, |nl| {
        let up = nl.link_index(uplink)?.is_some();
        let mut taken = Vec::new();
        // The lab's IPv6 prefix must not overlap the uplink's (its
        // addresses there would be unreachable, or the uplink's network
        // would be routed into the lab).
        if let (true, Some(v6)) = (up, plan.ipv6) {
            for (addr, len) in nl.global_ipv6_all(uplink)? {
                let theirs = Ipv6Cidr::new(addr, len).map(|c| c.trunc());
                if let Some(theirs) = theirs.filter(|c| c.overlaps(&v6.subnet)) {
                    taken.push(format!(
                        "subnet6 = \"{}\": overlaps the uplink {uplink}'s IPv6 prefix {theirs}",
                        v6.subnet
                    ));
                }
            }
        }
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
    if !uplink_found {
        problems.insert(0, format!(
            "host.uplink = {uplink:?}: no such interface in this network namespace (mode = \"root\" uses the namespace netlab runs in)"
        ));
    }
    Ok(problems)
}
