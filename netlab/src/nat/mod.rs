//! Userspace control of the eBPF source NAT (netlab/doc/ARCHITECTURE.md
//! §3.2-§3.6): configuration
//! (`nat_config`), the uplink's program attachment, a typed
//! view of the translation table (`netlab nat list`) and expiry. (The NAT
//! port range is reserved on the host by `lab::build`, with the rule
//! `publish::host::reserved_ports` that also reserves published ports.)
//!
//! How the eBPF datapath's installer uses it (on a thread inside the host
//! namespace):
//! 1. [`map_sizes`] for the loader (the translation tables' sizes);
//! 2. [`configure`] with the plan, the uplink's address and `vbridge`'s MAC
//!    (the fast path reads the switch's `endpoints`, which the switch's
//!    control plane fills);
//! 3. [`attach_uplink`] (tcx links, pinned, idempotent);
//! 4. periodically [`sweep`] (expiry of flows and of fragment entries).

mod attach;
mod config;
mod expiry;
mod flow;
mod frags;
mod maps;
mod publish;
mod sock;
mod table;

pub use attach::{
    EGRESS_LINK_PIN, EGRESS_PROGRAM, INGRESS_LINK_PIN, INGRESS_PROGRAM, attach_uplink,
};
pub use config::{configure, configure6, map_sizes, nat_config, nat6_config};
pub use expiry::{
    SweepStats, flush_other_addresses, flush_source, monotonic_now_ns, select_expired, sweep,
    sweep_reporting,
};
pub use frags::{FRAG_TIMEOUT, select_expired_fragments, sweep_fragments};
pub use publish::{published, published6, sync_published, sync_published6};
pub use sock::{
    SOCK_HOOKS, attach_sock_hooks, cgroup2_root, endpoint_netns, lab_netns, netns_cookie_here,
    set_netns, sync_netns,
};
pub use table::{
    AnyFlow, Family, Flow, FlowAddrs, FlowState, Nat6Flow, Nat6Table, NatFlow, NatTable, NatTables,
    Proto, Table, V4, V6, decode, timeout_for,
};

use std::path::PathBuf;

impl From<NatError> for crate::bpf::Error {
    fn from(e: NatError) -> Self {
        crate::bpf::Error::Nat(Box::new(e))
    }
}

/// Errors of the NAT control plane.
#[derive(Debug, thiserror::Error)]
pub enum NatError {
    #[error("invalid NAT plan: {0}")]
    InvalidPlan(String),
    #[error("NAT map {name} not found{}", .path.as_ref().map(|p| format!(" at {}", p.display())).unwrap_or_default())]
    MissingMap {
        name: &'static str,
        path: Option<PathBuf>,
    },
    #[error("NAT map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("NAT program {name} not found in the eBPF object")]
    MissingProgram { name: &'static str },
    #[error("NAT program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("pinning {path}: {source}")]
    Pin {
        path: PathBuf,
        #[source]
        source: aya::pin::PinError,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}
