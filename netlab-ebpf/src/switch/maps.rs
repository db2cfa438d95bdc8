//! The switch's maps (BTF definitions, so bpftool prints them decoded), pinned by name under `/sys/fs/bpf/netlab/<lab>/` (the
//! names are `netlab_common::maps::*`). The control plane fills them; the
//! program only reads them, except the FDB when learning is on.

use crate::btf_map::{Array, HashMap, PerCpuArray};
use aya_ebpf::macros::btf_map;
use netlab_common::{
    counters::PortStats,
    maps::{ENDPOINTS_SIZE, FDB_SIZE, HOST_ADDRS_SIZE, MAX_PORTS},
    switch::{Endpoint, FdbEntry, FdbKey, PortInfo, SwitchConfig},
};

/// MAC → port. `FDB_MAP`.
#[btf_map(name = "fdb")]
pub static FDB: HashMap<FdbKey, FdbEntry, { FDB_SIZE as usize }> = HashMap::new();

/// Port ifindex (host namespace) → port. `PORTS_MAP`.
#[btf_map(name = "ports")]
pub static PORTS: HashMap<u32, PortInfo, { MAX_PORTS as usize }> = HashMap::new();

/// Slot → port; ifindex 0 marks an empty slot. `FLOOD_MAP`.
#[btf_map(name = "flood_ports")]
pub static FLOOD_PORTS: Array<PortInfo, { MAX_PORTS as usize }> = Array::new();

/// IPv4 (network order) → MAC and port. `ENDPOINTS_MAP`.
#[btf_map(name = "endpoints")]
pub static ENDPOINTS: HashMap<u32, Endpoint, { ENDPOINTS_SIZE as usize }> = HashMap::new();

/// IPv4 (network order) → HOST_ADDR_*: the host's addresses endpoints may
/// not reach (empty = host access allowed). `HOST_ADDRS_MAP`.
#[btf_map(name = "host_addrs")]
pub static HOST_ADDRS: HashMap<u32, u8, { HOST_ADDRS_SIZE as usize }> = HashMap::new();

/// Per-CPU statistics per port slot. `PORT_STATS_MAP`.
#[btf_map(name = "port_stats")]
pub static PORT_STATS: PerCpuArray<PortStats, { MAX_PORTS as usize }> = PerCpuArray::new();

/// One [`SwitchConfig`], read on every frame so that tracing and learning
/// switch at run time without reloading. `SWITCH_CONFIG_MAP`.
#[btf_map(name = "switch_config")]
pub static SWITCH_CONFIG: Array<SwitchConfig, 1> = Array::new();

/// The port the frame came in on, copied out of the map.
#[inline(always)]
pub fn port(ifindex: u32) -> Option<PortInfo> {
    // SAFETY: the control plane replaces entries whole; a concurrent update
    // at worst yields the old or the new value of a field.
    unsafe { PORTS.get(ifindex).copied() }
}

/// The port an FDB entry names, read from `flood_ports` by its slot (an
/// array, which the verifier inlines, instead of a second `ports` hash
/// lookup); `None` when the slot no longer holds that port (the port was
/// removed, or a concurrent update is half-way): unknown unicast.
#[inline(always)]
pub fn fdb_target(entry: &FdbEntry) -> Option<PortInfo> {
    let port = FLOOD_PORTS.get(u32::from(entry.slot))?;
    (port.ifindex == entry.port_ifindex && port.ifindex != 0).then_some(*port)
}

/// The run-time switches (all off when the map is somehow unreadable).
#[inline(always)]
pub fn config() -> SwitchConfig {
    SWITCH_CONFIG.get(0).copied().unwrap_or_default()
}
