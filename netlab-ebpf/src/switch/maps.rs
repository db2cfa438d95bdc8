//! The switch's maps, pinned by name under `/sys/fs/bpf/netlab/<lab>/` (the
//! names are `netlab_common::maps::*`). The control plane fills them; the
//! program only reads them, except the FDB when learning is on.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, PerCpuArray},
};
use netlab_common::{
    counters::PortStats,
    maps::{ENDPOINTS_SIZE, FDB_SIZE, MAX_PORTS},
    switch::{Endpoint, FdbEntry, FdbKey, PortInfo, SwitchConfig},
};

/// MAC → port. `FDB_MAP`.
#[map(name = "fdb")]
pub static FDB: HashMap<FdbKey, FdbEntry> = HashMap::pinned(FDB_SIZE, 0);

/// Port ifindex (host namespace) → port. `PORTS_MAP`.
#[map(name = "ports")]
pub static PORTS: HashMap<u32, PortInfo> = HashMap::pinned(MAX_PORTS, 0);

/// Slot → port; ifindex 0 marks an empty slot. `FLOOD_MAP`.
#[map(name = "flood_ports")]
pub static FLOOD_PORTS: Array<PortInfo> = Array::pinned(MAX_PORTS, 0);

/// IPv4 (network order) → MAC and port. `ENDPOINTS_MAP`.
#[map(name = "endpoints")]
pub static ENDPOINTS: HashMap<u32, Endpoint> = HashMap::pinned(ENDPOINTS_SIZE, 0);

/// Per-CPU statistics per port slot. `PORT_STATS_MAP`.
#[map(name = "port_stats")]
pub static PORT_STATS: PerCpuArray<PortStats> = PerCpuArray::pinned(MAX_PORTS, 0);

/// One [`SwitchConfig`], read on every frame so that tracing and learning
/// switch at run time without reloading. `SWITCH_CONFIG_MAP`.
#[map(name = "switch_config")]
pub static SWITCH_CONFIG: Array<SwitchConfig> = Array::pinned(1, 0);

/// The port the frame came in on, copied out of the map.
#[inline(always)]
pub fn port(ifindex: u32) -> Option<PortInfo> {
    // SAFETY: the control plane replaces entries whole; a concurrent update
    // at worst yields the old or the new value of a field.
    unsafe { PORTS.get(ifindex).copied() }
}

/// The run-time switches (all off when the map is somehow unreadable).
#[inline(always)]
pub fn config() -> SwitchConfig {
    SWITCH_CONFIG.get(0).copied().unwrap_or_default()
}
