//! Attaching the NAT programs to the uplink as tcx links, pinned so that
//! they keep working when the control plane exits.

use std::{io, path::Path};

use aya::{
    Ebpf,
    programs::{SchedClassifier, TcAttachType},
};

use super::NatError;

/// Program names in the eBPF object.
pub const EGRESS_PROGRAM: &str = "netlab_uplink_egress";
pub const INGRESS_PROGRAM: &str = "netlab_uplink_ingress";
/// Link pin names under the lab's pin directory.
pub const EGRESS_LINK_PIN: &str = "link_uplink_egress";
pub const INGRESS_LINK_PIN: &str = "link_uplink_ingress";

/// Attaches the egress (masquerade) and ingress (reverse NAT) programs to
/// `uplink_dev` (resolved in the calling thread's namespace) and pins the
/// links as `<pin_dir>/link_uplink_{egress,ingress}`. Idempotent: an
/// existing live pinned link is re-adopted and atomically switched to this
/// object's program (so an upgrade never leaves the uplink unprotected); a
/// stale pin (its device is gone) is replaced. Loads the programs if needed.
pub fn attach_uplink(ebpf: &mut Ebpf, pin_dir: &Path, uplink_dev: &str) -> Result<(), NatError> {
    for (name, attach_type, pin) in [
        (EGRESS_PROGRAM, TcAttachType::Egress, EGRESS_LINK_PIN),
        (INGRESS_PROGRAM, TcAttachType::Ingress, INGRESS_LINK_PIN),
    ] {
        attach_one(ebpf, name, attach_type, &pin_dir.join(pin), uplink_dev)?;
    }
    Ok(())
}

fn attach_one(
    ebpf: &mut Ebpf,
    name: &'static str,
    attach_type: TcAttachType,
    pin: &Path,
    dev: &str,
) -> Result<(), NatError> {
    let perr = |source| NatError::Program { name, source };
    let prog: &mut SchedClassifier = ebpf
        .program_mut(name)
        .ok_or(NatError::MissingProgram { name })?
        .try_into()
        .map_err(perr)?;
    if prog.fd().is_err() {
        crate::bpf::loader::load_retrying(prog).map_err(perr)?;
    }
    crate::bpf::loader::attach_pinned_at(prog, dev, attach_type, pin).map_err(|e| {
        NatError::Io {
            what: format!("attaching {name} to {dev}"),
            source: io::Error::other(e),
        }
    })?;
    // Dropping the fd leaves the link alive through its pin.
    Ok(())
}
