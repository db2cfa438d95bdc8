//! The library API for published ports on a running lab: [`publish`],
//! [`unpublish`], [`list`]. `netlab publish/unpublish/ports` and the CNI
//! plugin (`portMappings`) call these; keep their signatures stable.
//!
//! Every change validates first (nothing changes on a refusal), then
//! brings the datapath to the new list with [`apply`]: the port
//! reservation, the kernel datapath's iptables rules (recorded before they
//! are added) or the eBPF datapath's `nat_publish` map (translations of a
//! publication that went away are dropped with it), and last the list in
//! the lab's state.

use super::result::LabError;
use super::running::running;
use super::teardown::remove_object;
use crate::datapath;
use crate::netns;
use crate::plan::{
    DatapathKind, LabPlan, PortSpec, Problem, Publication, PublishedPort, PublishedPort6,
    check_publications, expand, expand6,
};
use crate::publish::{host, portmap};
use crate::state::{LabLock, LabState, Owned};
use crate::sysctl;

fn refused(lab: &str, what: &'static str, problems: Vec<Problem>) -> LabError {
    LabError::PublishRefused {
        lab: lab.to_string(),
        what,
        problems,
    }
}

/// Publishes `specs` for `namespace` on the running lab `lab`. All or
/// nothing: any problem (malformed spec, unknown namespace, collision with
/// another publication, the NAT range, a host address the host side does
/// not have, a port its sockets already use) refuses every spec, naming
/// it. Publishing what is already published is a no-op. Returns the
/// lab's publications afterwards.
pub fn publish(
    lab: &str,
    namespace: &str,
    specs: &[PortSpec],
) -> Result<Vec<Publication>, LabError> {
    let lock = LabLock::acquire(lab)?;
    let mut state = running(&lock, lab)?;
    publish_locked(&lock, &mut state, namespace, specs)?;
    Ok(state.plan.publications)
}

/// [`publish`] with the lab lock already held (the CNI plugin publishes a
/// container's `portMappings` inside its ADD).
pub(crate) fn publish_locked(
    lock: &LabLock,
    state: &mut LabState,
    namespace: &str,
    specs: &[PortSpec],
) -> Result<(), LabError> {
    let existing = state.plan.publications.clone();
    let new: Vec<(String, Publication)> = specs
        .iter()
        .map(|spec| Publication {
            namespace: namespace.to_string(),
            spec: *spec,
        })
        .filter(|p| !existing.contains(p))
        .map(|p| (format!("publish {}", p.spec), p))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let mut problems = check_publications(&state.plan, &existing, &new, None);
    if problems.is_empty() {
        let facts = host::read(state.plan.host_netns())?;
        problems = host::check(&state.plan, &facts, &existing, &new);
    }
    if !problems.is_empty() {
        return Err(refused(&state.lab, "publish", problems));
    }
    let mut wanted = existing;
    wanted.extend(new.into_iter().map(|(_, p)| p));
    apply(lock, state, wanted)
}

/// Removes `specs` of `namespace` from the running lab; their
/// translations go with them (a republished UDP port never keeps sending
/// to the old namespace). A spec that is not published is refused, naming
/// it, and nothing changes. Returns the lab's publications afterwards.
pub fn unpublish(
    lab: &str,
    namespace: &str,
    specs: &[PortSpec],
) -> Result<Vec<Publication>, LabError> {
    let lock = LabLock::acquire(lab)?;
    let mut state = running(&lock, lab)?;
    let mut wanted = state.plan.publications.clone();
    let mut problems = Vec::new();
    for spec in specs {
        let p = Publication {
            namespace: namespace.to_string(),
            spec: *spec,
        };
        match wanted.iter().position(|q| *q == p) {
            Some(i) => {
                wanted.remove(i);
            }
            None => problems.push(Problem {
                field: format!("unpublish {spec}"),
                value: format!("{namespace} {spec}"),
                reason: format!("not published in lab {lab}"),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(refused(lab, "unpublish", problems));
    }
    apply(&lock, &mut state, wanted)?;
    Ok(state.plan.publications)
}

/// The publications of a lab (running or half built), without the lock.
pub fn list(lab: &str) -> Result<Vec<Publication>, LabError> {
    match crate::state::peek(lab)? {
        Some(s) => Ok(s.plan.publications),
        None => Err(LabError::NotUp(lab.into())),
    }
}

/// Records `obj` in the state before it is created.
fn record(lock: &LabLock, state: &mut LabState, obj: Owned) -> Result<(), LabError> {
    state.objects.push(obj);
    lock.save(state)?;
    Ok(())
}

/// Brings the datapath and the state to `wanted`. Used by publish and
/// unpublish, by `up` (the lab file's publications) and by `detach` (a
/// namespace's publications go with it).
pub(crate) fn apply(
    lock: &LabLock,
    state: &mut LabState,
    wanted: Vec<Publication>,
) -> Result<(), LabError> {
    let plan = state.plan.clone();
    let host = plan.host_netns().map(str::to_string);
    let host = host.as_deref();

    // The reservation first: from now on no host socket takes the ports.
    let key = host::RESERVED_PORTS_KEY;
    let recorded = state.objects.iter().find_map(|o| match o {
        Owned::Sysctl {
            netns,
            key: k,
            old_value,
        } if k == key && netns.as_deref() == host => Some(old_value.clone()),
        _ => None,
    });
    let original = match recorded {
        Some(v) => Some(v),
        None if wanted.is_empty() => None,
        None => {
            let old_value = sysctl::read(host, key)?;
            record(
                lock,
                state,
                Owned::Sysctl {
                    netns: host.map(str::to_string),
                    key: key.into(),
                    old_value: old_value.clone(),
                },
            )?;
            Some(old_value)
        }
    };
    if let Some(original) = original {
        let nat =
            (plan.datapath == DatapathKind::Ebpf).then_some((plan.nat.port_min, plan.nat.port_max));
        sysctl::write(host, key, &host::reserved_ports(&original, nat, &wanted))?;
    }

    let ports = expand(&plan, &wanted);
    let ports6 = expand6(&plan, &wanted);
    match plan.datapath {
        DatapathKind::Kernel => apply_rules(lock, state, &plan, &ports, &ports6)?,
        DatapathKind::Ebpf => {
            let lab = plan.name.clone();
            netns::run_in(host, || {
                datapath::ebpf::set_published(&lab, &ports, &ports6)
            })?
            .map_err(|e| LabError::Ebpf(format!("{:#}", anyhow::Error::new(e))))?;
        }
    }
    state.plan.publications = wanted;
    lock.save(state)?;
    Ok(())
}

/// The kernel datapath: removes recorded rules that are no longer wanted,
/// then records and adds the missing ones (and `route_localnet`).
fn apply_rules(
    lock: &LabLock,
    state: &mut LabState,
    plan: &LabPlan,
    ports: &[PublishedPort],
    ports6: &[PublishedPort6],
) -> Result<(), LabError> {
    let host = plan.host_netns().map(str::to_string);
    let rules = portmap::rules(plan, ports, ports6);
    let as_owned = |r: &portmap::Rule| Owned::IptablesRule {
        netns: host.clone(),
        ipv6: r.ipv6,
        table: r.table.clone(),
        chain: r.chain.clone(),
        args: r.args.clone(),
    };
    let wanted: Vec<Owned> = rules.iter().map(as_owned).collect();
    let stale: Vec<Owned> = state
        .objects
        .iter()
        .filter(|o| matches!(o, Owned::IptablesRule { .. }) && !wanted.contains(o))
        .cloned()
        .collect();
    for obj in stale {
        remove_object(&plan.name, &obj, false)?;
        state.objects.retain(|o| *o != obj);
        lock.save(state)?;
    }
    if !ports.is_empty() {
        // IPv4 only: IPv6 has no route_localnet (see portmap::rules).
        let key = portmap::route_localnet_key(plan);
        let recorded = state
            .objects
            .iter()
            .any(|o| matches!(o, Owned::Sysctl { key: k, .. } if *k == key));
        if !recorded {
            let old_value = sysctl::read(host.as_deref(), &key)?;
            record(
                lock,
                state,
                Owned::Sysctl {
                    netns: host.clone(),
                    key: key.clone(),
                    old_value,
                },
            )?;
            sysctl::write(host.as_deref(), &key, "1")?;
        }
    }
    for obj in wanted {
        if state.objects.contains(&obj) {
            continue;
        }
        record(lock, state, obj.clone())?;
        if let Owned::IptablesRule {
            netns,
            ipv6,
            table,
            chain,
            args,
        } = &obj
        {
            datapath::kernel::add_rule(netns.as_deref(), *ipv6, table, chain, args)?;
        }
    }
    Ok(())
}
