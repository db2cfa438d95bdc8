//! Map names and sizes. The names are the pin names under
//! `/sys/fs/bpf/netlab/<lab>/` and the names of the maps in the object file
//! (the kernel keeps only the first 15 bytes of a map name).

/// MAC address → [`crate::switch::FdbEntry`].
pub const FDB_MAP: &str = "fdb";
/// Ingress ifindex → [`crate::switch::PortInfo`].
pub const PORTS_MAP: &str = "ports";
/// Slot → [`crate::switch::PortInfo`]; the flood list (ifindex 0 = empty slot).
pub const FLOOD_MAP: &str = "flood_ports";
/// IPv4 (network order) → [`crate::switch::Endpoint`]: ARP responder and NAT fast path.
pub const ENDPOINTS_MAP: &str = "endpoints";
/// Per-CPU array of `u64` indexed by [`crate::counters::Counter`].
pub const COUNTERS_MAP: &str = "counters";
/// Per-CPU array of [`crate::counters::PortStats`] indexed by port slot.
pub const PORT_STATS_MAP: &str = "port_stats";
/// Array of one [`crate::switch::SwitchConfig`].
pub const SWITCH_CONFIG_MAP: &str = "switch_config";
/// IPv4 (network order) → `u8` ([`crate::switch::HOST_ADDR_LOCAL`] or
/// [`crate::switch::HOST_ADDR_BROADCAST`]): the host side's own addresses
/// that endpoints may not reach (every one but the gateway's). Empty when
/// the lab allows host access.
pub const HOST_ADDRS_MAP: &str = "host_addrs";
/// Datapath "ebpf-xdp": port ifindex → ifindex, the targets of the XDP
/// port program's redirects (a `BPF_MAP_TYPE_DEVMAP_HASH`).
pub const XDP_PORTS_MAP: &str = "xdp_ports";

/// Most switch ports (endpoints + gateway) one lab can have; bounds the
/// flood loop, which the verifier must see terminate.
pub const MAX_PORTS: u32 = 64;
/// FDB capacity: static entries plus room for learned ones.
pub const FDB_SIZE: u32 = 1024;
/// Endpoint table capacity.
pub const ENDPOINTS_SIZE: u32 = 256;
/// Host addresses the switch can block. The control plane refuses to fill
/// the map with more (rather than leave some of them reachable).
pub const HOST_ADDRS_SIZE: u32 = 256;
