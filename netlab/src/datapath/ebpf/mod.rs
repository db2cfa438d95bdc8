//! The eBPF datapath's control plane: loads the programs, pins maps and tcx
//! links under `/sys/fs/bpf/netlab/<lab>/`, fills the maps from a
//! [`SwitchPlan`](crate::plan::SwitchPlan), and reads them back for `netlab stats/status`.
//!
//! Everything that names a device (install, add_port, remove_port) must run
//! on a thread inside the lab's host-side namespace: ifindexes and tcx
//! attachments are resolved in the calling thread's namespace.
//!
//! Host access: unless the plan allows it, `host_addrs` and `host_addrs6`
//! list the host namespace's own IPv4 and IPv6 addresses except the
//! gateway's, and the port program drops IP from endpoints to them
//! (netlab-ebpf/src/switch/host.rs).
//! `install` fills it; the daemon re-reads the addresses after every
//! rtnetlink address event ([`sync_host_access`]).
//!
//! Restart safety: maps, the port program and the links are pinned, so the
//! switch keeps forwarding after netlab exits; `install` on a running lab
//! reloads the program, reuses the pinned maps (state survives) and swaps
//! the program inside the existing links atomically.

//!
//! One file per idea: `install` (install or re-adopt, rollback), `ports`
//! (a port added or removed on a running lab), `port_maps` (the switch
//! maps made to match the ports), `host_addrs` (the host side's addresses:
//! blocked, and the uplink's), `runtime` (run-time switches and readings),
//! `validate` (the plan checked before anything touches the kernel).

mod host_addrs;
mod install;
mod port_maps;
mod ports;
mod runtime;
mod validate;

use std::path::PathBuf;

pub use host_addrs::{
    HostAccess, blocked_host_addrs, blocked_host_addrs6, host_addrs, host_addrs6, sync_host_access,
    uplink_ipv4,
};
pub use install::install;
pub use ports::{add_port, remove_port};
pub use runtime::{
    PortStatus, config, counter, counters, fdb, ports, set_learning, set_published, set_trace,
    set_trace_bit,
};

use crate::bpf::{Result, fs};

/// The lab's pin directory.
pub fn pin_dir(lab: &str) -> PathBuf {
    fs::lab_dir(lab)
}

/// Whether the lab's datapath is installed (its port program is pinned).
pub fn is_installed(lab: &str) -> bool {
    fs::prog_pin(&fs::lab_dir(lab)).exists()
}

/// Removes every pinned object of the lab (links first, which detaches the
/// programs). Succeeds when nothing is there.
pub fn uninstall(lab: &str) -> Result<()> {
    validate::validate_lab(lab)?;
    fs::remove_lab_dir(&fs::lab_dir(lab))
}
