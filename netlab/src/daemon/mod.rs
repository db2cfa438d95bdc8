//! `netlab daemon`: the eBPF datapath's control loop.
//!
//! The datapath itself needs no running process (programs, maps and links
//! are pinned). The daemon does the two things that need time to pass:
//!
//! - **expiry**: every `interval` it removes NAT flows idle for longer than
//!   their per-protocol timeout (TCP closing entries go early); the LRU
//!   eviction of the maps is only the last resort. A sweep reads the whole
//!   table, so with a large table the sweeps are spaced out to keep their
//!   cost to a small share of one CPU ([`next_sweep_delay`]);
//! - **the uplink's address**: a thread inside the host namespace listens to
//!   rtnetlink address and link events; when the uplink's IPv4 address
//!   changes, `nat_config` gets the new one and translations made with the
//!   old address are flushed (like the kernel's MASQUERADE, which drops its
//!   conntrack entries when the device's address goes away: replies to the
//!   old address can no longer arrive);
//! - **the host's addresses**: on the same events, the same thread re-reads
//!   every IPv4 and IPv6 address of the host namespace and brings
//!   `host_addrs` and `host_addrs6` in step, so an address added at run
//!   time is closed to the namespaces too (unless the lab allows host
//!   access).
//!
//! Restarting the daemon loses nothing: all state is in the pinned maps.
//! One daemon per lab: its pid is in `/run/netlab/<lab>.daemon.pid`, and
//! `netlab down` stops it (it also exits by itself when the lab's pins go).
//!
//! One module per idea: [`target`] (what the loop serves), [`control`] (the
//! loop), [`pacing`] (how often it sweeps), [`watch`] (the uplink's and the
//! host's addresses), [`process`] (pid file, start, stop), [`record`] (what
//! it writes for `status`), [`log`] (its output). `crate::supervise` is the
//! daemon as `up`, `down` and `status` see it; nothing here imports it.

mod control;
pub mod log;
pub mod pacing;
pub mod process;
pub mod record;
mod target;
mod watch;

pub use control::run;
pub use log::log_path;
pub use pacing::next_sweep_delay;
pub use process::{pid_path, running_pid, spawn_background, stop};
pub use record::record_path;
pub use target::{DEFAULT_INTERVAL, Options};
