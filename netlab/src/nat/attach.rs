//! Attaching the NAT programs to the uplink as tcx links, pinned so that
//! they keep working when the control plane exits.

use std::{io, path::Path};

use aya::{
    Ebpf,
    programs::{
        LinkOrder, SchedClassifier, TcAttachType,
        links::{FdLink, LinkError, PinnedLink},
        tc::{SchedClassifierLink, TcAttachOptions},
    },
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
    let io_err = |what: String| move |source| NatError::Io { what, source };

    let adopted = match PinnedLink::from_pin(pin) {
        Ok(old) => {
            let adopted = SchedClassifierLink::try_from(FdLink::from(old))
                .ok()
                .and_then(|link| prog.attach_to_link(link).ok());
            if adopted.is_none() {
                // Stale (device deleted) or not a tcx link: replace it.
                std::fs::remove_file(pin)
                    .map_err(io_err(format!("removing stale pin {}", pin.display())))?;
            }
            adopted
        }
        Err(LinkError::SyscallError(e)) if e.io_error.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(NatError::Io {
                what: format!("opening pinned link {}", pin.display()),
                source: io::Error::other(e),
            });
        }
    };
    let was_pinned = adopted.is_some();
    let id = match adopted {
        Some(id) => id,
        None => prog
            .attach_with_options(
                dev,
                attach_type,
                TcAttachOptions::TcxOrder(LinkOrder::default()),
            )
            .map_err(perr)?,
    };
    let link: FdLink = prog
        .take_link(id)
        .map_err(perr)?
        .try_into()
        .map_err(|e| NatError::Io {
            what: format!("{name} on {dev} is not a tcx link"),
            source: io::Error::other(e),
        })?;
    if !was_pinned {
        link.pin(pin).map_err(|source| NatError::Pin {
            path: pin.to_path_buf(),
            source,
        })?;
    }
    // Dropping the fd leaves the link alive through its pin.
    Ok(())
}
