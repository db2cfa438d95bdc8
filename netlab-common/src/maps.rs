//! The map table: every map netlab's programs declare, once.
//!
//! Each row of [`map_table!`] is one map: the name of its static in the
//! eBPF crate, the name of its constant here, its name (the pin name under
//! `/sys/fs/bpf/netlab/<lab>/` and the map's name in the object file; the
//! kernel keeps only the first 15 bytes), its kind (an `aya::maps::MapType`
//! variant's name), key and value types, `max_entries`, whether that size
//! is fixed or set at load time, and a doc line. Everything else follows from the rows (see ARCHITECTURE.md §4):
//! the name constants below, the eBPF crate's `#[btf_map]` statics
//! (`netlab-ebpf/src/maps.rs`) and the control plane's `MapSpec` list
//! (`netlab/src/bpf/maps.rs`). Adding a map is one row here.

/// Calls `$callback! { rows }` with every map's row:
///
/// ```text
/// { item: STATIC, name_const: NAME_CONST, name: "pin name", kind: Hash,
///   key: K, value: V, max_entries: N, sizing: Fixed | AtLoad, doc: "..." }
/// ```
///
/// Arrays have a `u32` key; the ring buffer has `()` key and value and
/// `max_entries` is its size in bytes. `AtLoad` maps are created with the
/// size the loader is given (the lab file's), `max_entries` is the
/// object's default. Rows are in `netlab map list` order, switch first.
#[macro_export]
macro_rules! map_table {
    ($callback:ident) => {
        $callback! {
            {
                item: FDB, name_const: FDB_MAP, name: "fdb", kind: Hash,
                key: $crate::switch::FdbKey, value: $crate::switch::FdbEntry,
                max_entries: $crate::maps::FDB_SIZE, sizing: Fixed,
                doc: "MAC address → port (static entries, plus learned ones when learning is on)."
            }
            {
                item: PORTS, name_const: PORTS_MAP, name: "ports", kind: Hash,
                key: u32, value: $crate::switch::PortInfo,
                max_entries: $crate::maps::MAX_PORTS, sizing: Fixed,
                doc: "Port ifindex (host namespace) → port."
            }
            {
                item: FLOOD_PORTS, name_const: FLOOD_MAP, name: "flood_ports", kind: Array,
                key: u32, value: $crate::switch::PortInfo,
                max_entries: $crate::maps::MAX_PORTS, sizing: Fixed,
                doc: "Slot → port: the flood list (ifindex 0 = empty slot)."
            }
            {
                item: PORT_SLOTS, name_const: PORT_SLOTS_MAP, name: "port_slots", kind: Array,
                key: u32, value: u32,
                max_entries: $crate::maps::PORT_SLOTS_SIZE, sizing: Fixed,
                doc: "Port ifindex below `PORT_SLOTS_SIZE` → its slot + 1 (0: none): finds the ingress port in `flood_ports` without a hash lookup; trusted only when that slot holds the ifindex."
            }
            {
                item: ENDPOINTS, name_const: ENDPOINTS_MAP, name: "endpoints", kind: Hash,
                key: u32, value: $crate::switch::Endpoint,
                max_entries: $crate::maps::ENDPOINTS_SIZE, sizing: Fixed,
                doc: "IPv4 (network order) → MAC and switch port: the ARP responder's table and the NAT fast path's."
            }
            {
                item: ENDPOINTS6, name_const: ENDPOINTS6_MAP, name: "endpoints6", kind: Hash,
                key: [u8; 16], value: $crate::switch::Endpoint,
                max_entries: $crate::maps::ENDPOINTS6_SIZE, sizing: Fixed,
                doc: "IPv6 address (global and link-local of every endpoint, and the gateway's) → MAC and switch port: the Neighbour Discovery responder's table and the NAT66 fast path's."
            }
            {
                item: PORTS6, name_const: PORTS6_MAP, name: "ports6", kind: Hash,
                key: u32, value: $crate::switch::Port6,
                max_entries: $crate::maps::MAX_PORTS, sizing: Fixed,
                doc: "Endpoint port ifindex → its IPv6 addresses (global, link-local): the IPv6 source check. A port with no entry sends no IPv6."
            }
            {
                item: COUNTERS, name_const: COUNTERS_MAP, name: "counters", kind: PerCpuArray,
                key: u32, value: u64,
                max_entries: $crate::counters::Counter::COUNT, sizing: Fixed,
                doc: "Per-CPU `u64` counters indexed by `Counter` (every program counts here)."
            }
            {
                item: PORT_STATS, name_const: PORT_STATS_MAP, name: "port_stats", kind: PerCpuArray,
                key: u32, value: $crate::counters::PortStats,
                max_entries: $crate::maps::MAX_PORTS, sizing: Fixed,
                doc: "Per-CPU statistics per port slot."
            }
            {
                item: SWITCH_CONFIG, name_const: SWITCH_CONFIG_MAP, name: "switch_config", kind: Array,
                key: u32, value: $crate::switch::SwitchConfig,
                max_entries: 1, sizing: Fixed,
                doc: "One `SwitchConfig`, read on every frame so that tracing and learning switch at run time without reloading."
            }
            {
                item: HOST_ADDRS, name_const: HOST_ADDRS_MAP, name: "host_addrs", kind: Hash,
                key: u32, value: u8,
                max_entries: $crate::maps::HOST_ADDRS_SIZE, sizing: Fixed,
                doc: "IPv4 (network order) → HOST_ADDR_*: the host side's own addresses endpoints may not reach (every one but the gateway's; empty when the lab allows host access)."
            }
            {
                item: HOST_ADDRS6, name_const: HOST_ADDRS6_MAP, name: "host_addrs6", kind: Hash,
                key: [u8; 16], value: u8,
                max_entries: $crate::maps::HOST_ADDRS_SIZE, sizing: Fixed,
                doc: "IPv6 address → HOST_ADDR_LOCAL: the host side's own IPv6 addresses endpoints may not reach (every one but the gateway's; empty when the lab allows host access)."
            }
            {
                item: NAT_CONFIG, name_const: NAT_CONFIG_MAP, name: "nat_config", kind: Array,
                key: u32, value: $crate::nat::NatConfig,
                max_entries: 1, sizing: Fixed,
                doc: "One `NatConfig`: subnet, external address, port range, flags, gateway MAC."
            }
            {
                item: NAT_ORIG, name_const: NAT_ORIG_MAP, name: "nat_orig", kind: LruHash,
                key: $crate::nat::NatKey, value: $crate::nat::NatEntry,
                max_entries: $crate::nat::NAT_DEFAULT_MAX_ENTRIES, sizing: AtLoad,
                doc: "Original tuple (as it leaves the lab) → translated source."
            }
            {
                item: NAT_REPLY, name_const: NAT_REPLY_MAP, name: "nat_reply", kind: LruHash,
                key: $crate::nat::NatKey, value: $crate::nat::NatEntry,
                max_entries: $crate::nat::NAT_DEFAULT_MAX_ENTRIES, sizing: AtLoad,
                doc: "Reply tuple (as it arrives on the uplink) → original source. Also the port allocator's claim table: a translated port is taken exactly when a reply key naming it exists."
            }
            {
                item: NAT_FRAGS, name_const: NAT_FRAGS_MAP, name: "nat_frags", kind: LruHash,
                key: $crate::nat::NatFragKey, value: $crate::nat::NatFragEntry,
                max_entries: $crate::nat::NAT_FRAGS_SIZE, sizing: Fixed,
                doc: "A fragmented datagram whose first fragment was translated → the address its later fragments get (they carry no ports to look up)."
            }
            {
                item: NAT6_CONFIG, name_const: NAT6_CONFIG_MAP, name: "nat6_config", kind: Array,
                key: u32, value: $crate::nat6::Nat6Config,
                max_entries: 1, sizing: Fixed,
                doc: "One `Nat6Config`: the IPv6 prefix, external address, port range, flags, gateway MAC (flags 0: no NAT66)."
            }
            {
                item: NAT6_ORIG, name_const: NAT6_ORIG_MAP, name: "nat6_orig", kind: LruHash,
                key: $crate::nat6::Nat6Key, value: $crate::nat6::Nat6Entry,
                max_entries: $crate::nat::NAT_DEFAULT_MAX_ENTRIES, sizing: AtLoad,
                doc: "NAT66: original IPv6 tuple (as it leaves the lab) → translated source."
            }
            {
                item: NAT6_REPLY, name_const: NAT6_REPLY_MAP, name: "nat6_reply", kind: LruHash,
                key: $crate::nat6::Nat6Key, value: $crate::nat6::Nat6Entry,
                max_entries: $crate::nat::NAT_DEFAULT_MAX_ENTRIES, sizing: AtLoad,
                doc: "NAT66: reply IPv6 tuple (as it arrives on the uplink) → original source; also the NAT66 port allocator's claim table."
            }
            {
                item: NAT6_FRAGS, name_const: NAT6_FRAGS_MAP, name: "nat6_frags", kind: LruHash,
                key: $crate::nat6::Nat6FragKey, value: $crate::nat6::Nat6FragEntry,
                max_entries: $crate::nat::NAT_FRAGS_SIZE, sizing: Fixed,
                doc: "NAT66: a fragmented IPv6 datagram whose first fragment was translated → the address its later fragments get."
            }
            {
                item: NAT_PUBLISH, name_const: NAT_PUBLISH_MAP, name: "nat_publish", kind: Hash,
                key: $crate::nat::PublishKey, value: $crate::nat::PublishEntry,
                max_entries: $crate::nat::NAT_PUBLISH_SIZE, sizing: Fixed,
                doc: "Published ports: (host address or 0, host port, protocol) → the namespace's address and port."
            }
            {
                item: NAT6_PUBLISH, name_const: NAT6_PUBLISH_MAP, name: "nat6_publish", kind: Hash,
                key: $crate::nat6::Publish6Key, value: $crate::nat6::Publish6Entry,
                max_entries: $crate::nat::NAT_PUBLISH_SIZE, sizing: Fixed,
                doc: "Published IPv6 ports: (host IPv6 address or all-zero, host port, protocol) → the namespace's IPv6 address and port."
            }
            {
                item: PUBLISH_SOCKS6, name_const: PUBLISH_SOCKS6_MAP, name: "publish_socks6", kind: LruHash,
                key: $crate::nat6::Publish6SockKey, value: $crate::nat6::Publish6SockEntry,
                max_entries: $crate::nat::PUBLISH_SOCKS_SIZE, sizing: Fixed,
                doc: "A UDP socket and the namespace IPv6 address its datagrams were redirected to → the published IPv6 address it addressed."
            }
            {
                item: PUBLISH_NETNS, name_const: PUBLISH_NETNS_MAP, name: "publish_netns", kind: Hash,
                key: u64, value: $crate::nat::PublishNetns,
                max_entries: $crate::nat::PUBLISH_NETNS_SIZE, sizing: Fixed,
                doc: "Network namespace cookie → the lab namespace it is: whose sockets the socket hooks translate."
            }
            {
                item: PUBLISH_SOCKS, name_const: PUBLISH_SOCKS_MAP, name: "publish_socks", kind: LruHash,
                key: $crate::nat::PublishSockKey, value: $crate::nat::PublishSockEntry,
                max_entries: $crate::nat::PUBLISH_SOCKS_SIZE, sizing: Fixed,
                doc: "A UDP socket and the namespace address its datagrams were redirected to → the published address it addressed."
            }
            {
                item: EVENTS, name_const: EVENTS_MAP, name: "events", kind: RingBuf,
                key: (), value: (),
                max_entries: $crate::events::EVENTS_RING_SIZE, sizing: Fixed,
                doc: "The event stream's ring buffer (`netlab monitor`); `max_entries` is its size in bytes."
            }
            {
                item: XDP_PORTS, name_const: XDP_PORTS_MAP, name: "xdp_ports", kind: DevMapHash,
                key: u32, value: [u32; 2],
                max_entries: $crate::maps::MAX_PORTS, sizing: Fixed,
                doc: "Datapath \"ebpf-xdp\": port ifindex → `struct bpf_devmap_val` (ifindex, program: none), the targets of the XDP port program's redirects."
            }
        }
    };
}

/// Expands the table's rows into one `&str` constant per map name.
macro_rules! name_consts {
    ($({
        item: $item:ident, name_const: $name_const:ident, name: $name:literal, kind: $kind:ident,
        key: $key:ty, value: $value:ty, max_entries: $max:expr, sizing: $sizing:ident,
        doc: $doc:literal
    })*) => {
        $(
            #[doc = $doc]
            pub const $name_const: &str = $name;
        )*
        /// Every map's name, in table order.
        pub const ALL_MAP_NAMES: &[&str] = &[$($name),*];
    };
}

map_table!(name_consts);

/// Most switch ports (endpoints + gateway) one lab can have; bounds the
/// flood loop, which the verifier must see terminate.
pub const MAX_PORTS: u32 = 64;
/// Ifindexes the `port_slots` array covers (a port with a larger one, as
/// root-mode devices can have, is found through the `ports` hash).
pub const PORT_SLOTS_SIZE: u32 = 4096;
/// FDB capacity: static entries plus room for learned ones.
pub const FDB_SIZE: u32 = 1024;
/// Endpoint table capacity.
pub const ENDPOINTS_SIZE: u32 = 256;
/// IPv6 endpoint table capacity: two addresses (global, link-local) per
/// port.
pub const ENDPOINTS6_SIZE: u32 = 2 * ENDPOINTS_SIZE;
/// Host addresses the switch can block. The control plane refuses to fill
/// the map with more (rather than leave some of them reachable).
pub const HOST_ADDRS_SIZE: u32 = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_fit_the_kernel() {
        for (i, name) in ALL_MAP_NAMES.iter().enumerate() {
            assert!(name.len() <= 15, "{name}: the kernel keeps 15 bytes");
            assert!(!ALL_MAP_NAMES[..i].contains(name), "{name} twice");
        }
    }
}
