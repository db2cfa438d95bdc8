//! `attach` and `detach`: one endpoint namespace more or less on a running
//! lab.

use std::net::Ipv4Addr;

use super::build::{Builder, after_step};
use super::result::{LabError, ebpf_err};
use super::running::running;
use super::teardown::{remove_object, teardown};
use crate::config::plan_endpoint;
use crate::datapath::{self, kernel};
use crate::netns;
use crate::plan::{DatapathKind, EndpointPlan};
use crate::state::{LabLock, LabState, Owned};
use crate::topology::with_netlink;

/// Adds an endpoint namespace to a running lab.
pub fn attach(lab: &str, namespace: &str, address: Ipv4Addr) -> Result<EndpointPlan, LabError> {
    let lock = LabLock::acquire(lab)?;
    let state = running(&lock, lab)?;
    let e = plan_endpoint(&state.plan, namespace, address)?;
    if netns::exists(namespace) {
        return Err(LabError::Conflict {
            lab: lab.into(),
            problems: vec![format!("network namespace {namespace} already exists")],
        });
    }
    let first_new = state.objects.len();
    let mut b = Builder { lock, state };
    let result = (|| -> Result<(), LabError> {
        b.build_endpoint(&e)?;
        let plan = b.plan().clone();
        let host = plan.host_netns();
        match plan.datapath {
            DatapathKind::Kernel => {
                with_netlink(host, |nl| Ok(kernel::enslave(nl, &plan, &e.peer)))??
            }
            DatapathKind::Ebpf => {
                let port = plan.port_plan(&e);
                netns::run_in(host, || datapath::ebpf::add_port(lab, &port))?.map_err(ebpf_err)?
            }
        }
        after_step("attach")
    })();
    match result {
        Ok(()) => {
            b.state.plan.endpoints.push(e.clone());
            b.lock.save(&b.state)?;
            Ok(e)
        }
        Err(failure) => {
            // Roll back only what this attach recorded.
            let mut mine = LabState {
                objects: b.state.objects.split_off(first_new),
                ..b.state.clone()
            };
            let rb = teardown(&b.lock, &mut mine, false);
            b.state.objects.append(&mut mine.objects);
            b.lock.save(&b.state)?;
            match rb {
                Ok(_) => Err(failure),
                Err(rollback) => Err(LabError::RollbackFailed {
                    lab: lab.into(),
                    failure: Box::new(failure),
                    rollback: Box::new(rollback),
                }),
            }
        }
    }
}

/// Removes an endpoint namespace from a running lab.
pub fn detach(lab: &str, namespace: &str) -> Result<EndpointPlan, LabError> {
    let lock = LabLock::acquire(lab)?;
    let mut state = running(&lock, lab)?;
    let Some(e) = state.plan.endpoint(namespace).cloned() else {
        return Err(LabError::NoSuchEndpoint {
            lab: lab.into(),
            namespace: namespace.into(),
        });
    };
    let host = state.plan.host_netns().map(str::to_string);
    if state
        .plan
        .publications
        .iter()
        .any(|p| p.namespace == namespace)
    {
        // Its published ports go first, with their translations and rules.
        let left = state
            .plan
            .publications
            .iter()
            .filter(|p| p.namespace != namespace)
            .cloned()
            .collect();
        super::publish::apply(&lock, &mut state, left)?;
    }
    if state.plan.datapath == DatapathKind::Ebpf {
        let port = state.plan.port_plan(&e);
        netns::run_in(host.as_deref(), || datapath::ebpf::remove_port(lab, &port))?
            .map_err(ebpf_err)?;
    }
    // Host-side link first (root mode), then the namespace.
    let mine: Vec<Owned> = state
        .objects
        .iter()
        .filter(|o| match o {
            Owned::Link { netns: None, name } => host.is_none() && *name == e.peer,
            Owned::Namespace { name } => *name == e.namespace,
            _ => false,
        })
        .cloned()
        .collect();
    for obj in mine.iter().rev() {
        remove_object(lab, obj, false)?;
        state.objects.retain(|o| o != obj);
        lock.save(&state)?;
    }
    state.plan.endpoints.retain(|x| x.namespace != namespace);
    lock.save(&state)?;
    Ok(e)
}
