//! Errors of the eBPF datapath, worded for the person running netlab: what
//! is missing and what to do instead.

use std::{io, path::PathBuf};

use aya::{
    EbpfError,
    maps::MapError,
    programs::{ProgramError, links::LinkError},
};

/// What to suggest when the kernel or the permissions cannot carry the eBPF
/// datapath.
pub const KERNEL_DATAPATH_HINT: &str = "the eBPF datapath needs root (CAP_BPF, CAP_NET_ADMIN), \
     bpffs, kernel BTF and tcx links (Linux >= 6.6); `--datapath kernel` runs the same lab \
     on a Linux bridge without them";

/// Lines of the verifier log kept in an error (the end says why).
const VERIFIER_TAIL_LINES: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid datapath plan: {0}")]
    InvalidPlan(String),

    /// An error of the NAT control plane (a layer above this one, which
    /// converts its errors into this variant).
    #[error("source NAT: {0}")]
    Nat(#[source] Box<dyn std::error::Error + Send + Sync>),

    #[error("the uplink {dev} has no IPv4 address to masquerade with")]
    NoUplinkAddress { dev: String },

    #[error(
        "this thread is not in the lab's host namespace {expected}: the eBPF datapath must be \
         installed from inside it"
    )]
    WrongNamespace { expected: String },

    #[error("device {dev} not found in the host namespace: {source}")]
    NoDevice {
        dev: String,
        #[source]
        source: nix::Error,
    },

    #[error("bpffs is not available at {path}: {source} ({KERNEL_DATAPATH_HINT})")]
    Bpffs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{what} {path}: {source}")]
    Pin {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(
        "the embedded eBPF object is empty: netlab was built with AYA_BUILD_SKIP=1; rebuild it \
         without, or use `--datapath kernel`"
    )]
    EmptyObject,

    #[error("loading the eBPF object failed: {source} ({KERNEL_DATAPATH_HINT})")]
    Load {
        #[source]
        source: EbpfError,
    },

    #[error("the eBPF object has no program {0}")]
    MissingProgram(&'static str),

    #[error(
        "the kernel rejected program {program}: {source} ({KERNEL_DATAPATH_HINT})\n\
         verifier log (last lines):\n{log_tail}"
    )]
    Verifier {
        program: &'static str,
        #[source]
        source: io::Error,
        log_tail: String,
    },

    #[error("program {program}: {source}")]
    Program {
        program: &'static str,
        #[source]
        source: ProgramError,
    },

    #[error(
        "cannot attach the port program to {dev} (tcx ingress): {source} ({KERNEL_DATAPATH_HINT})"
    )]
    Attach {
        dev: String,
        #[source]
        source: ProgramError,
    },

    #[error("link {path}: {source}")]
    Link {
        path: PathBuf,
        #[source]
        source: LinkError,
    },

    #[error(
        "pinned map {path} does not match this netlab's layout ({detail}); it was left by another \
         netlab version: run `netlab down` for the lab first"
    )]
    IncompatibleMap { path: PathBuf, detail: String },

    #[error("map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },

    #[error("the eBPF datapath of lab {lab} is not installed (nothing pinned at {path})")]
    NotInstalled { lab: String, path: PathBuf },

    #[error("lab {lab}: {detail}")]
    Conflict { lab: String, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Turns a program load failure into a verifier error with the log's tail.
    pub fn from_load(program: &'static str, error: ProgramError) -> Self {
        match error {
            ProgramError::LoadError {
                io_error,
                verifier_log,
            } => Error::Verifier {
                program,
                source: io_error,
                log_tail: tail(&verifier_log.to_string(), VERIFIER_TAIL_LINES),
            },
            source => Error::Program { program, source },
        }
    }

    pub fn map(map: &'static str) -> impl FnOnce(MapError) -> Self {
        move |source| Error::Map { map, source }
    }
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }
}
