//! `netlab up` on a lab that is already up: rebuild the parts that were
//! removed by hand ([`crate::health`] says which), or say clearly that only
//! `down` + `up` can.
//!
//! Rebuilt in place:
//! * an endpoint that lost its namespace, its veth or its host-side peer
//!   (the pair is one object: whatever is left of it is removed and the
//!   endpoint wired again: namespace, veth pair, MAC, address, route);
//! * kernel datapath: a peer no longer enslaved to the bridge, the
//!   MASQUERADE rule;
//! * eBPF datapath: missing pins, and the ports of rebuilt endpoints, by
//!   re-running the (idempotent) install: it re-creates missing maps, loads
//!   the program against them, syncs the maps with the devices' current
//!   ifindexes and replaces stale links. Translations in surviving NAT maps
//!   survive; a removed map comes back empty.
//!
//! Not rebuilt: the host side itself (the sandbox's host or internet
//! namespace, the uplink, the gateway device). Everything else hangs off
//! it, so `up` refuses and names them; `down` + `up` rebuilds the lab.

use super::build::Builder;
use super::result::{LabError, UpOutcome};
use crate::datapath::{self, kernel};
use crate::health::{self, Missing, PartKind};
use crate::netns;
use crate::plan::{DatapathKind, EndpointPlan, LabPlan};
use crate::state::{LabLock, LabState};
use crate::topology::with_netlink;

/// Whether `m` is a part of endpoint `e` (its namespace, veth or peer).
fn part_of_endpoint(plan: &LabPlan, e: &EndpointPlan, m: &Missing) -> bool {
    match m.kind {
        PartKind::Namespace => m.name == e.namespace,
        PartKind::Link => {
            (m.name == e.veth && m.netns.as_deref() == Some(e.namespace.as_str()))
                || (m.name == e.peer && m.netns.as_deref() == plan.host_netns())
        }
        _ => false,
    }
}

fn repairable(plan: &LabPlan, m: &Missing) -> bool {
    match m.kind {
        PartKind::Namespace | PartKind::Link => {
            plan.endpoints.iter().any(|e| part_of_endpoint(plan, e, m))
        }
        PartKind::BridgePort | PartKind::Masquerade | PartKind::Pin => true,
    }
}

/// Repairs the running lab `state` (called by `lab::up` with the lock
/// held). A healthy lab is left alone: [`UpOutcome::AlreadyUp`].
pub fn repair(lock: LabLock, state: LabState) -> Result<UpOutcome, LabError> {
    let lab = state.lab.clone();
    repair_parts(lock, state).map_err(|e| match e {
        e @ LabError::CannotRepair { .. } => e,
        e => LabError::RepairFailed {
            lab,
            source: Box::new(e),
        },
    })
}

fn repair_parts(lock: LabLock, state: LabState) -> Result<UpOutcome, LabError> {
    let missing = health::missing(&state);
    if missing.is_empty() {
        return Ok(UpOutcome::AlreadyUp(state.plan));
    }
    let plan = state.plan.clone();
    let lab = plan.name.clone();
    let fatal: Vec<String> = missing
        .iter()
        .filter(|m| !repairable(&plan, m))
        .map(|m| m.to_string())
        .collect();
    if !fatal.is_empty() {
        return Err(LabError::CannotRepair {
            lab,
            missing: fatal,
        });
    }
    let mut b = Builder { lock, state };
    let broken: Vec<&EndpointPlan> = plan
        .endpoints
        .iter()
        .filter(|e| missing.iter().any(|m| part_of_endpoint(&plan, e, m)))
        .collect();
    let mut repaired = rebuild_endpoints(&mut b, &plan, &broken)?;
    repaired.extend(match plan.datapath {
        DatapathKind::Kernel => repair_kernel(&plan, &missing, &broken)?,
        DatapathKind::Ebpf => repair_ebpf(&plan, &missing, &broken)?,
    });

    // Root mode records host-side links when wiring an endpoint: keep one
    // record per object.
    let mut seen = Vec::new();
    b.state.objects.retain(|o| {
        let fresh = !seen.contains(o);
        if fresh {
            seen.push(o.clone());
        }
        fresh
    });
    b.lock.save(&b.state)?;

    let left: Vec<String> = health::missing(&b.state)
        .iter()
        .map(|m| m.to_string())
        .collect();
    if !left.is_empty() {
        return Err(LabError::CannotRepair { lab, missing: left });
    }
    Ok(UpOutcome::Repaired {
        plan: b.state.plan,
        repaired,
    })
}

/// Wires the broken endpoints again, after removing what is left of their
/// veth pairs.
fn rebuild_endpoints(
    b: &mut Builder,
    plan: &LabPlan,
    broken: &[&EndpointPlan],
) -> Result<Vec<String>, LabError> {
    let host = plan.host_netns();
    let mut repaired = Vec::new();
    for e in broken {
        // What is left of the veth pair goes; the namespace stays if it is
        // there (it is recorded already, so it is not recorded again).
        if netns::exists(&e.namespace) {
            with_netlink(Some(&e.namespace), |nl| nl.delete_link(&e.veth))?;
        } else {
            netns::create(&e.namespace)?;
        }
        with_netlink(host, |nl| nl.delete_link(&e.peer))?;
        b.build_endpoint(e)?;
        if plan.datapath == DatapathKind::Kernel {
            with_netlink(host, |nl| Ok(kernel::enslave(nl, plan, &e.peer)))??;
        }
        repaired.push(format!(
            "endpoint {} (namespace, veth pair, address, route)",
            e.namespace
        ));
    }
    Ok(repaired)
}

/// The kernel datapath: bridge ports that left the bridge, the
/// MASQUERADE rule.
fn repair_kernel(
    plan: &LabPlan,
    missing: &[Missing],
    broken: &[&EndpointPlan],
) -> Result<Vec<String>, LabError> {
    let host = plan.host_netns();
    let mut repaired = Vec::new();
    for m in missing {
        match m.kind {
            PartKind::BridgePort if !broken.iter().any(|e| e.peer == m.name) => {
                with_netlink(host, |nl| Ok(kernel::enslave(nl, plan, &m.name)))??;
                repaired.push(format!("{} enslaved to {}", m.name, plan.gateway_device));
            }
            PartKind::Masquerade => {
                // The IPv4 rule or the IPv6 one, as health named it.
                for subnet in kernel::Masqueraded::of(plan)
                    .into_iter()
                    .filter(|s| s.to_string() == m.name)
                {
                    kernel::add_masquerade(host, &subnet)?;
                    repaired.push(format!("MASQUERADE rule for {subnet}"));
                }
            }
            _ => {}
        }
    }
    Ok(repaired)
}

/// The eBPF datapath: the (idempotent) install again, when pins are
/// missing or endpoints were rebuilt.
fn repair_ebpf(
    plan: &LabPlan,
    missing: &[Missing],
    broken: &[&EndpointPlan],
) -> Result<Vec<String>, LabError> {
    let pins_missing = missing.iter().any(|m| m.kind == PartKind::Pin);
    if !pins_missing && broken.is_empty() {
        return Ok(Vec::new());
    }
    let switch = plan.switch_plan();
    netns::run_in(plan.host_netns(), || datapath::ebpf::install(&switch))?
        .map_err(|e| LabError::Ebpf(format!("{e:#}")))?;
    Ok(vec![
        "eBPF datapath: missing pins re-created, ports re-linked and re-synced".into(),
    ])
}
