//! Loading the embedded object with its maps pinned in the lab directory,
//! loading and pinning programs, and attaching them as pinned tcx links.

use std::{fs, path::Path};

use aya::{
    Ebpf, EbpfLoader,
    programs::{
        LinkOrder, Program, ProgramError, SchedClassifier, TcAttachType,
        links::{FdLink, PinnedLink},
        tc::{SchedClassifierLink, TcAttachOptions},
    },
};

use super::{
    error::{Error, Result},
    fs::remove_pin,
    maps::{ALL_MAPS, Sizing, check_pinned_layouts, spec_of},
};

/// The switch port program (TC ingress of every port).
pub const PORT_PROGRAM: &str = "netlab_port";

/// The size of a map that the map table marks as sized at load time
/// (`Sizing::AtLoad`), chosen by the caller (from the lab file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSize {
    pub map: &'static str,
    pub max_entries: u32,
}

/// Loads `netlab::EBPF_OBJECT`, creating its pinned maps in `pin_dir` or
/// reusing the ones already there (that is what makes a restart pick up
/// the running datapath's state). `sizes` sizes the maps created now (a
/// pinned map keeps the size it was created with). Programs are not
/// loaded yet.
pub fn load_object(pin_dir: &Path, sizes: &[MapSize]) -> Result<Ebpf> {
    if crate::EBPF_OBJECT.is_empty() {
        return Err(Error::EmptyObject);
    }
    check_pinned_layouts(pin_dir, ALL_MAPS)?;
    let mut loader = EbpfLoader::new();
    loader.default_map_pin_directory(pin_dir);
    set_map_sizes(&mut loader, sizes)?;
    loader
        .load(crate::EBPF_OBJECT)
        .map_err(|source| Error::Load { source })
}

/// Sets the sizes on `loader` (for callers that build their own loader),
/// refusing a size for a map that is not sized at load time, or a zero.
pub fn set_map_sizes(loader: &mut EbpfLoader<'_>, sizes: &[MapSize]) -> Result<()> {
    for size in sizes {
        match spec_of(size.map) {
            Some(spec) if spec.sizing == Sizing::AtLoad && size.max_entries > 0 => {
                loader.map_max_entries(size.map, size.max_entries);
            }
            Some(spec) if spec.sizing == Sizing::AtLoad => {
                return Err(Error::InvalidPlan(format!(
                    "map {}: max_entries must be above 0",
                    spec.name
                )));
            }
            _ => {
                return Err(Error::InvalidPlan(format!(
                    "map {} is not sized at load time",
                    size.map
                )));
            }
        }
    }
    Ok(())
}

/// The program `name` of `ebpf` as a `T` (`SchedClassifier`, `Xdp`, ...),
/// or the error that names it.
pub fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T>
where
    &'a mut T: TryFrom<&'a mut Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(Error::MissingProgram(name))?
        .try_into()
        .map_err(|source| Error::Program {
            program: name,
            source,
        })
}

/// Loads one classifier of `ebpf` into the kernel; a verifier rejection
/// becomes [`Error::Verifier`] with the end of the verifier log.
pub fn load_classifier<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut SchedClassifier> {
    let program: &mut SchedClassifier = program(ebpf, name)?;
    load_retrying(program).map_err(|e| Error::from_load(name, e))?;
    Ok(program)
}

/// `program.load()`, retried when the kernel says EAGAIN. The verifier
/// gives up with EAGAIN when a signal is pending for the loading thread (it
/// checks `signal_pending` while it walks the program), e.g. a SIGCHLD in a
/// process that runs child processes; libbpf retries BPF_PROG_LOAD the same
/// way. Any other error is returned at once.
pub fn load_retrying(program: &mut SchedClassifier) -> std::result::Result<(), ProgramError> {
    retry_eagain(|| program.load())
}

/// Runs a program `load`, retrying as [`load_retrying`] explains (for any
/// program type).
pub fn retry_eagain(
    mut load: impl FnMut() -> std::result::Result<(), ProgramError>,
) -> std::result::Result<(), ProgramError> {
    const ATTEMPTS: usize = 5;
    let mut attempt = 1;
    loop {
        match load() {
            Err(ProgramError::LoadError { io_error, .. })
                if io_error.raw_os_error() == Some(libc::EAGAIN) && attempt < ATTEMPTS =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Pins `program` at `path`, replacing what is there in one step (pin to
/// `tmp`, then rename over `path`).
pub fn pin_program(
    program: &mut SchedClassifier,
    name: &'static str,
    path: &Path,
    tmp: &Path,
) -> Result<()> {
    remove_pin(tmp)?;
    program.pin(tmp).map_err(|e| Error::Pin {
        what: "cannot pin program",
        path: tmp.to_path_buf(),
        source: std::io::Error::other(format!("{name}: {e}")),
    })?;
    fs::rename(tmp, path).map_err(|source| Error::Pin {
        what: "cannot replace program pin",
        path: path.to_path_buf(),
        source,
    })
}

/// Opens a pinned classifier (`add_port` after the loading run exited).
pub fn open_pinned_classifier(path: &Path) -> Result<SchedClassifier> {
    SchedClassifier::from_pin(path).map_err(|source| Error::Program {
        program: PORT_PROGRAM,
        source,
    })
}

/// What [`attach_pinned`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkChange {
    /// A new tcx link was created and pinned.
    Created,
    /// The pinned link already on the device now runs `program` (atomic
    /// replacement: no frame sees the port without a program).
    Replaced,
}

/// Attaches `program` to the TC ingress of `dev` (in the calling thread's
/// namespace) through a tcx link pinned at `pin` (the switch ports).
pub fn attach_pinned(program: &mut SchedClassifier, dev: &str, pin: &Path) -> Result<LinkChange> {
    attach_pinned_at(program, dev, TcAttachType::Ingress, pin)
}

/// Attaches `program` to the `hook` of `dev` (in the calling thread's
/// namespace) through a tcx link pinned at `pin`: a live pinned link on
/// that hook is re-adopted and switched to `program` in one step, a stale
/// pin (its link lost the device) is replaced by a new link. The one rule
/// for every tcx link netlab pins: the switch ports and the uplink's NAT.
pub fn attach_pinned_at(
    program: &mut SchedClassifier,
    dev: &str,
    hook: TcAttachType,
    pin: &Path,
) -> Result<LinkChange> {
    let attach_error = |source| Error::Attach {
        dev: dev.to_owned(),
        source,
    };
    let link_error = |source| Error::Link {
        path: pin.to_path_buf(),
        source,
    };
    if let Some(existing) = live_link(dev, hook, pin)? {
        let link = SchedClassifierLink::try_from(existing).map_err(link_error)?;
        let id = program.attach_to_link(link).map_err(attach_error)?;
        // The pin keeps the link; our fd goes when the taken link drops
        // (dropping an fd link does not detach it).
        drop(program.take_link(id).map_err(attach_error)?);
        return Ok(LinkChange::Replaced);
    }
    let id = program
        .attach_with_options(dev, hook, TcAttachOptions::TcxOrder(LinkOrder::default()))
        .map_err(attach_error)?;
    let link = program.take_link(id).map_err(attach_error)?;
    let link = FdLink::try_from(link).map_err(link_error)?;
    // If pinning fails the link is dropped here and detaches with its fd.
    link.pin(pin).map_err(|e| Error::Pin {
        what: "cannot pin link",
        path: pin.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(LinkChange::Created)
}

/// The link pinned at `pin` if it is still attached to `dev`'s `hook`. A pin whose
/// link lost its device (the device was deleted and maybe re-created under
/// the same name) is removed, so that a fresh link replaces it.
fn live_link(dev: &str, hook: TcAttachType, pin: &Path) -> Result<Option<FdLink>> {
    if !pin.exists() {
        return Ok(None);
    }
    let link: FdLink = PinnedLink::from_pin(pin)
        .map_err(|source| Error::Link {
            path: pin.to_path_buf(),
            source,
        })?
        .into();
    let program_id = link
        .info()
        .map_err(|source| Error::Link {
            path: pin.to_path_buf(),
            source,
        })?
        .program_id();
    let attached = SchedClassifier::query_tcx(dev, hook)
        .map(|(_, programs)| programs.iter().any(|p| p.id() == program_id))
        .unwrap_or(false);
    if attached {
        Ok(Some(link))
    } else {
        log::info!("replacing stale link pin {}", pin.display());
        remove_pin(pin)?;
        Ok(None)
    }
}

/// Detaches the port link pinned at `pin` by removing the pin (the link is
/// released when no fd refers to it any more).
pub fn detach_pinned(pin: &Path) -> Result<()> {
    remove_pin(pin)
}
