//! Removing what a lab recorded: one object, or all of them newest first.

use super::result::{LabError, ebpf_err};
use crate::datapath::kernel::Family;
use crate::datapath::{self, kernel};
use crate::netns;
use crate::state::{LabLock, LabState, Owned};
use crate::sysctl;
use crate::topology::with_netlink;

/// Removes one recorded object; absent objects are fine. `host_gone`: the
/// root-mode host namespace no longer exists, so what lived in it
/// (`netns: None`) went with it and the calling thread's namespace, which
/// is another one, must not be touched.
pub(crate) fn remove_object(lab: &str, obj: &Owned, host_gone: bool) -> Result<(), LabError> {
    let gone = |ns: &Option<String>| match ns.as_deref() {
        Some(n) => !netns::exists(n),
        None => host_gone,
    };
    match obj {
        Owned::Namespace { name } => netns::delete(name)?,
        Owned::Link { netns: ns, name } => {
            if !gone(ns) {
                with_netlink(ns.as_deref(), |nl| nl.delete_link(name))?;
            }
        }
        Owned::Sysctl {
            netns: ns,
            key,
            old_value,
        } => {
            if !gone(ns) {
                sysctl::write(ns.as_deref(), key, old_value)?;
            }
        }
        Owned::Masquerade { netns: ns, subnet } => {
            if gone(ns) {
                return Ok(());
            }
            let subnet: kernel::Masqueraded = subnet.parse().map_err(|m: String| {
                LabError::Teardown(vec![format!(
                    "bad subnet {subnet:?} in the state file: {m}"
                )])
            })?;
            kernel::remove_masquerade(ns.as_deref(), &subnet)?;
        }
        Owned::NatTable { netns: ns, ipv6 } => {
            if !gone(ns) {
                kernel::remove_nat_table_if_empty(Family::from_ipv6(*ipv6), ns.as_deref())?;
            }
        }
        Owned::IptablesRule {
            netns: ns,
            table,
            chain,
            args,
        } => {
            if !gone(ns) {
                kernel::remove_rule(ns.as_deref(), table, chain, args)?;
            }
        }
        Owned::EbpfDatapath { netns: ns } => {
            // Pins live in bpffs, not in the namespace: uninstall even when
            // the namespace is already gone.
            let ns = if gone(ns) { None } else { ns.as_deref() };
            netns::run_in(ns, || datapath::ebpf::uninstall(lab))?.map_err(ebpf_err)?;
        }
    }
    Ok(())
}

/// Removes every recorded object, newest first, saving progress after each
/// so an interrupted teardown can be resumed. Keeps going past failures and
/// reports them all. Must run in the lab's host namespace unless
/// `host_gone` (see [`remove`]).
pub(super) fn teardown(
    lock: &LabLock,
    state: &mut LabState,
    host_gone: bool,
) -> Result<Vec<Owned>, LabError> {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    let mut failures = Vec::new();
    while let Some(obj) = state.objects.pop() {
        // Root mode: a setting another lab here still relies on goes to
        // that lab instead of being restored now.
        if let Some(host) = state.host.as_ref().filter(|_| !host_gone)
            && let Some(to) = crate::handover::hand_over(&state.lab, host, &obj)
        {
            log::info!("lab {}: {obj:?} handed over to lab {to}", state.lab);
            removed.push(obj);
        } else {
            match remove_object(&state.lab, &obj, host_gone) {
                Ok(()) => removed.push(obj),
                Err(e) => {
                    failures.push(format!("{obj:?}: {e}"));
                    failed.push(obj);
                }
            }
        }
        // Save what is left (failures stay recorded for the next down).
        let mut left = state.objects.clone();
        left.extend(failed.iter().rev().cloned());
        let snapshot = LabState {
            objects: left,
            ..state.clone()
        };
        lock.save(&snapshot)?;
    }
    if failures.is_empty() {
        Ok(removed)
    } else {
        failed.reverse();
        state.objects = failed;
        Err(LabError::Teardown(failures))
    }
}
